"""Another coop's payout batch, line or payables are a 404 for anyone outside the coop — a
buyer, a farmer or manager of another coop — exactly as for an id that does not exist: no
403 tells an outsider that the object is there (issue 10 §4). Members of the coop without
the treasurer role still get a 403 (they know the coop; they lack the role)."""
from __future__ import annotations

import itertools

import pytest

from coop.extensions import db
from coop.ledger import services as ledger
from coop.payouts import services as payouts

_keys = itertools.count(1)


@pytest.fixture
def batch(make_coop, make_user, make_farmer):
    treasurer = make_user(name="Tesorera")
    coop = make_coop(treasurer=treasurer)
    farmer = make_farmer(coop, name="Ana", rail="cash")
    ledger.post(coop, key=f"outsiders:{next(_keys)}", kind="intake",
                lines=[ledger.debit("bank", 50_000_00),
                       ledger.credit(ledger.farmer_payable(farmer.id), 50_000_00)])
    made, _ = payouts.create_batch(coop, treasurer)
    db.session.commit()
    return made


def _urls(batch_id, line_id, coop_id):
    return [("get", f"/manage/payout-batches/{batch_id}"),
            ("get", f"/manage/payout-batches/{batch_id}/export.csv"),
            ("get", f"/manage/payout-batches/{batch_id}/receipts"),
            ("post", f"/manage/payout-batches/{batch_id}/confirmations"),
            ("post", f"/manage/payout-lines/{line_id}/cash"),
            ("get", f"/manage/coops/{coop_id}/payables")]


def _api(batch_id, coop_id):
    return [("get", f"/api/v1/payout-batches/{batch_id}"),
            ("get", f"/api/v1/payout-batches/{batch_id}/export.csv"),
            ("post", f"/api/v1/payout-batches/{batch_id}/confirmations"),
            ("get", f"/api/v1/coops/{coop_id}/payables"),
            ("post", f"/api/v1/coops/{coop_id}/payout-batches")]


def test_outsiders_get_the_same_404_for_a_batch_that_exists_and_one_that_does_not(
        batch, make_buyer, make_coop, make_farmer, make_user, login, token, client, app):
    elsewhere = make_coop()
    outsiders = [make_buyer(), make_farmer(elsewhere, name="Otro"),
                 next(m.user for m in elsewhere.memberships if m.role == "manager")]
    line = batch.lines[0]
    for user in outsiders:
        browser = app.test_client()
        browser.post("/login", data={"login": user.email, "password": "correct-horse-battery"})
        for (method, real), (_m, missing) in zip(_urls(batch.id, line.id, batch.coop_id),
                                                 _urls(999_999, 999_999, 999_999)):
            answers = {getattr(browser, method)(url).status_code for url in (real, missing)}
            assert answers == {404}, (user.email, real, answers)
        headers = token(user)
        for (method, real), (_m, missing) in zip(_api(batch.id, batch.coop_id),
                                                 _api(999_999, 999_999)):
            answers = {getattr(client, method)(url, headers=headers).status_code
                       for url in (real, missing)}
            assert answers == {404}, (user.email, real, answers)


def test_members_without_the_role_are_refused_with_403(batch, make_farmer, token, client):
    from coop.cooperatives import services as coop_services
    coop = coop_services.get_coop(batch.coop_id)
    member = make_farmer(coop, name="Socia")
    assert client.get(f"/api/v1/payout-batches/{batch.id}",
                      headers=token(member)).status_code == 403
