"""Invoice pages: the buyer's billing details and documents, the coop's list, export, settings
and acceptance codes, the printable page, PDF and UBL XML of one document. Thin: access is
checked here, rules live in services."""
from __future__ import annotations

from datetime import date

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from ..common import web
from ..common.access import roles_in
from ..common.labels import label
from ..common.money import format_money
from ..common.numbers import format_number, PERCENT_FORMAT
from ..common.quantities import grams_to_decimal
from ..extensions import db
from . import formats, services
from .forms import AcceptanceForm, BillingForm, ImportForm, SettingsForm
from .models import KINDS

bp = Blueprint("invoices", __name__)
PER_PAGE = 50


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//") and len(target) < 300:
        return target
    return url_for("invoices.my_invoices")


# ---------------------------------------------------------------------------- the buyer

def _buyer() -> int:
    if not current_user.buyer_id:
        abort(403)
    return current_user.buyer_id


@bp.route("/my/billing", methods=["GET", "POST"])
@login_required
@web.unit_of_work
def billing():
    buyer_id = _buyer()
    row = services.billing_of(buyer_id)
    form = BillingForm(obj=row) if request.method == "GET" else BillingForm()
    target = _safe_next(request.args.get("next"))

    def page(status=200):
        return render_template("invoices/billing.html", form=form, first=row is None,
                               target=target), status
    if not form.is_submitted():
        return page()
    if not form.validate():
        return page(422)
    web.refusal_on_form(form, page)
    services.save_billing(buyer_id, legal_name=form.legal_name.data, tax_id=form.tax_id.data,
                          country=form.country.data, address=form.address.data)
    flash(_("Billing details saved. Invoices issued from now on carry them."), "info")
    return redirect(target)


@bp.route("/my/invoices")
@login_required
def my_invoices():
    buyer_id = _buyer()
    from ..api.common import decode_cursor, encode_cursor
    after = decode_cursor(request.args.get("cursor", "")) if request.args.get("cursor") else None
    rows = services.buyer_documents(buyer_id, limit=PER_PAGE + 1, after_id=after)
    more = len(rows) > PER_PAGE
    rows = rows[:PER_PAGE]
    return render_template("invoices/mine.html", rows=rows,
                           codes=services.acceptance_codes(r.id for r in rows),
                           billing=services.billing_of(buyer_id),
                           next_cursor=encode_cursor(rows[-1].id) if more and rows else None)


def _country(code: str | None) -> str:
    from flask_babel import get_locale
    locale = get_locale()
    return (locale.territories.get(str(code).upper()) if locale and code else None) or code or ""


