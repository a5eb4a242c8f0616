"""Weighing a page as a phone loads it: its bytes on the wire and every same-origin file it
references; logging in as a demo account."""
from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

BUDGET = 30 * 1024
ACCEPT = {"Accept-Encoding": "gzip, br", "Accept-Language": "es-CO,es;q=0.9"}
DEMO_PASSWORD = "minga-demo-pass"
PHOTO = re.compile(r"^/listings/\d+/photo")


class References(HTMLParser):
    """Every URL a page names, and which of them the browser fetches on load."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []      # every href/src/action/srcset/poster
        self.loads: list[str] = []     # fetched on load: stylesheets, icons, scripts, images
        self.lazy_images: list[dict] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for name in ("href", "src", "action", "poster", "data"):
            if a.get(name):
                self.urls.append(a[name])
        for name in ("srcset", "imagesrcset"):
            for part in (a.get(name) or "").split(","):
                if part.strip():
                    self.urls.append(part.strip().split()[0])
        rel = set((a.get("rel") or "").lower().split())
        if tag == "link" and rel & {"stylesheet", "icon", "apple-touch-icon", "preload",
                                    "manifest", "modulepreload"}:
            self.loads.append(a["href"])
        elif tag == "script" and a.get("src"):
            self.loads.append(a["src"])
        elif tag == "img" and a.get("src"):
            if PHOTO.match(a["src"]):
                self.lazy_images.append(a)
            else:
                self.loads.append(a["src"])


def transferred(response) -> int:
    """Bytes on the wire: status line, headers and the (compressed) body."""
    head = f"HTTP/1.1 {response.status}\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in response.headers.items()) + "\r\n"
    return len(head.encode()) + len(response.data)


def off_site(url: str) -> bool:
    parts = urlsplit(url)
    return bool(parts.netloc) or (parts.scheme not in ("", "data", "mailto", "tel"))


def weigh(client, path: str) -> tuple[int, dict]:
    page = client.get(path, headers=ACCEPT)
    assert page.status_code == 200, (path, page.status_code)
    assert page.headers.get("Content-Encoding") in ("br", "gzip"), path
    refs = References()
    import brotli
    import gzip as gz
    raw = (brotli.decompress(page.data) if page.headers["Content-Encoding"] == "br"
           else gz.decompress(page.data)).decode()
    refs.feed(raw)
    sizes = {path: transferred(page)}
    queue = list(dict.fromkeys(refs.loads))
    seen = set()
    while queue:
        url = queue.pop(0)
        if url in seen:
            continue
        seen.add(url)
        assert not off_site(url), (path, url)
        sub = client.get(url, headers=ACCEPT)
        assert sub.status_code == 200, (path, url, sub.status_code)
        sizes[url] = transferred(sub)
        if sub.mimetype == "text/css":
            css = sub.data
            if sub.headers.get("Content-Encoding") == "br":
                css = brotli.decompress(css)
            elif sub.headers.get("Content-Encoding") == "gzip":
                css = gz.decompress(css)
            for ref in re.findall(r"url\(\s*['\"]?([^'\")]+)", css.decode()):
                if not ref.startswith("data:"):
                    queue.append(ref)
    offsite = [u for u in refs.urls if off_site(u)]
    assert not offsite, (path, offsite)
    for image in refs.lazy_images:
        assert image.get("loading") == "lazy" and image.get("width"), (path, image)
    return sum(sizes.values()), sizes


def log_in(client, email):
    client.post("/logout")
    response = client.post("/login", data={"login": email, "password": DEMO_PASSWORD})
    assert response.status_code == 302, response.data[:300]
