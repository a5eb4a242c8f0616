"""Member share capital: the register (subscribed, paid, redeemed per member), payments in
cash or by withholding from what a farmer is owed until the subscription is paid, and
redemption at par when a member leaves.

Ledger: a cash or bank payment is Dr cash|bank / Cr share_capital:<member>; withholding is
Dr farmer_payable:<member> / Cr share_capital:<member>; redemption is
Dr share_capital:<member> / Cr farmer_payable:<member> (paid by the next payout).
The coop's par value, minimum subscription and withholding percentage live in
the coop's money policy (`coop.cooperatives.finance`). Functions flush, never commit."""
from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from ..audit import services as audit
from ..common.errors import Conflict, NotFound, ValidationFailed
from ..common.idempotency import replay_or_refuse
from ..common.models import utcnow
from ..common.paging import PER_PAGE, KeysetPage
from ..cooperatives import finance
from ..cooperatives import services as coop_services
from ..cooperatives import verification
from ..cooperatives.finance import MAX_PAR_MINOR, MAX_SHARES
from ..extensions import db
from ..ledger import services as ledger
from ..messages import services as messages
from .models import ShareAccount, ShareMovement


# ---------------------------------------------------------------- the register

def _is_member(coop, user_id: int) -> bool:
    return coop_services.farmer_profile(coop.id, user_id) is not None


def account_for(coop, user_id: int, *, create: bool = True, lock: bool = False
                ) -> ShareAccount | None:
    """The member's register line, opened with the minimum subscription on first use.
    Refuses someone who is not a member (farmer) of the coop (404)."""
    stmt = select(ShareAccount).where(ShareAccount.coop_id == coop.id,
                                      ShareAccount.user_id == user_id)
    row = db.session.scalar(stmt.with_for_update(of=ShareAccount) if lock else stmt)
    if row is not None or not create:
        return row
    if not _is_member(coop, user_id):
        raise NotFound(_("No such member."))
    row = ShareAccount(coop_id=coop.id, user_id=user_id, status="active", paid_minor=0,
                       redeemed_minor=0,
                       subscribed_shares=finance.settings(coop).share_min_shares)
    try:
        with db.session.begin_nested():
            db.session.add(row)
    except IntegrityError:  # opened at the same moment elsewhere
        row = db.session.scalar(stmt)
    if lock:
        row = db.session.scalar(stmt.with_for_update(of=ShareAccount))
    return row


def subscribed_minor(coop, account: ShareAccount) -> int:
    return account.subscribed_shares * finance.settings(coop).share_par_minor


def unpaid_minor(coop, account: ShareAccount) -> int:
    """What is still to pay on the subscription (never negative; 0 once redeemed)."""
    if account.status != "active":
        return 0
    return max(subscribed_minor(coop, account) - account.paid_minor, 0)


def register(coop, cursor: str | None = None, *, q: str = "", limit: int = PER_PAGE
             ) -> tuple[list[dict], KeysetPage]:
    """A page of farmer members (by member number, found by name or number) with their
    register line (those never touched show zeros); the page of profiles beside."""
    conf = finance.settings(coop)  # once: it is a query each time
    par, least = conf.share_par_minor, conf.share_min_shares
    found = coop_services.farmer_profiles_page(coop, cursor, q=q, limit=limit)
    ids = [p.user_id for p in found.items]
    accounts = {a.user_id: a for a in db.session.scalars(
        select(ShareAccount).where(ShareAccount.coop_id == coop.id,
                                   ShareAccount.user_id.in_(ids)))} if ids else {}
    rows = []
    for profile in found.items:
        acc = accounts.get(profile.user_id)
        subscribed = acc.subscribed_shares if acc else least
        paid = acc.paid_minor if acc else 0
        redeemed = acc.redeemed_minor if acc else 0
        status = acc.status if acc else "active"
        rows.append({"profile": profile, "user": profile.user, "account": acc,
                     "subscribed_shares": subscribed, "subscribed_minor": subscribed * par,
                     "paid_minor": paid, "redeemed_minor": redeemed, "status": status,
                     "unpaid_minor": max(subscribed * par - paid, 0) if status == "active" else 0})
    return rows, found


def member_accounts(user) -> list[ShareAccount]:
    return list(db.session.scalars(select(ShareAccount).where(ShareAccount.user_id == user.id)
                                   .order_by(ShareAccount.coop_id)))


def movements(account: ShareAccount) -> list[ShareMovement]:
    return list(db.session.scalars(select(ShareMovement)
                                   .where(ShareMovement.account_id == account.id)
                                   .order_by(ShareMovement.id.desc())))


