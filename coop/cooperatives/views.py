from flask import (Blueprint, abort, flash, redirect, render_template, request, session,
                   url_for)
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user

from ..auth import services as auth_services
from ..auth.factors import require_password_login
from ..auth.forms import CodeForm
from ..auth.limits import attempt_counted, code_limits, logged_in_key, send_code_limits
from ..auth.models import User
from ..auth.views import home_for
from ..common import web
from ..common.forms import filter_text
from ..extensions import db
from ..listings import services as listing_services
from ..plots import services as plots
from ..common.access import roles_in
from . import dashboard as at_a_glance
from . import invitations, services, verification
from .forms import (RAIL_CHOICES, CollectionPointForm, CoopForm, FarmerForm,
                    InvitationAccountForm, PayoutForm, PlotForm, RegistrationForm, RevokeForm,
                    RoleForm, TaxIdForm, tax_id_choices)

bp = Blueprint("coops", __name__)


@bp.route("/coops")
def index():
    q = filter_text(request.args.get("q", ""), 80)
    found = services.coops_page(request.args.get("cursor"), q=q)
    return render_template("coops/index.html", coops=found.items, found=found, q=q)


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
    return render_template("coops/dashboard.html", coops=coops,
                           invitations=invitations.for_user(current_user),
                           answer_form=RevokeForm())


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
                                           region=form.region.data,
                                           legal_name=form.legal_name.data,
                                           tax_id=form.tax_id.data,
                                           document=_upload(form.document))
        flash(_("Cooperative created. Minga's staff will verify its registration; meanwhile "
                "add its members, collection points and prices."), "info")
        return redirect(url_for("coops.members", coop_id=coop.id))
    return render_template("coops/new.html", form=form), 422 if form.errors else 200


def _upload(field) -> "verification.Upload | None":
    storage = field.data
    if storage is None or not getattr(storage, "filename", None):
        return None
    return verification.Upload(filename=storage.filename, data=storage.read())


@bp.route("/manage/coops/<int:coop_id>/registration", methods=["GET", "POST"])
@web.coop_view("manager")
def registration(coop):
    """The coop's verification: its status, the staff's reason if refused, and (refused) the
    registration corrected to ask again."""
    form = RegistrationForm(data={"legal_name": coop.legal_name, "tax_id": coop.tax_id or ""})

    def page(status=200):
        return render_template("coops/registration.html", coop=coop, form=form,
                               document=verification.latest_document(coop)), status
    if request.method == "POST":
        if not form.validate_on_submit():
            return page(422)
        web.refusal_on_form(form, page)
        verification.resubmit(coop, current_user, legal_name=form.legal_name.data,
                              tax_id=form.tax_id.data, document=_upload(form.document))
        flash(_("Sent again: Minga's staff will review it."), "info")
        return redirect(url_for("coops.registration", coop_id=coop.id))
    return page()


@bp.route("/manage/coops/<int:coop_id>")
@web.coop_view("manager")
def members(coop):
    return _members_page(coop, RoleForm())


def _members_page(coop, role_form, status=200):
    """The members page: farmers found by name or number and payout method, a page at a time."""
    q = filter_text(request.args.get("q", ""))
    rail = filter_text(request.args.get("rail", ""))
    found = services.farmer_profiles_page(coop, request.args.get("cursor"), q=q, rail=rail,
                                          with_total=True)
    return render_template("coops/members.html", coop=coop,
                           summary=at_a_glance.summary(coop),
                           is_treasurer="treasurer" in roles_in(current_user, coop.id),
                           members=services.members(coop, staff_only=True),
                           found=found, profiles=found.items, q=q, rail=rail,
                           rails=RAIL_CHOICES, role_form=role_form,
                           invitations=invitations.pending(coop),
                           revoke_form=RevokeForm()), status


def _flash_link(invitation, token) -> None:
    """The invitation's link for the manager to send (issue 11 sends it itself)."""
    link = url_for("coops.invitation", token=token, _external=True)
    flash(_("Invitation ready for %(to)s. Send them this link; they join once they accept "
            "it: %(link)s", to=invitation.email or invitation.phone, link=link), "info")


