"""The buyer organisation's pages (issue 14, part 4): its users and roles, the admin's invite
form, role changes and removals (each asks once more), and an invitation's link. Also the
buyer's display currency (part 3). Routes of the auth blueprint."""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from ..common import confirm, web
from . import organisations, services
from .forms import (BuyerInviteForm, BuyerRoleForm, DisplayCurrencyForm, JoinAccountForm,
                    OrganisationActionForm)
from .views import bp, start_session


def _buyer_only():
    if organisations.role_of(current_user) is None:
        abort(403)


def _page(invite_form=None, status=200):
    user = current_user
    buyer_id = user.buyer_id
    is_admin = organisations.role_of(user) == "admin"
    return render_template(
        "auth/organisation.html", users=organisations.members(buyer_id),
        invitations=organisations.pending(buyer_id) if is_admin else [],
        is_admin=is_admin, role_of=organisations.role_of,
        invite_form=invite_form or BuyerInviteForm(formdata=None),
        role_form=BuyerRoleForm(formdata=None), action_form=OrganisationActionForm(),
        invoice_emails=organisations.accounts_emails(buyer_id)), status


@bp.route("/account/organisation")
@login_required
def organisation():
    """Every user of the buyer sees who is in the organisation and in which role."""
    _buyer_only()
    return _page()


def _flash_link(invitation, token) -> None:
    link = url_for("auth.organisation_invitation", token=token, _external=True)
    flash(_("Invitation ready for %(to)s. Send them this link; they join once they accept "
            "it: %(link)s", to=invitation.email, link=link), "info")


@bp.route("/account/organisation/invite", methods=["POST"])
@login_required
@web.unit_of_work
def organisation_invite():
    _buyer_only()
    organisations.require_admin(current_user)
    form = BuyerInviteForm()
    if not form.validate_on_submit():
        return _page(form, 422)
    web.refusal_on_form(form, lambda status: _page(form, status))
    invitation, token = organisations.invite(current_user, email=form.email.data,
                                             role=form.role.data)
    _flash_link(invitation, token)
    return redirect(url_for("auth.organisation"))


@bp.route("/account/organisation/invitations/<int:invitation_id>/withdraw", methods=["POST"])
@login_required
@web.unit_of_work
def organisation_withdraw(invitation_id):
    _buyer_only()
    if not OrganisationActionForm().validate_on_submit():
        abort(400)
    organisations.withdraw(current_user, invitation_id)
    flash(_("Invitation withdrawn."), "info")
    return redirect(url_for("auth.organisation"))


@bp.route("/account/organisation/users/<int:user_id>/role", methods=["POST"])
@login_required
@web.unit_of_work
def organisation_role(user_id):
    """A new role for a user of the organisation, after a confirmation page."""
    _buyer_only()
    form = BuyerRoleForm()
    if not form.validate_on_submit():
        flash(_("Choose admin, purchaser or accounts."), "error")
        return redirect(url_for("auth.organisation"))
    web.refusal_flashed(url_for("auth.organisation"), passing=404)
    preview = organisations.preview_role_change(current_user, user_id, form.role.data)
    step = confirm.check(f"auth.organisation_role:{user_id}", preview)
    if not step.confirmed:
        return step.render("auth/confirm_organisation.html", preview=preview, removing=False,
                           back=url_for("auth.organisation"),
                           yes=_("Yes, change the role"))
    user = organisations.change_role(current_user, user_id, form.role.data)
    flash(_("%(name)s's role is changed.", name=user.name), "info")
    return redirect(url_for("auth.organisation"))


@bp.route("/account/organisation/users/<int:user_id>/remove", methods=["POST"])
@login_required
@web.unit_of_work
def organisation_remove(user_id):
    """A user leaves the organisation (their account stays), after a confirmation page."""
    _buyer_only()
    if not OrganisationActionForm().validate_on_submit():
        abort(400)
    web.refusal_flashed(url_for("auth.organisation"), passing=404)
    preview = organisations.preview_remove(current_user, user_id)
    step = confirm.check(f"auth.organisation_remove:{user_id}", preview)
    if not step.confirmed:
        return step.render("auth/confirm_organisation.html", preview=preview, removing=True,
                           back=url_for("auth.organisation"),
                           yes=_("Yes, remove them from the organisation"))
    removed_self = user_id == current_user.id
    user = organisations.remove(current_user, user_id)
    flash(_("%(name)s is no longer a user of the organisation.", name=user.name), "info")
    return redirect(url_for("auth.account") if removed_self else url_for("auth.organisation"))


# ---------------------------------------------------------------- the invited person's side

def _invitation_page(found, token, form=None, status=200):
    mine = current_user.is_authenticated and (current_user.email or "") == found.email
    # Whether the address has an account is never shown (no oracle): both ways are offered.
    return render_template("auth/organisation_invitation.html", invitation=found, token=token,
                           mine=mine,
                           form=form or JoinAccountForm(formdata=None),
                           answer_form=OrganisationActionForm()), status


@bp.route("/organisation-invitations/<token>")
def organisation_invitation(token):
    """An invitation's link: accept it logged in with the invited address, or make that
    address's account here; anyone else is asked to log in."""
    return _invitation_page(organisations.by_token(token), token)


@bp.route("/organisation-invitations/<token>/accept", methods=["POST"])
@login_required
@web.unit_of_work
def organisation_accept(token):
    if not OrganisationActionForm().validate_on_submit():
        abort(400)
    web.refusal_flashed(url_for("auth.organisation_invitation", token=token), passing=404)
    invitation = organisations.accept(token, current_user._get_current_object())
    flash(_("You are now a user of %(org)s.", org=invitation.buyer.organisation), "info")
    return redirect(url_for("auth.organisation"))


@bp.route("/organisation-invitations/<token>/account", methods=["POST"])
@web.unit_of_work
def organisation_join_account(token):
    """An account for the invited address, made to accept the invitation, then logged in."""
    found = organisations.by_token(token)
    form = JoinAccountForm()
    if not form.validate_on_submit():
        return _invitation_page(found, token, form, 422)
    web.refusal_on_form(form, lambda status: _invitation_page(found, token, form, status),
                        passing=404)
    user = organisations.sign_up_to_accept(token, name=form.name.data,
                                           password=form.password.data)
    start_session(user)
    flash(_("Welcome to Minga. You are now a user of %(org)s.",
            org=found.buyer.organisation), "info")
    return redirect(url_for("auth.organisation"))


# ---------------------------------------------------------------- the display currency

@bp.route("/account/currency", methods=["POST"])
@login_required
@web.unit_of_work
def display_currency():
    """The currency the buyer sees indicative amounts in (the charge stays the coop's)."""
    _buyer_only()
    form = DisplayCurrencyForm()
    if not form.validate_on_submit():
        flash(_("Choose EUR, USD or the cooperative's currency."), "error")
        return redirect(url_for("auth.account"))
    web.refusal_flashed(url_for("auth.account"))
    services.update_preferences(current_user._get_current_object(),
                                display_currency=form.display_currency.data or None)
    flash(_("Indicative amounts are now shown in %(currency)s.",
            currency=form.display_currency.data) if form.display_currency.data else
          _("Prices are shown in the cooperative's currency only."), "info")
    return redirect(url_for("auth.account"))
