import secrets

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from ..auth import services as auth_services
from ..auth.factors import require_password_login
from ..auth.models import User
from ..common import web
from ..common.forms import filter_text
from ..common.paging import page_number
from ..extensions import db
from ..listings import services as listing_services
from . import services
from .forms import (RAIL_CHOICES, CollectionPointForm, CoopForm, FarmerForm, PayoutForm, PlotForm,
                    RevokeForm,
                    RoleForm)

bp = Blueprint("coops", __name__)


@bp.route("/coops")
def index():
    return render_template("coops/index.html", coops=services.list_coops())


@bp.route("/coops/<slug>")
def public(slug):
    coop = services.coop_by_slug(slug)
    rows = listing_services.supply(coop_id=coop.id)
    return render_template("coops/public.html", coop=coop, rows=rows,
                           photos=listing_services.supply_photos(coop_id=coop.id))


@bp.route("/manage")
@login_required
def dashboard():
    coops = [c for c in services.user_coops(current_user)
             if {"manager", "treasurer"} & _roles(c.id)]
    return render_template("coops/dashboard.html", coops=coops)


def _roles(coop_id):
    return {m.role for m in current_user.memberships if m.coop_id == coop_id}


@bp.route("/manage/coops/new", methods=["GET", "POST"])
@login_required
@web.unit_of_work
def create():
    form = CoopForm()
    if form.validate_on_submit():
        web.refusal_on_form(form, lambda status: (
            render_template("coops/new.html", form=form), status))
        coop = services.create_cooperative(founder=current_user, name=form.name.data,
                                           country=form.country.data,
                                           currency=form.currency.data,
                                           region=form.region.data)
        flash(_("Cooperative created. Add its members next."), "info")
        return redirect(url_for("coops.members", coop_id=coop.id))
    return render_template("coops/new.html", form=form), 422 if form.errors else 200


@bp.route("/manage/coops/<int:coop_id>")
@web.coop_view("manager")
def members(coop):
    return _members_page(coop, RoleForm())


def _members_page(coop, role_form, status=200):
    """The members page: farmers found by name or number and payout method, a page at a time."""
    q = filter_text(request.args.get("q", ""))
    rail = filter_text(request.args.get("rail", ""))
    found = services.search_farmer_profiles(coop, q=q, rail=rail,
                                            page=page_number(request.args.get("page")))
    return render_template("coops/members.html", coop=coop,
                           members=services.members(coop, staff_only=True),
                           found=found, profiles=found.items, q=q, rail=rail,
                           rails=RAIL_CHOICES, role_form=role_form,
                           revoke_form=RevokeForm()), status


@bp.route("/manage/coops/<int:coop_id>/farmers/new", methods=["GET", "POST"])
@web.coop_view("manager")
def add_farmer(coop):
    form = FarmerForm()
    if form.validate_on_submit():
        without_email = not (form.email.data or "").strip()
        # Without an e-mail: a first-login code of digits, easy to read out; the farmer
        # chooses a PIN with it at the first login.
        password = form.password.data or (auth_services.first_login_code() if without_email
                                          else secrets.token_urlsafe(9))
        web.refusal_on_form(form, lambda status: (
            render_template("coops/farmer_new.html", coop=coop, form=form), status))
        if (form.payout_account.data or "").strip():
            require_password_login()  # where a farmer is paid: never on a PIN alone
        profile = services.add_farmer(
            coop, name=form.name.data, email=form.email.data or None, password=password,
            phone=form.phone.data, member_number=form.member_number.data,
            national_id=form.national_id.data, payout_rail=form.payout_rail.data,
            payout_account=form.payout_account.data, bank_name=form.bank_name.data,
            gender=form.gender.data or None, household_size=form.household_size.data)
        if not form.password.data and without_email and profile.user.must_set_pin:
            flash(_("First-login code for %(name)s: %(pw)s — give it to them privately. They "
                    "log in with their phone number and this code, then choose their PIN.",
                    name=profile.user.name, pw=password), "info")
        elif not form.password.data:
            flash(_("First password for %(name)s: %(pw)s — give it to them privately.",
                    name=profile.user.name, pw=password), "info")
        return redirect(url_for("coops.farmer", coop_id=coop.id, profile_id=profile.id))
    return render_template("coops/farmer_new.html", coop=coop, form=form), \
        422 if form.errors else 200


@bp.route("/manage/coops/<int:coop_id>/farmers/<int:profile_id>")
@web.coop_view("manager")
def farmer(coop, profile_id):
    profile = services.get_farmer_profile(coop, profile_id)
    return _farmer_page(coop, profile, PlotForm(prefix="plot"), PayoutForm(prefix="payout"), 200)


def _farmer_page(coop, profile, plot_form, payout_form, status, payout_from_request=False):
    # The payout form shows the saved details unless it is the form that was just posted
    # (a plot error must not blank them: saving that form would then wipe the account).
    if not payout_from_request:
        payout_form.payout_rail.data = profile.payout_rail
        payout_form.payout_account.data = profile.payout_account
        payout_form.bank_name.data = profile.bank_name
    return render_template("coops/farmer.html", coop=coop, profile=profile,
                           plot_form=plot_form, payout_form=payout_form), status


