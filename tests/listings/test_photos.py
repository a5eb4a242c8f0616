"""Harvest photos: JPEG, PNG and WebP are re-encoded as small WebP without metadata; anything
else (and anything too big) is refused with a clear message, never a 500; a photo is shown
only to its farmer and the managers of its cooperative."""
from __future__ import annotations

import io
import os
import struct
import zlib
from datetime import date, timedelta
from html import unescape

import pytest
from PIL import Image, ImageCms
from sqlalchemy import func, select

from coop.common.errors import ValidationFailed
from coop.extensions import db
from coop.listings.models import Listing, ListingPhoto
from coop.listings.photos import process_photo

GPS_IFD = 0x8825
MAKE, MODEL, ORIENTATION, DATETIME = 0x010F, 0x0110, 0x0112, 0x0132


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


def picture(size=(2400, 1600), mode="RGB") -> Image.Image:
    """A picture with some structure, so encoders do real work."""
    image = Image.linear_gradient("L").resize(size)
    if mode == "RGB":
        image = Image.merge("RGB", (image, image.rotate(90).resize(size), image))
    return image.convert(mode) if image.mode != mode else image


def jpeg_with_exif(size=(2400, 1600), orientation=None) -> bytes:
    exif = Image.Exif()
    exif[MAKE] = "FarmPhone"
    exif[MODEL] = "Model-GPS-9000"
    exif[DATETIME] = "2026:11:02 06:30:00"
    if orientation:
        exif[ORIENTATION] = orientation
    gps = exif.get_ifd(GPS_IFD)
    gps[1] = "N"
    gps[2] = (2.0, 27.0, 13.5)   # latitude of a farm: exactly what must never leak
    gps[3] = "W"
    gps[4] = (76.0, 36.0, 7.25)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return encode(picture(size), "JPEG", exif=exif, icc_profile=icc, quality=90)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims enormous dimensions: a decompression bomb's calling card."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (width + 1) * 4, 9)  # a few rows; the rest would be zeros
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
            + chunk(b"IEND", b""))


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


# ---------------------------------------------------------------- re-encoding


@pytest.mark.parametrize("fmt,mode", [("JPEG", "RGB"), ("PNG", "RGB"), ("PNG", "RGBA"),
                                      ("WEBP", "RGB"), ("JPEG", "L"), ("PNG", "P"),
                                      ("PNG", "LA"), ("JPEG", "CMYK"), ("PNG", "I;16"),
                                      ("PNG", "1")])
def test_accepted_formats_are_reencoded_as_small_webp(app, fmt, mode):
    raw = encode(picture((3000, 2000), mode), fmt)
    photo = process_photo(raw)
    assert photo.content_type == "image/webp"
    image = decoded(photo.data)
    assert image.format == "WEBP"
    side = app.config["PHOTO_MAX_SIDE"]
    assert max(image.size) == side and (photo.width, photo.height) == image.size
    assert abs(image.width / image.height - 1.5) < 0.01  # shrunk, not distorted
    assert len(photo.data) < len(raw)
    import hashlib
    assert photo.digest == hashlib.sha256(photo.data).hexdigest()


def test_a_small_photo_is_not_enlarged(app):
    photo = process_photo(encode(picture((320, 240)), "PNG"))
    assert (photo.width, photo.height) == (320, 240)


def test_the_side_limit_comes_from_configuration(app):
    app.config["PHOTO_MAX_SIDE"] = 400
    try:
        photo = process_photo(encode(picture((1000, 500)), "JPEG"))
    finally:
        app.config["PHOTO_MAX_SIDE"] = 1280
    assert (photo.width, photo.height) == (400, 200)


def test_exif_gps_icc_and_xmp_are_stripped(app):
    raw = jpeg_with_exif()
    original = Image.open(io.BytesIO(raw))
    assert original.getexif().get_ifd(GPS_IFD)  # the upload really carries a location
    assert b"FarmPhone" in raw
    photo = process_photo(raw)
    image = decoded(photo.data)
    assert len(image.getexif()) == 0
    assert not image.getexif().get_ifd(GPS_IFD)
    for key in ("exif", "icc_profile", "xmp"):
        assert not image.info.get(key)
    for marker in (b"EXIF", b"Exif", b"ICCP", b"XMP ", b"FarmPhone", b"Model-GPS", b"2026:11:02"):
        assert marker not in photo.data


