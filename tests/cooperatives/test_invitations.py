"""Issue 10 §2: nobody joins a coop without consent. Adding a person (by e-mail, or a farmer by
a phone that has an account) makes an invitation they accept or decline, logged in with that
address; until then they are not a member and nothing about them is shown; the add forms give
the same answer whether or not an address has an account. A new farmer by phone is still made
at once. Every role granted or revoked is in the audit log."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from coop.audit.models import AuditEvent
from coop.cooperatives import invitations, services
from coop.cooperatives.models import FarmerProfile, Invitation, Membership
from coop.extensions import db
from tests.support import PASSWORD

FARMER = {"name": "Nombre Que Escribe El Gerente", "email": "", "phone": "",
          "member_number": "NH-0001", "national_id": "1087654321", "gender": "female",
          "household_size": "4", "payout_rail": "cash", "payout_account": "", "bank_name": "",
          "password": ""}


@pytest.fixture
def en(client):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def roles(user_id, coop_id) -> set[str]:
    db.session.expire_all()
    return set(db.session.scalars(select(Membership.role).where(
        Membership.user_id == user_id, Membership.coop_id == coop_id)))


def flashed(response) -> str:
    return " ".join(re.findall(r'<p class="flash[^"]*"[^>]*>(.*?)</p>',
                               response.get_data(as_text=True), re.S))


def link_of(response) -> str:
    match = re.search(r"(http://localhost/invitations/[\w-]+)", flashed(response))
    assert match, flashed(response)
    return match.group(1).replace("http://localhost", "")


def test_the_add_forms_answer_the_same_whether_or_not_an_account_exists(en, login, make_coop,
                                                                        make_user):
    coop = make_coop()
    make_user(email="victim@example.org", name="Victima Real", phone="573009998877")
    login(coop.memberships[0].user)
    answers = []
    for email in ("victim@example.org", "nobody-here@example.org"):
        staff = en.post(f"/manage/coops/{coop.id}/roles",
                        data={"email": email, "role": "treasurer"}, follow_redirects=True)
        farmer = en.post(f"/manage/coops/{coop.id}/farmers/new", follow_redirects=True,
                         data={**FARMER, "email": email,
                               "member_number": f"NH-{len(answers)}",
                               "national_id": f"{len(answers)}"})
        for response in (staff, farmer):
            assert response.status_code == 200
            message = re.sub(r"/invitations/[\w-]+", "LINK",
                             flashed(response).replace(email, "ADDRESS"))
            message = message.replace("You are logged out.", "").strip()
            answers.append((response.status_code, response.request.path, message))
    # The same status, page and message, but for the address typed and the link.
    assert answers[0] == answers[2] and answers[1] == answers[3]
    assert answers[0][2].startswith("Invitation ready for ADDRESS")
    # Nobody was joined, nothing of the account shows.
    victim = db.session.scalar(select(Membership).join(Membership.user).where(
        Membership.coop_id == coop.id, Membership.role != "manager"))
    assert victim is None
    page = en.get(f"/manage/coops/{coop.id}").get_data(as_text=True)
    assert "Victima Real" not in page and "573009998877" not in page
    assert db.session.scalar(select(func.count()).select_from(FarmerProfile)) == 0


def test_an_invited_person_is_no_member_until_they_accept(en, login, make_coop, make_user,
                                                         token):
    coop = make_coop()
    manager = coop.memberships[0].user
    person = make_user(email="tesorera@example.org", name="Tesorera Real", phone="573001234567")
    login(manager)
    response = en.post(f"/manage/coops/{coop.id}/roles",
                       data={"email": "tesorera@example.org", "role": "treasurer"})
    assert response.status_code == 302
    assert roles(person.id, coop.id) == set()
    # The coop sees only what its manager typed: no name, no phone.
    page = en.get(f"/manage/coops/{coop.id}").get_data(as_text=True)
    assert "tesorera@example.org" in page  # typed by the manager
    assert "Tesorera Real" not in page and "573001234567" not in page
    # Her own API and pages are untouched: she is no member anywhere.
    headers = token(person)
    assert en.get("/api/v1/listings", headers=headers).status_code == 403
    # She sees the invitation on her dashboard and accepts it.
    login(person)
    dashboard = en.get("/manage").get_data(as_text=True)
    assert coop.name in dashboard and "Accept" in dashboard
    invitation = db.session.scalar(select(Invitation))
    assert en.post(f"/invitations/{invitation.id}/accept").status_code == 302
    assert roles(person.id, coop.id) == {"treasurer"}
    assert en.get(f"/manage/coops/{coop.id}/audit").status_code in (200, 302, 403)
    assert invitations.for_user(person) == []


def test_only_the_addressee_answers_and_declining_joins_nothing(en, login, make_coop,
                                                               make_user):
    coop = make_coop()
    person = make_user(email="invited@example.org")
    intruder = make_user(email="intruder@example.org")
    invitation, token_ = invitations.invite_staff(coop, coop.memberships[0].user,
                                                  email="invited@example.org", role="manager")
    db.session.commit()
    login(intruder)
    assert en.post(f"/invitations/{invitation.id}/accept").status_code == 404
    assert en.post(f"/invitations/{invitation.id}/decline").status_code == 404
    page = en.get(f"/invitations/{token_}").get_data(as_text=True)
    assert "for another address" in page and "Accept" not in page
    assert roles(intruder.id, coop.id) == set()
    login(person)
    assert en.post(f"/invitations/{invitation.id}/decline").status_code == 302
    assert roles(person.id, coop.id) == set()
    db.session.expire_all()
    assert db.session.get(Invitation, invitation.id).status == "declined"
    assert en.post(f"/invitations/{invitation.id}/accept").status_code == 404  # answered


def test_a_farmer_invited_by_email_accepts_with_the_details_the_manager_filled(
        en, login, make_coop, make_user):
    coop = make_coop()
    person = make_user(email="maria@example.org", name="María Real")
    login(coop.memberships[0].user)
    response = en.post(f"/manage/coops/{coop.id}/farmers/new", data={
        **FARMER, "email": "maria@example.org", "payout_rail": "nequi",
        "payout_account": "3115550101"}, follow_redirects=True)
    link = link_of(response)
    assert db.session.scalar(select(func.count()).select_from(FarmerProfile)) == 0
    # Logged out, the link asks to log in; logged in as her, she accepts.
    en.post("/logout")
    assert "Log in to answer" in en.get(link).get_data(as_text=True)
    login(person)
    page = en.get(link).get_data(as_text=True)
    assert coop.name in page and "Accept" in page
    invitation = db.session.scalar(select(Invitation))
    assert en.post(f"/invitations/{invitation.id}/accept").status_code == 302
    profile = services.farmer_profile(coop.id, person.id)
    assert (profile.member_number, profile.payout_rail, profile.payout_account) == (
        "NH-0001", "nequi", "3115550101")
    assert db.session.get(type(person), person.id).name == "María Real"  # unchanged


def test_a_new_address_makes_its_account_from_the_link(en, make_coop):
    coop = make_coop()
    invitation, token_ = invitations.invite_staff(coop, coop.memberships[0].user,
                                                  email="nueva@example.org", role="treasurer")
    db.session.commit()
    response = en.post(f"/invitations/{token_}/account",
                       data={"name": "Nueva Tesorera", "password": PASSWORD})
    assert response.status_code == 302
    assert en.post(f"/invitations/{invitation.id}/accept").status_code == 302
    user = invitations.addressee(db.session.get(Invitation, invitation.id))
    assert user.name == "Nueva Tesorera" and roles(user.id, coop.id) == {"treasurer"}


def test_links_are_404_once_withdrawn_renewed_or_unknown(en, login, make_coop, make_user):
    coop = make_coop()
    make_user(email="x@example.org")
    login(coop.memberships[0].user)
    first = link_of(en.post(f"/manage/coops/{coop.id}/roles", follow_redirects=True,
                            data={"email": "x@example.org", "role": "treasurer"}))
    invitation = db.session.scalar(select(Invitation))
    second = link_of(en.post(
        f"/manage/coops/{coop.id}/invitations/{invitation.id}/renew", follow_redirects=True))
    assert en.get(first).status_code == 404 and en.get(second).status_code == 200
    assert en.post(f"/manage/coops/{coop.id}/invitations/{invitation.id}/withdraw"
                   ).status_code == 302
    assert en.get(second).status_code == 404
    assert en.get("/invitations/not-a-real-token-at-all").status_code == 404
    # Another coop's manager cannot touch it.
    other = make_coop()
    login(other.memberships[0].user)
    assert en.post(f"/manage/coops/{other.id}/invitations/{invitation.id}/renew"
                   ).status_code == 404


def test_a_new_farmer_by_phone_is_still_made_at_once(en, login, make_coop):
    coop = make_coop()
    login(coop.memberships[0].user)
    response = en.post(f"/manage/coops/{coop.id}/farmers/new", follow_redirects=True,
                       data={**FARMER, "phone": "3115550101"})
    code = re.search(r"First-login code for [^:]+: (\d{8})", flashed(response)).group(1)
    profile = db.session.scalar(select(FarmerProfile))
    assert profile.user.must_set_pin and roles(profile.user_id, coop.id) == {"farmer"}
    en.post("/logout")
    assert en.post("/login", data={"login": "3115550101", "password": code}).status_code == 302


def test_every_role_granted_or_revoked_is_audited(en, login, make_coop, make_user):
    coop = make_coop()
    manager = coop.memberships[0].user
    helper = make_user(email="ayuda@example.org", name="Ayuda")
    login(manager)
    en.post(f"/manage/coops/{coop.id}/roles", data={"email": "ayuda@example.org",
                                                    "role": "manager"})
    login(helper)
    invitation = db.session.scalar(select(Invitation))
    en.post(f"/invitations/{invitation.id}/accept")
    login(manager)
    assert en.post(f"/manage/coops/{coop.id}/roles/{helper.id}/manager/revoke"
                   ).status_code == 302
    db.session.expire_all()
    events = db.session.execute(select(AuditEvent.action, AuditEvent.user_id,
                                       AuditEvent.after_json, AuditEvent.before_json)
                                .where(AuditEvent.coop_id == coop.id)
                                .order_by(AuditEvent.id)).all()
    assert [e.action for e in events] == ["roles.granted", "roles.invited", "roles.granted",
                                          "roles.invitation_accepted", "roles.revoked"]
    granted, revoked = events[2], events[4]
    assert granted.user_id == manager.id and f'"member_id": {helper.id}' in granted.after_json
    assert '"role": "manager"' in granted.after_json
    assert revoked.user_id == manager.id and f'"member_id": {helper.id}' in revoked.before_json
    # The audit log reads them in words, with the person's name.
    from coop.audit import services as audit
    rows = audit.rows(coop, audit.events(coop.id))
    assert any(r.what.startswith("Removed a role") and ("Person", "Ayuda") in r.details
               for r in rows)


def test_routes_never_join_a_person_without_their_invitation():
    """The members' views and API call the invitation services; only the seed, the fixtures,
    an accepted invitation and a new account by phone call add_farmer or grant_role."""
    root = Path(__file__).resolve().parents[2] / "coop" / "cooperatives"
    for name in ("views.py", "api.py"):
        tree = ast.parse((root / name).read_text())
        called = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
        assert not called & {"add_farmer", "grant_role", "make_farmer_profile"}, name


def test_the_api_lists_accepts_and_declines_only_the_callers_invitations(client, make_coop,
                                                                         make_user, token):
    coop = make_coop()
    manager = coop.memberships[0].user
    person = make_user(email="api@example.org")
    other = make_user(email="other@example.org")
    first, _ = invitations.invite_staff(coop, manager, email="api@example.org",
                                        role="treasurer")
    second, _ = invitations.invite(coop, manager, "farmer", email="api@example.org",
                                   name="Typed", details={"member_number": "7",
                                                          "national_id": "77"})
    db.session.commit()
    theirs = token(other)
    assert client.get("/api/v1/invitations", headers=theirs).json["items"] == []
    assert client.post(f"/api/v1/invitations/{first.id}/accept",
                       headers=theirs).status_code == 404
    mine = token(person)
    listed = client.get("/api/v1/invitations", headers=mine).json["items"]
    assert [(i["id"], i["role"], i["coop_id"]) for i in listed] == [
        (first.id, "treasurer", coop.id), (second.id, "farmer", coop.id)]
    response = client.post(f"/api/v1/invitations/{first.id}/accept", headers=mine)
    assert response.status_code == 200 and response.json["status"] == "accepted"
    response = client.post(f"/api/v1/invitations/{second.id}/decline", headers=mine)
    assert response.status_code == 200 and response.json["status"] == "declined"
    assert roles(person.id, coop.id) == {"treasurer"}
    assert client.post(f"/api/v1/invitations/{second.id}/accept",
                       headers=mine).status_code == 404
    assert client.get("/api/v1/invitations").status_code == 401


def test_a_farmer_invited_by_phone_sees_it_on_their_own_pages(en, login, make_coop,
                                                             make_farmer):
    home, other = make_coop(), make_coop()
    farmer = make_farmer(home, phone="573117778899")
    login(other.memberships[0].user)
    response = en.post(f"/manage/coops/{other.id}/farmers/new",
                       data={**FARMER, "phone": "+57 311 777 8899"})
    assert response.status_code == 302
    assert roles(farmer.id, other.id) == set()
    login(farmer)
    page = en.get("/my/listings").get_data(as_text=True)  # a member's pages: the coop's locale
    assert "Una invitación a una cooperativa espera su respuesta." in page
    mine = en.get("/invitations").get_data(as_text=True)
    assert other.name in mine
    invitation = db.session.scalar(select(Invitation))
    assert en.post(f"/invitations/{invitation.id}/accept").status_code == 302
    assert roles(farmer.id, other.id) == {"farmer"}
    assert "espera su respuesta" not in en.get("/my/listings").get_data(as_text=True)


def test_two_answers_at_once_make_one_member(app, make_coop, make_user):
    """Two accepts of one invitation at the same moment (two tabs, a double tap): one joins;
    on PostgreSQL the other waits on the invitation's row and finds it answered (404), never
    a unique-constraint error. (SQLite lets one writer through and refuses the other.)"""
    from tests.support import is_postgres
    import threading
    coop = make_coop()
    person = make_user(email="twice@example.org")
    invitation, _ = invitations.invite(coop, coop.memberships[0].user, "farmer",
                                       email="twice@example.org", name="Twice",
                                       details={"member_number": "T-1", "national_id": "11"})
    db.session.commit()
    person_id, invitation_id = person.id, invitation.id
    barrier, outcomes = threading.Barrier(2), []

    def answer():
        with app.app_context():
            try:
                user = db.session.get(type(person), person_id)
                found = db.session.get(Invitation, invitation_id)
                barrier.wait(timeout=30)
                invitations.accept(found, user)
                db.session.commit()
                outcomes.append("accepted")
            except Exception as exc:  # noqa: BLE001 - the outcome is what the test reads
                db.session.rollback()
                outcomes.append(type(exc).__name__)
            finally:
                db.session.remove()
    threads = [threading.Thread(target=answer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert outcomes.count("accepted") == 1, outcomes
    if is_postgres():
        assert sorted(outcomes) == ["NotFound", "accepted"]
    assert roles(person.id, coop.id) == {"farmer"}
    assert db.session.scalar(select(func.count()).select_from(FarmerProfile)) == 1
