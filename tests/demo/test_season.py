"""The demo after a scripted season: every rule of the money held at once."""
from sqlalchemy import func, select

from coop.demo.seed import seed_demo
from coop.extensions import db
from coop.intake.models import Refund
from coop.ledger import services as ledger
from coop.payouts.models import PayoutLine
from coop.pools.models import Order
from coop.demo.season import run_season


def test_ledger_check_passes_on_the_demo_after_a_season(app, stripe_clean):
    assert seed_demo() is True
    figures = run_season(say=lambda *_: None)
    assert set(figures) == {"cooperativa-nuevo-horizonte", "cooperativa-valle-verde"}
    assert all(f["pool"] == "confirmed" and f["refunds"] > 0 for f in figures.values())
    assert ledger.check() == []
    # Every refund reached Stripe; no order was refunded beyond its capture.
    assert db.session.scalar(select(func.count()).select_from(Refund)
                             .where(Refund.status != "succeeded")) == 0
    assert db.session.scalar(select(func.count()).select_from(Order).where(
        Order.amount_refunded_minor > Order.amount_captured_minor)) == 0
    # The failed line was paid in the second batch: nothing is left due.
    assert db.session.scalar(select(func.count()).select_from(PayoutLine)
                             .where(PayoutLine.status == "failed")) == 2
    from coop.cooperatives.models import Cooperative
    for coop in db.session.scalars(select(Cooperative)):
        tb = ledger.trial_balance(coop)
        assert tb["balanced"]
        owed = sum(a.normal_balance for a in tb["accounts"] if a.code.startswith("farmer_payable:"))
        # Only the year-end patronage in cash remains owed to members.
        assert owed >= 0
    runner = app.test_cli_runner()
    out = runner.invoke(args=["ledger", "check"])
    assert out.exit_code == 0, out.output
