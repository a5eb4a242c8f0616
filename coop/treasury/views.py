import csv
import io
import secrets

from flask import (Blueprint, Response, abort, flash, redirect, render_template, request,
                   stream_with_context, url_for)
from flask_babel import gettext as _, ngettext
from flask_login import current_user

from ..common import confirm, web
from ..common.dates import DateInputError, parse_date
from ..common.models import utcnow
from ..common.numbers import parse_whole
from ..audit import services as audit
from . import bank_statement, reports, stripe_reconciliation
from . import costs as cost_services
from . import year_end as year_end_services
from .forms import ActionForm, BankMatchForm, CloseForm, CostForm, NoteForm, UploadForm

bp = Blueprint("treasury", __name__)
# the reconciliation page's lists a page at a time: each one's cursor in the query string
CURSORS = ("diff", "explained", "bank", "bank_explained")


def _period():
    """?from=&to= (YYYY-MM-DD, 2000 to the end of next year); the current month by default."""
    today = utcnow().date()
    try:
        start = parse_date(request.args.get("from") or today.replace(day=1).isoformat())
        end = parse_date(request.args.get("to") or today.isoformat())
    except DateInputError:
        abort(400)
    if end < start or (end - start).days > 3660:
        abort(400)
    return start, end


def _back_url(coop_id):
    return url_for("treasury.reconciliation", coop_id=coop_id,
                   **{k: v for k, v in request.args.items() if k in ("from", "to") + CURSORS})


def _back(coop_id):
    return redirect(_back_url(coop_id))


def _refused_back(coop_id):
    """A refusal is flashed with each field's problem, back to the reconciliation page; an
    object of no cooperative of the user's is a 404."""
    web.refusal_flashed(_back_url(coop_id), passing=404, with_fields=True)


def _page(coop, status=200, note_error=None):
    """The reconciliation page; `note_error` is (row kind, row id, typed note, message) for
    a note refused, shown on its row with what was typed."""
    start, end = _period()
    return render_template("treasury/reconciliation.html", coop=coop,
                           report=reports.report(coop, start, end, cursors={
                               name: request.args.get(name) for name in CURSORS}),
                           keep={"coop_id": coop.id, "from": start.isoformat(),
                                 "to": end.isoformat(),
                                 **{name: request.args.get(name) for name in CURSORS}},
                           upload=UploadForm(), action=ActionForm(), match=BankMatchForm(),
                           note_form=NoteForm(formdata=None), note_error=note_error,
                           is_fee=stripe_reconciliation.is_fee), status


@bp.route("/manage/coops/<int:coop_id>/treasury/reconciliation")
@web.coop_view("treasurer", "manager")
def reconciliation(coop):
    return _page(coop)


def _explain(coop, kind, row_id, explain):
    form = NoteForm()
    if not form.validate_on_submit():
        if "csrf_token" in form.errors or not form.is_submitted():
            abort(400)
        return _page(coop, 422, (kind, row_id, form.note.data or "",
                                 _("Keep the note under 255 characters.")))

    def refused(exc):
        if "note" in (exc.fields or {}):
            return _page(coop, 422, (kind, row_id, form.note.data or "",
                                     str(exc.fields["note"][0])))
        flash(exc.message, "error")
        return _back(coop.id)
    web.on_refusal(refused, passing=404)
    explain(coop, current_user, row_id, form.note.data)
    flash(_("Marked as explained."), "info")
    return _back(coop.id)


@bp.route("/manage/coops/<int:coop_id>/treasury/stripe/txns/<int:txn_pk>/explain",
          methods=["POST"])
@web.coop_view("treasurer")
def stripe_explain(coop, txn_pk):
    return _explain(coop, "txn", txn_pk, stripe_reconciliation.explain_txn)


@bp.route("/manage/coops/<int:coop_id>/treasury/bank/lines/<int:line_id>/explain",
          methods=["POST"])
@web.coop_view("treasurer")
def bank_explain(coop, line_id):
    return _explain(coop, "line", line_id, bank_statement.explain_bank_line)


