"""The EUDR data pack of a lot (issue 13, part 3): what each buyer of a coffee or cocoa lot
hands TRACES for its due diligence statement (DDS), and the DDS reference it records back.

- `issue(user, lot_id, fmt)`: the pack for the caller — a buyer of the lot (its share of the
  net mass) or the lot's coop staff (the whole lot) — in one of PACK_FORMATS: the GeoJSON
  FeatureCollection TRACES accepts (properties ProducerName, ProducerCountry,
  ProductionPlace, Area), the same base64-encoded as the DDS carries it, and the data pack
  as JSON and CSV. Built from the plot versions and consents the lot pinned, never from the
  plots as they are now; geometries are the stored RFC 7946 text (never re-encoded through
  floats). The first issue for a (lot, audience, format, DDS reference) is stored
  (eudr_packs: digest and bytes) and every later download returns those bytes: the pack is
  the same five years later. Refused with `Incomplete` (422 `eudr_incomplete`, the list of
  what is missing) while lots.services.gaps() finds something; a lot of a crop outside the
  regulation has no pack (`NotInScope`, 404).
- `record_dds_reference(user, lot_id, reference, replaces=)`: a buyer's DDS reference for
  the lot, validated; a change must name the reference it replaces (never silently
  overwritten) and goes to the audit log.

Output is deterministic: keys sorted, fixed number formats (kg with 3 decimals, hectares
with 4), UTC times to the second, plots by id, producers by member number, no time of
issue inside the pack; `render` gives the same bytes for the same lot, audience and
reference."""
from __future__ import annotations

import base64
import csv
import gc
import hashlib
import io
import json
import re
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import exists, or_, select
from sqlalchemy.exc import IntegrityError

from ..audit import services as audit
from ..audit.models import AuditEvent
from ..auth.models import Buyer, User
from ..common.access import roles_in
from ..common.errors import Conflict, DomainError, Forbidden, NotFound, ValidationFailed
from ..common.models import utcnow
from ..common.quantities import format_kg
from ..extensions import db
from ..plots.models import PlotDocument
from ..pools.models import Order
from . import services as lots
from .eudr_models import PACK_FORMATS, DdsReference, EudrPack
from .models import EUDR_HS_HEADINGS, Lot

STAFF_ROLES = ("manager", "treasurer")
PACK_VERSION = "minga-eudr-pack/1"
# The description of goods, per crop (English: the DDS and the pack read the same for every
# reader, whatever the language of the page they were downloaded from).
DESCRIPTIONS = {"coffee": "Green coffee beans, not roasted, not decaffeinated",
                "cacao": "Cocoa beans, whole or broken, raw"}
MEDIA_TYPES = {"geojson": "application/geo+json", "geojson_b64": "text/plain; charset=utf-8",
               "json": "application/json", "csv": "text/csv; charset=utf-8"}
EXTENSIONS = {"geojson": "geojson", "geojson_b64": "geojson.b64.txt", "json": "json",
              "csv": "csv"}
CSV_COLUMNS = (
    "lot_code", "hs_heading", "description_of_goods", "net_mass_kg", "lot_net_mass_kg",
    "country_of_production", "production_start", "production_end", "dds_reference",
    "producer_name", "producer_country", "member_number", "consent_given_at", "plot_id",
    "plot_version", "plot_name", "area_ha", "geometry_type", "land_use_2020",
    "cutoff_evidence_kind", "cutoff_evidence_ref", "cutoff_document_sha256",
    "cutoff_declared_by", "cutoff_declared_at", "tenure_type", "tenure_reference",
    "tenure_document_sha256", "tenure_declared_by", "tenure_declared_at")


class Incomplete(DomainError):
    """The lot is not EUDR-ready: `missing` lists why (MissingItem)."""

    def __init__(self, missing: list["MissingItem"]):
        super().__init__(_("The EUDR data pack cannot be issued: the lot is incomplete."),
                         code="eudr_incomplete", status=422,
                         fields={"missing": [m.text for m in missing]})
        self.missing = missing


class NotInScope(NotFound):
    """A lot of a crop outside the regulation (avocado, vanilla, honey...): no pack."""

    def __init__(self):
        super().__init__(_("This lot's crop is outside the EU Deforestation Regulation: it "
                           "needs no EUDR data pack."))
        self.code = "not_eudr"


