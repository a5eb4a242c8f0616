"""A farmer's phone in a real browser: Minga can go on the home screen (a manifest with real
icons), the money pages open without signal with the time of the copy, and a mistake made with
signal comes back to the harvest form instead of waiting in the outbox."""
from __future__ import annotations

import json
from datetime import date, timedelta

FARMER = "farmer2@example.org"


def test_the_manifest_is_served_as_json_with_icons_that_load(phone):
    visitor = phone()
    page = visitor.page
    visitor.goto("/")
    visitor.step("home")
    href = page.get_attribute("link[rel=manifest]", "href")
    assert href
    response = page.request.get(visitor.url(href))
    assert response.status == 200
    assert response.headers["content-type"].startswith("application/manifest+json")
    manifest = json.loads(response.text())
    assert manifest["display"] == "standalone" and manifest["short_name"] == "Minga"
    assert manifest["start_url"] and manifest["scope"] == "/"
    sizes = {}
    for icon in manifest["icons"]:
        assert icon["type"] == "image/png"
        width = page.evaluate("""src => new Promise((ok, bad) => {
            const img = new Image(); img.onload = () => ok(img.naturalWidth + 'x' + img.naturalHeight);
            img.onerror = () => bad(new Error('icon did not load: ' + src)); img.src = src; })""",
                              icon["src"])
        sizes[icon["sizes"]] = width
    assert sizes == {"192x192": "192x192", "512x512": "512x512"}


def _kept(page, paths) -> None:
    page.wait_for_function("""async paths => {
        const reg = await navigator.serviceWorker.ready;
        if (!reg.active || !navigator.serviceWorker.controller) { return false; }
        for (const p of paths) { if (!(await caches.match(p))) { return false; } }
        return true;
    }""", arg=paths, timeout=20_000, polling=250)


def test_the_money_pages_open_without_signal_with_the_time_of_the_copy(phone):
    farmer = phone()
    page = farmer.page
    farmer.login(FARMER)
    for path in ("/my/sales", "/my/deliveries", "/my/payments"):
        farmer.goto(path)
        assert page.is_hidden("#offline-stamp"), "the copy's date shows with signal"
    farmer.step("my payments online")
    _kept(page, ["/my/sales", "/my/deliveries", "/my/payments", "/my/listings"])
    farmer.context.set_offline(True)
    for path in ("/my/sales", "/my/deliveries", "/my/payments"):
        farmer.goto(path)
        assert page.locator("main h1").count() == 1
        page.wait_for_selector("#offline-stamp:not([hidden])")
        assert "Actualizado el" in page.inner_text("#offline-stamp")
        farmer.step(f"offline {path}")
    farmer.context.set_offline(False)


def test_a_mistake_with_signal_stays_on_the_form_and_out_of_the_outbox(phone):
    farmer = phone()
    page = farmer.page
    farmer.login(FARMER)
    farmer.goto("/my/listings/new")
    assert page.eval_on_selector("select[name=product]", "s => s.value") == ""
    page.select_option("select[name=product]", "coffee/sca85")
    assert page.eval_on_selector(
        "select[name=product]", "s => s.selectedOptions[0].textContent") == \
        "Café pergamino — Excelente, SCA 85–89"
    page.fill("input[name=quantity_kg]", "12")
    page.fill("input[name=harvested_on]", (date.today() + timedelta(days=3)).isoformat())
    page.click("form[data-outbox-form] button[type=submit]")
    page.wait_for_selector("#harvested_on-outbox-err")
    assert "hoy" in page.inner_text("#harvested_on-outbox-err")
    assert "/my/listings/new" in page.url
    farmer.step("future date refused on the form")
    waiting = page.evaluate("""() => new Promise(ok => {
        const req = indexedDB.open('minga-outbox', 2);
        req.onupgradeneeded = () => ['listings', 'plots'].forEach(n => req.result.createObjectStore(n, {keyPath: 'key'}));
        req.onsuccess = () => { const tx = req.result.transaction('listings', 'readonly');
            const all = tx.objectStore('listings').getAll(); all.onsuccess = () => ok(all.result.length); };
    })""")
    assert waiting == 0
    assert page.is_hidden("#outbox-badge")


def test_after_the_outbox_sends_the_list_updates_without_a_reload(phone, server):
    marker = "33,7 kg"  # this harvest's own line on the list (es_CO: 33.7 kg)
    farmer = phone()
    page = farmer.page
    farmer.login(FARMER)
    farmer.goto("/my/listings/new")
    farmer.step("the form, online")
    farmer.goto("/my/listings")
    farmer.step("my harvests, online")
    _kept(page, ["/my/listings", "/my/listings/new"])
    farmer.context.set_offline(True)
    farmer.goto("/my/listings/new")
    page.select_option("select[name=product]", "cacao/export")
    page.fill("input[name=quantity_kg]", "33,7")
    page.fill("input[name=harvested_on]", (date.today() - timedelta(days=1)).isoformat())
    page.select_option("select[name=collection_point]", index=1)  # one of the coop's points
    farmer.step("offline: the form")
    with page.expect_navigation(url="**/my/listings"):
        page.click("form[data-outbox-form] button[type=submit]")
    page.wait_for_selector("#outbox-badge:not([hidden])")
    page.wait_for_selector("#offline-stamp:not([hidden])")
    assert "Actualizado el" in page.inner_text("#offline-stamp")
    assert page.locator("main ul.cards:not(#outbox-list) > li", has_text=marker).count() == 0
    farmer.step("offline: waiting, the copy's date shown")
    page.evaluate("window.__sameDocument = true")
    farmer.context.set_offline(False)
    page.wait_for_selector("#outbox-badge", state="hidden", timeout=20_000)
    page.locator("main ul.cards:not(#outbox-list) > li", has_text=marker).wait_for(timeout=20_000)
    assert page.evaluate("window.__sameDocument === true"), "the page was reloaded"
    assert page.is_hidden("#outbox") and page.is_hidden("#offline-stamp")
    assert "Cosecha enviada." in page.inner_text("#outbox-note")
    farmer.step("back online: the harvest in the list, no reload")
