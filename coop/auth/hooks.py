"""What auth needs from the domains above it, wired by create_app (register_domain_hooks):
sending a message (the messages domain's `notify`, which itself reads auth's preferences) and
the countries of the platform's coops (cooperatives). A lower domain never imports those."""
from __future__ import annotations

from flask import current_app


def wire(app, *, notify, coop_countries) -> None:
    app.extensions["auth_notify"] = notify
    app.extensions["auth_coop_countries"] = coop_countries


def notify(user, template: str, **kwargs):
    """messages.notify(user, template, **kwargs): the Message row(s), sent after the commit."""
    return current_app.extensions["auth_notify"](user, template, **kwargs)


def coop_countries() -> list[str]:
    return current_app.extensions["auth_coop_countries"]()
