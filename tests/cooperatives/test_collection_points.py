"""Collection points are a cooperative's own list: the manager adds and renames them, farmers
choose one when listing a harvest (form and API), a rename carries the listings along, and
the typed points of before move into the list (migration 0008_lang_points)."""
from __future__ import annotations

import importlib.util
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from coop.common.errors import Conflict, ValidationFailed
from coop.cooperatives import services as coop_services
from coop.cooperatives.models import CollectionPoint
from coop.extensions import db
from coop.listings import services as listing_services
from coop.listings.models import Listing
from tests.support import COLLECTION_POINTS


@pytest.fixture
def coop(make_coop):
    return make_coop()


@pytest.fixture
def manager(coop):
    return next(m.user for m in coop.memberships if m.role == "manager")


def _points(coop_id):
    db.session.expire_all()
    return [(p.name, p.place) for p in coop_services.collection_points(coop_id)]


def test_the_manager_adds_and_renames_points_and_listings_follow(client, login, coop, manager,
                                                                 make_farmer, make_listing):
    farmer = make_farmer(coop)
    listing = make_listing(farmer)
    assert listing.collection_point == "Vereda El Tambo"
    login(manager)
    url = f"/manage/coops/{coop.id}/collection-points"
    page = client.get(url).get_data(as_text=True)
    assert all(name in page for name in COLLECTION_POINTS)
    assert client.post(url, data={"name": "  La   Playa ", "place": "Km 12"}).status_code == 302
    assert ("La Playa", "Km 12") in _points(coop.id)
    point = coop_services.collection_point_named(coop.id, "vereda el tambo")
    response = client.post(f"{url}/{point.id}", data={"name": "Vereda El Tambo alto",
                                                      "place": "Escuela"})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Listing, listing.id).collection_point == "Vereda El Tambo alto"
    assert ("Vereda El Tambo alto", "Escuela") in _points(coop.id)


@pytest.mark.parametrize("data, message", [
    ({"name": ""}, "This field is required"),
    ({"name": "ACOPIO CENTRAL"}, "already has a collection point of that name"),
    ({"name": "x" * 161}, "cannot be longer than 160"),
    ({"name": "Punto\x00malo"}, "control characters"),
])
def test_bad_points_are_refused_with_the_input_kept(client, login, coop, manager, data,
                                                    message):
    login(manager)
    client.get("/lang/en")
    before = _points(coop.id)
    response = client.post(f"/manage/coops/{coop.id}/collection-points", data=data)
    assert response.status_code in (409, 422)
    body = response.get_data(as_text=True)
    assert message in body and 'id="name-err"' in body
    assert _points(coop.id) == before
    # Renaming into another point's name is refused too, on that point's form.
    point = coop_services.collection_point_named(coop.id, "Vereda El Tambo")
    response = client.post(f"/manage/coops/{coop.id}/collection-points/{point.id}", data=data)
    assert response.status_code in (409, 422)
    assert message in response.get_data(as_text=True)
    assert _points(coop.id) == before


def test_service_rules(coop, make_coop):
    other = make_coop()
    with pytest.raises(Conflict):
        coop_services.add_collection_point(coop, name=" vereda  el tambo ")
    with pytest.raises(ValidationFailed):
        coop_services.add_collection_point(coop, name="   ")
    mine = coop_services.collection_point_named(coop.id, "Acopio central")
    from coop.common.errors import NotFound
    with pytest.raises(NotFound):
        coop_services.rename_collection_point(other, mine.id, name="Robado")
    # Another coop may have a point of the same name.
    assert coop_services.add_collection_point(other, name="La Playa").coop_id == other.id
    assert coop_services.add_collection_point(coop, name="La Playa").coop_id == coop.id


