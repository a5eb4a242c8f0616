"""Harvest listings: farmers list, edit and withdraw; everyone sees the aggregated supply."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from flask_babel import gettext as _
from sqlalchemy import bindparam, delete, func, select, update

from ..catalog import services as catalog
from ..catalog.models import Crop, Grade
from ..common.access import farmer_coop_ids
from ..common.dates import DateInputError, parse_date
from ..common.errors import Conflict, Forbidden, NotFound, ValidationFailed
from ..common.idempotency import check_key, fingerprint as request_fingerprint, replay_or_refuse
from ..common.paging import PER_PAGE, KeysetPage, keyset
from ..common.quantities import QuantityError, parse_kg
from ..common.statuses import PUBLIC_LISTING_STATUSES, SUPPLY_LISTING_STATUSES
from ..cooperatives.models import Cooperative
from ..extensions import db
from ..messages import services as messages
from .models import Listing, ListingPhoto
from .photos import process_photo

MAX_AGE_DAYS = 365      # a harvest older than a year is not on offer any more
# NUL and other control characters: PostgreSQL refuses NUL in text, and none belong in a form.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def local_today(country: str | None = None) -> date:
    """Today where the coop is: the latest calendar date among its country's time zones (CLDR,
    through Babel), so a harvest picked today is never refused; UTC's date if unknown."""
    from datetime import datetime, timezone
    from zoneinfo import ZoneInfo

    from babel.core import get_global
    now = datetime.now(timezone.utc)
    days = []
    for name in get_global("territory_zones").get((country or "").upper(), ()):
        try:
            days.append(now.astimezone(ZoneInfo(name)).date())
        except Exception:  # a zone the system's tz database lacks
            continue
    return max(days) if days else now.date()


def parse_harvest_date(value, today: date | None = None) -> date:
    """A harvest already picked: YYYY-MM-DD, not later than today, at most a year ago."""
    today = today or local_today()
    if isinstance(value, date):
        day = value
    else:
        try:
            # YYYY-MM-DD in ASCII digits (coop/common/dates.py); the range is the harvest's.
            day = parse_date(value, bounded=False)
        except DateInputError:
            raise ValidationFailed(_("Give the harvest date as YYYY-MM-DD."),
                                   fields={"harvested_on": [_("A date like 2026-11-02.")]})
    if day < today - timedelta(days=MAX_AGE_DAYS):
        raise ValidationFailed(_("That harvest date is more than a year ago."),
                               fields={"harvested_on": [_("More than a year ago.")]})
    if day > today:
        raise ValidationFailed(_("The harvest date cannot be later than today: list a harvest "
                                 "once it is picked."),
                               fields={"harvested_on": [_("Later than today. Give the day it "
                                                          "was picked.")]})
    return day


def _grams(value, field="quantity_kg") -> int:
    try:
        return parse_kg(value)
    except QuantityError as exc:
        raise ValidationFailed(str(exc), fields={field: [str(exc)]})


def _text(value, field, limit) -> str:
    text = (value or "").strip() if isinstance(value, (str, type(None))) else None
    if text is None:
        raise ValidationFailed(_("Expected text."), fields={field: [_("Expected text.")]})
    if len(text) > limit:
        raise ValidationFailed(_("At most %(n)d characters.", n=limit),
                               fields={field: [_("At most %(n)d characters.", n=limit)]})
    if _CONTROL.search(text):
        raise ValidationFailed(_("Remove the control characters from this text."),
                               fields={field: [_("Contains control characters.")]})
    return text


def _collection_point(coop_id: int, value, current: str | None = None) -> str:
    """One of the coop's collection points, by name (spaces and case aside), or none; the
    listing's own point is kept as it is even if the coop no longer lists it."""
    from ..cooperatives.services import collection_point_named
    text = _text(value, "collection_point", 160)
    if not text or text == current:
        return text
    point = collection_point_named(coop_id, text)
    if point is None:
        raise ValidationFailed(
            _("Choose one of your cooperative's collection points."),
            fields={"collection_point": [_("Not a collection point of your cooperative.")]})
    return point.name


