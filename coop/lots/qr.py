"""The QR code on a lot's labels: drawn here with segno as inline SVG (no third-party
request, no image file), encoding the absolute URL of the lot's page, which answers only the
people allowed to see the lot (the code by itself reveals nothing)."""
from __future__ import annotations

import io
import re

import segno
from markupsafe import Markup

_OUTER = re.compile(r'^<svg[^>]*viewBox="([^"]+)"[^>]*>(.*)</svg>$', re.S)


def qr_svg(url: str) -> str:
    """The QR code of `url` as a standalone SVG (error correction M, 4-module quiet zone)."""
    out = io.BytesIO()
    segno.make(url, error="m").save(out, kind="svg", xmldecl=False, svgns=True, nl=False,
                                     scale=4, border=4, omitsize=True, svgclass="qr",
                                     lineclass="qrline")
    return out.getvalue().decode("ascii")


def qr_symbol(url: str, symbol_id: str) -> tuple[Markup, str]:
    """(an SVG holding the code as a <symbol id=symbol_id>, its viewBox): drawn once on the
    labels page, each label shows it with <use>, so a page of 300 labels stays small."""
    match = _OUTER.match(qr_svg(url))
    if match is None:  # segno's output changed shape: fail loudly, never print a wrong code
        raise RuntimeError("unexpected SVG from segno")
    view_box, inner = match.groups()
    return Markup(f'<svg xmlns="http://www.w3.org/2000/svg" class="qr-defs" aria-hidden="true" '
                  f'width="0" height="0"><symbol id="{symbol_id}" viewBox="{view_box}">'
                  f'{inner}</symbol></svg>'), view_box
