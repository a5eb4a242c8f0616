"""The farmers' weekly purchase documents (documento soporte / liquidación de compra): one per
farmer-week with deliveries, numbered in the coop's own sequence, never twice, printable and
as CSV, linked from the settlement statement; only the farmer and the coop's staff see one."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from coop.common.models import utcnow
from coop.extensions import db
from tests.support.auth import client_as
from coop.intake import services as intake
from coop.invoices import support
from coop.invoices.models import Invoice

pytestmark = pytest.mark.usefixtures("ledger_sound")




def _deliver(sold):
    for alloc, kg in zip(sold.alloc, ("50", "90", "150")):
        intake.record_intake(sold.manager, alloc.id, received_kg=kg, grade="sca85")
    db.session.commit()


def test_one_document_per_farmer_week_numbered_once(app, sold):
    _deliver(sold)
    week = support.week_of(utcnow())
    with pytest.raises(ValueError):
        support.issue_week(sold.coop, week)  # this week is not over
    later = utcnow() + timedelta(days=8)
    issued = support.issue_week(sold.coop, week, now=later)
    db.session.commit()
    assert set(issued) == {f.id for f in sold.farmers}
    again = support.issue_week(sold.coop, week, now=later + timedelta(hours=1))
    db.session.commit()
    assert again == issued
    docs = list(db.session.scalars(select(Invoice).where(Invoice.kind == "support_doc")
                                   .order_by(Invoice.number)))
    assert [d.full_number for d in docs] == ["DS1", "DS2", "DS3"]
    by_farmer = {d.farmer_user_id: d for d in docs}
    first = by_farmer[sold.farmers[0].id]
    assert first.total_minor == sum(i.farmer_amount_minor for i in intake.farmer_statements(
        sold.farmers[0]))
    farmer = client_as(app, sold.farmers[0])
    page = farmer.get(f"/my/documents/{first.id}")
    assert page.status_code == 200 and "DS" in page.get_data(as_text=True)
    csv_text = farmer.get(f"/my/documents/{first.id}.csv").get_data(as_text=True)
    assert csv_text.splitlines()[0].startswith("number,issued_at,week_start")
    assert farmer.get(f"/my/documents/{first.id}.pdf").data[:4] == b"%PDF"
    [statement] = intake.farmer_statements(sold.farmers[0])
    assert f"/my/documents/{first.id}" in farmer.get(
        f"/my/statements/{statement.id}").get_data(as_text=True)
    for user in (sold.farmers[1], sold.buyers[0], sold.manager):
        assert client_as(app, user).get(f"/my/documents/{first.id}").status_code == 404
    assert client_as(app, sold.treasurer).get(
        f"/manage/coops/{sold.coop.id}/invoices/{first.id}").status_code == 200


def test_the_weekly_job_documents_last_week_and_the_command_does_it_by_hand(app, sold):
    _deliver(sold)
    count = support.issue_last_week_everywhere(now=utcnow() + timedelta(days=7))
    assert count == 3
    runner = app.test_cli_runner()
    monday = support.week_of(utcnow()).isoformat()
    result = runner.invoke(args=["invoices", "issue-week", "--week", monday])
    assert result.exit_code != 0 and "not over" in result.output  # this week goes on
    result = runner.invoke(args=["invoices", "issue-week"])  # last week: nothing delivered
    assert "0 farmers" in result.output, result.output
    assert db.session.scalar(select(db.func.count()).select_from(Invoice)
                             .where(Invoice.kind == "support_doc")) == 3
