"""Member shares: settings, the register, cash payments, withholding until paid, redemption."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from coop.common.errors import Conflict, NotFound, ValidationFailed
from coop.cooperatives import finance
from coop.extensions import db
from coop.intake import services as intake
from coop.ledger import services as ledger
from coop.shares import services as shares
from coop.shares.models import ShareAccount, ShareMovement
from tests.support.intake import FARMER

pytestmark = pytest.mark.usefixtures("ledger_sound")

PAR = 5_000_000  # 50,000.00 COP a share


@pytest.fixture
def coop(make_coop, make_user, make_farmer):
    class World:
        pass
    w = World()
    w.treasurer = make_user(name="Tesorera")
    w.coop = make_coop(treasurer=w.treasurer)
    w.manager = next(x.user for x in w.coop.memberships if x.role == "manager")
    w.farmers = [make_farmer(w.coop) for _ in range(2)]
    _policy(w.coop, w.manager, par=PAR, min_shares=2, withholding_bps=1000)
    return w


def _policy(coop, user, *, par=PAR, min_shares=2, withholding_bps=1000, advance_bps=0):
    finance.update_settings(coop, user, par_minor=par, min_shares=min_shares,
                            withholding_bps=withholding_bps, advance_bps=advance_bps)
    db.session.commit()


def _account(w, i=0):
    db.session.expire_all()
    return shares.account_for(w.coop, w.farmers[i].id)


def test_withholding_takes_the_percentage_until_the_subscription_is_paid(coop):
    farmer = coop.farmers[0].id
    # 2 shares x 50,000.00 = 100,000.00 to pay; 10% of each amount owed
    got = []
    for n, owed in enumerate((40_000_000, 40_000_000, 40_000_000, 40_000_000)):
        # what the farmer is owed first (as an intake would), then the withholding
        ledger.post(coop.coop, key=f"owed-{n}", kind="test",
                    lines=[ledger.debit("bank", owed),
                           ledger.credit(ledger.farmer_payable(farmer), owed)])
        got.append(shares.withhold(coop.coop, farmer, owed, key=f"w-{n}"))
        db.session.commit()
    assert got == [4_000_000, 4_000_000, 2_000_000, 0]  # then it stops
    acc = _account(coop)
    assert (acc.subscribed_shares, acc.paid_minor) == (2, 2 * PAR)
    assert shares.unpaid_minor(coop.coop, acc) == 0
    assert ledger.balance(coop.coop, ledger.share_capital(farmer)) == 2 * PAR
    assert ledger.balance(coop.coop, ledger.farmer_payable(farmer)) == 160_000_000 - 2 * PAR
    # the same key again: the first amount, nothing posted twice
    assert shares.withhold(coop.coop, farmer, 40_000_000, key="w-0") == 4_000_000
    assert db.session.scalar(select(func.count(ShareMovement.id))) == 3
    assert ledger.check() == []


def test_no_withholding_without_par_percentage_or_membership(coop, make_user):
    _policy(coop.coop, coop.manager, withholding_bps=0)
    assert shares.withhold(coop.coop, coop.farmers[0].id, 10_000_000, key="a") == 0
    _policy(coop.coop, coop.manager, par=0)
    assert shares.withhold(coop.coop, coop.farmers[0].id, 10_000_000, key="b") == 0
    _policy(coop.coop, coop.manager)
    outsider = make_user()
    assert shares.withhold(coop.coop, outsider.id, 10_000_000, key="c") == 0
    assert db.session.scalar(select(func.count(ShareMovement.id))) == 0


def test_cash_payment_posts_to_cash_or_bank_and_never_past_the_subscription(coop):
    farmer = coop.farmers[1].id
    shares.pay(coop.coop, coop.treasurer, farmer, 3_000_000, via="cash", key="p1")
    shares.pay(coop.coop, coop.treasurer, farmer, 1_000_000, via="bank", key="p2")
    db.session.commit()
    assert ledger.balance(coop.coop, "cash") == 3_000_000
    assert ledger.balance(coop.coop, "bank") == 1_000_000
    assert ledger.balance(coop.coop, ledger.share_capital(farmer)) == 4_000_000
    again = shares.pay(coop.coop, coop.treasurer, farmer, 3_000_000, via="cash", key="p1")
    assert again.kind == "cash" and _account(coop, 1).paid_minor == 4_000_000
    with pytest.raises(ValidationFailed) as err:
        shares.pay(coop.coop, coop.treasurer, farmer, 2 * PAR - 4_000_000 + 1, key="p3")
    assert err.value.code == "above_subscription"
    for bad in (0, -5, 1.5, True):
        with pytest.raises(ValidationFailed):
            shares.pay(coop.coop, coop.treasurer, farmer, bad, key=f"bad-{bad}")
    with pytest.raises(ValidationFailed):
        shares.pay(coop.coop, coop.treasurer, farmer, 1, via="crypto", key="p4")
    db.session.rollback()
    shares.set_subscription(coop.coop, coop.treasurer, farmer, 3)
    shares.pay(coop.coop, coop.treasurer, farmer, 3 * PAR - 4_000_000, key="p5")
    db.session.commit()
    assert shares.unpaid_minor(coop.coop, _account(coop, 1)) == 0
    assert ledger.check() == []


def test_subscription_rules(coop, make_user):
    farmer = coop.farmers[0].id
    with pytest.raises(ValidationFailed):
        shares.set_subscription(coop.coop, coop.treasurer, farmer, 1)  # below the minimum 2
    shares.set_subscription(coop.coop, coop.treasurer, farmer, 4)
    shares.pay(coop.coop, coop.treasurer, farmer, 3 * PAR, key="p")
    with pytest.raises(ValidationFailed):
        shares.set_subscription(coop.coop, coop.treasurer, farmer, 2)  # 3 already paid
    with pytest.raises(NotFound):
        shares.set_subscription(coop.coop, coop.treasurer, make_user().id, 2)  # not a member
    db.session.rollback()


def test_redemption_at_par_is_owed_to_the_member_and_stops_withholding(coop):
    farmer = coop.farmers[0].id
    shares.pay(coop.coop, coop.treasurer, farmer, 6_000_000, key="p")
    db.session.commit()
    acc = shares.redeem(coop.coop, coop.treasurer, farmer, note="moves to the city")
    db.session.commit()
    acc = _account(coop)
    assert (acc.status, acc.redeemed_minor, acc.capital_minor) == ("redeemed", 6_000_000, 0)
    assert ledger.balance(coop.coop, ledger.share_capital(farmer)) == 0
    assert ledger.balance(coop.coop, ledger.farmer_payable(farmer)) == 6_000_000
    with pytest.raises(Conflict) as err:
        shares.redeem(coop.coop, coop.treasurer, farmer)
    assert err.value.code == "already_redeemed"
    db.session.rollback()
    assert shares.withhold(coop.coop, farmer, 50_000_000, key="after") == 0
    with pytest.raises(Conflict):
        shares.pay(coop.coop, coop.treasurer, farmer, 1, key="after-pay")
    db.session.rollback()
    assert ledger.check() == []


def test_settings_refuse_out_of_range(coop):
    for kw in ({"par_minor": -1}, {"min_shares": -1}, {"withholding_bps": 10001},
               {"advance_bps": -1}, {"par_minor": 1.5}):
        args = {"par_minor": PAR, "min_shares": 1, "withholding_bps": 0, "advance_bps": 0, **kw}
        with pytest.raises(ValidationFailed):
            finance.update_settings(coop.coop, coop.manager, **args)
    assert shares.parse_pct("12.5", "x") == 1250 and shares.parse_pct("0", "x") == 0
    for bad in ("100.01", "-1", "1.234", "abc", "nan", 2.5, None):
        with pytest.raises(ValidationFailed):
            shares.parse_pct(bad, "x")
    assert shares.format_pct(1250) == "12.5" and shares.format_pct(1000) == "10"


# ---------------------------------------------------------------- at intake

def test_intake_withholds_until_paid_and_caps_at_what_the_advance_leaves(sold):
    _policy(sold.coop, sold.manager, par=50_000_000, min_shares=2, withholding_bps=1000,
            advance_bps=9500)
    farmer = sold.farmers[2].id
    rec = intake.record_intake(sold.manager, sold.alloc[2].id, received_kg="150",
                               grade="sca85")[0]
    gross = FARMER * 150
    assert rec.advance_minor == gross * 95 // 100
    # 10% would be 42,000,000 but only 5% is left after the advance
    assert rec.share_withholding_minor == gross - rec.advance_minor == 21_000_000
    assert rec.net_minor == 0
    assert ledger.balance(sold.coop, ledger.farmer_payable(farmer)) == 0
    assert ledger.balance(sold.coop, ledger.share_capital(farmer)) == 21_000_000
    assert ledger.check() == []


# ---------------------------------------------------------------- pages

def test_treasurer_pages(coop, client, login):
    login(coop.treasurer)
    page = client.get(f"/manage/coops/{coop.coop.id}/shares")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert coop.farmers[0].name in html and "100.000,00" in html  # 2 x 50,000.00 subscribed
    farmer = coop.farmers[0].id
    done = client.post(f"/manage/coops/{coop.coop.id}/shares/payments",
                       data={"member": str(farmer), "amount": "20000", "via": "cash",
                             "idempotency_key": "form-1"})
    assert done.status_code == 302
    again = client.post(f"/manage/coops/{coop.coop.id}/shares/payments",
                        data={"member": str(farmer), "amount": "20000", "via": "cash",
                              "idempotency_key": "form-1"})
    assert again.status_code == 302  # a double submit records it once
    assert _account(coop).paid_minor == 2_000_000
    too_much = client.post(f"/manage/coops/{coop.coop.id}/shares/payments",
                           data={"member": str(farmer), "amount": "90000", "via": "cash",
                                 "idempotency_key": "form-2"})
    assert too_much.status_code == 422 and 'value="90000"' in too_much.get_data(as_text=True)
    bad = client.post(f"/manage/coops/{coop.coop.id}/shares/payments",
                      data={"member": str(farmer), "amount": "12,345", "via": "cash",
                            "idempotency_key": "form-3"})
    assert bad.status_code == 422
    sub = client.post(f"/manage/coops/{coop.coop.id}/shares/subscriptions",
                      data={"member": str(farmer), "shares": "5"})
    assert sub.status_code == 302 and _account(coop).subscribed_shares == 5
    red = client.post(f"/manage/coops/{coop.coop.id}/shares/{farmer}/redeem",
                      data={"note": "leaves"})
    assert red.status_code == 302 and _account(coop).status == "redeemed"
    settings = client.post(f"/manage/coops/{coop.coop.id}/shares/settings",
                           data={"par_value": "60000", "min_shares": "3",
                                 "withholding_pct": "7,5", "advance_pct": "20"})
    assert settings.status_code == 302
    conf = finance.settings(coop.coop)
    assert (conf.share_par_minor, conf.share_min_shares, conf.share_withholding_bps,
            conf.advance_bps) == (6_000_000, 3, 750, 2000)
    bad_settings = client.post(f"/manage/coops/{coop.coop.id}/shares/settings",
                               data={"par_value": "60000", "min_shares": "3",
                                     "withholding_pct": "150", "advance_pct": "20"})
    assert bad_settings.status_code == 422
    assert ledger.check() == []


def test_share_pages_access(coop, client, login, make_coop, make_buyer):
    other = make_coop()
    other_manager = next(x.user for x in other.memberships if x.role == "manager")
    buyer = make_buyer()
    base = f"/manage/coops/{coop.coop.id}/shares"
    farmer = coop.farmers[0].id
    assert client.get(base).status_code == 302  # anonymous: login
    for user, register, settings, write in (
            (coop.treasurer, 200, 200, 302), (coop.manager, 200, 200, 403),
            (coop.farmers[0], 403, 403, 403), (other_manager, 404, 404, 404),
            (buyer, 404, 404, 404)):
        login(user)
        assert client.get(base).status_code == register, user.name
        assert client.get(f"{base}/settings").status_code == settings, user.name
        pay = client.post(f"{base}/payments", data={"member": str(farmer), "amount": "1",
                                                    "via": "cash", "idempotency_key": user.email})
        assert pay.status_code == write, user.name
    assert _account(coop).paid_minor == 100  # only the treasurer's payment
    login(coop.manager)
    assert client.post(f"{base}/{farmer}/redeem", data={"note": "x"}).status_code == 403
    login(other_manager)
    assert client.post(f"{base}/{farmer}/redeem", data={"note": "x"}).status_code == 404
    login(coop.treasurer)  # another coop's member in this coop's URL
    stranger = next(x.user for x in other.memberships)
    assert client.post(f"{base}/{stranger.id}/redeem", data={"note": "x"}).status_code == 404
    assert _account(coop).status == "active"


def test_member_sees_their_shares(coop, client, login, make_buyer):
    farmer = coop.farmers[0]
    shares.pay(coop.coop, coop.treasurer, farmer.id, 2_500_000, key="p")
    db.session.commit()
    login(farmer)
    page = client.get("/my/shares")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and coop.coop.name in html
    assert "25.000,00" in html and "75.000,00" in html  # paid, and still to pay
    login(coop.farmers[1])
    assert "25.000,00" not in client.get("/my/shares").get_data(as_text=True)
    login(make_buyer())
    assert client.get("/my/shares").status_code == 403
    assert db.session.scalar(select(func.count(ShareAccount.id))) >= 1