def _post_fee(coop, row_id, post):
    if not ActionForm().validate_on_submit():
        abort(400)
    _refused_back(coop.id)
    post(coop, current_user, row_id)
    flash(_("Fee posted to the ledger and matched."), "info")
    return _back(coop.id)


@bp.route("/manage/coops/<int:coop_id>/treasury/stripe/txns/<int:txn_pk>/fee",
          methods=["POST"])
@web.coop_view("treasurer")
def stripe_fee(coop, txn_pk):
    return _post_fee(coop, txn_pk, stripe_reconciliation.post_missing_fee)


@bp.route("/manage/coops/<int:coop_id>/treasury/bank/lines/<int:line_id>/fee",
          methods=["POST"])
@web.coop_view("treasurer")
def bank_fee(coop, line_id):
    return _post_fee(coop, line_id, bank_statement.post_bank_fee)


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
@web.coop_view("treasurer", "manager")
def reconciliation_csv(coop):
    start, end = _period()
    return _csv_response(reports.report_csv_rows(coop, start, end),
                         f"reconciliation-{coop.id}-{start}-{end}.csv")


@bp.route("/manage/coops/<int:coop_id>/audit.csv")
@web.coop_view("treasurer", "manager")
def audit_csv(coop):
    return _csv_response(audit.csv_rows(coop.id), f"audit-{coop.id}.csv")


def _summary_flash(summary):
    flash(_("Matched %(m)d, amount differs %(x)d, missing in the ledger %(l)d, suggestions "
            "%(s)d; %(f)d card fees posted.", m=summary["matched"], x=summary["mismatch"],
            l=summary["missing_ledger"], s=summary["suggested"], f=summary["fees_posted"]),
          "info")
    if summary.get("skipped_not_own"):
        flash(ngettext("%(num)d row was left out: it is not this cooperative's.",
                       "%(num)d rows were left out: they are not this cooperative's.",
                       summary["skipped_not_own"]), "info")


@bp.route("/manage/coops/<int:coop_id>/treasury/stripe/pull", methods=["POST"])
@web.coop_view("treasurer")
def stripe_pull(coop):
    if not ActionForm().validate_on_submit():
        abort(400)
    from ..payments.gateway import PaymentError
    _refused_back(coop.id)
    try:
        summary = stripe_reconciliation.pull_stripe(coop, current_user)
    except PaymentError as exc:
        web.discard()
        flash(_("Stripe did not answer: %(m)s", m=exc.message), "error")
    else:
        _summary_flash(summary)
    return _back(coop.id)


@bp.route("/manage/coops/<int:coop_id>/treasury/stripe/import", methods=["POST"])
@web.coop_view("treasurer")
def stripe_import(coop):
    form = UploadForm()
    if not form.validate_on_submit():
        flash(_("Choose Stripe's balance CSV export."), "error")
        return _back(coop.id)
    _refused_back(coop.id)
    try:
        summary = stripe_reconciliation.import_stripe_csv(coop, current_user, form.file.data.stream)
    except UnicodeDecodeError:
        web.discard()
        flash(_("The file is not UTF-8 text."), "error")
    else:
        _summary_flash(summary)
    return _back(coop.id)


@bp.route("/manage/coops/<int:coop_id>/treasury/stripe/reconcile", methods=["POST"])
@web.coop_view("treasurer")
def stripe_reconcile(coop):
    if not ActionForm().validate_on_submit():
        abort(400)
    _refused_back(coop.id)
    _summary_flash(stripe_reconciliation.reconcile(coop, current_user))
    return _back(coop.id)


@bp.route("/manage/coops/<int:coop_id>/treasury/stripe/txns/<int:txn_pk>/confirm",
          methods=["POST"])
@web.coop_view("treasurer")
def stripe_confirm(coop, txn_pk):
    if not ActionForm().validate_on_submit():
        abort(400)
    _refused_back(coop.id)
    stripe_reconciliation.confirm_suggestion(coop, current_user, txn_pk)
    flash(_("Match confirmed."), "info")
    return _back(coop.id)


