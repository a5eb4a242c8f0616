"""Impact report pages: public (small cells suppressed, no login) and full (the coop's managers
and treasurers), each as a page, a printable page and a CSV. Aggregates only, never a name."""
from __future__ import annotations

import csv
import io

from babel.numbers import format_decimal
from flask import Blueprint, Response, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import ngettext

from ..common import web
from ..common.money import format_money
from ..cooperatives import services as coop_services
from . import services
from .charts import bar_chart
from .forms import PeriodForm

bp = Blueprint("impact", __name__)


def _period():
    form = PeriodForm(request.args)
    period, errors = services.parse_period(form.start.data, form.end.data)
    if not form.validate():
        period = None
    for name, problems in errors.items():
        getattr(form, name).errors = list(getattr(form, name).errors or []) + problems
    if period is not None:
        form.start.data = form.start.data or period.start.isoformat()
        form.end.data = form.end.data or period.end.isoformat()
    return form, period


def _locale() -> str:
    return str(get_locale() or "es")


def show(report: services.Report, fig: services.Figure | None) -> str:
    """A figure as the reader sees it: "<5" when suppressed, "—" when there is nothing."""
    if fig is None:
        return "—"
    if fig.hidden:
        return "<5" if fig.is_count_of_families else _("<5 families")
    if fig.value is None:
        return "—"
    if services.is_money(report, fig):
        text = format_money(int(fig.value), report.currency)
        return text + " / kg" if fig.unit.endswith("/kg") else text
    if fig.unit == "percent":
        return format_decimal(fig.value, locale=_locale()) + " %"
    if fig.unit in ("ha", "kg"):
        return format_decimal(fig.value, format="#,##0.###", locale=_locale()) + " " + fig.unit
    return format_decimal(fig.value, format="#,##0.#", locale=_locale())


def _charts(report: services.Report) -> list:
    def value(fig):
        return None if fig is None or fig.hidden or fig.value is None else fig.value

    def one(rows):
        return [(f.label, [(value(f), show(report, f))]) for f in rows]
    charts = [
        bar_chart("families", _("Families enrolled, by gender"),
                  _("Bar chart of the families enrolled in the period by the gender recorded."),
                  one(report.rows("families", "enrolled"))),
        bar_chart("replaced", _("Hectares of illicit crops replaced, by crop"),
                  _("Bar chart of the hectares of coca, opium poppy and cannabis replaced."),
                  one(report.rows("land", "illicit_replaced"))),
        bar_chart("licit", _("Hectares of licit crops, by crop"),
                  _("Bar chart of the hectares of the plots growing each licit crop."),
                  one(report.rows("land", "licit"))),
        bar_chart("volume", _("Kilograms sold, by crop"),
                  _("Bar chart of the kilograms accepted at intake in the period, by crop."),
                  one(report.rows("sales", "volume"))),
    ]
    prices = report.rows("prices", "farmer_price")
    floors = {f.breakdown: f for f in report.rows("prices", "floor")}
    charts.append(bar_chart(
        "prices", _("Average farmer price against the floor, per kg"),
        _("Paired bars for each crop and grade: the average farmer price per kg, weighted by "
          "kilograms, and the floor it was paid against."),
        [(f.label, [(value(f), show(report, f)),
                    (value(floors.get(f.breakdown)), show(report, floors.get(f.breakdown)))])
         for f in prices], series=[_("Farmer price"), _("Floor")]))
    received, spent = report.get("premium", "received"), report.get("premium", "spent")
    if received.value or spent.value:
        charts.append(bar_chart(
            "premium", _("Premium fund in the period"),
            _("Bar chart of the social premium received and spent in the period."),
            [(_("Received"), [(value(received), show(report, received))]),
             (_("Spent"), [(value(spent), show(report, spent))])]))
    median = report.get("payment_days", "median")
    if not median.hidden:
        charts.append(bar_chart(
            "days", _("Days from intake to payment"),
            _("Bar chart of how many deliveries were paid after each number of days."),
            [(ngettext("%(num)d day", "%(num)d days", d), [(n, format_decimal(n, locale=_locale()))])
             for d, n in report.days_histogram]))
    return [c for c in charts if c is not None]


def _render(coop, *, public: bool):
    form, period = _period()
    printable = request.args.get("print") == "1"
    endpoint = "impact.public" if public else "impact.full"
    kwargs = {"slug": coop.slug} if public else {"coop_id": coop.id}
    if period is None:
        return render_template("impact/report.html", coop=coop, form=form, report=None,
                               public=public, endpoint=endpoint, kwargs=kwargs), 422
    report = services.build(coop, period, public=public)
    args = {**kwargs, "start": period.start.isoformat(), "end": period.end.isoformat()}
    template = "impact/print.html" if printable else "impact/report.html"
    return render_template(template, coop=coop, form=form, report=report, public=public,
                           charts=_charts(report), show=lambda f: show(report, f),
                           endpoint=endpoint, kwargs=kwargs,
                           csv_url=url_for(endpoint + "_csv", **args),
                           print_url=url_for(endpoint, print="1", **args),
                           page_url=url_for(endpoint, **args),
                           other_url=url_for("impact.full", coop_id=coop.id,
                                             start=args["start"], end=args["end"])
                           if public else url_for("impact.public", slug=coop.slug,
                                                  start=args["start"], end=args["end"]))


def _csv(coop, *, public: bool):
    form, period = _period()
    if period is None:
        problems = [p for f in (form.start, form.end) for p in f.errors]
        return Response("\n".join(problems) + "\n", status=422,
                        mimetype="text/plain")
    report = services.build(coop, period, public=public)
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(services.csv_rows(report))
    name = f"impact-{coop.slug}-{period.start.isoformat()}-{period.end.isoformat()}"
    if public:
        name += "-public"
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})


@bp.route("/coops/<slug>/impact")
def public(slug):
    return _render(coop_services.coop_by_slug(slug), public=True)


@bp.route("/coops/<slug>/impact.csv")
def public_csv(slug):
    return _csv(coop_services.coop_by_slug(slug), public=True)


@bp.route("/manage/coops/<int:coop_id>/impact")
@web.coop_view("manager", "treasurer")
def full(coop):
    return _render(coop, public=False)


@bp.route("/manage/coops/<int:coop_id>/impact.csv")
@web.coop_view("manager", "treasurer")
def full_csv(coop):
    return _csv(coop, public=False)

