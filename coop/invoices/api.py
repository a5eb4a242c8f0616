"""Invoices and credit notes in the API (issue 14): GET /api/v1/invoices (the buyer's own, or
with ?coop_id= a coop's for its manager or treasurer), GET /api/v1/invoices/{id} with its
lines, /invoices/{id}.pdf and /invoices/{id}.xml (UBL 2.1), and the buyer's billing details
(GET and PUT /billing-details). Another buyer's or another coop's document is 404."""
from __future__ import annotations

from flask import Response, g, jsonify, request

from ..api.blueprint import bp
from ..api.common import json_body, page_args, paged, token_required
from ..api.openapi import ID, register, query_parameter
from ..common.access import require_member
from ..common.errors import NotFound, ValidationFailed
from ..extensions import db
from . import formats, services
from .models import Invoice


def invoice_json(invoice: Invoice, codes: dict, with_lines: bool = False) -> dict:
    body = {"id": invoice.id, "coop_id": invoice.coop_id, "kind": invoice.kind,
            "number": invoice.full_number, "prefix": invoice.prefix,
            "sequence": invoice.number, "issued_at": invoice.issued_at.isoformat(),
            "currency": invoice.currency, "net_minor": invoice.subtotal_minor,
            "tax_minor": invoice.tax_minor, "total_minor": invoice.total_minor,
            "order_id": invoice.order_id, "pool_id": invoice.pool_id,
            "credits_invoice_id": invoice.credits_invoice_id,
            "acceptance_code": codes.get(invoice.id),
            "pdf_url": f"/api/v1/invoices/{invoice.id}.pdf",
            "xml_url": f"/api/v1/invoices/{invoice.id}.xml"}
    if with_lines:
        # tax_id_type: a farmer's identity document (a purchase document's customer); empty
        # for every other party and for a document issued before it was recorded.
        body["seller"] = {"tax_id_type": "", **services.party(invoice.seller_json)}
        body["customer"] = {"tax_id_type": "", **services.party(invoice.customer_json)}
        body["resolution"] = invoice.resolution
        body["lines"] = [{
            "crop": line.get("crop"), "grade": line.get("grade"),
            "pool_id": line.get("pool_id"), "lot": line.get("lot") or None,
            "dds_reference": line.get("dds") or None,
            "quantity_kg": (f"{line['quantity_g'] // 1000}.{line['quantity_g'] % 1000:03d}"
                            if line.get("quantity_g") else None),
            "unit_price_minor": line.get("unit_price_minor"),
            "farmer_price_per_kg_minor": line.get("farmer_minor"),
            "commission_per_kg_minor": line.get("commission_minor"),
            "premium_per_kg_minor": line.get("premium_minor"),
            "tax_rate_bps": line.get("tax_bps", 0), "net_minor": line["net_minor"],
            "tax_minor": line["tax_minor"], "total_minor": line["total_minor"],
            "reason": line.get("reason")} for line in services.lines_of(invoice)]
    return body


def _coop_id_arg() -> int | None:
    raw = request.args.get("coop_id")
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) < 10) or int(raw) < 1:
        raise ValidationFailed("coop_id must be a coop's id.",
                               fields={"coop_id": ["Must be an integer."]})
    return int(raw)


def _document(invoice_id: int) -> Invoice:
    """The caller's document: its buyer's, or one of a coop it manages or keeps the books of."""
    user = g.api_user
    invoice = db.session.get(Invoice, invoice_id)
    if invoice is None:
        raise NotFound("No such document.")
    if user.buyer_id and invoice.buyer_id == user.buyer_id:
        return invoice
    try:
        require_member(invoice.coop_id, "manager", "treasurer", user=user)
    except Exception:
        raise NotFound("No such document.")
    return invoice


@bp.get("/invoices")
@token_required
def list_invoices():
    limit, after = page_args()
    coop_id = _coop_id_arg()
    user = g.api_user
    if coop_id is not None:
        require_member(coop_id, "manager", "treasurer", user=user)
        stmt = services.coop_documents_query(coop_id)
        if after is not None:
            stmt = stmt.where(Invoice.id < after)
        rows = list(db.session.scalars(stmt.limit(limit + 1)))
    elif user.buyer_id:
        rows = services.buyer_documents(user.buyer_id, limit=limit + 1, after_id=after)
    else:
        rows = []
    codes = services.acceptance_codes(r.id for r in rows)
    return jsonify(paged(rows, limit, lambda r: invoice_json(r, codes)))


@bp.get("/invoices/<int:invoice_id>")
@token_required
def get_invoice(invoice_id):
    invoice = _document(invoice_id)
    return jsonify(invoice_json(invoice, services.acceptance_codes([invoice.id]), True))


@bp.get("/invoices/<int:invoice_id>.pdf")
@token_required
def invoice_pdf(invoice_id):
    from .views import _facts
    invoice = _document(invoice_id)
    return Response(formats.pdf(_facts(invoice, False)), mimetype="application/pdf")


@bp.get("/invoices/<int:invoice_id>.xml")
@token_required
def invoice_xml(invoice_id):
    invoice = _document(invoice_id)
    credited = db.session.get(Invoice, invoice.credits_invoice_id) \
        if invoice.credits_invoice_id else None
    code = services.acceptance_codes([invoice.id]).get(invoice.id)
    return Response(formats.ubl(invoice, code, credited), mimetype="application/xml")


def _billing_json(row) -> dict:
    return {"legal_name": row.legal_name, "tax_id": row.tax_id, "country": row.country,
            "address": row.address, "updated_at": row.updated_at.isoformat()}


