from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from ..common.access import require_member
from ..common.errors import DomainError
from ..common.forms import apply_error
from ..common.numbers import page_locale
from ..cooperatives import services as coop_services
from ..extensions import db
from ..listings.views import _product_choices
from . import services
from .forms import PriceForm

bp = Blueprint("pricing", __name__)


def _page(coop, form, status=200):
    versions = services.current_list(coop.id)
    rows = [(v, services.highest(v), services.tiers(v)) for v in versions]
    return render_template("pricing/prices.html", coop=coop, rows=rows, form=form,
                           history=services.history(coop.id)), status


@bp.route("/manage/coops/<int:coop_id>/prices", methods=["GET", "POST"])
@login_required
def prices(coop_id):
    require_member(coop_id, "manager", "treasurer")
    coop = coop_services.get_coop(coop_id)
    form = PriceForm()
    form.product.choices = _product_choices()
    if form.is_submitted():
        require_member(coop_id, "manager")
        if not form.validate():
            return _page(coop, form, 422)
        crop, _sep, grade = (form.product.data or "").partition("/")
        try:
            services.set_price(coop, current_user, crop=crop, grade=grade,
                               floor=form.floor.data, farmer_price=form.farmer_price.data,
                               commission_kind=form.commission_kind.data,
                               commission=form.commission.data, premium=form.premium.data,
                               tiers_text=form.tiers.data or "", note=form.note.data,
                               locale=page_locale(),
                               confirm=form.confirm_token.data if form.confirm.data else "")
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            form.confirm.data = False
            form.confirm_token.data = getattr(exc, "token", "")
            if "crop" in exc.fields or "grade" in exc.fields:
                exc.fields = {"product": exc.fields.get("crop", []) + exc.fields.get("grade", [])}
            apply_error(form, exc)
            return _page(coop, form, exc.status)
        flash(_("Price saved. Open pools keep the price they opened with."), "info")
        return redirect(url_for("pricing.prices", coop_id=coop.id))
    return _page(coop, form)