def test_the_listing_form_offers_the_coops_points_only(client, login, coop, make_coop,
                                                       make_farmer):
    other = make_coop()
    coop_services.add_collection_point(other, name="Punto de otra cooperativa")
    db.session.commit()
    farmer = make_farmer(coop)
    login(farmer)
    client.get("/lang/en")
    page = client.get("/my/listings/new").get_data(as_text=True)
    assert '<select id="collection_point" name="collection_point">' in page
    assert all(f'value="{name}"' in page for name in COLLECTION_POINTS)
    assert "Punto de otra cooperativa" not in page
    form = {"product": "coffee/sca85", "quantity_kg": "120",
            "harvested_on": (date.today() - timedelta(days=2)).isoformat(), "notes": ""}
    response = client.post("/my/listings/new",
                           data={**form, "collection_point": "Punto de otra cooperativa"})
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "Not a collection point of your cooperative." in body
    assert 'selected value="Punto de otra cooperativa"' in body  # the input is kept
    assert db.session.scalar(select(sa.func.count(Listing.id))) == 0
    assert client.post("/my/listings/new", data={**form, "collection_point": "Acopio central"}
                       ).status_code == 302
    assert db.session.scalar(select(Listing.collection_point)) == "Acopio central"


def test_the_api_takes_the_points_name_as_a_string(client, token, coop, make_farmer):
    farmer = make_farmer(coop)
    headers = token(farmer)
    body = {"crop": "coffee", "grade": "sca85", "quantity_kg": "50",
            "harvested_on": (date.today() - timedelta(days=1)).isoformat()}
    refused = client.post("/api/v1/listings", json={**body, "collection_point": "Otro sitio"},
                          headers=headers)
    assert refused.status_code == 422
    assert refused.get_json()["error"]["fields"]["collection_point"]
    created = client.post("/api/v1/listings",
                          json={**body, "collection_point": " vereda la esperanza "},
                          headers=headers)
    assert created.status_code == 201, created.get_json()
    listing = db.session.get(Listing, created.get_json()["id"])
    assert listing.collection_point == "Vereda La Esperanza"  # the point's own spelling
    none = client.post("/api/v1/listings", json=body, headers=headers)
    assert none.status_code == 201 and db.session.get(
        Listing, none.get_json()["id"]).collection_point == ""


def test_the_migration_moves_typed_points_into_each_coops_list():
    from alembic.migration import MigrationContext
    from alembic.operations import Operations
    path = (Path(__file__).resolve().parents[2]
            / "migrations/versions/0008_lang_collection_points.py")
    spec = importlib.util.spec_from_file_location("m0008_points", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    engine = sa.create_engine("sqlite://")
    meta = sa.MetaData()
    sa.Table("cooperatives", meta, sa.Column("id", sa.Integer, primary_key=True))
    listings = sa.Table("listings", meta, sa.Column("id", sa.Integer, primary_key=True),
                        sa.Column("coop_id", sa.Integer),
                        sa.Column("collection_point", sa.String(160)))
    with engine.begin() as conn:
        meta.create_all(conn)
        conn.execute(sa.text("INSERT INTO cooperatives (id) VALUES (1), (2)"))
        conn.execute(listings.insert(), [
            {"coop_id": 1, "collection_point": "Vereda El Tambo"},
            {"coop_id": 1, "collection_point": " Vereda El Tambo "},
            {"coop_id": 1, "collection_point": "La Sierra"},
            {"coop_id": 1, "collection_point": ""},
            {"coop_id": 2, "collection_point": "Vereda El Tambo"}])
        module.op = Operations(MigrationContext.configure(conn))
        module.upgrade()
        rows = conn.execute(sa.text("SELECT coop_id, name, place FROM collection_points "
                                    "ORDER BY coop_id, name")).all()
        kept = conn.execute(sa.text("SELECT collection_point FROM listings ORDER BY id")).all()
    assert [tuple(r) for r in rows] == [(1, "La Sierra", ""), (1, "Vereda El Tambo", ""),
                                        (2, "Vereda El Tambo", "")]
    assert [r[0] for r in kept] == ["Vereda El Tambo", "Vereda El Tambo", "La Sierra", "",
                                    "Vereda El Tambo"]
