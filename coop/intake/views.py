"""Intake at the collection point (manager, from a phone) and settlement statements."""
import uuid

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from ..catalog import services as catalog
from ..common.ids import query_id
from ..common import confirm, web
from ..common.access import is_farmer, require_member
from ..common.forms import filter_text
from ..common.paging import page_number
from ..extensions import db
from ..pools import services as pools
from . import services
from .forms import IntakeForm

bp = Blueprint("intake", __name__)
STATEMENTS_PAGE = 50  # a coop's statements a page


@bp.route("/manage/pools/<int:pool_id>/intake")
@login_required
@web.unit_of_work
def pool_intake(pool_id):
    pool = pools.get_pool(pool_id)
    require_member(pool.coop_id, "manager", "treasurer")
    pending_only = request.args.get("show") == "pending"
    point = filter_text(request.args.get("point", ""), 160)
    found = services.pool_deliveries(pool.id, pending_only=pending_only, point=point,
                                     page=page_number(request.args.get("page")))
    allocations = found.items
    from sqlalchemy import select

    from ..auth.models import User
    ids = {a.farmer_user_id for a in allocations}
    names = dict(db.session.execute(select(User.id, User.name).where(User.id.in_(ids))).all()) \
        if ids else {}
    return render_template("intake/pool.html", pool=pool, allocations=allocations,
                           intakes=found.extra["intakes"], names=names, found=found,
                           pending_only=pending_only, point=point)


def _grade_choices(pool):
    return [(g.code, catalog.grade_name(g)) for g in pool.crop.grades]


@bp.route("/manage/allocations/<int:allocation_id>/intake", methods=["GET", "POST"])
@login_required
@web.unit_of_work
def record(allocation_id):
    allocation = services.get_allocation(allocation_id)
    require_member(allocation.pool.coop_id, "manager")
    existing = services.intake_for(allocation.id)
    if existing is not None:
        return redirect(url_for("intake.statement", intake_id=existing.id))
    pool = allocation.pool
    form = IntakeForm()
    form.grade.choices = _grade_choices(pool)

    def page(status=200):
        if not form.idempotency_key.data:
            form.idempotency_key.data = uuid.uuid4().hex
        from ..auth.models import User
        farmer = db.session.get(User, allocation.farmer_user_id)
        return render_template("intake/record.html", form=form, allocation=allocation,
                               pool=pool, farmer=farmer), status
    if not form.is_submitted():
        form.grade.data = pool.grade.code
        return page()
    if not form.validate():
        return page(422)

    def refused(exc):
        if exc.code == "intake_recorded":
            flash(exc.message, "error")
            return redirect(url_for("intake.pool_intake", pool_id=pool.id))
        web.show_on_form(form, exc)
        return page(exc.status)
    web.on_refusal(refused)
    preview = services.preview_intake(
        current_user, allocation.id, received_kg=form.received_kg.data,
        grade=form.grade.data, not_delivered=form.not_delivered.data)
    if preview.refund_minor > 0:
        # Money goes back to buyers' cards: shown first, done on "Yes".
        step = confirm.check(f"intake.record:{allocation.id}", preview)
        if not step.confirmed:
            return step.render(
                "intake/confirm.html", preview=preview, pool=pool,
                back=url_for("intake.record", allocation_id=allocation.id),
                yes=_("Yes, record it and refund the buyers"))
    intake, _created = services.record_intake(
        current_user, allocation.id, received_kg=form.received_kg.data,
        grade=form.grade.data, not_delivered=form.not_delivered.data,
        idempotency_key=form.idempotency_key.data or None)
    flash(_("Delivery recorded."), "info")
    return redirect(url_for("intake.statement", intake_id=intake.id))


@bp.route("/manage/coops/<int:coop_id>/statements")
@web.coop_view("manager", "treasurer")
def coop_statements(coop):
    q = filter_text(request.args.get("q", ""), 80)
    before = request.args.get("before", type=query_id)
    intakes = services.coop_statements(coop.id, limit=STATEMENTS_PAGE, before_id=before, q=q)
    return render_template("intake/statements.html", coop=coop, intakes=intakes, q=q,
                           before=before,
                           older=intakes[-1].id if len(intakes) == STATEMENTS_PAGE else None)


@bp.route("/my/statements")
@login_required
def my_statements():
    if not is_farmer(current_user):
        abort(403)
    found = services.farmer_statements_page(current_user, request.args.get("cursor"))
    return render_template("intake/statements.html", coop=None, intakes=found.items,
                           found=found)


@bp.route("/my/statements/<int:intake_id>")
@login_required
@web.unit_of_work
def statement(intake_id):
    intake = services.statement(current_user, intake_id)
    return render_template("intake/statement.html", intake=intake,
                           refunds=services.refunds_of(intake))
