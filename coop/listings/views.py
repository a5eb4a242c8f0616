from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from ..catalog import services as catalog
from ..common import confirm, web
from ..common.access import roles_in
from ..common.errors import ValidationFailed
from ..common.quantities import grams_to_decimal
from ..extensions import db
from ..models import Listing
from sqlalchemy import select
from . import services
from .blueprint import bp
from .forms import ListingForm, WithdrawForm
from .labels import LISTING_STATUS

PRODUCT = {"crop": "product", "grade": "product"}  # the form's one select for crop and grade


def _product_choices():
    """One option per crop and grade, named in full ("Café pergamino — Excelente") so the
    closed select reads right; first a placeholder, so that nothing is chosen for the farmer."""
    choices = [("", _("Choose the crop and grade"))]
    for crop in catalog.all_crops():
        choices += [(f"{crop.slug}/{g.code}",
                     f"{catalog.crop_name(crop)} — {catalog.grade_name(g)}")
                    for g in crop.grades]
    return choices


def _farmer_coops():
    return [(m.coop_id, m.coop.name) for m in current_user.memberships if m.role == "farmer"]


def _require_farmer():
    if not _farmer_coops():
        abort(403)


def _prepare(form: ListingForm, current_point: str = ""):
    form.product.choices = _product_choices()
    form.coop_id.choices = _farmer_coops()
    plots = services.farmer_plot_choices(current_user)
    several = len(form.coop_id.choices) > 1
    form.plot_ids.choices = [(pid, f"{name} ({coop_name})" if several else name)
                             for pid, name, _coop, coop_name in plots]
    if request.method == "GET" and len(plots) == 1:
        form.plot_ids.data = [plots[0][0]]   # a farmer with one plot: it, by default
    form.collection_point.choices = _point_choices([c for c, _name in form.coop_id.choices],
                                                   current_point)
    posted = request.form.get("collection_point") if request.method == "POST" else None
    if posted and posted not in {value for value, _text in form.collection_point.choices}:
        # Keep what was sent (an old copy of the form): shown with the service's refusal.
        form.collection_point.choices.append((posted, posted))


def _point_choices(coop_ids: list[int], current: str = "") -> list[tuple[str, str]]:
    """The farmer's cooperatives' collection points (one query), by name; with several
    cooperatives each point says whose it is."""
    from ..cooperatives.models import Cooperative, CollectionPoint
    rows = db.session.execute(
        select(CollectionPoint.name, CollectionPoint.place, Cooperative.name)
        .join(Cooperative, Cooperative.id == CollectionPoint.coop_id)
        .where(CollectionPoint.coop_id.in_(coop_ids))
        .order_by(CollectionPoint.name)).all() if coop_ids else []
    choices, seen = [("", "—")], set()
    for name, place, coop_name in rows:
        if name in seen:
            continue
        seen.add(name)
        text = f"{name} — {place}" if place else name
        choices.append((name, f"{text} ({coop_name})" if len(coop_ids) > 1 else text))
    if current and current not in seen:
        choices.append((current, current))
    return choices


def _photo_bytes(form) -> bytes | None:
    upload = form.photo.data
    if upload and getattr(upload, "filename", ""):
        return upload.read(11 * 1024 * 1024)
    return None


def _posted_plots(form) -> list[int] | None:
    """The plots ticked; None when the form showed no plot boxes (an older copy of the page):
    then the service's default applies (the farmer's only plot)."""
    if not request.form.get("plot_ids_shown"):
        return None
    return list(form.plot_ids.data or [])


def _split_product(value: str) -> tuple[str, str]:
    crop, _, grade = (value or "").partition("/")
    return crop, grade


@bp.route("/my/listings")
@login_required
def mine():
    _require_farmer()
    only = request.args.get("status")
    only = only if only in LISTING_STATUS else None
    found = services.farmer_listings_page(current_user, request.args.get("cursor"), status=only)
    return render_template("listings/mine.html", listings=found.items, found=found,
                           plot_names=services.plot_names_of([l.id for l in found.items]),
                           status=only, statuses=list(LISTING_STATUS),
                           withdraw_form=WithdrawForm())


@bp.route("/my/listings/new", methods=["GET", "POST"])
@login_required
@web.unit_of_work
def new():
    _require_farmer()
    form = ListingForm()
    _prepare(form)
    if form.validate_on_submit():
        crop, grade = _split_product(form.product.data)
        web.refusal_on_form(form, lambda status: (
            render_template("listings/form.html", form=form, listing=None), status),
            rename=PRODUCT)
        services.create_listing(
            current_user, crop=crop, grade=grade, quantity_kg=form.quantity_kg.data,
            harvested_on=form.harvested_on.data, collection_point=form.collection_point.data,
            notes=form.notes.data, coop_id=form.coop_id.data if len(form.coop_id.choices) > 1
            else None, photo=_photo_bytes(form), plot_ids=_posted_plots(form),
            idempotency_key=request.form.get("idempotency_key") or None)
        flash(_("Harvest listed."), "info")
        return redirect(url_for("listings.mine"))
    return render_template("listings/form.html", form=form, listing=None), \
        422 if form.errors else 200


