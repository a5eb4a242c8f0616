import secrets
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import (Blueprint, abort, current_app, flash, jsonify, redirect, render_template,
                   request, url_for)
from flask_babel import gettext as _
from flask_login import current_user, login_required

from ..auth import organisations
from ..common import confirm, web
from ..common.access import is_farmer, require_member
from ..common.errors import ValidationFailed
from ..common.models import utcnow
from ..common.transactions import reads_only
from ..extensions import db
from ..listings.views import PRODUCT, _product_choices
from ..pricing import services as pricing
from . import cards, services
from ..invoices import services as invoices
from .forms import TEST_CARDS, ActionForm, ChangeOrderForm, OrderForm, PoolForm, TermsForm
from .labels import ORDER_STATUS, POOL_STATUS

bp = Blueprint("pools", __name__)


def _known(code, labels):
    """A status filter from the query string: one of the labelled codes, else none."""
    return code if code in labels else None


def _view(pool):
    return {"pool": pool, "price": services.current_price(pool),
            "highest": pricing.highest(pool.price), "tiers": pricing.tiers(pool.price),
            "tier_prices": [(grams, pricing.breakdown(pool.price, grams))
                            for grams, _value in pricing.tiers(pool.price)]}


@bp.route("/pools")
def index():
    found = services.pools_page(request.args.get("cursor"), status="open")
    return render_template("pools/index.html", items=[_view(p) for p in found.items],
                           found=found, now=utcnow())


@bp.route("/pools/<int:pool_id>", methods=["GET", "POST"])
@reads_only  # on GET
@web.unit_of_work
def detail(pool_id):
    pool = services.get_pool(pool_id)
    if request.method != "POST" and not _may_order():
        # A visitor, a farmer, an accounts user: the page shows no join form, so none is
        # built (its fields, its choices, its CSRF token are half a visitor's page's work).
        form = None
    else:
        form = OrderForm()
        form.payment_method.choices = _payment_choices()
        if not form.is_submitted() and form.payment_method.choices:
            form.payment_method.data = form.payment_method.choices[0][0]

    def page(status=200):
        mine = services.buyer_pool_orders(current_user, pool.id) \
            if current_user.is_authenticated else []
        from ..listings.services import pool_photos
        return render_template("pools/detail.html", now=utcnow(), form=form, mine=mine,
                               refunds=_refunds(mine),
                               photos=pool_photos(pool.coop_id, pool.crop_id, pool.grade_id),
                               test_cards=current_app.config["STRIPE_TEST_PAYMENT_METHODS"],
                               card_entry=cards.card_entry_enabled(),
                               **_view(pool)), status
    if form is None:
        return page()
    if not form.is_submitted():
        form.idempotency_key.data = secrets.token_urlsafe(24)
        return page()
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login", next=url_for("pools.detail", pool_id=pool.id)))
    if current_user.buyer_id and not invoices.has_billing(current_user.buyer_id):
        # Invoices need the buyer's billing details: the form, then back to this pool.
        flash(_("Before your first order, give your organisation's billing details."), "info")
        return redirect(url_for("invoices.billing",
                                next=url_for("pools.detail", pool_id=pool.id)))
    if not form.validate():
        return page(422)

    def refused(exc):
        db.session.expire(pool)  # a refused order may have moved what the page shows
        web.show_on_form(form, exc)
        if exc.code in ("payment_declined", "order_failed"):
            # That key has its answer; trying again (another card) is a new order.
            form.idempotency_key.data = secrets.token_urlsafe(24)
        return page(exc.status)
    web.on_refusal(refused)
    if form.payment_method.data not in dict(form.payment_method.choices):
        # A sandbox test card where the sandbox is not configured, another buyer's card...
        form.payment_method.errors = [_("Choose one of the cards offered.")]
        return page(422)
    preview = services.preview_order(current_user, pool.id,
                                     quantity_kg=form.quantity_kg.data,
                                     payment_method=form.payment_method.data)
    step = confirm.check(f"pools.order:{pool.id}", preview)
    if not step.confirmed:
        return step.render(
            "pools/confirm_order.html", pool=pool, preview=preview,
            card=dict(form.payment_method.choices).get(form.payment_method.data),
            back=url_for("pools.detail", pool_id=pool.id),
            yes=_("Yes, hold the amount on my card"))
    key = form.idempotency_key.data
    method = form.payment_method.data
    if method == NEW_CARD or method.startswith("card:"):
        step_done, _created = cards.place_card_order(
            current_user, pool.id, quantity_kg=form.quantity_kg.data,
            saved_card_id=int(method[5:]) if method.startswith("card:") else None,
            idempotency_key=f"form:{key}" if key else step.key)
        if step_done.order.status == "authorizing":
            return redirect(url_for("pools.card_page", order_id=step_done.order.id))
        flash(_("Your order is in. The amount is held on your card and taken only if "
                "the pool fills."), "info")
        return redirect(url_for("pools.my_orders"))
    services.place_order(current_user, pool.id, quantity_kg=form.quantity_kg.data,
                         payment_method=form.payment_method.data,
                         idempotency_key=f"form:{key}" if key else step.key)
    flash(_("Your order is in. The amount is held on your card and taken only if "
            "the pool fills."), "info")
    return redirect(url_for("pools.my_orders"))