def _facts(invoice, coop_view: bool) -> dict:
    """What the printable page and the PDF say, in the reader's language and numbers."""
    seller, customer = services.party(invoice.seller_json), services.party(invoice.customer_json)
    lines = services.lines_of(invoice)
    code = services.acceptance_codes([invoice.id]).get(invoice.id)
    credited = db.session.get(type(invoice), invoice.credits_invoice_id) \
        if invoice.credits_invoice_id else None
    cur = invoice.currency
    kind = label(invoice.kind, "document_kind")
    title = f"{kind[:1].upper()}{kind[1:]} {invoice.full_number}"
    head = [_("Issued on %(date)s", date=invoice.issued_at.date().isoformat())]
    if invoice.resolution:
        head.append(_("Numbering authorised by %(res)s, numbers %(start)s to %(end)s",
                      res=invoice.resolution, start=f"{invoice.prefix}{invoice.range_from}",
                      end=f"{invoice.prefix}{invoice.range_to}" if invoice.range_to else "…")
                    + (f" ({invoice.resolution_on.isoformat()})" if invoice.resolution_on else ""))
    if credited is not None:
        head.append(_("Credits invoice %(n)s of %(date)s", n=credited.full_number,
                      date=credited.issued_at.date().isoformat()))
    if invoice.week_start:
        head.append(_("Purchases of the week starting %(date)s",
                      date=invoice.week_start.isoformat()))

    def party_lines(p, farmer=False):
        out = [p.get("name", "")]
        if p.get("trade_name") and p.get("trade_name") != p.get("name"):
            out.append(p["trade_name"])
        if farmer:  # the supplier of a purchase document: their identity document, as issued
            if p.get("member_number"):
                out.append(_("Member no. %(n)s", n=p["member_number"]))
            out.append(_("Identity document: %(kind)s %(n)s",
                         kind=label(p["tax_id_type"], "person_id_type"), n=p["tax_id"])
                       if p.get("tax_id") and p.get("tax_id_type")
                       else _("Identity document: not recorded"))
        elif p.get("tax_id"):
            out.append(_("Tax id: %(id)s", id=p["tax_id"]))
        out.append(", ".join(x for x in (p.get("address", ""), _country(p.get("country")))
                             if x))
        return [x for x in out if x]
    seller_heading = _("Seller") if invoice.kind != "support_doc" else _("Buyer (the coop)")
    customer_heading = _("Customer") if invoice.kind != "support_doc" else _("Supplier (farmer)")
    line_texts = []
    for line in lines:
        text = formats.describe(line)
        if line.get("quantity_g"):
            text += " — " + _("%(kg)s kg at %(price)s a kg", kg=format_number(
                grams_to_decimal(line["quantity_g"]), "#,##0.###"),
                price=format_money(line["unit_price_minor"], cur))
        if line.get("farmer_minor") is not None and invoice.kind != "support_doc":
            text += " (" + _("farmer %(f)s, coop commission %(c)s, social premium %(p)s a kg",
                             f=format_money(line["farmer_minor"], cur),
                             c=format_money(line["commission_minor"], cur),
                             p=format_money(line["premium_minor"], cur)) + ")"
        if line.get("reason"):
            text += " — " + label(line["reason"], "refund_reason")
        text += " — " + _("tax %(rate)s: %(tax)s; total %(total)s",
                          rate=format_number(services.decimal_rate(line.get("tax_bps", 0)),
                                             PERCENT_FORMAT) + " %",
                          tax=format_money(line["tax_minor"], cur),
                          total=format_money(line["total_minor"], cur))
        line_texts.append(text)
    totals = [_("Net: %(n)s", n=format_money(invoice.subtotal_minor, cur)),
              _("Taxes: %(n)s", n=format_money(invoice.tax_minor, cur)),
              _("Total: %(n)s (%(cur)s)", n=format_money(invoice.total_minor, cur), cur=cur)]
    foot = []
    shown = services.indicative_total(invoice)
    if shown is not None:
        amount, quote, rate, on = shown
        foot.append(_("For information only: about %(amount)s at 1 %(base)s = %(rate)s "
                      "%(quote)s (rate of %(date)s). The invoice is in %(base)s.",
                      amount=format_money(amount, quote), base=cur, quote=quote,
                      rate=format_number(rate, "#,##0.##########"), date=on.isoformat()))
    if invoice.kind == "invoice":
        foot.append(_("Paid by card, captured on %(date)s.",
                      date=invoice.paid_at.date().isoformat() if invoice.paid_at else ""))
    elif invoice.kind == "credit_note":
        foot.append(_("Refunded to the card on %(date)s.",
                      date=invoice.paid_at.date().isoformat() if invoice.paid_at else ""))
    else:
        foot.append(_("Paid to the farmer through the coop's payouts."))
    foot.append(_("Authority's acceptance code: %(code)s", code=code) if code
                else _("Not yet accepted by the tax authority."))
    return {"title": title, "head": head, "lines_heading": _("Lines"), "lines": line_texts,
            "parties": [(seller_heading, party_lines(seller)),
                        (customer_heading,
                         party_lines(customer, farmer=invoice.kind == "support_doc"))],
            "totals": totals, "foot": foot, "code": code, "credited": credited}


def _answer(invoice, fmt: str, coop_view: bool, **extra):
    if fmt == "xml":
        code = services.acceptance_codes([invoice.id]).get(invoice.id)
        credited = db.session.get(type(invoice), invoice.credits_invoice_id) \
            if invoice.credits_invoice_id else None
        return Response(formats.ubl(invoice, code, credited), mimetype="application/xml",
                        headers={"Content-Disposition":
                                 f'attachment; filename="{invoice.full_number}.xml"'})
    facts = _facts(invoice, coop_view)
    if fmt == "pdf":
        return Response(formats.pdf(facts), mimetype="application/pdf",
                        headers={"Content-Disposition":
                                 f'inline; filename="{invoice.full_number}.pdf"'})
    return render_template("invoices/document.html", invoice=invoice, facts=facts,
                           coop_view=coop_view, **extra)


@bp.route("/my/invoices/<int:invoice_id>")
@login_required
@web.unit_of_work
def my_invoice(invoice_id):
    _buyer()
    return _answer(services.buyer_document(current_user, invoice_id), "html", False)


@bp.route("/my/invoices/<int:invoice_id>.<fmt>")
@login_required
@web.unit_of_work
def my_invoice_file(invoice_id, fmt):
    _buyer()
    if fmt not in ("pdf", "xml"):
        abort(404)
    return _answer(services.buyer_document(current_user, invoice_id), fmt, False)


@bp.route("/my/documents/<int:invoice_id>")
@login_required
@web.unit_of_work
def farmer_document(invoice_id):
    return _farmer_answer(invoice_id, None)


