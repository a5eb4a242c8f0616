"""What each message says, in every language Minga speaks (gettext, rendered in the
recipient's language). The number that matters comes first, in plain words; SMS texts stay
within one or two segments (accents an SMS cannot carry in GSM-7 are folded when sent).

Placeholders are the context's names: money (`messages.Money`), kilograms (`messages.Kg`),
dates and datetimes are formatted in the recipient's locale and time zone.

Topics: "account" and "money" are about the person's own account and money, always sent and
never carry an unsubscribe link; "updates" and "reminders" carry one; "news" also needs the
person's opt-in (announcements)."""
from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l


@dataclass(frozen=True)
class Template:
    short: object            # the SMS / WhatsApp text, and the e-mail's first paragraph
    subject: object
    more: object = None      # the e-mail's further paragraphs
    topic: str = "updates"
    urgent: bool = True      # False: waits for daytime in the recipient's time zone


TOPICS = ("account", "money", "updates", "reminders", "news")
UNSUBSCRIBABLE = ("updates", "reminders", "news")

TEMPLATES: dict[str, Template] = {
    # --- account ---
    "auth.reset_link": Template(
        _l("Minga: to choose a new password open this link within an hour: %(link)s"),
        _l("Choose a new Minga password"),
        _l("If you did not ask for it, ignore this message: your password stays the same."),
        topic="account"),
    "auth.reset_code": Template(
        _l("Minga: your code is %(code)s. It is valid for 10 minutes. Do not share it."),
        _l("Your Minga code"), topic="account"),
    "auth.login_code": Template(
        _l("Minga: your login code is %(code)s. It is valid for 10 minutes. Do not share it."),
        _l("Your Minga login code"), topic="account"),
    "auth.change_code": Template(
        _l("Minga: code %(code)s confirms the change of your %(what)s. If it was not you, "
           "call your cooperative."),
        _l("Confirm the change on your Minga account"), topic="account"),
    "auth.login_throttled": Template(
        _l("Minga: too many failed logins to your account. Logins are paused for a while. If "
           "it was not you, tell your cooperative."),
        _l("Failed logins to your Minga account"), topic="account"),
    # --- founders ---
    "coop.verified": Template(
        _l("Minga: %(coop)s is verified. You can open pools and pay farmers now."),
        _l("%(coop)s is verified"), topic="account"),
    "coop.refused": Template(
        _l("Minga: the registration of %(coop)s was not accepted: %(reason)s. Correct it and "
           "ask again."),
        _l("%(coop)s: registration not accepted"), topic="account"),
    # --- farmer ---
    "farmer.harvest_listed": Template(
        _l("Minga: %(kg)s kg of %(crop)s listed with %(coop)s. We will tell you when it sells."),
        _l("Your harvest is listed: %(kg)s kg of %(crop)s"), topic="updates", urgent=False),
    "farmer.harvest_sold": Template(
        _l("Minga: %(kg)s kg of your %(crop)s sold at %(price)s per kg. Deliver them to "
           "%(point)s by %(by)s."),
        _l("Sold: %(kg)s kg of %(crop)s, deliver by %(by)s"),
        _l("Pool %(pool)s of %(coop)s is confirmed. You will be paid %(price)s per kg for what "
           "is accepted at the collection point."),
        topic="money"),
    "farmer.delivery_received": Template(
        _l("Minga: received %(kg)s kg of %(crop)s, grade %(grade)s: %(amount)s. Advance paid: "
           "%(advance)s."),
        _l("Delivery received: %(kg)s kg, %(amount)s"), topic="money"),
    "farmer.paid": Template(
        _l("Minga: you were paid %(amount)s by %(rail)s, ref %(reference)s."),
        _l("You were paid %(amount)s"),
        _l("Paid by %(coop)s for your deliveries."), topic="money"),
    "farmer.payment_failed": Template(
        _l("Minga: your payment of %(amount)s by %(rail)s failed. %(coop)s will pay again in "
           "the next batch; check your account details with them."),
        _l("Your payment of %(amount)s did not go through"), topic="money"),
    "farmer.shares_withheld": Template(
        _l("Minga: %(amount)s of your sale went to your member shares at %(coop)s. Your shares: "
           "%(balance)s."),
        _l("%(amount)s added to your member shares"), topic="money"),
    # --- buyer ---
    "buyer.hold_placed": Template(
        _l("Minga: %(amount)s held on your card for %(kg)s kg in pool %(pool)s. Nothing is "
           "taken unless the pool fills by %(closes)s."),
        _l("Card hold of %(amount)s for pool %(pool)s"), topic="money"),
    "buyer.invoice_issued": Template(
        _l("Minga: the invoice for your order %(order)s in pool %(pool)s, %(amount)s, is "
           "ready: %(link)s"),
        _l("Invoice for order %(order)s: %(amount)s"),
        _l("It is in My invoices as a printable page, a PDF and UBL 2.1 XML. It was sent to "
           "your organisation's accounts users."), topic="money", urgent=False),
    "buyer.captured": Template(
        _l("Minga: pool %(pool)s is confirmed. %(amount)s taken from your card for %(kg)s kg at "
           "%(price)s per kg."),
        _l("Pool %(pool)s confirmed: %(amount)s charged"), topic="money"),
    "buyer.released": Template(
        _l("Minga: pool %(pool)s did not fill. The hold of %(amount)s on your card is released; "
           "nothing is charged."),
        _l("Pool %(pool)s did not fill: hold of %(amount)s released"), topic="money"),
    "buyer.refunded": Template(
        _l("Minga: %(amount)s refunded to your card for pool %(pool)s: %(reason)s."),
        _l("Refund of %(amount)s for pool %(pool)s"), topic="money"),
    "buyer.pool_closing": Template(
        _l("Minga: pool %(pool)s closes in 24 hours, at %(closes)s. Still needed to fill it: "
           "%(kg)s kg."),
        _l("Pool %(pool)s closes in 24 hours"), topic="reminders", urgent=False),
    "buyer.new_pool": Template(
        _l("Minga: new pool of %(crop)s from %(coop)s, %(kg)s kg at %(price)s per kg, closes "
           "%(closes)s."),
        _l("New pool: %(crop)s from %(coop)s"), topic="news", urgent=False),
    # --- manager ---
    "manager.pool_minimum": Template(
        _l("Minga: pool %(pool)s reached its minimum: %(kg)s kg committed."),
        _l("Pool %(pool)s reached its minimum"), topic="updates", urgent=False),
    "manager.pool_short": Template(
        _l("Minga: pool %(pool)s closes tomorrow at %(closes)s with %(kg)s kg of %(min)s kg "
           "needed."),
        _l("Pool %(pool)s closes tomorrow short of its minimum"), topic="reminders",
        urgent=False),
    "manager.intake_missing": Template(
        _l("Minga: pool %(pool)s was confirmed %(days)s days ago and %(kg)s kg are still not "
           "received."),
        _l("Intake missing for pool %(pool)s"), topic="reminders", urgent=False),
    # --- a lot's journey (coop/lots/dispatch.py) ---
    "buyer.lot_dispatched": Template(
        _l("Minga: lot %(lot)s of %(crop)s left %(coop)s on %(date)s with %(carrier)s, "
           "document %(document)s."),
        _l("Lot %(lot)s is on its way"),
        _l("Confirm receipt when it arrives, or tell the coop of a problem, on the lot's "
           "page."), topic="updates"),
    "farmer.lot_dispatched": Template(
        _l("Minga: your %(kg)s kg of %(crop)s left %(coop)s on %(date)s in lot %(lot)s."),
        _l("Your %(kg)s kg of %(crop)s are on their way"), topic="updates", urgent=False),
    "manager.lot_problem": Template(
        _l("Minga: %(buyer)s reported a problem with lot %(lot)s: %(note)s"),
        _l("Problem reported with lot %(lot)s"), topic="updates"),
    # --- treasurer ---
    "treasurer.import_failures": Template(
        _l("Minga: the payment confirmation import of batch %(batch)s has %(failed)s failed "
           "lines."),
        _l("Batch %(batch)s: %(failed)s payments failed"), topic="updates"),
    "treasurer.reconciliation": Template(
        _l("Minga: reconciliation found %(count)s differences to look at."),
        _l("Reconciliation: %(count)s differences"), topic="updates", urgent=False),
    "treasurer.job_parked": Template(
        _l("Minga: a background task failed %(attempts)s times and is paused: %(task)s. Retry "
           "it from the paused tasks page."),
        _l("A background task is paused: %(task)s"), topic="updates"),
}
