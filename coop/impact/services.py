"""Impact figures for programme funders, per cooperative and period (domain.md, "Impact
figures"). Aggregates only: no query here selects a name, a national ID, a phone or a member
number, and every figure comes out of a GROUP BY, so the report costs the same dozen
statements for 10 farmers or 10,000.

The period is [start, end] in whole days, UTC: from start 00:00 to the day after end 00:00.

Definitions (each figure says how many families it rests on, for suppression):
- Families enrolled: farmer member records (one per family) joined before the period ended
  and not left before it began, by the gender on the record. People: the household sizes
  recorded on those records.
- Hectares of illicit crops replaced: the illicit hectares recorded on those families' plots,
  by the crop they grew (coca, opium poppy, cannabis). As declared on the plot register; the
  register has no verification date, so it is the register as it stands.
- Hectares of licit crops: the whole area of those plots that have a licit crop recorded, by
  that crop.
- Licit income: the farmer amounts of deliveries accepted at intake in the period (what the
  farmer earned through the coop, before advances and share withholding, paid or not yet).
  Per household: that income over the families enrolled, and over the families that sold.
- Volume and value sold: kilograms accepted at intake in the period, and what buyers paid for
  them (after shortfall and downgrade refunds), by crop.
- Average farmer price against the floor: per crop and grade, the farmer price of each
  delivery and the floor of the price version it was paid under, both weighted by the
  kilograms accepted.
- Premium fund: credits to `premium_fund` (received) and debits (spent) in posted entries of
  the period (by the entry's accounting date, `effective_on`); a reversal counts against the
  figure of the entry it reverses. Balance: the fund at the end of the period.
- Paid to farmers: payout lines confirmed paid in the period, plus cash advances at intakes
  of the period.
- Buyers reached: distinct buyer organisations with an order captured in a pool of this coop
  decided in the period.
- Days from intake to payment: for each delivery, what the farmer was still owed for it (the
  farmer amount less the cash advance and share withholding) is settled by that farmer's paid
  payout lines oldest first: deliveries in the order they were recorded, lines in the order
  the bank confirmed them. A delivery is paid on the day the line that completes it was
  confirmed paid; one paid in full by the advance at the collection point is paid on its
  intake day. Days = UTC calendar days between the intake and that payment. Counted for the
  deliveries paid in the period; median and worst. Waiting: deliveries recorded by the end
  of the period and not yet paid in full at its end, and how long the oldest has waited.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

from flask_babel import gettext as _
from sqlalchemy import (BigInteger, Integer, and_, case, cast, func, literal, null, or_, select,
                        union_all)

from ..auth.models import Buyer
from ..catalog.models import Crop, Grade
from ..common.labels import has_label, label as code_label
from ..cooperatives.models import Cooperative, FarmerProfile, Plot
from ..extensions import db
from ..intake.models import Intake
from ..ledger import queries as ledger_queries
from ..payouts.models import PayoutLine
from ..pools.models import Order, Pool
from ..pricing.models import PriceVersion

SMALL = 5  # public cells resting on fewer families than this are shown as "<5"
GENDERS = ("female", "male", "other", "unknown")
EARLIEST = date(2000, 1, 1)
LATEST = date(2100, 12, 31)


# ---------------------------------------------------------------- the period

@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive

    @property
    def start_at(self) -> datetime:
        return datetime.combine(self.start, time(0), tzinfo=timezone.utc)

    @property
    def end_at(self) -> datetime:
        """The first instant after the period."""
        return datetime.combine(self.end + timedelta(days=1), time(0), tzinfo=timezone.utc)


def default_period(today: date | None = None) -> Period:
    today = today or datetime.now(timezone.utc).date()
    return Period(date(today.year, 1, 1), today)


def parse_period(start_text, end_text, today: date | None = None
                 ) -> tuple[Period | None, dict[str, list[str]]]:
    """(period, errors by field). Empty fields take the default (1 January to today)."""
    default = default_period(today)
    errors: dict[str, list[str]] = {}
    values = {}
    for name, text, fallback in (("start", start_text, default.start),
                                 ("end", end_text, default.end)):
        text = (text or "").strip()
        if not text:
            values[name] = fallback
            continue
        try:
            if len(text) != 10:
                raise ValueError
            value = date.fromisoformat(text)
        except ValueError:
            errors[name] = [_("Give a date as YYYY-MM-DD, like 2025-03-31.")]
            continue
        if not EARLIEST <= value <= LATEST:
            errors[name] = [_("Give a date between 2000-01-01 and 2100-12-31.")]
            continue
        values[name] = value
    if not errors and values["start"] > values["end"]:
        errors["end"] = [_("The end of the period must not be before its start.")]
    if errors:
        return None, errors
    return Period(values["start"], values["end"]), {}


# ---------------------------------------------------------------- figures

@dataclass
class Figure:
    """One number of the report. `families`: how many families it rests on (None: it is not
    about farmers, e.g. buyers or money the assembly spent). `hidden`: suppressed in the public
    version."""

    section: str
    figure: str
    breakdown: str
    label: str
    value: int | Decimal | None
    unit: str
    families: int | None = None
    hidden: bool = False

    @property
    def is_count_of_families(self) -> bool:
        return self.unit == "families"


@dataclass
class Report:
    coop: Cooperative
    period: Period
    public: bool
    figures: list[Figure] = field(default_factory=list)
    days_histogram: list[tuple[int, int]] = field(default_factory=list)

    def add(self, *args, **kw) -> Figure:
        fig = Figure(*args, **kw)
        self.figures.append(fig)
        return fig

    def get(self, section: str, figure: str, breakdown: str = "") -> Figure | None:
        for f in self.figures:
            if (f.section, f.figure, f.breakdown) == (section, figure, breakdown):
                return f
        return None

    def rows(self, section: str, figure: str) -> list[Figure]:
        return [f for f in self.figures
                if f.section == section and f.figure == figure and f.breakdown]

    @property
    def currency(self) -> str:
        return self.coop.currency


def _labels() -> dict[str, str]:
    return {"female": _("Women"), "male": _("Men"), "other": _("Other"),
            "unknown": _("Not recorded"), "coca": _("Coca"), "opium_poppy": _("Opium poppy"),
            "cannabis": _("Cannabis")}


def _day(column):
    """Whole UTC days since 1970 of a timestamp column, on PostgreSQL and SQLite."""
    if db.session.get_bind().dialect.name == "postgresql":
        return cast(func.floor(func.date_part("epoch", column).op("/")(86400)), Integer)
    return cast(func.strftime("%s", column), Integer).op("/")(86400)


def _int(value) -> int:
    return int(value or 0)


def _ratio(numerator: int, denominator: int) -> int | None:
    """numerator / denominator rounded half up to an integer; None when there is nothing."""
    if not denominator:
        return None
    return int((Decimal(numerator) / Decimal(denominator)).to_integral_value(ROUND_HALF_UP))


def build(coop: Cooperative, period: Period, *, public: bool) -> Report:
    """Every figure of the report, in a constant number of aggregate queries."""
    report = Report(coop=coop, period=period, public=public)
    labels = _labels()
    start, end = period.start_at, period.end_at
    enrolled = and_(FarmerProfile.coop_id == coop.id, FarmerProfile.joined_on < end,
                    or_(FarmerProfile.left_on.is_(None), FarmerProfile.left_on >= start))

    # 1. Families by gender, and the people in them.
    by_gender = {g: (0, 0, 0) for g in GENDERS}
    for gender, n, people, sized in db.session.execute(
            select(FarmerProfile.gender, func.count(FarmerProfile.id),
                   func.sum(FarmerProfile.household_size),
                   func.count(FarmerProfile.household_size))
            .where(enrolled).group_by(FarmerProfile.gender)):
        key = gender if gender in GENDERS else "unknown"
        old = by_gender[key]
        by_gender[key] = (old[0] + n, old[1] + _int(people), old[2] + _int(sized))
    families = sum(v[0] for v in by_gender.values())
    people = sum(v[1] for v in by_gender.values())
    sized = sum(v[2] for v in by_gender.values())
    report.add("families", "enrolled", "", _("Families enrolled"), families, "families",
               families)
    for g in GENDERS:
        n = by_gender[g][0]
        if n or g != "other":
            report.add("families", "enrolled", g, labels[g], n, "families", n)
    report.add("families", "people", "", _("People in the families (household sizes recorded)"),
               people, "people", sized)

    # 2. Plots of the enrolled families: totals, replaced by illicit crop, licit by crop.
    plot_base = select().select_from(Plot).join(FarmerProfile, FarmerProfile.id == Plot.farmer_id)
    totals = db.session.execute(plot_base.add_columns(
        func.count(func.distinct(case((Plot.illicit_area_m2 > 0, Plot.farmer_id)))),
        func.sum(Plot.illicit_area_m2),
        func.count(func.distinct(case((Plot.licit_crop.isnot(None), Plot.farmer_id)))),
        func.sum(case((Plot.licit_crop.isnot(None), Plot.area_m2), else_=0)))
        .where(enrolled)).one()
    report.add("land", "illicit_replaced", "", _("Hectares of illicit crops replaced"),
               _hectares(totals[1]), "ha", _int(totals[0]))
    for crop, m2, n in db.session.execute(plot_base.add_columns(
            Plot.replaced_crop, func.sum(Plot.illicit_area_m2),
            func.count(func.distinct(Plot.farmer_id)))
            .where(enrolled, Plot.illicit_area_m2 > 0).group_by(Plot.replaced_crop)
            .order_by(Plot.replaced_crop)):
        report.add("land", "illicit_replaced", crop or "unknown",
                   labels.get(crop or "unknown", crop), _hectares(m2), "ha", n)
    report.add("land", "licit", "", _("Hectares of licit crops"), _hectares(totals[3]), "ha",
               _int(totals[2]))
    licit_crop = func.lower(func.trim(Plot.licit_crop))
    for crop, m2, n in db.session.execute(plot_base.add_columns(
            licit_crop, func.sum(Plot.area_m2), func.count(func.distinct(Plot.farmer_id)))
            .where(enrolled, Plot.licit_crop.isnot(None)).group_by(licit_crop)
            .order_by(licit_crop)):
        name = code_label(crop, "crop") if has_label(crop, "crop") else crop.capitalize()
        report.add("land", "licit", crop, name, _hectares(m2), "ha", n)

    # 3. Deliveries accepted in the period, by crop and grade, with the floors they were
    # paid against.
    in_period = and_(Intake.coop_id == coop.id, Intake.recorded_at >= start,
                     Intake.recorded_at < end)
    sales = db.session.execute(
        select(Crop.slug, Crop.name_en, Crop.name_es, Grade.code, Grade.name_en, Grade.name_es,
               func.sum(Intake.accepted_g), func.sum(Intake.farmer_amount_minor),
               func.sum(Intake.sale_minor),
               func.sum(Intake.farmer_price_per_kg_minor * Intake.accepted_g),
               func.sum(PriceVersion.floor_per_kg_minor * Intake.accepted_g),
               func.count(func.distinct(Intake.farmer_user_id)))
        .select_from(Intake).join(Pool, Pool.id == Intake.pool_id)
        .join(Crop, Crop.id == Pool.crop_id).join(Grade, Grade.id == Intake.grade_id)
        .join(PriceVersion, PriceVersion.id == Intake.price_version_id)
        .where(in_period)
        .group_by(Crop.slug, Crop.name_en, Crop.name_es, Crop.sort_order, Grade.code,
                  Grade.name_en, Grade.name_es, Grade.sort_order)
        .order_by(Crop.sort_order, Grade.sort_order)).all()
    sold = db.session.execute(
        select(func.count(func.distinct(Intake.farmer_user_id)), func.sum(Intake.accepted_g),
               func.sum(Intake.farmer_amount_minor), func.sum(Intake.sale_minor),
               func.sum(Intake.premium_minor), func.sum(Intake.advance_minor),
               func.count(Intake.id))
        .where(in_period)).one()
    sellers = _int(sold[0])
    income = _int(sold[2])
    spanish = _spanish()
    report.add("sales", "families_selling", "", _("Families that sold through the cooperative"),
               sellers, "families", sellers)
    report.add("sales", "share_selling", "", _("Share of enrolled families that sold"),
               _ratio(sellers * 100, families), "percent", sellers)
    report.add("sales", "volume", "", _("Volume sold"), _kg(sold[1]), "kg", sellers)
    report.add("sales", "value", "", _("Value sold (what buyers paid)"), _int(sold[3]),
               coop.currency, sellers)
    by_crop: dict[str, list] = {}
    for row in sales:
        slug, name = row[0], row[2] if spanish else row[1]
        entry = by_crop.setdefault(slug, [name, 0, 0])
        entry[1] += _int(row[6])
        entry[2] += _int(row[8])
    crop_families = _crop_families(in_period) if len(by_crop) > 1 else \
        {slug: sellers for slug in by_crop}
    for slug, (name, grams, value) in by_crop.items():
        report.add("sales", "volume", slug, name, _kg(grams), "kg", crop_families.get(slug, 0))
        report.add("sales", "value", slug, name, value, coop.currency,
                   crop_families.get(slug, 0))
    for row in sales:
        crop_name = row[2] if spanish else row[1]
        grade_name = row[5] if spanish else row[4]
        key = f"{row[0]}:{row[3]}"
        grams, n = _int(row[6]), _int(row[11])
        label = f"{crop_name} — {grade_name}"
        report.add("prices", "farmer_price", key, label, _ratio(_int(row[9]), grams),
                   coop.currency + "/kg", n)
        report.add("prices", "floor", key, label, _ratio(_int(row[10]), grams),
                   coop.currency + "/kg", n)
        report.add("prices", "above_floor", key, label,
                   _ratio((_int(row[9]) - _int(row[10])) * 100, _int(row[10])), "percent", n)

    # 4. Income per household and what was paid in the period.
    report.add("income", "licit_income", "", _("Licit income through the cooperative"),
               income, coop.currency, sellers)
    report.add("income", "per_household", "", _("Licit income per enrolled household"),
               _ratio(income, families), coop.currency, sellers)
    report.add("income", "per_selling_household", "",
               _("Licit income per household that sold"), _ratio(income, sellers),
               coop.currency, sellers)
    paid, paid_families = db.session.execute(
        select(func.sum(PayoutLine.amount_minor),
               func.count(func.distinct(PayoutLine.farmer_user_id)))
        .where(PayoutLine.coop_id == coop.id, PayoutLine.status == "paid",
               PayoutLine.confirmed_at >= start, PayoutLine.confirmed_at < end)).one()
    report.add("income", "paid", "", _("Paid to farmers (payouts confirmed and cash advances)"),
               _int(paid) + _int(sold[5]), coop.currency,
               max(_int(paid_families), sellers if _int(sold[5]) else 0))

    # 5. The premium fund.
    premium = ledger_queries.fund_movements(coop, "premium_fund", start, end)
    report.add("premium", "received", "", _("Premium fund received"), _int(premium[0]),
               coop.currency, sellers)
    report.add("premium", "spent", "", _("Premium fund spent"), _int(premium[1]),
               coop.currency, None)
    report.add("premium", "balance", "", _("Premium fund at the end of the period"),
               _int(premium[2]), coop.currency, None)

    # 6. Buyers reached.
    buyer_rows = db.session.execute(
        select(Buyer.country, func.count(func.distinct(Order.buyer_id)))
        .select_from(Order).join(Pool, Pool.id == Order.pool_id)
        .join(Buyer, Buyer.id == Order.buyer_id)
        .where(Pool.coop_id == coop.id, Order.amount_captured_minor > 0,
               Pool.decided_at >= start, Pool.decided_at < end)
        .group_by(Buyer.country).order_by(Buyer.country)).all()
    report.add("buyers", "reached", "", _("Buyers reached"),
               sum(_int(n) for _c, n in buyer_rows), "buyers", None)
    for country, n in buyer_rows:
        report.add("buyers", "reached", country or "unknown", country or _("Not recorded"),
                   _int(n), "buyers", None)

    # 7. Days from intake to payment.
    _payment_days(report, coop, period)

    if public:
        _suppress(report)
    return report


def _crop_families(in_period) -> dict[str, int]:
    return dict(db.session.execute(
        select(Crop.slug, func.count(func.distinct(Intake.farmer_user_id)))
        .select_from(Intake).join(Pool, Pool.id == Intake.pool_id)
        .join(Crop, Crop.id == Pool.crop_id).where(in_period).group_by(Crop.slug)).all())


def _payment_days(report: Report, coop: Cooperative, period: Period) -> None:
    start, end = period.start_at, period.end_at
    net = Intake.farmer_amount_minor - Intake.advance_minor - Intake.share_withholding_minor
    ic = (select(Intake.farmer_user_id.label("farmer"), Intake.recorded_at.label("at"),
                 _day(Intake.recorded_at).label("day"), net.label("net"),
                 Intake.farmer_amount_minor.label("amount"),
                 func.sum(net).over(partition_by=Intake.farmer_user_id,
                                    order_by=(Intake.recorded_at, Intake.id)).label("cum"))
          .where(Intake.coop_id == coop.id, Intake.recorded_at < end).cte("ic"))
    lc = (select(PayoutLine.farmer_user_id.label("farmer"), PayoutLine.confirmed_at.label("at"),
                 _day(PayoutLine.confirmed_at).label("day"),
                 PayoutLine.amount_minor.label("amount"),
                 func.sum(PayoutLine.amount_minor).over(
                     partition_by=PayoutLine.farmer_user_id,
                     order_by=(PayoutLine.confirmed_at, PayoutLine.id)).label("cum"))
          .where(PayoutLine.coop_id == coop.id, PayoutLine.status == "paid",
                 PayoutLine.confirmed_at < end).cte("lc"))
    # The line that pays a delivery is the farmer's first paid line whose running total
    # reaches the delivery's (lines' amounts are positive, so their totals, days and times
    # only grow in the order they were paid): one sweep of the intakes and lines merged in
    # that order, each delivery taking the earliest day and time of the lines at or after
    # it, instead of a range join of every delivery with every line (which a planner
    # without statistics, as on SQLite, ran as a nested scan of both: 40-80 ms at 100x).
    no_day, no_net = cast(null(), Integer), cast(null(), BigInteger)
    no_at = cast(null(), PayoutLine.confirmed_at.type)
    sweep = union_all(
        select(ic.c.farmer, ic.c.cum, literal(0).label("kind"), ic.c.day, ic.c.net,
               no_day.label("line_day"), no_at.label("line_at")),
        select(lc.c.farmer, lc.c.cum, literal(1), no_day, no_net, lc.c.day,
               lc.c.at)).subquery()
    following = {"partition_by": sweep.c.farmer, "order_by": (sweep.c.cum, sweep.c.kind),
                 "rows": (0, None)}
    paid_on = select(sweep.c.farmer, sweep.c.kind, sweep.c.day, sweep.c.net,
                     func.min(sweep.c.line_day).over(**following).label("line_day"),
                     func.min(sweep.c.line_at).over(**following).label("line_at")).subquery()
    by_line = (select(paid_on.c.farmer, (paid_on.c.line_day - paid_on.c.day).label("days"))
               .where(paid_on.c.kind == 0, paid_on.c.net > 0, paid_on.c.line_at >= start))
    at_intake = (select(ic.c.farmer, literal(0).label("days"))
                 .where(ic.c.net <= 0, ic.c.amount > 0, ic.c.at >= start))
    settled = union_all(by_line, at_intake).cte("settled")
    paid_by_end = (select(lc.c.farmer, func.max(lc.c.cum).label("paid"))
                   .group_by(lc.c.farmer).subquery("paid_by_end"))
    # One statement (the window CTEs computed once): the histogram of days ("h" rows), the
    # families paid ("f") and what still waits at the end of the period ("w").
    zero = literal(0)
    rows = db.session.execute(union_all(
        select(literal("h").label("kind"), settled.c.days.label("a"), func.count().label("b"),
               zero.label("c")).group_by(settled.c.days),
        select(literal("f"), zero, func.count(func.distinct(settled.c.farmer)), zero),
        select(literal("w"), func.count(), func.min(ic.c.day),
               func.count(func.distinct(ic.c.farmer)))
        .select_from(ic.outerjoin(paid_by_end, paid_by_end.c.farmer == ic.c.farmer))
        .where(ic.c.net > 0, ic.c.cum > func.coalesce(paid_by_end.c.paid, 0)))).all()
    histogram = sorted((max(_int(a), 0), _int(b)) for kind, a, b, _c in rows if kind == "h")
    merged: dict[int, int] = {}
    for d, n in histogram:
        merged[d] = merged.get(d, 0) + n
    report.days_histogram = sorted(merged.items())
    paid_families = next(_int(b) for kind, _a, b, _c in rows if kind == "f")
    count = sum(merged.values())
    report.add("payment_days", "deliveries_paid", "", _("Deliveries paid in the period"),
               count, "deliveries", paid_families)
    report.add("payment_days", "median", "", _("Median days from intake to payment"),
               _median(report.days_histogram), "days", paid_families)
    report.add("payment_days", "worst", "", _("Worst days from intake to payment"),
               max(merged) if merged else None, "days", paid_families)

    waiting, oldest_day, waiting_families = next(
        (a, b, c) for kind, a, b, c in rows if kind == "w")
    last_day = (period.end - date(1970, 1, 1)).days
    report.add("payment_days", "waiting", "",
               _("Deliveries not yet paid at the end of the period"),
               _int(waiting), "deliveries", _int(waiting_families))
    report.add("payment_days", "oldest_waiting", "",
               _("Days the oldest unpaid delivery had waited"),
               (last_day - _int(oldest_day)) if waiting else None, "days", _int(waiting_families))


def _median(histogram: list[tuple[int, int]]) -> Decimal | None:
    total = sum(n for _d, n in histogram)
    if not total:
        return None

    def nth(k: int) -> int:  # the k-th smallest value, 0-based
        seen = 0
        for d, n in histogram:
            seen += n
            if k < seen:
                return d
        raise IndexError(k)
    if total % 2:
        return Decimal(nth(total // 2))
    return (Decimal(nth(total // 2 - 1)) + Decimal(nth(total // 2))) / 2


def _hectares(m2) -> Decimal:
    return (Decimal(_int(m2)) / 10000).quantize(Decimal("0.0001"))


def _kg(grams) -> Decimal:
    return (Decimal(_int(grams)) / 1000).quantize(Decimal("0.001"))


def _spanish() -> bool:
    from flask_babel import get_locale
    loc = get_locale()
    return bool(loc and loc.language == "es")


# ---------------------------------------------------------------- suppression

def _small(fig: Figure) -> bool:
    return fig.families is not None and 0 < fig.families < SMALL


def _suppress(report: Report) -> None:
    """Hide every figure that rests on 1 to 4 families. Where a breakdown would then have one
    hidden part only, next to a total shown, the smallest other part is hidden too, so the
    hidden one cannot be found by subtraction."""
    for fig in report.figures:
        fig.hidden = _small(fig)
    groups: dict[tuple[str, str], list[Figure]] = {}
    for fig in report.figures:
        if fig.breakdown:
            groups.setdefault((fig.section, fig.figure), []).append(fig)
    for (section, figure), parts in groups.items():
        total = report.get(section, figure)
        if total is None or total.hidden:
            continue
        hidden = [f for f in parts if f.hidden]
        if len(hidden) == 1:
            others = [f for f in parts if not f.hidden and f.families]
            if others:
                min(others, key=lambda f: (f.families, f.value or 0)).hidden = True
    # A figure per household also reveals its total: hide them together.
    if report.get("income", "licit_income").hidden:
        for name in ("per_household", "per_selling_household"):
            report.get("income", name).hidden = True


# ---------------------------------------------------------------- CSV

CSV_COLUMNS = ["cooperative", "period_start", "period_end", "section", "figure", "breakdown",
               "value", "unit", "families"]


def is_money(report: Report, fig: Figure) -> bool:
    return fig.unit in (report.currency, report.currency + "/kg")


def csv_rows(report: Report) -> list[list[str]]:
    """One row per figure; money in the currency's major unit (the unit column says which),
    kilograms with 3 decimals, hectares with 4. Hidden public cells: "<5"."""
    from ..common.money import to_decimal
    rows = [CSV_COLUMNS]
    for fig in report.figures:
        if fig.hidden:
            value = "<5" if fig.is_count_of_families else ""
            families = "<5"
        else:
            if fig.value is None:
                value = ""
            elif is_money(report, fig):
                value = str(to_decimal(int(fig.value), report.currency))
            else:
                value = str(fig.value)
            families = "" if fig.families is None else str(fig.families)
        rows.append([report.coop.slug, report.period.start.isoformat(),
                     report.period.end.isoformat(), fig.section, fig.figure, fig.breakdown,
                     value, fig.unit, families])
    return rows
