import sys

import click
from flask.cli import AppGroup

ledger_cli = AppGroup("ledger", help="The cooperatives' double-entry ledger.")


@ledger_cli.command("check")
def check_command():
    """Recompute every balance from the postings; exit 1 on any difference."""
    from sqlalchemy import func, select

    from ..extensions import db
    from . import services
    from .models import LedgerAccount, LedgerEntry
    problems = services.check()
    entries = db.session.scalar(select(func.count()).select_from(LedgerEntry))
    accounts = db.session.scalar(select(func.count()).select_from(LedgerAccount))
    for problem in problems:
        click.echo(f"PROBLEM: {problem}", err=True)
    if problems:
        click.echo(f"ledger check FAILED: {len(problems)} problem(s) in {entries} entries, "
                   f"{accounts} accounts", err=True)
        sys.exit(1)
    click.echo(f"ledger check OK: {entries} entries, {accounts} accounts, every balance "
               "recomputed from its postings, every entry balanced")
