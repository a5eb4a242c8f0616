"""One unit of work per request (coop/common/web.py): a view answered commits once, a refusal
or an error answer rolls back and writes nothing, a confirmation page writes nothing; the
app's handler answers each DomainError with its own status; and the views no longer carry
the ceremony themselves."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import redirect
from sqlalchemy import func, select

from coop.auth.models import User
from coop.common import web
from coop.common.errors import (Conflict, DomainError, Forbidden, NotFound, PaymentDeclined,
                                ValidationFailed)
from coop.extensions import db

# Every domain's HTML views; not the JSON API's (api/views.py) nor the Stripe webhook's
# (payments/views.py), which answer JSON and are wired by their own modules.
VIEWS = sorted(path for path in (Path(__file__).resolve().parents[2] / "coop").glob(
    "*/views.py") if path.parent.name not in ("api", "payments"))


def _users() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(User))


def _add_user(name="Ana"):
    db.session.add(User(name=name, email=f"{name.lower()}@uow.example", password_hash="x"))
    db.session.flush()


def _run(app, view, method="POST"):
    with app.test_request_context("/manage/uow", method=method):
        return view()


def test_an_answered_view_commits(app):
    @web.unit_of_work
    def view():
        _add_user()
        return redirect("/done")
    assert _run(app, view).status_code == 302
    assert _users() == 1


@pytest.mark.parametrize("answer", [("refused", 422), ("nothing here", 404)])
def test_an_error_answer_writes_nothing(app, answer):
    @web.unit_of_work
    def view():
        _add_user()
        return answer
    assert _run(app, view).status_code == answer[1]
    assert _users() == 0


def test_a_refusal_is_shown_the_views_way_and_writes_nothing(app):
    shown = []

    @web.unit_of_work
    def view():
        web.on_refusal(lambda exc: (shown.append(exc.message) or "the form again", exc.status))
        _add_user()
        raise Conflict("Taken.")
    response = _run(app, view)
    assert response.status_code == 409 and shown == ["Taken."]
    assert _users() == 0


def test_a_refusal_the_view_lets_pass_goes_to_the_apps_handler(app):
    @web.unit_of_work
    def view():
        web.refusal_flashed("/back", passing=404)
        _add_user()
        raise NotFound("No such thing.")
    with pytest.raises(NotFound):
        _run(app, view)
    assert _users() == 0


def test_discard_rolls_back_an_answered_view(app):
    @web.unit_of_work
    def view():
        _add_user()
        web.discard()
        return "a confirmation page"
    assert _run(app, view).status_code == 200
    assert _users() == 0


def test_an_unexpected_error_rolls_back(app):
    @web.unit_of_work
    def view():
        _add_user()
        raise RuntimeError("boom")
    with pytest.raises(RuntimeError):
        _run(app, view)
    assert _users() == 0


@pytest.mark.parametrize("error, status", [
    (NotFound("No such pool."), 404), (Forbidden("Not your role."), 403),
    (Conflict("This pool is closed."), 409), (ValidationFailed("Give a number."), 422),
    (PaymentDeclined("The card was declined."), 402),
    (DomainError("Bad JSON.", code="malformed_json", status=400), 400)])
def test_the_apps_handler_answers_each_errors_own_status(app, error, status):
    with app.test_request_context("/manage/coops/1/pools"):
        page = app.make_response(app.handle_user_exception(error))
    assert page.status_code == status and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    # An HTML 404 reads like every 404: nobody learns what was missing.
    assert ("We could not find that page." if status == 404 else error.message) in html
    with app.test_request_context("/api/v1/pools"):
        answer = app.make_response(app.handle_user_exception(error))
    assert answer.status_code == status and answer.mimetype == "application/json"
    assert answer.get_json()["error"] == {"code": error.code, "message": error.message,
                                          "fields": {}}


# The view ceremony lives in coop/common/web.py; what may stay in a views.py file, at most.
CEREMONY = {
    r"db\.session\.rollback\(": 0,
    r"db\.session\.commit\(": 0,
    r"except DomainError": 0,
    r"except NotFound": 0,
    r"status == 404": 0,
    # A role checked on an object's coop (a pool's, an allocation's), or a second role for
    # writing on a page others read; every coop in a URL is loaded by web.coop_view.
    r"require_member\(": 5,
    r"get_coop\(": 2,
}


@pytest.mark.parametrize("pattern, most", CEREMONY.items())
def test_the_view_ceremony_is_gone(pattern, most):
    found = [f"{path.parent.name}/views.py:{number}"
             for path in VIEWS
             for number, line in enumerate(path.read_text().splitlines(), 1)
             if re.search(pattern, line)]
    assert len(found) <= most, found
