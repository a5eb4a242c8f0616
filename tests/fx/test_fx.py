"""The buyer's currency (issue 14, part 3): rates fetched from a real HTTP server on loopback
(ECB XML, JSON, CSV), stored per day once, converted exactly, never stale; indicative amounts
on the pool pages, the supply page and the pool JSON, with their rate and date."""
from __future__ import annotations

import http.server
import threading
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from coop.auth import services as auth_services
from coop.common.models import utcnow
from coop.extensions import db
from coop.fx import services as fx
from coop.fx import tasks
from coop.fx.models import ExchangeRate

ECB = """<?xml version="1.0" encoding="UTF-8"?>
<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01"
    xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">
  <gesmes:subject>Reference rates</gesmes:subject>
  <gesmes:Sender><gesmes:name>European Central Bank</gesmes:name></gesmes:Sender>
  <Cube><Cube time='{day}'>
    <Cube currency='USD' rate='1.0500'/><Cube currency='JPY' rate='161.87'/>
  </Cube></Cube>
</gesmes:Envelope>"""


def _json(day, cop="4000", pen="4.00"):
    return ('{"date": "%s", "base": "EUR", "rates": {"COP": "%s", "PEN": "%s", '
            '"USD": 1.05}}' % (day, cop, pen))


@pytest.fixture
def rates_server(tmp_path):
    """A real HTTP server on 127.0.0.1 serving the files written into its folder."""
    folder = Path(tmp_path)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(folder), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    class Served:
        def put(self, name, text):
            (folder / name).write_text(text, encoding="utf-8")
            return f"http://127.0.0.1:{server.server_port}/{name}"
    yield Served()
    server.shutdown()
    server.server_close()


@pytest.fixture
def today():
    return utcnow().date()


@pytest.fixture
def source(app):
    """Sets MINGA_FX_SOURCE for the test."""
    before = app.config.get("MINGA_FX_SOURCE")

    def use(url):
        app.config["MINGA_FX_SOURCE"] = url
        return url
    yield use
    app.config["MINGA_FX_SOURCE"] = before


def _count():
    return db.session.scalar(select(func.count()).select_from(ExchangeRate))


# ---------------------------------------------------------------- fetching and storing

def test_fetch_over_http_stores_once(app, rates_server, source, today):
    source(rates_server.put("rates.json", _json(today)))
    first = fx.fetch()
    assert (first.added, first.changed) == (3, 0) and first.days == (today,)
    again = fx.fetch()
    assert (again.added, again.changed, again.unchanged) == (0, 0, 3)
    assert _count() == 3
    row = db.session.scalar(select(ExchangeRate).where(ExchangeRate.quote == "COP"))
    assert (row.base, row.rate, row.day) == ("EUR", "4000", today)
    # The source republishes the day corrected: the stored rate follows, still one row.
    source(rates_server.put("rates.json", _json(today, cop="4010.5")))
    corrected = fx.fetch()
    assert (corrected.added, corrected.changed) == (0, 1)
    assert fx.rate_on("EUR", "COP", today) == (Decimal("4010.5"), today)
    assert _count() == 3


def test_ecb_daily_xml_and_csv(app, rates_server, today):
    ecb = rates_server.put("eurofxref-daily.xml", ECB.format(day=today.isoformat()))
    fx.fetch(ecb)
    assert fx.rate_on("EUR", "USD", today) == (Decimal("1.05"), today)
    csv_url = rates_server.put("rates.csv", f"date,base,quote,rate\n{today},USD,PEN,3.75\n"
                                            f"{today},USD,COP,3900.25\n")
    fx.fetch(csv_url)
    assert fx.rate_on("USD", "PEN", today) == (Decimal("3.75"), today)
    assert _count() == 4


def test_cli_fx_fetch(app, rates_server, source, today):
    source(rates_server.put("rates.json", _json(today)))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["fx-fetch"])
    assert result.exit_code == 0, result.output
    assert "3 added" in result.output
    result = runner.invoke(args=["fx-fetch"])
    assert "0 added" in result.output and "3 unchanged" in result.output
    missing = runner.invoke(args=["fx-fetch", "--source",
                                  rates_server.put("x", "")[:-1] + "nothing-here.json"])
    assert missing.exit_code == 1 and "could not be read" in missing.output
    assert _count() == 3


