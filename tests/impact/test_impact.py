"""Impact reports (issue 5, "Impact reports"): every figure on a known scenario, suppression
of small cells in the public version, no farmer identity anywhere, access, CSV, bad periods,
and a constant number of queries whatever the number of farmers."""
from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from coop.auth.models import User
from coop.common.models import utcnow
from coop.cooperatives import services as coop_services
from coop.plots import services as plots_services
from coop.cooperatives.models import FarmerProfile
from coop.extensions import db
from coop.impact import services as impact
from coop.intake import services as intake
from coop.ledger import services as ledger
from coop.payouts import services as payouts
from coop.payouts.models import PayoutLine

TODAY = utcnow().date()
START, END = TODAY - timedelta(days=1), TODAY + timedelta(days=30)
QS = f"start={START.isoformat()}&end={END.isoformat()}"
NAMES = ["Rosalba Quintero", "Hernando Yacumal", "Maria Chilito", "Jairo Pechene",
         "Luz Dary Ipia"]

pytestmark = pytest.mark.usefixtures("ledger_sound")


@pytest.fixture
def scenario(sold, make_farmer, make_coop, make_user):
    """Five families (2 women, 2 men, 1 not recorded) with plots; three sold 50, 100 and
    150 kg of coffee sca85 (farmer 28,000.00/kg, floor 24,000.00, premium 1,800.00); the
    first two were paid 3 and 10 days after intake, the third waits; 100,000.00 of premium
    spent; two buyers."""
    m = sold
    m.farmers += [make_farmer(m.coop), make_farmer(m.coop)]
    plots = [("female", 4, "2", "coca", "1.5", "coffee"),
             ("male", 5, "3", "coca", "3", "cacao"),
             ("female", 3, "1", "cannabis", "0.5", "coffee"),
             ("male", 2, "1.5", None, "0", "coffee"),
             (None, None, "1", None, "0", None)]
    m.identities = []
    for i, (farmer, (gender, size, ha, crop, illicit, licit)) in enumerate(
            zip(m.farmers, plots)):
        profile = coop_services.farmer_profile(m.coop.id, farmer.id)
        profile.gender, profile.household_size = gender, size
        profile.national_id = f"CC-9{i}7731{i}"
        profile.member_number = f"SOCIO-{i}42{i}"
        user = db.session.get(User, farmer.id)
        user.name, user.phone = NAMES[i], f"+57310555{i}{i}{i}{i}"
        plots_services.add_plot(profile, name=f"Finca secreta {i}", hectares=ha,
                               replaced_crop=crop, illicit_hectares=illicit, licit_crop=licit)
        m.identities += [NAMES[i], profile.national_id, profile.member_number, user.phone,
                         user.email, f"Finca secreta {i}"]
    db.session.commit()
    m.intakes = [intake.record_intake(m.manager, m.alloc[i].id, received_kg=kg,
                                      grade="sca85")[0]
                 for i, kg in enumerate(("50", "100", "150"))]
    batch, _ = payouts.create_batch(m.coop, m.treasurer, rail="cash")
    db.session.commit()
    lines = {line.farmer_user_id: line for line in batch.lines}
    recorded = m.intakes[0].recorded_at
    for farmer, days in ((m.farmers[0], 3), (m.farmers[1], 10)):
        payouts.apply_confirmations(batch, m.treasurer,
                                    [(1, lines[farmer.id].id, "paid", f"R{days}")],
                                    now=recorded + timedelta(days=days))
        db.session.commit()
    ledger.post(m.coop, key="premium-spend:school-roof", kind="premium_spend",
                memo="School roof, assembly of March",
                lines=[ledger.debit("premium_fund", 10_000_000),
                       ledger.credit("bank", 10_000_000)])
    db.session.commit()
    m.other_manager = make_user(name="Other manager")
    m.other = make_coop(manager=m.other_manager)
    return m


def _report(m, public=False, start=START, end=END):
    return impact.build(m.coop, impact.Period(start, end), public=public)


def _v(report, section, figure, breakdown=""):
    return report.get(section, figure, breakdown).value


# ---------------------------------------------------------------- each figure

