"""Treasurer pages (payables, batches, files, confirmations, cash receipts) and the farmer's
/my/payments. Each parses, calls a service, commits once."""
from __future__ import annotations

import base64
import binascii
import uuid

from flask import (Blueprint, Response, abort, flash, redirect, render_template, request,
                   url_for)
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user, login_required

from ..common.ids import query_id
from ..common.forms import filter_text
from ..common import confirm, web
from ..common.access import is_farmer
from ..cooperatives import services as coop_services
from . import services
from .forms import BatchForm, CashConfirmForm, ConfirmationsForm

bp = Blueprint("payouts", __name__)


def _batch_form():
    form = BatchForm()
    names = services.rail_names()
    form.rail.choices = [("", _("Every rail"))] + [(r, names[r]) for r in names]
    if not form.idempotency_key.data:
        form.idempotency_key.data = uuid.uuid4().hex
    return form


def _batch(batch_id):
    batch = services.get_batch(batch_id)
    services.require_treasurer(batch.coop_id, current_user)
    return batch


def _render_payables(coop, form, status=200):
    q = filter_text(request.args.get("q", ""), 80)
    found = services.payables_page(coop, request.args.get("cursor"), q=q)
    batches = services.batches_page(coop, request.args.get("batches"))
    return render_template("payouts/payables.html", coop=coop, items=found.items, found=found,
                           q=q, total_due=services.total_due_of(coop), form=form,
                           batches=batches.items, batches_found=batches,
                           rails=services.rail_names(),
                           mask=services.mask_account), status


@bp.route("/manage/coops/<int:coop_id>/payables")
@web.coop_view(check=services.require_treasurer)
def payables(coop):
    return _render_payables(coop, _batch_form())


@bp.route("/manage/coops/<int:coop_id>/payout-batches", methods=["POST"])
@web.coop_view(check=services.require_treasurer)
def create_batch(coop):
    form = _batch_form()
    if not form.validate_on_submit():
        return _render_payables(coop, form, 422)

    def refused(exc):
        web.show_on_form(form, exc)
        for problem in (exc.fields or {}).get("left_out", []):
            flash(problem, "error")
        return _render_payables(coop, form, exc.status)
    web.on_refusal(refused)
    if services.batch_for_key(coop, form.idempotency_key.data) is None:
        preview = services.preview_batch(coop, rail=form.rail.data or None)
        step = confirm.check(f"payouts.batch:{coop.id}", preview)
        if not step.confirmed:
            return step.render("payouts/confirm_batch.html", coop=coop, preview=preview,
                               rails=services.rail_names(),
                               back=url_for("payouts.payables", coop_id=coop.id),
                               yes=_("Yes, make the batch"))
    batch, created = services.create_batch(coop, current_user, rail=form.rail.data or None,
                                           idempotency_key=form.idempotency_key.data)
    if created:
        flash(ngettext("Payout batch #%(id)d made: %(num)d line.",
                       "Payout batch #%(id)d made: %(num)d lines.", len(batch.lines),
                       id=batch.id), "info")
    return redirect(url_for("payouts.batch", batch_id=batch.id))


@bp.route("/manage/payout-batches/<int:batch_id>")
@login_required
@web.unit_of_work
def batch(batch_id):
    batch = _batch(batch_id)
    return _render_batch(batch, ConfirmationsForm())


LINE_STATUSES = ("pending", "paid", "failed")


def _render_batch(batch, form, status=200, problems=()):
    only = request.args.get("status")
    only = only if only in LINE_STATUSES else None
    q = filter_text(request.args.get("q", ""), 80)
    found = services.batch_lines_page(batch, request.args.get("cursor"), status=only, q=q)
    summary = services.batch_summary_of(batch)
    return render_template("payouts/batch.html", batch=batch, coop=batch_coop(batch), form=form,
                           summary=summary, batch_rails=summary["rails"], lines=found.items,
                           found=found, status=only, q=q, statuses=list(LINE_STATUSES),
                           rails=services.rail_names(), cash_form=CashConfirmForm(),
                           problems=problems, reference=services.reference), status


def batch_coop(batch):
    return coop_services.get_coop(batch.coop_id)


@bp.route("/manage/payout-batches/<int:batch_id>/export.csv")
@login_required
@web.unit_of_work
def export(batch_id):
    batch = _batch(batch_id)
    rail = request.args.get("rail") or None
    web.on_refusal(lambda exc: _render_batch(batch, ConfirmationsForm(), exc.status,
                                             [exc.message]))
    body = services.export_csv(batch, current_user, rail=rail)
    return Response(body, mimetype="text/csv", headers={
        "Content-Disposition":
            f'attachment; filename="minga-payouts-{batch.id}-{rail or "all"}.csv"'})


