"""A plot's boundary walked in the field, in a real browser (Debian's Chromium, a Pixel 5
viewport): the coop's technician opens the field page of the demo's incomplete farmer's plot
(CO-0002, no geometry), loses the signal, walks the boundary (the positions fed to Chromium's
emulated geolocation one after another, as a walk around a plot of about 1.4 ha near El Tambo,
Cauca, with an accuracy of 5 m), finishes: the capture waits in the phone's outbox. When the
signal returns the outbox sends it; the farmer's map then draws the polygon, and the version
says it came from a walk with the phone's GPS. The same capture sent again stores nothing
new. The farmer's plot page, once seen, opens without signal and takes a GPS point there."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import create_engine, text

MANAGER = "manager@example.org"
FARMER = "farmer2@example.org"          # CO-0002: the demo's incomplete farmer
# A walk around the plot, (latitude, longitude): about 110 m by 125 m, ~1.4 ha.
WALK = [(2.5225000, -76.6075000), (2.5225100, -76.6069500), (2.5225200, -76.6064000),
        (2.5230500, -76.6063900), (2.5236000, -76.6063800), (2.5238500, -76.6069000),
        (2.5236100, -76.6075200), (2.5230600, -76.6075100)]


@pytest.fixture(scope="module")
def db(server):
    engine = create_engine(server.database_url)

    def query(sql: str, **params):
        with engine.connect() as conn:
            return conn.execute(text(sql), params).all()
    yield query
    engine.dispose()


def _the_plot(db):
    rows = db("SELECT p.id, fp.id, fp.coop_id FROM plots p "
              "JOIN farmer_profiles fp ON fp.id = p.farmer_id "
              "JOIN users u ON u.id = fp.user_id WHERE u.email = :e ORDER BY p.id", e=FARMER)
    assert rows, "the demo's farmer CO-0002 has no plot"
    return rows[0]


def _walks(db, plot_id):
    return db("SELECT version, geometry_source, geometry_json, gps_accuracy_m, client_key "
              "FROM plot_versions WHERE plot_id = :p AND geometry_source = 'gps_walk' "
              "ORDER BY version", p=plot_id)


def _at(context, lat, lon):
    context.set_geolocation({"latitude": lat, "longitude": lon, "accuracy": 5})


def test_a_technician_walks_a_boundary_offline_and_the_farmer_sees_it(phone, server, db):
    plot_id, profile_id, coop_id = _the_plot(db)
    assert _walks(db, plot_id) == []
    technician = phone()
    page, context = technician.page, technician.context
    context.grant_permissions(["geolocation"], origin=server.url)
    _at(context, *WALK[0])
    technician.login(MANAGER)
    technician.goto(f"/manage/coops/{coop_id}/farmers/{profile_id}/plots/{plot_id}/field")
    page.wait_for_selector("#capture:not([hidden])")
    assert page.is_visible("#capture-walk") and page.is_visible("#capture-point")
    technician.step("the field page, with signal")

    # No signal at the plot.
    context.set_offline(True)
    page.click("#capture-walk")
    # A function, not an expression: Playwright polls an expression with eval, which the
    # page's Content-Security-Policy (no 'unsafe-eval') refuses when it is not true at once.
    page.wait_for_function("() => document.getElementById('capture-progress').textContent"
                           ".startsWith('1 posiciones')")
    for n, (lat, lon) in enumerate(WALK[1:], start=2):
        page.wait_for_timeout(300)      # walking
        _at(context, lat, lon)
        page.wait_for_function(
            "n => document.getElementById('capture-progress').textContent"
            ".startsWith(n + ' posiciones')", arg=n)
    progress = page.inner_text("#capture-progress")
    metres = int(progress.split("·")[1].strip().split(" ")[0])
    assert 350 < metres < 500, progress      # around the plot, less the closing side
    assert "precisión 5 m" in progress
    technician.step("walking the boundary, offline")
    page.click("#capture-finish")
    page.wait_for_selector("#capture-outbox:not([hidden])")
    waiting = page.locator("#capture-list > li")
    assert waiting.count() == 1
    assert "Esperando para enviar" in waiting.inner_text()
    assert f"Contorno de {len(WALK) + 1} posiciones" in waiting.inner_text()
    assert "sin señal" in page.inner_text("#capture-note").lower() or \
        "no hay señal" in page.inner_text("#capture-note").lower()
    technician.step("offline: the walk waits on the phone")
    assert _walks(db, plot_id) == []

    # The signal returns: the outbox sends it, once.
    context.set_offline(False)
    page.wait_for_selector("#capture-result:not([hidden])", timeout=20_000)
    assert "Enviado" in page.inner_text("#capture-sent")
    page.wait_for_selector("#capture-outbox", state="hidden")
    # The page's map is drawn again with the boundary just sent.
    page.wait_for_selector("main .plotmap svg path.plot")
    technician.step("back online: sent, with what to check")
    walks = _walks(db, plot_id)
    assert len(walks) == 1
    version, source, geometry, accuracy, key = walks[0]
    assert source == "gps_walk" and accuracy == 5 and key
    ring = json.loads(geometry)["coordinates"][0]
    assert ring[0] == ring[-1] and len(ring) == len(WALK) + 1
    assert {(round(lat, 7), round(lon, 7)) for lon, lat in ring} == set(WALK)
    computed = db("SELECT computed_area_m2 FROM plot_versions WHERE plot_id = :p AND "
                  "version = :v", p=plot_id, v=version)[0][0]
    assert 10_000 < computed < 20_000

    # The same capture sent again (the outbox retrying after a lost answer): stored once.
    again = page.evaluate("""async ([url, key, positions]) => {
        const s = await (await fetch('/plots/outbox/session', {credentials: 'same-origin'})).json();
        const r = await fetch(url, {method: 'POST', credentials: 'same-origin',
            headers: {'Content-Type': 'application/json', 'Idempotency-Key': key,
                      'X-CSRFToken': s.csrf_token},
            body: JSON.stringify({source: 'gps_walk', positions: positions, accuracy_m: 5})});
        return [r.status, await r.json()];
    }""", [f"/manage/coops/{coop_id}/farmers/{profile_id}/plots/{plot_id}/capture", key,
           [[f"{lon:.7f}", f"{lat:.7f}"] for lat, lon in WALK + [WALK[0]]]])
    assert again[0] == 200 and again[1]["repeated"] is True and again[1]["version"] == version
    assert len(_walks(db, plot_id)) == 1

    # The farmer's map draws it.
    farmer = phone()
    farmer.login(FARMER)
    farmer.goto("/my/plots")
    path = farmer.page.locator(".plotmap svg path.plot")
    assert path.count() == 1
    d = path.get_attribute("d")
    assert d.startswith("M") and d.endswith("Z") and d.count("L") == len(WALK)
    assert "Incompleta para la UE" in farmer.text()
    farmer.step("the farmer's map with the walked boundary")
    farmer.goto(f"/my/plots/{plot_id}")
    assert "GPS del teléfono, borde recorrido" in farmer.text()
    assert "Precisión del GPS 5 m" in farmer.text()
    farmer.step("the farmer's plot: from a walk with the phone's GPS")

    # The farmer's plot page, once opened with signal, opens without it: "I am at my plot"
    # takes a point there, kept on the phone until the signal returns.
    fpage, fcontext = farmer.page, farmer.context
    fpage.wait_for_function("async () => { const reg = await navigator.serviceWorker.ready;"
                            " return Boolean(reg.active && navigator.serviceWorker.controller);"
                            " }", timeout=20_000, polling=250)
    farmer.goto(f"/my/plots/{plot_id}")
    farmer.step("the farmer's plot, seen again through the service worker")
    fpage.wait_for_function("async p => Boolean(await caches.match(p))",
                            arg=f"/my/plots/{plot_id}", timeout=20_000, polling=250)
    fcontext.grant_permissions(["geolocation"], origin=server.url)
    _at(fcontext, 2.5231000, -76.6069500)
    fcontext.set_offline(True)
    farmer.goto(f"/my/plots/{plot_id}")
    fpage.wait_for_selector("#offline-stamp:not([hidden])")
    fpage.wait_for_selector("#capture:not([hidden])")
    farmer.step("offline: the plot page from the phone")
    fpage.click("#capture-point")
    fpage.wait_for_selector("#capture-list > li")
    assert "Esperando para enviar" in fpage.inner_text("#capture-list > li")
    farmer.step("offline: the point waits on the phone")
    assert db("SELECT count(*) FROM plot_versions WHERE plot_id = :p AND "
              "geometry_source = 'gps_point'", p=plot_id)[0][0] == 0
    fcontext.set_offline(False)
    fpage.wait_for_selector("#capture-result:not([hidden])", timeout=20_000)
    farmer.step("back online: the point is sent")
    points = db("SELECT geometry_json, gps_accuracy_m FROM plot_versions WHERE plot_id = :p "
                "AND geometry_source = 'gps_point'", p=plot_id)
    assert points == [('{"type":"Point","coordinates":[-76.6069500,2.5231000]}', 5)]


def test_a_refused_walk_stays_on_the_phone_with_its_reason(phone, server, db):
    """The field page, once opened with signal, opens again without it (the service worker
    keeps it). A walk that crosses itself (a figure of eight) waits on the phone; when the
    signal returns Minga refuses it: the phone keeps it as refused with the message, and does
    not send it again."""
    plot_id, profile_id, coop_id = _the_plot(db)
    before = len(_walks(db, plot_id))
    technician = phone()
    page, context = technician.page, technician.context
    context.grant_permissions(["geolocation"], origin=server.url)
    eight = [WALK[0], WALK[4], WALK[2], WALK[6]]
    _at(context, *eight[0])
    technician.login(MANAGER)
    field = f"/manage/coops/{coop_id}/farmers/{profile_id}/plots/{plot_id}/field"
    technician.goto(field)
    technician.step("the field page")
    page.wait_for_function("async () => { const reg = await navigator.serviceWorker.ready;"
                           " return Boolean(reg.active && navigator.serviceWorker.controller);"
                           " }", timeout=20_000, polling=250)
    technician.goto(field)
    page.wait_for_function("async p => Boolean(await caches.match(p))", arg=field,
                           timeout=20_000, polling=250)
    technician.step("the field page, kept on the phone")
    context.set_offline(True)
    technician.goto(field)
    page.wait_for_selector("#offline-stamp:not([hidden])")
    page.wait_for_selector("#capture:not([hidden])")
    technician.step("offline: the field page from the phone")
    page.click("#capture-walk")
    for n, (lat, lon) in enumerate(eight[1:], start=2):
        page.wait_for_timeout(200)
        _at(context, lat, lon)
        page.wait_for_function(
            "n => document.getElementById('capture-progress').textContent"
            ".startsWith(n + ' posiciones')", arg=n)
    page.click("#capture-finish")
    page.wait_for_selector("#capture-list > li")
    assert "Esperando para enviar" in page.inner_text("#capture-list > li")
    technician.step("offline: the walk waits")
    context.set_offline(False)
    page.wait_for_selector("#capture-list > li .status-refused", timeout=20_000)
    item = page.inner_text("#capture-list > li")
    assert "No aceptada" in item and "se cruza" in item
    technician.step("refused: kept with its reason")
    page.click("#capture-send")
    page.wait_for_timeout(500)
    assert page.locator("#capture-list > li .status-refused").count() == 1
    assert len(_walks(db, plot_id)) == before
