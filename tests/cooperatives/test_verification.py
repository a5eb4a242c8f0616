"""Issue 10 §2: a new cooperative is pending until Minga's staff verify its registration (legal
name, tax id with its check digit, country, a document); pending, it sets itself up but opens no
pool and moves no money; names and tax ids are unique per country; staff are made by a `flask`
command, review on their own pages, and every decision (and every staff role) is audited."""
from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from coop.audit.models import AuditEvent
from coop.common.errors import Conflict, ValidationFailed
from coop.common.models import utcnow
from coop.cooperatives import services, verification
from coop.cooperatives.models import CoopDocument, Cooperative, Membership
from coop.cooperatives.verification import Upload, normalise_tax_id
from coop.extensions import db

PDF = b"%PDF-1.4\n% registration\n%%EOF\n"
NIT = "800197268-4"


@pytest.fixture
def en(client):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def found(founder, name="Cooperativa Café Sur", country="CO", currency="COP", tax_id=NIT,
          document=PDF):
    coop = services.create_cooperative(
        founder=founder, name=name, country=country, currency=currency,
        legal_name=f"{name} Ltda.", tax_id=tax_id,
        document=Upload("registro.pdf", document) if document is not None else None)
    db.session.commit()
    return coop


def count(model, *where) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def actions(coop_id=None) -> list[str]:
    db.session.expire_all()
    stmt = select(AuditEvent.action).order_by(AuditEvent.id)
    stmt = stmt.where(AuditEvent.coop_id == coop_id if coop_id is not None
                      else AuditEvent.coop_id.is_(None))
    return list(db.session.scalars(stmt))


@pytest.fixture
def staff(app, make_user):
    def make(email="revisora@minga.example"):
        user = make_user(email=email, name="Revisora")
        result = app.test_cli_runner().invoke(args=["staff", "grant", email])
        assert result.exit_code == 0, result.output
        return user
    return make


# --- tax ids ----------------------------------------------------------------------------------

@pytest.mark.parametrize("country, raw, stored", [
    ("CO", "800197268-4", "800197268-4"), ("CO", "800.197.268-4", "800197268-4"),
    ("CO", "8001972684", "800197268-4"), ("CO", "900123456 - 8", "900123456-8"),
    ("PE", "20100070970", "20100070970"), ("PE", "20456789014", "20456789014"),
    ("MX", " cpa010101ab1 ", "CPA010101AB1"),
])
def test_tax_ids_with_a_right_check_digit_are_kept_normalised(country, raw, stored):
    assert normalise_tax_id(country, raw) == stored


@pytest.mark.parametrize("country, raw, message", [
    ("CO", "800197268-5", "check digit is wrong"), ("CO", "900123456-0", "check digit"),
    ("CO", "80019", "with its check digit"), ("CO", "NIT800197268", "with its check digit"),
    ("PE", "20100070971", "check digit is wrong"), ("PE", "30100070970", "11 digits"),
    ("PE", "2010007097", "11 digits"), ("MX", "", "Give the cooperative's tax id"),
    ("MX", "A" * 40, "at most 32"), ("MX", "ABC\x00", "at most 32"),
])
def test_tax_ids_with_a_wrong_check_digit_are_refused(country, raw, message):
    with pytest.raises(ValidationFailed) as exc:
        normalise_tax_id(country, raw)
    assert message in exc.value.message and "tax_id" in exc.value.fields


# --- founding ---------------------------------------------------------------------------------

def test_a_new_coop_is_pending_and_sets_itself_up(make_user):
    founder = make_user()
    coop = found(founder)
    assert (coop.status, coop.tax_id, coop.founded_by_id) == ("pending", NIT, founder.id)
    assert count(CoopDocument, CoopDocument.coop_id == coop.id) == 1
    assert actions(coop.id) == ["roles.granted", "coop.submitted"]
    # It may set itself up: collection points, members.
    services.add_collection_point(coop, name="Vereda El Tambo")
    services.add_farmer(coop, name="F", email=None, password="12345678", phone="3001112233",
                        member_number="1", national_id="2")
    db.session.commit()
    # Nobody else sees it: public lists and pages show verified coops only.
    assert coop not in services.list_coops()


