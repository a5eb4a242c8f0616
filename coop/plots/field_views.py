"""The farmer's own plot pages (/my/plots: the plots on one map, what the EUDR still needs,
the consent given or withdrawn after a confirmation step) and the capture from the phone in
the field, for the farmer and for the coop's manager or field technician: "I am at my plot"
(a GPS point) and "walk the boundary" (static/plotcapture.js keeps the capture in the outbox
on the phone and sends it, when there is signal, to the JSON endpoints here). Without
JavaScript the same pages show the typed-coordinates forms. Rules are in coop.plots.services
and coop.plots.field; views are thin."""
from __future__ import annotations

from functools import wraps

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required
from flask_wtf.csrf import generate_csrf

from ..common import confirm, web
from ..common.access import is_farmer
from ..common.errors import DomainError
from ..common.idempotency import retry_on_unique_race
from ..cooperatives import services as coop_services
from . import field, files, services, svgmap
from . import geometry as geo
from .forms import MyConsentForm, PointForm, PolygonForm, WithdrawConsentForm
from .blueprint import bp

# ---------------------------------------------------------------- helpers


def _map(shapes, title):
    return svgmap.render(shapes, title=title, legend_complete=_("complete"),
                         legend_incomplete=_("incomplete for the EUDR (dashed)"),
                         empty_text=_("No geometry recorded yet."))


def _farmer_warnings(warnings) -> list[str]:
    """What a farmer is told of a geometry's warnings: another farmer's overlap without that
    farmer's name or plot (the coop checks both)."""
    out = []
    for warning in warnings:
        if warning.code == "overlap":
            out.append(_("Your plot overlaps another farmer's plot: the coop will check both "
                         "boundaries."))
        else:
            out.append(str(warning.message))
    return list(dict.fromkeys(out))


def _farmer_page(view):
    """A farmer's own page: logged in, a farmer member (else 403), one unit of work."""
    @wraps(view)
    def run(*args, **kwargs):
        if not is_farmer(current_user):
            abort(403)
        return view(*args, **kwargs)
    return login_required(web.unit_of_work(run))


def _json_refusal(exc: DomainError):
    return jsonify(error={"code": exc.code, "message": str(exc.message),
                          "fields": {name: [str(m) for m in messages]
                                     for name, messages in (exc.fields or {}).items()}}
                   ), exc.status


def _json_view(view):
    """A JSON endpoint of the phone's outbox: 401 in JSON without a session, every refusal
    (404, 403, 422) as `{"error": {"code", "message", "fields"}}`, one unit of work. The
    CSRF token comes in the X-CSRFToken header (read fresh from `outbox_session` just before
    sending), as for the listings' outbox."""
    @wraps(view)
    def run(*args, **kwargs):
        if not getattr(current_user, "is_authenticated", False):
            return jsonify(error={"code": "unauthorized", "message": _("Log in first."),
                                  "fields": {}}), 401
        web.on_refusal(_json_refusal)
        return view(*args, **kwargs)
    return web.unit_of_work(run)


def _capture(plot, country: str, farmer_view: bool):
    """Records what the phone sent for `plot`: 201 with the new version and its warnings,
    200 with the version already made when the same client key comes again."""
    # Numbers read as Decimals (geometry.loads): 2.5225000 keeps its seven decimals.
    try:
        body = geo.loads(request.get_data(cache=False) or b"null")
    except geo.Refused:
        body = None
    source, geometry, accuracy = field.read_capture(body)
    key = (request.headers.get("Idempotency-Key") or "").strip()[:64] or None

    def attempt():
        recorded = services.record_geometry(plot, geometry, country=country, source=source,
                                            by=current_user, accuracy_m=accuracy,
                                            client_key=key)
        return recorded, not recorded.repeated
    # Two tabs sending the same capture at once (the `online` event reaches both): the one
    # that loses the insert answers with the winner's version.
    recorded, _created = retry_on_unique_race(key, attempt)
    warnings = recorded.warnings if not recorded.repeated else \
        services.plot_warnings(plot, recorded.version)
    messages = _farmer_warnings(warnings) if farmer_view else \
        list(dict.fromkeys(str(w.message) for w in warnings))
    return jsonify(version=recorded.version.version, source=recorded.version.geometry_source,
                   repeated=recorded.repeated, warnings=messages,
                   message=_("Sent: the plot's geometry is saved (version %(n)d).",
                             n=recorded.version.version)), 200 if recorded.repeated else 201