@bp.route("/manage/coops/<int:coop_id>/farmers/new", methods=["GET", "POST"])
@web.coop_view("manager")
def add_farmer(coop):
    form = FarmerForm()
    form.tax_id_type.choices = tax_id_choices(coop.country)
    if form.validate_on_submit():
        web.refusal_on_form(form, lambda status: (
            render_template("coops/farmer_new.html", coop=coop, form=form), status))
        if (form.payout_account.data or "").strip():
            require_password_login()  # where a farmer is paid: never on a PIN alone
        added = invitations.invite_farmer(
            coop, current_user, name=form.name.data, email=form.email.data or None,
            phone=form.phone.data, password=form.password.data or None,
            member_number=form.member_number.data, national_id=form.national_id.data,
            payout_rail=form.payout_rail.data, payout_account=form.payout_account.data,
            bank_name=form.bank_name.data, gender=form.gender.data or None,
            household_size=form.household_size.data, tax_id_type=form.tax_id_type.data,
            tax_id=form.tax_id.data)
        if added.invitation is not None:
            _flash_link(added.invitation, added.token)
            return redirect(url_for("coops.members", coop_id=coop.id))
        profile = added.profile
        if added.code:
            # A new account by phone: a first-login code of digits, easy to read out; the
            # farmer chooses a PIN with it at the first login.
            flash(_("First-login code for %(name)s: %(pw)s — give it to them privately. They "
                    "log in with their phone number and this code, then choose their PIN.",
                    name=profile.user.name, pw=added.code), "info")
        return redirect(url_for("coops.farmer", coop_id=coop.id, profile_id=profile.id))
    return render_template("coops/farmer_new.html", coop=coop, form=form), \
        422 if form.errors else 200


@bp.route("/manage/coops/<int:coop_id>/farmers/<int:profile_id>")
@web.coop_view("manager")
def farmer(coop, profile_id):
    profile = services.get_farmer_profile(coop, profile_id)
    return _farmer_page(coop, profile, PlotForm(prefix="plot"), PayoutForm(prefix="payout"), 200)


def _farmer_page(coop, profile, plot_form, payout_form, status, payout_from_request=False,
                 tax_id_form=None):
    # The payout form shows the saved details unless it is the form that was just posted
    # (a plot error must not blank them: saving that form would then wipe the account).
    if not payout_from_request:
        payout_form.payout_rail.data = profile.payout_rail
        payout_form.payout_account.data = profile.payout_account
        payout_form.bank_name.data = profile.bank_name
    if tax_id_form is None:  # the saved document, unless the form just posted is refused
        tax_id_form = TaxIdForm(prefix="taxid", formdata=None)
        tax_id_form.tax_id_type.data = profile.tax_id_type or ""
        tax_id_form.tax_id.data = profile.tax_id or ""
    tax_id_form.tax_id_type.choices = tax_id_choices(coop.country)
    return render_template("coops/farmer.html", coop=coop, profile=profile,
                           plot_form=plot_form, payout_form=payout_form,
                           tax_id_form=tax_id_form), status


@bp.route("/manage/coops/<int:coop_id>/farmers/<int:profile_id>/tax-id", methods=["POST"])
@web.coop_view("manager")
def update_tax_id(coop, profile_id):
    """Record or change the member's identity document (the purchase documents name them by
    it); a refused one shows at its field with what was typed."""
    profile = services.get_farmer_profile(coop, profile_id)
    form = TaxIdForm(prefix="taxid")
    form.tax_id_type.choices = tax_id_choices(coop.country)

    def page(status):
        return _farmer_page(coop, profile, PlotForm(prefix="plot", formdata=None),
                            PayoutForm(prefix="payout", formdata=None), status,
                            tax_id_form=form)
    if not form.validate_on_submit():
        return page(422)
    web.refusal_on_form(form, page)
    services.set_farmer_tax_id(profile, form.tax_id_type.data, form.tax_id.data,
                               by=current_user)
    flash(_("Identity document saved."), "info")
    return redirect(url_for("coops.farmer", coop_id=coop.id, profile_id=profile.id))


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
    plots.add_plot(profile, name=form.name.data, hectares=form.hectares.data,
                   replaced_crop=form.replaced_crop.data,
                   illicit_hectares=form.illicit_hectares.data,
                   licit_crop=form.licit_crop.data)
    flash(_("Plot added."), "info")
    return redirect(url_for("coops.farmer", coop_id=coop.id, profile_id=profile.id))


def _payout_farmer_key() -> str:
    """The farmer whose payout change sends a code (each request may send an SMS)."""
    return f"login-account:profile-{request.view_args.get('profile_id')}"