def test_a_pending_coop_opens_no_pool_and_pays_nobody(client, make_coop, make_farmer,
                                                      make_listing, token):
    from coop.payouts import services as payouts
    from coop.pools import services as pools
    coop = make_coop(pending=True)
    manager = coop.memberships[0].user
    farmer = make_farmer(coop)
    make_listing(farmer, kg="500")
    with pytest.raises(Conflict) as exc:
        pools.open_pool(coop, manager, crop="coffee", grade="sca85", min_kg="100",
                        max_kg="200", closes_at=(utcnow() + timedelta(days=2)).isoformat())
    assert exc.value.code == "coop_not_verified"
    with pytest.raises(Conflict) as exc:
        payouts.create_batch(coop, manager)
    assert exc.value.code == "coop_not_verified"
    with pytest.raises(Conflict):
        payouts.preview_batch(coop)
    # The same through the API.
    response = client.post("/api/v1/pools", headers=token(manager), json={
        "coop_id": coop.id, "crop": "coffee", "grade": "sca85", "min_kg": "100",
        "max_kg": "200", "closes_at": (utcnow() + timedelta(days=2)).isoformat()})
    assert response.status_code == 409
    assert response.json["error"]["code"] == "coop_not_verified"


def test_a_pending_coop_takes_no_share_capital_records_no_cost_and_closes_no_year(
        make_coop, make_farmer):
    """No money moves in a pending coop's ledger: share payments and redemptions, operating
    costs and the year-end close are refused, and nothing is written."""
    from datetime import date

    from coop.ledger.models import LedgerEntry
    from coop.shares import services as shares
    from coop.treasury import costs, year_end
    coop = make_coop(pending=True)
    manager = coop.memberships[0].user
    farmer = make_farmer(coop)
    refusals = [
        lambda: shares.pay(coop, manager, farmer.id, 1_000_000, via="cash", key="s-1"),
        lambda: shares.redeem(coop, manager, farmer.id),
        lambda: costs.record_operating_cost(coop, manager, amount="1000", spent_on=date(2026, 3, 1),
                                            description="Bodega", key="c-1"),
        lambda: year_end.close_year(coop, manager, 2025, today=date(2026, 2, 1)),
    ]
    for refused in refusals:
        with pytest.raises(Conflict) as exc:
            refused()
        assert exc.value.code == "coop_not_verified"
        db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(LedgerEntry).where(
        LedgerEntry.coop_id == coop.id)) == 0


def test_the_founding_form_asks_for_the_registration(en, login, make_user):
    founder = make_user()
    login(founder)
    form = {"name": "Cooperativa Café Sur", "country": "CO", "currency": "COP",
            "region": "Cauca", "legal_name": "Café Sur Ltda.", "tax_id": "800197268-5"}
    response = en.post("/manage/coops/new", data={**form, "document": (io.BytesIO(PDF), "r.pdf")},
                       content_type="multipart/form-data")
    assert response.status_code == 422
    assert "check digit is wrong" in response.get_data(as_text=True)
    response = en.post("/manage/coops/new", data={**form, "tax_id": NIT},
                       content_type="multipart/form-data")
    assert response.status_code == 422
    assert "Attach the registration document" in response.get_data(as_text=True)
    response = en.post("/manage/coops/new", data={
        **form, "tax_id": NIT, "document": (io.BytesIO(b"MZ\x90\x00 not a pdf"), "x.exe")},
        content_type="multipart/form-data")
    assert response.status_code == 422 and "as a PDF" in response.get_data(as_text=True)
    big = b"%PDF-1.4\n" + b"0" * (verification.MAX_DOCUMENT_BYTES + 1)
    response = en.post("/manage/coops/new", data={
        **form, "tax_id": NIT, "document": (io.BytesIO(big), "big.pdf")},
        content_type="multipart/form-data")
    assert response.status_code in (413, 422)
    assert count(Cooperative) == 0 and count(Membership) == 0
    response = en.post("/manage/coops/new", data={
        **form, "tax_id": NIT, "document": (io.BytesIO(PDF), "registro.pdf")},
        content_type="multipart/form-data")
    assert response.status_code == 302
    coop = db.session.scalar(select(Cooperative))
    assert coop.status == "pending"
    page = en.get(f"/manage/coops/{coop.id}").get_data(as_text=True)
    assert "Waiting for Minga" in page
    assert en.get(f"/coops/{coop.slug}").status_code == 404
    assert "Café Sur" not in en.get("/coops").get_data(as_text=True)
    assert all(c["id"] != coop.id for c in en.get("/api/v1/coops").json["items"])


