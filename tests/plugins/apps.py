"""Fixture: more apps on the test database (as more workers would be)."""
from __future__ import annotations

import pytest

from coop import create_app
from coop.extensions import db, limiter


@pytest.fixture
def other_app(app):
    """Builds more apps on the same database. The limiter is one object shared by every app
    (its storage follows the last init_app), so put the test app's storage back afterwards."""
    saved = {name: getattr(limiter, name) for name in ("_storage", "_limiter", "_key_prefix")}
    made = []

    def make(config_name="testing", **overrides):
        overrides.setdefault("SQLALCHEMY_DATABASE_URI", app.config["SQLALCHEMY_DATABASE_URI"])
        new = create_app(config_name, **overrides)
        made.append(new)
        return new

    yield make
    for new in made:
        with new.app_context():
            db.session.remove()
            db.engine.dispose()
    for name, value in saved.items():
        setattr(limiter, name, value)