def test_every_figure_of_the_full_report(scenario):
    r = _report(scenario)
    assert _v(r, "families", "enrolled") == 5
    assert _v(r, "families", "enrolled", "female") == 2
    assert _v(r, "families", "enrolled", "male") == 2
    assert _v(r, "families", "enrolled", "unknown") == 1
    assert _v(r, "families", "people") == 14
    assert r.get("families", "people").families == 4
    assert _v(r, "land", "illicit_replaced") == Decimal("5.0")
    assert _v(r, "land", "illicit_replaced", "coca") == Decimal("4.5")
    assert r.get("land", "illicit_replaced", "coca").families == 2
    assert _v(r, "land", "illicit_replaced", "cannabis") == Decimal("0.5")
    assert _v(r, "land", "licit") == Decimal("7.5")
    assert _v(r, "land", "licit", "coffee") == Decimal("4.5")  # one crop of the catalogue, one figure
    assert r.get("land", "licit", "coffee").families == 3
    assert _v(r, "land", "licit", "cacao") == Decimal("3")
    assert _v(r, "sales", "families_selling") == 3
    assert _v(r, "sales", "share_selling") == 60
    assert _v(r, "sales", "volume") == Decimal("300")
    assert _v(r, "sales", "volume", "coffee") == Decimal("300")
    assert _v(r, "sales", "value") == 300 * 3_204_000
    assert _v(r, "income", "licit_income") == 840_000_000
    assert _v(r, "income", "per_household") == 168_000_000
    assert _v(r, "income", "per_selling_household") == 280_000_000
    assert _v(r, "income", "paid") == 420_000_000
    assert _v(r, "prices", "farmer_price", "coffee:sca85") == 2_800_000
    assert _v(r, "prices", "floor", "coffee:sca85") == 2_400_000
    assert _v(r, "prices", "above_floor", "coffee:sca85") == 17  # 16.67 % rounded
    assert _v(r, "premium", "received") == 300 * 180_000
    assert _v(r, "premium", "spent") == 10_000_000
    assert _v(r, "premium", "balance") == 300 * 180_000 - 10_000_000
    assert _v(r, "buyers", "reached") == 2
    assert _v(r, "payment_days", "deliveries_paid") == 2
    assert _v(r, "payment_days", "median") == Decimal("6.5")
    assert _v(r, "payment_days", "worst") == 10
    assert r.days_histogram == [(3, 1), (10, 1)]
    assert _v(r, "payment_days", "waiting") == 1
    assert _v(r, "payment_days", "oldest_waiting") == (END - TODAY).days
    assert not any(f.hidden for f in r.figures)


def test_a_period_before_the_payments_counts_no_payment(scenario):
    r = _report(scenario, start=START, end=TODAY + timedelta(days=5))
    assert _v(r, "payment_days", "deliveries_paid") == 1
    assert _v(r, "payment_days", "worst") == 3
    assert _v(r, "payment_days", "waiting") == 2
    assert _v(r, "income", "paid") == 140_000_000
    earlier = _report(scenario, start=TODAY - timedelta(days=40), end=TODAY - timedelta(days=2))
    assert _v(earlier, "sales", "volume") == 0
    assert _v(earlier, "premium", "received") == 0
    assert _v(earlier, "buyers", "reached") == 0
    assert _v(earlier, "payment_days", "median") is None


def test_a_payment_by_advance_alone_is_paid_on_the_intake_day(scenario):
    from coop.intake.models import Intake
    row = db.session.get(Intake, scenario.intakes[2].id)
    # As if the whole amount had been advanced in cash at the collection point.
    db.session.execute(Intake.__table__.update().where(Intake.id == row.id)
                       .values(advance_minor=row.farmer_amount_minor))
    db.session.commit()
    r = _report(scenario)
    assert r.days_histogram == [(0, 1), (3, 1), (10, 1)]
    assert _v(r, "payment_days", "waiting") == 0
    db.session.execute(Intake.__table__.update().where(Intake.id == row.id)
                       .values(advance_minor=0))
    db.session.commit()


# ---------------------------------------------------------------- suppression

def test_public_report_suppresses_cells_under_five_families(scenario):
    r = _report(scenario, public=True)
    assert not r.get("families", "enrolled").hidden  # 5 families
    for g in ("female", "male", "unknown"):
        assert r.get("families", "enrolled", g).hidden
    assert r.get("land", "illicit_replaced").hidden  # 3 families
    assert r.get("sales", "volume").hidden and r.get("income", "licit_income").hidden
    assert r.get("income", "per_household").hidden
    assert r.get("payment_days", "median").hidden
    assert not r.get("premium", "spent").hidden and not r.get("buyers", "reached").hidden