NOT_IN_SCOPE_TEXT = _l("This lot's crop is outside the EU Deforestation Regulation: it needs "
                       "no EUDR data pack. Its traceability is on the lot's page.")


# ---------------------------------------------------------------- who asks

@dataclass(frozen=True)
class Audience:
    """Who a pack is for: the lot's coop staff (`buyer_id` None: the whole lot) or one buyer
    (its captured orders in the lot's pool)."""
    lot: Lot
    buyer_id: int | None
    order_ids: tuple[int, ...]

    @property
    def key(self) -> str:
        return "coop" if self.buyer_id is None else f"buyer:{self.buyer_id}"

    @property
    def is_coop(self) -> bool:
        return self.buyer_id is None


def audience_for(user, lot_id: int) -> Audience:
    """The lot as the caller may see it: its coop's manager or treasurer, else one of its
    buyers; anyone else (another coop, another buyer, a farmer, a visitor) 404."""
    lot = lots.get_lot(lot_id)
    if roles_in(user, lot.coop_id) & set(STAFF_ROLES):
        return Audience(lot, None, ())
    lot, orders = lots.bought_lot(user, lot_id)
    return Audience(lot, orders[0].buyer_id, tuple(o.id for o in orders))


def lots_of(user, after: int | None, limit: int) -> list[Lot]:
    """The caller's lots by id (keyset): its coops' lots (manager, treasurer) and the lots
    of the pools its buyer has captured orders in."""
    coop_ids = sorted({m.coop_id for m in getattr(user, "memberships", [])
                       if m.role in STAFF_ROLES})
    buyer_id = getattr(user, "buyer_id", None)
    clauses = []
    if coop_ids:
        clauses.append(Lot.coop_id.in_(coop_ids))
    if buyer_id is not None:
        clauses.append(exists().where(Order.pool_id == Lot.pool_id, Order.buyer_id == buyer_id,
                                      Order.status == "captured"))
    if not clauses:
        return []
    stmt = select(Lot).where(or_(*clauses))
    if after is not None:
        stmt = stmt.where(Lot.id > after)
    return list(db.session.scalars(stmt.order_by(Lot.id).limit(limit + 1)))


# ---------------------------------------------------------------- what is missing

@dataclass(frozen=True)
class MissingItem:
    """One gap, worded for its reader: the coop staff read the farmer's and plot's names; a
    buyer reads "producer 2, plot 1" (a farmer who has not consented is never named to a
    buyer)."""
    code: str
    farmer_id: int
    plot_id: int | None
    who: str
    text: str


def missing_for(audience: Audience, detail) -> list[MissingItem]:
    found = lots.gaps(detail)
    producers: dict[int, int] = {}
    plots: dict[int, int] = {}
    for s in detail.sources:
        producers.setdefault(s.source.farmer_id, len(producers) + 1)
        for plot, _v in s.plots:
            plots.setdefault(plot.id, len(plots) + 1)
    items = []
    for g in found:
        if audience.is_coop:
            who = g.farmer_name + (f", {g.plot_name}" if g.plot_name else "")
        else:
            who = _("Producer %(n)d", n=producers[g.farmer_id])
            if g.plot_id is not None:
                who += ", " + _("plot %(n)d", n=plots[g.plot_id])
        items.append(MissingItem(g.code, g.farmer_id, g.plot_id, who, f"{who}: {g.text}"))
    return items


# ---------------------------------------------------------------- the DDS reference

# eudr.md states no format for TRACES's reference numbers: Minga takes what TRACES shows
# (letters and digits, perhaps in groups with hyphens), upper-cased and without spaces.
DDS_PATTERN = re.compile(r"[A-Z0-9]+(?:-[A-Z0-9]+)*")
DDS_MIN, DDS_MAX = 8, 64


def clean_dds_reference(raw) -> str:
    text = "".join(str(raw or "").split()).upper()
    if not text:
        raise ValidationFailed(_("Type the reference number TRACES gave your due diligence "
                                 "statement."), fields={"reference": [_("Required.")]})
    if not (DDS_MIN <= len(text) <= DDS_MAX) or not DDS_PATTERN.fullmatch(text) \
            or not text.isascii():
        raise ValidationFailed(
            _("A DDS reference has %(min)d to %(max)d letters and digits (groups may be "
              "joined by hyphens), as TRACES shows it.", min=DDS_MIN, max=DDS_MAX),
            fields={"reference": [_("Not a DDS reference number.")]})
    return text


