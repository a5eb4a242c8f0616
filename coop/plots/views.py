"""The manager's (field technician's) plot pages: the coop's plots and which are incomplete
for the EUDR, one plot's data and versions, the ways to record its geometry (typed, a file),
its cut-off declaration and legality, a farmer's consent signed on paper, the register
import and the coop's tolerances. Rules are in coop.plots.services; views are thin."""
from __future__ import annotations

from decimal import Decimal

from flask import flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..common import confirm, web
from ..common.errors import ValidationFailed
from ..common.forms import filter_text
from ..cooperatives import services as coop_services
from . import files, register, services, svgmap
from .blueprint import bp
from .forms import (ConsentForm, CutoffForm, FileForm, LegalityForm, PointForm, PolygonForm,
                    SettingsForm, WithdrawConsentForm)


def _upload(field) -> services.Upload | None:
    storage = field.data
    if storage is None or not getattr(storage, "filename", None):
        return None
    return services.Upload(filename=storage.filename, data=storage.read())


# ---------------------------------------------------------------- the coop's plots

@bp.route("/manage/coops/<int:coop_id>/plots")
@web.coop_view("manager")
def coop_plots(coop):
    q = filter_text(request.args.get("q", ""), 80)
    incomplete = request.args.get("incomplete") == "1"
    found = services.coop_plots_page(coop.id, request.args.get("cursor"), q=q,
                                     incomplete=incomplete)
    return render_template("plots/coop_plots.html", coop=coop, found=found, q=q,
                           incomplete=incomplete, counts=services.coop_plot_counts(coop.id),
                           gap_text=services.GAP_TEXT)


# ---------------------------------------------------------------- one plot

class _Forms:
    """The plot page's forms: the one just posted keeps what was typed, the others are
    blank."""

    def __init__(self, posted: str | None = None, form=None):
        blank = {"point": PointForm, "polygon": PolygonForm, "file": FileForm,
                 "cutoff": CutoffForm, "legality": LegalityForm, "consent": ConsentForm,
                 "withdraw": WithdrawConsentForm}
        for name, cls in blank.items():
            # The withdrawal's form has no prefix: its fields (the CSRF token) travel through
            # the confirmation page as they are.
            prefix = "" if name == "withdraw" else name
            setattr(self, name, form if name == posted else cls(prefix=prefix, formdata=None))


def _load(coop, profile_id, plot_id):
    profile = coop_services.get_farmer_profile(coop, profile_id)
    return profile, services.get_plot(profile, plot_id)


def _plot_page(coop, profile, plot, forms: _Forms, status: int = 200):
    version = plot.current
    consent = services.current_consent(profile.id)
    missing = services.eudr_gaps(version, consent is not None)
    plot_map = svgmap.render(
        [svgmap.Shape(str(plot.id), plot.name, version.geometry_json if version else None,
                      complete=not missing)],
        title=_("Map of %(name)s", name=plot.name), legend_complete=_("complete"),
        legend_incomplete=_("incomplete for the EUDR (dashed)"),
        empty_text=_("No geometry recorded yet."))
    return render_template(
        "plots/plot.html", coop=coop, profile=profile, plot=plot, version=version,
        versions=list(reversed(services.versions(plot))), consent=consent,
        missing=missing, gap_text=services.GAP_TEXT, plot_map=plot_map,
        warnings=services.plot_warnings(plot, version), forms=forms,
        consent_text=services.CONSENT_TEXT,
        settings=services.settings_for(coop.id)), status


@bp.route("/manage/coops/<int:coop_id>/farmers/<int:profile_id>/plots/<int:plot_id>")
@web.coop_view("manager")
def plot(coop, profile_id, plot_id):
    profile, found = _load(coop, profile_id, plot_id)
    return _plot_page(coop, profile, found, _Forms())


def _back(coop, profile, plot):
    return redirect(url_for("plots.plot", coop_id=coop.id, profile_id=profile.id,
                            plot_id=plot.id))


def _recorded(coop, profile, plot, recorded):
    flash(_("Geometry saved (version %(n)d).", n=recorded.version.version), "info")
    for warning in recorded.warnings:
        flash(str(warning.message), "warning")
    return _back(coop, profile, plot)


def _geometry_refused(form, field_name, page):
    """A refusal of the geometry goes on `field_name` (the messages of geometry.check)."""
    web.refusal_on_form(form, page, rename={"geometry": field_name})


