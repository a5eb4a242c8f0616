"""Year-end close: the surplus of the year (income less expenses, from the ledger) closed
into current_surplus, then distributed by the coop's policy (Ley 79 defaults): losses
carried forward first, then reserve, education and solidarity funds, the rest to members
pro rata to the value they supplied (intake credits to their payable), cash or retained
in their share capital. Parts by largest remainder: they add up exactly.

Services flush, never commit."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timezone

from flask_babel import gettext as _
from sqlalchemy import select

from ..audit import services as audit
from ..common.apportion import largest_remainder
from ..common.errors import Conflict, ValidationFailed
from ..common.models import utcnow
from ..cooperatives import finance
from ..cooperatives import verification
from ..extensions import db
from ..ledger import bulk
from ..ledger import queries as ledger_queries
from ..ledger import services as ledger
from .models import YearEndClose
from .stripe_reconciliation import CHUNK


YEAR_END_KINDS = ("year_end_close", "year_end_distribution")

# ---------------------------------------------------------------- year-end close

def _year_bounds(year: int) -> tuple[datetime, datetime]:
    return (datetime(year, 1, 1, tzinfo=timezone.utc),
            datetime(year + 1, 1, 1, tzinfo=timezone.utc))


def _year_end_moment(year: int) -> datetime:
    return datetime(year, 12, 31, 23, 59, 59, tzinfo=timezone.utc)


@dataclass
class MemberShare:
    user_id: int
    name: str
    patronage_minor: int
    share_minor: int
    cash_minor: int
    retained_minor: int


@dataclass
class Distribution:
    year: int
    currency: str
    income: list          # (code, name, amount) credit-normal amounts earned
    expenses: list        # (code, name, amount)
    surplus_minor: int    # < 0: a loss
    losses_before_minor: int
    loss_cover_minor: int
    reserve_minor: int
    education_minor: int
    solidarity_minor: int
    members_minor: int
    members: list
    policy: dict
    closed: YearEndClose | None = None

    @property
    def total_minor(self) -> int:
        return (self.loss_cover_minor + self.reserve_minor + self.education_minor
                + self.solidarity_minor + sum(m.share_minor for m in self.members))

    def summary(self) -> dict:
        return {"year": self.year, "surplus_minor": self.surplus_minor,
                "income": [[c, a] for c, _n, a in self.income],
                "expenses": [[c, a] for c, _n, a in self.expenses],
                "losses_before_minor": self.losses_before_minor,
                "loss_cover_minor": self.loss_cover_minor, "reserve_minor": self.reserve_minor,
                "education_minor": self.education_minor,
                "solidarity_minor": self.solidarity_minor,
                "members_minor": self.members_minor, "members": len(self.members),
                "cash_minor": sum(m.cash_minor for m in self.members),
                "retained_minor": sum(m.retained_minor for m in self.members),
                "policy": self.policy}


LEY79_MIN_BPS = {"reserve": 2000, "education": 2000, "solidarity": 1000}


def _year_sums(coop, year: int) -> tuple[list, list]:
    """Income and expense accounts' movement in the year (normal side), the close itself
    left out."""
    rows = ledger_queries.income_and_expense_sums(coop, *_year_bounds(year), YEAR_END_KINDS)
    income = [(c, n, -int(s)) for c, n, k, s in rows if k == "income" and s]
    expenses = [(c, n, int(s)) for c, n, k, s in rows if k == "expense" and s]
    return income, expenses


def patronage(coop, year: int) -> dict[int, int]:
    """user id -> value supplied in the year: what intake entries credited to the member's
    farmer_payable, less reversals of such entries (whenever they were posted)."""
    return ledger_queries.patronage(coop, *_year_bounds(year))


def _split_funds(rest: int, policy) -> dict[str, int]:
    """Reserve, education, solidarity and members by largest remainder over the policy's
    basis points; a fund rounded below its Ley 79 minimum (20/20/10% of what is
    distributed, rounded up) is topped up from the members' part."""
    bps = {"reserve": policy.reserve_bps, "education": policy.education_bps,
           "solidarity": policy.solidarity_bps}
    bps["members"] = 10000 - sum(bps.values())
    order = ["reserve", "education", "solidarity", "members"]
    parts = largest_remainder(rest, [(i, bps[name]) for i, name in enumerate(order)])
    split = {name: parts.get(i, 0) for i, name in enumerate(order)}
    for name, minimum_bps in LEY79_MIN_BPS.items():
        minimum = -(-rest * minimum_bps // 10000)
        short = min(max(0, minimum - split[name]), split["members"])
        split[name] += short
        split["members"] -= short
    return split


def preview(coop, year: int, names: bool = True) -> Distribution:
    """What closing `year` would post, computed from the ledger and the coop's policy."""
    policy = finance.settings(coop)
    income, expenses = _year_sums(coop, year)
    surplus = sum(a for *_x, a in income) - sum(a for *_x, a in expenses)
    # a debit balance
    losses_before = max(0, ledger_queries.debit_balance(coop, "accumulated_losses"))
    cover = min(max(surplus, 0), losses_before)
    rest = max(surplus, 0) - cover
    split = _split_funds(rest, policy)
    members: list[MemberShare] = []
    weights = patronage(coop, year)
    members_total = split["members"]
    if members_total and not weights:
        # Nobody supplied anything: the members' part stays in the reserve.
        split["reserve"] += members_total
        members_total = split["members"] = 0
    if members_total:
        shares = largest_remainder(members_total, sorted(weights.items()))
        who = {}
        if names:
            from ..auth.models import User
            ids = list(shares)
            for start in range(0, len(ids), CHUNK):
                who.update(dict(db.session.execute(select(User.id, User.name).where(
                    User.id.in_(ids[start:start + CHUNK]))).all()))
        cash_bps = policy.patronage_cash_bps
        for uid in sorted(shares):
            share = shares[uid]
            part = largest_remainder(share, [(0, cash_bps), (1, 10000 - cash_bps)])
            members.append(MemberShare(uid, who.get(uid, f"#{uid}"), weights[uid], share,
                                       part.get(0, 0), part.get(1, 0)))
    existing = db.session.scalar(select(YearEndClose).where(YearEndClose.coop_id == coop.id,
                                                            YearEndClose.year == year))
    return Distribution(
        year=year, currency=coop.currency, income=income, expenses=expenses,
        surplus_minor=surplus, losses_before_minor=losses_before, loss_cover_minor=cover,
        reserve_minor=split["reserve"], education_minor=split["education"],
        solidarity_minor=split["solidarity"], members_minor=members_total, members=members,
        policy={"reserve_bps": policy.reserve_bps, "education_bps": policy.education_bps,
                "solidarity_bps": policy.solidarity_bps,
                "patronage_cash_bps": policy.patronage_cash_bps},
        closed=existing)


def _check_closable(coop, year, today: date | None) -> str:
    """Refuse a year that is not one, not over yet, or closed already; its entry key."""
    today = today or utcnow().date()
    if not isinstance(year, int) or not 2000 <= year <= 2200:
        raise ValidationFailed(_("Not a year."), fields={"year": [_("Not a year.")]})
    if year >= today.year:
        raise ValidationFailed(_("A year can be closed only after it ends."),
                               code="year_not_over", fields={"year": [_("Not over yet.")]})
    closed = db.session.scalar(select(YearEndClose.id).where(YearEndClose.coop_id == coop.id,
                                                             YearEndClose.year == year))
    key = f"year_end:{year}"
    if closed is not None or ledger_queries.entry_id_by_key(coop, key) is not None:
        raise Conflict(_("This year is closed already."), code="year_closed")
    return key


def _check_expected(dist: Distribution, expected_surplus: int | None) -> None:
    if expected_surplus is not None and expected_surplus != dist.surplus_minor:
        raise Conflict(_("The figures changed since the preview; look at them again."),
                       code="figures_changed")


def preview_close_year(coop, year: int, *, expected_surplus: int | None = None,
                       today: date | None = None) -> Distribution:
    """What close_year would post, refusing what it would refuse; writes nothing."""
    _check_closable(coop, year, today)
    dist = preview(coop, year)
    _check_expected(dist, expected_surplus)
    return dist


def close_figures(dist: Distribution) -> tuple:
    """What a treasurer approves: the summary and every member's part (for the
    confirmation step, which acts only if these are still the figures)."""
    return (dist.summary(), tuple((m.user_id, m.cash_minor, m.retained_minor)
                                  for m in dist.members))


def close_year(coop, user, year: int, *, expected_surplus: int | None = None,
               today: date | None = None) -> YearEndClose:
    """Post the approved preview: close income and expenses into current_surplus (key
    "year_end:<year>"), then distribute it (or move a loss to accumulated_losses). Refuses
    a year not over yet, a year closed already, and figures that changed since the preview
    the treasurer approved."""
    verification.require_verified(coop)
    key = _check_closable(coop, year, today)
    dist = preview(coop, year, names=False)
    _check_expected(dist, expected_surplus)
    moment = _year_end_moment(year)
    record = YearEndClose(coop_id=coop.id, year=year, surplus_minor=dist.surplus_minor,
                          summary_json=json.dumps(dist.summary()),
                          approved_by_id=getattr(user, "id", None))
    db.session.add(record)
    db.session.flush()  # the unique (coop, year) refuses a racing second close here
    lines = [ledger.debit(code, amount) for code, _n, amount in dist.income]
    lines += [ledger.credit(code, amount) for code, _n, amount in dist.expenses]
    lines.append(ledger.credit("current_surplus", dist.surplus_minor))
    if any(line.amount_minor for line in lines[:-1]):
        entry = ledger.post(coop, key=key, kind="year_end_close", user=user, lines=lines,
                            memo=f"Close of {year}: income and expenses into the surplus",
                            source=("year_end", record.id), effective_on=moment)
        record.close_entry_id = entry.id
    if dist.surplus_minor < 0:
        loss = -dist.surplus_minor
        entry = ledger.post(coop, key=f"{key}:distribution", kind="year_end_distribution",
                            user=user, memo=f"Loss of {year} carried forward",
                            source=("year_end", record.id), effective_on=moment,
                            lines=[ledger.debit("accumulated_losses", loss),
                                   ledger.credit("current_surplus", loss)])
        record.distribution_entry_id = entry.id
    elif dist.surplus_minor > 0:
        dlines = [ledger.debit("current_surplus", dist.surplus_minor),
                  ledger.credit("accumulated_losses", dist.loss_cover_minor),
                  ledger.credit("reserve_fund", dist.reserve_minor),
                  ledger.credit("education_fund", dist.education_minor),
                  ledger.credit("solidarity_fund", dist.solidarity_minor)]
        for m in dist.members:
            dlines.append(ledger.credit(ledger.farmer_payable(m.user_id), m.cash_minor))
            dlines.append(ledger.credit(ledger.share_capital(m.user_id), m.retained_minor))
        ids = bulk.post_many(coop, [bulk.NewEntry(
            key=f"{key}:distribution", kind="year_end_distribution", lines=dlines,
            memo=f"Distribution of the {year} surplus", source=("year_end", record.id),
            effective_on=moment)], user=user)
        record.distribution_entry_id = ids[f"{key}:distribution"]
    db.session.flush()
    audit.record(coop.id, user, "treasury.year_end_close", "year_end", year,
                 {"closed": False}, dict(dist.summary(), closed=True,
                                         close_entry=record.close_entry_id,
                                         distribution_entry=record.distribution_entry_id))
    return record
