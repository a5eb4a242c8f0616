"""Every state machine's statuses in one place: a `StrEnum` each (members are the strings the
database stores, so they compare equal to them), the moves each allows, and the CHECK
constraint and OpenAPI enum built from the same members."""
from __future__ import annotations

from enum import StrEnum

from sqlalchemy import CheckConstraint, event
from sqlalchemy.orm.base import NEVER_SET, NO_VALUE


class PoolStatus(StrEnum):
    OPEN = "open"
    CONFIRMED = "confirmed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class OrderStatus(StrEnum):
    PENDING = "pending"
    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    RELEASED = "released"
    CANCELLED = "cancelled"
    FAILED = "failed"
    # Stripe did not answer in time (or the record after its answer failed): a hold may or may
    # not exist. The grams stay reserved; the resolver settles it (authorized or failed).
    UNKNOWN = "unknown"
    # Two-step card entry (issue 14): the grams are reserved and a PaymentIntent exists, but
    # the buyer has not yet confirmed the card in the browser (Stripe.js, 3-D Secure). Nothing
    # is held; authorized only once Minga has seen requires_capture at Stripe itself.
    AUTHORIZING = "authorizing"


class ListingStatus(StrEnum):
    AVAILABLE = "available"
    COMMITTED = "committed"
    SOLD = "sold"
    WITHDRAWN = "withdrawn"


class RefundStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class PayoutBatchStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class PayoutLineStatus(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    FAILED = "failed"


class ShareAccountStatus(StrEnum):
    ACTIVE = "active"
    REDEEMED = "redeemed"


class LedgerEntryStatus(StrEnum):
    PENDING = "pending"
    POSTED = "posted"
    VOIDED = "voided"


class StripeTxnStatus(StrEnum):
    """"released": the part of a card hold Stripe gives back when less is captured (a refund
    on the same charge that the ledger never moved); "explained": a difference the treasurer
    marked with a note."""

    UNMATCHED = "unmatched"
    MATCHED = "matched"
    MISMATCH = "mismatch"
    MISSING_LEDGER = "missing_ledger"
    EXPLAINED = "explained"
    RELEASED = "released"


class BankLineStatus(StrEnum):
    UNMATCHED = "unmatched"
    MATCHED = "matched"
    MISMATCH = "mismatch"
    EXPLAINED = "explained"


class CoopStatus(StrEnum):
    PENDING = "pending"
    VERIFIED = "verified"
    REFUSED = "refused"


class InvitationStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"


class JobStatus(StrEnum):
    PENDING = "pending"      # waiting for a worker (or for its time, or its next attempt)
    RUNNING = "running"      # a worker holds its lease
    DONE = "done"
    PARKED = "parked"        # failed too often: staff look, then retry it by hand


class MessageStatus(StrEnum):
    QUEUED = "queued"
    SENT = "sent"            # handed to the mail server or the SMS provider
    DELIVERED = "delivered"  # the provider's delivery report said so
    FAILED = "failed"


P, O, L, R = PoolStatus, OrderStatus, ListingStatus, RefundStatus
B, N, S, E = PayoutBatchStatus, PayoutLineStatus, ShareAccountStatus, LedgerEntryStatus
T, K = StripeTxnStatus, BankLineStatus

# The moves each machine allows: status -> the statuses it may become. A status not listed
# as a key is final.
TRANSITIONS: dict[type[StrEnum], dict[StrEnum, frozenset[StrEnum]]] = {
    # A pool closes into confirmed (enough committed) or failed, or a manager cancels it.
    PoolStatus: {P.OPEN: frozenset({P.CONFIRMED, P.FAILED, P.CANCELLED})},
    # Pending until the card answers (a decline fails it); unknown when Stripe did not answer,
    # until the resolver finds out (coop.pools.resolver.resolve_holds); a hold is
    # captured, released (the buyer withdrew), cancelled (the pool failed or was cancelled)
    # or failed (Stripe says so).
    OrderStatus: {O.PENDING: frozenset({O.AUTHORIZED, O.FAILED, O.UNKNOWN}),
                  O.UNKNOWN: frozenset({O.AUTHORIZED, O.FAILED}),
                  # Card entry: confirmed at Stripe (authorized), or abandoned, refused or
                  # expired (failed: nothing held, grams back), or given up by the buyer.
                  O.AUTHORIZING: frozenset({O.AUTHORIZED, O.FAILED, O.RELEASED}),
                  O.AUTHORIZED: frozenset({O.CAPTURED, O.RELEASED, O.CANCELLED, O.FAILED})},
    # Withdrawn only while nothing is committed; sold once committed in full.
    ListingStatus: {L.AVAILABLE: frozenset({L.COMMITTED, L.SOLD, L.WITHDRAWN}),
                    L.COMMITTED: frozenset({L.SOLD})},
    RefundStatus: {R.PENDING: frozenset({R.SUCCEEDED, R.FAILED})},
    PayoutBatchStatus: {B.OPEN: frozenset({B.CLOSED})},
    PayoutLineStatus: {N.PENDING: frozenset({N.PAID, N.FAILED})},
    ShareAccountStatus: {S.ACTIVE: frozenset({S.REDEEMED})},
    LedgerEntryStatus: {E.PENDING: frozenset({E.POSTED, E.VOIDED})},
    # Reconciliation re-derives a transaction's verdict on every run until it is matched by
    # hand or explained; a fee entry missing from the ledger may be released.
    StripeTxnStatus: {T.UNMATCHED: frozenset({T.MATCHED, T.MISMATCH, T.MISSING_LEDGER}),
                      T.MATCHED: frozenset({T.MISMATCH, T.MISSING_LEDGER}),
                      T.MISMATCH: frozenset({T.MATCHED, T.MISSING_LEDGER, T.EXPLAINED}),
                      T.MISSING_LEDGER: frozenset({T.MATCHED, T.MISMATCH, T.EXPLAINED,
                                                   T.RELEASED}),
                      T.EXPLAINED: frozenset({T.MATCHED, T.MISMATCH})},
    BankLineStatus: {K.UNMATCHED: frozenset({K.MATCHED, K.MISMATCH, K.EXPLAINED})},
    # A new cooperative waits for the platform's staff; refused, its founder may correct it
    # and ask again. Verified is final.
    CoopStatus: {CoopStatus.PENDING: frozenset({CoopStatus.VERIFIED, CoopStatus.REFUSED}),
                 CoopStatus.REFUSED: frozenset({CoopStatus.PENDING})},
    # The invited person accepts or declines; the coop may withdraw it meanwhile.
    InvitationStatus: {InvitationStatus.PENDING: frozenset({
        InvitationStatus.ACCEPTED, InvitationStatus.DECLINED, InvitationStatus.WITHDRAWN})},
    # A worker claims a pending job (or one whose lease ran out: its worker died); it ends
    # done, back to pending for a later attempt, or parked; staff send a parked job back.
    JobStatus: {JobStatus.PENDING: frozenset({JobStatus.RUNNING}),
                JobStatus.RUNNING: frozenset({JobStatus.DONE, JobStatus.PENDING,
                                              JobStatus.PARKED}),
                JobStatus.PARKED: frozenset({JobStatus.PENDING})},
    # Sent when handed over; the provider's report may arrive before Minga recorded the
    # hand-over (queued -> delivered) and may fail a sent one.
    MessageStatus: {MessageStatus.QUEUED: frozenset({MessageStatus.SENT, MessageStatus.DELIVERED,
                                                     MessageStatus.FAILED}),
                    MessageStatus.SENT: frozenset({MessageStatus.DELIVERED,
                                                   MessageStatus.FAILED})},
}

# Listings whose grams a pool may still take; listings whose photo anyone may see.
SUPPLY_LISTING_STATUSES = (L.AVAILABLE, L.COMMITTED)
PUBLIC_LISTING_STATUSES = (L.AVAILABLE, L.COMMITTED, L.SOLD)
# Orders still holding (or about to hold) grams of an open pool.
LIVE_ORDER_STATUSES = (O.PENDING, O.AUTHORIZED, O.UNKNOWN, O.AUTHORIZING)
# Orders whose card hold is not settled yet: closing waits for the resolver to settle them.
UNSETTLED_ORDER_STATUSES = (O.PENDING, O.UNKNOWN)
# Pools that ended without a sale: their holds are released.
UNSOLD_POOL_STATUSES = (P.FAILED, P.CANCELLED)


def may_move(old: StrEnum, new: StrEnum) -> bool:
    """Whether `old` may become `new` in its machine."""
    return new in TRANSITIONS[type(old)].get(old, frozenset())


class ForbiddenMove(ValueError):
    """A status set to one its machine does not allow from the current one (a bug, not a
    user's mistake: services check the current status before they move it)."""


def guard(column, machine: type[StrEnum]) -> None:
    """Every change of `column` (a mapped model's status attribute) made through the ORM must
    be a move `TRANSITIONS` allows; a forbidden one raises ForbiddenMove before the flush.
    (Conditional UPDATEs name the allowed old statuses in their WHERE clause instead.)"""
    def check(target, value, oldvalue, initiator):
        if oldvalue in (None, NO_VALUE, NEVER_SET) or value == oldvalue:
            return value
        old, new = machine(oldvalue), machine(value)
        if not may_move(old, new):
            raise ForbiddenMove(f"{type(target).__name__} {old.value} -> {new.value}")
        return value
    event.listen(column, "set", check, retval=True, active_history=True)


def values(machine: type[StrEnum]) -> list[str]:
    """The machine's statuses as plain strings, in their declared order (OpenAPI enums)."""
    return [member.value for member in machine]


def status_check(machine: type[StrEnum], column: str = "status") -> CheckConstraint:
    """The CHECK constraint `<column> IN (...)` named "status", from the machine's members
    (the same text the migrations wrote)."""
    listed = ", ".join(f"'{member.value}'" for member in machine)
    return CheckConstraint(f"{column} IN ({listed})", name="status")
