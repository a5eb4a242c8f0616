"""The per-process caches of reference data (coop/common/refcache.py): a coop's current prices
and the crop catalog are plain data, and a change written by one app instance (another
gunicorn or Celery worker) is seen by another on its next request."""
import dataclasses

from coop import create_app
from coop.catalog import services as catalog
from coop.extensions import db
from coop.pricing import services as pricing
from tests.support import database_url


def _price(coop, user, farmer_price):
    return pricing.set_price(coop, user, crop="coffee", grade="sca85", floor="24000",
                             farmer_price=farmer_price, commission_kind="bps",
                             commission="800", premium="1800")


def _other_app():
    return create_app("testing", SQLALCHEMY_DATABASE_URI=database_url())


def test_a_price_change_by_one_app_is_seen_by_another_on_its_next_request(app, make_coop):
    coop = make_coop()
    manager = coop.memberships[0].user
    _price(coop, manager, "28000")
    db.session.commit()
    other = _other_app()
    try:
        with other.test_request_context("/"):
            first = pricing.current_prices(coop.id)
            assert [p.farmer_price_per_kg_minor for p in first] == [2_800_000]
            assert dataclasses.is_dataclass(first[0]) and first[0].crop.slug == "coffee"
        with other.test_request_context("/"):
            assert pricing.current_prices(coop.id) is first  # from the cache
        _price(coop, manager, "29000")
        db.session.commit()
        with other.test_request_context("/"):
            assert [p.farmer_price_per_kg_minor
                    for p in pricing.current_prices(coop.id)] == [2_900_000]
    finally:
        with other.app_context():
            db.session.remove()
            db.engine.dispose()


def test_an_uncommitted_price_is_not_seen_by_another_app(app, make_coop):
    coop = make_coop()
    manager = coop.memberships[0].user
    _price(coop, manager, "28000")
    db.session.commit()
    other = _other_app()
    try:
        with other.test_request_context("/"):
            pricing.current_prices(coop.id)
        _price(coop, manager, "29000")
        db.session.rollback()
        with other.test_request_context("/"):
            assert [p.farmer_price_per_kg_minor
                    for p in pricing.current_prices(coop.id)] == [2_800_000]
    finally:
        with other.app_context():
            db.session.remove()
            db.engine.dispose()


def test_the_catalog_is_plain_rows_read_once_per_request(app):
    from sqlalchemy import event
    statements = []
    with app.test_request_context("/"):
        catalog.all_crops()
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        with app.test_request_context("/"):
            crops = catalog.all_crops()
            catalog.all_crops()
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert len(statements) <= 1 and all("reference_versions" in s for s in statements)
    assert crops and all(dataclasses.is_dataclass(c) for c in crops)
    assert all(isinstance(g, catalog.GradeRow) for c in crops for g in c.grades)
