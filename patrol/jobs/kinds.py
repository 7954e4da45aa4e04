"""What runs as a job: each kind reads its row's params and returns a Result (a file).

The page that queues a job has checked the permissions already; a job that acts as its
owner (an export) signs them in for the run, so the list's own permission filter holds.
"""
from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta

from flask import current_app
from flask_babel import gettext as _

from ..extensions import db
from ..models import Compound, Job, Team, User
from .runner import Permanent, Progress, Result, kind

PDF = "application/pdf"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV = "text/csv; charset=utf-8"


@kind("posters")
def posters(job: Job, progress: Progress) -> Result:
    """Gate posters for many compounds (after a district import: hundreds)."""
    from ..services.posters import poster_batch_pdf
    ids = list(job.params.get("compound_ids") or [])
    size = "A5" if job.params.get("size") == "A5" else "A4"
    found = {c.id: c for c in db.session.execute(
        db.select(Compound).where(Compound.id.in_(ids), Compound.archived_at.is_(None)))
        .scalars()}
    compounds = [found[i] for i in ids if i in found]
    if not compounds:
        raise ValueError("none of these compounds is left")
    progress.set(0, len(compounds), force=True)
    pdf = poster_batch_pdf(compounds, current_app.config["BASE_URL"], size=size,
                           progress=lambda done, total: progress.set(done, total))
    return Result(pdf, f"posters-{size}.pdf", PDF, note=f"{len(compounds)}")


@kind("invite_cards")
def invite_cards(job: Job, progress: Progress) -> Result:
    """A team's sign-in cards. The invites are made in this job's transaction, committed
    only with the file; the file is deleted after its first download (it holds live
    sign-in links, docs/jobs.md). No progress is written meanwhile: the transaction holds
    SQLite's write lock."""
    from ..services import invite_cards as cards
    team = db.session.get(Team, job.params.get("team_id"))
    if team is None:
        raise ValueError("the team is gone")
    lifetime = timedelta(hours=job.params.get("hours") or
                         current_app.config["INVITE_LIFETIME"].total_seconds() / 3600)
    pdf, count = cards.team_cards(team, created_by=job.created_by, lifetime=lifetime,
                                  base_url=current_app.config["BASE_URL"])
    if not count:
        return Result(note="0")
    progress.total = count
    return Result(pdf, f"invite-cards-{team.id}.pdf", PDF, note=str(count), once=True)


@kind("weekly")
def weekly_lists(job: Job, progress: Progress) -> Result:
    """Weekly problem lists of several compounds as one PDF (one compound after another),
    with the rows its owner may see, as the single list's PDF has: a company's manager
    printing a week before a handover does not get the former company's items."""
    from .. import permissions
    from ..display import hazard_form
    from ..models import Item
    from ..services import weekly
    from ..services.pdf import write_documents
    from ..clock import utcnow
    cfg = current_app.config
    owner = job.created_by
    if owner is None or not owner.active:
        raise PermissionError("the job's owner is gone")
    visible = permissions.item_filter(owner, Item)
    week = weekly.Week.parse(job.params["week"])
    ids = list(job.params.get("compound_ids") or [])
    found = {c.id: c for c in db.session.execute(
        db.select(Compound).where(Compound.id.in_(ids))).scalars()}
    compounds = [found[i] for i in ids if i in found]
    progress.set(0, len(compounds), force=True)
    form, now, documents = hazard_form(), utcnow(), []
    with weekly.rendering_locale(job.params.get("lang") or "zh"):
        for n, compound in enumerate(compounds, 1):
            report = weekly.build("compound", compound, week, now=now, tz=cfg["TIMEZONE"],
                                  form=form, ack_limit=cfg["ACK_ESCALATE"], visible=visible)
            documents.append(weekly.render_document(report, base_url=cfg["BASE_URL"],
                                                    tz=cfg["TIMEZONE"]))
            progress.set(n)
    if not documents:
        raise ValueError("no compounds")
    return Result(write_documents(documents), f"weekly-{week.label}.pdf", PDF,
                  note=str(len(documents)))


