"""Harvest photos: accept JPEG, PNG or WebP up to 10 MB; re-encode small, without metadata."""
from __future__ import annotations

import hashlib
import io
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass

from flask import current_app
from flask_babel import gettext as _
from PIL import Image, ImageOps, UnidentifiedImageError

from ..common.errors import ValidationFailed

# MPO is how Pillow names the JPEG many phone cameras write (a photo plus a preview frame).
ACCEPTED = {"JPEG", "MPO", "PNG", "WEBP"}
MAX_PIXELS = 50_000_000  # a 50-megapixel phone photo; beyond that it is a decompression bomb


@dataclass
class ProcessedPhoto:
    data: bytes
    content_type: str
    width: int
    height: int
    digest: str


def _refuse(message: str) -> ValidationFailed:
    return ValidationFailed(message, code="invalid_photo", fields={"photo": [message]})


def process_photo(raw: bytes) -> ProcessedPhoto:
    """Decode, orient, shrink to PHOTO_MAX_SIDE and re-encode as WebP. Drops EXIF/GPS and ICC."""
    limit = current_app.config["PHOTO_MAX_BYTES"]
    if not raw:
        raise _refuse(_("The photo is empty."))
    if len(raw) > limit:
        raise _refuse(_("The photo is larger than 10 MB. Take it again at a lower resolution."))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(raw))
            if image.format not in ACCEPTED:
                raise _refuse(_("Send the photo as JPEG, PNG or WebP."))
            if image.width * image.height > MAX_PIXELS:
                raise _refuse(_("The photo has too many pixels."))
            image.load()
    except ValidationFailed:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError,
            Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _refuse(_("That file is not a photo Minga can read. Send a JPEG, PNG or WebP."))
    image = ImageOps.exif_transpose(image)
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    side = current_app.config["PHOTO_MAX_SIDE"]
    image.thumbnail((side, side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    # A fresh save writes no EXIF, XMP or ICC unless asked to: the metadata stays behind.
    image.save(out, format="WEBP", quality=72, method=4)
    data = out.getvalue()
    return ProcessedPhoto(data=data, content_type="image/webp", width=image.width,
                          height=image.height, digest=hashlib.sha256(data).hexdigest())


# The sizes pages ask for (CSS pixels of a card's photo at 1x and 2x), 4:3. Derived from the
# one stored image on first request and kept in memory: a 320 px thumbnail is a few KB.
THUMB_WIDTHS = (160, 320)
THUMB_QUALITY = 45
_THUMB_CACHE_ITEMS = 512
_thumbs: "OrderedDict[tuple[str, int], bytes]" = OrderedDict()
_thumbs_lock = threading.Lock()


def thumbnail_height(width: int) -> int:
    return width * 3 // 4


def cached_thumbnail(digest: str, width: int) -> bytes | None:
    with _thumbs_lock:
        data = _thumbs.get((digest, width))
        if data is not None:
            _thumbs.move_to_end((digest, width))
        return data


def thumbnail(data: bytes, digest: str, width: int) -> bytes:
    """The stored photo cut to 4:3 at `width` px, as a small WebP (cached by digest and width)."""
    if width not in THUMB_WIDTHS:
        raise ValueError(width)
    hit = cached_thumbnail(digest, width)
    if hit is not None:
        return hit
    with Image.open(io.BytesIO(data)) as image:
        image = image.convert("RGB")
        small = ImageOps.fit(image, (width, thumbnail_height(width)), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    small.save(out, format="WEBP", quality=THUMB_QUALITY, method=6)
    result = out.getvalue()
    with _thumbs_lock:
        _thumbs[(digest, width)] = result
        while len(_thumbs) > _THUMB_CACHE_ITEMS:
            _thumbs.popitem(last=False)
    return result
