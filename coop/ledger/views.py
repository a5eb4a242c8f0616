from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from ..audit import services as audit
from ..common.access import require_member
from ..common.errors import DomainError
from ..cooperatives import services as coop_services
from ..extensions import db
from . import services
from .forms import ReverseForm
from .labels import PERSONAL_MEMO_KINDS

bp = Blueprint("ledger", __name__)
AUDIT_PAGE = 100  # events a page


@bp.route("/manage/coops/<int:coop_id>/ledger")
@login_required
def trial_balance(coop_id):
    require_member(coop_id, "treasurer", "manager")
    coop = coop_services.get_coop(coop_id)
    before = request.args.get("before", type=int)
    return render_template("ledger/trial_balance.html", coop=coop,
                           tb=services.trial_balance(coop),
                           entries=services.entries(coop, limit=50, before_id=before),
                           form=ReverseForm(), manual_kinds=services.MANUAL_KINDS,
                           personal_memo_kinds=PERSONAL_MEMO_KINDS)


@bp.route("/manage/coops/<int:coop_id>/ledger/entries/<int:entry_id>/reverse", methods=["POST"])
@login_required
def reverse(coop_id, entry_id):
    require_member(coop_id, "treasurer")
    coop = coop_services.get_coop(coop_id)
    form = ReverseForm()
    if not form.validate_on_submit():
        flash(_("Say why the entry is reversed."), "error")
        return redirect(url_for("ledger.trial_balance", coop_id=coop.id))
    try:
        entry = services.get_entry(coop, entry_id)
        reversal = services.reverse(coop, entry, key=f"reverse:{entry.id}", user=current_user,
                                    memo=form.reason.data)
        audit.record(coop.id, current_user, "ledger.reverse", "ledger_entry", entry.id,
                     {"entry": entry.id}, {"reversal": reversal.id,
                                           "reason": form.reason.data})
        db.session.commit()
        flash(_("Entry reversed."), "info")
    except DomainError as exc:
        db.session.rollback()
        if exc.status == 404:
            abort(404)
        flash(exc.message, "error")
    return redirect(url_for("ledger.trial_balance", coop_id=coop.id))


@bp.route("/manage/coops/<int:coop_id>/audit")
@login_required
def audit_log(coop_id):
    require_member(coop_id, "treasurer", "manager")
    coop = coop_services.get_coop(coop_id)
    events = audit.events(coop.id, limit=AUDIT_PAGE,
                          before_id=request.args.get("before", type=int))
    return render_template("ledger/audit.html", coop=coop, rows=audit.rows(coop, events),
                           older=events[-1].id if len(events) == AUDIT_PAGE else None)
