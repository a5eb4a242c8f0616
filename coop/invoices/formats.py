"""An issued document in the forms its readers need: the facts for the printable page, a PDF
(fpdf2, its core fonts: no file fetched), and UBL 2.1 XML (Invoice, CreditNote) with what a
Colombian (DIAN) or Peruvian (SUNAT) e-invoicing provider reads: ids, dates, the parties
with their tax schemes, lines, tax totals, the legal monetary total, the currency and, for
Colombia, the numbering resolution and range in the DIAN extension."""
from __future__ import annotations

import json
from decimal import Decimal
from xml.etree import ElementTree as ET

from ..common.money import to_decimal
from . import taxids
from .models import Invoice

NS = {
    "inv": "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
    "cn": "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
    "ext": "urn:oasis:names:specification:ubl:schema:xsd:CommonExtensionComponents-2",
    "sts": "dian:gov:co:facturaelectronica:Structures-2-1",
}
for _prefix, _uri in NS.items():
    if _prefix not in ("inv", "cn"):
        ET.register_namespace(_prefix, _uri)

# Each country's tax scheme (DIAN: 01 IVA; SUNAT: 1000 IGV) and document type codes.
TAX_SCHEME = {"CO": ("01", "IVA"), "PE": ("1000", "IGV")}
TYPE_CODE = {("CO", "invoice"): "01", ("CO", "credit_note"): "91",
             ("CO", "support_doc"): "05", ("PE", "invoice"): "01",
             ("PE", "credit_note"): "07", ("PE", "support_doc"): "04"}


def _el(parent, tag: str, text=None, **attrs):
    prefix, name = tag.split(":")
    node = ET.SubElement(parent, f"{{{NS[prefix]}}}{name}", {k: str(v) for k, v in attrs.items()})
    if text is not None:
        node.text = str(text)
    return node


def amount(minor: int, currency: str) -> str:
    return str(to_decimal(int(minor), currency))


def _party(parent, tag: str, party: dict, country: str) -> None:
    wrapper = _el(parent, tag)
    node = _el(wrapper, "cac:Party")
    if party.get("trade_name"):
        _el(_el(node, "cac:PartyName"), "cbc:Name", party["trade_name"])
    address = _el(_el(node, "cac:PhysicalLocation"), "cac:Address")
    _el(_el(address, "cac:AddressLine"), "cbc:Line", party.get("address", ""))
    _el(_el(address, "cac:Country"), "cbc:IdentificationCode", party.get("country", ""))
    tax = _el(node, "cac:PartyTaxScheme")
    _el(tax, "cbc:RegistrationName", party.get("name", ""))
    tax_id = party.get("tax_id", "")
    scheme_id, scheme_name = taxids.scheme(party.get("country", ""))
    body, _dash, digit = tax_id.partition("-")
    person = party.get("tax_id_type")
    if person in taxids.PERSON_SCHEMES:  # a farmer on a purchase document: CC, DNI, RUC
        scheme_id, body, digit = taxids.PERSON_SCHEMES[person], tax_id, ""
    attrs = {"schemeName": scheme_id}
    if digit:
        attrs["schemeID"] = digit
    _el(tax, "cbc:CompanyID", body if digit else tax_id, **attrs)
    code, name = TAX_SCHEME.get(country, ("VAT", "VAT"))
    scheme = _el(tax, "cac:TaxScheme")
    _el(scheme, "cbc:ID", code)
    _el(scheme, "cbc:Name", name)
    legal = _el(node, "cac:PartyLegalEntity")
    _el(legal, "cbc:RegistrationName", party.get("name", ""))
    _el(legal, "cbc:CompanyID", body if digit else tax_id, **attrs)