def dds_of(lot_id: int, buyer_id: int) -> DdsReference | None:
    return db.session.scalar(select(DdsReference).where(DdsReference.lot_id == lot_id,
                                                        DdsReference.buyer_id == buyer_id))


def dds_references(lot_id: int) -> list[tuple[DdsReference, str]]:
    """Every buyer's DDS reference for the lot, with the buyer's organisation (coop view)."""
    return list(db.session.execute(
        select(DdsReference, Buyer.organisation).join(Buyer, Buyer.id == DdsReference.buyer_id)
        .where(DdsReference.lot_id == lot_id).order_by(DdsReference.id)).tuples())


def _dds_object(lot_id: int, buyer_id: int) -> str:
    return f"{lot_id}:{buyer_id}"


def dds_history(lot_id: int, buyer_id: int | None = None, limit: int = 20
                ) -> list[tuple[AuditEvent, str]]:
    """The audit trail of the lot's DDS references (one buyer's, or every one), newest
    first, with who made each change."""
    stmt = (select(AuditEvent, User.name).outerjoin(User, User.id == AuditEvent.user_id)
            .where(AuditEvent.object_type == "lot_dds"))
    if buyer_id is None:
        stmt = stmt.where(AuditEvent.object_id.like(f"{lot_id}:%"))
    else:
        stmt = stmt.where(AuditEvent.object_id == _dds_object(lot_id, buyer_id))
    return list(db.session.execute(stmt.order_by(AuditEvent.id.desc()).limit(limit)).tuples())


@dataclass(frozen=True)
class DdsHistoryItem:
    when: datetime
    who: str
    action: str
    old: str | None
    new: str


def dds_changes(lot_id: int, buyer_id: int | None = None) -> list[DdsHistoryItem]:
    """`dds_history` as the pages show it: when, who, the reference before and after."""
    items = []
    for event, name in dds_history(lot_id, buyer_id):
        before = json.loads(event.before_json or "{}")
        after = json.loads(event.after_json or "{}")
        items.append(DdsHistoryItem(event.created_at, name or "", event.action,
                                    before.get("reference"), after.get("reference", "")))
    return items


@dataclass(frozen=True)
class DdsChange:
    """What recording a reference would do (the confirmation page's figures)."""
    lot_id: int
    buyer_id: int
    old: str | None
    new: str

    @property
    def changes(self) -> bool:
        return self.old is not None and self.old != self.new


def preview_dds_reference(user, lot_id: int, reference) -> DdsChange:
    audience = audience_for(user, lot_id)
    if audience.is_coop:
        raise Forbidden(_("The buyer who filed the due diligence statement records its "
                          "reference."))
    if not audience.lot.eudr:
        raise NotInScope()
    new = clean_dds_reference(reference)
    current = dds_of(audience.lot.id, audience.buyer_id)
    return DdsChange(audience.lot.id, audience.buyer_id,
                     current.reference if current else None, new)


def record_dds_reference(user, lot_id: int, reference, *, replaces=None) -> DdsReference:
    """Records the buyer's DDS reference for the lot. The same reference again changes
    nothing; a different one is a change only when `replaces` names the reference recorded
    now (else 409 `dds_reference_recorded`: never overwritten unseen). Each first record
    and each change is in the audit log (before, after, who)."""
    change = preview_dds_reference(user, lot_id, reference)
    lot = lots.get_lot(lot_id)
    # The row's lock: two changes at once are one after the other.
    row = db.session.scalar(select(DdsReference).where(
        DdsReference.lot_id == lot_id, DdsReference.buyer_id == change.buyer_id)
        .with_for_update())
    if row is None:
        row = DdsReference(lot_id=lot_id, buyer_id=change.buyer_id, reference=change.new,
                           recorded_by_id=user.id, recorded_at=utcnow(), changes=0)
        db.session.add(row)
        db.session.flush()
        audit.record(lot.coop_id, user, "eudr.dds_recorded", "lot_dds",
                     _dds_object(lot_id, change.buyer_id), None,
                     {"reference": change.new, "lot": lot.code})
        return row
    if row.reference == change.new:
        return row
    if replaces is None or "".join(str(replaces).split()).upper() != row.reference:
        raise Conflict(_("A DDS reference is recorded for this lot already (%(ref)s). To "
                         "change it, confirm the one it replaces.", ref=row.reference),
                       code="dds_reference_recorded",
                       fields={"reference": [_("Recorded already: %(ref)s",
                                               ref=row.reference)]})
    before = {"reference": row.reference, "lot": lot.code}
    row.reference, row.recorded_by_id, row.recorded_at = change.new, user.id, utcnow()
    row.changes += 1
    db.session.flush()
    audit.record(lot.coop_id, user, "eudr.dds_changed", "lot_dds",
                 _dds_object(lot_id, change.buyer_id), before,
                 {"reference": change.new, "lot": lot.code})
    return row


