"""What auth needs from a domain above it, wired by create_app (register_domain_hooks): the
countries of the platform's coops (cooperatives imports auth, so auth never imports it)."""
from __future__ import annotations

from flask import current_app


def wire(app, *, coop_countries) -> None:
    app.extensions["auth_coop_countries"] = coop_countries


def coop_countries() -> list[str]:
    return current_app.extensions["auth_coop_countries"]()