@contextmanager
def _as_user(user: User | None, query: dict):
    """A request of `user` with these query arguments: the list's filters and its
    permission filter (current_user) as on the page that asked."""
    from flask_login import login_user
    if user is None or not user.active:
        raise PermissionError("the job's owner is gone")
    with current_app.test_request_context("/exports/job", query_string=query):
        login_user(user)
        yield


@kind("ledger")
def ledger_export(job: Job, progress: Progress) -> Result:
    """A large ledger (the items of a list, with their history) as XLSX or CSV."""
    from ..clock import utcnow
    from ..ledger import ITEM_COLUMNS
    from ..models import Item
    from ..services import ledger
    from ..web.exports import list_conditions
    from flask import request
    fmt = job.params.get("fmt") if job.params.get("fmt") in ("xlsx", "csv") else "xlsx"
    lang = "en" if job.params.get("lang") == "en" else "zh"
    with _as_user(job.created_by, job.params.get("args") or {}):
        now = utcnow()
        conds, described = list_conditions(request.args, now)
        total = db.session.scalar(db.select(db.func.count()).select_from(Item).where(*conds))
        progress.set(0, total or 0, force=True)
        meta = [("Filter: " if lang == "en" else "筛选：") + ("; ".join(described) or "—"),
                ("Exported: " if lang == "en" else "导出时间：") + ledger.export_time(now)]
        stem = ("patrol-items" if lang == "en" else "items") + "-" + \
            ledger.export_time(now).replace(" ", "-").replace(":", "")
        if fmt == "csv":
            rows = ledger.counted(ledger.item_rows(conds, now, lang), progress.set)
            data = b"".join(ledger.csv_chunks(meta, ITEM_COLUMNS, rows, lang))
            return Result(data, f"{stem}.csv", CSV, note=str(total))
        out = ledger.items_xlsx(conds, now, lang, meta, progress=progress.set)
        try:
            data = out.read()
        finally:
            out.close()
    return Result(data, f"{stem}.xlsx", XLSX, note=str(total))


@kind("district_import")
def district_import(job: Job, progress: Progress) -> Result:
    """Apply a previewed district import (services/district_uploads.confirm), as its
    uploader; the done page and its posters follow from the record it leaves. Refusals
    are said in the uploader's words (the web confirm's)."""
    from ..display import language
    from ..services import district_uploads
    from ..web.district import gone_message, changed_message, in_words
    token = job.params["token"]
    user = job.created_by
    if user is None:
        raise PermissionError("the job's owner is gone")
    progress.set(0, 4, force=True)
    with language(job.params.get("lang") or "zh"):
        try:
            applied = district_uploads.confirm(
                token, user, progress=lambda done, total: progress.set(done, total, force=True))
        except district_uploads.ImportGone:
            db.session.rollback()
            district_uploads.wait_for_others(user)     # another confirm of it, under way
            imported = _imported_already(job, token, user)
            db.session.rollback()
            if imported:
                # imported already: nothing to do again
                return Result(note=_("This file was already imported; nothing was written "
                                     "again."))
            raise Permanent(gone_message()) from None
        except district_uploads.ImportChanged:
            raise Permanent(changed_message()) from None
        except district_uploads.OutOfScope as exc:
            raise Permanent(" ".join(in_words(exc.refusals))) from None
        note = _("Imported: %(summary)s", summary=applied.summary)
    progress.total = 4
    return Result(note=note[:300], after_commit=[
        lambda: district_uploads.record_done(token, user, applied)])


def _imported_already(job: Job, token: str, user: User) -> bool:
    """The upload's record says it was imported, or another job of its uploader for it
    is done (its record is written just after its commit)."""
    from ..services import district_uploads
    try:
        district_uploads.done(token, user)
        return True
    except district_uploads.ImportGone:
        pass
    return any(other.params.get("token") == token for other in db.session.execute(
        db.select(Job).where(Job.kind == "district_import", Job.created_by_id == user.id,
                             Job.state == "done", Job.id != job.id)
        .order_by(Job.id.desc()).limit(50)).scalars())
