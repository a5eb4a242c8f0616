"""Price lists: farmer price (never below the floor), commission, social premium, volume tiers.
buyer price per kg = farmer price + commission + premium; tiers lower only the commission."""
from __future__ import annotations

import json
from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import func, select

from ..catalog import services as catalog
from ..common.numbers import parse_whole
from ..common.errors import NotFound, ValidationFailed
from ..common.quantities import QuantityError, parse_kg
from ..extensions import db
from .models import PriceVersion

MAX_PRICE_MINOR = 10**12
MAX_TIERS = 10


@dataclass(frozen=True)
class Breakdown:
    """Per-kg prices in minor units at one volume."""
    farmer: int
    commission: int
    premium: int
    currency: str

    @property
    def buyer(self) -> int:
        return self.farmer + self.commission + self.premium


def commission_per_kg(version: PriceVersion, value: int | None = None) -> int:
    value = version.commission_value if value is None else value
    if version.commission_kind == "bps":
        # Basis points of the farmer price, rounded half up to the minor unit.
        return (version.farmer_price_per_kg_minor * value + 5000) // 10000
    return value


def tiers(version: PriceVersion) -> list[tuple[int, int]]:
    return [(int(a), int(b)) for a, b in json.loads(version.tiers_json or "[]")]


def breakdown(version: PriceVersion, committed_g: int = 0) -> Breakdown:
    """The price per kg at a volume: the commission of the highest tier reached."""
    value = version.commission_value
    for min_g, tier_value in tiers(version):
        if committed_g >= min_g:
            value = tier_value
    return Breakdown(farmer=version.farmer_price_per_kg_minor,
                     commission=commission_per_kg(version, value),
                     premium=version.premium_per_kg_minor, currency=version.currency)


def highest(version: PriceVersion) -> Breakdown:
    """The price before any tier: what a card hold is sized on."""
    return breakdown(version, 0)


def amount_for(price_per_kg_minor: int, grams: int) -> int:
    """Price x kilograms in minor units, rounded half up to the minor unit."""
    return (price_per_kg_minor * grams + 500) // 1000


def _money(value, field: str, currency: str) -> int:
    from ..common.money import parse_major
    try:
        minor = parse_major(value, currency)
    except ValueError as exc:
        from ..common.numbers import amount_examples
        raise ValidationFailed(_("Give an amount such as %(whole)s or %(decimals)s.",
                                 **amount_examples(12500)),
                               fields={field: [getattr(exc, "message", None)
                                               or _("Not an amount.")]})
    if minor < 0 or minor > MAX_PRICE_MINOR:
        raise ValidationFailed(_("Amounts cannot be negative or that large."),
                               fields={field: [_("Out of range.")]})
    return minor


def _int(value, field: str, low: int, high: int) -> int:
    try:
        number = parse_whole(value)
    except (TypeError, ValueError):
        raise ValidationFailed(_("Give a whole number."), fields={field: [_("Whole number.")]})
    if not low <= number <= high:
        raise ValidationFailed(_("Out of range."), fields={field: [_("Out of range.")]})
    return number


def current(coop_id: int, crop_id: int, grade_id: int) -> PriceVersion | None:
    return db.session.scalar(
        select(PriceVersion).where(PriceVersion.coop_id == coop_id,
                                   PriceVersion.crop_id == crop_id,
                                   PriceVersion.grade_id == grade_id)
        .order_by(PriceVersion.version.desc()).limit(1))


def current_list(coop_id: int) -> list[PriceVersion]:
    """The current version of every crop and grade priced in the coop (one query; pages read
    current_prices, its cached copy)."""
    latest = (select(PriceVersion.crop_id, PriceVersion.grade_id,
                     func.max(PriceVersion.version).label("v"))
              .where(PriceVersion.coop_id == coop_id)
              .group_by(PriceVersion.crop_id, PriceVersion.grade_id).subquery())
    return list(db.session.scalars(
        select(PriceVersion).join(latest, (PriceVersion.crop_id == latest.c.crop_id)
                                  & (PriceVersion.grade_id == latest.c.grade_id)
                                  & (PriceVersion.version == latest.c.v))
        .where(PriceVersion.coop_id == coop_id).order_by(PriceVersion.crop_id,
                                                         PriceVersion.grade_id)))