def _posted(coop, profile_id, plot_id, name: str, form_class):
    """The farmer, the plot, the form `name` as posted, its page (the plot's, with that
    form's input and errors) and whether it validated."""
    profile, found = _load(coop, profile_id, plot_id)
    form = form_class(prefix=name)

    def page(status):
        return _plot_page(coop, profile, found, _Forms(name, form), status)
    return profile, found, form, page, form.validate_on_submit()


def _record_typed(coop, profile_id, plot_id, name: str, form_class, parse, on_field: str):
    """A geometry typed on the plot page (`parse` reads the form; its refusals, and those of
    the geometry's rules, go on the form's `on_field`)."""
    profile, found, form, page, valid = _posted(coop, profile_id, plot_id, name, form_class)
    if not valid:
        return page(422)
    try:
        geometry = parse(form)
    except files.TypedRefused as refused:
        for field, message in refused.fields.items():
            getattr(form, field if hasattr(form, field) else on_field).errors = [str(message)]
        return page(422)
    _geometry_refused(form, on_field, page)
    recorded = services.record_geometry(found, geometry, country=coop.country,
                                        source="typed", by=current_user)
    return _recorded(coop, profile, found, recorded)


@bp.route("/manage/coops/<int:coop_id>/farmers/<int:profile_id>/plots/<int:plot_id>/point",
          methods=["POST"])
@web.coop_view("manager")
def record_point(coop, profile_id, plot_id):
    return _record_typed(coop, profile_id, plot_id, "point", PointForm,
                         lambda form: files.typed_point(form.latitude.data, form.longitude.data),
                         "latitude")


@bp.route("/manage/coops/<int:coop_id>/farmers/<int:profile_id>/plots/<int:plot_id>/polygon",
          methods=["POST"])
@web.coop_view("manager")
def record_polygon(coop, profile_id, plot_id):
    return _record_typed(coop, profile_id, plot_id, "polygon", PolygonForm,
                         lambda form: files.typed_polygon(form.positions.data), "positions")


@bp.route("/manage/coops/<int:coop_id>/farmers/<int:profile_id>/plots/<int:plot_id>/file",
          methods=["POST"])
@web.coop_view("manager")
def record_file(coop, profile_id, plot_id):
    profile, found, form, page, valid = _posted(coop, profile_id, plot_id, "file", FileForm)
    if not valid:
        return page(422)
    upload = _upload(form.file)
    if upload is None or not upload.data:
        form.file.errors = [_("Choose the file (GeoJSON or KML).")]
        return page(422)
    try:
        geometry = files.one_geometry(upload.filename, upload.data)
    except files.FileRefused as refused:
        form.file.errors = [str(refused.message)]
        return page(422)
    _geometry_refused(form, "file", page)
    recorded = services.record_geometry(
        found, geometry, country=coop.country, by=current_user,
        source=files.kind_of(upload.filename, upload.data))
    return _recorded(coop, profile, found, recorded)


@bp.route("/manage/coops/<int:coop_id>/farmers/<int:profile_id>/plots/<int:plot_id>/cutoff",
          methods=["POST"])
@web.coop_view("manager")
def declare_cutoff(coop, profile_id, plot_id):
    profile, found, form, page, valid = _posted(coop, profile_id, plot_id, "cutoff",
                                                CutoffForm)
    if not valid:
        return page(422)
    web.refusal_on_form(form, page, rename={"land_use_2020": "land_use"})
    upload = _upload(form.document)
    document = services.add_document(found, "cutoff_evidence", upload, current_user) \
        if upload is not None else None
    services.declare_cutoff(found, land_use=form.land_use.data,
                            evidence_kind=form.evidence_kind.data,
                            evidence_ref=form.evidence_ref.data or "", document=document,
                            note=form.note.data or "", by=current_user)
    flash(_("Cut-off declaration saved."), "info")
    return _back(coop, profile, found)


@bp.route("/manage/coops/<int:coop_id>/farmers/<int:profile_id>/plots/<int:plot_id>/legality",
          methods=["POST"])
@web.coop_view("manager")
def declare_legality(coop, profile_id, plot_id):
    profile, found, form, page, valid = _posted(coop, profile_id, plot_id, "legality",
                                                LegalityForm)
    if not valid:
        return page(422)
    web.refusal_on_form(form, page)
    upload = _upload(form.document)
    document = services.add_document(found, "tenure", upload, current_user) \
        if upload is not None else None
    services.declare_legality(found, tenure_type=form.tenure_type.data,
                              reference=form.tenure_reference.data or "", document=document,
                              by=current_user)
    flash(_("Legality saved."), "info")
    return _back(coop, profile, found)