def set_subscription(coop, user, member_user_id: int, shares: int) -> ShareAccount:
    """Subscribe a member to `shares` shares. Refuses fewer than the coop's minimum, fewer
    than already paid for, or a redeemed member."""
    if isinstance(shares, bool) or not isinstance(shares, int) or not 0 <= shares <= MAX_SHARES:
        raise ValidationFailed(_("Give a whole number of shares."),
                               fields={"shares": [_("Whole number.")]})
    conf = finance.settings(coop)
    account = account_for(coop, member_user_id, lock=True)
    if account.status != "active":
        raise Conflict(_("This member's shares were redeemed."), code="shares_redeemed")
    if shares < conf.share_min_shares:
        raise ValidationFailed(_("The minimum subscription is %(n)d shares.",
                                 n=conf.share_min_shares),
                               fields={"shares": [_("Below the minimum.")]})
    if conf.share_par_minor and shares * conf.share_par_minor < account.paid_minor:
        raise ValidationFailed(_("The member has already paid for more shares than that."),
                               fields={"shares": [_("Below what is paid.")]})
    before = {"subscribed_shares": account.subscribed_shares}
    account.subscribed_shares = shares
    audit.record(coop.id, user, "shares.subscribe", "share_account", account.id, before,
                 {"subscribed_shares": shares})
    db.session.flush()
    return account


def _record(coop, account: ShareAccount, *, kind: str, amount: int, key: str, lines, user,
            note: str = "", source=None) -> ShareMovement:
    entry = ledger.post(coop, key=key, kind=f"shares_{kind}", lines=lines, user=user,
                        memo=f"share capital {kind}, member {account.user_id}", source=source)
    movement = ShareMovement(coop_id=coop.id, account_id=account.id, kind=kind,
                             amount_minor=amount, idempotency_key=key, ledger_entry_id=entry.id,
                             note=(note or "")[:200], created_by_id=getattr(user, "id", None))
    db.session.add(movement)
    column = ShareAccount.redeemed_minor if kind == "redemption" else ShareAccount.paid_minor
    db.session.execute(update(ShareAccount).where(ShareAccount.id == account.id)
                       .values({column: column + amount})
                       .execution_options(synchronize_session=False))
    db.session.flush()
    db.session.expire(account)
    return movement


def _earlier(coop, key: str) -> ShareMovement | None:
    return db.session.scalar(select(ShareMovement).where(ShareMovement.coop_id == coop.id,
                                                         ShareMovement.idempotency_key == key))


def pay(coop, user, member_user_id: int, amount_minor: int, *, via: str = "cash",
        key: str, note: str = "") -> ShareMovement:
    """A member pays share capital in cash (at the collection point) or into the bank.
    Refuses a non-positive amount, more than is still unpaid on the subscription, and a
    redeemed member. The same key returns the first payment."""
    verification.require_verified(coop)  # a pending coop moves no money
    if via not in ("cash", "bank"):
        raise ValidationFailed(_("Choose cash or bank."), fields={"via": [_("Unknown.")]})
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor <= 0:
        raise ValidationFailed(_("The amount must be more than zero."),
                               fields={"amount": [_("Must be more than zero.")]})
    earlier = _earlier(coop, key)
    if earlier is not None:
        same = earlier.kind == via and earlier.amount_minor == amount_minor
        return replay_or_refuse(earlier, same,
                                _("This payment was already recorded with other details."))
    account = account_for(coop, member_user_id, lock=True)
    if account.status != "active":
        raise Conflict(_("This member's shares were redeemed."), code="shares_redeemed")
    unpaid = unpaid_minor(coop, account)
    if amount_minor > unpaid:
        raise ValidationFailed(_("Only %(n)s is still unpaid on the subscription; raise the "
                                 "subscription first to take more.", n=unpaid),
                               code="above_subscription",
                               fields={"amount": [_("More than is unpaid.")]})
    movement = _record(coop, account, kind=via, amount=amount_minor, key=key, user=user,
                       note=note, lines=[ledger.debit(via, amount_minor),
                                         ledger.credit(ledger.share_capital(member_user_id),
                                                       amount_minor)])
    audit.record(coop.id, user, "shares.pay", "share_account", account.id,
                 {"paid_minor": account.paid_minor - amount_minor},
                 {"paid_minor": account.paid_minor, "via": via, "movement": movement.id})
    return movement


