"""The farmer's identity document on the weekly purchase documents (documento soporte in
Colombia, liquidación de compra in Peru): recorded where the coop records its farmers (the
manager's farmer form and the member's page), checked per country with the problem at the
field and what was typed kept, optional; each document keeps the one it was issued with and
shows it on the page, the PDF, the CSV and the UBL XML; a document issued without one says
it is missing."""
from __future__ import annotations

import json
import re
import zlib
from datetime import timedelta
from xml.etree import ElementTree as ET

import pytest
from sqlalchemy import select

from coop.audit.models import AuditEvent
from coop.common.errors import ValidationFailed
from coop.common.models import utcnow
from coop.cooperatives import services as coops
from coop.cooperatives.models import FarmerProfile
from coop.extensions import db
from coop.intake import services as intake
from coop.invoices import formats, support
from coop.invoices.models import Invoice
from tests.support.auth import client_as

pytestmark = pytest.mark.usefixtures("ledger_sound")

UBL = {"cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
       "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"}
NEW_FARMER = {"name": "Teresa Quispe", "email": "", "phone": "+57 310 555 0199",
              "password": "", "member_number": "M-901", "national_id": "9001099",
              "payout_rail": "cash", "gender": "female"}


def _profile(coop_id, user_id) -> FarmerProfile:
    db.session.expire_all()
    return coops.farmer_profile(coop_id, user_id)


def _text(response) -> str:
    return response.get_data(as_text=True)


def _pdf_text(data: bytes) -> str:
    """The text drawn in a PDF of fpdf2 (its page streams, inflated where compressed)."""
    out = []
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            out.append(zlib.decompress(stream).decode("latin-1"))
        except zlib.error:
            out.append(stream.decode("latin-1"))
    return "".join(out).replace("\\(", "(").replace("\\)", ")")


# ---------------------------------------------------------------- the rules per country

@pytest.mark.parametrize("country, kind, typed, expected", [
    ("CO", "CC", "1.234.567", "1234567"), ("CO", "CC", "123", "123"),
    ("CO", "CC", " 1234567890 ", "1234567890"), ("PE", "DNI", "45678912", "45678912"),
    ("PE", "RUC", "20100070970", "20100070970"), ("CO", "", "", None)])
def test_a_valid_document_is_kept_normalised(make_coop, country, kind, typed, expected):
    coop = make_coop(country=country, currency="COP" if country == "CO" else "PEN")
    assert coops.farmer_tax_id(coop, kind, typed) == ((kind or None), expected)


@pytest.mark.parametrize("country, kind, typed, field, words", [
    ("CO", "CC", "12", "tax_id", "3 to 10 digits"),
    ("CO", "CC", "12345678901", "tax_id", "3 to 10 digits"),
    ("CO", "CC", "12ab45", "tax_id", "3 to 10 digits"),
    ("PE", "DNI", "4567891", "tax_id", "exactly 8 digits"),
    ("PE", "DNI", "456789123", "tax_id", "exactly 8 digits"),
    ("PE", "RUC", "20100070971", "tax_id", "check digit"),
    ("CO", "DNI", "45678912", "tax_id_type", "type of identity document"),
    ("PE", "CC", "1234567", "tax_id_type", "type of identity document"),
    ("CO", "CC", "", "tax_id", "leave both empty"),
    ("CO", "", "1234567", "tax_id_type", "type of identity document")])
def test_a_wrong_document_is_refused_at_its_field(make_coop, country, kind, typed, field,
                                                  words):
    coop = make_coop(country=country, currency="COP" if country == "CO" else "PEN")
    with pytest.raises(ValidationFailed) as refused:
        coops.farmer_tax_id(coop, kind, typed)
    assert list(refused.value.fields) == [field]
    assert words in str(refused.value.fields[field][0])


# ---------------------------------------------------------------- the manager's forms

