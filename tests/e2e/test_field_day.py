"""A field day in a real browser (Debian's Chromium, a Pixel 5 viewport, gunicorn on loopback,
the local Stripe sandbox): a farmer lists harvests (one with a photo, one without signal), a
buyer joins the pool with the sandbox test card, the manager closes it and records a
delivery (which forms the pool's lot), the buyer downloads the lot's EUDR GeoJSON, the
treasurer pays the farmer through a payout batch and the bank's confirmation,
and the farmer sees the payment.

The tests are the steps of one story and run in file order; each step's screenshots are in
test-artifacts/e2e/<test>/ and axe-core checks every page shown (see conftest.py). A step
whose earlier step failed fails at once, saying which (never a skip)."""
from __future__ import annotations

import csv
import io
import json
import re
import time
from datetime import date, timedelta
from decimal import Decimal

import pytest
from babel.numbers import format_decimal
from PIL import Image
from shapely.geometry import shape
from sqlalchemy import create_engine, text

from tests.support import ARTIFACTS

FARMER = "farmer1@example.org"
BUYER = "buyer1@example.org"
MANAGER = "manager@example.org"
TREASURER = "treasurer@example.org"
COOP = "Cooperativa Nuevo Horizonte"
PHOTO_POINT = "Vereda El Tambo, lote con foto"
OFFLINE_POINT = "Finca alta, sin señal"
REFERENCE = "BANCO-E2E-0001"
# Colombia's mainland, (lon, lat): the plots of the coop (Cauca) fall inside it.
COLOMBIA = (-79.1, -4.3, -66.8, 12.5)

story: dict = {}
failed_steps: list[str] = []


@pytest.fixture(autouse=True)
def _one_story(request):
    """Each test continues the previous one's story: fail at once, naming it, if it broke."""
    if failed_steps:
        pytest.fail(f"an earlier step of the story failed: {failed_steps[0]}", pytrace=False)
    yield
    if getattr(request.node, "e2e_call_failed", False):  # set by conftest's report hook
        failed_steps.append(request.node.name)


@pytest.fixture(scope="module")
def db(server):
    engine = create_engine(server.database_url)

    def query(sql: str, **params):
        with engine.connect() as conn:
            return conn.execute(text(sql), params).all()
    yield query
    engine.dispose()


