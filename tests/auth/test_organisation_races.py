"""Buyer organisations under concurrency (issue 14, part 4): never without an admin. The only
two admins demote (or remove) each other at the same moment, with real threads, each its own
app context and connection: exactly one succeeds, the other is refused with the last-admin
refusal (a clean 409, no IntegrityError, no 500), and an admin remains. The window between
counting the admins and writing is widened (the count sleeps), so without the
organisation's lock both would pass their check. On PostgreSQL and on SQLite too: SQLite's
one writer at a time does not by itself stop a check read before the write (both requests
counted two admins and both wrote, before the write-first lock of organisations._locked)."""
from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select

from coop.auth import organisations
from coop.auth.models import User
from coop.common.errors import DomainError, Forbidden
from coop.extensions import db
from tests.support import PASSWORD
from tests.support.confirm import confirm, is_confirmation



@pytest.fixture
def slow_count(monkeypatch):
    """Counting the admins takes a while: a check-then-write without a lock would let both
    requests count two admins."""
    counted = organisations._admins

    def slow(buyer):
        n = counted(buyer)
        time.sleep(0.3)
        return n
    monkeypatch.setattr(organisations, "_admins", slow)


def _two_admins(make_buyer):
    first = make_buyer(organisation="Rösterei Zwei")
    invitation, token = organisations.invite(first, email="zweite@example.org", role="admin")
    second = organisations.sign_up_to_accept(token, name="Zweite", password=PASSWORD)
    db.session.commit()
    assert organisations.role_of(second) == "admin"
    return first.id, second.id, first.buyer_id