def test_names_and_tax_ids_are_unique_per_country(make_user, make_coop):
    founder = make_user()
    found(founder, name="Cooperativa Café Sur")
    for name, tax_id, code in [("cooperativa  CAFE-sur", "900123456-8", "coop_name_taken"),
                               ("Otra Cooperativa", "800.197.268-4", "tax_id_taken")]:
        with pytest.raises(Conflict) as exc:
            found(make_user(), name=name, tax_id=tax_id)
        assert exc.value.code == code
    db.session.rollback()
    # A verified coop's name is as taken (the seed path too).
    make_coop(name="Nuevo Horizonte")
    with pytest.raises(Conflict):
        found(make_user(), name="Nuevo horizonte", tax_id="900123456-8")
    db.session.rollback()
    # Another country may have its own.
    other = found(make_user(), name="Cooperativa Café Sur", country="PE", currency="PEN",
                  tax_id="20100070970")
    assert other.status == "pending"


def test_one_founder_cannot_flood_the_review(make_user):
    founder = make_user()
    for n in range(verification.MAX_UNVERIFIED_PER_FOUNDER):
        found(founder, name=f"Coop {n}", country="MX", currency="MXN", tax_id=f"T{n}")
    with pytest.raises(Conflict) as exc:
        found(founder, name="One more", country="MX", currency="MXN", tax_id="T99")
    assert exc.value.code == "too_many_pending"


# --- the platform's staff ---------------------------------------------------------------------

def test_staff_are_made_and_unmade_by_a_command_and_audited(app, make_user):
    from coop.staff import services as staff_services
    person = make_user(email="ana@minga.example")
    runner = app.test_cli_runner()
    assert not staff_services.is_staff(person)
    result = runner.invoke(args=["staff", "grant", "ANA@minga.example"])
    assert result.exit_code == 0 and "now staff" in result.output
    assert staff_services.is_staff(person)
    assert "ana@minga.example" in runner.invoke(args=["staff", "list"]).output
    assert runner.invoke(args=["staff", "revoke", "ana@minga.example"]).exit_code == 0
    assert not staff_services.is_staff(person)
    assert runner.invoke(args=["staff", "grant", "nobody@minga.example"]).exit_code != 0
    assert actions(None) == ["staff.granted", "staff.revoked"]
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "staff.granted"))
    assert '"member_id": %d' % person.id in event.after_json


def test_staff_pages_are_a_404_to_everyone_else(client, login, make_coop, make_user):
    coop = make_coop(pending=True)
    login(coop.memberships[0].user)
    for url in ("/staff/coops", f"/staff/coops/{coop.id}", "/staff/audit"):
        assert client.get(url).status_code == 404
    assert client.post(f"/staff/coops/{coop.id}/approve").status_code == 404
    db.session.expire_all()
    assert db.session.get(Cooperative, coop.id).status == "pending"


def test_staff_refuse_with_a_reason_the_founder_reads_then_approve(en, login, make_user,
                                                                  staff):
    founder = make_user(name="Fundadora")
    coop = found(founder)
    reviewer = staff()
    login(reviewer)
    listing = en.get("/staff/coops").get_data(as_text=True)
    assert "Cooperativa Café Sur" in listing and NIT in listing
    page = en.get(f"/staff/coops/{coop.id}").get_data(as_text=True)
    doc = db.session.scalar(select(CoopDocument))
    assert f"/staff/coops/{coop.id}/documents/{doc.id}" in page
    download = en.get(f"/staff/coops/{coop.id}/documents/{doc.id}")
    assert download.status_code == 200 and download.data == PDF
    assert download.mimetype == "application/pdf"
    assert "attachment" in download.headers["Content-Disposition"]
    # A refusal needs its reason.
    assert en.post(f"/staff/coops/{coop.id}/refuse", data={"reason": " "}).status_code == 422
    assert en.post(f"/staff/coops/{coop.id}/refuse",
                   data={"reason": "The document is not legible."}).status_code == 302
    db.session.expire_all()
    coop = db.session.get(Cooperative, coop.id)
    assert (coop.status, coop.refusal_reason, coop.reviewed_by_id) == (
        "refused", "The document is not legible.", reviewer.id)
    # The founder is told on their dashboard and corrects it.
    login(founder)
    assert "The document is not legible." in en.get("/manage").get_data(as_text=True)
    response = en.post(f"/manage/coops/{coop.id}/registration", data={
        "legal_name": "Cooperativa Café Sur Ltda.", "tax_id": NIT,
        "document": (io.BytesIO(PDF + b"% clearer\n"), "registro2.pdf")},
        content_type="multipart/form-data")
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Cooperative, coop.id).status == "pending"
    # Staff approve: the coop is verified, public, and may open pools.
    login(reviewer)
    assert en.post(f"/staff/coops/{coop.id}/approve").status_code == 302
    db.session.expire_all()
    coop = db.session.get(Cooperative, coop.id)
    assert coop.status == "verified" and verification.is_verified(coop)
    assert coop in services.list_coops()
    assert actions(coop.id) == ["roles.granted", "coop.submitted", "coop.refused",
                                "coop.submitted", "coop.verified"]
    login(founder)
    assert "Waiting for Minga" not in en.get("/manage").get_data(as_text=True)