def test_public_page_shows_small_cells_as_under_five(scenario, client):
    response = client.get(f"/coops/{scenario.coop.slug}/impact?{QS}")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "&lt;5" in body
    assert 'role="img"' in body and "<title id=" in body and "<desc id=" in body
    assert "8.400.000" not in body and "8,400,000" not in body  # the income of 3 families
    rows = list(csv.reader(io.StringIO(
        client.get(f"/coops/{scenario.coop.slug}/impact.csv?{QS}").get_data(as_text=True))))
    by_key = {tuple(row[3:6]): row for row in rows[1:]}
    assert by_key[("families", "enrolled", "female")][6] == "<5"
    assert by_key[("families", "enrolled", "")][6] == "5"
    assert by_key[("sales", "volume", "")][6] == "" and by_key[("sales", "volume", "")][8] == "<5"


def test_a_lone_hidden_part_hides_another_so_it_cannot_be_subtracted(app):
    from coop.cooperatives.models import Cooperative
    r = impact.Report(coop=Cooperative(currency="COP", slug="x"),
                      period=impact.Period(START, END), public=True)
    r.add("families", "enrolled", "", "all", 12, "families", 12)
    r.add("families", "enrolled", "female", "w", 8, "families", 8)
    r.add("families", "enrolled", "male", "m", 3, "families", 3)
    r.add("families", "enrolled", "other", "o", 1, "families", 1)
    r.add("land", "licit", "", "all", Decimal(9), "ha", 9)
    r.add("land", "licit", "coffee", "c", Decimal(7), "ha", 6)
    r.add("land", "licit", "cacao", "k", Decimal(2), "ha", 2)
    r.add("land", "licit", "plantain", "p", Decimal(5), "ha", 5)
    r.add("income", "licit_income", "", "i", 10, "COP", 9)
    r.add("income", "per_household", "", "i", 1, "COP", 9)
    r.add("income", "per_selling_household", "", "i", 1, "COP", 9)
    impact._suppress(r)
    # Two small cells: each already protects the other.
    assert [f.hidden for f in r.rows("families", "enrolled")] == [False, True, True]
    # One small cell: the smallest other part goes with it.
    assert [f.hidden for f in r.rows("land", "licit")] == [False, True, True]
    assert not r.get("families", "enrolled").hidden


# ---------------------------------------------------------------- no identity anywhere

def test_no_farmer_identity_in_any_version_or_csv(scenario, login, client):
    pages = [f"/coops/{scenario.coop.slug}/impact?{QS}",
             f"/coops/{scenario.coop.slug}/impact?{QS}&print=1",
             f"/coops/{scenario.coop.slug}/impact.csv?{QS}"]
    bodies = [client.get(url).get_data(as_text=True) for url in pages]
    login(scenario.manager)
    base = f"/manage/coops/{scenario.coop.id}/impact"
    for url in (f"{base}?{QS}", f"{base}?{QS}&print=1", f"{base}.csv?{QS}"):
        response = client.get(url)
        assert response.status_code == 200, url
        bodies.append(response.get_data(as_text=True))
    assert "10.000.000" in bodies[3] or "10,000,000" in bodies[3] \
        or "100.000,00" in bodies[3] or "100,000.00" in bodies[3]  # premium spent is shown
    for body in bodies:
        for identity in scenario.identities:
            assert identity not in body, identity
        assert "School roof" not in body  # ledger memos are not shown either


# ---------------------------------------------------------------- access

def test_access_public_and_staff(scenario, client, login, make_user):
    coop = scenario.coop
    assert client.get(f"/coops/{coop.slug}/impact").status_code == 200
    assert client.get("/coops/no-such-coop/impact").status_code == 404
    full = f"/manage/coops/{coop.id}/impact"
    assert client.get(full).status_code == 302  # log in first
    login(scenario.treasurer)
    assert client.get(full).status_code == 200
    assert client.get(full + ".csv").status_code == 200
    login(scenario.other_manager)
    assert client.get(full).status_code == 404
    assert client.get(full + ".csv").status_code == 404
    login(scenario.farmers[0])
    assert client.get(full).status_code == 403
    login(scenario.buyers[0])
    assert client.get(full).status_code == 404
    login(scenario.manager)
    page = client.get(f"{full}?{QS}").get_data(as_text=True)
    assert "&lt;5" not in page  # the full version suppresses nothing
    assert f"/manage/coops/{coop.id}/impact" in client.get("/manage").get_data(as_text=True)
    assert f"/coops/{coop.slug}/impact" in client.get(f"/coops/{coop.slug}").get_data(
        as_text=True)