@bp.route("/manage/coops/<int:coop_id>/farmers/<int:profile_id>/payout", methods=["POST"])
@send_code_limits(_payout_farmer_key, per_address=False)
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
    attempt_counted()
    _row, to = services.request_payout_change(profile, form.payout_rail.data,
                                              form.payout_account.data, form.bank_name.data)
    return render_template("coops/payout_confirm.html", coop=coop, profile=profile, to=to,
                           form=CodeForm(formdata=None))


@bp.route("/manage/coops/<int:coop_id>/farmers/<int:profile_id>/payout/confirm",
          methods=["POST"])
@code_limits(logged_in_key, per_address=False)
@web.coop_view("manager")
def confirm_payout(coop, profile_id):
    """The code the farmer received: only then do the new payout details apply."""
    profile = services.get_farmer_profile(coop, profile_id)
    form = CodeForm()

    def page(status):
        return render_template("coops/payout_confirm.html", coop=coop, profile=profile,
                               to=None, form=form), status
    if not form.validate_on_submit():
        return page(422)
    web.refusal_on_form(form, page)
    require_password_login()
    services.confirm_payout_change(profile, form.code.data, current_user)
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
    invitation, token = invitations.invite_staff(coop, current_user, email=form.email.data,
                                                 role=form.role.data)
    _flash_link(invitation, token)
    return redirect(url_for("coops.members", coop_id=coop.id))


@bp.route("/manage/coops/<int:coop_id>/invitations/<int:invitation_id>/<action>",
          methods=["POST"])
@web.coop_view("manager")
def invitation_action(coop, invitation_id, action):
    """The manager withdraws a pending invitation or makes a new link for it."""
    if not RevokeForm().validate_on_submit() or action not in ("withdraw", "renew"):
        abort(400 if action in ("withdraw", "renew") else 404)
    back = url_for("coops.members", coop_id=coop.id)
    web.refusal_flashed(back, passing=404)
    if action == "withdraw":
        invitations.withdraw(coop, invitation_id, current_user)
        flash(_("Invitation withdrawn."), "info")
    else:
        _flash_link(*invitations.renew(coop, invitation_id, current_user))
    return redirect(back)


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
    services.revoke_role(coop, user, role, by=current_user)
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


# ---------------------------------------------------------------- the invited person's pages

@bp.route("/invitations")
@login_required
def my_invitations():
    return render_template("coops/invitations.html",
                           invitations=invitations.for_user(current_user),
                           answer_form=RevokeForm())


@bp.route("/invitations/<token>", methods=["GET"])
def invitation(token):
    """An invitation's link: logged in as its addressee, accept or decline; otherwise log in
    (or, for an e-mail with no account yet, make one) to answer."""
    found = invitations.by_token(token)
    addressee = invitations.addressee(found)
    mine = (current_user.is_authenticated and addressee is not None
            and addressee.id == current_user.id)
    return render_template("coops/invitation.html", invitation=found, token=token, mine=mine,
                           form=InvitationAccountForm(), answer_form=RevokeForm())


@bp.route("/invitations/<token>/account", methods=["POST"])
@web.unit_of_work
def invitation_account(token):
    """An account for the invitation's e-mail, made to answer it, then logged in."""
    found = invitations.by_token(token)
    form = InvitationAccountForm()

    def page(status):
        return render_template("coops/invitation.html", invitation=found, token=token,
                               mine=False, form=form, answer_form=RevokeForm()), status
    if current_user.is_authenticated or not form.validate_on_submit():
        return page(422)
    web.refusal_on_form(form, page)
    user = invitations.sign_up_to_answer(found, name=form.name.data,
                                         password=form.password.data)
    session.clear()
    login_user(user)
    return redirect(url_for("coops.invitation", token=token))


@bp.route("/invitations/<int:invitation_id>/<answer>", methods=["POST"])
@login_required
@web.unit_of_work
def answer_invitation(invitation_id, answer):
    """The invited person, logged in with the invitation's e-mail or phone, accepts or
    declines it; anyone else's invitation is a 404."""
    if answer not in ("accept", "decline"):
        abort(404)
    if not RevokeForm().validate_on_submit():
        abort(400)
    found = invitations.mine(current_user, invitation_id)
    web.refusal_flashed(url_for("coops.my_invitations"), passing=404)
    if answer == "accept":
        invitations.accept(found, current_user)
        flash(_("Welcome to %(coop)s.", coop=found.coop.name), "info")
        return redirect(home_for(current_user))
    invitations.decline(found, current_user)
    flash(_("Invitation declined."), "info")
    return redirect(url_for("coops.my_invitations"))
