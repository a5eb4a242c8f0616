"""The platform staff's pages: cooperatives waiting for verification, one coop's registration
and document, approve or refuse with a reason; the platform's audit log. A 404 to anyone who
is not staff."""
import io

from flask import Blueprint, flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from ..audit import services as audit
from ..common import web
from ..cooperatives import services as coop_services
from ..cooperatives import verification
from ..cooperatives.forms import RefuseForm, RevokeForm
from . import services

bp = Blueprint("staff", __name__, url_prefix="/staff")


@bp.route("/coops")
@login_required
def coops():
    services.require_staff(current_user)
    return render_template("staff/coops.html", pending=verification.coops_to_review(),
                           reviewed=verification.recently_reviewed())


def _coop_page(coop, refuse_form, status=200):
    return render_template("staff/coop.html", coop=coop, refuse_form=refuse_form,
                           approve_form=RevokeForm(),
                           document=verification.latest_document(coop),
                           members=coop_services.members(coop, staff_only=True)), status


def _staff_only(coop_id, user) -> None:
    """web.coop_view's rule for these pages: the platform's staff, whatever their roles."""
    services.require_staff(user)


@bp.route("/coops/<int:coop_id>")
@web.coop_view(check=_staff_only)
def coop(coop):
    return _coop_page(coop, RefuseForm())


@bp.route("/coops/<int:coop_id>/documents/<int:document_id>")
@web.coop_view(check=_staff_only)
def document(coop, document_id):
    doc = verification.get_document(coop, document_id)
    # send_file writes the name as RFC 6266 asks (an ASCII fallback and filename*=UTF-8''...):
    # a founder's "registro_文件.pdf" must not break the header.
    response = send_file(io.BytesIO(doc.data), mimetype=doc.content_type, as_attachment=True,
                         download_name=doc.filename, etag=False, max_age=0)
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.route("/coops/<int:coop_id>/<decision>", methods=["POST"])
@web.coop_view(check=_staff_only)
def decide(coop, decision):
    form = RefuseForm() if decision == "refuse" else RevokeForm()
    if not form.validate_on_submit():
        return _coop_page(coop, form if decision == "refuse" else RefuseForm(), 422)
    web.refusal_flashed(url_for("staff.coop", coop_id=coop.id), passing=404, with_fields=True)
    services.review(current_user, coop.id, decision,
                    form.reason.data if decision == "refuse" else "")
    flash(_("Cooperative verified.") if decision == "approve"
          else _("Registration refused; the founder sees your reason."), "info")
    return redirect(url_for("staff.coops"))


@bp.route("/audit")
@login_required
def platform_audit():
    services.require_staff(current_user)
    found = audit.events_page(None, request.args.get("cursor"))
    return render_template("staff/audit.html", rows=audit.rows(None, found.items), found=found)