def test_the_farmer_form_checks_the_document_keeps_the_input_and_saves_it(app, make_coop):
    coop = make_coop()
    manager = next(m.user for m in coop.memberships if m.role == "manager")
    client = client_as(app, manager)
    url = f"/manage/coops/{coop.id}/farmers/new"
    form = _text(client.get(url))
    assert 'name="tax_id_type"' in form and "Cédula de ciudadanía (CC)" in form
    assert "DNI" not in form  # Peru's documents are not offered to a Colombian coop
    bad = client.post(url, data={**NEW_FARMER, "tax_id_type": "CC", "tax_id": "12-ab"})
    assert bad.status_code == 422
    page = _text(bad)
    assert "3 to 10 digits" in page and 'value="12-ab"' in page
    assert 'value="Teresa Quispe"' in page
    assert db.session.scalar(select(FarmerProfile).where(
        FarmerProfile.member_number == "M-901")) is None
    good = client.post(url, data={**NEW_FARMER, "tax_id_type": "CC", "tax_id": "1.098.765"})
    assert good.status_code == 302, _text(good)[:2000]
    profile = db.session.scalar(select(FarmerProfile).where(
        FarmerProfile.member_number == "M-901"))
    assert (profile.tax_id_type, profile.tax_id) == ("CC", "1098765")
    # Optional: a farmer without one is added as before.
    plain = client.post(url, data={**NEW_FARMER, "phone": "+57 310 555 0198",
                                   "member_number": "M-902", "national_id": "9001098"})
    assert plain.status_code == 302
    profile = db.session.scalar(select(FarmerProfile).where(
        FarmerProfile.member_number == "M-902"))
    assert profile.tax_id_type is None and profile.tax_id is None


def test_an_invited_farmer_gets_the_document_the_manager_typed(app, make_coop, make_user):
    from coop.cooperatives import invitations
    coop = make_coop()
    manager = next(m.user for m in coop.memberships if m.role == "manager")
    person = make_user(email="ana@example.org", name="Ana")
    added = invitations.invite_farmer(coop, manager, name="Ana", email=person.email,
                                      phone=None, password=None, member_number="M-77",
                                      national_id="7007007", tax_id_type="CC",
                                      tax_id="70 070 07")
    db.session.commit()
    invitations.accept(added.invitation, person)
    db.session.commit()
    profile = _profile(coop.id, person.id)
    assert (profile.tax_id_type, profile.tax_id) == ("CC", "7007007")


def test_an_existing_member_s_page_records_changes_and_clears_it(app, make_coop, make_farmer):
    coop = make_coop()
    farmer = make_farmer(coop)
    profile = _profile(coop.id, farmer.id)
    assert profile.tax_id is None  # recorded before it was asked: none
    manager = next(m.user for m in coop.memberships if m.role == "manager")
    client = client_as(app, manager)
    page_url = f"/manage/coops/{coop.id}/farmers/{profile.id}"
    assert "Not recorded yet" in _text(client.get(page_url))
    url = f"{page_url}/tax-id"
    bad = client.post(url, data={"taxid-tax_id_type": "CC", "taxid-tax_id": "99"})
    assert bad.status_code == 422
    assert "3 to 10 digits" in _text(bad) and 'value="99"' in _text(bad)
    assert _profile(coop.id, farmer.id).tax_id is None
    good = client.post(url, data={"taxid-tax_id_type": "CC", "taxid-tax_id": "52.111.222"})
    assert good.status_code == 302
    assert (_profile(coop.id, farmer.id).tax_id_type, _profile(coop.id, farmer.id).tax_id) \
        == ("CC", "52111222")
    assert "Cédula de ciudadanía (CC) 52111222" in _text(client.get(page_url))
    event = db.session.scalar(select(AuditEvent).where(
        AuditEvent.action == "farmer.tax_id_changed"))
    assert json.loads(event.after_json) == {"tax_id_type": "CC", "tax_id": "52111222"}
    assert client.post(url, data={"taxid-tax_id_type": "",
                                  "taxid-tax_id": ""}).status_code == 302
    assert _profile(coop.id, farmer.id).tax_id is None
    # Only the coop's managers.
    assert client_as(app, farmer).post(url, data={"taxid-tax_id_type": "CC",
                                                  "taxid-tax_id": "1234"}).status_code in (
        403, 404)
    assert _profile(coop.id, farmer.id).tax_id is None


def test_the_spanish_page_translates_the_refusal(app, make_coop, make_farmer):
    coop = make_coop()
    farmer = make_farmer(coop)
    profile = _profile(coop.id, farmer.id)
    manager = next(m.user for m in coop.memberships if m.role == "manager")
    client = client_as(app, manager, lang="es")
    page = _text(client.post(f"/manage/coops/{coop.id}/farmers/{profile.id}/tax-id",
                             data={"taxid-tax_id_type": "CC", "taxid-tax_id": "1"}))
    assert "La cédula de ciudadanía tiene de 3 a 10 dígitos" in page


