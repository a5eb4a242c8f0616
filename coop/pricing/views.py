from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..common import web
from ..common.access import require_member
from ..common.numbers import page_locale
from ..listings.views import PRODUCT, _product_choices
from . import services
from .forms import PriceForm

bp = Blueprint("pricing", __name__)


def _page(coop, form, status=200):
    versions = services.current_prices(coop.id)
    rows = [(v, services.highest(v), services.tiers(v)) for v in versions]
    return render_template("pricing/prices.html", coop=coop, rows=rows, form=form,
                           history=services.history(coop.id)), status


@bp.route("/manage/coops/<int:coop_id>/prices", methods=["GET", "POST"])
@web.coop_view("manager", "treasurer")
def prices(coop):
    form = PriceForm()
    form.product.choices = _product_choices()
    if form.is_submitted():
        require_member(coop.id, "manager")  # the treasurer reads the prices; the manager sets
        if not form.validate():
            return _page(coop, form, 422)
        crop, _sep, grade = (form.product.data or "").partition("/")

        def refused(exc):
            # A price far from the last asks to be confirmed: the token comes with the refusal.
            form.confirm.data = False
            form.confirm_token.data = getattr(exc, "token", "")
            web.show_on_form(form, exc, rename=PRODUCT)
            return _page(coop, form, exc.status)
        web.on_refusal(refused)
        services.set_price(coop, current_user, crop=crop, grade=grade,
                           floor=form.floor.data, farmer_price=form.farmer_price.data,
                           commission_kind=form.commission_kind.data,
                           commission=form.commission.data, premium=form.premium.data,
                           tiers_text=form.tiers.data or "", note=form.note.data,
                           locale=page_locale(),
                           confirm=form.confirm_token.data if form.confirm.data else "")
        flash(_("Price saved. Open pools keep the price they opened with."), "info")
        return redirect(url_for("pricing.prices", coop_id=coop.id))
    return _page(coop, form)
