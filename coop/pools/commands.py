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
