"""Security headers (issue 10 §4): HSTS in production (a setting, never in debug or tests);
`Cache-Control: no-store` on payout files, the audit log and its CSV, reconciliation and
every CSV, and on every answer to someone logged in (pages and JSON alike), so no browser or
shared cache keeps a copy of anyone's money or personal data."""
from __future__ import annotations

import itertools
import uuid

import pytest

from coop.extensions import db
from coop.ledger import services as ledger
from coop.payouts import services as payouts

REDIS_URI = "redis://127.0.0.1:6379/15"
_keys = itertools.count(1)


def _owe(coop, farmer, amount_minor):
    ledger.post(coop, key=f"headers-intake:{next(_keys)}", kind="intake",
                lines=[ledger.debit("bank", amount_minor),
                       ledger.credit(ledger.farmer_payable(farmer.id), amount_minor)])
    db.session.commit()


@pytest.fixture
def books(make_coop, make_user, make_farmer):
    treasurer = make_user(name="Tesorera")
    coop = make_coop(treasurer=treasurer)
    farmer = make_farmer(coop, name="Ana", rail="nequi", account="3001234567")
    _owe(coop, farmer, 150_000_00)
    batch, _ = payouts.create_batch(coop, treasurer, rail="nequi")
    db.session.commit()
    return coop, treasurer, batch


def test_money_files_and_pages_are_never_stored(client, login, token, books):
    coop, treasurer, batch = books
    login(treasurer)
    for url in (f"/manage/payout-batches/{batch.id}/export.csv",
                f"/manage/coops/{coop.id}/audit.csv",
                f"/manage/coops/{coop.id}/treasury/reconciliation.csv",
                f"/manage/coops/{coop.id}/impact.csv",
                f"/manage/coops/{coop.id}/audit",
                f"/manage/coops/{coop.id}/treasury/reconciliation",
                f"/manage/coops/{coop.id}/payables",
                f"/manage/payout-batches/{batch.id}",
                f"/manage/payout-batches/{batch.id}/receipts",
                "/account"):
        response = client.get(url)
        response.get_data()  # a streamed CSV finishes (and leaves its request context)
        response.close()
        assert response.status_code == 200, url
        assert response.headers.get("Cache-Control") == "no-store", url
    headers = token(treasurer)
    for url in (f"/api/v1/payout-batches/{batch.id}/export.csv",
                f"/api/v1/payout-batches/{batch.id}",
                f"/api/v1/coops/{coop.id}/payables",
                f"/api/v1/coops/{coop.id}/ledger/trial-balance"):
        response = client.get(url, headers=headers)
        assert response.status_code == 200, url
        assert response.headers.get("Cache-Control") == "no-store", url


def test_a_public_csv_is_not_stored_either_and_public_pages_revalidate(client, books):
    coop, _treasurer, _batch = books
    response = client.get(f"/coops/{coop.slug}/impact.csv")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert client.get("/login").headers["Cache-Control"] == "private, no-cache"


def test_hsts_in_production_only(client, other_app):
    assert "Strict-Transport-Security" not in client.get("/login").headers  # the tests
    production = other_app("production", SECRET_KEY=uuid.uuid4().hex * 2,
                           RATELIMIT_STORAGE_URI=REDIS_URI, CELERY_BROKER_URL=REDIS_URI)
    response = production.test_client().get("/login", base_url="https://minga.example")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    shorter = other_app("production", SECRET_KEY=uuid.uuid4().hex * 2,
                        RATELIMIT_STORAGE_URI=REDIS_URI, CELERY_BROKER_URL=REDIS_URI, HSTS_MAX_AGE=600)
    assert shorter.test_client().get("/login").headers["Strict-Transport-Security"] == \
        "max-age=600; includeSubDomains"
    off = other_app("production", SECRET_KEY=uuid.uuid4().hex * 2,
                    RATELIMIT_STORAGE_URI=REDIS_URI, CELERY_BROKER_URL=REDIS_URI, HSTS_MAX_AGE=0)
    assert "Strict-Transport-Security" not in off.test_client().get("/login").headers
    debugging = other_app("production", SECRET_KEY=uuid.uuid4().hex * 2,
                          RATELIMIT_STORAGE_URI=REDIS_URI, CELERY_BROKER_URL=REDIS_URI, DEBUG=True)
    assert "Strict-Transport-Security" not in debugging.test_client().get("/login").headers
