import click
from flask.cli import AppGroup

staff_cli = AppGroup("staff", help="Minga's platform staff, who verify new cooperatives.")


@staff_cli.command("grant")
@click.argument("email")
def grant_command(email):
    """Make the account of EMAIL platform staff (audited)."""
    from ..common.errors import DomainError
    from ..extensions import db
    from . import services
    try:
        user, changed = services.grant(email)
    except DomainError as exc:
        raise click.ClickException(exc.message)
    db.session.commit()
    click.echo(f"{user.email}: {'now staff' if changed else 'already staff'}")


@staff_cli.command("revoke")
@click.argument("email")
def revoke_command(email):
    """Remove EMAIL from the platform staff (audited)."""
    from ..common.errors import DomainError
    from ..extensions import db
    from . import services
    try:
        user, changed = services.revoke(email)
    except DomainError as exc:
        raise click.ClickException(exc.message)
    db.session.commit()
    click.echo(f"{user.email}: {'no longer staff' if changed else 'was not staff'}")


@staff_cli.command("list")
def list_command():
    """The platform staff's e-mails."""
    from . import services
    for user in services.staff():
        click.echo(user.email)