def rename_collection_point(coop_id: int, old: str, new: str) -> int:
    """A coop renamed a collection point: its listings there follow. Returns how many."""
    result = db.session.execute(update(Listing).where(
        Listing.coop_id == coop_id, Listing.collection_point == old)
        .values(collection_point=new).execution_options(synchronize_session="fetch"))
    return result.rowcount


def farmer_coop_for(user, coop_id: int | None) -> int:
    """The coop a farmer lists in: the one given (they must farm there) or their only one."""
    coops = farmer_coop_ids(user)
    if not coops:
        raise Forbidden(_("Only farmer members can list harvests."), code="not_a_farmer")
    if coop_id is None:
        if len(coops) > 1:
            raise ValidationFailed(_("Choose the cooperative to list in."),
                                   fields={"coop_id": [_("Required.")]})
        return coops[0]
    if coop_id not in coops:
        raise NotFound(_("No such cooperative."))
    return coop_id


# Crops the EU traces to their plots (EUDR): a listing of them names its plot(s).
TRACED_CROPS = ("coffee", "cacao")


def farmer_plots(farmer, coop_id: int) -> list:
    """The farmer's own plots in that coop (Plot rows, by name), in one query."""
    from ..cooperatives.models import FarmerProfile
    from ..plots.models import Plot
    return list(db.session.scalars(
        select(Plot).join(FarmerProfile, FarmerProfile.id == Plot.farmer_id)
        .where(FarmerProfile.coop_id == coop_id, FarmerProfile.user_id == farmer.id)
        .order_by(Plot.name, Plot.id)))


def farmer_plot_choices(farmer) -> list[tuple]:
    """(plot id, plot name, coop id, coop name) of the farmer's plots in every coop they farm
    in, by coop and name: the listing form's choices, in one query."""
    from ..cooperatives.models import FarmerProfile, Membership
    from ..plots.models import Plot
    return [tuple(r) for r in db.session.execute(
        select(Plot.id, Plot.name, Cooperative.id, Cooperative.name)
        .join(FarmerProfile, FarmerProfile.id == Plot.farmer_id)
        .join(Cooperative, Cooperative.id == FarmerProfile.coop_id)
        .join(Membership, (Membership.coop_id == FarmerProfile.coop_id)
              & (Membership.user_id == FarmerProfile.user_id) & (Membership.role == "farmer"))
        .where(FarmerProfile.user_id == farmer.id)
        .order_by(Cooperative.name, Plot.name, Plot.id))]


def plot_names_of(listing_ids) -> dict[int, list[tuple[int, str]]]:
    """(plot id, name) of the plots each listing came from, in one query."""
    from ..plots.models import Plot
    from .models import ListingPlot
    ids = list(set(listing_ids))
    found: dict[int, list[tuple[int, str]]] = {i: [] for i in ids}
    if ids:
        for listing_id, plot_id, name in db.session.execute(
                select(ListingPlot.listing_id, Plot.id, Plot.name)
                .join(Plot, Plot.id == ListingPlot.plot_id)
                .where(ListingPlot.listing_id.in_(ids))
                .order_by(ListingPlot.listing_id, Plot.name, Plot.id)):
            found[listing_id].append((plot_id, name))
    return found


def _plot_ids_value(value) -> list[int] | None:
    """`plot_ids` as given: None (not given), or a list of whole numbers (a list of
    strings of digits from a form); anything else is refused on the field."""
    if value is None:
        return None
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise ValidationFailed(_("plot_ids must be a list of plot ids."),
                               fields={"plot_ids": [_("A list of plot ids.")]})
    ids = []
    for item in value:
        if isinstance(item, str) and item.strip().isdigit():
            item = int(item.strip())
        if not isinstance(item, int) or isinstance(item, bool) or item <= 0 \
                or item > 2**31 - 1:
            raise ValidationFailed(_("plot_ids must be a list of plot ids."),
                                   fields={"plot_ids": [_("A list of plot ids.")]})
        if item not in ids:
            ids.append(item)
    return ids