def jpeg(width=640, height=480) -> bytes:
    """A small photo of 'beans': a gradient, so the JPEG is a real, decodable image."""
    image = Image.new("RGB", (width, height))
    pixels = image.load()
    for x in range(width):
        for y in range(height):
            pixels[x, y] = (90 + x * 100 // width, 50 + y * 60 // height, 30)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    return out.getvalue()


def fill_harvest(page, product: str, kg: str, point: str, days_ago: int) -> None:
    page.select_option("select[name=product]", product)
    page.fill("input[name=quantity_kg]", kg)
    page.fill("input[name=harvested_on]", (date.today() - timedelta(days=days_ago)).isoformat())
    page.select_option("select[name=collection_point]", point)
    # The plot it came from (the EUDR traces coffee and cacao): the farmer has two, none
    # ticked for them; the first.
    if not page.locator("input[name=plot_ids]:checked").count():
        page.locator("input[name=plot_ids]").first.check()


def wait_for_offline_copy(page) -> None:
    """The service worker is active and keeps the farmer's pages for use without signal."""
    page.wait_for_function("""async () => {
        const reg = await navigator.serviceWorker.ready;
        if (!reg.active || !navigator.serviceWorker.controller) { return false; }
        const mine = await caches.match('/my/listings'), add = await caches.match('/my/listings/new');
        return Boolean(mine && add);
    }""", timeout=20_000, polling=250)


def test_farmer_lists_a_harvest_with_a_photo_then_one_without_signal(phone, db):
    # The manager adds two collection points to the coop's list; farmers choose from it.
    coop_id = db("SELECT id FROM cooperatives WHERE name = :c", c=COOP)[0][0]
    manager = phone()
    manager.login(MANAGER)
    for point in (PHOTO_POINT, OFFLINE_POINT):
        manager.goto(f"/manage/coops/{coop_id}/collection-points")
        manager.page.fill("#add-point input[name=name]", point)
        with manager.page.expect_navigation():
            manager.page.click("#add-point button[type=submit]")
        assert "Punto de acopio agregado." in manager.text()
    manager.step("collection points")
    farmer = phone()
    page = farmer.page
    farmer.login(FARMER)
    farmer.goto("/my/listings")
    farmer.step("my harvests")
    before = db("SELECT count(*) FROM listings l JOIN users u ON u.id = l.farmer_user_id "
                "WHERE u.email = :e", e=FARMER)[0][0]

    # Online, with a photo: the outbox sends it at once and the list shows it with its photo.
    with page.expect_navigation():
        page.click("main a[href$='/my/listings/new']")
    fill_harvest(page, "coffee/sca85", "150,5", PHOTO_POINT, days_ago=4)  # es_CO: 150.5 kg
    page.set_input_files("input[name=photo]", files=[
        {"name": "cosecha.jpg", "mimeType": "image/jpeg", "buffer": jpeg()}])
    farmer.step("new harvest with a photo")
    with page.expect_navigation(url="**/my/listings"):
        page.click("form[data-outbox-form] button[type=submit]")
    page.wait_for_selector("#outbox-note:not([hidden])")
    assert "Cosecha enviada." in page.inner_text("#outbox-note")
    card = page.locator("main ul.cards > li", has_text=PHOTO_POINT)
    assert card.count() == 1
    photo = card.locator("img")
    photo.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0",
                           arg=photo.element_handle())
    farmer.step("harvest with photo listed")
    rows = db("SELECT l.id, l.quantity_g, l.photo_digest FROM listings l "
              "WHERE l.collection_point = :p", p=PHOTO_POINT)
    assert len(rows) == 1 and rows[0][1] == 150_500 and rows[0][2]

    # The phone keeps the farmer's pages; then the signal goes.
    wait_for_offline_copy(page)
    farmer.context.set_offline(True)
    farmer.goto("/my/listings/new")
    assert page.locator("form[data-outbox-form]").count() == 1, "the form did not open offline"
    fill_harvest(page, "cacao/export", "77,5", OFFLINE_POINT, days_ago=2)
    farmer.step("offline: new harvest")
    with page.expect_navigation(url="**/my/listings"):
        page.click("form[data-outbox-form] button[type=submit]")
    page.wait_for_selector("#outbox-badge:not([hidden])")
    assert page.inner_text("#outbox-badge").strip() == "1 cosecha esperando para enviar"
    waiting = page.locator("#outbox-list > li")
    assert waiting.count() == 1
    assert "Cacao" in waiting.inner_text() and "77,5 kg" in waiting.inner_text()
    assert "Esperando para enviar" in waiting.inner_text()
    assert page.is_visible("#outbox-send")
    farmer.step("offline: waiting to send, with the count")
    assert db("SELECT count(*) FROM listings WHERE collection_point = :p",
              p=OFFLINE_POINT)[0][0] == 0

    # The signal returns: the `online` event sends it, the badge goes, the list has it once.
    farmer.context.set_offline(False)
    page.wait_for_selector("#outbox-badge", state="hidden", timeout=20_000)
    page.wait_for_selector("#outbox", state="hidden")
    farmer.step("back online: sent")
    farmer.goto("/my/listings")
    sent = page.locator("main ul.cards > li", has_text=OFFLINE_POINT)
    assert sent.count() == 1
    assert "77,5 kg" in sent.inner_text()
    assert db("SELECT quantity_g FROM listings WHERE collection_point = :p",
              p=OFFLINE_POINT)[0][0] == 77_500
    assert page.is_hidden("#outbox-badge")
    farmer.step("my harvests: the offline harvest once")
    assert db("SELECT count(*) FROM listings WHERE collection_point = :p",
              p=OFFLINE_POINT)[0][0] == 1
    after = db("SELECT count(*) FROM listings l JOIN users u ON u.id = l.farmer_user_id "
               "WHERE u.email = :e", e=FARMER)[0][0]
    assert after == before + 2


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def test_buyer_joins_the_pool_with_the_sandbox_test_card(phone, db, server):
    pool_id = db("SELECT p.id FROM pools p JOIN cooperatives c ON c.id = p.coop_id "
                 "WHERE c.name = :c AND p.status = 'open'", c=COOP)[0][0]
    story["pool_id"] = pool_id
    buyer = phone()
    page = buyer.page
    buyer.login(BUYER)
    buyer.goto("/pools")
    buyer.step("open pools")
    with page.expect_navigation():
        page.click(f"main a[href$='/pools/{pool_id}']")
    buyer.step("the pool, its price and breakdown")
    # Typed the Colombian way: "1.200" is twelve hundred kilograms, not 1,2.
    page.fill("input[name=quantity_kg]", "1.200")
    page.select_option("select[name=payment_method]", "pm_card_visa")
    buyer.step("join with the test card")
    with page.expect_navigation():
        page.click("main form button[type=submit]")
    # The confirmation step: the kilograms as read and the amount that will be held.
    assert db("SELECT count(*) FROM orders WHERE pool_id = :p", p=pool_id)[0][0] == 0
    figure = page.locator("main .confirm-figure").first.inner_text()
    buyer.step("confirm: the kilograms and the amount held")
    with page.expect_navigation():
        page.click("main form.confirm-step button[type=submit]")
    buyer.goto("/my/orders")
    buyer.step("my orders: held")
    orders = db("SELECT o.status, o.quantity_g, o.amount_authorized_minor, o.payment_intent_id "
                "FROM orders o WHERE o.pool_id = :p", p=pool_id)
    assert len(orders) == 1
    status, quantity_g, held, intent = orders[0]
    assert (status, quantity_g) == ("authorized", 1_200_000) and held > 0
    assert "1.200 kg" in page.inner_text("main")
    stripe_intent = server.sandbox.get(f"/v1/payment_intents/{intent}")
    assert stripe_intent["status"] == "requires_capture"
    assert stripe_intent["amount"] == held
    assert figure.startswith("1.200 kg = ") and "retenidos" in figure, figure
    assert _digits(figure) == "1200" + str(held), figure