@bp.route("/my/documents/<int:invoice_id>.<fmt>")
@login_required
@web.unit_of_work
def farmer_document_file(invoice_id, fmt):
    if fmt not in ("pdf", "csv"):
        abort(404)
    return _farmer_answer(invoice_id, fmt)


def _farmer_answer(invoice_id, fmt):
    """A farmer's weekly purchase document (documento soporte, liquidación de compra)."""
    invoice = services.farmer_document(current_user, invoice_id)
    if fmt == "csv":
        return Response(services.support_doc_csv(invoice), mimetype="text/csv",
                        headers={"Content-Disposition":
                                 f'attachment; filename="{invoice.full_number}.csv"'})
    return _answer(invoice, fmt or "html", False)


# -------------------------------------------------------------------------- the coop

def _period(form_value: str | None) -> date | None:
    try:
        return date.fromisoformat(form_value) if form_value else None
    except ValueError:
        return None


def _filters() -> dict:
    kind = request.args.get("kind") or None
    buyer = request.args.get("buyer", "")
    return {"kind": kind if kind in KINDS else None,
            "since": _period(request.args.get("since")),
            "until": _period(request.args.get("until")),
            "buyer_id": int(buyer) if buyer.isascii() and buyer.isdigit() and len(buyer) < 10
            else None}


def _list_page(coop, status=200, acceptance=None, import_form=None, import_result=None):
    filters = _filters()
    stmt = services.coop_documents_query(coop.id, **filters)
    from ..api.common import decode_cursor, encode_cursor
    after = decode_cursor(request.args.get("cursor", "")) if request.args.get("cursor") else None
    if after is not None:
        from .models import Invoice
        stmt = stmt.where(Invoice.id < after)
    rows = list(db.session.scalars(stmt.limit(PER_PAGE + 1)))
    more = len(rows) > PER_PAGE
    rows = rows[:PER_PAGE]
    args = {k: v for k, v in request.args.items() if k != "cursor"}
    return render_template(
        "invoices/coop_list.html", coop=coop, rows=rows,
        codes=services.acceptance_codes(r.id for r in rows),
        customers={r.id: services.party(r.customer_json) for r in rows},
        filters=filters, kinds=KINDS, args=args,
        warnings=services.range_warnings(coop.id), settings=services.settings_of(coop.id),
        counts=services.counts_by_kind(coop.id),
        next_cursor=encode_cursor(rows[-1].id) if more and rows else None,
        acceptance=acceptance or AcceptanceForm(formdata=None),
        import_form=import_form or ImportForm(formdata=None), import_result=import_result,
        can_edit="treasurer" in roles_in(current_user, coop.id)
        or "manager" in roles_in(current_user, coop.id)), status


@bp.route("/manage/coops/<int:coop_id>/invoices")
@web.coop_view("treasurer", "manager")
def coop_invoices(coop):
    return _list_page(coop)


@bp.route("/manage/coops/<int:coop_id>/invoices.csv")
@web.coop_view("treasurer", "manager")
def coop_invoices_csv(coop):
    filters = _filters()
    name = "documents"
    if filters["since"] or filters["until"]:
        name += f"-{filters['since'] or ''}-{filters['until'] or ''}"
    return Response(services.export_csv(coop.id, **filters), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})


@bp.route("/manage/coops/<int:coop_id>/invoices/<int:invoice_id>")
@web.coop_view("treasurer", "manager")
def coop_invoice(coop, invoice_id):
    invoice = services.coop_document(coop, invoice_id)
    return _answer(invoice, "html", True, coop=coop, acceptance=AcceptanceForm(formdata=None))


@bp.route("/manage/coops/<int:coop_id>/invoices/<int:invoice_id>.<fmt>")
@web.coop_view("treasurer", "manager")
def coop_invoice_file(coop, invoice_id, fmt):
    if fmt not in ("pdf", "xml"):
        abort(404)
    return _answer(services.coop_document(coop, invoice_id), fmt, True)


@bp.route("/manage/coops/<int:coop_id>/invoices/<int:invoice_id>/acceptance",
          methods=["POST"])
@web.coop_view("treasurer", "manager")
def record_acceptance(coop, invoice_id):
    form = AcceptanceForm()
    back = url_for("invoices.coop_invoice", coop_id=coop.id, invoice_id=invoice_id)
    if not form.validate():
        flash(_("Give the acceptance code as the authority sent it."), "error")
        return redirect(back)
    web.refusal_flashed(back, passing=404)
    services.record_acceptance(coop, current_user, invoice_id, form.code.data)
    flash(_("Acceptance code recorded."), "info")
    return redirect(back)