def capture_strings() -> dict:
    """The words of static/plotcapture.js, translated here so the script carries none."""
    return {
        "locating": _("Looking for your position… stay in the open."),
        "no_gps": _("The phone could not give a position. Turn the location on, allow it "
                    "for Minga and try again in the open."),
        "denied": _("Minga may not use the phone's location. Allow it in the browser's "
                    "settings, or type the coordinates below."),
        "walking": _("Walk along the plot's edge. Tap Finish back at the start."),
        "progress": _("{n} positions · {m} m walked · accuracy {a} m"),
        "few": _("At least 3 corners are needed: keep walking around the plot."),
        "saved": _("Saved on this phone. It will be sent when there is signal."),
        "sending": _("Sending…"),
        "offline": _("No signal now. The capture waits on this phone and is sent when the "
                     "signal returns."),
        "login": _("Log in again to send what waits on this phone."),
        "failed": _("Could not send now. Minga will try again."),
        "pending": _("Waiting to send"),
        "refused": _("Not accepted:"),
        "point": _("Point"),
        "walk": _("Boundary of {n} positions"),
        "delete": _("Delete"),
        "confirm_delete": _("Delete this capture from the phone? It has not been sent."),
        "warnings": _("To check:"),
    }


def _capture_context(plot, capture_url: str) -> dict:
    return {"capture": {"url": capture_url, "session": url_for("plots.outbox_session"),
                        "plot_id": plot.id, "plot_name": plot.name,
                        "strings": capture_strings()}}


# ---------------------------------------------------------------- the farmer's pages

@bp.route("/my/plots")
@_farmer_page
def my_plots():
    own = services.farmer_plots(current_user)
    plot_map = _map([svgmap.Shape(str(row.plot.id), row.plot.name,
                                  row.version.geometry_json if row.version else None,
                                  complete=row.complete) for row in own],
                    _("Map of my plots"))
    profiles = services.farmer_profiles_of(current_user)
    consents = services.consents_of(p.id for p in profiles)
    coops = {p.coop_id: coop_services.get_coop(p.coop_id) for p in profiles} \
        if len(profiles) > 1 else {}
    return render_template("plots/my_plots.html", own=own, plot_map=plot_map,
                           gap_text=services.GAP_TEXT, profiles=profiles, consents=consents,
                           coops=coops)


def _my_plot_page(profile, plot, forms=None, status: int = 200):
    version = plot.current
    consent = services.current_consent(profile.id)
    missing = services.eudr_gaps(version, consent is not None)
    forms = forms or {}
    blank = {"point": PointForm, "polygon": PolygonForm, "consent": MyConsentForm,
             "withdraw": WithdrawConsentForm}
    shown = {name: forms.get(name) or cls(prefix="" if name in ("withdraw", "consent")
                                          else name, formdata=None)
             for name, cls in blank.items()}
    plot_map = _map([svgmap.Shape(str(plot.id), plot.name,
                                  version.geometry_json if version else None,
                                  complete=not missing)],
                    _("Map of %(name)s", name=plot.name))
    return render_template(
        "plots/my_plot.html", profile=profile, plot=plot, version=version,
        versions=list(reversed(services.versions(plot))), consent=consent, missing=missing,
        gap_text=services.GAP_TEXT, plot_map=plot_map, forms=shown,
        warnings=_farmer_warnings(services.plot_warnings(plot, version)),
        consent_text=services.CONSENT_TEXT,
        **_capture_context(plot, url_for("plots.my_capture", plot_id=plot.id))), status


@bp.route("/my/plots/<int:plot_id>")
@_farmer_page
def my_plot(plot_id):
    profile, plot = services.get_own_plot(current_user, plot_id)
    return _my_plot_page(profile, plot)


def _my_typed(plot_id, name, form_class, parse, on_field):
    profile, plot = services.get_own_plot(current_user, plot_id)
    form = form_class(prefix=name)

    def page(status):
        return _my_plot_page(profile, plot, {name: form}, status)
    if not form.validate_on_submit():
        return page(422)
    try:
        geometry = parse(form)
    except files.TypedRefused as refused:
        for field_name, message in refused.fields.items():
            target = field_name if hasattr(form, field_name) else on_field
            getattr(form, target).errors = [str(message)]
        return page(422)
    web.refusal_on_form(form, page, rename={"geometry": on_field})
    coop = coop_services.get_coop(profile.coop_id)
    recorded = services.record_geometry(plot, geometry, country=coop.country, source="typed",
                                        by=current_user)
    flash(_("Geometry saved (version %(n)d).", n=recorded.version.version), "info")
    for message in _farmer_warnings(recorded.warnings):
        flash(message, "warning")
    return redirect(url_for("plots.my_plot", plot_id=plot.id))


@bp.route("/my/plots/<int:plot_id>/point", methods=["POST"])
@_farmer_page
def my_point(plot_id):
    return _my_typed(plot_id, "point", PointForm,
                     lambda form: files.typed_point(form.latitude.data, form.longitude.data),
                     "latitude")