def test_manager_closes_the_pool_and_records_a_delivery(phone, db, server):
    pool_id = story["pool_id"]
    manager = phone()
    page = manager.page
    manager.login(MANAGER)
    manager.goto(f"/manage/pools/{pool_id}")
    manager.step("the pool, open")
    with page.expect_navigation():
        page.click(f"form[action$='/manage/pools/{pool_id}/close'] button")
    # The confirmation step: who is charged what, before any card is captured.
    assert db("SELECT status FROM pools WHERE id = :p", p=pool_id)[0][0] == "open"
    figure = page.locator("main .confirm-figure").first.inner_text()
    buyers = page.locator("main table").first.inner_text()
    manager.step("confirm the close: buyers and amounts to capture")
    with page.expect_navigation():
        page.click("main form.confirm-step button[type=submit]")
    manager.step("pool closed: confirmed and allocated")
    # The close answers at once; the worker captures the holds (settlement jobs) meanwhile.
    deadline = time.monotonic() + 60
    while not db("SELECT settled_at FROM pools WHERE id = :p", p=pool_id)[0][0]:
        assert time.monotonic() < deadline, "the worker did not settle the pool in 60 s"
        time.sleep(0.2)
    captured, organisation = db(
        "SELECT sum(o.amount_captured_minor), min(b.organisation) FROM orders o "
        "JOIN buyers b ON b.id = o.buyer_id WHERE o.pool_id = :p AND o.status = 'captured'",
        p=pool_id)[0]
    assert captured and str(captured) in _digits(figure), figure
    assert organisation in buyers, buyers
    assert db("SELECT status FROM pools WHERE id = :p", p=pool_id)[0][0] == "confirmed"
    # The buyer hears of it by e-mail (from the worker, in Spanish, the captured amount
    # first, in Colombian figures), with the link to their orders.
    amount = format_decimal(Decimal(captured) / 100, format="#,##0.00", locale="es_CO")
    mail = server.wait_for_mail(BUYER, f"#{pool_id} confirmado: {amount}", text_has=amount)
    assert mail.html and "/my/orders" in mail.text, mail.text
    allocation = db("SELECT a.id, a.quantity_g, u.name FROM allocations a "
                    "JOIN users u ON u.id = a.farmer_user_id "
                    "JOIN listings l ON l.id = a.listing_id "
                    "WHERE a.pool_id = :p AND u.email = :e AND l.collection_point = :c",
                    p=pool_id, e=FARMER, c=PHOTO_POINT)
    assert len(allocation) == 1, "the harvest listed with a photo got no part of the pool"
    allocation_id, quantity_g, farmer_name = allocation[0]
    story.update(allocation_id=allocation_id, farmer_name=farmer_name)

    with page.expect_navigation():
        page.click(f"main a[href$='/manage/pools/{pool_id}/intake']")
    manager.step("deliveries of the pool")
    with page.expect_navigation():
        page.click(f"main a[href$='/manage/allocations/{allocation_id}/intake']")
    kg = format_decimal(Decimal(quantity_g) / 1000, format="#,##0.###", locale="es_CO")
    page.fill("input[name=received_kg]", kg)
    manager.step("record the delivery")
    with page.expect_navigation():
        page.click("main form button[type=submit]")
    assert "/my/statements/" in page.url
    manager.step("settlement statement")
    intake = db("SELECT received_g, accepted_g FROM intakes WHERE allocation_id = :a",
                a=allocation_id)
    assert intake == [(quantity_g, quantity_g)]


