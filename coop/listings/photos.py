"""Harvest photos: accept JPEG, PNG or WebP up to 10 MB; re-encode small, without metadata."""
from __future__ import annotations

import hashlib
import io
import warnings
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