def _listing_plots(farmer, coop_id: int, crop_slug: str, plot_ids) -> list[int]:
    """The plots a listing came from: those given, each one of the farmer's own plots in the
    coop (another's: refused on the field, never a hint of whose it is); none given and the
    farmer has exactly one plot: that one. Coffee and cacao need at least one."""
    given = _plot_ids_value(plot_ids)
    own = farmer_plots(farmer, coop_id)
    own_ids = [p.id for p in own]
    if given is None:
        chosen = own_ids[:1] if len(own_ids) == 1 else []
    else:
        foreign = [i for i in given if i not in own_ids]
        if foreign:
            raise ValidationFailed(
                _("Choose among your own plots in this cooperative."),
                fields={"plot_ids": [_("Not one of your plots: %(ids)s",
                                       ids=", ".join(str(i) for i in foreign))]})
        chosen = given
    if not chosen and crop_slug in TRACED_CROPS:
        if not own_ids:
            message = _("Coffee and cacao are traced to the plot they grew on, and your "
                        "cooperative has not recorded a plot of yours yet: ask your manager "
                        "to add it.")
        else:
            message = _("Choose the plot (or plots) this harvest came from: coffee and cacao "
                        "are traced to their plots.")
        raise ValidationFailed(message, fields={"plot_ids": [message]})
    return chosen


def _set_plots(listing: Listing, plot_ids: list[int]) -> None:
    from .models import ListingPlot
    current = plots_of([listing.id])[listing.id]
    if current == sorted(plot_ids):
        return
    db.session.execute(delete(ListingPlot).where(ListingPlot.listing_id == listing.id))
    for plot_id in plot_ids:
        db.session.add(ListingPlot(listing_id=listing.id, plot_id=plot_id))
    db.session.flush()


def create_listing(farmer, *, crop: str, grade: str, quantity_kg, harvested_on,
                   collection_point: str = "", notes: str = "", coop_id: int | None = None,
                   photo: bytes | None = None, idempotency_key: str | None = None,
                   plot_ids=None) -> tuple[Listing, bool]:
    """List a harvest. Returns (listing, created). Refuses prohibited or unknown crops, bad
    quantities and dates, bad photos, plots not the farmer's, coffee or cacao from no plot
    (a farmer with one plot: that one, unless others are named). With an idempotency key a
    repeat returns the first listing; the same key with other data is refused
    (`idempotency_key_reused`)."""
    fingerprint = request_fingerprint({"crop": crop, "grade": grade, "quantity_kg": str(quantity_kg),
                                       "harvested_on": str(harvested_on), "coop_id": coop_id,
                                       "collection_point": collection_point, "notes": notes,
                                       **({"plot_ids": [str(i) for i in plot_ids]}
                                          if isinstance(plot_ids, (list, tuple)) else {})})
    if idempotency_key is not None:
        check_key(idempotency_key)
        earlier = listing_for_key(farmer, idempotency_key)
        if earlier is not None:
            return replay_or_refuse(earlier, earlier.request_hash == fingerprint,
                                    _("This Idempotency-Key was used with different data.")), False
    if not isinstance(crop, str) or not isinstance(grade, str):
        raise ValidationFailed(_("Choose a crop and grade."),
                               fields={"crop": [_("Required.")]})
    crop_row, grade_row = catalog.resolve(crop, grade)
    coop = farmer_coop_for(farmer, coop_id)
    country, coop_name = db.session.execute(
        select(Cooperative.country, Cooperative.name).where(Cooperative.id == coop)).one()
    listing = Listing(
        coop_id=coop, farmer_user_id=farmer.id, crop_id=crop_row.id, grade_id=grade_row.id,
        quantity_g=_grams(quantity_kg), committed_g=0,
        harvested_on=parse_harvest_date(harvested_on, local_today(country)),
        collection_point=_collection_point(coop, collection_point),
        notes=_text(notes, "notes", 500), status="available",
        idempotency_key=idempotency_key, request_hash=fingerprint if idempotency_key else None)
    chosen_plots = _listing_plots(farmer, coop, crop_row.slug, plot_ids)
    processed = process_photo(photo) if photo else None
    db.session.add(listing)
    db.session.flush()
    _set_plots(listing, chosen_plots)
    if processed:
        _attach_photo(listing, processed)
    messages.notify(farmer, "farmer.harvest_listed", event=f"listing:{listing.id}:listed",
                    coop_id=coop, kg=messages.Kg(listing.quantity_g),
                    crop=messages.Label("crop", crop_row.slug), coop=coop_name,
                    link="/my/listings")
    return listing, True