# ---------------------------------------------------------------- CSV

def test_csv_columns_and_units(scenario, login, client):
    login(scenario.manager)
    response = client.get(f"/manage/coops/{scenario.coop.id}/impact.csv?{QS}")
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == ["cooperative", "period_start", "period_end", "section", "figure",
                       "breakdown", "value", "unit", "families"]
    by_key = {tuple(row[3:6]): row for row in rows[1:]}
    assert by_key[("sales", "value", "")][6:8] == ["9612000.00", "COP"]
    assert by_key[("sales", "volume", "")][6:9] == ["300.000", "kg", "3"]
    assert by_key[("land", "illicit_replaced", "coca")][6:9] == ["4.5000", "ha", "2"]
    assert by_key[("prices", "floor", "coffee:sca85")][6:8] == ["24000.00", "COP/kg"]
    assert by_key[("payment_days", "median", "")][6] == "6.5"
    assert by_key[("premium", "spent", "")][6] == "100000.00"
    assert {row[1] for row in rows[1:]} == {START.isoformat()}


# ---------------------------------------------------------------- bad periods

@pytest.mark.parametrize("query, problem", [
    ("start=2025-13-01&end=2025-12-31", "YYYY-MM-DD"),
    ("start=yesterday", "YYYY-MM-DD"),
    ("start=2025-02-30", "YYYY-MM-DD"),
    ("start=1999-12-31", "2000-01-01"),
    ("start=2025-06-01&end=2025-05-01", "must not be before"),
    ("end=" + "9" * 300, "YYYY-MM-DD"),
])
def test_bad_periods_answer_a_clear_message_and_keep_the_input(scenario, client, query,
                                                               problem):
    english = {"Accept-Language": "en"}
    response = client.get(f"/coops/{scenario.coop.slug}/impact?{query}", headers=english)
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert problem in body
    value = query.split("&")[0].split("=", 1)[1]
    assert f'value="{value[:40]}' in body or value in body
    csv_response = client.get(f"/coops/{scenario.coop.slug}/impact.csv?{query}",
                              headers=english)
    assert csv_response.status_code == 422 and problem in csv_response.get_data(as_text=True)


def test_empty_period_fields_take_this_year(scenario, client):
    response = client.get(f"/coops/{scenario.coop.slug}/impact?start=&end=")
    assert response.status_code == 200
    assert f'value="{date(TODAY.year, 1, 1).isoformat()}"' in response.get_data(as_text=True)


def test_spanish_report(scenario, client):
    client.get("/lang/es")
    body = client.get(f"/coops/{scenario.coop.slug}/impact?{QS}").get_data(as_text=True)
    assert "Familias inscritas" in body and "Mujeres" in body
    bad = client.get(f"/coops/{scenario.coop.slug}/impact?start=ayer").get_data(as_text=True)
    assert "AAAA-MM-DD" in bad


# ---------------------------------------------------------------- constant queries

