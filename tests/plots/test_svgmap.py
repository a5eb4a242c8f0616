import json
import math
import re
import xml.etree.ElementTree as ET

from coop.plots.svgmap import Shape, render

NS = "{http://www.w3.org/2000/svg}"


def _square(lon=-76.6, lat=2.44, n=50, r=0.0006):
    ring = [[round(lon + r * math.cos(2 * math.pi * i / n), 7),
             round(lat + r * math.sin(2 * math.pi * i / n), 7)] for i in range(n)]
    ring.append(ring[0])
    return {"type": "Polygon", "coordinates": [ring]}


def _svg(markup):
    root = ET.fromstring(str(markup))  # the wrapper div is XML too
    return root.find(NS + "svg") if root.tag != NS + "svg" else root


def test_valid_xml_escaped_names_and_list():
    m = render([Shape("1", "<script>&\"x", json.dumps(_square()), True),
                Shape("2", "Loma", {"type": "Point", "coordinates": [-76.601, 2.441]}, False)])
    s = str(m)
    assert "<script>" not in s and "&lt;script&gt;" in s
    root = ET.fromstring(s)
    svg = _svg(m)
    assert svg.get("role") == "img" and svg.find(NS + "title") is not None
    assert len(root.findall(".//li")) == 2
    assert 'stroke-dasharray="6 4"' in s  # the incomplete point is dashed


def test_fifty_vertices_small_and_rounded():
    s = str(render([Shape("1", "A", _square(n=50), True)]))
    assert len(s) < 4000
    d = re.search(r' d="(M[^"]+Z)"', s).group(1)
    assert not re.search(r"\d\.\d\d", d)


def test_projected_shape_is_round_not_squashed():
    s = str(render([Shape("1", "A", _square(n=60, r=0.001), True)], width=400, height=400))
    d = re.search(r' d="(M[^"]+Z)"', s).group(1)
    pts = [tuple(map(float, p.split())) for p in d[1:-1].split("L")]
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    w, h = max(xs) - min(xs), max(ys) - min(ys)
    # a circle in lon/lat at 2.44° stays round once scaled by cos(lat); inside the viewBox
    assert abs(w / h - math.cos(math.radians(2.44))) < 0.02
    assert min(xs) >= 0 and max(xs) <= 400 and min(ys) >= 0 and max(ys) <= 400


def test_empty():
    s = str(render([Shape("1", "A", None, False)]))
    assert "<svg" not in s and "<li>" in s