def listing_for_key(farmer, idempotency_key: str) -> Listing | None:
    """The listing this farmer created with that Idempotency-Key, if any."""
    return db.session.scalar(select(Listing).where(
        Listing.farmer_user_id == farmer.id, Listing.idempotency_key == idempotency_key))


def _attach_photo(listing: Listing, processed) -> None:
    existing = db.session.scalar(select(ListingPhoto).where(ListingPhoto.listing_id == listing.id))
    if existing is None:
        existing = ListingPhoto(listing_id=listing.id)
        db.session.add(existing)
    existing.data = processed.data
    existing.content_type = processed.content_type
    existing.width, existing.height = processed.width, processed.height
    existing.digest = processed.digest
    listing.photo_digest = processed.digest
    db.session.flush()


def own_listing(farmer, listing_id: int, *, for_update: bool = False) -> Listing:
    """The farmer's own listing; anyone else's is NotFound."""
    stmt = select(Listing).where(Listing.id == listing_id)
    if for_update:
        # OF listings: PostgreSQL cannot lock the outer-joined crop, grade and coop rows.
        stmt = stmt.with_for_update(of=Listing)
    listing = db.session.scalar(stmt)
    if listing is None or listing.farmer_user_id != farmer.id:
        raise NotFound(_("No such listing."))
    return listing


_SUPPLY_RESERVATION = None


def register_supply_reservation(reserved) -> None:
    """Wired at app creation (create_app): `reserved(coop_id, crop_id, grade_id)` answers
    the grams that open pools hold of a crop and grade's supply, so listings never drop
    below it. Listings does not import pools (pools builds on listings)."""
    global _SUPPLY_RESERVATION
    _SUPPLY_RESERVATION = reserved


def reserved_by_open_pools(coop_id: int, crop_id: int, grade_id: int) -> int:
    """Grams that open pools need from this crop and grade's supply. Refuses to answer
    (RuntimeError) before the reservation is wired, rather than guess 0."""
    if _SUPPLY_RESERVATION is None:
        raise RuntimeError("the supply reserved by pools is not wired (create_app does it)")
    return _SUPPLY_RESERVATION(coop_id, crop_id, grade_id)


def commit_allocations(rows: list[tuple[int, int, int]]) -> None:
    """Record what a closing pool allocated: (listing id, grams now committed, grams listed)
    per listing, in one statement; a listing committed in full is sold. The caller holds the
    listings' rows locked and never commits more than is listed."""
    if not rows:
        return
    db.session.execute(
        update(Listing.__table__).where(Listing.__table__.c.id == bindparam("b_id"))
        .values(committed_g=bindparam("b_committed"), status=bindparam("b_status")),
        [{"b_id": listing_id, "b_committed": committed,
          "b_status": "sold" if committed == quantity else "committed"}
         for listing_id, committed, quantity in rows])


