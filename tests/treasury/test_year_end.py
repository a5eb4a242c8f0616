"""Year-end close: surplus from the ledger, Ley 79 distribution, largest remainder, losses."""
from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import func, select

from coop.common.errors import Conflict, ValidationFailed
from coop.cooperatives import finance
from coop.extensions import db
from coop.ledger import services as ledger
from coop.audit.models import AuditEvent
from coop.ledger.models import LedgerEntry
from coop.treasury import costs
from coop.treasury import year_end
from coop.treasury.models import YearEndClose
from tests.plugins.year_end import TODAY, YEAR, on_day
from tests.support.confirm import confirm, is_confirmation

def _ok():
    db.session.flush()
    assert ledger.check() == []




def test_surplus_is_distributed_by_ley79_and_patronage(coop_year):
    c = coop_year
    f1, f2, f3 = c.farmers
    c.intake(f1, 1_000_000, 300_000)
    c.intake(f2, 2_000_000, 500_000)
    c.intake(f3, 3_000_000, 201_000)
    c.intake(f1, 9_999_999, 99_999, when=on_day(1, 2, YEAR + 1))  # next year: not counted
    c.fee(1_000)
    c.cost("0.01")  # 1 minor unit, through the form's parser
    db.session.commit()
    dist = year_end.preview(c.coop, YEAR)
    assert dist.surplus_minor == 1_001_000 - 1_000 - 1 == 999_999
    # Ley 79 minimums: 20% reserve, 20% education, 10% solidarity (defaults), rest members.
    assert dist.reserve_minor >= 999_999 * 0.2 and dist.education_minor >= 999_999 * 0.2
    assert dist.solidarity_minor >= 999_999 * 0.1
    assert (dist.reserve_minor, dist.education_minor, dist.solidarity_minor,
            dist.members_minor) == (200_000, 200_000, 100_000, 499_999)
    assert dist.total_minor == dist.surplus_minor
    shares = {m.user_id: m for m in dist.members}
    assert {u: m.patronage_minor for u, m in shares.items()} == \
        {f1.id: 1_000_000, f2.id: 2_000_000, f3.id: 3_000_000}
    # 499,999 split 1:2:3 -> 83333.17, 166666.33, 249999.5: largest remainder
    assert [shares[f.id].share_minor for f in (f1, f2, f3)] == [83_333, 166_666, 250_000]
    assert all(m.cash_minor + m.retained_minor == m.share_minor for m in dist.members)
    assert shares[f3.id].cash_minor == 125_000
    payable_before = {f.id: ledger.balance(c.coop, ledger.farmer_payable(f.id)) for f in c.farmers}
    record = year_end.close_year(c.coop, c.treasurer, YEAR, expected_surplus=999_999,
                                 today=TODAY)
    db.session.commit()
    assert ledger.balance(c.coop, "reserve_fund") == 200_000
    assert ledger.balance(c.coop, "education_fund") == 200_000
    assert ledger.balance(c.coop, "solidarity_fund") == 100_000
    assert ledger.balance(c.coop, "current_surplus") == 0
    # Income and expenses of the year are closed: only next year's commission remains.
    assert ledger.balance(c.coop, "commission_income") == 99_999
    assert ledger.balance(c.coop, "card_fees") == 0 == ledger.balance(c.coop, "operating_costs")
    for f in c.farmers:
        m = shares[f.id]
        assert ledger.balance(c.coop, ledger.farmer_payable(f.id)) == \
            payable_before[f.id] + m.cash_minor
        assert ledger.balance(c.coop, ledger.share_capital(f.id)) == m.retained_minor
    close = db.session.get(LedgerEntry, record.close_entry_id)
    assert close.idempotency_key == f"year_end:{YEAR}" and close.kind == "year_end_close"
    assert json.loads(record.summary_json)["members_minor"] == 499_999
    event = db.session.scalar(select(AuditEvent).where(
        AuditEvent.action == "treasury.year_end_close"))
    assert event.user_id == c.treasurer.id and json.loads(event.after_json)["closed"] is True
    _ok()


