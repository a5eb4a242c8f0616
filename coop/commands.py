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

    from .blueprints import extra_commands
    for command in extra_commands():
        app.cli.add_command(command)
