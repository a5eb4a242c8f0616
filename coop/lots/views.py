"""The lot pages: the coop's lots and one lot for its managers (deliveries, EUDR state, the
farmers to ask for consent), the bags' labels with their QR code, the lot for its buyers
(names and exact plots only of the farmers who consented), and a farmer's lots. Rules and
reads are in coop.lots.services and coop.lots.pages; views are thin."""
from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_babel import format_percent, gettext as _
from flask_login import current_user, login_required

from ..common import web
from ..common.access import is_farmer
from ..plots import services as plots
from ..plots import svgmap
from . import pages, qr, services
from .models import Lot

bp = Blueprint("lots", __name__)


@bp.app_template_global("lots_of_pools")
def lots_of_pools(pool_ids) -> dict[int, Lot]:
    """{pool id: its lot} for the pools pages' links to the lot (one query)."""
    from sqlalchemy import select

    from ..extensions import db
    ids = list({int(i) for i in pool_ids})
    if not ids:
        return {}
    return {lot.pool_id: lot for lot in db.session.scalars(
        select(Lot).where(Lot.pool_id.in_(ids)))}


def women_share(bps: int | None) -> str:
    """The women's share of a lot's farmers, as a percentage in the reader's locale."""
    return "—" if bps is None else format_percent(bps / 10000, "#,##0%")


# ---------------------------------------------------------------- the coop's lots

@bp.route("/manage/coops/<int:coop_id>/lots")
@web.coop_view("manager", "treasurer")
def coop_lots(coop):
    found = pages.coop_lots_page(coop.id, request.args.get("cursor"))
    return render_template("lots/coop_lots.html", coop=coop, found=found)


# ---------------------------------------------------------------- one lot, its managers

def _map(shapes, title):
    return svgmap.render(shapes, title=title, legend_complete=_("complete"),
                         legend_incomplete=_("incomplete for the EUDR (dashed)"),
                         empty_text=_("No plot of this lot has a geometry."), width=480,
                         height=320)


@bp.route("/manage/lots/<int:lot_id>")
@login_required
@web.unit_of_work
def manage_lot(lot_id):
    lot = services.managed_lot(current_user, lot_id)
    page = pages.lot_page(lot)
    gaps = services.gaps(page.detail) if lot.eudr else []
    win = pages.window(list(page.deliveries), lambda x: x.view.source.id,
                       request.args.get("after"))
    shapes = [svgmap.Shape(f"{s.view.source.id}-{plot.id}", f"{plot.name} — {s.view.farmer_name}",
                           version.geometry_json if version else None,
                           complete=not plots.gaps(version))
              for s in win.items for plot, version in s.view.plots]
    return render_template("lots/manage_lot.html", lot=lot, page=page, gaps=gaps, win=win,
                           gaps_shown=pages.GAPS_SHOWN,
                           asks=pages.asks(page.detail) if lot.eudr else [],
                           women=women_share(page.detail.women_share_bps),
                           plot_map=_map(shapes, _("Plots of lot %(code)s", code=lot.code)),
                           labels=pages.default_labels(page.detail.net_g))


@bp.route("/manage/lots/<int:lot_id>/labels")
@login_required
@web.unit_of_work
def labels(lot_id):
    """The bags' labels, printable on A4 or on 100 × 150 mm labels: the lot code, crop,
    grade, net kilograms, coop, and a QR code of the lot's page."""
    lot = services.managed_lot(current_user, lot_id)
    page = pages.lot_page(lot)
    default = pages.default_labels(page.detail.net_g)
    typed = (request.args.get("n") or "").strip()
    count, problem = default, None
    if typed:
        if typed.isdigit() and 1 <= int(typed) <= pages.MAX_LABELS:
            count = int(typed)
        else:
            problem = _("Give a whole number of labels from 1 to %(max)d.", max=pages.MAX_LABELS)
    size = request.args.get("size") if request.args.get("size") in ("a4", "label") else "a4"
    url = url_for("lots.buyer_lot", lot_id=lot.id, _external=True)
    symbol, view_box = qr.qr_symbol(url, "lot-qr")
    status = 422 if problem else 200
    return render_template("lots/labels.html", lot=lot, page=page, count=count, typed=typed,
                           problem=problem, size=size, default=default, url=url,
                           qr_symbol=symbol, qr_view_box=view_box,
                           max_labels=pages.MAX_LABELS), status


# ---------------------------------------------------------------- the lot, its buyers

@bp.route("/lots/<int:lot_id>")
@login_required
@web.unit_of_work
def buyer_lot(lot_id):
    """The lot for its buyers (a captured order in its pool). Its coop's staff are sent to
    their page of it, a farmer who delivered into it to theirs (the QR code on the bags opens
    this address); anyone else: 404."""
    reader, lot, orders = pages.reader_of(current_user, lot_id)
    if reader == "staff":
        return redirect(url_for("lots.manage_lot", lot_id=lot.id))
    if reader == "farmer":
        return redirect(url_for("lots.my_lots"))
    page = pages.lot_page(lot)
    sources = pages.buyer_sources(page.detail)
    shares = services.buyer_shares(lot, page.detail.net_g)
    win = pages.window(sources, lambda s: s.source_id, request.args.get("after"))
    shapes = [svgmap.Shape(f"{s.number}-{plot.id}", f"{plot.name} — {s.farmer_name}",
                           version.geometry_json if version else None,
                           complete=not plots.gaps(version))
              for s in win.items for plot, version in s.plots]
    return render_template(
        "lots/buyer_lot.html", lot=lot, page=page, sources=sources, orders=orders, win=win,
        my_share_g=sum(shares.get(o.id, 0) for o in orders),
        ready=lot.eudr and not services.gaps(page.detail),
        women=women_share(page.detail.women_share_bps),
        hidden=sum(1 for s in {x.number: x for x in sources}.values() if not s.consented),
        plot_map=_map(shapes, _("Plots of lot %(code)s", code=lot.code)))


# ---------------------------------------------------------------- a farmer's lots

@bp.route("/my/lots")
@login_required
def my_lots():
    if not is_farmer(current_user):
        abort(403)
    found = pages.farmer_lots_page(current_user, request.args.get("cursor"))
    return render_template("lots/my_lots.html", found=found)