@bp.route("/manage/coops/<int:coop_id>/farmers/<int:profile_id>/plots/<int:plot_id>"
          "/documents/<int:document_id>")
@web.coop_view("manager")
def document(coop, profile_id, plot_id, document_id):
    _profile, found = _load(coop, profile_id, plot_id)
    row = services.get_document(found, document_id)
    from io import BytesIO
    return send_file(BytesIO(row.data), mimetype=row.content_type, as_attachment=True,
                     download_name=row.filename)


# ---------------------------------------------------------------- consent

@bp.route("/manage/coops/<int:coop_id>/farmers/<int:profile_id>/plots/<int:plot_id>/consent",
          methods=["POST"])
@web.coop_view("manager")
def record_consent(coop, profile_id, plot_id):
    """A consent the farmer signed on paper, recorded by the manager (the text shown on the
    page, in the page's language)."""
    profile, found = _load(coop, profile_id, plot_id)
    form = ConsentForm(prefix="consent")
    if not form.validate_on_submit():
        return _plot_page(coop, profile, found, _Forms("consent", form), 422)
    from flask_babel import get_locale
    services.record_consent(profile, by=current_user, locale=str(get_locale() or "es"),
                            text=str(services.CONSENT_TEXT))
    flash(_("Consent recorded."), "info")
    return _back(coop, profile, found)


@bp.route("/manage/coops/<int:coop_id>/farmers/<int:profile_id>/plots/<int:plot_id>"
          "/consent/withdraw", methods=["POST"])
@web.coop_view("manager")
def withdraw_consent(coop, profile_id, plot_id):
    """Withdraws the farmer's consent, after a confirmation page: their kilograms stop going
    into lots marked EUDR-ready."""
    profile, found = _load(coop, profile_id, plot_id)
    form = WithdrawConsentForm()
    if not form.validate_on_submit():
        return _plot_page(coop, profile, found, _Forms("withdraw", form), 400)
    consent = services.current_consent(profile.id)
    if consent is None:
        flash(_("%(name)s has no consent to withdraw.", name=profile.user.name), "info")
        return _back(coop, profile, found)
    step = confirm.check(f"plots.withdraw_consent:{profile.id}", (consent.id,))
    if not step.confirmed:
        return step.render("plots/confirm_withdraw.html", profile=profile, consent=consent,
                           back=url_for("plots.plot", coop_id=coop.id, profile_id=profile.id,
                                        plot_id=found.id),
                           yes=_("Yes, withdraw the consent"))
    services.withdraw_consent(profile, by=current_user)
    flash(_("Consent withdrawn."), "info")
    return _back(coop, profile, found)


# ---------------------------------------------------------------- register, settings

@bp.route("/manage/coops/<int:coop_id>/plots/import", methods=["GET", "POST"])
@web.coop_view("manager")
def import_register(coop):
    form = FileForm(prefix="register")

    def page(status=200, report=None):
        return render_template("plots/import.html", coop=coop, form=form,
                               report=report), status
    if request.method == "GET":
        return page()
    if not form.validate_on_submit():
        return page(422)
    upload = _upload(form.file)
    if upload is None or not upload.data:
        form.file.errors = [_("Choose the file (GeoJSON or KML).")]
        return page(422)
    try:
        report = register.import_register(coop, upload.filename, upload.data, by=current_user)
    except files.FileRefused as refused:
        form.file.errors = [str(refused.message)]
        return page(422)
    return page(200, report)


@bp.route("/manage/coops/<int:coop_id>/plots/settings", methods=["GET", "POST"])
@web.coop_view("manager")
def plot_settings(coop):
    current = services.settings_for(coop.id)
    form = SettingsForm(data={"area_tolerance": Decimal(current.area_tolerance_bps) / 100,
                              "gps_accuracy_max_m": current.gps_accuracy_max_m})

    def page(status=200):
        return render_template("plots/settings.html", coop=coop, form=form), status
    if request.method == "GET":
        return page()
    if not form.validate_on_submit():
        return page(422)
    web.refusal_on_form(form, page)
    percent = form.area_tolerance.data
    bps = percent * 100
    if bps != bps.to_integral_value():
        raise ValidationFailed(_("Give the tolerance with at most 2 decimals."),
                               fields={"area_tolerance": [_("At most 2 decimals.")]})
    services.update_settings(coop.id, area_tolerance_bps=int(bps),
                             gps_accuracy_max_m=form.gps_accuracy_max_m.data)
    flash(_("Plot settings saved."), "info")
    return redirect(url_for("plots.coop_plots", coop_id=coop.id))