def _race(app, calls) -> tuple[list, list, list]:
    """Runs each (actor id, fn(actor)) in its own thread at once, each committing like a
    request's unit of work. Returns (successes, refusals as (actor id, code), errors)."""
    barrier = threading.Barrier(len(calls))
    done, refused, errors = [], [], []

    def run(actor_id, fn):
        with app.app_context():
            try:
                actor = db.session.get(User, actor_id)
                barrier.wait(timeout=30)
                try:
                    fn(actor)
                    db.session.commit()
                    done.append(actor_id)
                except DomainError as exc:
                    db.session.rollback()
                    refused.append((actor_id, exc.code, exc.status))
            except Exception as exc:   # shown by the assertion
                errors.append(f"{type(exc).__name__}: {exc}")
            finally:
                db.session.remove()

    db.session.commit()  # the test's own connection holds nothing
    threads = [threading.Thread(target=run, args=call) for call in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    db.session.expire_all()
    return done, refused, errors


def _admins_of(buyer_id) -> list[int]:
    return sorted(u.id for u in organisations.members(buyer_id)
                  if organisations.role_of(u) == "admin")


def test_the_only_two_admins_demoting_each_other_at_once_leave_one(app, make_buyer,
                                                                   slow_count):
    a, b, buyer_id = _two_admins(make_buyer)
    done, refused, errors = _race(app, [
        (a, lambda actor: organisations.change_role(actor, b, "purchaser")),
        (b, lambda actor: organisations.change_role(actor, a, "accounts"))])
    assert errors == []
    assert len(done) == 1 and len(refused) == 1
    loser = refused[0]
    assert loser[0] != done[0] and loser[1:] == ("last_admin", 409)
    assert _admins_of(buyer_id) == [done[0]]
    demoted = db.session.get(User, loser[0])
    assert demoted.buyer_id == buyer_id and demoted.buyer_role in ("purchaser", "accounts")


def test_the_only_two_admins_removing_each_other_at_once_leave_one(app, make_buyer,
                                                                   slow_count):
    a, b, buyer_id = _two_admins(make_buyer)
    done, refused, errors = _race(app, [
        (a, lambda actor: organisations.remove(actor, b)),
        (b, lambda actor: organisations.remove(actor, a))])
    assert errors == []
    assert len(done) == 1 and len(refused) == 1
    assert refused[0][0] != done[0] and refused[0][1:] == ("last_admin", 409)
    assert _admins_of(buyer_id) == [done[0]]
    removed = db.session.get(User, refused[0][0])
    assert (removed.buyer_id, removed.buyer_role) == (None, None)


def test_each_admin_demoting_themself_at_once_leaves_one(app, make_buyer, slow_count):
    a, b, buyer_id = _two_admins(make_buyer)
    done, refused, errors = _race(app, [
        (a, lambda actor: organisations.change_role(actor, a, "purchaser")),
        (b, lambda actor: organisations.remove(actor, b))])
    assert errors == [] and len(done) == 1
    assert [r[1:] for r in refused] == [("last_admin", 409)]
    assert _admins_of(buyer_id) == [refused[0][0]]


def _logged_in(app, user):
    client = app.test_client()
    client.get("/lang/en")
    response = client.post("/login", data={"login": user.email, "password": PASSWORD})
    assert response.status_code == 302
    return client


def test_two_admins_confirming_each_other_s_demotion_at_once_through_the_pages(
        app, make_buyer, slow_count):
    a, b, buyer_id = _two_admins(make_buyer)
    users = {a: db.session.get(User, a), b: db.session.get(User, b)}
    clients = {a: _logged_in(app, users[a]), b: _logged_in(app, users[b])}
    # Each asks first and gets the confirmation step (both still see two admins).
    first = {a: clients[a].post(f"/account/organisation/users/{b}/role",
                                data={"role": "purchaser"}),
             b: clients[b].post(f"/account/organisation/users/{a}/role",
                                data={"role": "purchaser"})}
    assert all(is_confirmation(r) for r in first.values())
    db.session.commit()
    barrier = threading.Barrier(2)
    answers, errors = {}, []

    def press_yes(actor_id):
        try:  # no app context here: the request pushes its own (its own session)
            barrier.wait(timeout=30)
            answers[actor_id] = confirm(clients[actor_id], first[actor_id])
        except Exception as exc:   # shown by the assertion
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=press_yes, args=(n,)) for n in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert {n: r.status_code for n, r in answers.items()} == {a: 302, b: 302}  # never a 500
    db.session.expire_all()
    admins = _admins_of(buyer_id)
    assert len(admins) == 1
    winner = admins[0]
    loser = b if winner == a else a
    assert db.session.get(User, loser).buyer_role == "purchaser"
    told = {n: clients[n].get("/account/organisation").get_data(as_text=True) for n in (a, b)}
    assert "role is changed" in told[winner]
    assert "at least one admin" in told[loser] and "role is changed" not in told[loser]


def test_an_admin_demoted_a_moment_ago_changes_nobody(app, make_buyer):
    """The acting admin as this request read them (the logged-in user, loaded before the
    organisation's lock) is read again under it: demoted by another admin a moment ago, they
    are refused (403), on SQLite and PostgreSQL alike."""
    a, b, buyer_id = _two_admins(make_buyer)
    invitation, token = organisations.invite(db.session.get(User, a), email="c@example.org",
                                             role="admin")
    c = organisations.sign_up_to_accept(token, name="Dritte", password=PASSWORD).id
    db.session.commit()
    stale_b = db.session.scalar(select(User).where(User.id == b))
    assert organisations.role_of(stale_b) == "admin"

    def demote_b():
        with app.app_context():
            try:
                organisations.change_role(db.session.get(User, a), b, "purchaser")
                db.session.commit()
            finally:
                db.session.remove()
    other = threading.Thread(target=demote_b)
    other.start()
    other.join(timeout=30)
    assert stale_b.buyer_role == "admin"  # this request's copy has not seen it
    with pytest.raises(Forbidden) as refused:
        organisations.change_role(stale_b, c, "accounts")
    assert refused.value.code == "not_an_admin"
    with pytest.raises(Forbidden):
        organisations.remove(stale_b, c)
    db.session.rollback()
    db.session.expire_all()
    assert _admins_of(buyer_id) == sorted([a, c])
