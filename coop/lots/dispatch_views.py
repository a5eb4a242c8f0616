"""A lot's journey pages (coop/lots/dispatch.py holds the rules): the coop's page (the manager
marks the steps; the treasurer reads), the buyers' page (each step; confirm receipt, report a
problem) and the farmer's (their kilograms left). Anyone else: 404."""
from __future__ import annotations

import secrets
from datetime import date

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..common import confirm, web
from ..common.access import roles_in
from . import dispatch
from . import services as lots
from .dispatch_forms import STEP_FORMS, ProblemForm, ReceiptForm

bp = Blueprint("dispatch", __name__)


# ---------------------------------------------------------------- the coop's page

def _manage_page(lot, posted=None, form=None, status=200):
    """The lot's journey for its coop's staff; the manager gets the next step's form (the one
    just posted keeps what was typed)."""
    j = dispatch.journey(lot)
    can_act = "manager" in roles_in(current_user, lot.coop_id)
    step_form = None
    if can_act and j.next_step:
        step_form = form if posted == j.next_step and form is not None \
            else STEP_FORMS[j.next_step](formdata=None)
    return render_template("lots/dispatch_manage.html", lot=lot, j=j, can_act=can_act,
                           step_form=step_form), status


@bp.route("/manage/lots/<int:lot_id>/dispatch")
@web.unit_of_work
def manage(lot_id):
    return _manage_page(lots.managed_lot(current_user, lot_id))


@bp.route("/manage/lots/<int:lot_id>/dispatch/<any(ready, dispatched, delivered):step>",
          methods=["POST"])
@web.unit_of_work
def mark(lot_id, step):
    """The manager's next step, after a confirmation page (each step is for good). A step out
    of order is refused with a message; a bad field shows on it with what was typed."""
    lot = lots.managed_lot(current_user, lot_id, "manager")
    form = STEP_FORMS[step]()
    if not form.validate_on_submit():
        return _manage_page(lot, step, form, 422)
    web.refusal_on_form(form, lambda status: _manage_page(lot, step, form, status))
    fields = {name: getattr(form, name).data for name in
              ("carrier", "document_number", "on_date", "note") if hasattr(form, name)}
    preview = dispatch.preview_step(current_user, lot.id, step, **fields)
    check = confirm.check(f"dispatch.{step}:{lot.id}", preview)
    if not check.confirmed:
        return check.render("lots/dispatch_confirm.html", lot=lot, preview=preview,
                            day=date.fromisoformat(preview.on_date) if preview.on_date
                            else None, back=url_for("dispatch.manage", lot_id=lot.id),
                            yes=_("Yes, mark the lot “%(step)s”",
                                  step=_label(step)))
    dispatch.record_step(current_user, lot.id, step, **fields)
    flash(_("Lot %(code)s marked “%(step)s”.", code=lot.code, step=_label(step)), "info")
    return redirect(url_for("dispatch.manage", lot_id=lot.id))


def _label(kind):
    from ..common.labels import label
    return label(kind, "lot_event")


# ---------------------------------------------------------------- the buyers' page

def _buyer_page(lot, orders, receipt_form=None, problem_form=None, status=200):
    problem = problem_form or ProblemForm(formdata=None, prefix="problem")
    if not problem.key.data:
        problem.key.data = secrets.token_urlsafe(18)
    return render_template("lots/dispatch_buyer.html", lot=lot, j=dispatch.journey(lot),
                           orders=orders, buyer_id=current_user.buyer_id,
                           receipt_form=receipt_form or ReceiptForm(formdata=None,
                                                                    prefix="receipt"),
                           problem_form=problem), status


@bp.route("/lots/<int:lot_id>/delivery")
@web.unit_of_work
def buyer(lot_id):
    lot, orders = lots.bought_lot(current_user, lot_id)
    return _buyer_page(lot, orders)


@bp.route("/lots/<int:lot_id>/delivery/received", methods=["POST"])
@web.unit_of_work
def received(lot_id):
    """The buyer confirms the lot arrived, after a confirmation page."""
    lot, orders = lots.bought_lot(current_user, lot_id)
    form = ReceiptForm(prefix="receipt")
    if not form.validate_on_submit():
        return _buyer_page(lot, orders, receipt_form=form, status=422)
    web.refusal_on_form(form, lambda status: _buyer_page(lot, orders, receipt_form=form,
                                                         status=status))
    preview = dispatch.preview_receipt(current_user, lot.id, note=form.note.data)
    check = confirm.check(f"dispatch.received:{lot.id}", preview)
    if not check.confirmed:
        return check.render("lots/dispatch_confirm.html", lot=lot, preview=preview,
                            receipt=True, back=url_for("dispatch.buyer", lot_id=lot.id),
                            yes=_("Yes, the lot arrived"))
    dispatch.confirm_receipt(current_user, lot.id, note=form.note.data)
    flash(_("Thank you: receipt of lot %(code)s confirmed.", code=lot.code), "info")
    return redirect(url_for("dispatch.buyer", lot_id=lot.id))


@bp.route("/lots/<int:lot_id>/delivery/problem", methods=["POST"])
@web.unit_of_work
def problem(lot_id):
    """The buyer reports a problem with a note; the coop's managers are told."""
    lot, orders = lots.bought_lot(current_user, lot_id)
    form = ProblemForm(prefix="problem")
    if not form.validate_on_submit():
        if form.key.errors:
            form.key.data = ""  # a new key: the page's form can be sent again
            flash(_("This form has expired: reload the page and send it again."), "error")
        return _buyer_page(lot, orders, problem_form=form, status=422)
    web.refusal_on_form(form, lambda status: _buyer_page(lot, orders, problem_form=form,
                                                         status=status))
    dispatch.report_problem(current_user, lot.id, note=form.note.data, key=form.key.data)
    flash(_("Problem sent to the cooperative."), "info")
    return redirect(url_for("dispatch.buyer", lot_id=lot.id))


# ---------------------------------------------------------------- the farmer's page

@bp.route("/my/lots/<int:lot_id>/journey")
@web.unit_of_work
def journey(lot_id):
    mine = dispatch.farmer_journey(current_user, lot_id)
    return render_template("lots/dispatch_journey.html", lot=mine.journey.lot, j=mine.journey,
                           mine=mine)
