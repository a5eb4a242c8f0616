"""`flask fx-fetch`: today's exchange rates from MINGA_FX_SOURCE (or --source), stored once."""
from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext


@click.command("fx-fetch")
@click.option("--source", default=None,
              help="A file path or http(s) URL instead of MINGA_FX_SOURCE.")
@with_appcontext
def fx_fetch_command(source):
    """Fetch and store the exchange rates (safe to run again: nothing is stored twice)."""
    from . import services
    try:
        result = services.fetch(source)
    except services.RatesUnavailable as exc:
        click.echo(f"fx-fetch: {exc.message}", err=True)
        sys.exit(1)
    days = ", ".join(d.isoformat() for d in result.days) or "no day"
    click.echo(f"rates for {days}: {result.added} added, {result.changed} corrected, "
               f"{result.unchanged} unchanged")