def test_staff_do_not_review_their_own_coop(make_user, staff):
    reviewer = staff()
    coop = found(reviewer)
    from coop.common.errors import Forbidden
    from coop.staff import services as staff_services
    with pytest.raises(Forbidden):
        staff_services.review(reviewer, coop.id, "approve")
    other = found(make_user(), name="Otra", tax_id="900123456-8")
    verification.approve(other, reviewer)
    with pytest.raises(Conflict) as exc:  # verified is final
        verification.approve(other, reviewer)
    assert exc.value.code == "not_pending"


def test_the_founder_is_told_through_one_function(monkeypatch, make_user, staff):
    told = []
    monkeypatch.setattr(verification, "notify_founder", lambda coop: told.append(coop.id))
    coop = found(make_user())
    verification.refuse(coop, staff(), "Wrong document")
    assert told == [coop.id]


def test_the_founder_gets_each_decision_by_e_mail_with_the_reason(make_user, staff, mailbox):
    from coop.jobs import services as jobs
    founder = make_user(name="Fundadora")
    founder.locale = "en"      # told in their own language, not the reviewer's
    coop = found(founder)
    reviewer = staff()
    verification.refuse(coop, reviewer, "The document is not legible.")
    db.session.commit()
    jobs.drain()
    [refused] = mailbox
    assert founder.email in refused.rcpt_tos
    assert "The document is not legible." in refused.text
    coop.status = "pending"
    db.session.commit()
    verification.approve(coop, reviewer)
    db.session.commit()
    jobs.drain()
    assert [m.subject for m in mailbox][1] == "Cooperativa Café Sur is verified"
    assert f"/manage/coops/{coop.id}" in mailbox[1].text


# --- existing data ----------------------------------------------------------------------------

def test_the_migration_marks_existing_coops_verified(tmp_path):
    """Coops made before the rule are verified; a copied name keeps no key (the older has it)."""
    from flask_migrate import upgrade
    from sqlalchemy import create_engine, text

    from coop import create_app
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    app = create_app("testing", SQLALCHEMY_DATABASE_URI=url)
    with app.app_context():
        upgrade(revision="0009")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO users (id, email, name, password_hash, must_set_pin,"
                          " created_at) VALUES (1, 'm@x.org', 'M', 'x', 0, '2026-01-01')"))
        for n, name in enumerate(["Café Sur", "cafe sur", "Otra"], start=1):
            conn.execute(text("INSERT INTO cooperatives (id, slug, name, country, currency,"
                              " region, created_at) VALUES (:n, :s, :name, 'CO', 'COP', '',"
                              " '2026-01-01')"), {"n": n, "s": f"c{n}", "name": name})
            conn.execute(text("INSERT INTO memberships (user_id, coop_id, role, created_at)"
                              " VALUES (1, :n, 'manager', '2026-01-01')"), {"n": n})
    with app.app_context():
        upgrade(revision="0010_verify")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT status, name_key, founded_by_id FROM cooperatives"
                                 " ORDER BY id")).all()
    engine.dispose()
    assert rows == [("verified", "cafe sur", 1), ("verified", None, 1),
                    ("verified", "otra", 1)]


def test_the_demo_coops_are_verified(app):
    from coop.demo.seed import seed_demo
    seed_demo()
    db.session.commit()
    coops = db.session.scalars(select(Cooperative)).all()
    assert coops and all(c.status == "verified" for c in coops)