@dataclass(frozen=True)
class CurrentPrice:
    """A current price version as plain data (the per-process cache of a coop's prices);
    commission_per_kg, tiers, breakdown and highest take it like a PriceVersion."""
    id: int
    coop_id: int
    crop_id: int
    grade_id: int
    version: int
    currency: str
    floor_per_kg_minor: int
    farmer_price_per_kg_minor: int
    commission_kind: str
    commission_value: int
    premium_per_kg_minor: int
    tiers_json: str
    crop: object  # catalog.CropRow
    grade: object  # catalog.GradeRow


def prices_cache(coop_id: int) -> str:
    """The name of the cache of a coop's current prices (coop/common/refcache.py)."""
    return f"prices:{int(coop_id)}"


def current_prices(coop_id: int) -> tuple[CurrentPrice, ...]:
    """The coop's current price of every crop and grade, in current_list's order, from this
    process's cache; set_price invalidates it for every process."""
    from ..common import refcache

    def load():
        crops = {c.id: c for c in catalog.all_crops()}
        grades = {g.id: g for c in crops.values() for g in c.grades}
        return tuple(CurrentPrice(
            v.id, v.coop_id, v.crop_id, v.grade_id, v.version, v.currency,
            v.floor_per_kg_minor, v.farmer_price_per_kg_minor, v.commission_kind,
            v.commission_value, v.premium_per_kg_minor, v.tiers_json,
            crops.get(v.crop_id), grades.get(v.grade_id)) for v in current_list(coop_id))
    return refcache.cached(prices_cache(coop_id), None, load)


def history(coop_id: int, limit: int = 100) -> list[PriceVersion]:
    from sqlalchemy.orm import joinedload
    return list(db.session.scalars(select(PriceVersion).where(PriceVersion.coop_id == coop_id)
                                   .options(joinedload(PriceVersion.changed_by)
                                            .lazyload("*"),
                                            joinedload(PriceVersion.crop),
                                            joinedload(PriceVersion.grade))
                                   .order_by(PriceVersion.changed_at.desc(),
                                             PriceVersion.id.desc()).limit(limit)))