@bp.route("/manage/coops/<int:coop_id>/treasury/bank/import", methods=["POST"])
@web.coop_view("treasurer")
def bank_import(coop):
    form = UploadForm()
    if not form.validate_on_submit():
        flash(_("Choose the bank statement CSV (date, description, amount, reference)."),
              "error")
        return _back(coop.id)
    _refused_back(coop.id)
    try:
        summary = bank_statement.import_bank_statement(coop, current_user, form.file.data.stream)
    except UnicodeDecodeError:
        web.discard()
        flash(_("The file is not UTF-8 text."), "error")
    else:
        flash(_("%(a)d new lines; %(m)d matched, %(x)d amount differs, %(u)d unmatched.",
                a=summary["added"], m=summary["matched"], x=summary["mismatch"],
                u=summary["unmatched"]), "info")
    return _back(coop.id)


@bp.route("/manage/coops/<int:coop_id>/treasury/bank/lines/<int:line_id>/confirm",
          methods=["POST"])
@web.coop_view("treasurer")
def bank_confirm(coop, line_id):
    form = BankMatchForm()
    if not form.validate_on_submit() or not form.target_id.data.isdigit():
        abort(400)
    _refused_back(coop.id)
    bank_statement.confirm_bank_match(coop, current_user, line_id, form.kind.data,
                                int(form.target_id.data))
    flash(_("Match confirmed."), "info")
    return _back(coop.id)


@bp.route("/manage/coops/<int:coop_id>/treasury/costs", methods=["GET", "POST"])
@web.coop_view("treasurer")
def costs(coop):
    form = CostForm()

    def page(status=200):
        if not form.key.data:
            form.key.data = secrets.token_hex(16)
        return render_template("treasury/costs.html", coop=coop, form=form), status
    if not form.validate_on_submit():
        return page(422 if form.is_submitted() else 200)

    def refused(exc):
        # A cost above the plausible asks to be confirmed: the token comes with the refusal.
        web.show_on_form(form, exc)
        form.confirm.data = False
        form.confirm_token.data = getattr(exc, "token", "")
        return page(422)
    web.on_refusal(refused, passing=404)
    cost_services.record_operating_cost(
        coop, current_user, amount=form.amount.data, spent_on=form.spent_on.data,
        description=form.description.data, reference=form.reference.data or "",
        key=form.key.data, confirm=form.confirm_token.data if form.confirm.data else "")
    flash(_("Cost recorded."), "info")
    return redirect(url_for("treasury.costs", coop_id=coop.id))


@bp.route("/manage/coops/<int:coop_id>/treasury/year-end")
@web.coop_view("treasurer", "manager")
def year_end(coop):
    year = request.args.get("year", type=parse_whole) or utcnow().year - 1
    if not 2000 <= year <= 2200:
        abort(400)
    dist = year_end_services.preview(coop, year)
    web.discard()  # finance_settings may have created the defaults: not by a GET
    form = CloseForm(expected_surplus=dist.surplus_minor, year=year)
    return render_template("treasury/year_end.html", coop=coop, dist=dist, form=form,
                           closable=year < utcnow().year)


@bp.route("/manage/coops/<int:coop_id>/treasury/year-end/close", methods=["POST"])
@web.coop_view("treasurer")
def year_end_close(coop):
    form = CloseForm()
    if not form.validate_on_submit():
        abort(400)
    back = url_for("treasury.year_end", coop_id=coop.id, year=form.year.data)
    web.refusal_flashed(back, passing=404, with_fields=True)
    dist = year_end_services.preview_close_year(coop, form.year.data,
                                       expected_surplus=form.expected_surplus.data)
    step = confirm.check(f"treasury.year_end:{coop.id}", year_end_services.close_figures(dist))
    if not step.confirmed:
        return step.render("treasury/confirm_year_end.html", coop=coop, dist=dist,
                           back=back, yes=_("Yes, post the close of %(y)d", y=form.year.data))
    year_end_services.close_year(coop, current_user, form.year.data,
                        expected_surplus=form.expected_surplus.data)
    flash(_("The year %(y)d is closed and its surplus distributed.", y=form.year.data), "info")
    return redirect(back)