# --- in Spanish -------------------------------------------------------------------------------

ENGLISH = ["Invitation", "invitation", "Accept", "Decline", "Registration", "Waiting for",
           "Verify", "Refuse", "Legal name", "Tax id", "Document", "Cooperatives to verify",
           "New link", "Withdraw", "Invite", "Log in to answer", "Make my account", "Reason",
           "Status", "Sent the registration", "Gave a role", "Verified", "Refused",
           "Managers and treasurers", "Reviewed lately", "invites"]


def test_the_new_pages_read_in_spanish(client, login, make_user, staff):
    from tests.support.spanish import offending, visible
    from coop.cooperatives import invitations
    founder = make_user(name="Fundadora", email="fundadora@example.org")
    pending = found(founder)
    refused = found(founder, name="Otra Cooperativa", tax_id="900123456-8")
    reviewer = staff()
    verification.refuse(refused, reviewer, "Documento ilegible")
    invitee = make_user(email="invitada@example.org", name="Invitada")
    invitation, token_ = invitations.invite_staff(pending, founder, email=invitee.email,
                                                  role="treasurer")
    db.session.commit()
    es = {"Accept-Language": "es-CO,es;q=0.9"}
    allowed = {"Fundadora", "Invitada", "Revisora", "Cooperativa Café Sur", "Otra Cooperativa",
               "Cooperativa Café Sur Ltda.", "Otra Cooperativa Ltda.", "registro.pdf",
               "Documento ilegible", "invitada@example.org", "fundadora@example.org",
               "revisora@minga.example"}
    pages = {
        reviewer: ["/staff/coops", f"/staff/coops/{pending.id}", f"/staff/coops/{refused.id}",
                   "/staff/audit"],
        founder: ["/manage", f"/manage/coops/{pending.id}",
                  f"/manage/coops/{pending.id}/registration",
                  f"/manage/coops/{refused.id}/registration", "/manage/coops/new",
                  f"/manage/coops/{pending.id}/farmers/new", f"/manage/coops/{pending.id}/audit",
                  f"/invitations/{token_}"],
        invitee: ["/manage", "/invitations", f"/invitations/{token_}", "/account"],
        None: [f"/invitations/{token_}"],
    }
    problems = {}
    for user, urls in pages.items():
        client.post("/logout")
        if user is not None:
            login(user)
        for url in urls:
            response = client.get(url, headers=es)
            if url.endswith("/audit") and response.status_code == 403:
                continue  # a manager's own audit log may be the treasurer's only
            assert response.status_code == 200, (url, response.status_code)
            html = response.get_data(as_text=True)
            text = visible(html)
            for value in allowed:
                text = text.replace(value, " ")
            found_words = [w for w in ENGLISH if re.search(rf"(?<!\w){w}(?!\w)", text)]
            found_words += offending(html, allowed)
            if url == "/staff/coops":
                assert "Cooperativas por verificar" in text
            if url == "/invitations":
                assert "Aceptar" in text and "le invita a ser su tesorero" in text.lower()
            if found_words:
                problems[f"{getattr(user, 'email', 'visitor')} {url}"] = found_words
    assert problems == {}


def test_a_document_named_in_any_script_downloads_with_a_header_a_server_can_send(
        en, login, make_user, staff):
    """Header values travel as Latin-1 (WSGI): a name such as "registro_文件.pdf" is sent as an
    ASCII fallback plus filename*=UTF-8''..., never raw (gunicorn would fail on it: a 500)."""
    from urllib.parse import unquote
    founder = make_user(name="Fundadora")
    coop = services.create_cooperative(
        founder=founder, name="Cooperativa Oriente", country="CO", currency="COP",
        legal_name="Cooperativa Oriente Ltda.", tax_id=NIT,
        document=Upload("registro_文件.pdf", PDF))
    db.session.commit()
    login(staff())
    doc = db.session.scalar(select(CoopDocument).where(CoopDocument.coop_id == coop.id))
    download = en.get(f"/staff/coops/{coop.id}/documents/{doc.id}")
    assert download.status_code == 200 and download.data == PDF
    header = download.headers["Content-Disposition"]
    header.encode("latin-1")  # what the WSGI server does; raises on the raw name
    assert header.startswith("attachment")
    assert unquote(header.split("filename*=UTF-8''", 1)[1]) == doc.filename
    assert "no-store" in download.headers["Cache-Control"]
