from flask import Blueprint, render_template, request
from flask_login import current_user

from ..common.transactions import reads_only
from ..cooperatives import services as coop_services
from ..listings import services as listing_services
from . import services

bp = Blueprint("catalog", __name__)


@bp.route("/")
def home():
    if current_user.is_authenticated:
        from ..auth.views import home_for
        from flask import redirect
        return redirect(home_for(current_user))
    return render_template("catalog/home.html", coops=coop_services.list_coops())


@bp.route("/supply")
@reads_only
def supply():
    crop = request.args.get("crop") or None
    crops = services.all_crops()
    if crop and crop not in {c.slug for c in crops}:
        crop = None
    rows = listing_services.supply(crop_slug=crop)
    return render_template("catalog/supply.html", rows=rows, crops=crops, crop=crop,
                           photos=listing_services.supply_photos() if rows else {})


@bp.route("/crops")
@reads_only
def crops():
    return render_template("catalog/crops.html", crops=services.all_crops())