NEW_CARD = "new"


def _may_order() -> bool:
    """Whether the pool page shows this reader the join form (templates/pools/detail.html):
    a buyer's user whose role in the organisation is not accounts."""
    return bool(current_user.is_authenticated and current_user.buyer_id
                and current_user.buyer_role != "accounts")


def _payment_choices():
    """What the join form offers: a card typed in the next page (Stripe.js configured), the
    buyer's saved cards, and the sandbox's test payment methods only against the sandbox."""
    from ..payments.gateway import is_sandbox
    choices = []
    if cards.card_entry_enabled():
        if current_user.is_authenticated and current_user.buyer_id:
            choices += cards.setup_card_choices(current_user.buyer_id)
        choices.append((NEW_CARD, _("A card: type it on the next page (your bank may ask "
                                    "you to confirm)")))
    if current_app.config.get("STRIPE_TEST_PAYMENT_METHODS") and is_sandbox():
        choices += [(value, str(label)) for value, label in TEST_CARDS]
    return choices


# ---------------------------------------------------------------- card entry (Stripe.js)

def _card_refusal(exc):
    """A refusal on the card page: JSON for the page's script, else a flash."""
    if request.accept_mimetypes.best == "application/json" or request.is_json:
        return jsonify(status="error", code=exc.code, message=exc.message), exc.status
    flash(exc.message, "error")
    return redirect(url_for("pools.my_orders"))


def _card_answer(order, client_secret=None):
    """What the page's script does next, as JSON: go to My orders (authorized), run the
    bank's confirmation with `client_secret`, or say what happened."""
    if order.status == "authorized":
        flash(_("Your order is in. The amount is held on your card and taken only if the "
                "pool fills."), "info")
        return jsonify(status="authorized", redirect=url_for("pools.my_orders"))
    if order.status == "authorizing":
        return jsonify(status="requires_action" if client_secret else "waiting",
                       client_secret=client_secret,
                       message=_("Your bank has not confirmed the card yet. Nothing is held."))
    flash(_("Nothing is held on your card and the kilograms went back to the pool."), "info")
    return jsonify(status="ended", redirect=url_for("pools.detail", pool_id=order.pool_id),
                   message=_("Nothing is held on your card and the kilograms went back to "
                             "the pool."))


