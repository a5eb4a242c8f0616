"""Photo upload benchmark (issue 10 §5): what one upload costs a worker, per kind of file.
Each case runs `process_photo` in a fresh Python process (so that one case's peak memory is
not another's): wall time of the call and the process's peak RSS (VmHWM, reset before the call) above its RSS before it (Pillow
allocates outside Python's allocator, so tracemalloc would not see it). Target: every case
under ~1 s and ~150 MB; the 7071x7071 PNG bomb refused at once.

    .venv/bin/python -m bench.photo_bench [--repeat 3] [--code OLDER_CHECKOUT]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def one_colour_png(width: int, height: int) -> bytes:
    stream = zlib.compressobj(9)
    parts = [stream.compress(b"\x00" + bytes((40, 120, 30)) * width)]
    up_row = b"\x02" + b"\x00" * (width * 3)
    for _ in range(height - 1):
        parts.append(stream.compress(up_row))
    parts.append(stream.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", b"".join(parts))
            + _chunk(b"IEND", b""))


def _picture(size, mode="RGB", texture=True):
    from PIL import Image
    if not texture:  # smooth: a PNG of a real photo this size would pass 10 MB
        gradient = Image.linear_gradient("L").resize(size)
        image = Image.merge("RGB", (gradient, gradient.transpose(Image.Transpose.ROTATE_180),
                                    gradient.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))
        return image.convert(mode) if mode != "RGB" else image
    gradient = Image.linear_gradient("L").resize(size)
    # Texture at a coarser scale, as a photo has (pure per-pixel noise makes 20 MB JPEGs).
    noise = Image.effect_noise((size[0] // 8, size[1] // 8), 60).resize(
        size, Image.Resampling.BILINEAR)
    image = Image.merge("RGB", (gradient, noise, gradient.transpose(
        Image.Transpose.FLIP_LEFT_RIGHT)))
    return image.convert(mode) if mode != "RGB" else image


def make_files(folder: Path) -> list[tuple[str, Path]]:
    from PIL import Image
    Image.MAX_IMAGE_PIXELS = None
    cases = []

    def save(name, label, image, fmt, **params):
        path = folder / name
        image.save(path, format=fmt, **params)
        cases.append((label, path))

    bomb = folder / "bomb.png"
    bomb.write_bytes(one_colour_png(7071, 7071))
    cases.append(("PNG 7071x7071 of one colour (50 MP, the bomb)", bomb))
    save("12.jpg", "JPEG 4000x3000 (12 MP phone photo)", _picture((4000, 3000)), "JPEG",
         quality=88)
    save("12p.jpg", "JPEG 4000x3000 progressive", _picture((4000, 3000)), "JPEG",
         quality=88, progressive=True)
    save("40.jpg", "JPEG 7300x5470 (39.9 MP)", _picture((7300, 5470)), "JPEG", quality=85)
    save("40p.jpg", "JPEG 7300x5470 progressive", _picture((7300, 5470)), "JPEG",
         quality=85, progressive=True)
    save("8.png", "PNG 3264x2448 RGB (8 MP)", _picture((3264, 2448), texture=False), "PNG")
    save("8a.png", "PNG 3264x2448 RGBA (8 MP)", _picture((3264, 2448), "RGBA", False), "PNG")
    save("8.webp", "WebP 3264x2448 (8 MP)", _picture((3264, 2448)), "WEBP", quality=80)
    save("8a.webp", "WebP 3264x2448 with alpha (8 MP)", _picture((3264, 2448), "RGBA"),
         "WEBP", quality=80)
    return cases


CHILD = r"""
import json, sys, time
from coop import create_app
from coop.common.errors import ValidationFailed
app = create_app("testing", SQLALCHEMY_DATABASE_URI="sqlite://")
raw = open(sys.argv[1], "rb").read()
with app.test_request_context():
    from coop.listings.photos import process_photo
    def status(field):
        for line in open("/proc/self/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1])
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # the peak (VmHWM) starts again from what is resident now
    before = status("VmRSS")
    start, cpu = time.perf_counter(), time.process_time()
    try:
        photo = process_photo(raw)
        outcome = f"stored {photo.width}x{photo.height} WebP, {len(photo.data) // 1024} KB"
    except ValidationFailed as exc:
        outcome = f"refused (422): {exc.message}"
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    after = status("VmHWM")
print(json.dumps({"seconds": elapsed, "cpu": cpu, "mb": (after - before) / 1024,
                  "outcome": outcome}))
"""


def measure(path: Path, code: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True,
                         text=True, check=True, cwd=code)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--code", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="the folder whose coop package is measured (e.g. an older "
                             "checkout, to compare); this repository by default")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="minga-photo-bench-") as tmp:
        cases = make_files(Path(tmp))
        print(f"process_photo, each case in a fresh process, best of {args.repeat}:")
        for label, path in cases:
            runs = [measure(path, args.code) for _ in range(args.repeat)]
            best = min(runs, key=lambda r: r["seconds"])
            mb = max(r["mb"] for r in runs)
            print(f"  {label}: file {os.path.getsize(path) / 1024:,.0f} KB, "
                  f"{best['seconds']:.2f} s ({best['cpu']:.2f} s CPU), peak RSS +{mb:.0f} MB"
                  f" — {best['outcome']}")


if __name__ == "__main__":
    main()
