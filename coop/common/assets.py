"""Fingerprinted URLs for static files (`static_url`, a template global and the service worker's
shell list)."""
from __future__ import annotations

import hashlib
from pathlib import Path

from flask import current_app, url_for

_static_hashes: dict[str, str] = {}


def static_url(filename: str) -> str:
    """A fingerprinted URL for a static file, so it can be cached for a year."""
    digest = _static_hashes.get(filename)
    if digest is None:
        path = Path(current_app.static_folder) / filename
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12] if path.exists() else "0"
        _static_hashes[filename] = digest
    return url_for("static", filename=filename, v=digest)


# (path, size, mtime_ns, encoding) -> the file compressed once at the highest level.
_compressed: dict[tuple, bytes] = {}


def _accepted(accept_encoding: str, algorithms) -> str | None:
    """The first of Minga's algorithms the client takes (q=0 refuses one)."""
    offered = {}
    for part in accept_encoding.lower().split(","):
        name, _sep, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        offered[name.strip()] = quality
    for algorithm in algorithms:
        if offered.get(algorithm, offered.get("*", 0.0)) > 0:
            return algorithm
    return None


def compress_static(response):
    """after_request: a fingerprinted static file (`?v=`, cached for a year) goes out
    compressed at the highest level (brotli STATIC_BR_LEVEL, gzip 9), compressed once per
    process and file version and kept in memory; Flask-Compress (cheap level, for dynamic
    pages) then leaves it alone since it carries its Content-Encoding."""
    from flask import request
    if request.endpoint != "static" or not request.args.get("v") \
            or response.status_code != 200 or "Content-Encoding" in response.headers:
        return response
    app = current_app
    if response.mimetype not in app.config.get("COMPRESS_MIMETYPES", ()):
        return response
    algorithm = _accepted(request.headers.get("Accept-Encoding", ""),
                          [a for a in app.config.get("COMPRESS_ALGORITHM", ["br", "gzip"])
                           if a in ("br", "gzip")])
    vary = response.headers.get("Vary")
    if not vary:
        response.headers["Vary"] = "Accept-Encoding"
    elif "accept-encoding" not in vary.lower():
        response.headers["Vary"] = f"{vary}, Accept-Encoding"
    if algorithm is None:
        return response
    from werkzeug.security import safe_join
    path = safe_join(app.static_folder, (request.view_args or {}).get("filename", ""))
    try:
        stat = Path(path).stat() if path else None
    except OSError:
        stat = None
    if stat is None:
        return response
    key = (path, stat.st_size, stat.st_mtime_ns, algorithm)
    body = _compressed.get(key)
    if body is None:
        raw = Path(path).read_bytes()
        if algorithm == "br":
            import brotli
            body = brotli.compress(raw, quality=int(app.config.get("STATIC_BR_LEVEL", 11)))
        else:
            import gzip
            body = gzip.compress(raw, compresslevel=9, mtime=0)
        _compressed[key] = body
    response.direct_passthrough = False
    response.set_data(body)
    response.headers["Content-Encoding"] = algorithm
    response.headers["Content-Length"] = str(len(body))
    etag, weak = response.get_etag()
    if etag and not weak:
        response.set_etag(f"{etag}:{algorithm}")
    return response