@pytest.mark.parametrize("body", ["", "<html>nope</html>", '{"rates": 5}', "a,b\n1,2\n",
                                  '{"date": "2026-13-01", "base": "EUR", "rates": {"COP": 1}}',
                                  '{"date": "2026-12-01", "base": "EUR", "rates": {"COP": -1}}',
                                  '{"date": "2026-12-01", "base": "EURO", "rates": {"COP": 1}}',
                                  '<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'])
def test_unreadable_sources_store_nothing(app, rates_server, body):
    with pytest.raises(fx.RatesUnavailable):
        fx.fetch(rates_server.put("bad.txt", body))
    assert _count() == 0


def test_no_source_configured(app, source):
    source("")
    with pytest.raises(fx.RatesUnavailable):
        fx.fetch()
    from coop.fx import tasks
    assert tasks.enqueue_fetch() == 0


def test_daily_job_fetches(app, rates_server, source, today):
    from coop.fx import tasks
    from coop.jobs import services as jobs
    source(rates_server.put("rates.json", _json(today)))
    assert tasks.enqueue_fetch() == 1
    assert tasks.enqueue_fetch() == 1  # the same key: one job
    db.session.commit()
    outcomes = jobs.drain()
    assert [o.status for o in outcomes] == ["done"]
    assert _count() == 3


# ---------------------------------------------------------------- fetches at once (threads)

FETCHERS = 6


