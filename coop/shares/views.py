"""Share register pages: the treasurer records payments, subscriptions and redemptions; the
manager and treasurer set the coop's share and advance policy; members see their shares."""
import uuid
from decimal import Decimal

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from ..common import web
from ..common.access import is_farmer, roles_in
from ..common.forms import filter_text
from ..common.money import to_decimal
from ..common.numbers import PERCENT_FORMAT, format_number
from ..cooperatives import finance
from ..cooperatives import services as coop_services
from . import services
from .forms import PaymentForm, RedeemForm, SettingsForm, SubscriptionForm

bp = Blueprint("shares", __name__)


def _member_choices(coop, rows, chosen=None):
    """The members of the page shown (the treasurer finds another with the search box);
    the one chosen on a refused form stays chosen. The service checks membership."""
    choices = [(str(r["profile"].user_id), f"{r['profile'].member_number} · {r['user'].name}")
               for r in rows]
    text = str(chosen or "")
    if text.isascii() and text.isdigit() and len(text) < 19 \
            and text not in {value for value, _label in choices}:
        profile = coop_services.farmer_profile(coop.id, int(text))
        if profile is not None:
            choices.insert(0, (text, f"{profile.member_number} · {profile.user.name}"))
    return choices


def _member_id(value) -> int:
    text = str(value or "")
    if not text.isdigit() or not text.isascii():
        abort(404)
    return int(text)


def _register_page(coop, status=200, payment=None, subscription=None):
    payment = payment or PaymentForm(formdata=None)
    subscription = subscription or SubscriptionForm(formdata=None)
    q = filter_text(request.args.get("q", ""))
    rows, found = services.register(coop, request.args.get("cursor"), q=q)
    payment.member.choices = _member_choices(coop, rows, payment.member.data)
    subscription.member.choices = _member_choices(coop, rows, subscription.member.data)
    if not payment.idempotency_key.data:
        payment.idempotency_key.data = uuid.uuid4().hex
    conf = finance.settings(coop)
    return render_template("shares/register.html", coop=coop, rows=rows, found=found, q=q,
                           conf=conf,
                           withholding_pct=format_number(
                               Decimal(conf.share_withholding_bps) / 100, PERCENT_FORMAT),
                           my_roles=roles_in(current_user, coop.id), payment=payment,
                           subscription=subscription, redeem=RedeemForm(formdata=None)), status


@bp.route("/manage/coops/<int:coop_id>/shares")
@web.coop_view("treasurer", "manager")
def register(coop):
    return _register_page(coop)


@bp.route("/manage/coops/<int:coop_id>/shares/payments", methods=["POST"])
@web.coop_view("treasurer")
def pay(coop):
    form = PaymentForm()
    if not form.validate():
        return _register_page(coop, 422, payment=form)
    web.refusal_on_form(form, lambda status: _register_page(coop, status, payment=form),
                        passing=404)
    amount = services.parse_amount(form.amount.data, coop.currency, "amount")
    services.pay(coop, current_user, _member_id(form.member.data), amount,
                 via=form.via.data, note=form.note.data or "",
                 key=f"share-pay:{form.idempotency_key.data or uuid.uuid4().hex}")
    flash(_("Share payment recorded."), "info")
    return redirect(url_for("shares.register", coop_id=coop.id))


@bp.route("/manage/coops/<int:coop_id>/shares/subscriptions", methods=["POST"])
@web.coop_view("treasurer")
def subscribe(coop):
    form = SubscriptionForm()
    if not form.validate():
        return _register_page(coop, 422, subscription=form)
    web.refusal_on_form(form, lambda status: _register_page(coop, status, subscription=form),
                        passing=404)
    services.set_subscription(coop, current_user, _member_id(form.member.data),
                              services.parse_count(form.shares.data, "shares"))
    flash(_("Subscription changed."), "info")
    return redirect(url_for("shares.register", coop_id=coop.id))


@bp.route("/manage/coops/<int:coop_id>/shares/<int:user_id>/redeem", methods=["POST"])
@web.coop_view("treasurer")
def redeem(coop, user_id):
    form = RedeemForm()
    back = url_for("shares.register", coop_id=coop.id)
    if not form.validate():
        flash(_("Say why the shares are redeemed."), "error")
        return redirect(back)
    web.refusal_flashed(back, passing=404)
    services.redeem(coop, current_user, user_id, note=form.note.data)
    flash(_("Shares redeemed at par; the amount is owed to the member and paid with the "
            "next payout."), "info")
    return redirect(back)


@bp.route("/manage/coops/<int:coop_id>/shares/settings", methods=["GET", "POST"])
@web.coop_view("treasurer", "manager")
def settings(coop):
    conf = finance.settings(coop)
    form = SettingsForm()

    def page(status=200):
        return render_template("shares/settings.html", coop=coop, form=form), status
    if not form.is_submitted():
        form.par_value.data = to_decimal(conf.share_par_minor, coop.currency)
        form.min_shares.data = Decimal(conf.share_min_shares)
        form.withholding_pct.data = Decimal(conf.share_withholding_bps) / 100
        form.advance_pct.data = Decimal(conf.advance_bps) / 100
        return page()
    if not form.validate():
        return page(422)
    web.refusal_on_form(form, page)
    finance.update_settings(
        coop, current_user,
        par_minor=services.parse_amount(form.par_value.data, coop.currency, "par_value"),
        min_shares=services.parse_count(form.min_shares.data, "min_shares"),
        withholding_bps=services.parse_pct(form.withholding_pct.data, "withholding_pct"),
        advance_bps=services.parse_pct(form.advance_pct.data, "advance_pct"))
    flash(_("Settings saved."), "info")
    return redirect(url_for("shares.settings", coop_id=coop.id))


@bp.route("/my/shares")
@login_required
def mine():
    if not is_farmer(current_user):
        abort(403)
    accounts = services.member_accounts(current_user)
    items = []
    for acc in accounts:
        coop = coop_services.get_coop(acc.coop_id)
        items.append({"coop": coop, "account": acc,
                      "subscribed_minor": services.subscribed_minor(coop, acc),
                      "unpaid_minor": services.unpaid_minor(coop, acc),
                      "movements": services.movements(acc)})
    return render_template("shares/mine.html", items=items)
