"""Flask CLI commands: the demo's (`flask seed-demo`, `flask grow-demo`, `flask demo-season`) and each domain's
group, all registered from COMMANDS."""
from __future__ import annotations

import sys

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from .demo.grow import grow
from .demo.season import run_season
from .demo.seed import seed_demo
from .extensions import db
from .fx.commands import fx_fetch_command
from .intake.commands import intake_cli
from .invoices.commands import invoices_cli
from .jobs.commands import jobs_cli
from .ledger import services as ledger
from .ledger.commands import ledger_cli
from .pools.commands import pools_cli
from .staff.commands import staff_cli


@click.command("seed-demo")
@with_appcontext
def seed_demo_command():
    """Load the demo cooperatives, people and listings (safe to run again)."""
    created = seed_demo()
    click.echo("demo data loaded" if created else "demo data already present")


@click.command("grow-demo")
@click.option("--factor", default=10, show_default=True, type=click.IntRange(1, 1000),
              help="How many times the seeded demo (its farmers and a season of activity).")
@with_appcontext
def grow_demo_command(factor):
    """Grow the demo data N times (for benches and page-growth tests; safe to run again)."""
    grow(factor, say=click.echo)


@click.command("demo-season")
@with_appcontext
def demo_season_command():
    """Play a scripted season on the demo data, then check the ledger (exit 1 if not)."""
    if not current_app.config.get("STRIPE_SECRET_KEY"):
        # The season holds and captures real card payments: it needs a Stripe to talk to.
        # `make demo-season` starts the local sandbox first (devtools/, never imported here).
        click.echo("No STRIPE_SECRET_KEY: run `make demo-season` to play against the local "
                   "Stripe sandbox, or set the key of a Stripe test account.", err=True)
        sys.exit(2)
    run_season(say=click.echo)
    problems = ledger.check()
    for problem in problems:
        click.echo(f"PROBLEM: {problem}", err=True)
    db.session.commit()
    if problems:
        sys.exit(1)
    click.echo("season played; ledger check OK")


# Every command of the app: the one list to extend.
COMMANDS = (seed_demo_command, grow_demo_command, demo_season_command, pools_cli, ledger_cli, intake_cli,
            staff_cli, jobs_cli, invoices_cli,
            fx_fetch_command)


def register(app: Flask) -> None:
    for command in COMMANDS:
        app.cli.add_command(command)