def test_xmp_in_a_webp_upload_is_stripped(app):
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><gps>2.4537,-76.6020</gps></x:xmpmeta>'
    raw = encode(picture((800, 600)), "WEBP", xmp=xmp, exif=Image.Exif().tobytes())
    assert b"76.6020" in raw
    photo = process_photo(raw)
    assert b"76.6020" not in photo.data and b"XMP " not in photo.data


def test_exif_orientation_is_applied_before_it_is_dropped(app):
    # Orientation 6: the camera was turned; the stored photo must stand upright.
    photo = process_photo(jpeg_with_exif(size=(1600, 800), orientation=6))
    assert (photo.width, photo.height) == (640, 1280)


def test_a_phone_camera_mpo_jpeg_is_accepted(app):
    # Many phones save JPEGs with a second, depth or preview frame: Pillow calls that MPO.
    first, second = picture((1200, 900)), picture((1200, 900)).rotate(180)
    raw = encode(first, "MPO", save_all=True, append_images=[second])
    assert Image.open(io.BytesIO(raw)).format == "MPO" and raw[:2] == b"\xff\xd8"
    photo = process_photo(raw)
    assert decoded(photo.data).format == "WEBP" and (photo.width, photo.height) == (1200, 900)


# ---------------------------------------------------------------- refusals


def refused(raw: bytes) -> str:
    with pytest.raises(ValidationFailed) as caught:
        process_photo(raw)
    error = caught.value
    assert error.code == "invalid_photo" and error.status == 422
    assert error.fields["photo"] == [error.message]
    return error.message


def test_more_than_10_mb_is_refused(app):
    raw = encode(picture((64, 64)), "JPEG")
    big = raw + b"\x00" * (10 * 1024 * 1024 + 1 - len(raw))
    assert "larger than 10 MB" in refused(big)


def test_exactly_10_mb_is_not_refused_for_its_size(app):
    raw = encode(picture((64, 64)), "JPEG")
    padded = raw + b"\x00" * (10 * 1024 * 1024 - len(raw))  # trailing bytes after the image
    assert process_photo(padded).content_type == "image/webp"


@pytest.mark.parametrize("name,raw,message", [
    ("gif", encode(picture((40, 40)), "GIF"), "JPEG, PNG or WebP"),
    ("bmp", encode(picture((40, 40)), "BMP"), "JPEG, PNG or WebP"),
    ("tiff", encode(picture((40, 40)), "TIFF"), "JPEG, PNG or WebP"),
    ("pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer\n%%EOF\n",
     "not a photo Minga can read"),
    ("random", os.urandom(4096), "not a photo Minga can read"),
    ("svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
     "not a photo Minga can read"),
    ("empty", b"", "empty"),
])
def test_other_files_are_refused_clearly(app, name, raw, message):
    assert message in refused(raw)


