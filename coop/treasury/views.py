import csv
import io
import secrets
from datetime import date

from flask import (Blueprint, Response, abort, flash, redirect, render_template, request,
                   stream_with_context, url_for)
from flask_babel import gettext as _
from flask_login import current_user, login_required

from ..audit import services as audit
from ..common import confirm
from ..common.access import require_member
from ..common.errors import DomainError
from ..common.forms import apply_error
from ..common.models import utcnow
from ..cooperatives import services as coop_services
from ..extensions import db
from . import bank_statement, reports, stripe_reconciliation
from . import costs as cost_services
from . import year_end as year_end_services
from .forms import ActionForm, BankMatchForm, CloseForm, CostForm, NoteForm, UploadForm

bp = Blueprint("treasury", __name__)


def _period():
    """?from=&to= (YYYY-MM-DD); the current month by default."""
    today = utcnow().date()
    try:
        start = date.fromisoformat(request.args.get("from") or today.replace(day=1).isoformat())
        end = date.fromisoformat(request.args.get("to") or today.isoformat())
    except ValueError:
        abort(400)
    if end < start or (end - start).days > 3660:
        abort(400)
    return start, end


def _fail(exc: DomainError, form=None):
    db.session.rollback()
    if exc.status == 404:
        abort(404)
    if form is not None:
        apply_error(form, exc)
    else:
        flash(exc.message, "error")
        for problems in (exc.fields or {}).values():
            for problem in problems:
                flash(str(problem), "error")


def _back(coop_id):
    return redirect(url_for("treasury.reconciliation", coop_id=coop_id,
                            **{k: v for k, v in request.args.items() if k in ("from", "to")}))


def _page(coop, status=200, note_error=None):
    """The reconciliation page; `note_error` is (row kind, row id, typed note, message) for
    a note refused, shown on its row with what was typed."""
    start, end = _period()
    return render_template("treasury/reconciliation.html", coop=coop,
                           report=reports.report(coop, start, end),
                           upload=UploadForm(), action=ActionForm(), match=BankMatchForm(),
                           note_form=NoteForm(formdata=None), note_error=note_error,
                           is_fee=stripe_reconciliation.is_fee), status


@bp.route("/manage/coops/<int:coop_id>/treasury/reconciliation")
@login_required
def reconciliation(coop_id):
    require_member(coop_id, "treasurer", "manager")
    coop = coop_services.get_coop(coop_id)
    return _page(coop)


def _explain(coop_id, kind, row_id, explain):
    require_member(coop_id, "treasurer")
    coop = coop_services.get_coop(coop_id)
    form = NoteForm()
    if not form.validate_on_submit():
        if "csrf_token" in form.errors or not form.is_submitted():
            abort(400)
        db.session.rollback()
        return _page(coop, 422, (kind, row_id, form.note.data or "",
                                 _("Keep the note under 255 characters.")))
    try:
        explain(coop, current_user, row_id, form.note.data)
        db.session.commit()
        flash(_("Marked as explained."), "info")
    except DomainError as exc:
        db.session.rollback()
        if exc.status == 404:
            abort(404)
        if "note" in (exc.fields or {}):
            return _page(coop, 422, (kind, row_id, form.note.data or "",
                                     str(exc.fields["note"][0])))
        flash(exc.message, "error")
    return _back(coop.id)


@bp.route("/manage/coops/<int:coop_id>/treasury/stripe/txns/<int:txn_pk>/explain",
          methods=["POST"])
@login_required
def stripe_explain(coop_id, txn_pk):
    return _explain(coop_id, "txn", txn_pk, stripe_reconciliation.explain_txn)


@bp.route("/manage/coops/<int:coop_id>/treasury/bank/lines/<int:line_id>/explain",
          methods=["POST"])
@login_required
def bank_explain(coop_id, line_id):
    return _explain(coop_id, "line", line_id, bank_statement.explain_bank_line)


