"""GET /api/v1/plots and /plots/{id}: the farmer's own, a manager's coop's, 404 across
coops, the geometry as stored (decimals kept), the EUDR gaps."""
from __future__ import annotations

import json

from sqlalchemy import select

from coop.cooperatives.models import FarmerProfile
from coop.extensions import db
from coop.plots import geometry as geo
from coop.plots import services as plots

POLYGON = ('{"type":"Polygon","coordinates":[[[-76.600000,2.440000],[-76.599000,2.440000],'
           '[-76.599000,2.441000],[-76.600000,2.441000],[-76.600000,2.440000]]]}')


def profile_of(user):
    return db.session.scalar(select(FarmerProfile).where(FarmerProfile.user_id == user.id))


def test_plots_for_the_farmer_the_manager_and_nobody_else(client, token, make_coop,
                                                          make_farmer):
    coop, other = make_coop(), make_coop(name="Otra")
    manager = next(m.user for m in coop.memberships if m.role == "manager")
    other_manager = next(m.user for m in other.memberships if m.role == "manager")
    farmer, neighbour = make_farmer(coop, plots=0), make_farmer(coop, plots=0)
    stranger = make_farmer(other, plots=0)
    mine = plots.add_plot(profile_of(farmer), name="La Loma", hectares="1.23",
                          replaced_crop=None, illicit_hectares="0")
    bare = plots.add_plot(profile_of(farmer), name="Sin nada", hectares="6",
                          replaced_crop=None, illicit_hectares="0")
    theirs = plots.add_plot(profile_of(neighbour), name="Vecina", hectares="1",
                            replaced_crop=None, illicit_hectares="0")
    far = plots.add_plot(profile_of(stranger), name="Lejos", hectares="1", replaced_crop=None,
                         illicit_hectares="0")
    plots.record_geometry(mine, geo.loads(POLYGON), country="CO", source="kml", by=manager)
    plots.declare_cutoff(mine, land_use="not_forest", evidence_kind="satellite",
                         evidence_ref="GFW", by=manager)
    plots.declare_legality(mine, tenure_type="title", reference="T-1", by=manager)
    db.session.commit()

    as_farmer = token(farmer)
    body = client.get("/api/v1/plots", headers=as_farmer)
    assert body.status_code == 200
    items = body.json["items"]
    assert [i["id"] for i in items] == [mine.id, bare.id] and body.json["next_cursor"] is None
    one = client.get(f"/api/v1/plots/{mine.id}", headers=as_farmer)
    assert one.status_code == 200
    # The stored text, decimals and all (no float on the way).
    assert '"geometry":' + POLYGON in one.get_data(as_text=True)
    data = one.json
    assert data["geometry"]["type"] == "Polygon"
    assert data["declared_area_ha"] == "1.2300" and data["computed_area_ha"].startswith("1.2")
    assert data["eudr"] == {"complete": False, "missing": ["no_consent"]}
    assert data["version"] == 3 and data["geometry_source"] == "kml"
    empty = client.get(f"/api/v1/plots/{bare.id}", headers=as_farmer).json
    assert empty["geometry"] is None and empty["computed_area_ha"] is None
    assert empty["eudr"]["missing"] == ["no_geometry", "no_cutoff", "no_tenure", "no_consent"]
    # Another farmer's plot in the same coop, another coop's: 404; coop_id as a farmer: 403.
    assert client.get(f"/api/v1/plots/{theirs.id}", headers=as_farmer).status_code == 404
    assert client.get(f"/api/v1/plots/{far.id}", headers=as_farmer).status_code == 404
    assert client.get(f"/api/v1/plots?coop_id={coop.id}", headers=as_farmer).status_code == 403
    as_manager = token(manager)
    page = client.get(f"/api/v1/plots?coop_id={coop.id}&limit=2", headers=as_manager).json
    assert [i["id"] for i in page["items"]] == [mine.id, bare.id]
    rest = client.get(f"/api/v1/plots?coop_id={coop.id}&limit=2&cursor={page['next_cursor']}",
                      headers=as_manager).json
    assert [i["id"] for i in rest["items"]] == [theirs.id] and rest["next_cursor"] is None
    assert client.get(f"/api/v1/plots/{theirs.id}", headers=as_manager).status_code == 200
    assert client.get(f"/api/v1/plots/{far.id}", headers=as_manager).status_code == 404
    assert client.get(f"/api/v1/plots?coop_id={other.id}", headers=as_manager).status_code \
        == 404
    assert client.get("/api/v1/plots?coop_id=abc", headers=as_manager).status_code == 422
    assert client.get("/api/v1/plots", headers=as_manager).json["items"] == []
    as_other = token(other_manager)
    assert client.get(f"/api/v1/plots/{mine.id}", headers=as_other).status_code == 404
    assert client.get("/api/v1/plots").status_code == 401
    spec = client.get("/api/v1/openapi.json").json
    assert {"/plots", "/plots/{id}"} <= set(spec["paths"])
    json.dumps(spec)
