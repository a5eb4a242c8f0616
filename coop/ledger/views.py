from datetime import date

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..audit import services as audit
from ..common.ids import query_id
from ..common import web
from . import services
from .forms import ReverseForm
from ..audit.labels import AUDIT_ACTIONS
from .labels import ACCOUNTS, ENTRY_KINDS, PERSONAL_MEMO_KINDS

bp = Blueprint("ledger", __name__)


def _day(text):
    """A YYYY-MM-DD from a filter, or None for anything else."""
    try:
        day = date.fromisoformat(text) if text and len(text) == 10 else None
    except ValueError:
        return None
    return day if day and 2000 <= day.year <= 2100 else None
AUDIT_PAGE = 100  # events a page


@bp.route("/manage/coops/<int:coop_id>/ledger")
@web.coop_view("treasurer", "manager")
def trial_balance(coop):
    args = request.args
    before = args.get("before", type=query_id)  # the older links' parameter, still read
    kind = args.get("kind") if args.get("kind") in ENTRY_KINDS else None
    account = args.get("account") if args.get("account") in ACCOUNTS else None
    since, until = _day(args.get("from")), _day(args.get("to"))
    found = services.entries_page(coop, args.get("cursor"), kind=kind, account=account,
                                  since=since, until=until, before_id=before)
    entries = found.items
    filters = {"kind": kind, "account": account, "from": since and since.isoformat(),
               "to": until and until.isoformat(), "before": before}
    return render_template("ledger/trial_balance.html", coop=coop,
                           tb=services.trial_balance_summary(coop), entries=entries,
                           found=found, filters=filters, kinds=list(ENTRY_KINDS),
                           account_codes=list(ACCOUNTS),
                           names=services.entry_account_names(entries),
                           form=ReverseForm(), manual_kinds=services.MANUAL_KINDS,
                           personal_memo_kinds=PERSONAL_MEMO_KINDS)


@bp.route("/manage/coops/<int:coop_id>/ledger/entries/<int:entry_id>/reverse", methods=["POST"])
@web.coop_view("treasurer")
def reverse(coop, entry_id):
    form = ReverseForm()
    back = url_for("ledger.trial_balance", coop_id=coop.id)
    if not form.validate_on_submit():
        flash(_("Say why the entry is reversed."), "error")
        return redirect(back)
    web.refusal_flashed(back, passing=404)
    entry = services.get_entry(coop, entry_id)
    reversal = services.reverse(coop, entry, key=f"reverse:{entry.id}", user=current_user,
                                memo=form.reason.data)
    # An entry is reversed once: a repeated POST gets that reversal back from the service and
    # writes no second audit event (with another reason).
    audit.record_once(coop.id, current_user, "ledger.reverse", "ledger_entry", entry.id,
                      {"entry": entry.id}, {"reversal": reversal.id, "reason": form.reason.data})
    flash(_("Entry reversed."), "info")
    return redirect(back)


@bp.route("/manage/coops/<int:coop_id>/audit")
@web.coop_view("treasurer", "manager")
def audit_log(coop):
    action = request.args.get("action")
    action = action if action in AUDIT_ACTIONS else None
    before = request.args.get("before", type=query_id)
    events = audit.events(coop.id, limit=AUDIT_PAGE, before_id=before, action=action)
    return render_template("ledger/audit.html", coop=coop, rows=audit.rows(coop, events),
                           action=action, actions=list(AUDIT_ACTIONS), before=before,
                           older=events[-1].id if len(events) == AUDIT_PAGE else None)
