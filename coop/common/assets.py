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