# ---------------------------------------------------------------- the purchase documents

def _deliver(sold):
    for alloc, kg in zip(sold.alloc, ("50", "90", "150")):
        intake.record_intake(sold.manager, alloc.id, received_kg=kg, grade="sca85")
    db.session.commit()


def test_each_document_keeps_the_farmer_s_document_it_was_issued_with(app, sold, client,
                                                                      token):
    first, second = sold.farmers[0], sold.farmers[1]
    coops.set_farmer_tax_id(_profile(sold.coop.id, first.id), "CC", "1.061.234.567")
    db.session.commit()
    _deliver(sold)
    issued = support.issue_week(sold.coop, support.week_of(utcnow()),
                                now=utcnow() + timedelta(days=8))
    db.session.commit()
    with_id = db.session.get(Invoice, issued[first.id])
    without = db.session.get(Invoice, issued[second.id])
    assert json.loads(with_id.customer_json)["tax_id"] == "1061234567"
    assert json.loads(with_id.customer_json)["tax_id_type"] == "CC"
    # Recorded after the week was documented: the issued document keeps what it had.
    coops.set_farmer_tax_id(_profile(sold.coop.id, second.id), "CC", "77777777")
    db.session.commit()
    assert json.loads(db.session.get(Invoice, without.id).customer_json)["tax_id"] == ""

    farmer = client_as(app, first)
    page = _text(farmer.get(f"/my/documents/{with_id.id}"))
    assert "Identity document: Cédula de ciudadanía (CC) 1061234567" in page
    assert "Identity document: Cédula de ciudadanía (CC) 1061234567" in _pdf_text(
        farmer.get(f"/my/documents/{with_id.id}.pdf").data)
    rows = _text(farmer.get(f"/my/documents/{with_id.id}.csv")).splitlines()
    assert rows[0].endswith("farmer_name,farmer_id_type,farmer_id_number")
    assert rows[1].endswith(",CC,1061234567")
    staff = client_as(app, sold.treasurer)
    xml = staff.get(f"/manage/coops/{sold.coop.id}/invoices/{with_id.id}.xml")
    assert xml.status_code == 200
    supplier_ids = ET.fromstring(xml.data).findall(
        ".//cac:AccountingCustomerParty//cbc:CompanyID", UBL)
    assert {(n.text, n.get("schemeName")) for n in supplier_ids} == {("1061234567", "13")}
    listing = _text(staff.get(f"/manage/coops/{sold.coop.id}/invoices.csv"))
    assert "1061234567" in listing
    api = client.get(f"/api/v1/invoices/{with_id.id}", headers=token(sold.treasurer)).json
    assert (api["customer"]["tax_id_type"], api["customer"]["tax_id"]) == ("CC", "1061234567")
    assert api["seller"]["tax_id_type"] == ""

    # The one issued without: missing, said so, never a crash.
    other = client_as(app, second)
    page = _text(other.get(f"/my/documents/{without.id}"))
    assert "Identity document: not recorded" in page and "77777777" not in page
    assert "Identity document: not recorded" in _pdf_text(
        other.get(f"/my/documents/{without.id}.pdf").data)
    assert _text(other.get(f"/my/documents/{without.id}.csv")).splitlines()[1].endswith(",,")
    assert staff.get(f"/manage/coops/{sold.coop.id}/invoices/{without.id}.xml"
                     ).status_code == 200
    spanish = _text(client_as(app, second, lang="es").get(f"/my/documents/{without.id}"))
    assert "Documento de identidad: no registrado" in spanish


def test_a_document_issued_before_the_document_was_asked_shows_it_missing(app, sold):
    """A purchase document issued before this change has no tax_id_type at all."""
    from coop.invoices import views
    _deliver(sold)
    issued = support.issue_week(sold.coop, support.week_of(utcnow()),
                                now=utcnow() + timedelta(days=8))
    db.session.commit()
    doc = db.session.get(Invoice, issued[sold.farmers[0].id])
    db.session.expunge(doc)  # a stand-in in memory: documents are never updated
    doc.customer_json = json.dumps({"name": "Farmer", "tax_id": "", "member_number": "M-1",
                                    "country": "CO", "address": ""})
    with app.test_request_context():
        facts = views._facts(doc, coop_view=True)
        assert "Identity document: not recorded" in facts["parties"][1][1]
        assert formats.pdf(facts)[:4] == b"%PDF"
    assert b"CompanyID" in formats.ubl(doc)
