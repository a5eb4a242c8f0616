"""Operating costs: Dr operating_costs Cr bank, with a check that the amount is near the
coop's usual cost. Services flush, never commit."""
from __future__ import annotations

from datetime import datetime, time, timezone

from flask_babel import gettext as _

from ..audit import services as audit
from ..common.errors import ValidationFailed
from ..common.dates import DateInputError, parse_date
from ..common.money import parse_major
from ..cooperatives import verification
from ..ledger import queries as ledger_queries
from ..ledger import services as ledger


# ---------------------------------------------------------------- operating costs

COST_PLAUSIBLE_FACTOR = 100  # "150.000" read as 150,00 is 1000x off; ask again from 100x


def usual_operating_cost(coop) -> int | None:
    """The median of the coop's last 50 operating costs (minor units), None before the first."""
    amounts = sorted(ledger_queries.last_debits(coop, "operating_cost", "operating_costs", 50))
    return amounts[len(amounts) // 2] if amounts else None


def record_operating_cost(coop, user, *, amount, spent_on, description: str,
                          reference: str = "", key: str,
                          confirm: str | None = None):
    """Dr operating_costs Cr bank. `key` (from the form) makes a resubmission do nothing.
    With `confirm` given (a form), an amount COST_PLAUSIBLE_FACTOR times above or below the
    coop's usual cost raises Implausible, writing nothing, unless `confirm` is its token."""
    verification.require_verified(coop)  # a pending coop moves no money
    try:
        minor = parse_major(amount, coop.currency)
    except ValueError as exc:
        from ..common.numbers import amount_examples
        raise ValidationFailed(_("Give an amount such as %(whole)s or %(decimals)s.",
                                 **amount_examples(125000)),
                               fields={"amount": [str(exc)]})
    if minor <= 0:
        raise ValidationFailed(_("The amount must be more than zero."),
                               fields={"amount": [_("More than zero.")]})
    if confirm is not None:
        from ..common.money import format_money
        from ..common.plausibility import Implausible, confirmed, far_from, token_for
        usual = usual_operating_cost(coop)
        token = token_for("operating_cost", coop.id, minor)
        if far_from(minor, usual, COST_PLAUSIBLE_FACTOR) and not confirmed(confirm, token):
            warning = _("%(amount)s is far from this cooperative's usual cost, about "
                        "%(usual)s. Check the number.",
                        amount=format_money(minor, coop.currency),
                        usual=format_money(usual, coop.currency))
            raise Implausible(_("Nothing was recorded: the amount is far from the usual. If "
                                "it is right, tick \"Yes, this is right\" and record again."),
                              token=token, fields={"amount": [warning]})
    try:
        spent_on = parse_date(spent_on)
    except DateInputError as exc:
        raise ValidationFailed(_("Give the date as YYYY-MM-DD."),
                               fields={"spent_on": [exc.message]})
    description = (description or "").strip()
    if not description or not description.isprintable():
        raise ValidationFailed(_("Say what the cost was."),
                               fields={"description": [_("Required.")]})
    if not key or not key.isprintable() or len(key) > 200:
        raise ValidationFailed("bad form key")
    reference = (reference or "").strip()[:255] or None
    entry = ledger.post(coop, key=f"operating_cost:{key}", kind="operating_cost", user=user,
                        memo=description[:255], external_ref=reference,
                        effective_on=datetime.combine(spent_on, time(12), tzinfo=timezone.utc),
                        lines=[ledger.debit("operating_costs", minor),
                               ledger.credit("bank", minor)])
    audit.record(coop.id, user, "treasury.operating_cost", "ledger_entry", entry.id, {},
                 {"amount_minor": minor, "spent_on": spent_on.isoformat(),
                  "description": description, "reference": reference})
    return entry
