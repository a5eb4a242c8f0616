"""The invoice pages and API: who reaches which document (the buyer's own, the coop's staff;
nobody another coop's or another buyer's), the printable page, PDF and UBL XML, the coop's
list, filters and CSV export, acceptance codes by hand and by file, the settings form, and
the buyer's billing details asked before a first order."""
from __future__ import annotations

import io
from xml.etree import ElementTree as ET

import pytest
from sqlalchemy import select

from coop.extensions import db
from tests.support.auth import client_as
from coop.invoices import services as invoices
from coop.invoices.models import Invoice, InvoiceSettings

pytestmark = pytest.mark.usefixtures("ledger_sound")

UBL = {"cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
       "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
       "sts": "dian:gov:co:facturaelectronica:Structures-2-1"}




def _csrf(html: str) -> str:
    """The form's CSRF token (the test config has CSRF off: any page's token is empty)."""
    import re
    found = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    return found.group(1) if found else ""


def _invoice_of(buyer) -> Invoice:
    return db.session.scalar(select(Invoice).where(Invoice.buyer_id == buyer.buyer_id,
                                                   Invoice.kind == "invoice"))


@pytest.fixture
def other(make_coop, make_user, make_buyer):
    class Other:
        pass
    o = Other()
    o.treasurer = make_user(name="Otra tesorera")
    o.coop = make_coop(treasurer=o.treasurer)
    o.manager = next(x.user for x in o.coop.memberships if x.role == "manager")
    o.buyer = make_buyer(organisation="Otro comprador")
    return o


def test_each_role_reaches_only_its_own_documents(app, sold, other, make_farmer):
    doc = _invoice_of(sold.buyers[0])
    mine = f"/my/invoices/{doc.id}"
    coops = f"/manage/coops/{sold.coop.id}/invoices/{doc.id}"
    smuggled = f"/manage/coops/{other.coop.id}/invoices/{doc.id}"
    expect = [
        (sold.buyers[0], mine, 200), (sold.buyers[1], mine, 404), (other.buyer, mine, 404),
        (sold.farmers[0], mine, 403), (sold.manager, mine, 403),
        (sold.treasurer, coops, 200), (sold.manager, coops, 200),
        (sold.farmers[0], coops, 403), (sold.buyers[0], coops, 404),
        (other.manager, coops, 404), (other.treasurer, coops, 404),
        (other.manager, smuggled, 404),
    ]
    for user, url, status in expect:
        for suffix in ("", ".pdf", ".xml"):
            response = client_as(app, user).get(url + suffix)
            assert response.status_code == status, (user.email, url + suffix)
    anon = app.test_client()
    assert anon.get(mine).status_code == 302 and anon.get(coops).status_code == 302
    for user, status in ((sold.treasurer, 200), (other.treasurer, 404), (sold.farmers[0], 403),
                         (sold.buyers[0], 404)):
        assert client_as(app, user).get(
            f"/manage/coops/{sold.coop.id}/invoices").status_code == status
        assert client_as(app, user).get(
            f"/manage/coops/{sold.coop.id}/invoice-settings").status_code == status


