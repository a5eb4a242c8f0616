"""The ledger's rules, in the service and in the database itself."""
from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from coop.audit import services as audit
from coop.common.errors import Conflict, ValidationFailed
from coop.extensions import db
from coop.ledger import services as ledger
from coop.ledger.models import LedgerAccount, LedgerEntry, LedgerPosting
from tests.support import is_postgres

D, C = ledger.debit, ledger.credit


@pytest.fixture
def coop(make_coop):
    return make_coop()


def _capture(coop, key="cap-1", amount=10_000, kind="capture"):
    entry = ledger.post(coop, key=key, kind=kind, lines=[D("stripe_clearing", amount),
                                                             C("buyer_deposits", amount)])
    db.session.commit()
    return entry


def test_an_entry_must_balance(coop):
    with pytest.raises(ValidationFailed) as err:
        ledger.post(coop, key="x", kind="capture", lines=[D("stripe_clearing", 100),
                                                          C("buyer_deposits", 99)])
    assert err.value.code == "unbalanced_entry"
    with pytest.raises(ValidationFailed):
        ledger.post(coop, key="y", kind="capture", lines=[D("stripe_clearing", 100)])
    db.session.rollback()
    assert db.session.scalar(select(LedgerEntry.id)) is None


def test_floats_are_refused(coop):
    with pytest.raises(ValidationFailed):
        ledger.post(coop, key="f", kind="capture", lines=[ledger.Line("bank", 1.5),
                                                          ledger.Line("cash", -1.5)])


def test_same_key_same_lines_posts_once_other_lines_refused(coop):
    first = _capture(coop)
    again = _capture(coop)
    assert again.id == first.id
    assert ledger.balance(coop, "stripe_clearing") == 10_000
    with pytest.raises(ValidationFailed) as err:
        _capture(coop, amount=9_999)
    assert err.value.code == "idempotency_key_reused"


def test_keys_are_unique_per_coop_not_globally(coop, make_coop):
    other = make_coop()
    _capture(coop, key="same")
    _capture(other, key="same", amount=5)
    assert ledger.balance(other, "stripe_clearing") == 5


def test_accounts_that_may_not_go_negative_never_do(coop):
    _capture(coop, amount=1_000)
    with pytest.raises(Conflict) as err:  # refunding more than was captured
        ledger.post(coop, key="refund", kind="refund", lines=[D("buyer_deposits", 1_001),
                                                              C("stripe_clearing", 1_001)])
    assert err.value.code == "insufficient_balance"
    db.session.rollback()
    assert ledger.balance(coop, "stripe_clearing") == 1_000
    # the bank may be overdrawn (a real overdraft), the farmer's payable may not
    ledger.post(coop, key="pay", kind="payout", lines=[D("cash", 5), C("bank", 5)])
    with pytest.raises(Conflict):
        ledger.post(coop, key="overpay", kind="payout",
                    lines=[D(ledger.farmer_payable(1), 5), C("bank", 5)])


def test_reversal_negates_once(coop):
    entry = _capture(coop, kind="manual")
    reversal = ledger.reverse(coop, entry, key="rev-1")
    db.session.commit()
    assert ledger.balance(coop, "stripe_clearing") == 0
    assert sorted(p.amount_minor for p in reversal.postings) == [-10_000, 10_000]
    assert ledger.reverse(coop, entry, key="rev-1").id == reversal.id  # same key: same answer
    with pytest.raises(Conflict):
        ledger.reverse(coop, entry, key="rev-2")
    with pytest.raises(Conflict):
        ledger.reverse(coop, reversal, key="rev-3")


def test_holds_are_pending_then_posted_or_voided_once(coop):
    held = ledger.hold(coop, key="h1", amount=700, source=("order", 1))
    db.session.commit()
    assert ledger.balance(coop, "card_holds") == 0  # pending moves no posted balance
    ledger.settle_pending(coop, held, outcome="voided")
    db.session.commit()
    assert db.session.get(LedgerEntry, held.id).status == "voided"
    with pytest.raises(Conflict):
        ledger.settle_pending(coop, held, outcome="posted")


def _raw(statement, **params):
    with db.engine.connect() as conn:
        conn.execute(text(statement), params)
        conn.commit()


def test_database_refuses_to_edit_or_delete_posted_entries(coop):
    entry = _capture(coop)
    posting = entry.postings[0]
    db.session.commit()
    for statement in (
        "UPDATE ledger_postings SET amount_minor = 1 WHERE id = :id",
        "DELETE FROM ledger_postings WHERE id = :id",
    ):
        with pytest.raises((IntegrityError, DBAPIError)):
            _raw(statement, id=posting.id)
    for statement in ("UPDATE ledger_entries SET memo = 'edited' WHERE id = :id",
                      "UPDATE ledger_entries SET status = 'voided' WHERE id = :id",
                      "DELETE FROM ledger_entries WHERE id = :id"):
        with pytest.raises((IntegrityError, DBAPIError)):
            _raw(statement, id=entry.id)
    db.session.expire_all()
    assert db.session.get(LedgerPosting, posting.id).amount_minor == posting.amount_minor


def test_pending_entry_may_change_status_once_in_the_database(coop):
    held = ledger.hold(coop, key="h2", amount=5, source=("order", 2))
    db.session.commit()
    _raw("UPDATE ledger_entries SET status = 'posted' WHERE id = :id", id=held.id)
    with pytest.raises((IntegrityError, DBAPIError)):
        _raw("UPDATE ledger_entries SET status = 'voided' WHERE id = :id", id=held.id)


