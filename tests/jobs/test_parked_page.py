"""The paused tasks page of a coop: its managers and treasurers see its parked jobs with the
last error and retry one after a confirmation step; farmers 403, other coops' people 404."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from coop.auth.models import User
from coop.common.models import utcnow
from coop.cooperatives import services as coops
from coop.extensions import db
from coop.jobs.models import Job
from tests.support.confirm import confirm, is_confirmation


def _parked(coop_id, *, pool_id=9999, error="RuntimeError: Stripe unavailable") -> Job:
    job = Job(task="pools.close", key=f"pool-close:{pool_id}", payload=f'{{"pool_id": {pool_id}}}',
              status="parked", attempts=8, last_error=error, run_at=utcnow(), coop_id=coop_id,
              finished_at=utcnow())
    db.session.add(job)
    db.session.commit()
    return job


def _staff(coop, role) -> User:
    return db.session.get(User, coops.staff_ids(coop.id, role)[0])


@pytest.fixture
def two_coops(make_coop, make_user, make_farmer):
    treasurer = make_user(name="Tesorera")
    coop = make_coop(treasurer=treasurer)
    other = make_coop()
    return coop, other, make_farmer(coop)


def _status(job_id) -> str:
    db.session.rollback()
    return db.session.get(Job, job_id, populate_existing=True).status


def test_managers_and_treasurers_see_the_parked_jobs_of_their_coop_only(
        client, login, two_coops):
    coop, other, _farmer = two_coops
    mine = _parked(coop.id, error="RuntimeError: Stripe unavailable (503)")
    theirs = _parked(other.id, pool_id=8888, error="RuntimeError: not ours to see")
    for role in ("manager", "treasurer"):
        login(_staff(coop, role))
        client.get("/lang/en")
        page = client.get(f"/manage/coops/{coop.id}/jobs")
        text = page.get_data(as_text=True)
        assert page.status_code == 200
        assert "Stripe unavailable (503)" in text and "pool #9999" in text
        assert "Close and settle a pool" in text
        assert f"/jobs/{mine.id}/retry" in text
        assert "not ours to see" not in text and f"/jobs/{theirs.id}/retry" not in text


def test_access_farmers_403_other_coops_404_strangers_login(client, login, two_coops,
                                                            make_user):
    coop, other, farmer = two_coops
    job = _parked(coop.id)
    url, retry = f"/manage/coops/{coop.id}/jobs", f"/manage/coops/{coop.id}/jobs/{job.id}/retry"
    assert client.get(url).status_code == 302                       # to the login page
    login(farmer)
    assert client.get(url).status_code == 403
    assert client.post(retry).status_code == 403
    login(_staff(other, "manager"))
    assert client.get(url).status_code == 404
    assert client.post(retry).status_code == 404
    # Their own coop's URL with this coop's job: not found either.
    assert client.post(f"/manage/coops/{other.id}/jobs/{job.id}/retry").status_code == 404
    login(make_user())
    assert client.get(url).status_code == 404
    assert _status(job.id) == "parked"


def test_retry_asks_first_then_runs_the_job_again(client, login, two_coops):
    coop, _other, _farmer = two_coops
    job = _parked(coop.id)
    login(_staff(coop, "treasurer"))
    client.get("/lang/en")
    asked = client.post(f"/manage/coops/{coop.id}/jobs/{job.id}/retry")
    assert is_confirmation(asked)
    text = asked.get_data(as_text=True)
    assert "Retry this task?" in text and "Stripe unavailable" in text
    assert _status(job.id) == "parked"                 # asking did nothing
    done = confirm(client, asked)
    assert done.status_code == 302 and done.headers["Location"].endswith(f"/coops/{coop.id}/jobs")
    # Tests run committed jobs right after the request: no pool 9999, so the close is done.
    assert _status(job.id) == "done"
    assert db.session.get(Job, job.id).attempts == 1
    page = client.get(f"/manage/coops/{coop.id}/jobs")
    assert "No task is paused" in page.get_data(as_text=True)
    # A second "Yes" (a double tap, an old tab) retries nothing.
    again = confirm(client, asked)
    assert again.status_code == 302 and _status(job.id) == "done"
    assert db.session.scalar(select(func.count()).select_from(Job)) == 1


def test_the_page_speaks_spanish(client, login, two_coops):
    coop, _other, _farmer = two_coops
    _parked(coop.id)
    login(_staff(coop, "manager"))
    client.get("/lang/es")
    text = client.get(f"/manage/coops/{coop.id}/jobs").get_data(as_text=True)
    assert "Tareas en pausa" in text and "Cerrar y liquidar un pedido conjunto" in text
    assert "Reintentar" in text and "pedido conjunto #9999" in text
