"""Flask CLI commands: `flask seed-demo` and the commands later domains add."""
from __future__ import annotations

import click
from flask import Flask


def register(app: Flask) -> None:
    from .demo import seed_demo

    @app.cli.command("seed-demo")
    def seed_demo_command():
        """Load the demo cooperatives, people and listings (safe to run again)."""
        created = seed_demo()
        click.echo("demo data loaded" if created else "demo data already present")

    @app.cli.command("demo-season")
    def demo_season_command():
        """Play a scripted season on the demo data, then check the ledger (exit 1 if not)."""
        import sys

        from flask import current_app

        from .extensions import db
        from .ledger import services as ledger
        from .season import run_season
        if not current_app.config.get("STRIPE_SECRET_KEY"):
            # As under `make run`: without a Stripe key, play against the local sandbox.
            from .payments.sandbox import ensure_dev_sandbox
            sandbox = ensure_dev_sandbox("development")
            current_app.config.update(STRIPE_SECRET_KEY=sandbox.secret_key,
                                      STRIPE_API_BASE=sandbox.api_base)
        run_season(say=click.echo)
        problems = ledger.check()
        for problem in problems:
            click.echo(f"PROBLEM: {problem}", err=True)
        db.session.commit()
        if problems:
            sys.exit(1)
        click.echo("season played; ledger check OK")

    from .blueprints import extra_commands
    for command in extra_commands():
        app.cli.add_command(command)
