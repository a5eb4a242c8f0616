import click
from flask.cli import AppGroup

pools_cli = AppGroup("pools", help="Pooled orders.")


@pools_cli.command("close-due")
def close_due_command():
    """Close every pool past its closing time (run from cron every minute)."""
    from . import services
    done = services.close_due()
    for pool_id, status in done:
        click.echo(f"pool {pool_id}: {status}")
    if not done:
        click.echo("no pool due")


@pools_cli.command("resolve-holds")
def resolve_holds_command():
    """Settle every order whose card hold is unknown or abandoned against Stripe, and release
    any live hold no order recorded (run every few minutes)."""
    from . import services
    from ..payments.gateway import PaymentError
    try:
        result = services.resolve_holds()
    except PaymentError as exc:
        raise click.ClickException(f"Stripe did not answer: {exc.code}")
    click.echo(f"stood {len(result.stood)}, failed {len(result.failed)}, "
               f"waiting {len(result.waiting)}, holds cancelled {len(result.cancelled)}")