def _bulk(coop, manager, n: int):
    """n farmers, each with a plot, a delivery and a paid payout line, written in bulk."""
    from coop.catalog.models import Crop, Grade
    from coop.intake.models import Intake
    from coop.listings.models import Listing
    from coop.payouts.models import PayoutBatch
    from coop.pools.models import Allocation, Pool
    from coop.pricing import services as pricing
    from coop.cooperatives.models import Plot
    version = pricing.set_price(coop, manager, crop="coffee", grade="sca85", floor="24000",
                                farmer_price="28000", commission_kind="bps", commission="800",
                                premium="1800")
    db.session.flush()
    crop = db.session.scalar(select(Crop).where(Crop.slug == "coffee"))
    grade = db.session.scalar(select(Grade).where(Grade.crop_id == crop.id,
                                                  Grade.code == "sca85"))
    now = utcnow()
    pool = Pool(coop_id=coop.id, crop_id=crop.id, grade_id=grade.id, price_version_id=version.id,
                currency=coop.currency, min_g=1000, max_g=10**9, committed_g=n * 1000,
                closes_at=now, status="confirmed", decided_at=now, created_by_id=manager.id,
                final_price_per_kg_minor=3_204_000, allocated_g=n * 1000, settled_at=now)
    batch = PayoutBatch(coop_id=coop.id, status="closed", currency=coop.currency)
    db.session.add_all([pool, batch])
    db.session.flush()
    base = db.session.scalar(select(db.func.coalesce(db.func.max(User.id), 0))) + 1
    users = [{"id": base + i, "email": f"bulk{base + i}@example.org", "name": f"Bulk {i}",
              "password_hash": "x", "created_at": now} for i in range(n)]
    db.session.execute(User.__table__.insert(), users)
    db.session.execute(FarmerProfile.__table__.insert(), [
        {"id": base + i, "coop_id": coop.id, "user_id": base + i, "member_number": f"B{i}",
         "national_id": f"N{base + i}", "gender": ("female", "male")[i % 2],
         "household_size": 1 + i % 6, "payout_rail": "cash", "payout_account": "",
         "bank_name": "", "joined_on": now} for i in range(n)])
    db.session.execute(Plot.__table__.insert(), [
        {"farmer_id": base + i, "name": "p", "area_m2": 20000, "replaced_crop": "coca",
         "illicit_area_m2": 10000, "licit_crop": "coffee"} for i in range(n)])
    db.session.execute(Listing.__table__.insert(), [
        {"id": base + i, "coop_id": coop.id, "farmer_user_id": base + i, "crop_id": crop.id,
         "grade_id": grade.id, "quantity_g": 1000, "committed_g": 1000, "harvested_on": TODAY,
         "collection_point": "", "notes": "", "status": "sold", "created_at": now,
         "updated_at": now} for i in range(n)])
    db.session.execute(Allocation.__table__.insert(), [
        {"id": base + i, "pool_id": pool.id, "listing_id": base + i, "farmer_user_id": base + i,
         "quantity_g": 1000, "farmer_price_per_kg_minor": 2_800_000,
         "farmer_amount_minor": 2_800_000, "created_at": now} for i in range(n)])
    db.session.execute(Intake.__table__.insert(), [
        {"coop_id": coop.id, "pool_id": pool.id, "allocation_id": base + i,
         "farmer_user_id": base + i, "grade_id": grade.id, "price_version_id": version.id,
         "currency": coop.currency, "received_g": 1000, "accepted_g": 1000, "excess_g": 0,
         "shortfall_g": 0, "farmer_price_per_kg_minor": 2_800_000,
         "buyer_price_per_kg_minor": 3_204_000, "farmer_amount_minor": 2_800_000,
         "sale_minor": 3_204_000, "premium_minor": 180_000, "commission_minor": 224_000,
         "coop_cost_minor": 0, "refund_minor": 0, "advance_minor": 0,
         "share_withholding_minor": 0, "recorded_by_id": manager.id, "recorded_at": now}
        for i in range(n)])
    db.session.execute(PayoutLine.__table__.insert(), [
        {"batch_id": batch.id, "coop_id": coop.id, "farmer_user_id": base + i, "rail": "cash",
         "payee_name": f"Bulk {i}", "national_id": "", "account": "", "bank_name": "",
         "amount_minor": 2_800_000, "currency": coop.currency, "flag": "", "status": "paid",
         "confirmed_at": now + timedelta(days=i % 9), "created_at": now}
        for i in range(n) if i % 3])
    if db.engine.dialect.name == "postgresql":  # ids were given: move the sequences on
        for table in ("users", "farmer_profiles", "listings", "allocations"):
            db.session.execute(db.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                                       f" (SELECT max(id) FROM {table}))"))
    db.session.commit()


def test_the_report_costs_the_same_queries_for_10_and_500_farmers(
        make_coop, client, count_queries):
    counts = []
    for n in (10, 500):
        coop = make_coop()
        manager = next(m.user for m in coop.memberships if m.role == "manager")
        _bulk(coop, manager, n)
        period = impact.Period(START, END)
        with count_queries() as counter:
            report = impact.build(coop, period, public=True)
        assert report.get("families", "enrolled").value == n
        assert report.get("sales", "families_selling").value == n
        assert report.get("land", "illicit_replaced").value == Decimal(n)
        assert report.get("payment_days", "deliveries_paid").value == len(
            [i for i in range(n) if i % 3])
        db.session.commit()
        with count_queries() as page:
            response = client.get(f"/coops/{coop.slug}/impact?{QS}")
        assert response.status_code == 200
        counts.append((counter.count, page.count))
    assert counts[0] == counts[1], counts
    assert counts[0][0] <= 15
