"""Every page of every role, in Spanish, over demo-like data (a coop with members, listings,
a pool through intake and payout, ledger entries, audit log, reconciliation rows): its visible
text holds no English word and no internal code (statuses, rails, crop and grade codes,
ledger accounts, entry kinds, audit actions)."""
from __future__ import annotations

import io
import re

import pytest
from flask import url_for
from sqlalchemy import select

from coop.audit import services as audit
from coop.common.models import utcnow
from coop.cooperatives import finance
from coop.plots import services as plots_services
from coop.extensions import db
from coop.intake import services as intake
from coop.intake.models import Intake
from coop.ledger import services as ledger
from coop.payouts import services as payouts
from coop.pools import services as pools
from coop.shares import services as shares
from coop.treasury import bank_statement
from coop.treasury import costs
from coop.treasury import stripe_reconciliation
from tests.support.spanish import offending, visible

# Whole words (case-sensitive) that must never be read on a Spanish page.
@pytest.fixture
def world(sold, make_user, make_buyer):  # noqa: F811
    """`sold` (a coffee pool confirmed and captured), then: deliveries (one short, so a
    buyer is refunded), plots, shares, a payout batch with a paid and a failed line, an
    operating cost, a reversal, Stripe and bank reconciliation rows, a second open pool
    with an order withdrawn."""
    m = sold
    coop = m.coop
    plot = plots_services.add_plot(_profile(coop, m.farmers[0]), name="Finca La Loma", hectares="2", replaced_crop="coca",
                                   illicit_hectares="1", licit_crop="coffee")
    # Its EUDR data (issue 13): a point, the declarations, the consent, so that the plot's
    # page shows each of them (and its versions) in Spanish.
    from coop.plots import geometry as geo
    from coop.plots import services as plots
    plots.record_geometry(plot, geo.loads('{"type":"Point","coordinates":[-76.600000,'
                                          '2.440000]}'), country="CO", source="gps_point",
                          accuracy_m=30, by=m.manager)
    plots.declare_cutoff(plot, land_use="not_forest", evidence_kind="satellite",
                         evidence_ref="GFW 2020", by=m.manager)
    plots.declare_legality(plot, tenure_type="title", reference="120-4", by=m.manager)
    plots.record_consent(_profile(coop, m.farmers[0]), by=m.manager, locale="es")
    m.plot = plot
    finance.update_settings(coop, m.treasurer, par_minor=5_000_000, min_shares=2,
                            withholding_bps=1000, advance_bps=1000)
    shares.set_subscription(coop, m.treasurer, m.farmers[1].id, 2)
    shares.pay(coop, m.treasurer, m.farmers[1].id, 1_000_000, via="cash", key="share-1")
    db.session.commit()
    intake.record_intake(m.manager, m.alloc[0].id, received_kg="40", grade="sca85")
    intake.record_intake(m.manager, m.alloc[1].id, received_kg="100", grade="sca85")
    db.session.commit()
    intake.finish_refunds()
    db.session.commit()
    batch, _ = payouts.create_batch(coop, m.treasurer, idempotency_key="batch-1")
    db.session.commit()
    lines = list(batch.lines)
    rows = [(i, line.id, "paid" if i == 0 else "failed", f"REF-{i}")
            for i, line in enumerate(lines)]
    payouts.apply_confirmations(batch, m.treasurer, rows)
    db.session.commit()
    cost = costs.record_operating_cost(coop, m.treasurer, amount="150000",
                                          spent_on=utcnow().date(),
                                          description="Costales para el acopio", key="c-1")
    db.session.commit()
    reversal = ledger.reverse(coop, cost, key=f"reverse:{cost.id}", user=m.treasurer,
                              memo="Registrado dos veces")
    audit.record(coop.id, m.treasurer, "ledger.reverse", "ledger_entry", cost.id,
                 {"entry": cost.id}, {"reversal": reversal.id, "reason": "Registrado dos veces"})
    db.session.commit()
    today = utcnow().date()
    stripe_reconciliation.import_stripe_csv(coop, m.treasurer, io.BytesIO((
        "id,Type,Source,Amount,Fee,Net,Currency,Created (UTC),Available On (UTC),"
        "coop_id (metadata)\n"
        f"txn_x1,charge,ch_unknown,1000.00,30.00,970.00,cop,{today} 08:00:00,{today} 08:00:00,"
        f"{coop.id}\n"
        f"txn_x2,payout,po_1,-500.00,0,-500.00,cop,{today} 08:00:00,{today} 08:00:00,"
        f"{coop.id}\n"
    ).encode()))
    bank_statement.import_bank_statement(coop, m.treasurer, io.BytesIO((
        "date,description,amount,reference\n"
        f"{today},Comision bancaria,-9.90,\n"
        f"{today},Deposito,500.00,\n").encode()))
    db.session.commit()
    pool2 = m.open_pool(min_kg="100", max_kg="300")
    order, _ = pools.place_order(m.buyers[0], pool2.id, quantity_kg="20",
                                 payment_method="pm_card_visa")
    db.session.commit()
    pools.withdraw_order(m.buyers[0], order.id)
    db.session.commit()
    m.pool2 = pool2
    # The lot's journey (issue 13 part 4): ready, dispatched, one buyer's receipt and the
    # other's problem, so that every step shows on the coop's, the buyers' and the farmers'
    # pages; the open pool is handed over FCA at a named place.
    from coop.lots import dispatch
    from coop.lots import services as lots
    from coop.pools.terms import local_today
    m.lot = lots.lot_of_pool(m.pool.id)
    dispatch.record_step(m.manager, m.lot.id, "ready", note="Sacos cosidos y marcados")
    dispatch.record_step(m.manager, m.lot.id, "dispatched", carrier="Transportes del Cauca",
                         document_number="REM-2026-0042", on_date=local_today().isoformat())
    dispatch.confirm_receipt(m.buyers[0], m.lot.id, note="Llegó completo")
    dispatch.report_problem(m.buyers[1], m.lot.id, note="Un saco mojado", key="k1")
    pools.change_terms(pool2, delivery_terms="FCA", delivery_place="Bodega de Almacafé, Popayán",
                       delivery_expected_on=local_today().isoformat())
    db.session.commit()
    m.batch = batch
    m.intake = db.session.scalar(select(Intake).order_by(Intake.id))
    return m