@bp.route("/my/orders/<int:order_id>/card")
@login_required
@web.unit_of_work
def card_page(order_id):
    """The one page that loads Stripe.js (with its own Content-Security-Policy): the buyer
    types the card, the bank may ask to confirm it; another buyer's order is 404."""
    from ..payments.gateway import card_page_csp, is_sandbox, stripe_js_url
    if not current_user.buyer_id:
        abort(403)
    web.refusal_flashed(url_for("pools.my_orders"), passing=404)
    found = cards.card_page(current_user, order_id)
    order = found.order
    response = current_app.make_response(render_template(
        "pools/card.html", order=order, pool=order.pool, page=found, form=ActionForm(),
        stripe_js=stripe_js_url(), publishable_key=current_app.config["STRIPE_PUBLISHABLE_KEY"],
        flow="setup" if is_sandbox() else "payment",
        minutes=int(cards.auth_timeout().total_seconds() // 60)))
    response.headers["Content-Security-Policy"] = card_page_csp()
    response.headers["Cache-Control"] = "no-store"  # it carries the client_secret
    return response


@bp.route("/my/orders/<int:order_id>/card/setup", methods=["POST"])
@login_required
@web.unit_of_work
def card_setup(order_id):
    """The page confirmed the order's SetupIntent: the card is checked with Stripe, saved if
    ticked, and held (or the bank's confirmation is asked for)."""
    if not ActionForm().validate_on_submit():
        abort(400)
    web.on_refusal(_card_refusal)
    found = cards.use_setup_card(current_user, order_id, save=request.form.get("save") == "1")
    return _card_answer(found.order, found.client_secret)


@bp.route("/my/orders/<int:order_id>/card/return", methods=["POST"])
@login_required
@web.unit_of_work
def card_return(order_id):
    """The page says Stripe.js finished: Minga checks with Stripe itself (authorized only if
    the hold is in place). `failed=1`: the bank refused or the buyer gave up the prompt: the
    order ends (after the same check), nothing held, the kilograms back in the pool."""
    if not ActionForm().validate_on_submit():
        abort(400)
    web.on_refusal(_card_refusal)
    if request.form.get("failed") == "1":
        order = cards.abandon_card_order(current_user, order_id, refused=True)
    else:
        order = cards.confirm_card_order(order_id, user=current_user)
    return _card_answer(order)


@bp.route("/my/orders/<int:order_id>/card/cancel", methods=["POST"])
@login_required
@web.unit_of_work
def card_cancel(order_id):
    """The buyer gives up typing the card: nothing is held, the kilograms go back."""
    if not ActionForm().validate_on_submit():
        abort(400)
    web.refusal_flashed(url_for("pools.my_orders"), passing=404)
    order = cards.abandon_card_order(current_user, order_id)
    if order.status == "authorized":
        flash(_("Your card was confirmed already: the order stands. Withdraw it from My "
                "orders if you do not want it."), "info")
        return redirect(url_for("pools.my_orders"))
    flash(_("Nothing is held on your card and the kilograms went back to the pool."), "info")
    return redirect(url_for("pools.detail", pool_id=order.pool_id))


@bp.route("/my/cards")
@login_required
def my_cards():
    """The buyer's saved cards, each with a button to remove it."""
    from ..payments import cards as saved
    if not current_user.buyer_id:
        abort(403)
    return render_template("pools/my_cards.html", cards=saved.saved_cards(current_user.buyer_id),
                           form=ActionForm())


@bp.route("/my/cards/<int:card_id>/remove", methods=["POST"])
@login_required
@web.unit_of_work
def remove_card(card_id):
    from ..payments import cards as saved
    from ..payments.gateway import PaymentError
    if not current_user.buyer_id:
        abort(403)
    if not ActionForm().validate_on_submit():
        abort(400)
    web.refusal_flashed(url_for("pools.my_cards"), passing=404)
    try:
        saved.remove_card(current_user.buyer_id, card_id)
    except PaymentError:
        flash(_("The card could not be removed right now; try again in a moment."), "error")
        return redirect(url_for("pools.my_cards"))
    flash(_("Card removed. It will not be offered again."), "info")
    return redirect(url_for("pools.my_cards"))


@bp.route("/my/orders")
@login_required
def my_orders():
    if not current_user.buyer_id:
        abort(403)
    return _my_orders_page()


def _my_orders_page(change_form=None, change_failed=None, status=200):
    """`change_failed`: (order id, what was typed, why) to show on that order's field."""
    only = _known(request.args.get("status"), ORDER_STATUS)
    found = services.buyer_orders_page(current_user, request.args.get("cursor"), status=only)
    orders = found.items
    return render_template("pools/my_orders.html", orders=orders, refunds=_refunds(orders),
                           found=found, status=only, statuses=list(ORDER_STATUS),
                           change_form=change_form or ChangeOrderForm(formdata=None),
                           change_failed=change_failed, action_form=ActionForm(),
                           now=utcnow()), status


def _refunds(orders):
    from ..intake import services as intake
    return intake.order_refunds(o.id for o in orders if o.status == "captured")


@bp.route("/my/orders/<int:order_id>/change", methods=["POST"])
@login_required
@web.unit_of_work
def change_order(order_id):
    form = ChangeOrderForm()
    services.own_order(current_user, order_id)
    organisations.require_purchaser(current_user)  # 403 for an accounts user
    typed = request.form.get("quantity_kg", "")[:64]
    if not form.validate_on_submit():
        why = " ".join(str(e) for e in form.quantity_kg.errors) or _("Give the new kilograms.")
        # The order's own field shows what was typed and how to write it; nothing changed.
        return _my_orders_page(form, (order_id, typed, why), 422)

    def refused(exc):
        if exc.fields.get("quantity_kg"):
            return _my_orders_page(form, (order_id, typed, exc.message), exc.status)
        flash(exc.message, "error")
        return redirect(url_for("pools.my_orders"))
    web.on_refusal(refused)
    preview = services.preview_change(current_user, order_id,
                                      quantity_kg=form.quantity_kg.data)
    step = confirm.check(f"pools.change:{order_id}", preview)
    if not step.confirmed and preview.grams != preview.old_grams:
        return step.render("pools/confirm_order.html", preview=preview,
                           pool=services.get_pool(preview.pool_id),
                           back=url_for("pools.my_orders"),
                           yes=_("Yes, change my order"))
    services.change_order(current_user, order_id, quantity_kg=form.quantity_kg.data)
    flash(_("Order changed; the hold on your card was adjusted."), "info")
    return redirect(url_for("pools.my_orders"))


@bp.route("/my/orders/<int:order_id>/withdraw", methods=["POST"])
@login_required
@web.unit_of_work
def withdraw_order(order_id):
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    services.own_order(current_user, order_id)  # another buyer's order: 404 first
    organisations.require_purchaser(current_user)  # 403 for an accounts user
    web.refusal_flashed(url_for("pools.my_orders"), passing=404)
    preview = services.preview_withdraw(current_user, order_id)
    step = confirm.check(f"pools.withdraw:{order_id}", preview)
    if not step.confirmed:
        return step.render("pools/confirm_order.html", preview=preview, withdraw=True,
                           pool=services.get_pool(preview.pool_id),
                           back=url_for("pools.my_orders"),
                           yes=_("Yes, withdraw my order"))
    services.withdraw_order(current_user, order_id)
    flash(_("Order withdrawn; the hold on your card was released."), "info")
    return redirect(url_for("pools.my_orders"))


def _farmer_page(template):
    if not is_farmer(current_user):
        abort(403)
    from ..intake import services as intake
    from ..payouts.services import rail_names
    if template == "pools/my_sales.html":
        deliveries, found = intake.farmer_deliveries_page(current_user,
                                                          request.args.get("cursor"))
        return render_template(template, deliveries=deliveries, found=found,
                               rails=rail_names(), now=utcnow())
    todo, todo_found = intake.farmer_deliveries_page(
        current_user, request.args.get("todo"), stage="to_deliver")
    done, done_found = intake.farmer_deliveries_page(
        current_user, request.args.get("cursor"), stage="received")
    return render_template(template, todo=todo, todo_found=todo_found, done=done,
                           done_found=done_found, rails=rail_names(), now=utcnow())


@bp.route("/my/sales")
@login_required
def my_sales():
    return _farmer_page("pools/my_sales.html")


@bp.route("/my/deliveries")
@login_required
def my_deliveries():
    return _farmer_page("pools/my_deliveries.html")


@bp.route("/manage/coops/<int:coop_id>/pools", methods=["GET", "POST"])
@web.coop_view("manager")
def manage(coop):
    form = PoolForm()
    form.product.choices = _product_choices()

    def page(status=200):
        only = _known(request.args.get("status"), POOL_STATUS)
        found = services.pools_page(request.args.get("cursor"), coop_id=coop.id, status=only)
        items = [_view(p) for p in found.items]
        return render_template("pools/manage.html", coop=coop, form=form, items=items,
                               found=found, status=only, statuses=list(POOL_STATUS),
                               now=utcnow()), status
    if not form.is_submitted():
        return page()
    if not form.validate():
        return page(422)
    crop, _sep, grade = (form.product.data or "").partition("/")
    web.refusal_on_form(form, page, rename=PRODUCT)
    closes = _local_datetime(form.closes_at.data)
    pool = services.open_pool(coop, current_user, crop=crop, grade=grade,
                              min_kg=form.min_kg.data, max_kg=form.max_kg.data,
                              closes_at=closes, delivery_terms=form.delivery_terms.data,
                              delivery_place=form.delivery_place.data,
                              delivery_expected_on=form.delivery_expected_on.data)
    flash(_("Pool opened."), "info")
    return redirect(url_for("pools.manage_pool", pool_id=pool.id))


def _local_datetime(text):
    """A datetime-local value in the app's time zone (or an ISO time with offset)."""
    try:
        moment = datetime.fromisoformat((text or "").strip())
    except ValueError:
        raise ValidationFailed(_("Give the closing time as a date and time."),
                               fields={"closes_at": [_("Not a date and time.")]})
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"]))
    return moment


# The pool's page shows its first orders and allocations and totals computed in SQL; the
# full lists are a page at a time (pools.pool_orders, intake.pool_intake).
SHOWN = 20


def _names(orders, allocations) -> tuple[dict, dict]:
    from sqlalchemy import select
    from ..auth.models import Buyer, User
    buyer_ids = {o.buyer_id for o in orders}
    farmer_ids = {a.farmer_user_id for a in allocations}
    buyers = dict(db.session.execute(select(Buyer.id, Buyer.organisation)
                                     .where(Buyer.id.in_(buyer_ids))).all()) if buyer_ids else {}
    farmers = dict(db.session.execute(select(User.id, User.name)
                                      .where(User.id.in_(farmer_ids))).all()) if farmer_ids else {}
    return buyers, farmers


def _staff_pool(pool_id):
    """A pool for its coop's manager or treasurer (404 / 403 for anyone else)."""
    pool = services.get_pool(pool_id)
    require_member(pool.coop_id, "manager", "treasurer")
    return pool


@bp.route("/manage/pools/<int:pool_id>")
@login_required
@web.unit_of_work
def manage_pool(pool_id):
    return _manage_pool_page(_staff_pool(pool_id))


def _terms_form(pool):
    form = TermsForm(formdata=None)
    form.delivery_terms.data = pool.delivery_terms
    form.delivery_place.data = pool.delivery_place
    form.delivery_expected_on.data = (pool.delivery_expected_on.isoformat()
                                      if pool.delivery_expected_on else "")
    return form


def _manage_pool_page(pool, terms_form=None, status=200):
    from ..intake import services as intake
    totals = services.pool_totals(pool.id)
    orders = services.pool_orders(pool.id, limit=SHOWN)
    allocations = services.pool_allocations(pool.id, limit=SHOWN) if totals.allocations else []
    buyers, farmers = _names(orders, allocations)
    delivered = intake.pool_intake_totals(pool.id) if allocations else None
    intakes = intake.pool_intakes(pool.id, [a.id for a in allocations]) \
        if delivered and delivered["count"] else {}
    refunds = intake.order_refunds(o.id for o in orders) if delivered and delivered["count"] \
        else {}
    return render_template("pools/manage_pool.html", orders=orders, allocations=allocations,
                           totals=totals, delivered=delivered, shown=SHOWN,
                           buyers=buyers, farmers=farmers, intakes=intakes, refunds=refunds,
                           settling=_settling(pool),
                           delivery_due=intake.delivery_due(pool) if allocations else None,
                           terms_form=terms_form or _terms_form(pool),
                           action_form=ActionForm(), now=utcnow(), **_view(pool)), status


@bp.route("/manage/pools/<int:pool_id>/terms", methods=["POST"])
@login_required
@web.unit_of_work
def change_terms(pool_id):
    """The manager changes an open pool's delivery terms; a refusal shows on the field with
    what was typed."""
    pool = _manager_pool(pool_id)
    form = TermsForm()
    if not form.validate_on_submit():
        return _manage_pool_page(pool, form, 422)
    web.refusal_on_form(form, lambda status: _manage_pool_page(pool, form, status))
    services.change_terms(pool, delivery_terms=form.delivery_terms.data,
                          delivery_place=form.delivery_place.data,
                          delivery_expected_on=form.delivery_expected_on.data)
    flash(_("Delivery terms saved."), "info")
    return redirect(url_for("pools.manage_pool", pool_id=pool.id))


@bp.route("/manage/pools/<int:pool_id>/orders")
@login_required
@web.unit_of_work
def pool_orders(pool_id):
    """Every order of a pool, a page at a time."""
    from ..common.paging import page_number
    pool = _staff_pool(pool_id)
    found = services.pool_orders_page(pool.id, page_number(request.args.get("page")))
    buyers, _farmers = _names(found.items, [])
    return render_template("pools/pool_orders.html", pool=pool, found=found, buyers=buyers)


def _manager_pool(pool_id):
    """A pool for its coop's manager only (404 for outsiders, 403 for other members)."""
    pool = services.get_pool(pool_id)
    require_member(pool.coop_id, "manager")
    return pool


def _settling(pool):
    """A decided pool whose holds the workers are still capturing or cancelling: how far they
    are, the figures written the reader's way (None once settled, or while open)."""
    if pool.status == "open" or pool.settled_at is not None:
        return None
    from ..common.numbers import format_number
    progress = services.settlement_progress(pool)
    return {k: format_number(progress[k], "#,##0")
            for k in ("total", "done", "captured", "cancelled", "failed")}


def _pool_step(pool_id, action, preview_of, yes):
    """Close or cancel a pool: the manager confirms the figures first; a refusal is flashed
    on the pool's page. Returns (pool, None) to act, or (None, the confirmation page)."""
    pool = _manager_pool(pool_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    back = url_for("pools.manage_pool", pool_id=pool_id)
    web.refusal_flashed(back)
    preview = preview_of(pool.id)
    step = confirm.check(f"pools.{action}:{pool.id}", preview)
    if not step.confirmed:
        return None, step.render("pools/confirm_close.html", pool=pool, preview=preview,
                                 back=back, yes=yes)
    return pool, None


@bp.route("/manage/pools/<int:pool_id>/close", methods=["POST"])
@login_required
@web.unit_of_work
def close(pool_id):
    pool, page = _pool_step(pool_id, "close", services.preview_close, _("Yes, close the pool"))
    if page:
        return page
    pool = services.close_pool(pool.id)
    if pool.settled_at is None:
        flash(_("Pool closed: %(status)s. The card holds are being settled; this page shows "
                "how far.", status=_(pool.status)), "info")
    else:
        flash(_("Pool closed: %(status)s.", status=_(pool.status)), "info")
    return redirect(url_for("pools.manage_pool", pool_id=pool_id))


@bp.route("/manage/pools/<int:pool_id>/cancel", methods=["POST"])
@login_required
@web.unit_of_work
def cancel(pool_id):
    pool, page = _pool_step(pool_id, "cancel", services.preview_cancel,
                            _("Yes, cancel the pool"))
    if page:
        return page
    services.cancel_pool(pool.id)
    flash(_("Pool cancelled; every hold is being released."), "info")
    return redirect(url_for("pools.manage_pool", pool_id=pool_id))