def _fetch_at_once(app, monkeypatch, urls) -> tuple[list, list]:
    """Each url fetched by its own thread (its own app context and connection), all at once:
    every thread has read its source before any stores, so all store the same day together,
    as two Celery workers, or the job and `flask fx-fetch`, would. Returns (results, errors)."""
    read, read_all = fx.read_source, threading.Barrier(len(urls))

    def read_then_wait(source=None):
        got = read(source)
        read_all.wait(timeout=30)
        return got
    monkeypatch.setattr(fx, "read_source", read_then_wait)
    results, errors, fetch = [], [], fx.fetch

    def fetch_noted(source=None):  # the job's task calls it too
        results.append(fetch(source))
        return results[-1]
    monkeypatch.setattr(fx, "fetch", fetch_noted)
    start = threading.Barrier(len(urls))

    def run(url):
        with app.app_context():
            try:
                db.session.connection()
                start.wait(timeout=30)
                fx.fetch(url) if url else tasks.fetch()
            except Exception as exc:   # shown by the assertion
                errors.append(f"{type(exc).__name__}: {exc}")
            finally:
                db.session.remove()

    db.session.commit()
    threads = [threading.Thread(target=run, args=(url,)) for url in urls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    monkeypatch.undo()
    db.session.expire_all()
    return results, errors


def test_fetches_at_once_store_each_day_s_pair_once(app, rates_server, source, today,
                                                    monkeypatch):
    url = source(rates_server.put("rates.json", _json(today)))
    # Five fetches of the source, and the periodic job's task (MINGA_FX_SOURCE) with them.
    results, errors = _fetch_at_once(app, monkeypatch, [url] * (FETCHERS - 1) + [None])
    assert errors == []
    assert len(results) == FETCHERS
    assert all(r.added + r.changed + r.unchanged == 3 for r in results)
    assert sum(r.added for r in results) == 3 and sum(r.changed for r in results) == 0
    rows = list(db.session.execute(select(ExchangeRate.day, ExchangeRate.base,
                                          ExchangeRate.quote, ExchangeRate.rate)))
    assert sorted(rows) == [(today, "EUR", "COP", "4000"), (today, "EUR", "PEN", "4"),
                            (today, "EUR", "USD", "1.05")]
    assert fx.rate_on("EUR", "COP", today) == (Decimal("4000"), today)
    assert fx.rate_on("COP", "EUR", today)[0] == Decimal(1) / Decimal(4000)
    again = fx.fetch(url)
    assert (again.added, again.changed, again.unchanged) == (0, 0, 3)


def test_a_correction_fetched_while_the_first_fetch_stores_keeps_one_row(
        app, rates_server, source, today, monkeypatch):
    first = rates_server.put("rates.json", _json(today))
    corrected = rates_server.put("corrected.json", _json(today, cop="4010.5"))
    results, errors = _fetch_at_once(app, monkeypatch, [first, corrected] * (FETCHERS // 2))
    assert errors == []
    assert len(results) == FETCHERS
    assert _count() == 3
    cop = db.session.scalar(select(ExchangeRate.rate).where(ExchangeRate.quote == "COP"))
    assert cop in ("4000", "4010.5")
    assert fx.rate_on("EUR", "COP", today) == (Decimal(cop), today)
    assert fx.rate_on("EUR", "PEN", today) == (Decimal("4"), today)


# ---------------------------------------------------------------- rates and conversions

def _store(day, pairs):
    fx.store([fx.Rate(day, b, q, Decimal(r)) for b, q, r in pairs], "test")
    db.session.commit()


def test_rate_on_direct_inverse_cross_and_age(app, today):
    _store(today - timedelta(days=1), [("EUR", "COP", "4000"), ("EUR", "USD", "1.25")])
    _store(today, [("EUR", "PEN", "4")])
    assert fx.rate_on("EUR", "COP", today) == (Decimal("4000"), today - timedelta(days=1))
    assert fx.rate_on("COP", "EUR", today) == (Decimal("0.00025"), today - timedelta(days=1))
    # COP to USD through EUR: 1.25 / 4000, dated by the older rate.
    assert fx.rate_on("COP", "USD", today) == (Decimal("0.0003125"),
                                               today - timedelta(days=1))
    assert fx.rate_on("PEN", "USD", today)[0] == Decimal("0.3125")
    assert fx.rate_on("EUR", "GBP", today) is None
    # Older than MINGA_FX_MAX_AGE_DAYS (3): no conversion rather than a stale one.
    assert fx.rate_on("EUR", "COP", today + timedelta(days=2)) is not None  # 3 days old
    assert fx.rate_on("EUR", "COP", today + timedelta(days=3)) is None  # 4 days old
    # A rate of a day after the one asked about is not used for it.
    assert fx.rate_on("EUR", "PEN", today - timedelta(days=1)) is None


def test_indicative_is_exact_and_rounded_half_up(app, today):
    _store(today, [("EUR", "COP", "4000"), ("EUR", "USD", "1.05")])
    found = fx.indicative(3_204_000, "COP", "EUR", today)  # 32,040.00 COP
    assert (found.amount_minor, found.currency, found.rate, found.on) == (
        801, "EUR", Decimal("0.00025"), today)
    assert found.readable_rate == ("EUR", Decimal("4000"), "COP")
    assert fx.indicative(1999, "COP", "EUR", today).amount_minor == 0  # 0.0049975 EUR
    assert fx.indicative(2000, "COP", "EUR", today).amount_minor == 1  # 0.005: half up
    assert fx.indicative(100_000, "COP", "USD", today).amount_minor == 26  # 0.2625 USD
    assert fx.indicative(100, "COP", "COP", today) is None
    assert fx.indicative(100, "COP", None, today) is None
    assert fx.indicative(100, "COP", "GBP", today) is None


def test_rates_cache_sees_a_new_fetch(app, today):
    _store(today, [("EUR", "COP", "4000")])
    assert fx.rate_on("EUR", "COP", today)[0] == Decimal("4000")
    _store(today, [("EUR", "COP", "4100")])
    assert fx.rate_on("EUR", "COP", today)[0] == Decimal("4100")


# ---------------------------------------------------------------- the buyer's pages

def _buyer_in(user, currency):
    auth_services.update_preferences(user, display_currency=currency)
    db.session.commit()


def test_display_currency_in_account(client, login, make_buyer, make_user):
    buyer = make_buyer()
    login(buyer)
    page = client.get("/account").get_data(as_text=True)
    assert 'name="display_currency"' in page
    response = client.post("/account/currency", data={"display_currency": "EUR"})
    assert response.status_code == 302
    db.session.expire_all()
    assert buyer.display_currency == "EUR"
    response = client.post("/account/currency", data={"display_currency": "GBP"})
    assert response.status_code == 302
    db.session.expire_all()
    assert buyer.display_currency == "EUR"  # refused, unchanged
    client.post("/account/currency", data={"display_currency": ""})
    db.session.expire_all()
    assert buyer.display_currency is None
    # Not a buyer: no currency to choose.
    login(make_user())
    assert client.post("/account/currency", data={"display_currency": "EUR"}).status_code == 403
    client.post("/logout")
    assert client.post("/account/currency", data={"display_currency": "EUR"}).status_code \
        == 302


def test_pool_page_shows_indicative_amount(client, login, market, today):
    pool = market.open_pool()
    buyer = market.buyers[0]
    _store(today, [("EUR", "COP", "4000"), ("EUR", "USD", "1.25")])
    login(buyer)
    client.get("/lang/en")
    page = client.get(f"/pools/{pool.id}").get_data(as_text=True)
    assert "Indicative" not in page  # no display currency chosen: nothing converted
    _buyer_in(buyer, "EUR")
    page = client.get(f"/pools/{pool.id}").get_data(as_text=True)
    assert "Indicative: about €8.01 per kg, at 1 EUR = 4,000 COP" in page
    assert "You pay in COP." in page
    _buyer_in(buyer, "USD")  # through EUR: 32,040 x 1.25 / 4000 = 10.0125
    page = client.get(f"/pools/{pool.id}").get_data(as_text=True)
    assert "about $10.01 per kg, at 1 USD = 3,200 COP" in page
    index = client.get("/pools").get_data(as_text=True)
    assert "about $10.01 per kg" in index


def test_pool_page_in_spanish_and_stale_rate(client, login, market, today):
    pool = market.open_pool()
    buyer = market.buyers[0]
    _buyer_in(buyer, "EUR")
    _store(today - timedelta(days=4), [("EUR", "COP", "4000")])
    login(buyer)
    client.get("/lang/es-CO")
    page = client.get(f"/pools/{pool.id}").get_data(as_text=True)
    assert "Indicativo" not in page and "ndicativ" not in page  # 4 days old: not shown
    _store(today - timedelta(days=2), [("EUR", "COP", "4000.5")])
    page = client.get(f"/pools/{pool.id}").get_data(as_text=True)
    assert "Indicativo: unos 8,01" in page, page[page.find("breakdown"):][:2000]
    assert "1 EUR = 4.000,5 COP" in page


def test_supply_page_shows_the_rates(client, login, market, today):
    buyer = market.buyers[0]
    _store(today, [("EUR", "COP", "4000")])
    login(buyer)
    client.get("/lang/en")
    assert "Indicative rates" not in client.get("/supply").get_data(as_text=True)
    _buyer_in(buyer, "EUR")
    page = client.get("/supply").get_data(as_text=True)
    assert "Indicative rates for your currency: 1 EUR = 4,000 COP" in page


def test_pool_page_query_count_does_not_grow_with_rates(client, login, market, today,
                                                         count_queries):
    pool = market.open_pool()
    buyer = market.buyers[0]
    _buyer_in(buyer, "EUR")
    _store(today, [("EUR", "COP", "4000")])
    login(buyer)
    client.get(f"/pools/{pool.id}")
    with count_queries() as few:
        client.get(f"/pools/{pool.id}")
    _store(today - timedelta(days=1), [("EUR", c, "2") for c in
                                       ("AUD", "CAD", "CHF", "GBP", "JPY", "NOK", "SEK")])
    client.get(f"/pools/{pool.id}")
    with count_queries() as many:
        client.get(f"/pools/{pool.id}")
    assert many.count == few.count


# ---------------------------------------------------------------- the API

def test_pool_json_and_fx_rates_api(client, market, token, today):
    pool = market.open_pool()
    buyer = market.buyers[0]
    headers = token(buyer)
    body = client.get(f"/api/v1/pools/{pool.id}", headers=headers).get_json()
    assert body["price_per_kg_minor"] == 3_204_000 and body["currency"] == "COP"
    assert body["indicative_price_per_kg_minor"] is None and body["fx_rate"] is None
    response = client.patch("/api/v1/me", json={"display_currency": "EUR"}, headers=headers)
    assert response.status_code == 200 and response.get_json()["display_currency"] == "EUR"
    assert client.patch("/api/v1/me", json={"display_currency": "XXX"},
                        headers=headers).status_code == 422
    body = client.get(f"/api/v1/pools/{pool.id}", headers=headers).get_json()
    assert body["indicative_price_per_kg_minor"] is None  # no rate yet
    _store(today, [("EUR", "COP", "4000")])
    body = client.get(f"/api/v1/pools/{pool.id}", headers=headers).get_json()
    assert (body["indicative_price_per_kg_minor"], body["indicative_currency"],
            body["fx_rate"], body["fx_rate_date"]) == (801, "EUR", "0.00025",
                                                       today.isoformat())
    listed = client.get("/api/v1/pools", headers=headers).get_json()["items"]
    assert listed[0]["indicative_price_per_kg_minor"] == 801
    rates = client.get("/api/v1/fx-rates", headers=headers).get_json()
    assert rates["items"] == [{"day": today.isoformat(), "base": "EUR", "quote": "COP",
                               "rate": "4000"}]
    assert client.get("/api/v1/fx-rates").status_code == 401
