"""One unit of work per request for the HTML views: load the coop, check the role, commit once
when the view has answered, roll back and show the refusal when a service refused.

    @bp.route("/manage/coops/<int:coop_id>/points", methods=["POST"])
    @web.coop_view("manager")
    def add_point(coop):                       # called with the coop, not its id
        form = PointForm()
        if not form.validate_on_submit():
            return _page(coop, form, 422)
        web.refusal_on_form(form, lambda status: _page(coop, form, status))
        services.add_point(coop, form.name.data)   # a refusal: the form again, its status
        return redirect(url_for("coops.points", coop_id=coop.id))   # then one commit

The rules of the unit of work (`unit_of_work`, which `coop_view` includes):
- an answer with a status below 400 commits, once, after the view returned;
- an answer of 400 or more, a confirmation page (`discard()`), or any exception rolls back;
- a DomainError rolls back, then is shown the way the view said before calling the service
  (`refusal_on_form`: on the form's fields, with the error's status; `refusal_flashed`: a
  flash and a redirect; `on_refusal`: any answer); an error the view did not say how to show,
  or one whose status it lets pass (`passing=404`), goes to the app's handler (its own
  status: a page, or JSON for the API).

The Stripe sagas (hold, capture, refund) commit each recorded step themselves, so that no
transaction is open during a call to Stripe: `commit_step()` is that commit, the only other
place that commits in a request."""
from __future__ import annotations

from functools import wraps

from flask import current_app, flash, g, redirect
from flask_login import current_user, login_required

from ..extensions import db
from .access import require_member
from .errors import DomainError
from .forms import apply_error


class _Work:
    """What the current request's view said about its unit of work."""

    def __init__(self):
        self.respond = None     # DomainError -> the answer that shows it
        self.passing: tuple = ()  # statuses left to the app's handler (404: the 404 page)
        self.discarded = False


def _work() -> _Work:
    work = g.get("minga_work")
    if work is None:
        work = g.minga_work = _Work()
    return work


def unit_of_work(view):
    """The view's request as one transaction (see the module's docstring)."""
    @wraps(view)
    def run(*args, **kwargs):
        g.minga_work = work = _Work()
        try:
            response = current_app.make_response(view(*args, **kwargs))
        except DomainError as exc:
            db.session.rollback()
            if work.respond is None or exc.status in work.passing:
                raise
            response = current_app.make_response(work.respond(exc))
            db.session.rollback()  # showing the refusal writes nothing
            return response
        except BaseException:
            db.session.rollback()
            raise
        if response.status_code < 400 and not work.discarded:
            db.session.commit()
        else:
            db.session.rollback()
        return response
    return run


def coop_view(*roles: str, check=None):
    """A logged-in member's page of the coop in the URL's `coop_id`: outsiders 404, members
    without one of `roles` 403 (or `check(coop_id, user)`, a domain's own rule); the view is
    called with the coop in place of `coop_id`, in one unit of work."""
    def decorate(view):
        @wraps(view)
        def load(coop_id: int, **kwargs):
            if check is not None:
                check(coop_id, current_user)
            else:
                require_member(coop_id, *roles)
            return view(current_app.extensions["coop_loader"](coop_id), **kwargs)
        return login_required(unit_of_work(load))
    return decorate


def load_coops_with(app, loader) -> None:
    """`loader(coop_id)` is how `coop_view` gets the coop (the cooperatives domain's get_coop,
    wired by create_app: this lowest floor never imports a domain)."""
    app.extensions["coop_loader"] = loader


def on_refusal(respond, *, passing: int | tuple = ()) -> None:
    """From here on a DomainError is rolled back and answered by `respond(exc)`, except those
    whose status is in `passing`, left to the app's handler (404: the 404 page)."""
    work = _work()
    work.respond = respond
    work.passing = tuple(passing) if isinstance(passing, (tuple, list)) else (passing,)


def show_on_form(form, exc: DomainError, *, rename: dict | None = None) -> None:
    """Put a refusal on the form's fields (else flash it). `rename` maps a service's fields to
    the form's one ({"crop": "product"}): a refusal of any of them shows on that field alone."""
    if rename and any(name in exc.fields for name in rename):
        fields: dict = {}
        for name, target in rename.items():
            fields.setdefault(target, []).extend(exc.fields.get(name, []))
        exc.fields = fields
    apply_error(form, exc)


def refusal_on_form(form, page, *, rename: dict | None = None,
                    passing: int | tuple = ()) -> None:
    """A refusal goes on the form's fields (`show_on_form`) and `page(status)` answers with
    the error's status."""
    def respond(exc: DomainError):
        show_on_form(form, exc, rename=rename)
        return page(exc.status)
    on_refusal(respond, passing=passing)


def refusal_flashed(target: str, *, passing: int | tuple = (),
                    with_fields: bool = False) -> None:
    """A refusal is flashed (and each field's problem with it, `with_fields`) and the browser
    goes to `target`."""
    def respond(exc: DomainError):
        flash(exc.message, "error")
        if with_fields:
            for problems in (exc.fields or {}).values():
                for problem in problems:
                    flash(str(problem), "error")
        return redirect(target)
    on_refusal(respond, passing=passing)


def discard() -> None:
    """This answer acts on nothing (a confirmation page, a GET that must not create a row):
    the unit of work rolls back instead of committing."""
    _work().discarded = True


def commit_step() -> None:
    """Commit a recorded step of a Stripe saga before (or after) calling Stripe, so that no
    transaction is open during the call and a crash leaves a step a retry can finish. The only
    commit besides the unit of work's."""
    db.session.commit()