def _buyer_id() -> int:
    from ..common.errors import Forbidden
    if not g.api_user.buyer_id:
        raise Forbidden("Only a buyer has billing details.")
    return g.api_user.buyer_id


@bp.get("/billing-details")
@token_required
def get_billing():
    row = services.billing_of(_buyer_id())
    if row is None:
        raise NotFound("No billing details yet.", code="billing_details_required")
    return jsonify(_billing_json(row))


@bp.put("/billing-details")
@token_required
def put_billing():
    buyer_id = _buyer_id()
    data = json_body()

    def text(name):
        value = data.get(name)
        return value if isinstance(value, str) else ""
    row = services.save_billing(buyer_id, legal_name=text("legal_name"), tax_id=text("tax_id"),
                                country=text("country"), address=text("address"))
    db.session.commit()
    return jsonify(_billing_json(row))


_LINE = {"type": "object", "required": [
    "crop", "grade", "pool_id", "lot", "dds_reference", "quantity_kg", "unit_price_minor",
    "farmer_price_per_kg_minor", "commission_per_kg_minor", "premium_per_kg_minor",
    "tax_rate_bps", "net_minor", "tax_minor", "total_minor", "reason"], "properties": {
    "crop": {"type": ["string", "null"]}, "grade": {"type": ["string", "null"]},
    "pool_id": {"type": ["integer", "null"]}, "lot": {"type": ["string", "null"]},
    "dds_reference": {"type": ["string", "null"]},
    "quantity_kg": {"type": ["string", "null"]},
    "unit_price_minor": {"type": ["integer", "null"]},
    "farmer_price_per_kg_minor": {"type": ["integer", "null"]},
    "commission_per_kg_minor": {"type": ["integer", "null"]},
    "premium_per_kg_minor": {"type": ["integer", "null"]},
    "tax_rate_bps": {"type": "integer"}, "net_minor": {"type": "integer"},
    "tax_minor": {"type": "integer"}, "total_minor": {"type": "integer"},
    "reason": {"type": ["string", "null"]}}}
_FIELDS = {
    "id": {"type": "integer"}, "coop_id": {"type": "integer"},
    "kind": {"enum": ["invoice", "credit_note", "support_doc"]},
    "number": {"type": "string", "examples": ["SETP990"]}, "prefix": {"type": "string"},
    "sequence": {"type": "integer"}, "issued_at": {"type": "string", "format": "date-time"},
    "currency": {"type": "string"}, "net_minor": {"type": "integer"},
    "tax_minor": {"type": "integer"}, "total_minor": {"type": "integer"},
    "order_id": {"type": ["integer", "null"]}, "pool_id": {"type": ["integer", "null"]},
    "credits_invoice_id": {"type": ["integer", "null"]},
    "acceptance_code": {"type": ["string", "null"],
                        "description": "the tax authority's CUFE (Colombia) or CDR (Peru)"},
    "pdf_url": {"type": "string"}, "xml_url": {"type": "string"}}
_PARTY = {"type": "object", "required": ["name", "tax_id", "country", "address", "tax_id_type"],
          "properties": {"name": {"type": "string"},
                                           "tax_id": {"type": "string"},
                                           "country": {"type": "string"},
                                           "address": {"type": "string"},
                                           "tax_id_type": {
                                               "type": "string",
                                               "description": "a purchase document's "
                                               "(support_doc) farmer: the identity "
                                               "document of tax_id (CC; DNI, RUC); empty "
                                               "for any other party, and when none was "
                                               "recorded at issue"}}}
_BILLING = {"legal_name": {"type": "string"}, "tax_id": {"type": "string"},
            "country": {"type": "string", "pattern": "^[A-Z]{2}$"},
            "address": {"type": "string"}}


register({
    "InvoiceSummary": {"type": "object", "required": list(_FIELDS), "properties": _FIELDS},
    "Invoice": {"type": "object",
                "required": [*_FIELDS, "seller", "customer", "resolution", "lines"],
                "properties": {**_FIELDS, "seller": _PARTY, "customer": _PARTY,
                               "resolution": {"type": "string"},
                               "lines": {"type": "array", "items": _LINE}}},
    "BillingDetails": {"type": "object", "required": [*_BILLING, "updated_at"],
                       "properties": {**_BILLING,
                                      "updated_at": {"type": "string",
                                                     "format": "date-time"}}},
    "BillingDetailsPut": {"type": "object", "required": list(_BILLING),
                          "properties": _BILLING},
}, [
    ("get", "/invoices", "The caller's invoices and credit notes, newest first: its buyer's, "
     "or with coop_id a coop's (manager, treasurer)", True, None,
     {200: ("list", "InvoiceSummary"), 403: "Error", 404: "Error"}),
    ("get", "/invoices/{id}", "An invoice or credit note with its parties and lines", True,
     None, {200: "Invoice", 404: "Error"}),
    ("get", "/invoices/{id}.pdf", "The document as PDF", True, None, {200: None, 404: "Error"}),
    ("get", "/invoices/{id}.xml", "The document as UBL 2.1 XML (Invoice or CreditNote)", True,
     None, {200: None, 404: "Error"}),
    ("get", "/billing-details", "The buyer's billing details (404 billing_details_required "
     "before they are given)", True, None, {200: "BillingDetails", 403: "Error",
                                            404: "Error"}),
    ("put", "/billing-details", "Give or change the buyer's billing details (asked before "
     "the first order; issued invoices keep what they were issued with)", True,
     "BillingDetailsPut", {200: "BillingDetails", 403: "Error", 422: "Error"}),
], {("get", "/invoices"): query_parameter("coop_id", dict(ID), "a coop's documents")})
