"""A second, explicit step before an irreversible action, without JavaScript.

The first POST of a form validates it and answers a confirmation page: what will happen (the
figures a domain's `preview_*` service computed, read-only), a "Yes, do it" button that posts
the same data again with a signed confirmation token, and a "Back" link. Only a POST carrying
a valid token for the same user, the same action, the same data and the same figures acts.
A missing, tampered or expired token, or figures that changed since the page was shown
(another buyer ordered, a delivery was recorded), shows the confirmation again and does
nothing. The token is signed with the app's secret; the CSRF token still protects both POSTs.

    step = confirm.check(f"pools.close:{pool.id}", preview)
    if not step.confirmed:
        return step.render("pools/confirm_close.html", back=url_for(...), preview=preview)
    ... act ...

Previews hold plain values (ints, strings, tuples, dataclasses of those), never ORM objects:
their repr is what the token binds.

The JSON API does not use this: an API client acts in one call."""
from __future__ import annotations

import hashlib

from flask import current_app, render_template, request
from flask_babel import gettext as _
from flask_login import current_user
from itsdangerous import BadData, URLSafeTimedSerializer

from . import web

TOKEN_FIELD = "confirm_token"
BUTTON = "confirm"          # the "Yes" button's name: a browser posts it, it is not data
MAX_AGE_SECONDS = 30 * 60
_NOT_DATA = {"csrf_token", TOKEN_FIELD, BUTTON}


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="minga.confirm")


def _digest(value) -> str:
    return hashlib.sha256(repr(value).encode("utf-8")).hexdigest()


def posted_data(replace: dict | None = None) -> list[tuple[str, str]]:
    """The form's fields as posted (no CSRF token, no confirmation token), sorted; `replace`
    sets fields the page must carry differently (an uploaded file's text)."""
    replace = replace or {}
    items = [(k, v) for k, v in request.form.items(multi=True)
             if k not in _NOT_DATA and k not in replace]
    items += [(k, v) for k, v in replace.items() if v is not None]
    return sorted(items)


class Step:
    """The confirmation state of one POST: `confirmed` (act now) or not (render the page)."""

    def __init__(self, action: str, figures, data: dict | None = None):
        self.action = action
        self.fields = posted_data(data)
        self._payload = {"a": action, "u": getattr(current_user, "id", None),
                         "d": _digest(self.fields), "p": _digest(figures)}
        self.notice = None
        self.confirmed = False
        self.key = None
        token = request.form.get(TOKEN_FIELD)
        if not token:
            return
        try:
            got = _serializer().loads(token, max_age=MAX_AGE_SECONDS)
        except BadData:
            self.notice = _("This confirmation is no longer valid. Check the figures and "
                            "confirm again.")
            return
        if not isinstance(got, dict) or any(got.get(k) != self._payload[k]
                                            for k in ("a", "u", "d")):
            self.notice = _("The details do not match what was shown. Check them and confirm "
                            "again.")
        elif got.get("p") != self._payload["p"]:
            self.notice = _("The figures changed since the page was shown. Check them again "
                            "and confirm.")
        else:
            self.confirmed = True
            # One key per confirmation page: a double tap on "Yes" is the same request.
            self.key = "confirm:" + hashlib.sha256(token.encode()).hexdigest()[:40]

    @property
    def token(self) -> str:
        return _serializer().dumps(self._payload)

    def render(self, template: str, *, back: str, action_url: str | None = None,
               yes: str | None = None, status: int = 200, **context):
        self.back = back
        self.action_url = action_url or request.path
        self.yes = yes or _("Yes, do it")
        web.discard()  # the confirmation page acts on nothing
        return render_template(template, confirm=self, **context), status


def check(action: str, figures, data: dict | None = None) -> Step:
    """The Step of the current POST for `action` (name and object id) with these figures."""
    return Step(action, figures, data)