def ubl(invoice: Invoice, acceptance: str | None = None, credited: Invoice | None = None
        ) -> bytes:
    """The document as UBL 2.1 XML (Invoice, or CreditNote for a credit note)."""
    seller, customer = json.loads(invoice.seller_json), json.loads(invoice.customer_json)
    country = seller.get("country", "")
    cur = invoice.currency
    credit = invoice.kind == "credit_note"
    root = ET.Element(f"{{{NS['cn' if credit else 'inv']}}}{'CreditNote' if credit else 'Invoice'}")
    if country == "CO":
        content = _el(_el(_el(root, "ext:UBLExtensions"), "ext:UBLExtension"),
                      "ext:ExtensionContent")
        control = _el(_el(content, "sts:DianExtensions"), "sts:InvoiceControl")
        _el(control, "sts:InvoiceAuthorization", invoice.resolution)
        period = _el(control, "sts:AuthorizationPeriod")
        if invoice.resolution_on:
            _el(period, "cbc:StartDate", invoice.resolution_on.isoformat())
        authorized = _el(control, "sts:AuthorizedInvoices")
        _el(authorized, "sts:Prefix", invoice.prefix)
        _el(authorized, "sts:From", invoice.range_from)
        if invoice.range_to is not None:
            _el(authorized, "sts:To", invoice.range_to)
    _el(root, "cbc:UBLVersionID", "UBL 2.1")
    _el(root, "cbc:CustomizationID", "10" if country == "CO" else "2.0")
    _el(root, "cbc:ProfileID", "DIAN 2.1" if country == "CO" else "Minga")
    _el(root, "cbc:ID", invoice.full_number)
    if acceptance:
        _el(root, "cbc:UUID", acceptance,
            schemeName="CUFE-SHA384" if country == "CO" else "CDR")
    _el(root, "cbc:IssueDate", invoice.issued_at.date().isoformat())
    _el(root, "cbc:IssueTime", invoice.issued_at.strftime("%H:%M:%S+00:00"))
    type_code = TYPE_CODE.get((country, invoice.kind), "380" if not credit else "381")
    _el(root, "cbc:CreditNoteTypeCode" if credit else "cbc:InvoiceTypeCode", type_code)
    _el(root, "cbc:DocumentCurrencyCode", cur)
    lines = json.loads(invoice.lines_json)
    _el(root, "cbc:LineCountNumeric", len(lines))
    if credit:
        reason = lines[0].get("reason", "") if lines else ""
        response = _el(root, "cac:DiscrepancyResponse")
        if credited is not None:
            _el(response, "cbc:ReferenceID", credited.full_number)
        _el(response, "cbc:ResponseCode", "1" if reason == "not_delivered" else "3")
        _el(response, "cbc:Description", reason)
        if credited is not None:
            ref = _el(_el(root, "cac:BillingReference"), "cac:InvoiceDocumentReference")
            _el(ref, "cbc:ID", credited.full_number)
            _el(ref, "cbc:IssueDate", credited.issued_at.date().isoformat())
    _party(root, "cac:AccountingSupplierParty", seller, country)
    _party(root, "cac:AccountingCustomerParty", customer, country)
    means = _el(root, "cac:PaymentMeans")
    _el(means, "cbc:ID", "1")  # paid at once (contado)
    _el(means, "cbc:PaymentMeansCode", "48" if invoice.kind != "support_doc" else "42")
    if invoice.paid_at:
        _el(means, "cbc:PaymentDueDate", invoice.paid_at.date().isoformat())
    if customer.get("fx"):  # the buyer's display currency, as information (UBL's place)
        rate = _el(root, "cac:PaymentExchangeRate")
        _el(rate, "cbc:SourceCurrencyCode", cur)
        _el(rate, "cbc:TargetCurrencyCode", customer["fx"]["currency"])
        _el(rate, "cbc:CalculationRate", customer["fx"]["rate"])
        _el(rate, "cbc:Date", customer["fx"]["on"])
    _tax_total(root, invoice.tax_minor, invoice.subtotal_minor,
               lines[0].get("tax_bps", 0) if lines else 0, cur, country)
    total = _el(root, "cac:LegalMonetaryTotal")
    _el(total, "cbc:LineExtensionAmount", amount(invoice.subtotal_minor, cur), currencyID=cur)
    _el(total, "cbc:TaxExclusiveAmount", amount(invoice.subtotal_minor, cur), currencyID=cur)
    _el(total, "cbc:TaxInclusiveAmount", amount(invoice.total_minor, cur), currencyID=cur)
    _el(total, "cbc:PayableAmount", amount(invoice.total_minor, cur), currencyID=cur)
    for n, line in enumerate(lines, start=1):
        node = _el(root, "cac:CreditNoteLine" if credit else "cac:InvoiceLine")
        _el(node, "cbc:ID", n)
        grams = line.get("quantity_g")
        kg = Decimal(grams) / 1000 if grams else Decimal(1)
        _el(node, "cbc:CreditedQuantity" if credit else "cbc:InvoicedQuantity",
            f"{kg:.3f}", unitCode="KGM" if grams else "NIU")
        _el(node, "cbc:LineExtensionAmount", amount(line["net_minor"], cur), currencyID=cur)
        _tax_total(node, line["tax_minor"], line["net_minor"], line.get("tax_bps", 0), cur,
                   country)
        item = _el(node, "cac:Item")
        _el(item, "cbc:Description", describe(line))
        _el(_el(item, "cac:SellersItemIdentification"), "cbc:ID",
            f"{line.get('crop', '')}-{line.get('grade', '')}")
        if line.get("lot"):
            _el(_el(item, "cac:ItemInstance"), "cbc:SerialID", line["lot"])
        price = _el(node, "cac:Price")
        unit = line.get("unit_price_minor") if grams else line["total_minor"]
        _el(price, "cbc:PriceAmount", amount(unit or 0, cur), currencyID=cur)
        _el(price, "cbc:BaseQuantity", "1.000" if grams else "1",
            unitCode="KGM" if grams else "NIU")
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _tax_total(parent, tax: int, taxable: int, bps: int, cur: str, country: str) -> None:
    node = _el(parent, "cac:TaxTotal")
    _el(node, "cbc:TaxAmount", amount(tax, cur), currencyID=cur)
    sub = _el(node, "cac:TaxSubtotal")
    _el(sub, "cbc:TaxableAmount", amount(taxable, cur), currencyID=cur)
    _el(sub, "cbc:TaxAmount", amount(tax, cur), currencyID=cur)
    category = _el(sub, "cac:TaxCategory")
    _el(category, "cbc:Percent", f"{Decimal(bps) / 100:.2f}")
    code, name = TAX_SCHEME.get(country, ("VAT", "VAT"))
    scheme = _el(category, "cac:TaxScheme")
    _el(scheme, "cbc:ID", code)
    _el(scheme, "cbc:Name", name)