def _post_fee(coop_id, row_id, post):
    require_member(coop_id, "treasurer")
    coop = coop_services.get_coop(coop_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        post(coop, current_user, row_id)
        db.session.commit()
        flash(_("Fee posted to the ledger and matched."), "info")
    except DomainError as exc:
        _fail(exc)
    return _back(coop.id)


@bp.route("/manage/coops/<int:coop_id>/treasury/stripe/txns/<int:txn_pk>/fee",
          methods=["POST"])
@login_required
def stripe_fee(coop_id, txn_pk):
    return _post_fee(coop_id, txn_pk, stripe_reconciliation.post_missing_fee)


@bp.route("/manage/coops/<int:coop_id>/treasury/bank/lines/<int:line_id>/fee",
          methods=["POST"])
@login_required
def bank_fee(coop_id, line_id):
    return _post_fee(coop_id, line_id, bank_statement.post_bank_fee)


def _csv_response(rows, filename):
    def generate():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for row in rows:
            writer.writerow([reports.csv_safe(v) for v in row])
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    return Response(stream_with_context(generate()), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@bp.route("/manage/coops/<int:coop_id>/treasury/reconciliation.csv")
@login_required
def reconciliation_csv(coop_id):
    require_member(coop_id, "treasurer", "manager")
    coop = coop_services.get_coop(coop_id)
    start, end = _period()
    return _csv_response(reports.report_csv_rows(coop, start, end),
                         f"reconciliation-{coop.id}-{start}-{end}.csv")


@bp.route("/manage/coops/<int:coop_id>/audit.csv")
@login_required
def audit_csv(coop_id):
    require_member(coop_id, "treasurer", "manager")
    coop = coop_services.get_coop(coop_id)
    return _csv_response(audit.csv_rows(coop.id), f"audit-{coop.id}.csv")


def _summary_flash(summary):
    flash(_("Matched %(m)d, amount differs %(x)d, missing in the ledger %(l)d, suggestions "
            "%(s)d; %(f)d card fees posted.", m=summary["matched"], x=summary["mismatch"],
            l=summary["missing_ledger"], s=summary["suggested"], f=summary["fees_posted"]),
          "info")


@bp.route("/manage/coops/<int:coop_id>/treasury/stripe/pull", methods=["POST"])
@login_required
def stripe_pull(coop_id):
    require_member(coop_id, "treasurer")
    coop = coop_services.get_coop(coop_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    from ..payments.gateway import PaymentError
    try:
        summary = stripe_reconciliation.pull_stripe(coop, current_user)
        db.session.commit()
        _summary_flash(summary)
    except DomainError as exc:
        _fail(exc)
    except PaymentError as exc:
        db.session.rollback()
        flash(_("Stripe did not answer: %(m)s", m=exc.message), "error")
    return _back(coop.id)


@bp.route("/manage/coops/<int:coop_id>/treasury/stripe/import", methods=["POST"])
@login_required
def stripe_import(coop_id):
    require_member(coop_id, "treasurer")
    coop = coop_services.get_coop(coop_id)
    form = UploadForm()
    if not form.validate_on_submit():
        flash(_("Choose Stripe's balance CSV export."), "error")
        return _back(coop.id)
    try:
        summary = stripe_reconciliation.import_stripe_csv(coop, current_user,
                                                          form.file.data.stream)
        db.session.commit()
        _summary_flash(summary)
    except (DomainError) as exc:
        _fail(exc)
    except UnicodeDecodeError:
        db.session.rollback()
        flash(_("The file is not UTF-8 text."), "error")
    return _back(coop.id)


@bp.route("/manage/coops/<int:coop_id>/treasury/stripe/reconcile", methods=["POST"])
@login_required
def stripe_reconcile(coop_id):
    require_member(coop_id, "treasurer")
    coop = coop_services.get_coop(coop_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        summary = stripe_reconciliation.reconcile(coop, current_user)
        db.session.commit()
        _summary_flash(summary)
    except DomainError as exc:
        _fail(exc)
    return _back(coop.id)


@bp.route("/manage/coops/<int:coop_id>/treasury/stripe/txns/<int:txn_pk>/confirm",
          methods=["POST"])
@login_required
def stripe_confirm(coop_id, txn_pk):
    require_member(coop_id, "treasurer")
    coop = coop_services.get_coop(coop_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        stripe_reconciliation.confirm_suggestion(coop, current_user, txn_pk)
        db.session.commit()
        flash(_("Match confirmed."), "info")
    except DomainError as exc:
        _fail(exc)
    return _back(coop.id)


@bp.route("/manage/coops/<int:coop_id>/treasury/bank/import", methods=["POST"])
@login_required
def bank_import(coop_id):
    require_member(coop_id, "treasurer")
    coop = coop_services.get_coop(coop_id)
    form = UploadForm()
    if not form.validate_on_submit():
        flash(_("Choose the bank statement CSV (date, description, amount, reference)."),
              "error")
        return _back(coop.id)
    try:
        summary = bank_statement.import_bank_statement(coop, current_user, form.file.data.stream)
        db.session.commit()
        flash(_("%(a)d new lines; %(m)d matched, %(x)d amount differs, %(u)d unmatched.",
                a=summary["added"], m=summary["matched"], x=summary["mismatch"],
                u=summary["unmatched"]), "info")
    except DomainError as exc:
        _fail(exc)
    except UnicodeDecodeError:
        db.session.rollback()
        flash(_("The file is not UTF-8 text."), "error")
    return _back(coop.id)


@bp.route("/manage/coops/<int:coop_id>/treasury/bank/lines/<int:line_id>/confirm",
          methods=["POST"])
@login_required
def bank_confirm(coop_id, line_id):
    require_member(coop_id, "treasurer")
    coop = coop_services.get_coop(coop_id)
    form = BankMatchForm()
    if not form.validate_on_submit() or not form.target_id.data.isdigit():
        abort(400)
    try:
        bank_statement.confirm_bank_match(coop, current_user, line_id, form.kind.data,
                                          int(form.target_id.data))
        db.session.commit()
        flash(_("Match confirmed."), "info")
    except DomainError as exc:
        _fail(exc)
    return _back(coop.id)


@bp.route("/manage/coops/<int:coop_id>/treasury/costs", methods=["GET", "POST"])
@login_required
def costs(coop_id):
    require_member(coop_id, "treasurer")
    coop = coop_services.get_coop(coop_id)
    form = CostForm()
    status = 200
    if form.validate_on_submit():
        try:
            cost_services.record_operating_cost(
                coop, current_user, amount=form.amount.data, spent_on=form.spent_on.data,
                description=form.description.data, reference=form.reference.data or "",
                key=form.key.data,
                confirm=form.confirm_token.data if form.confirm.data else "")
            db.session.commit()
            flash(_("Cost recorded."), "info")
            return redirect(url_for("treasury.costs", coop_id=coop.id))
        except DomainError as exc:
            _fail(exc, form)
            form.confirm.data = False
            form.confirm_token.data = getattr(exc, "token", "")
            status = 422
    elif form.is_submitted():
        status = 422
    if not form.key.data:
        form.key.data = secrets.token_hex(16)
    return render_template("treasury/costs.html", coop=coop, form=form), status


@bp.route("/manage/coops/<int:coop_id>/treasury/year-end")
@login_required
def year_end(coop_id):
    require_member(coop_id, "treasurer", "manager")
    coop = coop_services.get_coop(coop_id)
    year = request.args.get("year", type=int) or utcnow().year - 1
    if not 2000 <= year <= 2200:
        abort(400)
    dist = year_end_services.preview(coop, year)
    db.session.rollback()  # finance_settings may have created the defaults: not by a GET
    form = CloseForm(expected_surplus=dist.surplus_minor, year=year)
    return render_template("treasury/year_end.html", coop=coop, dist=dist, form=form,
                           closable=year < utcnow().year)


@bp.route("/manage/coops/<int:coop_id>/treasury/year-end/close", methods=["POST"])
@login_required
def year_end_close(coop_id):
    require_member(coop_id, "treasurer")
    coop = coop_services.get_coop(coop_id)
    form = CloseForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        dist = year_end_services.preview_close_year(
            coop, form.year.data, expected_surplus=form.expected_surplus.data)
        step = confirm.check(f"treasury.year_end:{coop.id}",
                             year_end_services.close_figures(dist))
        if not step.confirmed:
            db.session.rollback()
            return step.render("treasury/confirm_year_end.html", coop=coop, dist=dist,
                               back=url_for("treasury.year_end", coop_id=coop.id,
                                            year=form.year.data),
                               yes=_("Yes, post the close of %(y)d", y=form.year.data))
        year_end_services.close_year(coop, current_user, form.year.data,
                                     expected_surplus=form.expected_surplus.data)
        db.session.commit()
        flash(_("The year %(y)d is closed and its surplus distributed.", y=form.year.data),
              "info")
    except DomainError as exc:
        _fail(exc)
    return redirect(url_for("treasury.year_end", coop_id=coop.id, year=form.year.data))