def test_an_unbalanced_entry_written_behind_the_service_is_caught(coop):
    """PostgreSQL refuses it at commit (deferred trigger); on SQLite `ledger check` finds it."""
    acc = ledger.account(coop, "bank")
    cash = ledger.account(coop, "cash")
    db.session.commit()
    now = "now()" if is_postgres() else "CURRENT_TIMESTAMP"
    with db.engine.connect() as conn:
        conn.execute(text(
            "INSERT INTO ledger_entries (coop_id, idempotency_key, fingerprint, kind, memo, status,"
            f" currency, created_at, effective_on) VALUES (:c, 'raw', 'x', 'raw', '', 'posted',"
            f" 'COP', {now}, {now})"), {"c": coop.id})
        entry_id = conn.execute(text("SELECT id FROM ledger_entries WHERE idempotency_key = "
                                     "'raw'")).scalar()
        conn.execute(text("INSERT INTO ledger_postings (entry_id, account_id, amount_minor)"
                          " VALUES (:e, :a, 100), (:e, :b, -99)"),
                     {"e": entry_id, "a": acc.id, "b": cash.id})
        if is_postgres():
            with pytest.raises((IntegrityError, DBAPIError)):
                conn.commit()
        else:
            conn.commit()
    db.session.expire_all()
    problems = ledger.check()
    if is_postgres():
        assert problems == []
        # and a posting cannot be slipped into an entry committed earlier
        entry = _capture(coop, key="cap-late")
        with pytest.raises((IntegrityError, DBAPIError)):
            _raw("INSERT INTO ledger_postings (entry_id, account_id, amount_minor) VALUES "
                 "(:e, :a, 5)", e=entry.id, a=acc.id)
    else:
        assert any("does not balance" in p for p in problems)


def test_check_recomputes_balances_and_the_command_fails_on_a_difference(coop, app):
    _capture(coop)
    assert ledger.check() == []
    runner = app.test_cli_runner()
    ok = runner.invoke(args=["ledger", "check"])
    assert ok.exit_code == 0 and "ledger check OK" in ok.output
    # Corrupt the cached balance behind the service's back.
    _raw("UPDATE ledger_accounts SET balance_minor = balance_minor + 1 WHERE code = "
         "'stripe_clearing'")
    db.session.expire_all()
    assert any("stripe_clearing" in p for p in ledger.check())
    bad = runner.invoke(args=["ledger", "check"])
    assert bad.exit_code == 1 and "FAILED" in bad.output


def test_trial_balance_page_and_api(coop, make_user, client, login, token):
    _capture(coop)
    treasurer = make_user(name="Tesorera")
    from coop.cooperatives import services as coop_services
    coop_services.grant_role(coop, treasurer, "treasurer")
    db.session.commit()
    body = client.get(f"/api/v1/coops/{coop.id}/ledger/trial-balance",
                      headers=token(treasurer)).json
    assert body["balanced"] is True and body["currency"] == "COP"
    assert body["debits_minor"] == body["credits_minor"] == 10_000
    codes = {a["code"]: a["balance_minor"] for a in body["accounts"]}
    assert codes == {"stripe_clearing": 10_000, "buyer_deposits": -10_000}
    page = login(treasurer).get(f"/manage/coops/{coop.id}/ledger")
    assert page.status_code == 200


def test_trial_balance_access(coop, make_coop, make_farmer, make_buyer, client, token):
    other = make_coop()
    outsider = other.memberships[0].user
    farmer = make_farmer(coop)
    buyer = make_buyer()
    url = f"/api/v1/coops/{coop.id}/ledger/trial-balance"
    assert client.get(url).status_code == 401
    assert client.get(url, headers=token(outsider)).status_code == 404
    assert client.get(url, headers=token(farmer)).status_code == 403
    assert client.get(url, headers=token(buyer)).status_code == 404


def test_domain_entries_are_corrected_in_their_domain_not_reversed_alone(coop):
    entry = _capture(coop)
    with pytest.raises(Conflict) as err:
        ledger.reverse(coop, entry, key="rev")
    assert err.value.code == "domain_entry"
    assert ledger.reverse(coop, entry, key="rev", allow_domain=True).reverses_id == entry.id


def test_reverse_from_the_page_is_for_treasurers_and_audited(coop, make_user, login):
    entry = _capture(coop, kind="manual")
    treasurer = make_user(name="Tesorera")
    from coop.cooperatives import services as coop_services
    coop_services.grant_role(coop, treasurer, "treasurer")
    db.session.commit()
    manager = coop.memberships[0].user
    url = f"/manage/coops/{coop.id}/ledger/entries/{entry.id}/reverse"
    assert login(manager).post(url, data={"reason": "typo"}).status_code == 403
    response = login(treasurer).post(url, data={"reason": "typo"})
    assert response.status_code == 302
    assert ledger.balance(coop, "stripe_clearing") == 0
    log = audit.events(coop.id)
    assert log[0].action == "ledger.reverse" and log[0].user_id == treasurer.id
    assert db.session.scalar(select(LedgerAccount.balance_minor)
                             .where(LedgerAccount.code == "buyer_deposits")) == 0


def test_holds_count_as_pending_and_never_in_posted_balances(coop):
    held = ledger.hold(coop, key="h3", amount=700, source=("order", 3))
    db.session.commit()
    assert ledger.pending_holds(coop) == 700
    assert ledger.trial_balance(coop)["pending_holds_minor"] == 700
    ledger.settle_pending(coop, held, outcome="posted")
    _capture(coop, key="cap-h3", amount=650)  # a partial capture posts what was taken
    assert ledger.pending_holds(coop) == 0
    assert ledger.balance(coop, "card_holds") == 0
    assert ledger.balance(coop, "stripe_clearing") == 650
    assert ledger.check() == []