def _profile(coop, user):
    from coop.cooperatives.models import FarmerProfile
    return db.session.scalar(select(FarmerProfile).where(FarmerProfile.coop_id == coop.id,
                                                         FarmerProfile.user_id == user.id))


SKIP = {"static", "listings.photo", "listings.service_worker", "auth.set_language",
        "listings.outbox_session"}


def _urls(app, m) -> list[str]:
    profile = _profile(m.coop, m.farmers[0])
    values = {"coop_id": m.coop.id, "slug": m.coop.slug, "pool_id": m.pool.id,
              "allocation_id": m.alloc[2].id, "profile_id": profile.id,
              "batch_id": m.batch.id, "intake_id": m.intake.id,
              "listing_id": m.listings[0].id, "plot_id": m.plot.id, "lot_id": m.lot.id,
              "invoice_id": _first_invoice(m.buyers[0])}
    urls = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if "GET" not in rule.methods or rule.endpoint in SKIP or \
                    rule.rule.startswith(("/api/", "/stripe/")):
                continue
            if not set(rule.arguments) <= set(values):
                continue
            urls.append(url_for(rule.endpoint, **{a: values[a] for a in rule.arguments}))
            if rule.endpoint in ("pools.detail", "pools.manage_pool"):
                urls.append(url_for(rule.endpoint, pool_id=m.pool2.id))
    return sorted(set(urls))


def _first_invoice(buyer) -> int:
    from coop.invoices.models import Invoice
    return db.session.scalar(select(Invoice.id).where(Invoice.buyer_id == buyer.buyer_id)
                             .order_by(Invoice.id))


def _allowed(m) -> set[str]:
    """People's own words on the pages: names of people, organisations, the coop."""
    from coop.auth.models import Buyer, User
    names = {u.name for u in db.session.scalars(select(User))}
    names |= {b.organisation for b in db.session.scalars(select(Buyer))}
    names |= {m.coop.name}
    return {n for n in names if n}


# Codes that no language's page may show (English words are fine on English pages).
CODES = ["sca85", "sca80", "fnc94", "opium_poppy", "missing_ledger", "farmer_payable",
         "share_capital", "stripe_clearing", "card_holds", "buyer_deposits", "card_hold",
         "card_fee", "stripe_payout", "operating_cost", "year_end_close", "refund_failed",
         "premium_spend", "ledger.reverse", "payouts.batch_created", "payouts.line_paid",
         "intake.record", "shares.pay", "treasury.bank_import", "bps", "nequi", "breb",
         "Cocoa", "coffee-green", "passion-fruit"]
CODE_WORDS = re.compile(r"(?<![\w.])(" + "|".join(re.escape(w) for w in CODES) + r")(?![\w])")


def test_every_page_of_every_role_in_english_shows_no_code(app, client, world):
    m = world
    urls = _urls(app, m)
    allowed = _allowed(m)
    problems = {}
    seen = 0
    for user in (None, m.buyers[0], m.manager, m.treasurer, m.farmers[0]):
        client.post("/logout")
        if user is not None:
            _login(client, user)
        client.get("/lang/en")
        for url in urls:
            response = client.get(url)
            if response.status_code != 200 or response.mimetype != "text/html":
                continue
            seen += 1
            html = response.get_data(as_text=True)
            assert '<html lang="en">' in html, url
            text = visible(html)
            for value in allowed:
                text = text.replace(value, " ")
            found = [text[max(0, x.start() - 40):x.end() + 40] for x in CODE_WORDS.finditer(text)]
            if found:
                problems[f"{getattr(user, 'email', 'visitor')} {url}"] = found[:6]
    assert seen >= 30, seen
    assert problems == {}, "\n".join(f"{k}: {v}" for k, v in problems.items())


