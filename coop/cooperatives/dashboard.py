"""The manager's dashboard at the top of /manage/coops/<id>: how many of each thing the coop
has and the next things to do, each with its page. One SELECT of scalar subqueries, whatever
the number of rows: counts, never the rows themselves (reads other domains' tables, writes
nothing)."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, exists, func, select

from ..common.models import utcnow
from ..common.statuses import InvitationStatus
from ..extensions import db
from ..intake.models import Intake
from ..ledger import queries as ledger_queries
from ..listings.models import Listing
from ..lots.models import Lot, LotSource
from ..payouts.models import PayoutLine
from ..plots.models import TraceConsent
from ..pools.models import Allocation, Pool
from ..treasury.models import BankStatementLine
from .models import FarmerProfile, Invitation


@dataclass(frozen=True)
class Summary:
    farmers: int
    open_pools: int
    listings_available: int
    payouts_due: int          # farmers the coop owes money to
    payouts_due_minor: int    # how much, in all
    bank_unmatched: int
    pools_to_close: int       # open pools that reached their minimum or their closing time
    pool_to_close: int | None
    intakes_to_record: int    # allocations of confirmed pools without their delivery
    pool_to_record: int | None
    lines_to_confirm: int     # payout lines waiting for the bank's confirmation
    batch_to_confirm: int | None
    invitations_pending: int
    farmers_to_ask: int       # farmers in the coop's EUDR lots without consent, not yet asked
    lot_to_ask: int | None    # the oldest lot that has one


def summary(coop) -> Summary:
    now = utcnow()
    cid = coop.id

    def count(model, *where):
        return select(func.count()).select_from(model).where(*where).scalar_subquery()

    ready = and_(Pool.coop_id == cid, Pool.status == "open",
                 (Pool.committed_g >= Pool.min_g) | (Pool.closes_at <= now))
    undelivered = and_(Pool.coop_id == cid, Pool.status == "confirmed",
                       ~exists().where(Intake.allocation_id == Allocation.id))
    owed_count, owed_sum = ledger_queries.payables_owed(cid)
    waiting = and_(PayoutLine.coop_id == cid, PayoutLine.status == "pending")
    # A lot formed with a farmer's kilograms but not their consent: the manager asks them
    # (the lot's page says who); one who consented since is no longer to ask.
    unconsented = and_(Lot.coop_id == cid, Lot.eudr.is_(True), LotSource.lot_id == Lot.id,
                       LotSource.consent_id.is_(None),
                       ~exists().where(TraceConsent.farmer_id == LotSource.farmer_id,
                                       TraceConsent.withdrawn_at.is_(None)))
    row = db.session.execute(select(
        count(FarmerProfile, FarmerProfile.coop_id == cid, FarmerProfile.left_on.is_(None)),
        count(Pool, Pool.coop_id == cid, Pool.status == "open"),
        count(Listing, Listing.coop_id == cid, Listing.status == "available"),
        owed_count,
        owed_sum,
        count(BankStatementLine, BankStatementLine.coop_id == cid,
              BankStatementLine.status == "unmatched"),
        count(Pool, ready),
        select(func.min(Pool.id)).where(ready).scalar_subquery(),
        select(func.count()).select_from(Allocation).join(Pool, Pool.id == Allocation.pool_id)
        .where(undelivered).scalar_subquery(),
        select(func.min(Pool.id)).select_from(Allocation)
        .join(Pool, Pool.id == Allocation.pool_id).where(undelivered).scalar_subquery(),
        count(PayoutLine, waiting),
        select(func.min(PayoutLine.batch_id)).where(waiting).scalar_subquery(),
        count(Invitation, Invitation.coop_id == cid,
              Invitation.status == InvitationStatus.PENDING, Invitation.expires_at > now),
        select(func.count(func.distinct(LotSource.farmer_id))).select_from(LotSource)
        .join(Lot, Lot.id == LotSource.lot_id).where(unconsented).scalar_subquery(),
        select(func.min(Lot.id)).select_from(LotSource).join(Lot, Lot.id == LotSource.lot_id)
        .where(unconsented).scalar_subquery(),
    )).one()
    return Summary(*[int(v) if v is not None else None for v in row])