def test_closing_twice_is_refused(coop_year):
    c = coop_year
    c.intake(c.farmers[0], 100_000, 10_000)
    year_end.close_year(c.coop, c.treasurer, YEAR, today=TODAY)
    db.session.commit()
    entries = db.session.scalar(select(func.count()).select_from(LedgerEntry))
    with pytest.raises(Conflict) as err:
        year_end.close_year(c.coop, c.treasurer, YEAR, today=TODAY)
    assert err.value.code == "year_closed"
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(LedgerEntry)) == entries
    assert db.session.scalar(select(func.count()).select_from(YearEndClose)) == 1
    _ok()


def test_a_year_not_over_and_changed_figures_are_refused(coop_year):
    c = coop_year
    c.intake(c.farmers[0], 100_000, 10_000)
    with pytest.raises(ValidationFailed) as err:
        year_end.close_year(c.coop, c.treasurer, YEAR, today=date(YEAR, 12, 31))
    assert err.value.code == "year_not_over"
    with pytest.raises(Conflict) as err:
        year_end.close_year(c.coop, c.treasurer, YEAR, expected_surplus=9_999, today=TODAY)
    assert err.value.code == "figures_changed"
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(YearEndClose)) == 0


def test_largest_remainder_parts_add_up_exactly(coop_year):
    c = coop_year
    for f in c.farmers:  # equal patronage: thirds of an odd number
        c.intake(f, 100_000, 0 if f is not c.farmers[0] else 1_001)
    finance.settings_for_change(c.coop).patronage_cash_bps = 3333
    dist = year_end.preview(c.coop, YEAR)
    assert dist.surplus_minor == 1_001
    split = (dist.reserve_minor, dist.education_minor, dist.solidarity_minor, dist.members_minor)
    assert sum(split) == 1_001 and split == (201, 201, 101, 498)  # 200.2 -> 201 (the minimum)
    assert sorted(m.share_minor for m in dist.members) == [166, 166, 166]
    assert sum(m.cash_minor for m in dist.members) + \
        sum(m.retained_minor for m in dist.members) == 498
    assert all(m.cash_minor == 55 for m in dist.members)  # 166 x 33.33% = 55.33
    year_end.close_year(c.coop, c.treasurer, YEAR, today=TODAY)
    assert ledger.balance(c.coop, "current_surplus") == 0
    _ok()


def test_the_policy_configured_is_used(coop_year):
    c = coop_year
    c.intake(c.farmers[0], 100_000, 10_000)
    policy = finance.settings_for_change(c.coop)
    policy.reserve_bps, policy.education_bps, policy.solidarity_bps = 3000, 2500, 1500
    policy.patronage_cash_bps = 10000
    dist = year_end.preview(c.coop, YEAR)
    assert (dist.reserve_minor, dist.education_minor, dist.solidarity_minor,
            dist.members_minor) == (3_000, 2_500, 1_500, 3_000)
    assert dist.members[0].cash_minor == 3_000 and dist.members[0].retained_minor == 0


def test_a_loss_year_is_carried_forward_and_covered_first_next_year(coop_year):
    c = coop_year
    c.intake(c.farmers[0], 500_000, 40_000)
    c.cost(1_000)  # 1,000.00 = 100,000 minor
    dist = year_end.preview(c.coop, YEAR)
    assert dist.surplus_minor == -60_000 and dist.members == []
    assert dist.reserve_minor == 0
    year_end.close_year(c.coop, c.treasurer, YEAR, today=TODAY)
    db.session.commit()
    assert ledger.balance(c.coop, "accumulated_losses") == -60_000  # a debit on equity
    assert ledger.balance(c.coop, "reserve_fund") == 0
    assert ledger.balance(c.coop, "current_surplus") == 0
    _ok()
    # Next year earns 100,000: 60,000 covers the loss, the rest goes by the policy.
    c.intake(c.farmers[1], 1_000_000, 100_000, when=on_day(5, year=YEAR + 1))
    dist = year_end.preview(c.coop, YEAR + 1)
    assert dist.losses_before_minor == 60_000 and dist.loss_cover_minor == 60_000
    assert (dist.reserve_minor, dist.education_minor, dist.solidarity_minor,
            dist.members_minor) == (8_000, 8_000, 4_000, 20_000)
    assert [m.user_id for m in dist.members] == [c.farmers[1].id]
    year_end.close_year(c.coop, c.treasurer, YEAR + 1, today=date(YEAR + 2, 1, 5))
    assert ledger.balance(c.coop, "accumulated_losses") == 0
    _ok()