def test_every_page_of_every_role_reads_in_spanish(app, client, world):
    m = world
    urls = _urls(app, m)
    allowed = _allowed(m)
    people = {"visitor": None, "buyer": m.buyers[0], "manager": m.manager,
              "treasurer": m.treasurer, "farmer": m.farmers[0], "farmer2": m.farmers[1]}
    seen = 0
    problems = {}
    for who, user in people.items():
        client.post("/logout")
        if user is not None:
            _login(client, user)
        for url in urls:
            response = client.get(url, headers={"Accept-Language": "es-CO,es;q=0.9"})
            if response.status_code != 200 or response.mimetype != "text/html":
                continue
            seen += 1
            found = offending(response.get_data(as_text=True), allowed)
            if found:
                problems[f"{who} {url}"] = found[:6]
    assert seen >= 40, seen
    assert problems == {}, "\n".join(f"{k}: {v}" for k, v in problems.items())


def _login(client, user):
    from tests.support import PASSWORD
    response = client.post("/login", data={"login": user.email, "password": PASSWORD})
    assert response.status_code == 302
    return True


def test_the_check_finds_codes_and_english():
    html = ("<p>Estado: captured · <span title='sca85'>x</span></p>"
            "<script>var paid = 1;</script><p>Café</p>")
    found = offending(html, set())
    assert len(found) == 2 and "captured" in found[0] and "sca85" in found[1]
    assert offending("<p>Pagado · Confirmado · Café pergamino</p>", set()) == []


@pytest.mark.parametrize("lang, one, three", [
    ("es", "1 conciliada", "3 conciliadas"),
    ("en", "1 matched", "3 matched"),
])
def test_counts_have_plural_forms(app, lang, one, three):
    from flask import render_template_string
    from flask_babel import force_locale
    template = "{{ ngettext('%(num)d matched', '%(num)d matched', n) }}"
    with app.test_request_context(), force_locale(lang):
        assert render_template_string(template, n=1) == one
        assert render_template_string(template, n=3) == three
        days = "{{ ngettext('%(num)d day', '%(num)d days', n) }}"
        assert render_template_string(days, n=1) == ("1 día" if lang == "es" else "1 day")
        assert render_template_string(days, n=2) == ("2 días" if lang == "es" else "2 days")


def test_an_unknown_code_is_never_shown_silently(app):
    from flask_babel import force_locale
    from coop.common.labels import UnknownLabel, label
    with app.test_request_context(), force_locale("es"):
        with pytest.raises(UnknownLabel):
            label("teleported", "order_status")
        assert label("captured", "order_status") == "Pagado"
        assert label("farmer_payable:12", "account") == "Se debe al productor"
        assert label("coffee", "crop") == "Café pergamino"
    app.testing = False
    try:
        with app.test_request_context():
            assert label("missing_thing", "order_status") == "Missing thing"
    finally:
        app.testing = True


def test_chart_of_accounts_has_a_spanish_name_for_every_code(app):
    from flask_babel import force_locale
    from coop.common.labels import label
    from coop.ledger.services import CHART, PERSONAL
    with app.test_request_context(), force_locale("es"):
        for code, (english, _kind, _neg) in {**CHART, **PERSONAL}.items():
            spanish = label(code, "account")
            assert spanish and spanish != code, code
            assert spanish != english, (code, spanish)


def test_the_migration_turns_typed_licit_crops_into_catalogue_crops():
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parent.parent / "migrations/versions/0008_lang_licit_crops.py"
    spec = importlib.util.spec_from_file_location("m0008_lang", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    known = module.known_names()
    for typed, slug in (("Café", "coffee"), (" coffee ", "coffee"), ("CACAO", "cacao"),
                        ("Cocoa", "cacao"), ("Aguacate Hass", "avocado"),
                        ("Maracuyá", "passion-fruit"), ("café pergamino", "coffee")):
        assert known.get(module._key(typed)) == slug, typed
    assert module._key("Yuca") not in known


def test_impact_report_shows_the_licit_crop_in_the_readers_language(app, client, make_coop,
                                                                   make_farmer, login):
    from coop.cooperatives.models import FarmerProfile
    coop = make_coop()
    farmer = make_farmer(coop)
    profile = db.session.scalar(select(FarmerProfile).where(FarmerProfile.user_id == farmer.id))
    plots_services.add_plot(profile, name="La Loma", hectares="2", replaced_crop="coca",
                           illicit_hectares="1", licit_crop="coffee")
    db.session.commit()
    manager = next(x.user for x in coop.memberships if x.role == "manager")
    login(manager)
    start, end = "2000-01-01", utcnow().date().isoformat()
    url = f"/manage/coops/{coop.id}/impact?start={start}&end={end}"
    client.get("/lang/es")
    spanish = visible(client.get(url).get_data(as_text=True))
    assert "Café pergamino" in spanish and "Coffee" not in spanish
    client.get("/lang/en")
    english = visible(client.get(url).get_data(as_text=True))
    assert "Coffee (parchment)" in english
    with pytest.raises(Exception):
        plots_services.add_plot(profile, name="Otra", hectares="1", replaced_crop=None,
                               illicit_hectares="0", licit_crop="Coffee")
    db.session.rollback()