def parse_tiers(text: str, kind: str, base_value: int, currency: str,
                locale=None) -> list[tuple[int, int]]:
    """Lines of "min_kg commission" (commission in basis points or money per kg, as the
    base). Each tier's commission must be lower than the one before and never negative.
    With a `locale` (a form's page) the numbers are read as typed there ("1.000 500" in
    es_CO); without, in machine format."""
    out: list[tuple[int, int]] = []
    for n, line in enumerate((text or "").strip().splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        parts = line.replace(";", " ").replace("\t", " ").split()
        if len(parts) != 2:
            raise ValidationFailed(
                _("Tier line %(n)d: write the kilograms and the commission, like \"1000 500\".",
                  n=n), fields={"tiers": [_("Line %(n)d is not \"kg commission\".", n=n)]})
        kg_text, value_text = parts
        if locale is not None:
            from ..common.numbers import MONEY_EXAMPLE, NumberInputError, parse_number
            try:
                kg_text = parse_number(kg_text, locale)
                value_text = parse_number(value_text, locale, example=MONEY_EXAMPLE,
                                          fmt="#,##0.00")
            except NumberInputError as exc:
                message = _("Tier line %(n)d: %(how)s", n=n, how=exc.message)
                raise ValidationFailed(message, fields={"tiers": [message]})
        try:
            grams = parse_kg(kg_text)
        except QuantityError as exc:
            raise ValidationFailed(str(exc), fields={"tiers": [str(exc)]})
        value = (_int(value_text, "tiers", 0, 10000) if kind == "bps"
                 else _money(value_text, "tiers", currency))
        out.append((grams, value))
    if len(out) > MAX_TIERS:
        raise ValidationFailed(_("At most %(n)d tiers.", n=MAX_TIERS),
                               fields={"tiers": [_("Too many tiers.")]})
    out.sort()
    previous = base_value
    last_g = 0
    for grams, value in out:
        if grams == last_g:
            raise ValidationFailed(_("Two tiers start at the same kilograms."),
                                   fields={"tiers": [_("Duplicate tier.")]})
        if value >= previous:
            raise ValidationFailed(_("Each tier must lower the commission; tiers never change "
                                     "the farmer price or the premium."),
                                   fields={"tiers": [_("Commission must go down.")]})
        previous, last_g = value, grams
    return out


def set_price(coop, user, *, crop: str, grade: str, floor, farmer_price, commission_kind: str,
              commission, premium, tiers_text: str = "", note: str = "",
              locale=None, confirm: str | None = None) -> PriceVersion:
    """A new price version. Refuses a farmer price below the floor, negative amounts, tiers
    that do not lower the commission, and prohibited or unknown crops.

    With `confirm` given (a form: "" or the token of a warning the manager confirmed), a
    farmer price or floor more than PLAUSIBLE_FACTOR times away from the current one raises
    Implausible, writing nothing, unless `confirm` is the token of these very numbers."""
    crop_row, grade_row = catalog.resolve(crop, grade)
    currency = coop.currency
    if commission_kind not in ("bps", "per_kg"):
        raise ValidationFailed(_("Choose a commission in basis points or per kg."),
                               fields={"commission_kind": [_("Unknown kind.")]})
    floor_minor = _money(floor, "floor", currency)
    farmer_minor = _money(farmer_price, "farmer_price", currency)
    premium_minor = _money(premium, "premium", currency)
    commission_value = (_int(commission, "commission", 0, 10000) if commission_kind == "bps"
                        else _money(commission, "commission", currency))
    if farmer_minor < floor_minor:
        raise ValidationFailed(
            _("The farmer price cannot be below the cooperative's floor for this crop and grade."),
            code="below_floor", fields={"farmer_price": [_("Below the floor.")]})
    if farmer_minor == 0:
        raise ValidationFailed(_("The farmer price must be more than zero."),
                               fields={"farmer_price": [_("Must be more than zero.")]})
    tier_list = parse_tiers(tiers_text, commission_kind, commission_value, currency, locale)
    previous = current(coop.id, crop_row.id, grade_row.id)
    if confirm is not None and previous is not None:
        _check_plausible(previous, floor_minor, farmer_minor, confirm)
    version = PriceVersion(
        coop_id=coop.id, crop_id=crop_row.id, grade_id=grade_row.id,
        version=(previous.version + 1) if previous else 1, currency=currency,
        floor_per_kg_minor=floor_minor, farmer_price_per_kg_minor=farmer_minor,
        commission_kind=commission_kind, commission_value=commission_value,
        premium_per_kg_minor=premium_minor, tiers_json=json.dumps(tier_list),
        changed_by_id=user.id, note=(note or "").strip()[:200])
    db.session.add(version)
    db.session.flush()
    from ..common import refcache
    refcache.bump(prices_cache(coop.id))
    return version


PLAUSIBLE_FACTOR = 3


def _check_plausible(previous: PriceVersion, floor_minor: int, farmer_minor: int,
                     confirm: str) -> None:
    from ..common.money import format_money
    from ..common.plausibility import Implausible, confirmed, far_from, token_for
    fields: dict[str, list[str]] = {}
    if far_from(farmer_minor, previous.farmer_price_per_kg_minor, PLAUSIBLE_FACTOR):
        fields["farmer_price"] = [_(
            "%(new)s per kg is far from the current farmer price, %(old)s. Check the number.",
            new=format_money(farmer_minor, previous.currency),
            old=format_money(previous.farmer_price_per_kg_minor, previous.currency))]
    if far_from(floor_minor, previous.floor_per_kg_minor, PLAUSIBLE_FACTOR):
        fields["floor"] = [_(
            "%(new)s per kg is far from the current floor, %(old)s. Check the number.",
            new=format_money(floor_minor, previous.currency),
            old=format_money(previous.floor_per_kg_minor, previous.currency))]
    if not fields:
        return
    token = token_for("price", previous.id, floor_minor, farmer_minor)
    if not confirmed(confirm, token):
        raise Implausible(_("Nothing was saved: a number is far from the current price. If it "
                            "is right, tick \"Yes, this is right\" and save again."),
                          token=token, fields=fields)


def get_version(version_id: int) -> PriceVersion:
    version = db.session.get(PriceVersion, version_id)
    if version is None:
        raise NotFound(_("No such price."))
    return version
