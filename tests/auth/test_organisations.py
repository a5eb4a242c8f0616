"""Buyers as organisations (issue 14, part 4): several users per buyer, in roles; the admin
invites, changes roles and removes (never the last admin), each after a confirmation; an
accounts user sees the organisation's orders and never orders (403, in HTML and the API);
invoices go to the accounts users' e-mails, else the admins'."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from coop.auth import organisations
from coop.auth import services as auth_services
from coop.auth.models import BuyerInvitation, User
from coop.common.errors import Conflict, Forbidden, NotFound
from coop.extensions import db
from coop.pools import services as pools
from tests.support import PASSWORD
from tests.support.confirm import confirm, is_confirmation
from tests.support.intake import VISA

@pytest.fixture(autouse=True)
def _english(client):
    """The pages in English (the session keeps the language across logins)."""
    client.get("/lang/en")


LINK = re.compile(r"(/organisation-invitations/[A-Za-z0-9_-]+)")


def _join(admin, role, make_user=None, email=None):
    """A colleague in `role`, invited by `admin` and accepted (a new or given account)."""
    user = make_user(email=email) if make_user else None
    invitation, token = organisations.invite(admin, email=user.email if user else email,
                                             role=role)
    if user is None:
        user = organisations.sign_up_to_accept(token, name="Colleague", password=PASSWORD)
    else:
        organisations.accept(token, user)
    db.session.commit()
    return user


def _flashed_link(client) -> str:
    page = client.get("/account/organisation").get_data(as_text=True)
    found = LINK.search(page)
    assert found, page[:3000]
    return found.group(1)


def test_sign_up_makes_an_admin_and_backfill_reads_old_users_as_admins(make_buyer):
    buyer = make_buyer()
    assert buyer.buyer_role == "admin" and organisations.role_of(buyer) == "admin"
    buyer.buyer_role = None  # a buyer user from before roles (the migration sets admin)
    db.session.commit()
    assert organisations.role_of(buyer) == "admin" and organisations.can_order(buyer)
    assert auth_services.accounts_emails(buyer.buyer_id) == [buyer.email]


def test_invite_by_link_new_account_then_existing_account(client, login, make_buyer,
                                                         make_user):
    admin = make_buyer(organisation="Tostadores Hamburg")
    login(admin)
    response = client.post("/account/organisation/invite",
                           data={"email": "Einkauf@Example.org", "role": "purchaser"})
    assert response.status_code == 302
    link = _flashed_link(client)
    client.post("/logout")
    page = client.get(link).get_data(as_text=True)
    assert "Tostadores Hamburg" in page and "einkauf@example.org" in page
    # Bad input keeps the form and joins nobody.
    response = client.post(f"{link}/account", data={"name": "Eva", "password": "short"})
    assert response.status_code == 422 and 'value="Eva"' in response.get_data(as_text=True)
    response = client.post(f"{link}/account", data={"name": "Eva", "password": PASSWORD})
    assert response.status_code == 302
    eva = db.session.scalar(select(User).where(User.email == "einkauf@example.org"))
    assert (eva.buyer_id, eva.buyer_role) == (admin.buyer_id, "purchaser")
    assert client.get(link).status_code == 404  # the link worked once
    # An existing account accepts, logged in with the invited address.
    known = make_user(email="buchhaltung@example.org")
    _invitation, token = organisations.invite(admin, email=known.email, role="accounts")
    db.session.commit()
    login(make_user())  # someone else: not theirs
    assert client.post(f"/organisation-invitations/{token}/accept").status_code == 404
    login(known)
    assert "Accept and join" in client.get(f"/organisation-invitations/{token}").get_data(
        as_text=True)
    assert client.post(f"/organisation-invitations/{token}/accept").status_code == 302
    db.session.expire_all()
    assert (known.buyer_id, known.buyer_role) == (admin.buyer_id, "accounts")
    assert auth_services.accounts_emails(admin.buyer_id) == ["buchhaltung@example.org"]
    listing = client.get("/account/organisation").get_data(as_text=True)
    assert "Eva" in listing and "purchaser" in listing
    assert 'action="/account/organisation/invite"' not in listing  # accounts: no admin forms


def test_invite_refusals(make_buyer, make_user):
    admin = make_buyer()
    other = make_buyer(organisation="Otra")
    with pytest.raises(Conflict):
        organisations.invite(admin, email=admin.email, role="purchaser")
    with pytest.raises(Exception):
        organisations.invite(admin, email="x@example.org", role="owner")
    purchaser = _join(admin, "purchaser", email="p@example.org")
    with pytest.raises(Forbidden):
        organisations.invite(purchaser, email="y@example.org", role="purchaser")
    # A user of another organisation cannot accept (one organisation per user).
    _inv, token = organisations.invite(admin, email=other.email, role="purchaser")
    with pytest.raises(Conflict):
        organisations.accept(token, other)
    # Invited again: one invitation, the new role, the old link dead.
    inv1, token1 = organisations.invite(admin, email="z@example.org", role="purchaser")
    inv2, token2 = organisations.invite(admin, email="z@example.org", role="accounts")
    assert inv1.id == inv2.id and inv2.role == "accounts"
    with pytest.raises(NotFound):
        organisations.by_token(token1)
    db.session.commit()
    assert db.session.scalar(select(BuyerInvitation.role).where(
        BuyerInvitation.email == "z@example.org")) == "accounts"


def test_role_change_and_removal_ask_once_more(client, login, make_buyer):
    admin = make_buyer()
    colleague = _join(admin, "purchaser", email="col@example.org")
    login(admin)
    first = client.post(f"/account/organisation/users/{colleague.id}/role",
                        data={"role": "accounts"})
    assert is_confirmation(first)
    db.session.expire_all()
    assert colleague.buyer_role == "purchaser"  # nothing yet
    assert confirm(client, first).status_code == 302
    db.session.expire_all()
    assert colleague.buyer_role == "accounts"
    first = client.post(f"/account/organisation/users/{colleague.id}/remove")
    assert is_confirmation(first)
    assert "leaves the organisation" in first.get_data(as_text=True)
    assert confirm(client, first).status_code == 302
    db.session.expire_all()
    assert colleague.buyer_id is None and colleague.buyer_role is None


def test_never_the_last_admin(client, login, make_buyer):
    admin = make_buyer()
    with pytest.raises(Conflict):
        organisations.change_role(admin, admin.id, "purchaser")
    with pytest.raises(Conflict):
        organisations.remove(admin, admin.id)
    login(admin)
    response = client.post(f"/account/organisation/users/{admin.id}/role",
                           data={"role": "accounts"}, follow_redirects=True)
    assert "at least one admin" in response.get_data(as_text=True)
    second = _join(admin, "admin", email="second@example.org")
    organisations.change_role(admin, admin.id, "purchaser")  # another admin remains
    db.session.commit()
    with pytest.raises(Forbidden):
        organisations.remove(admin, second.id)  # no longer an admin
    with pytest.raises(Conflict):
        organisations.remove(second, second.id)


def test_other_organisation_and_other_roles_are_refused(client, login, make_buyer, make_user,
                                                       make_farmer, market):
    admin = make_buyer()
    stranger_admin = make_buyer(organisation="Stranger")
    colleague = _join(admin, "purchaser", email="c@example.org")
    accounts = _join(admin, "accounts", email="a@example.org")
    # Anonymous: to the login page.
    client.post("/logout")
    assert client.get("/account/organisation").status_code == 302
    assert client.post("/account/organisation/invite",
                       data={"email": "n@example.org", "role": "admin"}).status_code == 302
    # Not a buyer (a farmer, a manager): 403.
    for person in (market.farmers[0], market.manager, make_user()):
        login(person)
        assert client.get("/account/organisation").status_code == 403
        assert client.post(f"/account/organisation/users/{colleague.id}/remove"
                           ).status_code == 403
    # A purchaser and an accounts user see the organisation but change nothing.
    for person in (colleague, accounts):
        login(person)
        assert client.get("/account/organisation").status_code == 200
        assert client.post("/account/organisation/invite",
                           data={"email": "n@example.org", "role": "admin"}).status_code == 403
        assert client.post(f"/account/organisation/users/{admin.id}/role",
                           data={"role": "accounts"}).status_code in (302, 403)
        db.session.expire_all()
        assert admin.buyer_role == "admin"
    # Another organisation's admin: the user is not found.
    login(stranger_admin)
    assert client.post(f"/account/organisation/users/{colleague.id}/role",
                       data={"role": "accounts"}).status_code == 404
    assert client.post(f"/account/organisation/users/{colleague.id}/remove").status_code == 404
    invitation, _token = organisations.invite(admin, email="w@example.org", role="accounts")
    db.session.commit()
    assert client.post(f"/account/organisation/invitations/{invitation.id}/withdraw"
                       ).status_code == 404
    login(admin)
    assert client.post(f"/account/organisation/invitations/{invitation.id}/withdraw"
                       ).status_code == 302
    db.session.expire_all()
    assert invitation.status == "withdrawn"


def test_accounts_user_sees_orders_but_cannot_order(client, login, token, market, stripe_clean):
    admin = market.buyers[0]
    accounts = _join(admin, "accounts", email="acc@example.org")
    purchaser = _join(admin, "purchaser", email="pur@example.org")
    pool = market.open_pool()
    order, _ = pools.place_order(purchaser, pool.id, quantity_kg="10", payment_method=VISA)
    db.session.commit()
    # Every user of the organisation sees its orders.
    for person in (admin, accounts, purchaser):
        login(person)
        assert f"#{order.id}" in client.get("/my/orders").get_data(as_text=True) or \
            str(order.id) in client.get("/my/orders").get_data(as_text=True)
    # The accounts user: no join form, and posting one anyway is 403.
    login(accounts)
    page = client.get(f"/pools/{pool.id}").get_data(as_text=True)
    assert "does not allow ordering" in page and "payment_method" not in page
    response = client.post(f"/pools/{pool.id}", data={
        "quantity_kg": "5", "payment_method": VISA, "idempotency_key": "k" * 20})
    assert response.status_code == 403
    assert client.post(f"/my/orders/{order.id}/change",
                       data={"quantity_kg": "20"}).status_code == 403
    assert client.post(f"/my/orders/{order.id}/withdraw").status_code == 403
    # And in the API.
    headers = token(accounts)
    response = client.post(f"/api/v1/pools/{pool.id}/orders", headers=headers,
                           json={"quantity_kg": "5", "payment_method": VISA})
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "not_a_purchaser"
    assert client.patch(f"/api/v1/orders/{order.id}", headers=headers,
                        json={"quantity_kg": "20"}).status_code == 403
    assert client.delete(f"/api/v1/orders/{order.id}", headers=headers).status_code == 403
    listed = client.get("/api/v1/orders", headers=headers).get_json()["items"]
    assert [o["id"] for o in listed] == [order.id]
    assert client.get("/api/v1/me", headers=headers).get_json()["buyer_role"] == "accounts"
    db.session.expire_all()
    assert order.status == "authorized" and order.quantity_g == 10_000
    # The admin withdraws the purchaser's order: it is the organisation's.
    login(admin)
    assert pools.preview_withdraw(admin, order.id).old_grams == 10_000


def test_accounts_emails_falls_back_to_admins(make_buyer):
    admin = make_buyer()
    second = _join(admin, "admin", email="b-admin@example.org")
    _join(admin, "purchaser", email="c-purchaser@example.org")
    assert auth_services.accounts_emails(admin.buyer_id) == sorted([admin.email, second.email])
    _join(admin, "accounts", email="z-accounts@example.org")
    _join(admin, "accounts", email="a-accounts@example.org")
    assert auth_services.accounts_emails(admin.buyer_id) == ["a-accounts@example.org",
                                                             "z-accounts@example.org"]
    assert auth_services.accounts_emails(999_999) == []


def test_admin_sees_pending_invitations_and_withdraws_them(client, login, make_buyer):
    admin = make_buyer()
    invitation, token = organisations.invite(admin, email="later@example.org", role="accounts")
    db.session.commit()
    login(admin)
    page = client.get("/account/organisation").get_data(as_text=True)
    action = f"/account/organisation/invitations/{invitation.id}/withdraw"
    assert "later@example.org" in page and action in page
    assert client.post(action).status_code == 302
    assert client.get(f"/organisation-invitations/{token}").status_code == 404
    assert action not in client.get("/account/organisation").get_data(as_text=True)
