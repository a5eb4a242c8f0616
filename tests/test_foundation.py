from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from coop.extensions import db


def test_models_and_migrations_agree(app):
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                db.metadata)
    assert diff == []


def test_catalog_loaded_by_migration(client):
    body = client.get("/api/v1/crops").json
    slugs = {c["slug"] for c in body["items"]}
    assert {"coffee", "cacao", "avocado", "vanilla"} <= slugs
    assert not slugs & {"coca", "opium-poppy", "cannabis"}
    coffee = next(c for c in body["items"] if c["slug"] == "coffee")
    assert coffee["unit"] == "kg" and {g["code"] for g in coffee["grades"]} >= {"sca85", "fnc94"}