def uncommitted_supply(coop_id: int, crop_id: int, grade_id: int) -> int:
    """Grams listed and not yet committed to a pool, for one crop and grade."""
    return db.session.scalar(
        select(func.coalesce(func.sum(Listing.quantity_g - Listing.committed_g), 0)).where(
            Listing.coop_id == coop_id, Listing.crop_id == crop_id, Listing.grade_id == grade_id,
            Listing.status.in_(SUPPLY_LISTING_STATUSES))) or 0


def _check_supply_left(listing: Listing, removing_g: int, lock: bool = True) -> None:
    if removing_g <= 0:
        return
    if lock:
        from ..common.locks import supply_lock
        supply_lock(listing.coop_id, listing.crop_id, listing.grade_id)
    supply = uncommitted_supply(listing.coop_id, listing.crop_id, listing.grade_id)
    needed = reserved_by_open_pools(listing.coop_id, listing.crop_id, listing.grade_id)
    if supply - removing_g < needed:
        raise Conflict(_("An open pool needs this harvest. You can change it after the pool "
                         "closes."), code="listing_committed")


def update_listing(farmer, listing_id: int, *, quantity_kg=None, harvested_on=None,
                   collection_point=None, notes=None, grade: str | None = None,
                   photo: bytes | None = None, crop: str | None = None,
                   plot_ids=None) -> Listing:
    """Edit a listing while nothing of it is committed; never below what open pools need.
    `plot_ids` (None: unchanged) replaces the plots it came from, by the rules of
    create_listing.
    The crop cannot change (a prohibited crop is refused as such; another crop, 422): the
    farmer withdraws the listing and lists the other crop."""
    listing = own_listing(farmer, listing_id, for_update=True)
    if crop is not None and crop != listing.crop.slug:
        catalog.refuse_prohibited(crop)
        raise ValidationFailed(_("The crop cannot change; withdraw this listing and "
                                 "list the other crop."), fields={"crop": []})
    if listing.status == "withdrawn":
        raise Conflict(_("This listing was withdrawn. List the harvest again instead."),
                       code="listing_withdrawn")
    if listing.status != "available" or listing.committed_g:
        raise Conflict(_("This listing is already committed to a pool and cannot be changed."),
                       code="listing_committed")
    if grade is not None and grade != listing.grade.code:
        _crop, grade_row = catalog.resolve(listing.crop.slug, grade)
        _check_supply_left(listing, listing.quantity_g)
        listing.grade_id = grade_row.id
    if quantity_kg is not None:
        grams = _grams(quantity_kg)
        _check_supply_left(listing, listing.quantity_g - grams)
        listing.quantity_g = grams
    if harvested_on is not None:
        listing.harvested_on = parse_harvest_date(harvested_on,
                                                  local_today(listing.coop.country))
    if collection_point is not None:
        listing.collection_point = _collection_point(listing.coop_id, collection_point,
                                                     current=listing.collection_point)
    if notes is not None:
        listing.notes = _text(notes, "notes", 500)
    if plot_ids is not None:
        _set_plots(listing, _listing_plots(farmer, listing.coop_id, listing.crop.slug,
                                           plot_ids))
    if photo:
        _attach_photo(listing, process_photo(photo))
    db.session.flush()
    return listing


def withdraw_listing(farmer, listing_id: int) -> Listing:
    """Take a listing off the market; refused while a pool has committed it or needs it."""
    listing = own_listing(farmer, listing_id, for_update=True)
    if listing.status == "withdrawn":
        return listing
    if listing.status != "available" or listing.committed_g:
        raise Conflict(_("This listing is already committed to a pool and cannot be withdrawn."),
                       code="listing_committed")
    _check_supply_left(listing, listing.quantity_g)
    listing.status = "withdrawn"
    db.session.flush()
    return listing


def farmer_listings(farmer, *, limit: int | None = None, after_id: int | None = None) -> list[Listing]:
    """The farmer's listings, newest first (crop, grade and coop loaded in the same query)."""
    stmt = select(Listing).where(Listing.farmer_user_id == farmer.id).order_by(Listing.id.desc())
    if after_id:
        stmt = stmt.where(Listing.id < after_id)
    if limit:
        stmt = stmt.limit(limit)
    return list(db.session.scalars(stmt).unique())


