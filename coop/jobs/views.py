"""The paused background tasks of a coop, for its managers and treasurers, each with its last
error and a Retry button (a confirmation step first: a retried close captures cards)."""
from __future__ import annotations

import json
from dataclasses import dataclass

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _, ngettext

from ..common import confirm, web
from ..common.forms import Form
from ..common.labels import label
from ..extensions import db
from . import services
from .labels import TASKS
from .models import Job

bp = Blueprint("jobs", __name__)


@dataclass(frozen=True)
class ParkedJob:
    """What the page shows of a parked job (plain values: a confirmation binds them)."""
    id: int
    task: str
    about: str
    attempts: int
    error: str
    parked_at: object


def _about(job: Job) -> str:
    """What the job was working on, from its arguments."""
    try:
        payload = json.loads(job.payload or "{}")
    except ValueError:
        payload = {}
    if "pool_id" in payload:
        return _("pool #%(id)s", id=payload["pool_id"])
    if isinstance(payload.get("ids"), list):
        count = len(payload["ids"])
        return ngettext("%(num)d message", "%(num)d messages", count)
    return ""


def _shown(job: Job) -> ParkedJob:
    return ParkedJob(id=job.id, task=job.task, about=_about(job), attempts=job.attempts,
                     error=(job.last_error or "")[:500], parked_at=job.finished_at)


@bp.route("/manage/coops/<int:coop_id>/jobs")
@web.coop_view("manager", "treasurer")
def parked(coop):
    task = request.args.get("task")
    task = task if task in TASKS else None
    found = services.parked_page(coop.id, request.args.get("cursor"), task=task)
    rows = [_shown(job) for job in found.items]
    return render_template("jobs/parked.html", coop=coop, rows=rows, form=Form(), found=found,
                           task=task, tasks=list(TASKS))


@bp.route("/manage/coops/<int:coop_id>/jobs/<int:job_id>/retry", methods=["POST"])
@web.coop_view("manager", "treasurer")
def retry(coop, job_id):
    job = db.session.get(Job, job_id)
    if job is None or job.coop_id != coop.id:
        abort(404)
    back = url_for("jobs.parked", coop_id=coop.id)
    if not Form().validate_on_submit():
        flash(_("The form expired; try again."), "error")
        return redirect(back)
    if job.status != "parked":
        flash(_("This task is not paused any more: nothing to retry."), "info")
        return redirect(back)
    shown = _shown(job)
    step = confirm.check(f"jobs.retry:{job.id}", shown)
    if not step.confirmed:
        return step.render("jobs/confirm_retry.html", coop=coop, job=shown, back=back,
                           yes=_("Yes, retry it"))
    services.retry(job.id, coop.id)
    flash(_("“%(task)s” will run again in a moment.", task=label(job.task, "job_task")), "info")
    return redirect(back)