def test_the_printable_page_pdf_and_ubl_carry_the_invoice(app, sold):
    doc = _invoice_of(sold.buyers[0])
    buyer = client_as(app, sold.buyers[0])
    page = buyer.get(f"/my/invoices/{doc.id}").get_data(as_text=True)
    assert doc.full_number in page and "Buyer 0 S.A.S." in page
    assert "farmer" in page and "commission" in page and "premium" in page
    pdf = buyer.get(f"/my/invoices/{doc.id}.pdf")
    assert pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF")
    xml = buyer.get(f"/my/invoices/{doc.id}.xml")
    root = ET.fromstring(xml.data)
    assert root.tag.endswith("}Invoice")
    assert root.find("cbc:ID", UBL).text == doc.full_number
    assert root.find("cbc:DocumentCurrencyCode", UBL).text == "COP"
    assert root.find("cac:LegalMonetaryTotal/cbc:PayableAmount", UBL).text == \
        str(doc.total_minor // 100) + "." + f"{doc.total_minor % 100:02d}"
    supplier = root.find("cac:AccountingSupplierParty/cac:Party/cac:PartyTaxScheme", UBL)
    assert supplier.find("cac:TaxScheme/cbc:ID", UBL).text == "01"
    assert root.find(".//sts:AuthorizedInvoices/sts:Prefix", UBL).text == "FV"
    assert len(root.findall("cac:InvoiceLine", UBL)) == 1
    orders = buyer.get("/my/orders").get_data(as_text=True)
    assert f"/my/invoices/{doc.id}" in orders


def test_the_coop_lists_filters_exports_and_records_acceptance_codes(app, sold):
    docs = list(db.session.scalars(select(Invoice).order_by(Invoice.number)))
    treasurer = client_as(app, sold.treasurer)
    listing = treasurer.get(f"/manage/coops/{sold.coop.id}/invoices?kind=invoice")
    html = listing.get_data(as_text=True)
    assert all(d.full_number in html for d in docs)
    assert docs[0].full_number not in treasurer.get(
        f"/manage/coops/{sold.coop.id}/invoices?kind=credit_note").get_data(as_text=True)
    assert docs[0].full_number not in treasurer.get(
        f"/manage/coops/{sold.coop.id}/invoices?until=2000-01-01").get_data(as_text=True)
    csv_text = treasurer.get(f"/manage/coops/{sold.coop.id}/invoices.csv").get_data(as_text=True)
    assert csv_text.splitlines()[0].startswith("number,kind,issued_at")
    assert len(csv_text.splitlines()) == 1 + len(docs)
    page = treasurer.get(f"/manage/coops/{sold.coop.id}/invoices/{docs[0].id}")
    token = _csrf(page.get_data(as_text=True))
    response = treasurer.post(f"/manage/coops/{sold.coop.id}/invoices/{docs[0].id}/acceptance",
                              data={"csrf_token": token, "code": "a" * 96})
    assert response.status_code == 302
    assert invoices.acceptance_codes([docs[0].id]) == {docs[0].id: "a" * 96}
    assert "a" * 96 in client_as(app, sold.buyers[0]).get(
        f"/my/invoices/{docs[0].id}").get_data(as_text=True) or docs[0].buyer_id != \
        sold.buyers[0].buyer_id
    body = f"number,code\n{docs[1].full_number},CDR-77\nNOPE9,x\n".encode()
    response = treasurer.post(f"/manage/coops/{sold.coop.id}/invoices/acceptances",
                              data={"csrf_token": token,
                                    "file": (io.BytesIO(body), "codes.csv")},
                              content_type="multipart/form-data")
    assert response.status_code == 200
    assert invoices.acceptance_codes([docs[1].id]) == {docs[1].id: "CDR-77"}
    assert "NOPE9" in response.get_data(as_text=True)


def test_the_settings_form_keeps_bad_input_and_reads_numbers_in_the_coops_locale(app, sold):
    manager = client_as(app, sold.manager)
    with manager.session_transaction() as session:
        session["lang"] = "es"  # es_CO: "5.000" is five thousand, "19,5" nineteen and a half
    url = f"/manage/coops/{sold.coop.id}/invoice-settings"
    token = _csrf(manager.get(url).get_data(as_text=True))
    data = {"csrf_token": token, "legal_name": "Cooperativa Test", "tax_id": "800197268-5",
            "address": "Calle 1", "invoice_prefix": "SETP", "invoice_from": "1",
            "invoice_to": "5.000", "invoice_resolution": "DIAN 187600", "tax_coffee": "19,5",
            "tax_cacao": "diez"}
    response = manager.post(url, data=data)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "NIT" in html and 'value="800197268-5"' in html and 'value="diez"' in html
    assert 'id="tax_cacao-err"' in html
    assert db.session.scalar(select(InvoiceSettings)) is None
    response = manager.post(url, data={**data, "tax_id": "800197268-4", "tax_cacao": ""})
    assert response.status_code == 302, response.get_data(as_text=True)
    row = invoices.settings_of(sold.coop.id)
    assert invoices.tax_rates_of(row) == {"coffee": 1950}
    assert invoices.numbering_of(row)["invoice"]["to"] == 5000


def test_a_buyer_without_billing_details_is_sent_to_the_form_and_back(app, market, make_buyer,
                                                                     stripe_clean):
    pool = market.open_pool(min_kg="100", max_kg="500")
    newcomer = make_buyer(organisation="Neu GmbH", billing=False)
    client = client_as(app, newcomer)
    token = _csrf(client.get(f"/pools/{pool.id}").get_data(as_text=True))
    response = client.post(f"/pools/{pool.id}", data={"csrf_token": token, "quantity_kg": "10",
                                                      "payment_method": "pm_card_visa"})
    assert response.status_code == 302 and "/my/billing" in response.headers["Location"]
    form_url = response.headers["Location"]
    token = _csrf(client.get(form_url).get_data(as_text=True))
    bad = client.post(form_url, data={"csrf_token": token, "legal_name": "Neu GmbH",
                                      "tax_id": "800197268-5", "country": "CO",
                                      "address": "Calle 2"})
    assert bad.status_code == 422 and 'value="Neu GmbH"' in bad.get_data(as_text=True)
    good = client.post(form_url, data={"csrf_token": token, "legal_name": "Neu GmbH",
                                       "tax_id": "DE123456789", "country": "DE",
                                       "address": "Hafen 1"})
    assert good.status_code == 302 and good.headers["Location"].endswith(f"/pools/{pool.id}")


def test_the_api_lists_pages_and_guards_documents(app, sold, other, client, token):
    doc = _invoice_of(sold.buyers[0])
    headers = token(sold.buyers[0])
    body = client.get("/api/v1/invoices?limit=1", headers=headers).get_json()
    assert [i["id"] for i in body["items"]] == [doc.id] and body["next_cursor"] is None
    one = client.get(f"/api/v1/invoices/{doc.id}", headers=headers).get_json()
    assert one["number"] == doc.full_number and one["lines"][0]["quantity_kg"] == "200.000"
    assert client.get(f"/api/v1/invoices/{doc.id}.pdf", headers=headers).data[:4] == b"%PDF"
    assert b"<cbc:ID>" in client.get(f"/api/v1/invoices/{doc.id}.xml", headers=headers).data
    for user in (sold.buyers[1], other.buyer, other.manager, sold.farmers[0]):
        assert client.get(f"/api/v1/invoices/{doc.id}", headers=token(user)).status_code == 404
    staff = client.get(f"/api/v1/invoices?coop_id={sold.coop.id}", headers=token(sold.treasurer))
    assert len(staff.get_json()["items"]) == 2
    assert client.get(f"/api/v1/invoices?coop_id={sold.coop.id}",
                      headers=token(other.manager)).status_code == 404
    put = client.put("/api/v1/billing-details", headers=token(other.buyer),
                     json={"legal_name": "X", "tax_id": "1", "country": "CO", "address": "y"})
    assert put.status_code == 422 and "tax_id" in put.get_json()["error"]["fields"]
