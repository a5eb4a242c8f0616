"""Money pages true at every stage: the manager's pool page after intake, the buyer's
orders, the farmer's sales and deliveries (to deliver -> delivered -> paid)."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from coop.common.money import format_money
from coop.cooperatives.models import FarmerProfile
from coop.extensions import db
from coop.intake import services as intake
from coop.payouts import services as payouts
from coop.pools import services as pools
from coop.pools.models import Order
from tests.support.intake import FARMER, PRICE, order
from tests.support.settle import close_and_settle

pytestmark = pytest.mark.usefixtures("stripe_clean", "ledger_sound")
DECLINED = "pm_card_chargeCustomerFail"


def money(minor, currency="COP"):
    from flask_babel import force_locale
    with force_locale("es"):
        return format_money(minor, currency).replace("\xa0", " ")


def text(response) -> str:
    return strip(response.get_data(as_text=True))


def strip(body: str) -> str:
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", body).replace("&nbsp;", " ").split())


def client_as(app, user):
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = user.get_id()  # "<id>:<session version>"
        session["login_factor"] = "password"
        session["_fresh"] = True
    return client


def _record(m, index, kg, grade="sca85"):
    if kg == "0":
        return intake.record_intake(m.manager, m.alloc[index].id, received_kg=None,
                                    grade=grade, not_delivered=True)[0]
    return intake.record_intake(m.manager, m.alloc[index].id, received_kg=kg, grade=grade)[0]


# ---------------------------------------------------------------- the manager's pool page

def test_before_intake_the_pool_page_says_the_figures_are_expected(app, sold):
    page = text(client_as(app, sold.manager).get(f"/manage/pools/{sold.pool.id}"))
    assert "Previsto: lo que se le deberá a cada productor" in page
    assert "Allocations" not in page and "Asignaciones (3)" in page
    assert money(FARMER * 50) in page


def test_after_a_shortfall_the_pool_page_shows_what_farmers_are_owed_and_buyers_got_back(
        app, sold):
    m = sold
    short = _record(m, 1, "60")        # 100 kg sold, 60 kg delivered
    none = _record(m, 0, "0")          # 50 kg sold, nothing delivered
    db.session.commit()
    assert short.refund_minor == PRICE * 40 and none.refund_minor == PRICE * 50
    page = text(client_as(app, m.manager).get(f"/manage/pools/{m.pool.id}"))
    assert "Entregas (2/3)" in page and "Previsto:" not in page
    # The farmer who delivered 60 of 100 kg: received, accepted, price, net.
    row = page[page.index(m.farmers[1].name):]
    assert row.startswith(f"{m.farmers[1].name} 100 60 60 ")
    assert money(FARMER * 60) in row and money(FARMER * 100) not in page.split("Entregas")[1]
    # The one who delivered nothing is owed nothing, not the allocation figure.
    row = page[page.index(m.farmers[0].name):]
    assert row.startswith(f"{m.farmers[0].name} 50 0 0 ")
    assert money(FARMER * 50) not in page
    # The one not yet weighed is shown as expected.
    assert "Aún no entregado" in page and money(FARMER * 150) in page
    # Each buyer: captured, refunded (pro rata 2:1) and the net, with the reasons.
    refunds = intake.order_refunds(o.id for o in m.orders)
    total = PRICE * 90
    for o in m.orders:
        o = order(o.id)
        assert o.amount_refunded_minor == sum(r.amount_minor for r, _why in refunds[o.id])
        assert money(o.amount_refunded_minor) in page
        assert money(o.amount_captured_minor - o.amount_refunded_minor) in page
    assert sum(order(o.id).amount_refunded_minor for o in m.orders) == total
    assert "faltante (devuelto)" in page and "no entregado (devuelto)" in page
    assert money(total) in page  # the total refunded


# ---------------------------------------------------------------- the buyer's orders

def test_declined_and_withdrawn_orders_show_no_hold_and_failures_fold_away(app, market):
    m = market
    pool = m.open_pool(min_kg="100", max_kg="500")
    for _ in range(2):
        with pytest.raises(Exception):
            pools.place_order(m.buyers[0], pool.id, quantity_kg="30", payment_method=DECLINED)
        db.session.rollback()
    kept = pools.place_order(m.buyers[0], pool.id, quantity_kg="40",
                             payment_method="pm_card_visa")[0]
    gone = pools.place_order(m.buyers[0], pool.id, quantity_kg="20",
                             payment_method="pm_card_visa")[0]
    pools.withdraw_order(m.buyers[0], gone.id)
    db.session.commit()
    statuses = sorted(o.status for o in pools.buyer_orders(m.buyers[0]))
    assert statuses == ["authorized", "failed", "failed", "released"]
    body = client_as(app, m.buyers[0]).get("/my/orders").get_data(as_text=True)
    assert "<details><summary>2 intentos fallidos</summary>" in body
    visible, folded = (strip(part) for part in body.split("<details>"))
    # Only the live order shows a hold; the withdrawn one says it was released.
    assert visible.count("Retenido:") == 1
    assert money(kept.amount_authorized_minor) in visible
    assert money(gone.amount_authorized_minor) not in visible + folded
    assert "Retirado, retención liberada" in visible
    assert "Retenido" not in folded and "No se retuvo nada." in folded
    # The pool's page shows the buyer's own order, and nobody else's.
    page = text(client_as(app, m.buyers[0]).get(f"/pools/{pool.id}"))
    assert "Sus pedidos" in page and money(kept.amount_authorized_minor) in page
    other = text(client_as(app, m.buyers[1]).get(f"/pools/{pool.id}"))
    assert "Su pedido" not in other and money(kept.amount_authorized_minor) not in other


def test_buyer_sees_held_captured_and_each_refund_with_its_reason(app, sold):
    m = sold
    _record(m, 1, "60")
    db.session.commit()
    o = order(m.orders[0].id)
    page = text(client_as(app, m.buyers[0]).get("/my/orders"))
    assert f"Retenido: {money(o.amount_authorized_minor)} → Pagado: " \
           f"{money(o.amount_captured_minor)}" in page
    assert f"Devuelto {money(o.amount_refunded_minor)}" in page
    assert "se entregó menos de lo vendido" in page
    assert f"Pagó {money(o.amount_captured_minor - o.amount_refunded_minor)} en total" in page
    pool_page = text(client_as(app, m.buyers[0]).get(f"/pools/{m.pool.id}"))
    assert "Su pedido" in pool_page and f"Devuelto {money(o.amount_refunded_minor)}" in pool_page


# ---------------------------------------------------------------- the farmer

def test_farmer_moves_from_to_deliver_to_delivered_to_paid(app, sold):
    m = sold
    farmer = m.farmers[2]
    profile = db.session.scalar(select(FarmerProfile).where(FarmerProfile.user_id == farmer.id))
    profile.payout_rail, profile.payout_account = "nequi", "3001234567"
    db.session.commit()
    client = client_as(app, farmer)
    due = intake.delivery_due(m.pool)
    for url in ("/my/deliveries", "/my/sales"):
        page = text(client.get(url))
        assert "Por entregar" in page and "Entregue 150 kg" in page, url
        assert "Se le deberá" in page or "You will be owed" in page
        assert money(FARMER * 150) in page
    deliveries = text(client.get("/my/deliveries"))
    from flask_babel import force_locale, format_date
    with app.test_request_context(), force_locale("es_CO"):
        assert format_date(due) in deliveries
    assert "Mis entregas" in text(client.get("/my/listings"))  # in the farmer's menu

    rec = _record(m, 2, "140")
    db.session.commit()
    for url in ("/my/deliveries", "/my/sales"):
        page = text(client.get(url))
        assert "Entregue 150 kg" not in page, url
        assert "140 kg aceptados" in page and money(FARMER * 140) in page
        assert f"La cooperativa le debe {money(rec.net_minor)}" in page
        assert f"/my/statements/{rec.id}" in client.get(url).get_data(as_text=True)

    batch, _ = payouts.create_batch(m.coop, m.treasurer, rail="nequi")
    db.session.commit()
    line = batch.lines[0]
    assert "En camino por Nequi" in text(client.get("/my/deliveries"))
    payouts.apply_confirmations(batch, m.treasurer, [(2, line.id, "paid", "NQ-778899")])
    db.session.commit()
    for url in ("/my/deliveries", "/my/sales"):
        page = text(client.get(url))
        assert "Pagado el " in page and "por Nequi, ref. NQ-778899" in page, url
        assert "La cooperativa le debe" not in page


def test_a_farmer_who_delivered_nothing_is_told_so(app, sold):
    _record(sold, 0, "0")
    db.session.commit()
    page = text(client_as(app, sold.farmers[0]).get("/my/deliveries"))
    assert "No entregado" in page and "no se le debe nada" in page
    assert money(FARMER * 50) not in page


# ---------------------------------------------------------------- queries do not grow

def _count(app, count_queries, user, url):
    client = client_as(app, user)
    client.get(url)  # warm
    with count_queries() as counter:
        assert client.get(url).status_code == 200
    return counter.count


def test_money_pages_queries_do_not_grow_with_rows(app, market, count_queries, make_listing):
    m = market

    def one_round(kg_a, kg_b):
        pool = m.open_pool(min_kg="10", max_kg="60")
        a = pools.place_order(m.buyers[0], pool.id, quantity_kg=kg_a,
                              payment_method="pm_card_visa")[0]
        pools.place_order(m.buyers[0], pool.id, quantity_kg=kg_b,
                          payment_method="pm_card_visa")
        close_and_settle(pool.id)
        allocations = pools.pool_allocations(pool.id)
        intake.record_intake(m.manager, allocations[0].id, received_kg="1", grade="sca85")
        db.session.commit()
        return pool, a

    pool, _ = one_round("10", "10")
    farmer = m.farmers[0]
    urls = [(m.buyers[0], "/my/orders"), (farmer, "/my/deliveries"), (farmer, "/my/sales"),
            (m.manager, f"/manage/pools/{pool.id}")]
    before = {url: _count(app, count_queries, who, url) for who, url in urls}
    for _ in range(2):
        bigger, _ = one_round("20", "15")
    after = {url: _count(app, count_queries, who, url) for who, url in urls}
    after[f"/manage/pools/{pool.id}"] = _count(app, count_queries, m.manager,
                                                f"/manage/pools/{bigger.id}")
    assert after == before


def test_payout_lines_pay_deliveries_oldest_first(app, sold):
    m = sold
    farmer = m.farmers[2]
    pool = m.open_pool(min_kg="10", max_kg="100")
    pools.place_order(m.buyers[0], pool.id, quantity_kg="60", payment_method="pm_card_visa")
    close_and_settle(pool.id)
    second = next(a for a in pools.pool_allocations(pool.id) if a.farmer_user_id == farmer.id)
    first = _record(m, 2, "150")
    db.session.commit()
    batch, _ = payouts.create_batch(m.coop, m.treasurer)
    line = next(ln for ln in batch.lines if ln.farmer_user_id == farmer.id)
    assert line.amount_minor == first.net_minor
    payouts.apply_confirmations(batch, m.treasurer, [(2, line.id, "paid", "REF-1")])
    later = intake.record_intake(m.manager, second.id, received_kg="10", grade="sca85")[0]
    db.session.commit()
    stages = {d.allocation.id: (d.stage, d.line.reference if d.line else None)
              for d in intake.farmer_deliveries(farmer)}
    assert stages[m.alloc[2].id] == ("paid", "REF-1")
    assert stages[second.id] == ("delivered", None)
    batch2, _ = payouts.create_batch(m.coop, m.treasurer)
    db.session.commit()
    stages = {d.allocation.id: d.stage for d in intake.farmer_deliveries(farmer)}
    assert stages == {m.alloc[2].id: "paid", second.id: "on_its_way"}
    assert later.net_minor == next(ln.amount_minor for ln in batch2.lines
                                   if ln.farmer_user_id == farmer.id)
