"""The lot's EUDR page for its buyers and its coop's staff (blueprint `eudr`): whether the
lot is EUDR-ready (else what is missing), the downloads of its data pack (GeoJSON, base64,
JSON, CSV: the bytes first issued), and the buyer's DDS reference with its history. Rules
in coop/lots/eudr.py; views are thin."""
from __future__ import annotations

from flask import Blueprint, Response, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from ..common import confirm, web
from . import eudr
from .eudr_forms import DdsForm
from .eudr_models import PACK_FORMATS

bp = Blueprint("eudr", __name__)

DOWNLOADS = (
    ("geojson", "GeoJSON"),
    ("geojson_b64", "GeoJSON base64"),
    ("json", "JSON"),
    ("csv", "CSV"),
)


def _page(lot_id: int, form: DdsForm | None = None, status: int = 200):
    audience = eudr.audience_for(current_user, lot_id)
    detail, missing = eudr.status(audience)
    own = None if audience.is_coop else eudr.dds_of(audience.lot.id, audience.buyer_id)
    if form is None:
        form = DdsForm(formdata=None)
        form.replaces.data = own.reference if own else ""
    return render_template(
        "lots/eudr_lot.html", lot=audience.lot, detail=detail, audience=audience,
        missing=missing, net_g=eudr.net_g(audience, detail), form=form, own=own,
        references=eudr.dds_references(audience.lot.id) if audience.is_coop else [],
        history=eudr.dds_changes(audience.lot.id, audience.buyer_id),
        packs=eudr.issued_packs(audience), downloads=DOWNLOADS,
        format_names=dict(DOWNLOADS),
        hs_heading=eudr.EUDR_HS_HEADINGS.get(detail.crop_slug),
        not_in_scope=eudr.NOT_IN_SCOPE_TEXT), status


@bp.route("/lots/<int:lot_id>/eudr")
@login_required
@web.unit_of_work
def lot(lot_id):
    return _page(lot_id)


@bp.route("/lots/<int:lot_id>/eudr/download/<fmt>")
@login_required
@web.unit_of_work
def download(lot_id, fmt):
    if fmt not in PACK_FORMATS:
        return render_template("error.html", code=404,
                               message=_("We could not find that page.")), 404

    def refused(exc):
        if isinstance(exc, eudr.Incomplete):
            audience = eudr.audience_for(current_user, lot_id)
            return render_template("lots/eudr_incomplete.html", lot=audience.lot,
                                   missing=exc.missing), 422
        # A crop outside the regulation says so; any other 404 reads like every 404.
        message = exc.message if isinstance(exc, eudr.NotInScope) or exc.status != 404 \
            else _("We could not find that page.")
        return render_template("error.html", code=exc.status, message=message), exc.status
    web.on_refusal(refused)
    pack = eudr.issue(current_user, lot_id, fmt)
    response = Response(pack.data, mimetype=eudr.MEDIA_TYPES[fmt].split(";")[0])
    response.headers["Content-Disposition"] = \
        f'attachment; filename="{eudr.filename(eudr.lots.get_lot(lot_id), fmt)}"'
    response.headers["Digest"] = f"sha-256={pack.digest}"
    return response


@bp.route("/lots/<int:lot_id>/eudr/dds", methods=["POST"])
@login_required
@web.unit_of_work
def dds(lot_id):
    eudr.audience_for(current_user, lot_id)  # outsiders: 404 before anything is read
    form = DdsForm()
    if not form.validate_on_submit():
        return _page(lot_id, form, 422)
    web.refusal_on_form(form, lambda status: _page(lot_id, form, status))
    change = eudr.preview_dds_reference(current_user, lot_id, form.reference.data)
    if change.changes:
        step = confirm.check(f"eudr.dds:{lot_id}", change)
        if not step.confirmed:
            return step.render("lots/eudr_confirm_dds.html", change=change,
                               lot=eudr.lots.get_lot(lot_id),
                               back=url_for("eudr.lot", lot_id=lot_id),
                               yes=_("Yes, change the reference"))
    eudr.record_dds_reference(current_user, lot_id, form.reference.data,
                              replaces=form.replaces.data or None)
    flash(_("DDS reference recorded."), "info")
    return redirect(url_for("eudr.lot", lot_id=lot_id))