def test_a_truncated_jpeg_is_refused(app):
    raw = encode(picture((1600, 1200)), "JPEG", quality=95)
    assert "not a photo Minga can read" in refused(raw[: len(raw) // 2])
    assert "not a photo Minga can read" in refused(raw[:200])


def test_a_pdf_named_like_a_photo_is_refused(app):
    # The name and the declared type mean nothing; only the content counts.
    assert "not a photo" in refused(b"%PDF-1.4 fake.jpg" + b"\x00" * 100)


@pytest.mark.parametrize("width,height", [(100_000, 100_000), (8_000, 8_000), (1, 60_000_000)])
def test_decompression_bombs_are_refused_without_decoding(app, width, height):
    raw = png_header_only(width, height)
    assert len(raw) < 20_000
    message = refused(raw)
    assert "too many pixels" in message or "not a photo Minga can read" in message


# ---------------------------------------------------------------- through the form, and served


@pytest.fixture
def coop(make_coop):
    return make_coop(name="Cooperativa Nuevo Horizonte")


@pytest.fixture
def farmer(coop, make_farmer):
    return make_farmer(coop)


def upload(client, raw: bytes, filename="cosecha.jpg", mimetype="image/jpeg"):
    data = {"product": "cacao/export", "quantity_kg": "250",
            "harvested_on": (date.today() - timedelta(days=2)).isoformat(),
            "collection_point": "Acopio central", "notes": "",
            "photo": (io.BytesIO(raw), filename, mimetype)}
    return client.post("/my/listings/new", data=data, content_type="multipart/form-data")


def counts() -> tuple[int, int]:
    db.session.expire_all()
    return (db.session.scalar(select(func.count()).select_from(Listing)),
            db.session.scalar(select(func.count()).select_from(ListingPhoto)))


@pytest.mark.parametrize("raw,filename,message", [
    (b"GIF89a" + b"\x00" * 100, "foto.gif", "not a photo Minga can read"),
    (encode(picture((40, 40)), "GIF"), "foto.gif", "JPEG, PNG or WebP"),
    (b"%PDF-1.4\n%%EOF", "foto.jpg", "not a photo Minga can read"),
    (png_header_only(100_000, 100_000), "bomba.png", "not a photo Minga can read"),
    (b"\xff\xd8" + os.urandom(10 * 1024 * 1024), "grande.jpg", "larger than 10 MB"),
])
def test_bad_photos_through_the_form_keep_the_input_and_write_nothing(
        client, login, farmer, raw, filename, message):
    login(farmer)
    client.get("/lang/en")
    response = upload(client, raw, filename)
    assert response.status_code == 422
    body = unescape(response.get_data(as_text=True))
    assert message in body and 'value="250"' in body and 'value="Acopio central"' in body
    assert counts() == (0, 0)


def test_a_request_over_the_upload_limit_is_refused_clearly(client, login, farmer):
    login(farmer)
    client.get("/lang/en")
    response = upload(client, b"\xff\xd8" + b"\x00" * (12 * 1024 * 1024))
    assert response.status_code == 413
    assert "too large" in response.get_data(as_text=True)
    assert counts() == (0, 0)


def test_a_new_photo_replaces_the_old_one(client, login, farmer):
    login(farmer)
    assert upload(client, jpeg_with_exif((900, 600))).status_code == 302
    listing = db.session.scalars(select(Listing)).one()
    first = listing.photo_digest
    data = {"product": "cacao/export", "quantity_kg": "250",
            "harvested_on": listing.harvested_on.isoformat(), "collection_point": "Acopio central",
            "photo": (io.BytesIO(encode(picture((500, 500)), "PNG")), "b.png", "image/png")}
    response = client.post(f"/my/listings/{listing.id}/edit", data=data,
                           content_type="multipart/form-data")
    assert response.status_code == 302
    db.session.expire_all()
    photo = db.session.scalars(select(ListingPhoto)).one()
    assert photo.digest != first and (photo.width, photo.height) == (500, 500)
    assert db.session.get(Listing, listing.id).photo_digest == photo.digest


@pytest.fixture
def with_photo(client, login, farmer):
    login(farmer)
    assert upload(client, jpeg_with_exif((900, 600))).status_code == 302
    client.post("/logout")
    return db.session.scalars(select(Listing)).one()


def test_the_farmer_and_the_coops_managers_see_the_photo_with_an_etag(
        client, login, farmer, coop, with_photo, make_user):
    from coop.cooperatives import services as coops
    second_manager = make_user(name="Second manager")
    coops.grant_role(coop, second_manager, "manager")
    db.session.commit()
    url = f"/listings/{with_photo.id}/photo"
    for viewer in (farmer, coop.memberships[0].user, second_manager):
        login(viewer)
        response = client.get(url)
        assert response.status_code == 200
        assert response.mimetype == "image/webp"
        assert response.headers["ETag"] == f'"{with_photo.photo_digest}"'
        assert "private" in response.headers["Cache-Control"]
        assert decoded(response.data).format == "WEBP" and b"Exif" not in response.data
        again = client.get(url, headers={"If-None-Match": response.headers["ETag"]})
        assert again.status_code == 304 and again.data == b""
        stale = client.get(url, headers={"If-None-Match": '"something-else"'})
        assert stale.status_code == 200 and stale.data == response.data


def test_nobody_else_sees_the_photo(client, app, login, coop, with_photo, make_farmer, make_buyer,
                                    make_coop, make_user):
    from coop.cooperatives import services as coops
    url = f"/listings/{with_photo.id}/photo"
    anonymous = app.test_client().get(url)
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    treasurer = make_user(name="Treasurer")
    coops.grant_role(coop, treasurer, "treasurer")
    db.session.commit()
    other_coop = make_coop()
    outsiders = [make_farmer(coop, name="Neighbour"), make_buyer(), treasurer,
                 other_coop.memberships[0].user, make_farmer(other_coop)]
    for outsider in outsiders:
        login(outsider)
        response = client.get(url)
        assert response.status_code == 404, outsider.name
        assert response.mimetype == "text/html" and b"RIFF" not in response.data


def test_a_listing_without_a_photo_or_a_missing_listing_is_404(client, login, farmer,
                                                               make_listing):
    listing = make_listing(farmer)
    login(farmer)
    assert client.get(f"/listings/{listing.id}/photo").status_code == 404
    assert client.get("/listings/999999/photo").status_code == 404
