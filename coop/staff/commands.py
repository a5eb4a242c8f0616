import click
from flask.cli import AppGroup

staff_cli = AppGroup("staff", help="Minga's platform staff, who verify new cooperatives.")


def _change(email: str, change, done: str, not_done: str) -> None:
    from ..common.errors import DomainError
    from ..extensions import db
    try:
        user, changed = change(email)
    except DomainError as exc:
        raise click.ClickException(exc.message)
    db.session.commit()
    click.echo(f"{user.email}: {done if changed else not_done}")


@staff_cli.command("grant")
@click.argument("email")
def grant_command(email):
    """Make the account of EMAIL platform staff (audited)."""
    from . import services
    _change(email, services.grant, "now staff", "already staff")


@staff_cli.command("revoke")
@click.argument("email")
def revoke_command(email):
    """Remove EMAIL from the platform staff (audited)."""
    from . import services
    _change(email, services.revoke, "no longer staff", "was not staff")


@staff_cli.command("list")
def list_command():
    """The platform staff's e-mails."""
    from . import services
    for user in services.staff():
        click.echo(user.email)
