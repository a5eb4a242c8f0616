from datetime import date

import click
from flask.cli import AppGroup

invoices_cli = AppGroup("invoices", help="Invoices, credit notes and purchase documents.")


@invoices_cli.command("issue-week")
@click.option("--week", default=None, help="The week's Monday (YYYY-MM-DD); default: last week.")
def issue_week_command(week):
    """Issue the farmers' weekly purchase documents (documento soporte / liquidación de
    compra) of a finished week, for every coop; safe to run again."""
    from sqlalchemy import select

    from ..cooperatives.models import Cooperative
    from ..extensions import db
    from . import support
    monday = date.fromisoformat(week) if week else support.last_finished_week()
    for coop_id in list(db.session.scalars(select(Cooperative.id).order_by(Cooperative.id))):
        coop = db.session.get(Cooperative, coop_id)
        try:
            issued = support.issue_week(coop, monday)
        except ValueError as exc:
            raise click.UsageError(str(exc))
        db.session.commit()
        click.echo(f"{coop.name}: {len(issued)} farmers documented for the week of {monday}")