@bp.route("/my/plots/<int:plot_id>/polygon", methods=["POST"])
@_farmer_page
def my_polygon(plot_id):
    return _my_typed(plot_id, "polygon", PolygonForm,
                     lambda form: files.typed_polygon(form.positions.data), "positions")


@bp.route("/my/plots/<int:plot_id>/consent", methods=["POST"])
@_farmer_page
def my_consent(plot_id):
    """The farmer gives their consent, after a confirmation page showing the text; it is
    recorded with who, when, the text shown and its language."""
    profile, plot = services.get_own_plot(current_user, plot_id)
    form = MyConsentForm()
    if not form.validate_on_submit():
        return _my_plot_page(profile, plot, {"consent": form}, 400)
    back = url_for("plots.my_plot", plot_id=plot.id)
    if services.current_consent(profile.id) is not None:
        flash(_("You have already given your consent."), "info")
        return redirect(back)
    text = str(services.CONSENT_TEXT)
    step = confirm.check(f"plots.my_consent:{profile.id}", (profile.id, text))
    if not step.confirmed:
        return step.render("plots/confirm_my_consent.html", back=back, consent_text=text,
                           yes=_("Yes, I give my consent"))
    services.record_consent(profile, by=current_user, locale=str(get_locale() or "es"),
                            text=text)
    flash(_("Thank you: your consent is recorded."), "info")
    return redirect(back)


@bp.route("/my/plots/<int:plot_id>/consent/withdraw", methods=["POST"])
@_farmer_page
def my_withdraw_consent(plot_id):
    profile, plot = services.get_own_plot(current_user, plot_id)
    form = WithdrawConsentForm()
    if not form.validate_on_submit():
        return _my_plot_page(profile, plot, {"withdraw": form}, 400)
    back = url_for("plots.my_plot", plot_id=plot.id)
    consent = services.current_consent(profile.id)
    if consent is None:
        flash(_("You have no consent to withdraw."), "info")
        return redirect(back)
    step = confirm.check(f"plots.my_withdraw_consent:{profile.id}", (consent.id,))
    if not step.confirmed:
        return step.render("plots/confirm_my_withdraw.html", back=back, consent=consent,
                           yes=_("Yes, withdraw my consent"))
    services.withdraw_consent(profile, by=current_user)
    flash(_("Your consent is withdrawn."), "info")
    return redirect(back)


@bp.route("/my/plots/<int:plot_id>/capture", methods=["POST"])
@_json_view
def my_capture(plot_id):
    profile, plot = services.get_own_plot(current_user, plot_id)
    coop = coop_services.get_coop(profile.coop_id)
    return _capture(plot, coop.country, farmer_view=True)


# ---------------------------------------------------------------- the technician's field page

@bp.route("/manage/coops/<int:coop_id>/farmers/<int:profile_id>/plots/<int:plot_id>/field")
@web.coop_view("manager")
def field_page(coop, profile_id, plot_id):
    profile = coop_services.get_farmer_profile(coop, profile_id)
    plot = services.get_plot(profile, plot_id)
    version = plot.current
    missing = services.eudr_gaps(version, services.current_consent(profile.id) is not None)
    plot_map = _map([svgmap.Shape(str(plot.id), plot.name,
                                  version.geometry_json if version else None,
                                  complete=not missing)],
                    _("Map of %(name)s", name=plot.name))
    return render_template(
        "plots/field.html", coop=coop, profile=profile, plot=plot, version=version,
        plot_map=plot_map, point_form=PointForm(prefix="point", formdata=None),
        polygon_form=PolygonForm(prefix="polygon", formdata=None),
        **_capture_context(plot, url_for("plots.field_capture", coop_id=coop.id,
                                         profile_id=profile.id, plot_id=plot.id)))


@bp.route("/manage/coops/<int:coop_id>/farmers/<int:profile_id>/plots/<int:plot_id>/capture",
          methods=["POST"])
@_json_view
def field_capture(coop_id, profile_id, plot_id):
    from ..common.access import require_member
    require_member(coop_id, "manager")
    coop = coop_services.get_coop(coop_id)
    profile = coop_services.get_farmer_profile(coop, profile_id)
    plot = services.get_plot(profile, plot_id)
    return _capture(plot, coop.country, farmer_view=False)


@bp.route("/plots/outbox/session")
def outbox_session():
    """Who is logged in and a fresh CSRF token, read by the phone just before it sends the
    captures waiting in its outbox (a page kept open for hours may hold an old token)."""
    if not getattr(current_user, "is_authenticated", False):
        return jsonify(error={"code": "unauthorized", "message": _("Log in first."),
                              "fields": {}}), 401
    response = jsonify(user_id=current_user.id, csrf_token=generate_csrf())
    response.headers["Cache-Control"] = "no-store"
    return response