def test_buyer_downloads_the_lots_geojson(phone, db):
    # The delivery formed the pool's lot; farmer1 (CO-0001) has complete plots and consented
    # in the demo (coop/demo/plots.py leaves CO-0002 incomplete), so the lot is EUDR-ready.
    pool_id = story["pool_id"]
    lots = db("SELECT id, code FROM lots WHERE pool_id = :p", p=pool_id)
    assert len(lots) == 1, lots
    lot_id, code = lots[0]
    lot_plots = db("SELECT sp.plot_id FROM lot_source_plots sp "
                   "JOIN lot_sources s ON s.id = sp.source_id WHERE s.lot_id = :l", l=lot_id)
    assert lot_plots, "the delivery's listing brought no plot into the lot"
    buyer = phone()
    page = buyer.page
    buyer.login(BUYER)
    buyer.goto(f"/lots/{lot_id}/eudr")
    buyer.step("the lot's EUDR page: complete, the downloads")
    main = page.inner_text("main")
    assert code in main and "Completo: cada parcela tiene su geolocalización" in main, main
    assert "Incompleto" not in main
    assert page.locator("main ul.missing").count() == 0
    link = page.locator(f"main ul.downloads a[href$='/lots/{lot_id}/eudr/download/geojson']")
    assert link.count() == 1 and link.inner_text() == "GeoJSON"
    assert db("SELECT count(*) FROM eudr_packs WHERE lot_id = :l", l=lot_id)[0][0] == 0

    with page.expect_download() as download_info:
        link.click()
    download = download_info.value
    assert download.suggested_filename == f"eudr-{code}.geojson"
    saved = ARTIFACTS / buyer.name / download.suggested_filename
    download.save_as(saved)
    raw = saved.read_text(encoding="utf-8")
    pack = json.loads(raw)
    assert pack["type"] == "FeatureCollection"
    features = pack["features"]
    assert len(features) == len(lot_plots), (features, lot_plots)
    for feature in features:
        assert feature["type"] == "Feature"
        props = feature["properties"]
        assert set(props) >= {"ProducerName", "ProducerCountry", "ProductionPlace", "Area"}
        assert props["ProducerName"] == story["farmer_name"]
        assert props["ProducerCountry"] == "CO"
        assert props["ProductionPlace"].strip()
        assert isinstance(props["Area"], (int, float)) and props["Area"] > 0
        geometry = shape(feature["geometry"])
        assert geometry.is_valid and not geometry.is_empty, feature["geometry"]
        west, south, east, north = geometry.bounds      # GeoJSON order: [lon, lat]
        assert COLOMBIA[0] <= west <= east <= COLOMBIA[2], geometry.bounds
        assert COLOMBIA[1] <= south <= north <= COLOMBIA[3], geometry.bounds
    # The coordinates as written, never re-encoded through floats: 6 decimals or more.
    geometries = re.findall(r'"geometry":(\{.*?\})\s*,\s*"properties"', raw)
    assert len(geometries) == len(features), raw[:500]
    numbers = [n for g in geometries for n in re.findall(r"-?\d+(?:\.\d+)?", g)]
    assert numbers and all(re.fullmatch(r"-?\d+\.\d{6,}", n) for n in numbers), numbers
    # The first issue is kept: one stored pack, for this buyer, in GeoJSON.
    buyer_id = db("SELECT buyer_id FROM users WHERE email = :e", e=BUYER)[0][0]
    assert db("SELECT audience, format FROM eudr_packs WHERE lot_id = :l", l=lot_id) == [
        (f"buyer:{buyer_id}", "geojson")]


