"""What buyers and managers are told, one message per event, with the figures that matter:
a card hold, a capture at the final price, a pool that did not fill, a refund after intake,
a pool closing in 24 hours, a new pool of a crop they buy (opt-in), a pool at its minimum, a
pool closing short of it, deliveries still missing after a week."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from coop.common.models import utcnow
from coop.extensions import db
from coop.intake import services as intake
from coop.jobs import services as jobs
from coop.messages.models import Message
from coop.pools import notices
from coop.pools import services as pools
from tests.support.intake import PRICE, VISA
from tests.support.settle import close_and_settle

pytestmark = pytest.mark.usefixtures("ledger_sound")


def _told(user, template) -> list[Message]:
    return list(db.session.scalars(select(Message).where(
        Message.user_id == user.id, Message.template == template).order_by(Message.id)))


@pytest.fixture
def english(market):
    """The buyers and the manager read English (the farmers Spanish, as they chose)."""
    for person in market.buyers + [market.manager]:
        person.locale = "en"
    db.session.commit()
    return market


def test_a_hold_tells_the_buyer_what_is_held_until_when_once(english, stripe_clean, mailbox):
    m = english
    pool = m.open_pool(min_kg="250", max_kg="500")
    order, _ = pools.place_order(m.buyers[0], pool.id, quantity_kg="200", payment_method=VISA,
                                 idempotency_key="k-1")
    again, created = pools.place_order(m.buyers[0], pool.id, quantity_kg="200",
                                       payment_method=VISA, idempotency_key="k-1")
    assert not created and again.id == order.id
    jobs.drain()
    [held] = _told(m.buyers[0], "buyer.hold_placed")
    assert held.channel == "email" and held.status == "sent"
    # The highest tier's price held: 200 kg x 28,000 + 8% + 1,800 = 6,408,000.00 COP.
    assert "COP6,408,000.00" in held.body and "200" in held.body and f"#{pool.id}" in held.body
    assert [mail.subject for mail in mailbox if m.buyers[0].email in mail.rcpt_tos] == \
        [held.subject]
    assert _told(m.manager, "manager.pool_minimum") == []          # 200 of 250 kg
    # The next order takes the pool to its 250 kg minimum: the manager hears it, once.
    pools.place_order(m.buyers[1], pool.id, quantity_kg="50", payment_method=VISA)
    pools.place_order(m.buyers[1], pool.id, quantity_kg="10", payment_method=VISA)
    jobs.drain()
    [minimum] = _told(m.manager, "manager.pool_minimum")
    assert f"#{pool.id}" in minimum.body and "250" in minimum.body


def test_closing_tells_each_buyer_the_amount_captured_at_the_final_price(english, stripe_clean,
                                                                       mailbox):
    m = english
    pool = m.open_pool(min_kg="100", max_kg="500")
    pools.place_order(m.buyers[0], pool.id, quantity_kg="200", payment_method=VISA)
    pools.place_order(m.buyers[1], pool.id, quantity_kg="100", payment_method=VISA)
    close_and_settle(pool.id)
    close_and_settle(pool.id)            # closing again does nothing, tells nobody again
    jobs.drain()
    [first] = _told(m.buyers[0], "buyer.captured")
    [second] = _told(m.buyers[1], "buyer.captured")
    assert "COP6,408,000.00" in first.body and "COP3,204,000.00" in second.body
    assert "COP32,040.00 per kg" in first.body      # the final tier's price, 300 kg
    assert first.link == "http://minga.test/my/orders"
    captures = [mail for mail in mailbox if "confirmed" in mail.subject
                and set(mail.rcpt_tos) & {b.email for b in m.buyers}]
    assert len(captures) == 2 and PRICE == 3_204_000


def test_a_pool_that_did_not_fill_releases_and_says_so(english, stripe_clean):
    m = english
    pool = m.open_pool(min_kg="400", max_kg="500")
    pools.place_order(m.buyers[0], pool.id, quantity_kg="100", payment_method=VISA)
    assert close_and_settle(pool.id).status == "failed"
    jobs.drain()
    [released] = _told(m.buyers[0], "buyer.released")
    assert "COP3,204,000.00" in released.body and "nothing is charged" in released.body
    assert _told(m.buyers[0], "buyer.captured") == []


def test_a_refund_after_intake_tells_the_amount_and_why(sold):
    for buyer in sold.buyers:
        buyer.locale = "en"
    db.session.commit()
    # The third farmer was allocated 150 kg and delivers 100: 50 kg refunded to the buyers.
    intake.record_intake(sold.manager, sold.alloc[2].id, received_kg="100", grade="sca85")
    db.session.commit()
    jobs.drain()
    refunds = [m for b in sold.buyers for m in _told(b, "buyer.refunded")]
    assert len(refunds) == 2
    assert all("less was delivered than sold" in m.body for m in refunds)
    total = sum(r.amount_minor for r in db.session.scalars(select(intake.Refund)))
    assert total == 50 * PRICE
    # Retrying refunds (the periodic job) tells nobody twice.
    intake.finish_refunds()
    jobs.drain()
    assert len([m for b in sold.buyers for m in _told(b, "buyer.refunded")]) == 2


def test_a_day_before_closing_buyers_are_reminded_and_managers_warned_when_short(
        english, stripe_clean):
    m = english
    pool = m.open_pool(min_kg="400", max_kg="500", days=3)
    pools.place_order(m.buyers[0], pool.id, quantity_kg="100", payment_method=VISA)
    assert notices.remind(now=utcnow()) == 0                     # three days ahead: nothing
    later = pool.closes_at - timedelta(hours=20)
    assert notices.remind(now=later) == 1
    assert notices.remind(now=later + timedelta(hours=1)) == 1   # again: nobody twice
    db.session.commit()
    [reminder] = _told(m.buyers[0], "buyer.pool_closing")
    assert "300" in reminder.body                                  # kg still needed
    [short] = _told(m.manager, "manager.pool_short")
    assert "100" in short.body and "400" in short.body
    assert _told(m.buyers[1], "buyer.pool_closing") == []          # no order, no reminder


def test_a_new_pool_is_news_only_to_past_buyers_of_the_crop_who_opted_in(sold):
    opted, silent = sold.buyers
    opted.announcements = True
    opted.locale = "en"
    db.session.commit()
    pool = sold.open_pool(min_kg="10", max_kg="50")
    jobs.drain()
    [news] = _told(opted, "buyer.new_pool")
    assert "coffee" in news.body.lower() and "/pools/" in news.link
    assert news.unsubscribe is True and f"/pools/{pool.id}" in news.link
    assert _told(silent, "buyer.new_pool") == []


def test_deliveries_still_missing_a_week_after_confirmation_warn_the_manager_once(sold):
    from coop.intake.tasks import tell_missing_intake
    sold.manager.locale = "en"
    intake.record_intake(sold.manager, sold.alloc[0].id, received_kg="50", grade="sca85")
    db.session.commit()
    assert tell_missing_intake(now=utcnow() + timedelta(days=3)) == 0
    week = utcnow() + timedelta(days=8)
    assert tell_missing_intake(now=week) == 1
    assert tell_missing_intake(now=week) == 1
    db.session.commit()
    [missing] = _told(sold.manager, "manager.intake_missing")
    assert "250" in missing.body and "8 days" in missing.body     # 100 + 150 kg not received
