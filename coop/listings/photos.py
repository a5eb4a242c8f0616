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
JPEG_FORMATS = {"JPEG", "MPO"}
# What one upload may cost a worker: about a second and 150 MB whatever the file
# (bench/photo_bench.py measures it). The pixel count is read from the header (Image.open
# decodes nothing) and refused before any decoding.
# - A JPEG is decoded reduced (libjpeg scales by 1/2, 1/4 or 1/8 while decoding, `draft`):
#   a 40 MP baseline JPEG costs ~25 MB, a progressive one ~125 MB (libjpeg keeps every
#   coefficient). Phone cameras save 12 to 24 MP (12.5 MP from 50/108/200 MP sensors)
#   unless set to a full-resolution mode, so 40 MP refuses no ordinary phone photo.
# - A PNG or WebP is decoded whole (4 bytes a pixel, copies to shrink and for alpha):
#   8 MP costs ~50-80 MB (PNG) to ~125 MB (WebP). Phones save screenshots (3-5 MP) and
#   edited pictures this way, never a camera photo of 50 MP.
# A 7071x7071 PNG of one colour (160 KB, 50 MP) is a decompression bomb: refused unread.
MAX_JPEG_PIXELS = 40_000_000
MAX_OTHER_PIXELS = 8_000_000
# Pillow's own guard, for any image opened in this process: a warning above this count
# (made an error below), DecompressionBombError above twice it.
Image.MAX_IMAGE_PIXELS = MAX_JPEG_PIXELS


@dataclass
class ProcessedPhoto:
    data: bytes
    content_type: str
    width: int
    height: int
    digest: str


def _refuse(message: str) -> ValidationFailed:
    return ValidationFailed(message, code="invalid_photo", fields={"photo": [message]})


def _too_many_pixels(limit: int) -> ValidationFailed:
    return _refuse(_("The photo has more than %(mp)d megapixels. Take it again at the "
                     "camera's normal size.", mp=limit // 1_000_000))


def process_photo(raw: bytes) -> ProcessedPhoto:
    """Check the size and pixel count, decode (a JPEG reduced), shrink to PHOTO_MAX_SIDE,
    orient and re-encode as WebP. Drops EXIF/GPS and ICC."""
    limit = current_app.config["PHOTO_MAX_BYTES"]
    if not raw:
        raise _refuse(_("The photo is empty."))
    if len(raw) > limit:
        raise _refuse(_("The photo is larger than 10 MB. Take it again at a lower resolution."))
    side = current_app.config["PHOTO_MAX_SIDE"]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(raw))  # the header only
            if image.format not in ACCEPTED:
                raise _refuse(_("Send the photo as JPEG, PNG or WebP."))
            most = MAX_JPEG_PIXELS if image.format in JPEG_FORMATS else MAX_OTHER_PIXELS
            if image.width * image.height > most:
                raise _too_many_pixels(most)
            ratio = side / max(image.size)
            if image.format in JPEG_FORMATS and ratio < 1:
                # Decode at the smallest of 1/2, 1/4, 1/8 that still covers the final size.
                image.draft("RGB", (max(1, int(image.width * ratio)),
                                    max(1, int(image.height * ratio))))
            if image.mode not in ("RGB", "RGBA"):  # decodes (a JPEG reduced)
                image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
            # Shrunk first (decoding happens here), turned upright after: the bounding box
            # is a square, so the order gives the same photo with a fraction of the memory.
            image.thumbnail((side, side), Image.Resampling.LANCZOS)
            image = ImageOps.exif_transpose(image)
    except ValidationFailed:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's guard fired while reading the header (more than MAX_JPEG_PIXELS).
        raise _too_many_pixels(MAX_JPEG_PIXELS if raw[:2] == b"\xff\xd8" else MAX_OTHER_PIXELS)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise _refuse(_("That file is not a photo Minga can read. Send a JPEG, PNG or WebP."))
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
