"""Offline harvest listing: the service worker, the offline page and what the outbox needs.

The service worker (static/sw.js) keeps the app shell and the farmer's pages on the phone;
static/outbox.js keeps harvests listed without signal in IndexedDB and sends them to
POST /api/v1/listings with their Idempotency-Key, authenticated by the browser session and its
CSRF token (see coop/api/common.py, token_or_session_required)."""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from flask import Response, current_app, jsonify, render_template, request, url_for
from flask_babel import format_date, format_time, get_locale, gettext as _
from flask_login import current_user
from flask_wtf.csrf import generate_csrf

from ..common.access import is_farmer
from ..common.assets import static_url
from ..common.models import utcnow
from .blueprint import bp

# Farmer pages kept on the phone for use without signal, by endpoint: the one list to extend
# (an endpoint not registered in this app is left out). The service worker keeps the last copy
# of each page seen; a copy served without signal shows when it was made ("Updated on …"),
# except the form, which is the same every time.
OFFLINE_PAGES = ("listings.mine", "listings.new", "pools.my_sales", "pools.my_deliveries",
                 "payouts.my_payments", "plots.my_plots")
UNDATED_PAGES = ("listings.new",)
# Pages of one object kept on the phone once opened with signal: a farmer's plot page and a
# technician's field page of a plot, where the boundary is walked without signal.
KEPT_WHEN_SEEN = ("plots.my_plot", "plots.field_page")


def offline_endpoints() -> list[str]:
    return [e for e in OFFLINE_PAGES if e in current_app.view_functions]


def seen_patterns() -> list[str]:
    """The KEPT_WHEN_SEEN pages' paths as regular expressions for the service worker (each
    id a run of digits): "^/my/plots/\\d+$"."""
    found = []
    for rule in current_app.url_map.iter_rules():
        if rule.endpoint in KEPT_WHEN_SEEN and "GET" in (rule.methods or ()):
            parts = re.split(r"<(?:int:)?\w+>", rule.rule)
            found.append("^" + r"\d+".join(re.escape(p) for p in parts) + "$")
    return sorted(found)


@bp.app_template_global("offline_dated")
def offline_dated() -> bool:
    """Whether this page is kept on the phone with the time it was made."""
    return (request.endpoint in offline_endpoints() or request.endpoint in KEPT_WHEN_SEEN) \
        and request.endpoint not in UNDATED_PAGES


@bp.app_template_global("page_made_at")
def page_made_at() -> str:
    """This copy's time, in the reader's language (shown only when served without signal)."""
    now = utcnow()
    return f"{format_date(now, 'medium')}, {format_time(now, 'short')}"
SHELL_FILES = ("minga.css", "outbox.js", "plotcapture.js", "icon.svg")


@bp.route("/sw.js")
def service_worker():
    """The service worker, from the root so that its scope is the whole site. Never cached
    for long: a new deploy must reach phones (the browser checks it on every navigation)."""
    shell = [static_url(name) for name in SHELL_FILES] + [url_for("listings.offline")]
    pages = [url_for(endpoint) for endpoint in offline_endpoints()]
    code = (Path(current_app.static_folder) / "sw.js").read_text(encoding="utf-8")
    version = hashlib.sha256((code + json.dumps(shell)).encode()).hexdigest()[:12]
    prelude = (f"var VERSION = {json.dumps(version)}; var SHELL = {json.dumps(shell)};\n"
               f"var PAGES = {json.dumps(pages)}; var SEEN = {json.dumps(seen_patterns())};\n"
               f"var OFFLINE = "
               f"{json.dumps(url_for('listings.offline'))}; var START = "
               f"{json.dumps(url_for('catalog.home'))};\n")
    response = Response(prelude + code, mimetype="text/javascript")
    response.headers["Service-Worker-Allowed"] = "/"
    response.headers["Cache-Control"] = "no-cache"
    return response


# The web app manifest's icons: real PNGs in static/ at the sizes they declare.
MANIFEST_ICONS = (("icon-192.png", 192), ("icon-512.png", 512))
THEME_COLOUR = "#1f5f3a"       # the brand green of static/minga.css
BACKGROUND_COLOUR = "#fbfaf6"  # the page background of static/minga.css


@bp.route("/manifest.webmanifest")
def manifest():
    """The web app manifest, so a farmer can add Minga to the phone's home screen. Opened at
    "/", which sends each person to their own start page (a farmer to their harvests)."""
    data = {
        "name": _("Minga — farmers' cooperatives"),
        "short_name": "Minga",
        "description": _("Minga: cooperatives of farmers who left illicit crops sell coffee, "
                         "cacao and more."),
        "lang": str(get_locale() or "es").replace("_", "-"),
        "start_url": url_for("catalog.home"),
        "scope": "/",
        "display": "standalone",
        "theme_color": THEME_COLOUR,
        "background_color": BACKGROUND_COLOUR,
        "icons": [{"src": static_url(name), "sizes": f"{size}x{size}", "type": "image/png",
                   "purpose": "any"} for name, size in MANIFEST_ICONS],
    }
    response = Response(json.dumps(data, ensure_ascii=False),
                        mimetype="application/manifest+json")
    # Its words follow the visitor's language (the session's choice or the browser's).
    response.headers["Cache-Control"] = "private, max-age=3600"
    response.vary.add("Accept-Language")
    return response


@bp.route("/offline")
def offline():
    """What the service worker shows for a page it does not keep, without signal."""
    response = current_app.make_response(render_template("listings/offline.html"))
    # Not the user's data (the service worker stores it once per version); keep it out of
    # shared caches all the same, since the header shows who is logged in.
    response.headers["Cache-Control"] = "private, no-cache"
    return response


@bp.route("/my/outbox/session")
def outbox_session():
    """Who is logged in and a CSRF token for the outbox to send with, read just before sending
    (the token in a page kept offline for days may belong to a session that ended)."""
    if not getattr(current_user, "is_authenticated", False):
        return jsonify(error={"code": "unauthorized", "message": _("Log in first."),
                              "fields": {}}), 401
    if not is_farmer(current_user):
        return jsonify(error={"code": "forbidden", "message": _("Only farmer members can "
                                                                "list harvests."),
                              "fields": {}}), 403
    response = jsonify(user_id=current_user.id, csrf_token=generate_csrf())
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.app_template_global("outbox_strings")
def outbox_strings() -> dict:
    """The outbox's words, translated here so the script carries none of its own."""
    return {
        "waiting_one": _("1 harvest waiting to send"),
        "waiting_many": _("{n} harvests waiting to send"),
        "refused_count": _("{n} not accepted"),
        "pending": _("Waiting to send"),
        "sending": _("Sending…"),
        "refused": _("Not accepted:"),
        "sent": _("Harvest sent."),
        "sent_many": _("{n} harvests sent."),
        "saved": _("Saved on this phone. It will be sent when there is signal."),
        "offline": _("No signal now. Your harvests wait on this phone and are sent when the "
                     "signal returns."),
        "login": _("Log in again to send the harvests waiting on this phone."),
        "failed": _("Could not send now. Minga will try again."),
        "edit": _("Correct"),
        "resend": _("Send again"),
        "delete": _("Delete"),
        "confirm_delete": _("Delete this harvest from the phone? It has not been sent."),
        "editing": _("You are correcting a harvest that was not accepted. Save to send it "
                     "again."),
        "photo_kept": _("The photo taken before is kept unless you choose another."),
        "required": _("Fill in this field."),
        "kg": _("kg"),
    }
