"""The cooperative's money policy (FinanceSettings): the advance paid at intake, member
shares (par value, minimum subscription, withholding), and how a surplus is distributed
(defaults: Ley 79 de 1988, arts. 54-55).

The only writer of `finance_settings`. Reading never writes: a coop that never saved its
policy reads the defaults from an unsaved row, so a GET page commits nothing. The row is
written when the treasurer or manager saves the settings (`update_settings`), or when a
money action asks for it explicitly (`settings_for_change`). Functions flush, never commit."""
from __future__ import annotations

from flask_babel import gettext as _

from ..audit import services as audit
from ..common.errors import ValidationFailed
from ..extensions import db
from .models import FinanceSettings

MAX_SHARES = 1_000_000
MAX_PAR_MINOR = 10**12


def _defaults(coop) -> FinanceSettings:
    return FinanceSettings(coop_id=coop.id, advance_bps=0, share_par_minor=0,
                           share_min_shares=0, share_withholding_bps=0, reserve_bps=2000,
                           education_bps=2000, solidarity_bps=1000, patronage_cash_bps=5000)


def settings(coop) -> FinanceSettings:
    """The coop's money policy to read: the stored row, or the defaults in a row that is not
    added to the session (changing it saves nothing; use `settings_for_change`)."""
    row = db.session.get(FinanceSettings, coop.id)
    return row if row is not None else _defaults(coop)


def settings_for_change(coop) -> FinanceSettings:
    """The coop's stored policy row, written now with the defaults if it was never saved:
    for a write that changes the policy."""
    row = db.session.get(FinanceSettings, coop.id)
    if row is None:
        row = _defaults(coop)
        db.session.add(row)
        db.session.flush()
    return row


def update_settings(coop, user, *, par_minor: int, min_shares: int, withholding_bps: int,
                    advance_bps: int) -> FinanceSettings:
    """Set the par value, minimum subscription, withholding and advance percentages. Refuses
    negative or out-of-range values (percentages 0-100%, i.e. 0-10000 basis points),
    writing nothing. Audited."""
    for name, value, high in (("par_value", par_minor, MAX_PAR_MINOR),
                              ("min_shares", min_shares, MAX_SHARES),
                              ("withholding_pct", withholding_bps, 10000),
                              ("advance_pct", advance_bps, 10000)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
            raise ValidationFailed(_("Out of range."), fields={name: [_("Out of range.")]})
    row = settings_for_change(coop)
    before = {"par": row.share_par_minor, "min_shares": row.share_min_shares,
              "withholding_bps": row.share_withholding_bps, "advance_bps": row.advance_bps}
    row.share_par_minor, row.share_min_shares = par_minor, min_shares
    row.share_withholding_bps, row.advance_bps = withholding_bps, advance_bps
    after = {"par": par_minor, "min_shares": min_shares, "withholding_bps": withholding_bps,
             "advance_bps": advance_bps}
    audit.record(coop.id, user, "finance.settings", "coop", coop.id, before, after)
    db.session.flush()
    return row