@bp.route("/my/listings/<int:listing_id>/edit", methods=["GET", "POST"])
@login_required
@web.unit_of_work
def edit(listing_id):
    _require_farmer()
    listing = services.own_listing(current_user, listing_id)
    form = ListingForm(obj=None)
    _prepare(form, listing.collection_point)
    if request.method == "GET":
        form.product.data = f"{listing.crop.slug}/{listing.grade.code}"
        form.quantity_kg.data = grams_to_decimal(listing.quantity_g)
        form.harvested_on.data = listing.harvested_on.isoformat()
        form.collection_point.data = listing.collection_point
        form.notes.data = listing.notes
        form.coop_id.data = listing.coop_id
        form.plot_ids.data = services.plots_of([listing.id])[listing.id]
    elif form.validate_on_submit():
        crop, grade = _split_product(form.product.data)
        web.refusal_on_form(form, lambda status: (
            render_template("listings/form.html", form=form, listing=listing), status),
            rename=PRODUCT)
        services.update_listing(current_user, listing.id, crop=crop,
                                quantity_kg=form.quantity_kg.data,
                                harvested_on=form.harvested_on.data, grade=grade,
                                collection_point=form.collection_point.data,
                                notes=form.notes.data, photo=_photo_bytes(form),
                                plot_ids=_posted_plots(form))
        flash(_("Listing saved."), "info")
        return redirect(url_for("listings.mine"))
    else:
        return render_template("listings/form.html", form=form, listing=listing), 422
    return render_template("listings/form.html", form=form, listing=listing)


@bp.route("/my/listings/<int:listing_id>/withdraw", methods=["POST"])
@login_required
@web.unit_of_work
def withdraw(listing_id):
    _require_farmer()
    form = WithdrawForm()
    if not form.validate_on_submit():
        abort(400)
    web.refusal_flashed(url_for("listings.mine"), passing=404)
    preview = services.preview_withdraw_listing(current_user, listing_id)
    step = confirm.check(f"listings.withdraw:{listing_id}", preview)
    if not step.confirmed:
        listing = db.session.get(Listing, listing_id)
        return step.render("listings/confirm_withdraw.html", preview=preview,
                           listing=listing, back=url_for("listings.mine"),
                           yes=_("Yes, withdraw it"))
    services.withdraw_listing(current_user, listing_id)
    flash(_("Listing withdrawn."), "info")
    return redirect(url_for("listings.mine"))


@bp.route("/listings/<int:listing_id>/photo")
@login_required
def photo(listing_id):
    """The photo, for its farmer and the managers of its coop only."""
    listing = db.session.get(Listing, listing_id)
    if listing is None or (listing.farmer_user_id != current_user.id
                           and "manager" not in roles_in(current_user, listing.coop_id)):
        abort(404)
    photo = services.get_photo(listing.id)
    if photo is None:
        abort(404)
    if request.if_none_match and photo.digest in request.if_none_match:
        return Response(status=304)
    response = Response(photo.data, mimetype=photo.content_type)
    response.set_etag(photo.digest)
    response.headers["Cache-Control"] = "private, max-age=31536000, immutable"
    return response


@bp.route("/listings/<int:listing_id>/photo/<int:width>")
def photo_sized(listing_id, width):
    """The photo at a size a page shows (srcset): for buyers and visitors while the harvest is
    offered or sold, always for its farmer and the coop's managers. Derived from the one stored
    image and cached (coop/listings/photos.py)."""
    from .photos import THUMB_WIDTHS, cached_thumbnail, thumbnail
    if width not in THUMB_WIDTHS:
        abort(404)
    listing = db.session.get(Listing, listing_id)
    if listing is None or not listing.photo_digest or not services.photo_visible_to(
            listing, current_user):
        abort(404)
    etag = f"{listing.photo_digest[:32]}-{width}"
    if request.if_none_match and etag in request.if_none_match:
        return Response(status=304)
    data = cached_thumbnail(listing.photo_digest, width)
    if data is None:
        photo = services.get_photo(listing.id)
        if photo is None:
            abort(404)
        data = thumbnail(photo.data, photo.digest, width)
    response = Response(data, mimetype="image/webp")
    response.set_etag(etag)
    # The URL carries the photo's digest (?v=): a new photo is a new URL.
    response.headers["Cache-Control"] = "private, max-age=31536000, immutable"
    return response