@bp.route("/manage/coops/<int:coop_id>/farmers/<int:profile_id>/plots", methods=["POST"])
@web.coop_view("manager")
def add_plot(coop, profile_id):
    profile = services.get_farmer_profile(coop, profile_id)
    form = PlotForm(prefix="plot")

    def page(status):
        return _farmer_page(coop, profile, form, PayoutForm(prefix="payout", formdata=None),
                            status)
    if not form.validate_on_submit():
        return page(422)
    web.refusal_on_form(form, page)
    services.add_plot(profile, name=form.name.data, hectares=form.hectares.data,
                      replaced_crop=form.replaced_crop.data,
                      illicit_hectares=form.illicit_hectares.data,
                      licit_crop=form.licit_crop.data)
    flash(_("Plot added."), "info")
    return redirect(url_for("coops.farmer", coop_id=coop.id, profile_id=profile.id))


@bp.route("/manage/coops/<int:coop_id>/farmers/<int:profile_id>/payout", methods=["POST"])
@web.coop_view("manager")
def update_payout(coop, profile_id):
    profile = services.get_farmer_profile(coop, profile_id)
    form = PayoutForm(prefix="payout")

    def page(status):
        # After a refusal the profile reads as saved (the unit of work rolled back).
        return _farmer_page(coop, profile, PlotForm(prefix="plot", formdata=None), form, status,
                            payout_from_request=True)
    if not form.validate_on_submit():
        return page(422)
    web.refusal_on_form(form, page)
    require_password_login()  # a PIN alone never changes where a farmer is paid
    services.update_payout(profile, form.payout_rail.data, form.payout_account.data,
                           form.bank_name.data)
    flash(_("Payout details saved."), "info")
    return redirect(url_for("coops.farmer", coop_id=coop.id, profile_id=profile.id))


@bp.route("/manage/coops/<int:coop_id>/farmers/<int:profile_id>/pin", methods=["POST"])
@web.coop_view("manager")
def reset_pin(coop, profile_id):
    """A farmer forgot their PIN: a new first-login code for the manager to hand over; the
    farmer chooses a new PIN with it (the old PIN stops working at once)."""
    profile = services.get_farmer_profile(coop, profile_id)
    if not RevokeForm().validate_on_submit():
        abort(400)
    code = auth_services.issue_first_login(profile.user)
    flash(_("New first-login code for %(name)s: %(pw)s — give it to them privately. They log "
            "in with it and choose a new PIN.", name=profile.user.name, pw=code), "info")
    return redirect(url_for("coops.farmer", coop_id=coop.id, profile_id=profile.id))


@bp.route("/manage/coops/<int:coop_id>/roles", methods=["POST"])
@web.coop_view("manager")
def grant_role(coop):
    form = RoleForm()
    if not form.validate_on_submit():
        flash(_("Give a valid e-mail and a role."), "error")
        return _members_page(coop, form, 422)

    def refused(exc):
        flash(exc.message, "error")
        return _members_page(coop, form, exc.status)
    web.on_refusal(refused)
    services.grant_staff_role(coop, form.email.data, form.role.data)
    flash(_("Role given."), "info")
    return redirect(url_for("coops.members", coop_id=coop.id))


@bp.route("/manage/coops/<int:coop_id>/roles/<int:user_id>/<role>/revoke", methods=["POST"])
@web.coop_view("manager")
def revoke_role(coop, user_id, role):
    form = RevokeForm()
    if not form.validate_on_submit():
        abort(400)
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    back = url_for("coops.members", coop_id=coop.id)
    web.refusal_flashed(back)
    services.revoke_role(coop, user, role)
    flash(_("Role removed."), "info")
    return redirect(back)


def _points_page(coop, form, status=200, editing=None, edit_form=None):
    return render_template("coops/points.html", coop=coop, form=form,
                           points=services.collection_points(coop.id), editing=editing,
                           edit_form=edit_form), status


@bp.route("/manage/coops/<int:coop_id>/collection-points", methods=["GET", "POST"])
@web.coop_view("manager")
def collection_points(coop):
    """The coop's collection points: the list farmers choose from when listing a harvest."""
    form = CollectionPointForm()
    if form.validate_on_submit():
        web.refusal_on_form(form, lambda status: _points_page(coop, form, status))
        services.add_collection_point(coop, name=form.name.data, place=form.place.data)
        flash(_("Collection point added."), "info")
        return redirect(url_for("coops.collection_points", coop_id=coop.id))
    return _points_page(coop, form, 422 if form.errors else 200)


@bp.route("/manage/coops/<int:coop_id>/collection-points/<int:point_id>", methods=["POST"])
@web.coop_view("manager")
def rename_collection_point(coop, point_id):
    services.get_collection_point(coop, point_id)
    form = CollectionPointForm()

    def page(status):
        return _points_page(coop, CollectionPointForm(formdata=None), status, editing=point_id,
                            edit_form=form)
    if not form.validate_on_submit():
        return page(422)
    web.refusal_on_form(form, page)
    services.rename_collection_point(coop, point_id, name=form.name.data,
                                     place=form.place.data)
    flash(_("Collection point saved; its listings follow the new name."), "info")
    return redirect(url_for("coops.collection_points", coop_id=coop.id))