# ---------------------------------------------------------------- issuing a pack

def _check_format(fmt: str) -> None:
    if fmt not in PACK_FORMATS:
        raise NotFound(_("Not found."))


def _pack_dds(audience: Audience, fmt: str) -> str:
    """The DDS reference a pack carries: the buyer's, in the data pack (JSON, CSV); the
    GeoJSON carries none."""
    if fmt in ("geojson", "geojson_b64") or audience.is_coop:
        return ""
    row = dds_of(audience.lot.id, audience.buyer_id)
    return row.reference if row else ""


def stored_pack(audience: Audience, fmt: str, dds: str) -> EudrPack | None:
    return db.session.scalar(select(EudrPack).where(
        EudrPack.lot_id == audience.lot.id, EudrPack.audience == audience.key,
        EudrPack.format == fmt, EudrPack.dds_reference == dds))


@contextmanager
def _no_collection():
    """No automatic garbage collection while a lot's pack is read and written: a lot of
    2,000 farmers loads some 10,000 rows as objects, and the collections that allocation
    triggers only scan those live objects again (bench/lots_bench.py: 2.0 s -> 1.0 s). The
    collector runs again, as usual, right after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def issue(user, lot_id: int, fmt: str) -> EudrPack:
    """The caller's pack of the lot in `fmt`: the stored one if issued before, else rendered
    now from the lot's pinned versions and stored. NotInScope for a crop outside the
    regulation; Incomplete while anything is missing."""
    _check_format(fmt)
    audience = audience_for(user, lot_id)
    if not audience.lot.eudr:
        raise NotInScope()
    dds = _pack_dds(audience, fmt)
    found = stored_pack(audience, fmt, dds)
    if found is not None:
        return found
    with _no_collection():
        detail = lots.detail(audience.lot)
        missing = missing_for(audience, detail)
        if missing:
            raise Incomplete(missing)
        data = render(audience, fmt, dds, detail)
    pack = EudrPack(lot_id=audience.lot.id, audience=audience.key, buyer_id=audience.buyer_id,
                    format=fmt, dds_reference=dds, digest=hashlib.sha256(data).hexdigest(),
                    size=len(data), data=data, issued_by_id=getattr(user, "id", None),
                    issued_at=utcnow())
    try:
        with db.session.begin_nested():
            db.session.add(pack)
    except IntegrityError:
        # Issued by a request at the same moment: that one is the pack.
        found = stored_pack(audience, fmt, dds)
        if found is None:
            raise
        return found
    return pack


def status(audience: Audience) -> tuple[object, list[MissingItem]]:
    """The lot's detail and what keeps it from a pack (for the pages and the API)."""
    detail = lots.detail(audience.lot)
    return detail, missing_for(audience, detail) if audience.lot.eudr else []


def issued_packs(audience: Audience) -> list[EudrPack]:
    return list(db.session.scalars(select(EudrPack).where(
        EudrPack.lot_id == audience.lot.id, EudrPack.audience == audience.key)
        .order_by(EudrPack.id)))


def filename(lot: Lot, fmt: str) -> str:
    return f"eudr-{lot.code}.{EXTENSIONS[fmt]}"


# ---------------------------------------------------------------- rendering