def farmer_listings_page(farmer, cursor: str | None, *, status: str | None = None,
                         limit: int = PER_PAGE) -> KeysetPage:
    """A page of the farmer's listings, newest first (keyset on the id), by status."""
    stmt = select(Listing).where(Listing.farmer_user_id == farmer.id)
    if status:
        stmt = stmt.where(Listing.status == status)
    return keyset(stmt, [(Listing.id, "desc")], cursor, limit)


# The supply page's statements, built once per process for each shape (with or without a
# coop, a crop): SQLAlchemy keeps a statement's cache key, so executing the same statement
# again skips building and keying it (~1 ms a page).
_STATEMENTS: dict = {}


def _statement(key, build):
    found = _STATEMENTS.get(key)
    if found is None:
        found = _STATEMENTS.setdefault(key, build())
    return found


def _supply_statement(by_coop: bool, by_crop: bool):
    available = Listing.quantity_g - Listing.committed_g
    stmt = (
        select(Cooperative.id, Cooperative.slug, Cooperative.name, Cooperative.region,
               Cooperative.country, Cooperative.currency, Crop.slug, Crop.name_en, Crop.name_es,
               Grade.code, Grade.name_en, Grade.name_es,
               func.sum(available), func.min(Listing.harvested_on),
               func.max(Listing.harvested_on), func.count(func.distinct(Listing.farmer_user_id)))
        .join(Cooperative, Cooperative.id == Listing.coop_id)
        .join(Crop, Crop.id == Listing.crop_id)
        .join(Grade, Grade.id == Listing.grade_id)
        .where(Listing.status.in_(SUPPLY_LISTING_STATUSES), available > 0)
        .group_by(Cooperative.id, Cooperative.slug, Cooperative.name, Cooperative.region,
                  Cooperative.country, Cooperative.currency, Crop.id, Crop.slug, Crop.name_en,
                  Crop.name_es, Grade.id, Grade.code, Grade.name_en, Grade.name_es)
        .order_by(Cooperative.name, Crop.sort_order, Grade.sort_order)
    )
    if by_coop:
        stmt = stmt.where(Listing.coop_id == bindparam("coop_id"))
    if by_crop:
        stmt = stmt.where(Crop.slug == bindparam("crop_slug"))
    return stmt


def supply(coop_id: int | None = None, crop_slug: str | None = None) -> list[dict]:
    """Supply on offer per coop, crop and grade: kilograms available, harvest window, region.
    Aggregated in one query; it names no farmer."""
    by_coop, by_crop = coop_id is not None, bool(crop_slug)
    stmt = _statement(("supply", by_coop, by_crop),
                      lambda: _supply_statement(by_coop, by_crop))
    params = {}
    if by_coop:
        params["coop_id"] = coop_id
    if by_crop:
        params["crop_slug"] = crop_slug
    rows = []
    for r in db.session.execute(stmt, params):
        rows.append({
            "coop_id": r[0], "coop_slug": r[1], "coop_name": r[2], "region": r[3],
            "country": r[4], "currency": r[5], "crop": r[6], "crop_name_en": r[7],
            "crop_name_es": r[8], "grade": r[9], "grade_name_en": r[10], "grade_name_es": r[11],
            "available_g": int(r[12] or 0), "harvest_from": r[13], "harvest_to": r[14],
            "farmers": int(r[15]),
        })
    return rows


def get_photo(listing_id: int) -> ListingPhoto | None:
    return db.session.scalar(select(ListingPhoto).where(ListingPhoto.listing_id == listing_id))


@dataclass(frozen=True)
class WithdrawPreview:
    listing_id: int
    crop_id: int
    grade_id: int
    grams: int
    harvested_on: str