def withholding_due(coop, member_user_id: int, base_minor: int) -> int:
    """What withholding would take from `base_minor` owed to the member: the coop's
    percentage, no more than is still unpaid on the subscription (0 when fully paid,
    redeemed, no par value or no withholding set, or not a member)."""
    conf = finance.settings(coop)
    if base_minor <= 0 or not conf.share_withholding_bps or not conf.share_par_minor:
        return 0
    if not _is_member(coop, member_user_id):
        return 0
    account = account_for(coop, member_user_id, create=True)
    return min(base_minor * conf.share_withholding_bps // 10000, unpaid_minor(coop, account))


def withhold(coop, member_user_id: int, base_minor: int, *, key: str, user=None,
             cap: int | None = None, source: tuple[str, int] | None = None) -> int:
    """Withhold share capital from what the member is owed (at intake or settlement):
    Dr farmer_payable / Cr share_capital, min(percentage x base, still unpaid, cap).
    Returns the amount withheld (0: nothing posted). The same key returns the first amount."""
    earlier = _earlier(coop, key)
    if earlier is not None:
        return earlier.amount_minor
    account = account_for(coop, member_user_id, lock=True) \
        if _is_member(coop, member_user_id) else None
    if account is None:
        return 0
    amount = withholding_due(coop, member_user_id, base_minor)
    if cap is not None:
        amount = min(amount, max(cap, 0))
    if amount <= 0:
        return 0
    movement = _record(coop, account, kind="withholding", amount=amount, key=key, user=user,
                       source=source,
                       lines=[ledger.debit(ledger.farmer_payable(member_user_id), amount),
                              ledger.credit(ledger.share_capital(member_user_id), amount)])
    messages.notify(member_user_id, "farmer.shares_withheld",
                    event=f"share-movement:{movement.id}", coop_id=coop.id,
                    amount=messages.Money(amount, coop.currency),
                    balance=messages.Money(account.paid_minor - account.redeemed_minor,
                                           coop.currency),
                    coop=coop.name, link="/my/shares")
    return amount


def redeem(coop, user, member_user_id: int, note: str = "") -> ShareAccount:
    """A member leaves: their paid share capital is redeemed at par and owed to them
    (Dr share_capital / Cr farmer_payable, paid by the next payout); no more withholding.
    Refuses a member already redeemed (409 already_redeemed)."""
    verification.require_verified(coop)
    account = account_for(coop, member_user_id, lock=True)
    if account.status == "redeemed":
        raise Conflict(_("This member's shares were already redeemed."), code="already_redeemed")
    amount = account.paid_minor - account.redeemed_minor
    if amount > 0:
        _record(coop, account, kind="redemption", amount=amount, key=f"share-redeem:{account.id}",
                user=user, note=note,
                lines=[ledger.debit(ledger.share_capital(member_user_id), amount),
                       ledger.credit(ledger.farmer_payable(member_user_id), amount)])
    result = db.session.execute(update(ShareAccount).where(ShareAccount.id == account.id,
                                                           ShareAccount.status == "active")
                                .values(status="redeemed", redeemed_at=utcnow())
                                .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        raise Conflict(_("This member's shares were already redeemed."), code="already_redeemed")
    db.session.expire(account)
    audit.record(coop.id, user, "shares.redeem", "share_account", account.id,
                 {"capital_minor": amount}, {"redeemed_minor": amount, "note": note})
    db.session.flush()
    return account


def parse_pct(value, field: str) -> int:
    """"12.5" (percent, at most 2 decimals, 0-100) -> 1250 basis points. A string is machine
    format; a form's PercentField hands over the Decimal it read in the page's locale."""
    from decimal import Decimal, InvalidOperation

    from ..common.quantities import MACHINE_NUMBER
    if isinstance(value, (bool, float)) or value is None:
        from ..common.numbers import PERCENT_FORMAT, format_number
        raise ValidationFailed(_("Give a percentage such as 10 or %(example)s.",
                                 example=format_number(Decimal("2.5"), PERCENT_FORMAT)),
                               fields={field: [_("Not a percentage.")]})
    if isinstance(value, Decimal):
        amount = value
    elif MACHINE_NUMBER.fullmatch(str(value).strip()):
        try:
            amount = Decimal(str(value).strip())
        except InvalidOperation:
            amount = Decimal("NaN")
    else:
        amount = Decimal("NaN")
    if not amount.is_finite() or not 0 <= amount <= 100 \
            or amount != amount.quantize(Decimal("0.01")):
        raise ValidationFailed(_("Give a percentage between 0 and 100, at most 2 decimals."),
                               fields={field: [_("Not a percentage.")]})
    return int(amount * 100)


def parse_amount(value, currency: str, field: str) -> int:
    from ..common.money import parse_major
    try:
        minor = parse_major(value, currency)
    except ValueError as exc:
        from ..common.numbers import amount_examples
        raise ValidationFailed(_("Give an amount such as %(whole)s or %(decimals)s.",
                                 **amount_examples(50000)),
                               fields={field: [getattr(exc, "message", None)
                                               or _("Not an amount.")]})
    if not 0 <= minor <= MAX_PAR_MINOR:
        raise ValidationFailed(_("Out of range."), fields={field: [_("Out of range.")]})
    return minor


def parse_count(value, field: str) -> int:
    text = str(value if value is not None else "").strip()
    if not text.isdigit() or not text.isascii() or int(text) > MAX_SHARES:
        raise ValidationFailed(_("Give a whole number."), fields={field: [_("Whole number.")]})
    return int(text)


def format_pct(bps: int) -> str:
    """1250 -> "12.5", 1000 -> "10" (no float on the way)."""
    whole, frac = divmod(int(bps), 100)
    return f"{whole}.{frac:02d}".rstrip("0").rstrip(".") if frac else str(whole)
