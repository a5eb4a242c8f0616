"""Who sees which messages: a coop's managers and treasurers see what its people were told;
its farmers, other coops' staff, buyers and visitors do not; everyone sees their own only."""
from __future__ import annotations

import pytest

from coop.extensions import db
from coop.messages import services as messages
from coop.messages.services import Money
from tests.support import PASSWORD


@pytest.fixture
def told(make_coop, make_farmer, make_user, make_buyer):
    from coop.cooperatives import services as coops
    treasurer = make_user(name="Tesorera")
    coop = make_coop(treasurer=treasurer)
    other = make_coop()
    farmer = make_farmer(coop)
    messages.notify(farmer, "farmer.paid", event="payout-line:41", coop_id=coop.id,
                    amount=Money(100, "COP"), rail="Nequi", reference="REF-4141",
                    coop=coop.name)
    db.session.commit()
    from coop.auth.models import User
    staff = {role: db.session.get(User, coops.staff_ids(c.id, "manager")[0])
             for role, c in (("manager", coop), ("other_manager", other))}
    return {"coop": coop, "farmer": farmer, "treasurer": treasurer, "buyer": make_buyer(),
            **staff}


EXPECTED = {None: 302, "manager": 200, "treasurer": 200, "farmer": 403,
            "other_manager": 404, "buyer": 404}


@pytest.mark.parametrize("who", list(EXPECTED))
def test_the_coops_messages_page_by_role(client, told, who):
    if who is not None:
        client.post("/login", data={"login": told[who].email, "password": PASSWORD})
    page = client.get(f"/manage/coops/{told['coop'].id}/messages")
    assert page.status_code == EXPECTED[who]
    assert (b"REF-4141" in page.data) is (EXPECTED[who] == 200)


@pytest.mark.parametrize("who", ["farmer", "manager", "buyer"])
def test_a_person_sees_only_their_own_messages(client, told, who):
    client.post("/login", data={"login": told[who].email, "password": PASSWORD})
    page = client.get("/account/messages")
    assert page.status_code == 200
    assert (b"REF-4141" in page.data) is (who == "farmer")


def test_the_messages_pages_need_a_login(client):
    assert client.get("/account/messages").status_code == 302


def test_a_bad_cursor_is_the_first_page(client, told):
    client.post("/login", data={"login": told["farmer"].email, "password": PASSWORD})
    for bad in ("x", "-1", "99999999999", "1e3"):
        page = client.get(f"/account/messages?before={bad}")
        assert page.status_code == 200 and b"REF-4141" in page.data