@bp.route("/manage/payout-batches/<int:batch_id>/confirmations", methods=["POST"])
@login_required
@web.unit_of_work
def confirmations(batch_id):
    batch = _batch(batch_id)
    form = ConfirmationsForm()
    if not form.validate_on_submit():
        return _render_batch(batch, form, 422, [_("Choose the bank's file or paste it.")])
    data = _posted_file(form)
    if not data:
        return _render_batch(batch, form, 422, [_("Choose the bank's file or paste it.")])
    _refusal_on_batch(batch_id, form)
    preview = services.preview_confirmations(batch, data)
    # The confirmation page carries the file itself: a browser cannot post an upload again.
    step = confirm.check(f"payouts.confirmations:{batch.id}", preview,
                         data={"text": None, "content": _encoded(data)})
    if not step.confirmed:
        return step.render("payouts/confirm_confirmations.html", batch=batch,
                           preview=preview, rails=services.rail_names(),
                           back=url_for("payouts.batch", batch_id=batch.id),
                           yes=_("Yes, record them"))
    result = services.import_confirmations(batch, current_user, data)
    flash(_("Confirmations recorded: %(p)d paid, %(f)d failed, %(u)d already recorded.",
            p=len(result.paid), f=len(result.failed), u=len(result.unchanged)), "info")
    return redirect(url_for("payouts.batch", batch_id=batch.id))


def _refusal_on_batch(batch_id, form):
    """A refusal shows on the batch's page (read again: the unit of work rolled back), with
    the problems of the file."""
    web.on_refusal(lambda exc: _render_batch(
        _batch(batch_id), form, exc.status,
        [exc.message] + list((exc.fields or {}).get("file", []))))


def _encoded(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _posted_file(form) -> bytes:
    """The confirmation file: uploaded, pasted, or carried by the confirmation page."""
    carried = request.form.get("content")
    if carried:
        try:
            return base64.b64decode(carried, validate=True)[:services.MAX_CONFIRMATION_BYTES + 1]
        except (binascii.Error, ValueError):
            return b""
    upload = form.file.data
    data = upload.read(services.MAX_CONFIRMATION_BYTES + 1) if upload else b""
    if not data and form.text.data:
        data = form.text.data.encode("utf-8")
    return data


@bp.route("/manage/payout-lines/<int:line_id>/cash", methods=["POST"])
@login_required
@web.unit_of_work
def confirm_cash(line_id):
    line = services.get_line(line_id)
    batch_id = line.batch_id
    batch = _batch(batch_id)
    if line.rail != "cash":
        abort(404)
    form = CashConfirmForm()
    if not form.validate_on_submit():
        return _render_batch(batch, ConfirmationsForm(), 422, [_("Choose the outcome.")])
    reference = (form.reference.data or "").strip() or f"CASH-{line.id}"
    rows = [(1, line.id, form.status.data, reference)]
    _refusal_on_batch(batch_id, ConfirmationsForm())
    preview = services.preview_rows(batch, rows)
    step = confirm.check(f"payouts.cash:{line.id}", preview)
    if not step.confirmed:
        return step.render("payouts/confirm_confirmations.html", batch=batch,
                           preview=preview, rails=services.rail_names(),
                           back=url_for("payouts.batch", batch_id=batch.id),
                           yes=_("Yes, record it"))
    services.apply_confirmations(batch, current_user, rows)
    flash(_("Line %(id)d recorded.", id=line.id), "info")
    return redirect(url_for("payouts.batch", batch_id=batch.id))


@bp.route("/manage/payout-batches/<int:batch_id>/receipts")
@login_required
@web.unit_of_work
def receipts(batch_id):
    """Printable cash receipts for signature: every cash line of the batch, or ?line=<id>."""
    batch = _batch(batch_id)
    only = request.args.get("line", type=query_id)
    lines = [line for line in batch.lines if line.rail == "cash"
             and (only is None or line.id == only)]
    if only is not None and not lines:
        abort(404)
    return render_template("payouts/receipts.html", batch=batch, coop=batch_coop(batch),
                           lines=lines, reference=services.reference)


@bp.route("/my/payments")
@login_required
def my_payments():
    if not is_farmer(current_user):
        abort(403)
    return render_template("payouts/my_payments.html",
                           coops=services.farmer_payments(current_user),
                           rails=services.rail_names(), mask=services.mask_account)
