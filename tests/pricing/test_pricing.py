from datetime import timedelta

import pytest

from coop.common.errors import ValidationFailed
from coop.common.models import utcnow
from coop.extensions import db
from coop.pools import services as pools
from coop.pricing import services as pricing
from coop.pricing.models import PriceVersion


def _price(coop, user, **kw):
    args = dict(crop="coffee", grade="sca85", floor="24000", farmer_price="28000",
                commission_kind="bps", commission="800", premium="1800", tiers_text="")
    args.update(kw)
    return pricing.set_price(coop, user, **args)


def test_buyer_price_is_farmer_plus_commission_plus_premium(make_coop):
    coop = make_coop()
    manager = coop.memberships[0].user
    version = _price(coop, manager)
    b = pricing.highest(version)
    assert (b.farmer, b.commission, b.premium) == (2_800_000, 224_000, 180_000)
    assert b.buyer == 2_800_000 + 224_000 + 180_000
    per_kg = _price(coop, manager, commission_kind="per_kg", commission="1500.50")
    assert pricing.highest(per_kg).commission == 150_050


def test_farmer_price_below_floor_is_refused(make_coop):
    coop = make_coop()
    with pytest.raises(ValidationFailed) as err:
        _price(coop, coop.memberships[0].user, farmer_price="23999.99")
    assert err.value.code == "below_floor"
    db.session.rollback()
    assert db.session.query(PriceVersion).count() == 0


@pytest.mark.parametrize("field,value", [("farmer_price", "-1"), ("premium", "abc"),
                                         ("floor", ""), ("commission", "10001"),
                                         ("farmer_price", "1.001"), ("premium", "1e30")])
def test_bad_amounts_are_refused(make_coop, field, value):
    coop = make_coop()
    with pytest.raises(ValidationFailed) as err:
        _price(coop, coop.memberships[0].user, **{field: value})
    assert field in err.value.fields


def test_tiers_lower_only_the_commission(make_coop):
    coop = make_coop()
    version = _price(coop, coop.memberships[0].user, tiers_text="1000 600\n3000 400")
    low, mid, high = (pricing.breakdown(version, g) for g in (0, 1_000_000, 3_000_000))
    assert low.farmer == mid.farmer == high.farmer == 2_800_000
    assert low.premium == mid.premium == high.premium == 180_000
    assert low.commission > mid.commission > high.commission == 112_000
    assert pricing.breakdown(version, 999_999).commission == low.commission


@pytest.mark.parametrize("tiers", ["1000 900", "1000 600\n2000 700", "1000", "x 500",
                                   "1000 600\n1000 500"])
def test_tiers_that_do_not_lower_the_commission_are_refused(make_coop, tiers):
    coop = make_coop()
    with pytest.raises(ValidationFailed) as err:
        _price(coop, coop.memberships[0].user, tiers_text=tiers)
    assert "tiers" in err.value.fields


def test_changes_are_kept_with_who_and_when(make_coop):
    coop = make_coop()
    manager = coop.memberships[0].user
    _price(coop, manager)
    _price(coop, manager, farmer_price="29000", note="harvest peak")
    db.session.commit()
    history = pricing.history(coop.id)
    assert [v.version for v in history] == [2, 1]
    assert all(v.changed_by_id == manager.id and v.changed_at for v in history)
    assert pricing.current(coop.id, history[0].crop_id, history[0].grade_id).version == 2


def test_open_pool_keeps_the_prices_it_opened_with(market):
    pool = market.open_pool()
    before = pools.current_price(pool).buyer
    _price(market.coop, market.manager, farmer_price="30000")
    db.session.commit()
    db.session.refresh(pool)
    assert pools.current_price(pool).buyer == before
    newer = market.open_pool(max_kg="50", min_kg="10")
    assert pools.current_price(newer).farmer == 3_000_000


def test_price_page_shows_breakdown_and_refuses_below_floor(market, login):
    client = login(market.manager)
    page = client.get(f"/manage/coops/{market.coop.id}/prices")
    assert page.status_code == 200 and b"28.000" in page.data
    response = client.post(f"/manage/coops/{market.coop.id}/prices", data={
        "product": "coffee/sca85", "floor": "24000", "farmer_price": "100",
        "commission_kind": "bps", "commission": "800", "premium": "1800"})
    assert response.status_code == 422
    assert b'value="100"' in response.data  # the user's input is kept
    assert pricing.current(market.coop.id, market.listings[0].crop_id,
                           market.listings[0].grade_id).farmer_price_per_kg_minor == 2_800_000


def test_pricing_pages_are_for_the_coops_own_staff(market, login, make_coop, make_farmer):
    other = make_coop()
    other_manager = other.memberships[0].user
    client = login(other_manager)
    assert client.get(f"/manage/coops/{market.coop.id}/prices").status_code == 404
    client = login(market.farmers[0])
    assert client.get(f"/manage/coops/{market.coop.id}/prices").status_code == 403
    client = login(market.treasurer)
    assert client.get(f"/manage/coops/{market.coop.id}/prices").status_code == 200
    assert client.post(f"/manage/coops/{market.coop.id}/prices",
                       data={"product": "coffee/sca85"}).status_code == 403


def test_closing_time_is_at_most_seven_days(market):
    with pytest.raises(ValidationFailed):
        market.open_pool(days=8)
    with pytest.raises(ValidationFailed):
        pools.open_pool(market.coop, market.manager, crop="coffee", grade="sca85",
                        min_kg="1", max_kg="2", closes_at=utcnow() - timedelta(minutes=1))