def test_no_patronage_keeps_the_members_part_in_the_reserve(coop_year):
    c = coop_year
    ledger.post(c.coop, key="misc", kind="capture", effective_on=on_day(2),
                lines=[ledger.debit("stripe_clearing", 10_000),
                       ledger.credit("commission_income", 10_000)])
    dist = year_end.preview(c.coop, YEAR)
    assert (dist.reserve_minor, dist.members_minor) == (7_000, 0)
    year_end.close_year(c.coop, c.treasurer, YEAR, today=TODAY)
    _ok()


def test_reversed_intake_counts_for_nothing(coop_year):
    c = coop_year
    entry = c.intake(c.farmers[0], 100_000, 10_000)
    c.intake(c.farmers[1], 100_000, 10_000)
    # ledger.reverse refuses domain entries (the intake domain corrects its own); its
    # correction is still a reversal entry of the intake, posted in another year here.
    ledger.post(c.coop, key="rev", kind="reversal", reverses=entry,
                effective_on=on_day(2, year=YEAR + 1),
                lines=[ledger.Line(p.account.code, -p.amount_minor) for p in entry.postings])
    assert year_end.patronage(c.coop, YEAR) == {c.farmers[1].id: 100_000}


def test_operating_cost_is_refused_when_wrong_and_recorded_once(coop_year):
    c = coop_year
    for amount in ("0", "-5", "abc", "1.234"):
        with pytest.raises(ValidationFailed):
            costs.record_operating_cost(c.coop, c.treasurer, amount=amount,
                                           spent_on="2025-01-01", description="x", key="k")
    first = costs.record_operating_cost(c.coop, c.treasurer, amount="10", spent_on="2025-01-01",
                                           description="x", key="same")
    again = costs.record_operating_cost(c.coop, c.treasurer, amount="10",
                                           spent_on="2025-01-01", description="x", key="same")
    assert first.id == again.id and ledger.balance(c.coop, "operating_costs") == 1_000
    _ok()


def test_year_end_pages(coop_year, login, make_coop, make_user):
    c = coop_year
    c.intake(c.farmers[0], 100_000, 10_000)
    db.session.commit()
    client = login(c.manager)
    page = client.get(f"/manage/coops/{c.coop.id}/treasury/year-end?year={YEAR}")
    assert page.status_code == 200 and c.farmers[0].name.encode() in page.data
    assert client.post(f"/manage/coops/{c.coop.id}/treasury/year-end/close",
                       data={"year": YEAR, "expected_surplus": 10_000}).status_code == 403
    client = login(c.treasurer)
    first = client.post(f"/manage/coops/{c.coop.id}/treasury/year-end/close",
                        data={"year": YEAR, "expected_surplus": 10_000})
    # The first POST shows what will be posted; only "Yes" posts it.
    assert is_confirmation(first)
    assert db.session.scalar(select(func.count()).select_from(YearEndClose)) == 0
    response = confirm(client, first)
    assert response.status_code == 302
    assert db.session.scalar(select(YearEndClose.surplus_minor)) == 10_000
    response = client.post(f"/manage/coops/{c.coop.id}/treasury/year-end/close",
                           data={"year": YEAR, "expected_surplus": 10_000},
                           follow_redirects=True)
    assert "closed already".encode() in response.data or "cerrado".encode() in response.data
    assert db.session.scalar(select(func.count()).select_from(YearEndClose)) == 1
    client = login(c.treasurer)
    response = client.post(f"/manage/coops/{c.coop.id}/treasury/costs",
                           data={"amount": "25,50", "spent_on": "2025-03-01",
                                 "description": "Transporte", "key": "abc"})
    assert response.status_code == 302
    assert ledger.balance(c.coop, "operating_costs") == 2_550
    other = make_user(name="Otra")
    make_coop(treasurer=other)
    client = login(other)
    assert client.get(f"/manage/coops/{c.coop.id}/treasury/year-end").status_code == 404
    _ok()
