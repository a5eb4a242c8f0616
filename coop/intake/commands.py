import click
from flask.cli import AppGroup

intake_cli = AppGroup("intake", help="Deliveries at collection points and their refunds.")


@intake_cli.command("finish-refunds")
def finish_refunds_command():
    """Make every pending shortfall refund at Stripe (safe to run again; run from cron)."""
    from . import services
    done = services.finish_refunds()
    for refund_id, status in done:
        click.echo(f"refund {refund_id}: {status}")
    if not done:
        click.echo("no pending refund")