@bp.route("/manage/coops/<int:coop_id>/invoices/acceptances", methods=["POST"])
@web.coop_view("treasurer", "manager")
def import_acceptances(coop):
    form = ImportForm()
    if not form.validate() or not form.file.data:
        return _list_page(coop, 422, import_form=form)
    web.refusal_on_form(form, lambda status: _list_page(coop, status, import_form=form))
    data = form.file.data.read(2_000_001)
    if len(data) > 2_000_000:
        form.file.errors = [_("The file is larger than 2 MB.")]
        return _list_page(coop, 422, import_form=form)
    result = services.import_acceptances(coop, current_user, data)
    flash(_("%(n)s acceptance codes recorded, %(u)s already there, %(p)s lines refused.",
            n=result["recorded"], u=result["unchanged"], p=len(result["problems"])),
          "info" if not result["problems"] else "error")
    return _list_page(coop, import_result=result)


def _settings_form(coop, row, formdata=None) -> SettingsForm:
    if formdata is not None:
        return SettingsForm(formdata)
    form = SettingsForm(formdata=None)
    if row is None:
        form.legal_name.data = coop.legal_name or coop.name
        form.tax_id.data = coop.tax_id or ""
        return form
    form.legal_name.data, form.tax_id.data, form.address.data = (row.legal_name, row.tax_id,
                                                                 row.address)
    ranges = services.numbering_of(row)
    for kind in KINDS:
        r = ranges.get(kind, {})
        getattr(form, f"{kind}_prefix").data = r.get("prefix", "")
        getattr(form, f"{kind}_from").data = str(r.get("from") or "")
        getattr(form, f"{kind}_to").data = str(r.get("to") or "")
        getattr(form, f"{kind}_resolution").data = r.get("resolution", "")
        getattr(form, f"{kind}_resolution_on").data = _period(r.get("resolution_on"))
    return form


@bp.route("/manage/coops/<int:coop_id>/invoice-settings", methods=["GET", "POST"])
@web.coop_view("treasurer", "manager")
def settings(coop):
    from ..catalog import services as catalog
    row = services.settings_of(coop.id)
    form = _settings_form(coop, row, request.form if request.method == "POST" else None)
    crops = catalog.all_crops()
    saved = services.tax_rates_of(row)
    # Each crop's rate as typed (kept on a refusal) or as saved, in the page's numbers.
    rates = {c.slug: (request.form.get(f"tax_{c.slug}", "")[:20] if request.method == "POST"
                      else (format_number(services.decimal_rate(saved[c.slug]), PERCENT_FORMAT)
                            if c.slug in saved else "")) for c in crops}
    rate_errors: dict[str, list] = {}

    def page(status=200):
        return render_template("invoices/settings.html", coop=coop, form=form, kinds=KINDS,
                               crops=crops, rates=rates, rate_errors=rate_errors,
                               warnings=services.range_warnings(coop.id)), status
    if request.method == "GET":
        return page()
    if not form.validate():
        return page(422)

    def refused(exc):
        # A crop's rate refused shows at that crop's field.
        for name in [n for n in exc.fields if n.startswith("tax_") and n != "tax_id"]:
            rate_errors[name[4:]] = [str(p) for p in exc.fields.pop(name)]
        web.show_on_form(form, exc)
        return page(exc.status)
    web.on_refusal(refused)
    services.save_settings(
        coop, current_user, legal_name=form.legal_name.data, tax_id=form.tax_id.data,
        address=form.address.data, tax_rates=rates,
        ranges={kind: {"prefix": getattr(form, f"{kind}_prefix").data,
                       "from": getattr(form, f"{kind}_from").data,
                       "to": getattr(form, f"{kind}_to").data,
                       "resolution": getattr(form, f"{kind}_resolution").data,
                       "resolution_on": getattr(form, f"{kind}_resolution_on").data}
                for kind in KINDS})
    flash(_("Invoice settings saved."), "info")
    return redirect(url_for("invoices.coop_invoices", coop_id=coop.id))


@bp.app_template_global("documents_of_orders")
def documents_of_orders(order_ids) -> dict:
    """order id -> its invoice and credit notes, one query (the My orders page's links)."""
    return services.documents_of_orders(order_ids)


@bp.app_template_global("invoice_range_warnings")
def invoice_range_warnings(coop_id: int) -> list:
    """(kind, numbers left) of the coop's ranges that are running out (dashboards' notice)."""
    return services.range_warnings(coop_id)


@bp.app_template_global("support_document_of")
def support_document_of(intake):
    """The weekly purchase document holding a delivery (the settlement statement's link)."""
    from . import support
    return support.document_for_intake(intake.farmer_user_id, intake.coop_id, intake.recorded_at)