def describe(line: dict) -> str:
    """A line's description in the document's language of record (Spanish: the coops' tax
    authorities read Spanish), with the pool, lot and DDS references."""
    parts = [f"{line.get('crop_es') or line.get('crop', '')} {line.get('grade_es') or ''}".strip()]
    if line.get("pool_id"):
        parts.append(f"pedido conjunto #{line['pool_id']}")
    if line.get("lot"):
        parts.append(f"lote {line['lot']}")
    if line.get("dds"):
        parts.append(f"DDS {line['dds']}")
    if line.get("farmer_name"):
        parts.append(line["farmer_name"])
    return ", ".join(parts)


def pdf(page: dict) -> bytes:
    """The printable page's facts (`page`, from views._facts) as a one-file PDF."""
    from fpdf import FPDF

    def safe(text) -> str:  # the core fonts hold Latin-1: anything else becomes "?"
        return str(text).encode("latin-1", "replace").decode("latin-1")

    doc = FPDF(format="A4")
    doc.set_title(safe(page["title"]))
    doc.add_page()
    doc.set_font("Helvetica", "B", 15)
    doc.cell(0, 9, safe(page["title"]), new_x="LMARGIN", new_y="NEXT")
    doc.set_font("Helvetica", size=9)
    for text in page["head"]:
        doc.multi_cell(0, 5, safe(text), new_x="LMARGIN", new_y="NEXT")
    doc.ln(3)
    for heading, party_lines in page["parties"]:
        doc.set_font("Helvetica", "B", 10)
        doc.cell(0, 6, safe(heading), new_x="LMARGIN", new_y="NEXT")
        doc.set_font("Helvetica", size=9)
        for text in party_lines:
            doc.multi_cell(0, 5, safe(text), new_x="LMARGIN", new_y="NEXT")
        doc.ln(2)
    doc.set_font("Helvetica", "B", 10)
    doc.cell(0, 6, safe(page["lines_heading"]), new_x="LMARGIN", new_y="NEXT")
    doc.set_font("Helvetica", size=9)
    for text in page["lines"]:
        doc.multi_cell(0, 5, safe(text), new_x="LMARGIN", new_y="NEXT")
        doc.ln(1)
    doc.ln(2)
    doc.set_font("Helvetica", "B", 10)
    for text in page["totals"]:
        doc.cell(0, 6, safe(text), new_x="LMARGIN", new_y="NEXT")
    doc.set_font("Helvetica", size=9)
    for text in page["foot"]:
        doc.multi_cell(0, 5, safe(text), new_x="LMARGIN", new_y="NEXT")
    return bytes(doc.output())
