"""Messages pages: what a person was told, what a coop's people were told (its managers and
treasurers), and the unsubscribe link of an e-mail (RFC 8058 one-click POST too)."""
from __future__ import annotations

from flask import Blueprint, abort, render_template, request
from flask_login import current_user, login_required

from ..common import web
from ..common.forms import Form
from ..common.ids import query_id
from . import services
from .labels import TOPICS

bp = Blueprint("messages", __name__)
# What mail programs and SMS providers call without a browser's form (one-click unsubscribe,
# signed delivery reports): no CSRF token, the signed token or signature instead.
public_bp = Blueprint("messages_public", __name__)
public_bp.csrf_exempt = True


def _before() -> int | None:
    """The page's cursor (?before=<id>): a bad one is the first page."""
    try:
        return query_id(request.args.get("before"))
    except ValueError:
        return None


@bp.route("/account/messages")
@login_required
def mine():
    rows = services.of_person(current_user.id, before_id=_before())
    return render_template("messages/list.html", rows=rows, coop=None,
                           more=len(rows) == 50)


@bp.route("/manage/coops/<int:coop_id>/messages")
@web.coop_view("manager", "treasurer")
def of_coop(coop):
    rows = services.of_coop(coop.id, before_id=_before())
    names = services.names_of({row.user_id for row in rows})
    return render_template("messages/list.html", rows=rows, coop=coop, names=names,
                           more=len(rows) == 50)


@public_bp.route("/messages/unsubscribe/<token>", methods=["GET", "POST"])
@web.unit_of_work
def unsubscribe(token):
    found = services.read_unsubscribe_token(token)
    if found is None:
        abort(404)
    user_id, topic = found
    form = Form()
    # Mail programs' one-click unsubscribe POSTs "List-Unsubscribe=One-Click" without a form.
    one_click = request.method == "POST" and \
        request.form.get("List-Unsubscribe") == "One-Click"
    if one_click or (request.method == "POST" and form.validate_on_submit()):
        services.unsubscribe(user_id, topic)
        return render_template("messages/unsubscribe.html", done=True, form=form,
                               topic=TOPICS[topic])
    return render_template("messages/unsubscribe.html", done=False, form=form,
                           topic=TOPICS[topic])