def test_treasurer_pays_the_farmer_through_a_batch_and_the_banks_confirmation(phone, db):
    coop_id = db("SELECT id FROM cooperatives WHERE name = :c", c=COOP)[0][0]
    treasurer = phone()
    page = treasurer.page
    treasurer.login(TREASURER)
    treasurer.goto(f"/manage/coops/{coop_id}/payables")
    treasurer.step("what farmers are owed")
    due = page.locator("main tbody tr", has_text=story["farmer_name"])
    assert due.count() == 1
    with page.expect_navigation():
        page.click(f"form[action$='/manage/coops/{coop_id}/payout-batches'] button")
    # The confirmation step: the lines and the total per rail, before the batch exists.
    before = db("SELECT count(*) FROM payout_batches")[0][0]
    figure = page.locator("main .confirm-figure").first.inner_text()
    rails = page.locator("main table").first.inner_text()
    treasurer.step("confirm the batch: lines and total per rail")
    with page.expect_navigation():
        page.click("main form.confirm-step button[type=submit]")
    assert "/manage/payout-batches/" in page.url
    assert db("SELECT count(*) FROM payout_batches")[0][0] == before + 1
    treasurer.step("payout batch made")
    line = db("SELECT pl.id, pl.batch_id, pl.amount_minor, pl.rail, pl.status FROM payout_lines pl "
              "JOIN users u ON u.id = pl.farmer_user_id WHERE u.email = :e", e=FARMER)
    assert len(line) == 1 and line[0][4] == "pending"
    line_id, batch_id, amount_minor, rail, _status = line[0]
    total = db("SELECT total_minor FROM payout_batches WHERE id = :b", b=batch_id)[0][0]
    assert str(total) in _digits(figure) and "Daviplata" in rails, (figure, rails)

    with page.expect_download() as download_info:
        page.click(f"main a[href*='/manage/payout-batches/{batch_id}/export.csv']")
    download = download_info.value
    exported = ARTIFACTS / treasurer.name / download.suggested_filename
    download.save_as(exported)
    rows = list(csv.DictReader(io.StringIO(exported.read_text(encoding="utf-8"))))
    mine = [r for r in rows if r["line_id"] == str(line_id)]
    assert len(mine) == 1, rows
    assert mine[0]["reference"] == f"MINGA-{batch_id}-{line_id}"
    assert mine[0]["currency"] == "COP"
    assert Decimal(mine[0]["amount"]) == Decimal(amount_minor).scaleb(-2) > 0  # COP: 2 decimals
    profile = db("SELECT fp.national_id, fp.payout_account FROM farmer_profiles fp "
                 "JOIN users u ON u.id = fp.user_id WHERE u.email = :e", e=FARMER)
    assert [(mine[0]["national_id"], mine[0]["phone"])] == profile and rail == "daviplata"

    confirmation = f"line_id,status,reference\r\n{line_id},paid,{REFERENCE}\r\n".encode()
    page.set_input_files("input[name=file]", files=[
        {"name": "confirmacion-banco.csv", "mimeType": "text/csv", "buffer": confirmation}])
    treasurer.step("import the bank's confirmation")
    with page.expect_navigation():
        page.click(f"form[action$='/manage/payout-batches/{batch_id}/confirmations'] button")
    # The confirmation step: what will be marked paid, before anything is posted.
    assert db("SELECT status FROM payout_lines WHERE id = :i", i=line_id) == [("pending",)]
    paid = page.locator("main .confirm-figure").first.inner_text()
    assert paid.startswith("1 línea marcada como pagada") and str(amount_minor) in _digits(paid)
    assert page.locator("main tbody tr", has_text=REFERENCE).count() == 1
    treasurer.step("confirm the bank's confirmation: lines to mark paid")
    with page.expect_navigation():
        page.click("main form.confirm-step button[type=submit]")
    row = page.locator("main tbody tr", has_text=REFERENCE)
    assert row.count() == 1
    story["amount_text"] = row.locator("td.num").first.inner_text().split("\n")[0].strip()
    treasurer.step("line paid")
    assert db("SELECT status, reference FROM payout_lines WHERE id = :i", i=line_id) == [
        ("paid", REFERENCE)]


def test_farmer_sees_the_payment(phone):
    farmer = phone()
    page = farmer.page
    farmer.login(FARMER)
    farmer.goto("/my/payments")
    farmer.step("my payments")
    card = page.locator("main ul.cards > li", has_text=REFERENCE)
    assert card.count() == 1
    shown = card.inner_text()
    assert story["amount_text"] in shown
    assert "Pagado el" in shown, shown
    farmer.goto("/my/deliveries")
    farmer.step("my deliveries: delivered and paid")
    card = page.locator("main ul.cards > li", has_text=REFERENCE)
    assert card.count() == 1
    shown = card.inner_text()
    assert "Pagado el" in shown and "por Daviplata, ref. " + REFERENCE in shown, shown
