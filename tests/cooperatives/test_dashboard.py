"""The manager's coop page opens with counts and the next things to do, each linked, in one
query whatever the number of rows."""
from __future__ import annotations

from sqlalchemy import select

from coop.auth.models import User
from coop.cooperatives import dashboard
from coop.demo.grow import demo_coops, grow
from coop.demo.seed import PASSWORD
from coop.extensions import db


def test_the_counts_follow_the_data_in_one_query(app, count_queries):
    grow(2)
    coop = demo_coops()[0]
    with count_queries() as counter:
        summary = dashboard.summary(coop)
    assert counter.count == 1
    # Two units of the seeded coop: 30 farmers each; per unit two deliveries to record, two
    # payout lines waiting for the bank, one invitation; the demo's open pool and one a unit.
    assert summary.farmers == 60
    assert summary.open_pools == 3
    assert summary.intakes_to_record == 4 and summary.pool_to_record is not None
    assert summary.lines_to_confirm == 4 and summary.batch_to_confirm is not None
    assert summary.invitations_pending == 2
    assert summary.payouts_due >= 1 and summary.payouts_due_minor > 0
    assert summary.bank_unmatched > 0


def test_the_page_links_each_thing_to_do(app, client):
    grow(1)
    coop = demo_coops()[0]
    response = client.post("/login", data={"login": "manager@example.org",
                                           "password": PASSWORD})
    assert response.status_code == 302
    html = client.get(f"/manage/coops/{coop.id}").get_data(as_text=True)
    summary = dashboard.summary(coop)
    assert "De un vistazo" in html and "Lo que sigue" in html
    assert f'href="/manage/pools/{summary.pool_to_record}/intake"' in html
    assert "2 entregas por registrar" in html
    assert 'href="#invitations"' in html and 'id="invitations"' in html
    # The manager is not the treasurer: the payments are named, not linked.
    assert "2 pagos por confirmar con el banco (la tesorería)" in html
    assert db.session.scalar(select(User.id).where(User.email == "manager@example.org"))
