"""What one photo upload may cost a worker (issue 10 §5): the pixel count is read from the
header and refused before anything is decoded (a 7071x7071 PNG of one colour is 160 KB
and 50 megapixels); a phone's JPEG is decoded reduced (`draft`), and its thumbnails are
made from the stored photo. Time and memory are measured by bench/photo_bench.py, not here."""
from __future__ import annotations

import io
import struct
import zlib
from datetime import date, timedelta

import pytest
from PIL import Image, ImageFile
from sqlalchemy import func, select

from coop.common.errors import ValidationFailed
from coop.extensions import db
from coop.listings import photos
from coop.listings.models import Listing, ListingPhoto


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def one_colour_png(width: int, height: int, rgb=(40, 120, 30)) -> bytes:
    """A real, complete RGB PNG of one colour, written row by row without Pillow (no 150 MB
    image in the test's memory): the first row filtered None, every other row "Up" (all
    zeros), which zlib squeezes to almost nothing."""
    stream = zlib.compressobj(9)
    parts = [stream.compress(b"\x00" + bytes(rgb) * width)]
    up_row = b"\x02" + b"\x00" * (width * 3)
    block = up_row * 64
    left = height - 1
    while left > 0:
        n = min(64, left)
        parts.append(stream.compress(block if n == 64 else up_row * n))
        left -= n
    parts.append(stream.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", b"".join(parts))
            + _chunk(b"IEND", b""))


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small JPEG whose frame header (SOF0) claims other dimensions."""
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 180, 20)).save(out, format="JPEG")
    raw = bytearray(out.getvalue())
    sof = raw.index(b"\xff\xc0")
    raw[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(raw)


def phone_jpeg(size=(4000, 3000)) -> bytes:
    """A 12 MP photo as a phone camera saves it (4000x3000, baseline JPEG)."""
    gradient = Image.linear_gradient("L").resize(size)
    image = Image.merge("RGB", (gradient, gradient.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
                                gradient))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=88)
    return out.getvalue()


@pytest.fixture(scope="module")
def bomb() -> bytes:
    raw = one_colour_png(7071, 7071)
    assert 100_000 < len(raw) < 250_000  # the size of the upload that took 6.8 s and 420 MB
    return raw


@pytest.fixture(scope="module")
def twelve_mp() -> bytes:
    return phone_jpeg()


@pytest.fixture
def decodes(monkeypatch):
    """The size of every image Pillow decodes while the test runs."""
    seen: list[tuple[str, tuple[int, int]]] = []
    real = ImageFile.ImageFile.load

    def load(self):
        if self.tile:
            seen.append((self.format, self.size))
        return real(self)
    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    return seen


def refusal(raw: bytes) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as caught:
        photos.process_photo(raw)
    assert caught.value.code == "invalid_photo" and caught.value.status == 422
    return caught.value


def test_a_50_megapixel_png_of_one_colour_is_refused_before_it_is_decoded(app, bomb, decodes):
    with pytest.warns(Image.DecompressionBombWarning):
        assert Image.open(io.BytesIO(bomb)).size == (7071, 7071)  # a real image, not a lie
    error = refusal(bomb)
    assert "more than 8 megapixels" in error.message
    assert error.fields == {"photo": [error.message]}
    assert decodes == []


@pytest.mark.parametrize("width,height", [(4000, 2001), (7071, 7071), (100_000, 100_000)])
def test_a_png_above_8_megapixels_is_refused_unread(app, decodes, width, height):
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    raw = (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b""))
           + _chunk(b"IEND", b""))
    assert "more than 8 megapixels" in refusal(raw).message
    assert decodes == []


def test_a_webp_above_8_megapixels_is_refused_unread(app, decodes):
    out = io.BytesIO()
    Image.new("RGB", (4000, 2001), (40, 120, 30)).save(out, format="WEBP", quality=10)
    assert "more than 8 megapixels" in refusal(out.getvalue()).message
    assert decodes == []


def test_a_png_of_8_megapixels_is_stored(app):
    photo = photos.process_photo(one_colour_png(4000, 2000))
    assert (photo.width, photo.height) == (1280, 640)


@pytest.mark.parametrize("width,height", [(8000, 6000), (7071, 7071), (40_000, 40_000)])
def test_a_jpeg_above_40_megapixels_is_refused_unread(app, decodes, width, height):
    raw = jpeg_claiming(width, height)
    if width * height < 2 * photos.MAX_JPEG_PIXELS:
        with pytest.warns(Image.DecompressionBombWarning):
            assert Image.open(io.BytesIO(raw)).size == (width, height)
    assert "more than 40 megapixels" in refusal(raw).message
    assert decodes == []


def test_a_jpeg_of_40_megapixels_is_not_refused_for_its_pixels(app):
    # The header says 8000x5000; the data is a 16x16 picture's (libjpeg fills the rest).
    photo = photos.process_photo(jpeg_claiming(8000, 5000))
    assert (photo.width, photo.height) == (1280, 800)


def test_a_12_megapixel_phone_jpeg_is_decoded_at_half_size(app, twelve_mp, decodes):
    photo = photos.process_photo(twelve_mp)
    assert (photo.width, photo.height) == (1280, 960)
    # libjpeg scaled while decoding: 2000x1500 (1/2 still covers 1280x960), not 4000x3000.
    assert decodes == [("JPEG", (2000, 1500))]
    assert Image.open(io.BytesIO(photo.data)).format == "WEBP"


def test_a_bigger_phone_jpeg_is_decoded_smaller_still(app, decodes):
    photo = photos.process_photo(phone_jpeg((7200, 5400)))  # 38.9 MP: a quarter of each side
    assert (photo.width, photo.height) == (1280, 960)
    assert decodes == [("JPEG", (1800, 1350))]


def test_pillow_refuses_a_bomb_anywhere_in_the_process(app, bomb):
    # Pillow's own guard is set too, for any other code that opens an image.
    assert Image.MAX_IMAGE_PIXELS == photos.MAX_JPEG_PIXELS
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(one_colour_png(9000, 9000)))


# ---------------------------------------------------------------- through the form and the API


def form(photo: bytes, filename: str):
    return {"product": "cacao/export", "quantity_kg": "250",
            "harvested_on": (date.today() - timedelta(days=2)).isoformat(),
            "collection_point": "Acopio central", "notes": "",
            "photo": (io.BytesIO(photo), filename, "image/png")}


def stored() -> tuple[int, int]:
    db.session.expire_all()
    return (db.session.scalar(select(func.count()).select_from(Listing)),
            db.session.scalar(select(func.count()).select_from(ListingPhoto)))


@pytest.fixture
def farmer(make_coop, make_farmer):
    return make_farmer(make_coop(name="Cooperativa Nuevo Horizonte"))


def test_the_bomb_through_the_form_is_a_clear_422_that_keeps_the_input(client, login, farmer,
                                                                       bomb):
    login(farmer)
    client.get("/lang/en")
    response = client.post("/my/listings/new", data=form(bomb, "cosecha.png"),
                           content_type="multipart/form-data")
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "more than 8 megapixels" in body and "normal size" in body
    assert 'value="250"' in body and 'value="Acopio central"' in body
    assert stored() == (0, 0)


def test_the_bomb_through_the_api_is_a_422_in_spanish(client, farmer, token, bomb):
    data = {"crop": "coffee", "grade": "sca85", "quantity_kg": "12.5",
            "harvested_on": (date.today() - timedelta(days=2)).isoformat(),
            "collection_point": "Vereda El Tambo",
            "photo": (io.BytesIO(bomb), "cosecha.png", "image/png")}
    from tests.support.listings import ensure_collection_point
    ensure_collection_point(farmer, None, "Vereda El Tambo")
    db.session.commit()
    response = client.post("/api/v1/listings", data=data, content_type="multipart/form-data",
                           headers={**token(farmer), "Idempotency-Key": "bomb-1",
                                    "Accept-Language": "es-CO"})
    assert response.status_code == 422
    error = response.json["error"]
    assert error["code"] == "invalid_photo"
    assert "más de 8 megapíxeles" in error["fields"]["photo"][0]
    assert stored() == (0, 0)


def test_a_12_megapixel_photo_through_the_form_is_stored_and_its_thumbnails_made(
        client, login, farmer, twelve_mp):
    login(farmer)
    response = client.post("/my/listings/new", data=form(twelve_mp, "IMG_0001.jpg"),
                           content_type="multipart/form-data")
    assert response.status_code == 302
    assert stored() == (1, 1)
    photo = db.session.scalars(select(ListingPhoto)).one()
    assert (photo.width, photo.height) == (1280, 960)
    listing = db.session.scalars(select(Listing)).one()
    for width in photos.THUMB_WIDTHS:
        thumb = client.get(f"/listings/{listing.id}/photo/{width}")
        assert thumb.status_code == 200 and thumb.mimetype == "image/webp"
        image = Image.open(io.BytesIO(thumb.data))
        assert image.size == (width, photos.thumbnail_height(width))
