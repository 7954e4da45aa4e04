"""Jobs on the web: the list (/jobs: one's own, admins all), one job with its progress
bar, its status as JSON for the page's script, a retry for a failed one, the result.

Only the job's owner and admins see a job or download its result; others get 404.
"""
from __future__ import annotations

from flask import (Blueprint, Response, abort, flash, jsonify, redirect, render_template,
                   send_file, url_for)
from flask_babel import gettext as _
from flask_login import current_user

from ..extensions import db
from ..jobs import runner
from ..lifecycle import Role
from ..models import Delivery, Job
from .helpers import roles_required

bp = Blueprint("jobs", __name__, url_prefix="/jobs")
ROLES = (Role.STAFF, Role.STREET_STAFF, Role.MANAGER, Role.ADMIN)


def state_labels() -> dict[str, str]:
    return {"queued": _("Waiting"), "running": _("Running"), "failed": _("Failed"),
            "done": _("Done")}


def kind_labels() -> dict[str, str]:
    return {"posters": _("Gate posters"), "invite_cards": _("Invite cards"),
            "weekly": _("Weekly lists"), "ledger": _("Ledger export"),
            "district_import": _("District import")}


def _mine(job_id: int) -> Job:
    job = db.session.get(Job, job_id)
    if job is None or not runner.may_see(current_user, job):
        abort(404)
    return job


@bp.app_context_processor
def _labels():
    return {"job_state": lambda s: state_labels().get(s, s),
            "job_kind": lambda k: kind_labels().get(k, k)}


@bp.get("")
@roles_required(*ROLES)
def index():
    query = db.select(Job).order_by(Job.id.desc()).limit(200)
    if current_user.role != Role.ADMIN:
        query = query.where(Job.created_by_id == current_user.id)
    jobs = db.session.execute(query).scalars().all()
    notifications = None
    if current_user.role in (Role.STAFF, Role.ADMIN):
        counts = dict(db.session.execute(
            db.select(Delivery.status, db.func.count()).group_by(Delivery.status)).all())
        notifications = {"pending": counts.get("pending", 0), "failed": counts.get("failed", 0)}
    return render_template("jobs/index.html", jobs=jobs, notifications=notifications)


@bp.get("/<int:job_id>")
@roles_required(*ROLES)
def show(job_id):
    return render_template("jobs/show.html", job=_mine(job_id))


def status(job: Job) -> dict:
    return {"id": job.id, "state": job.state, "label": state_labels().get(job.state),
            "done": job.progress_done, "total": job.progress_total, "percent": job.percent,
            "attempts": job.attempts, "error": job.error, "note": job.result_note,
            "result": url_for("jobs.result", job_id=job.id) if job.result_key else None}


@bp.get("/<int:job_id>.json")
@roles_required(*ROLES)
def show_json(job_id):
    resp = jsonify(status(_mine(job_id)))
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.post("/<int:job_id>/retry")
@roles_required(*ROLES)
def retry(job_id):
    job = _mine(job_id)
    if runner.retry(job):
        flash(_("The job is queued again."), "ok")
    else:
        flash(_("Only a failed job can be retried."), "error")
    return redirect(url_for("jobs.show", job_id=job_id))


@bp.get("/<int:job_id>/result")
@roles_required(*ROLES)
def result(job_id):
    from ..services.photo_store import storage
    job = _mine(job_id)
    if job.state != "done" or not job.result_key:
        abort(404)
    store = storage()
    once = bool((job.params or {}).get("once"))
    headers = {"Cache-Control": "no-store" if once else "private, max-age=0"}
    path = None if once else store.local_path(job.result_key)
    if path is not None:
        resp = send_file(path, mimetype=job.result_type, as_attachment=True,
                         download_name=job.result_name)
        resp.headers.update(headers)
        return resp
    try:
        data = store.get(job.result_key)
    except (FileNotFoundError, KeyError):
        abort(404)
    if once:    # live sign-in links: the file leaves the server with this answer
        store.delete(job.result_key)
        job.result_key = None
        job.result_note = (job.result_note or "") + " (downloaded)"
        db.session.commit()
    from urllib.parse import quote
    headers["Content-Disposition"] = \
        f"attachment; filename=\"{job.result_name}\"; filename*=UTF-8''{quote(job.result_name or '')}"
    return Response(data, mimetype=job.result_type or "application/octet-stream",
                    headers=headers)