def preview_withdraw_listing(farmer, listing_id: int) -> WithdrawPreview:
    """What withdraw_listing would take off the market, refusing what it would refuse."""
    listing = own_listing(farmer, listing_id)
    if listing.status == "withdrawn":
        raise Conflict(_("This listing was withdrawn already."), code="listing_withdrawn")
    if listing.status != "available" or listing.committed_g:
        raise Conflict(_("This listing is already committed to a pool and cannot be withdrawn."),
                       code="listing_committed")
    _check_supply_left(listing, listing.quantity_g, lock=False)
    return WithdrawPreview(listing_id=listing.id, crop_id=listing.crop_id,
                           grade_id=listing.grade_id, grams=listing.quantity_g,
                           harvested_on=listing.harvested_on.isoformat()
                           if listing.harvested_on else "")


def photo_visible_to(listing: Listing, user) -> bool:
    """A harvest's photo is shown to buyers while it is offered (and once sold); its farmer
    and the coop's managers always see it; nobody sees a withdrawn harvest's but them."""
    if listing.status in PUBLIC_LISTING_STATUSES:
        return True
    if not getattr(user, "is_authenticated", False):
        return False
    from ..common.access import roles_in
    return listing.farmer_user_id == user.id or "manager" in roles_in(user, listing.coop_id)


def supply_photos(coop_id: int | None = None) -> dict:
    """The newest photographed listing on offer per (coop id, crop slug, grade code), as
    (listing id, photo digest): one query for the whole supply page."""
    by_coop = coop_id is not None

    def build():
        available = Listing.quantity_g - Listing.committed_g
        newest = (select(func.max(Listing.id).label("id"))
                  .where(Listing.status.in_(SUPPLY_LISTING_STATUSES), available > 0,
                         Listing.photo_digest.is_not(None))
                  .group_by(Listing.coop_id, Listing.crop_id, Listing.grade_id))
        if by_coop:
            newest = newest.where(Listing.coop_id == bindparam("coop_id"))
        return (select(Listing.coop_id, Crop.slug, Grade.code, Listing.id, Listing.photo_digest)
                .join(Crop, Crop.id == Listing.crop_id)
                .join(Grade, Grade.id == Listing.grade_id)
                .where(Listing.id.in_(newest.scalar_subquery())))
    stmt = _statement(("supply_photos", by_coop), build)
    params = {"coop_id": coop_id} if by_coop else {}
    return {(r[0], r[1], r[2]): (r[3], r[4]) for r in db.session.execute(stmt, params)}


def pool_photos(coop_id: int, crop_id: int, grade_id: int, limit: int = 4) -> list[tuple]:
    """Up to `limit` photos of the harvests of a pool's coop, crop and grade on offer or sold,
    newest first, as (listing id, photo digest): one query."""
    stmt = _statement("pool_photos", lambda: (
        select(Listing.id, Listing.photo_digest)
        .where(Listing.coop_id == bindparam("coop_id"), Listing.crop_id == bindparam("crop_id"),
               Listing.grade_id == bindparam("grade_id"),
               Listing.status.in_(PUBLIC_LISTING_STATUSES), Listing.photo_digest.is_not(None))
        .order_by(Listing.id.desc()).limit(bindparam("limit"))))
    return [tuple(r) for r in db.session.execute(stmt, {
        "coop_id": coop_id, "crop_id": crop_id, "grade_id": grade_id, "limit": limit})]


def plots_of(listing_ids) -> dict[int, list[int]]:
    """The plots each of these listings came from (plot ids in order), in one query."""
    from .models import ListingPlot
    ids = list(set(listing_ids))
    found: dict[int, list[int]] = {i: [] for i in ids}
    if ids:
        for listing_id, plot_id in db.session.execute(
                select(ListingPlot.listing_id, ListingPlot.plot_id)
                .where(ListingPlot.listing_id.in_(ids))
                .order_by(ListingPlot.listing_id, ListingPlot.plot_id)):
            found[listing_id].append(plot_id)
    return found