def _utc(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ha(m2: int | None) -> str | None:
    if m2 is None:
        return None
    whole, rest = divmod(int(m2), 10_000)
    return f"{whole}.{rest:04d}"


@dataclass(frozen=True)
class _Plot:
    plot_id: int
    version: object
    name: str
    producer: "_Producer"


@dataclass
class _Producer:
    farmer_id: int
    name: str
    member_number: str
    consent_given_at: str | None
    plots: list


def _gather(detail):
    """The producers (by member number) and the distinct pinned plot versions (by plot id,
    then version) of the lot."""
    producers: dict[int, _Producer] = {}
    seen: dict[tuple[int, int], _Plot] = {}
    for s in detail.sources:
        producer = producers.get(s.source.farmer_id)
        if producer is None:
            producer = producers[s.source.farmer_id] = _Producer(
                s.source.farmer_id, s.farmer_name, s.member_number,
                _utc(s.consent.given_at) if s.consent else None, [])
        for plot, version in s.plots:
            key = (plot.id, version.version)
            if key not in seen:
                seen[key] = _Plot(plot.id, version, plot.name, producer)
                producer.plots.append(seen[key])
    plots = [seen[k] for k in sorted(seen)]
    for p in producers.values():
        p.plots.sort(key=lambda x: (x.plot_id, x.version.version))
    return sorted(producers.values(), key=lambda p: (p.member_number, p.farmer_id)), plots


def _place(plot: _Plot, coop) -> str:
    return ", ".join(part for part in (plot.name, coop.region) if part)


def _feature_text(plot: _Plot, coop) -> str:
    props = json.dumps({"ProducerCountry": coop.country, "ProducerName": plot.producer.name,
                        "ProductionPlace": _place(plot, coop)}, ensure_ascii=False,
                       sort_keys=True, separators=(",", ":"))
    # Area: hectares, a JSON number written with 4 decimals (the declared area, as pinned).
    props = '{"Area":' + _ha(plot.version.declared_area_m2) + "," + props[1:]
    return ('{"geometry":' + plot.version.geometry_json + ',"properties":' + props
            + ',"type":"Feature"}')


def geojson_bytes(plots: list[_Plot], coop) -> bytes:
    """The FeatureCollection TRACES takes: a Feature per plot, its stored geometry text."""
    return ('{"features":[' + ",".join(_feature_text(p, coop) for p in plots)
            + '],"type":"FeatureCollection"}\n').encode("utf-8")


def _extras(plots: list[_Plot]):
    """Who declared (names) and the documents' digests, in two queries."""
    user_ids, doc_ids = set(), set()
    for p in plots:
        v = p.version
        user_ids.update(i for i in (v.cutoff_by_id, v.tenure_by_id) if i)
        doc_ids.update(i for i in (v.cutoff_document_id, v.tenure_document_id) if i)
    names = dict(db.session.execute(select(User.id, User.name).where(
        User.id.in_(user_ids))).tuples().all()) if user_ids else {}
    digests = dict(db.session.execute(select(PlotDocument.id, PlotDocument.digest).where(
        PlotDocument.id.in_(doc_ids))).tuples().all()) if doc_ids else {}
    return names, digests


def _plot_record(p: _Plot, names, digests) -> dict:
    v = p.version
    return {
        "plot_id": p.plot_id, "plot_version": v.version, "name": p.name,
        "producer_member_number": p.producer.member_number,
        "area_ha": _ha(v.declared_area_m2), "computed_area_ha": _ha(v.computed_area_m2),
        "geometry_type": {"point": "Point", "polygon": "Polygon",
                          "multipolygon": "MultiPolygon"}[v.geometry_kind],
        "cutoff": {"date": "2020-12-31", "land_use": v.land_use_2020,
                   "evidence_kind": v.cutoff_evidence_kind,
                   "evidence_ref": v.cutoff_evidence_ref or None,
                   "evidence_document_sha256": digests.get(v.cutoff_document_id),
                   "note": v.cutoff_note or None,
                   "declared_by": names.get(v.cutoff_by_id), "declared_at": _utc(v.cutoff_at)},
        "legality": {"tenure_type": v.tenure_type, "reference": v.tenure_reference or None,
                     "document_sha256": digests.get(v.tenure_document_id),
                     "declared_by": names.get(v.tenure_by_id),
                     "declared_at": _utc(v.tenure_at)},
    }


def net_g(audience: Audience, detail) -> int:
    """The audience's net mass: a buyer's share of the lot (its captured orders' shares),
    the whole lot for the coop."""
    if audience.is_coop:
        return detail.net_g
    shares = lots.buyer_shares(audience.lot, detail.net_g)
    return sum(shares.get(oid, 0) for oid in audience.order_ids)


def _header(audience: Audience, detail, dds: str) -> dict:
    lot, coop = audience.lot, detail.coop
    period = detail.harvest_period
    grades = sorted({s.grade_code for s in detail.sources})
    buyer = None
    if not audience.is_coop:
        buyer = {"id": audience.buyer_id, "organisation": db.session.scalar(
            select(Buyer.organisation).where(Buyer.id == audience.buyer_id)),
            "order_ids": list(audience.order_ids)}
    return {
        "format": PACK_VERSION, "lot_id": lot.id, "lot_code": lot.code,
        "hs_heading": EUDR_HS_HEADINGS[detail.crop_slug],
        "description_of_goods": f"{DESCRIPTIONS[detail.crop_slug]} (grade "
                                f"{', '.join(grades)}), lot {lot.code}",
        "net_mass_kg": format_kg(net_g(audience, detail)),
        "lot_net_mass_kg": format_kg(detail.net_g),
        "country_of_production": coop.country,
        "production_period": {"start": period[0].isoformat(), "end": period[1].isoformat()}
        if period else None,
        "cooperative": {"name": coop.name, "country": coop.country, "region": coop.region or None},
        "buyer": buyer, "dds_reference": dds or None,
    }


def render(audience: Audience, fmt: str, dds: str, detail=None) -> bytes:
    """The pack's bytes, from the lot's pinned versions (deterministic)."""
    detail = detail or lots.detail(audience.lot)
    producers, plots = _gather(detail)
    coop = detail.coop
    if fmt == "geojson":
        return geojson_bytes(plots, coop)
    if fmt == "geojson_b64":
        return base64.b64encode(geojson_bytes(plots, coop)) + b"\n"
    names, digests = _extras(plots)
    head = _header(audience, detail, dds)
    if fmt == "json":
        body = dict(head)
        body["producers"] = [{
            "name": p.name, "country": coop.country, "member_number": p.member_number,
            "consent_given_at": p.consent_given_at,
            "plot_ids": [x.plot_id for x in p.plots],
            "geolocation_geojson_base64": base64.b64encode(
                geojson_bytes(p.plots, coop)).decode("ascii")} for p in producers]
        body["plots"] = [_plot_record(p, names, digests) for p in plots]
        return (json.dumps(body, ensure_ascii=False, sort_keys=True, indent=2,
                           separators=(",", ": ")) + "\n").encode("utf-8")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    period = head["production_period"] or {"start": "", "end": ""}
    for p in plots:
        r = _plot_record(p, names, digests)
        writer.writerow([_cell(x) for x in (
            head["lot_code"], head["hs_heading"], head["description_of_goods"],
            head["net_mass_kg"], head["lot_net_mass_kg"], head["country_of_production"],
            period["start"], period["end"], dds, p.producer.name, coop.country,
            p.producer.member_number, p.producer.consent_given_at, r["plot_id"],
            r["plot_version"], r["name"], r["area_ha"], r["geometry_type"],
            r["cutoff"]["land_use"], r["cutoff"]["evidence_kind"],
            r["cutoff"]["evidence_ref"], r["cutoff"]["evidence_document_sha256"],
            r["cutoff"]["declared_by"], r["cutoff"]["declared_at"],
            r["legality"]["tenure_type"], r["legality"]["reference"],
            r["legality"]["document_sha256"], r["legality"]["declared_by"],
            r["legality"]["declared_at"])])
    return out.getvalue().encode("utf-8")


def _cell(value) -> str:
    """A CSV cell; text a spreadsheet would run as a formula gets an apostrophe."""
    text = "" if value is None else str(value)
    if text and text[0] in "=+-@\t\r" and not re.fullmatch(r"-?\d+(\.\d+)?", text):
        return "'" + text
    return text


def regenerate(pack: EudrPack) -> bytes:
    """The pack rendered again now from the lot's pinned versions (a check that it is
    reproducible: equals `pack.data`)."""
    lot = lots.get_lot(pack.lot_id)
    order_ids: tuple[int, ...] = ()
    if pack.buyer_id is not None:
        order_ids = tuple(db.session.scalars(select(Order.id).where(
            Order.pool_id == lot.pool_id, Order.buyer_id == pack.buyer_id,
            Order.status == "captured").order_by(Order.id)))
    return render(Audience(lot, pack.buyer_id, order_ids), pack.format, pack.dds_reference)
