"""The `patrol` command: `patrol db upgrade`, `patrol seed-demo`, `patrol create-user`, …"""
from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext

from .extensions import db
from .lifecycle import Role


def _create_app():
    from . import create_app
    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app)
def main():
    """小区巡查 Patrol: manage the database, users, forms and posters."""


@click.command("check-forms")
@click.argument("directory", required=False, type=click.Path(file_okay=False))
def check_forms_cmd(directory):
    """Check form definitions in forms/ (or DIRECTORY); list every error."""
    from . import settings
    from .formdefs import check_forms
    problems = check_forms(Path(directory or settings.load().forms_dir))
    for file, path, message in problems:
        click.echo(f"{file}: {path}: {message}", err=True)
    if problems:
        click.echo(f"{len(problems)} problem(s) found.", err=True)
        sys.exit(1)
    click.echo("forms OK")


@click.command("seed-demo")
@click.option("--if-empty", is_flag=True, help="Do nothing if the database has data.")
@with_appcontext
def seed_demo_cmd(if_empty):
    """Fill the database with the demo district."""
    from .seed import seed_demo, is_seeded
    if if_empty and is_seeded():
        click.echo("Demo data already present.")
        return
    seed_demo()
    click.echo("Demo district created.")


@click.command("create-user")
@click.option("--username", required=True)
@click.option("--name", "display_name", required=True)
@click.option("--role", required=True,
              type=click.Choice([r.value for r in Role]))
@click.option("--password", help="Staff, managers, committee and admins only.")
@click.option("--community", "community_name")
@click.option("--street", "street_name", help="Street staff (街道工作人员): their street.")
@click.option("--company", "company_name")
@click.option("--compound", "compound_name")
@click.option("--title", default=None, help="Volunteers: 片长/组长/邻长/红色管家/和事佬/志愿者")
@with_appcontext
def create_user_cmd(username, display_name, role, password, community_name, street_name,
                    company_name, compound_name, title):
    """Create a user. Volunteers get a one-time invite link instead of a password."""
    from .models import Community, Company, Compound, Street, User
    from .permissions import binding_of

    if role == Role.VOLUNTEER:
        base_url()  # before anything is created: a volunteer is useless without the link

    def find(model, name, label):
        obj = db.session.execute(db.select(model).where(model.name == name)).scalar_one_or_none()
        if obj is None:
            raise click.BadParameter(f"no {label} named {name!r}")
        return obj

    if role == Role.VOLUNTEER:
        if password or company_name or compound_name:
            raise click.UsageError("volunteers sign in by invite link (no --password) and "
                                   "belong to a community (no --company or --compound)")
        community = find(Community, community_name, "community") if community_name else None
        _create_volunteer(username, display_name, title, community)
        return
    user = User(username=username, display_name=display_name, role=role, title=title)
    if street_name:
        user.street = find(Street, street_name, "street")
    if community_name:
        user.community = find(Community, community_name, "community")
    if company_name:
        user.company = find(Company, company_name, "company")
    if compound_name:
        user.compound = find(Compound, compound_name, "compound")
    binding = binding_of(role)  # community_id, company_id or compound_id; admins none
    needs = binding and binding.removesuffix("_id")
    if needs and getattr(user, needs) is None:
        raise click.UsageError(f"a {role} needs --{needs}")
    if not password:
        raise click.UsageError("--password is required for this role")
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    click.echo(f"created {role} {username}")


VOLUNTEER_PROBLEMS = {
    "name": "--name must be 1 to 60 characters",
    "phone": "the phone number must be digits",
    "title": "--title must be one of 片长/组长/邻长/红色管家/和事佬/志愿者",
    "team": "a volunteer needs --community",
    "username": "--username must be 1 to 60 characters",
    "username_taken": "that --username is already taken",
}


def _create_volunteer(username, display_name, title, community):
    """Through the same service, with the same rules, as staff's 志愿者 page."""
    from .services import accounts
    try:
        user, token = accounts.create_volunteer(
            username=username, display_name=display_name, title=title,
            community_id=community.id if community else None, created_by=None,
            lifetime=current_app.config["INVITE_LIFETIME"])
    except accounts.VolunteerInvalid as exc:
        db.session.rollback()
        raise click.UsageError("; ".join(VOLUNTEER_PROBLEMS[c] for c in exc.errors.values())) from None
    click.echo(invite_url(token))
    db.session.commit()
    click.echo(f"created volunteer {user.username}")


def base_url() -> str:
    """The public address for links and QR codes that leave this command (printed,
    on paper). Refused when it is only the built-in default: this process cannot know
    where the server runs (`PORT=5101 make run`), and a poster or an invite pointing at
    a dead address fails only later, at a gate or on a volunteer's phone."""
    from .config import DEFAULT_BASE_URL
    cfg = current_app.config
    url = (cfg.get("BASE_URL") or "").rstrip("/")
    if not url or (not cfg.get("BASE_URL_SET") and url == DEFAULT_BASE_URL.rstrip("/")):
        raise click.ClickException(
            f"PATROL_BASE_URL is not set: links and QR codes would point at the default "
            f"{DEFAULT_BASE_URL}, which may not be where the server runs. Set PATROL_BASE_URL "
            f"to the address people open, the server's, e.g. `PATROL_BASE_URL="
            f"http://127.0.0.1:5101 .venv/bin/patrol {click.get_current_context().info_name} …`"
            f" (`make run` serves on http://127.0.0.1:$PORT, 5000 unless PORT is set).")
    return url


def invite_url(token: str) -> str:
    return f"{base_url()}/invite/{token}"


@click.command("invite")
@click.argument("username")
@with_appcontext
def invite_cmd(username):
    """Print a new one-time sign-in link for a volunteer."""
    from .models import User
    from .services import accounts
    base_url()  # before a link is made that nobody could open
    user = db.session.execute(db.select(User).where(User.username == username)).scalar_one_or_none()
    if user is None or user.role != Role.VOLUNTEER:
        raise click.BadParameter(f"no volunteer named {username!r}")
    token = accounts.create_invite(user, None, current_app.config["INVITE_LIFETIME"])
    db.session.commit()
    click.echo(invite_url(token))


@click.command("invite-cards")
@click.option("--team", "team_name", required=True, help="The team's name.")
@click.option("--community", "community_name",
              help="The team's community, when teams of several communities have that name.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True)
@with_appcontext
def invite_cards_cmd(team_name, community_name, output):
    """Print one-time sign-in cards for every volunteer of a team (8 per A4 sheet, to cut
    apart). Their older unused cards and links stop working."""
    from .models import Community, Team
    from .services import invite_cards
    base = base_url()  # before any invite is made that nobody could open
    query = db.select(Team).where(Team.name == team_name).order_by(Team.id)
    if community_name:
        query = query.join(Community, Team.community_id == Community.id).where(
            Community.name == community_name)
    teams = db.session.execute(query).scalars().all()
    if not teams:
        raise click.BadParameter(f"no team named {team_name!r}", param_hint="--team")
    if len(teams) > 1:
        raise click.UsageError(f"{len(teams)} teams are named {team_name!r} (communities: "
                               + ", ".join(t.community.name for t in teams) + "); add --community")
    pdf, count = invite_cards.team_cards(teams[0], created_by=None, base_url=base,
                                         lifetime=current_app.config["INVITE_LIFETIME"])
    if not count:
        raise click.UsageError(f"team {team_name!r} has no volunteers")
    Path(output).write_bytes(pdf)
    db.session.commit()   # only once the cards are written: the old ones stop working now
    click.echo(f"{count} card(s) written to {output}")


@click.command("set-password")
@click.argument("username")
@click.password_option(help="The new password (asked twice if not given).")
@with_appcontext
def set_password_cmd(username, password):
    """Set a staff, manager, committee or admin password; signs that user out everywhere."""
    from .models import User
    from .services import accounts
    user = db.session.execute(db.select(User).where(User.username == username)).scalar_one_or_none()
    if user is None or user.role == Role.VOLUNTEER:
        raise click.BadParameter(f"no password user named {username!r}")
    if len(password) < 8:
        raise click.BadParameter("use at least 8 characters")
    user.set_password(password)
    accounts.end_all_sessions(user)  # every existing session and remember cookie stops working
    from .services import audit
    from .clock import utcnow
    audit.record(None, "user.set_password", user, None, None, utcnow())  # never the password
    db.session.commit()
    click.echo(f"password changed for {username}; their other sessions are signed out")


@click.command("posters")
@click.option("--street", "street_name", help="All compounds of this street (after an import).")
@click.option("--community", "community_name", help="All compounds of this community.")
@click.option("--compound", "compound_names", multiple=True, help="One compound (repeatable).")
@click.option("--size", type=click.Choice(["A4", "A5"]), default="A4")
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True)
@with_appcontext
def posters_cmd(street_name, community_name, compound_names, size, output):
    """Print gate QR posters to one PDF, one compound a page."""
    from .models import Community, Compound, Street
    from .services.posters import poster_batch_pdf
    base = base_url()
    query = db.select(Compound).join(Community).where(Compound.archived_at.is_(None)) \
        .order_by(Community.name, Compound.name)
    if street_name:
        query = query.join(Street).where(Street.name == street_name)
    if community_name:
        query = query.where(Community.name == community_name)
    if compound_names:
        query = query.where(Compound.name.in_(compound_names))
    compounds = db.session.execute(query).scalars().all()
    if not compounds:
        raise click.UsageError("no compounds match")
    with progress_bar("posters", len(compounds)) as advance:
        pdf = poster_batch_pdf(compounds, base, size=size,
                               progress=lambda done, total: advance(done))
    Path(output).write_bytes(pdf)
    click.echo(f"{len(compounds)} poster(s) written to {output}")


@contextmanager
def progress_bar(what: str, total: int):
    """A progress bar on the terminal (rich), on stderr; `advance(done)` moves it.
    Nothing is drawn when stderr is not a terminal (cron, a log file). What the command
    prints meanwhile is shown above the bar, unless stdout goes elsewhere (a pipe, a
    file): then it goes there untouched."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
    from rich.console import Console
    with Progress("[progress.description]{task.description}", BarColumn(),
                  MofNCompleteColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=True,
                  redirect_stdout=sys.stdout.isatty()) as bar:
        task = bar.add_task(what, total=total)
        yield lambda done: bar.update(task, completed=done)


@click.command("worker")
@click.option("--workers", type=int, help="Jobs at once (default PATROL_QUEUE_WORKERS).")
@click.option("--no-periodic", is_flag=True, help="Without the every-minute sweep "
              "(notifications due, lost messages), when another worker runs it.")
@with_appcontext
def worker_cmd(workers, no_periodic):
    """Run the job queue's worker (docs/jobs.md): notifications, poster and card batches,
    weekly lists, imports and exports; and, every minute, what the `patrol deliver` cron
    line did. `make run` starts it beside gunicorn. Ends on SIGINT (after the jobs under
    way) or SIGTERM."""
    import logging
    from . import jobs
    logging.basicConfig(level=current_app.config.get("LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = current_app._get_current_object()
    cfg = app.config
    where = cfg["REDIS_URL"] if cfg.get("QUEUE") == "redis" else \
        str(Path(cfg["INSTANCE_DIR"]) / "queue.db")
    click.echo(f"patrol worker: queue {cfg.get('QUEUE')} ({where}), "
               f"{workers or cfg.get('QUEUE_WORKERS')} worker(s)", err=True)
    jobs.consumer(app, workers, periodic=not no_periodic).run()


@click.command("photos-orphans")
@click.option("--fix", is_flag=True,
              help="Delete stray files and unfinished writes; drop rows whose files are gone "
                   "and abandoned uploads.")
@with_appcontext
def photos_orphans_cmd(fix):
    """Report photo files without rows, temporary files of interrupted writes, rows
    without files, and abandoned uploads (files younger than 15 minutes are left alone)."""
    from .services.photo_store import find_orphans, remove_orphans
    orphans = find_orphans()
    for key in orphans.stray_files:
        click.echo(f"file without row: {key}")
    for key in orphans.unfinished:
        click.echo(f"unfinished write (temporary file): {key}")
    for photo_id, key in orphans.missing:
        click.echo(f"row {photo_id} without file: {key}")
    for photo_id in orphans.abandoned:
        click.echo(f"row {photo_id} uploaded but never attached to an item")
    if fix:
        remove_orphans(orphans)
        click.echo("fixed")
    elif orphans:
        sys.exit(1)


def _safe_filename(name: str) -> str:
    """A compound name as part of a file name: no path separators or control characters."""
    cleaned = "".join("_" if ch in '/\\:*?"<>|' or ord(ch) < 32 or ch.isspace() else ch
                      for ch in name).strip("._")
    return cleaned[:60] or "x"


@click.command("weekly")
@click.option("--community", "community_name", help="Every compound of this community.")
@click.option("--company", "company_name", help="Every compound of this property company.")
@click.option("--compound", "compound_names", multiple=True, help="One compound (repeatable).")
@click.option("--week", default="last", show_default=True,
              help="ISO week such as 2026-W48, or 'this' / 'last' (the last complete week).")
@click.option("--combined", is_flag=True, help="One PDF for all compounds instead of one each.")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
@click.option("-o", "--output", type=click.Path(), required=True,
              help="Directory (one file per compound), or a .pdf file with --combined.")
@with_appcontext
def weekly_cmd(community_name, company_name, compound_names, week, combined, lang, output):
    """Print weekly problem lists: one PDF per compound, or one combined PDF."""
    from .models import Community, Company, Compound, utcnow
    from .services import weekly
    from .services.pdf import write_documents
    from .display import hazard_form

    cfg = current_app.config
    base = base_url()   # every item on the list has a QR code to its page
    now = utcnow()
    this_week = weekly.Week.containing(now, cfg["TIMEZONE"])
    try:
        the_week = {"this": this_week, "last": this_week.previous()}.get(week) \
            or weekly.Week.parse(week)
    except ValueError:
        raise click.BadParameter(f"{week!r} is not an ISO week like 2026-W48",
                                 param_hint="--week") from None
    if not (community_name or company_name or compound_names):
        raise click.UsageError("give --community, --company or --compound")
    query = db.select(Compound).order_by(Compound.name, Compound.id)
    if community_name:
        query = query.join(Community, Compound.community_id == Community.id).where(
            Community.name == community_name)
    if company_name:
        query = query.join(Company, Compound.company_id == Company.id).where(
            Company.name == company_name)
    if compound_names:
        query = query.where(Compound.name.in_(compound_names))
    compounds = db.session.execute(query).scalars().all()
    if not compounds:
        raise click.UsageError("no compounds match")

    out = Path(output)
    single_file = out.suffix.lower() == ".pdf"
    if single_file and not combined and len(compounds) > 1:
        raise click.UsageError("one file per compound needs a directory for -o (or use --combined)")
    if single_file:
        out.parent.mkdir(parents=True, exist_ok=True)
    else:
        out.mkdir(parents=True, exist_ok=True)

    form = hazard_form()
    documents = []
    with weekly.rendering_locale(lang), progress_bar("weekly", len(compounds)) as advance:
        for n, compound in enumerate(compounds, 1):
            report = weekly.build("compound", compound, the_week, now=now, tz=cfg["TIMEZONE"],
                                  form=form, ack_limit=cfg["ACK_ESCALATE"])
            doc = weekly.render_document(report, base_url=base, tz=cfg["TIMEZONE"])
            pages = len(doc.pages)
            if combined:
                documents.append(doc)
                click.echo(f"{compound.name}: {report.counts['listed']} item(s), {pages} page(s)")
            else:
                path = out if single_file else out / (
                    f"weekly-{the_week.label}-{compound.id}-{_safe_filename(compound.name)}.pdf")
                path.write_bytes(write_documents([doc]))
                click.echo(f"{path}: {report.counts['listed']} item(s), {pages} page(s)")
                del doc   # one compound's layout at a time in memory
            advance(n)
    if combined:
        label = _safe_filename(community_name or company_name or "compounds")
        path = out if single_file else out / f"weekly-{the_week.label}-{label}.pdf"
        path.write_bytes(write_documents(documents))
        click.echo(f"{path}: {len(compounds)} compound(s) combined")
    click.echo(f"{len(compounds)} weekly list(s) for {the_week.label} written")


def _parse_now(value):
    from datetime import datetime
    from .models import utcnow
    if not value:
        return utcnow()
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("use ISO format, UTC: 2026-11-27T08:00") from None


@click.command("daily")
@click.option("--now", "now_text", help="Pretend it is this moment (UTC, ISO format).")
@click.option("--no-deliver", is_flag=True, help="Only queue; leave sending to `patrol deliver`.")
@with_appcontext
def daily_cmd(now_text, no_deliver):
    """The day's reminders and escalations (cron: once a day, e.g. 08:00).

    Prints, per community, the items escalated to staff (overdue, not acknowledged in
    time) and, per property company, the reminders (overdue, due soon); queues the
    'overdue' notifications and one daily digest per subscribed receiver; then sends
    what is due. Safe to run again: nothing is queued twice.
    """
    from .services.escalation import run_daily
    run = run_daily(_parse_now(now_text), deliver=not no_deliver)
    click.echo(f"Patrol daily run {run.day}")
    for community, groups in run.communities:
        click.echo(f"community {community.name}: {len(groups['ack_late'])} not acknowledged in "
                   f"time, {len(groups['overdue'])} overdue, {len(groups['due_soon'])} due soon, "
                   f"{len(groups['lookback_late'])} late for the look-back, "
                   f"{len(groups['flagged'])} flagged, {len(groups['disputed'])} disputed")
        for key in ("ack_late", "overdue", "lookback_late", "flagged", "disputed"):
            for item in groups[key]:
                deadline = f"{item.deadline:%Y-%m-%d %H:%M} UTC" if item.deadline else "-"
                click.echo(f"  [{key}] No.{item.id} {item.category} {item.compound.name}"
                           f" deadline {deadline}")
    for company, groups in run.companies:
        click.echo(f"company {company.name}: {len(groups['overdue'])} overdue, "
                   f"{len(groups['due_soon'])} due soon, {len(groups['ack_late'])} not "
                   f"acknowledged in time")
    click.echo("queued: " + ", ".join(f"{k} {v}" for k, v in run.queued.items()))
    if run.delivered:
        click.echo("delivered: " + ", ".join(f"{k} {v}" for k, v in run.delivered.items()))


@click.command("deliver")
@click.option("--now", "now_text", help="Pretend it is this moment (UTC, ISO format).")
@click.option("--watch", is_flag=True,
              help="Keep running: send what is due every --every seconds (`make run` starts "
                   "this beside the web server, so web workers never send).")
@click.option("--every", default=5.0, show_default=True, help="Seconds between rounds with --watch.")
@with_appcontext
def deliver_cmd(now_text, watch, every):
    """Send queued notifications and retry failed ones whose backoff has passed
    (cron: every few minutes). Also queues 'overdue' for items that just became overdue,
    and 'lookback_late' for fixes that have waited too long for their look-back."""
    from .services import notify
    if watch:
        notify.watch(every)
        return
    now = _parse_now(now_text)
    queued = notify.enqueue_overdue(now)
    late = notify.enqueue_lookback_late(now)
    db.session.commit()
    counts = notify.deliver_due(now)
    click.echo(f"overdue queued {queued}; "
               + (f"lookback_late queued {late}; " if late else "")
               + f"sent {counts['sent']}, will retry {counts['retry']}, gave up {counts['failed']}")


@click.command("patrols-remind")
@click.option("--now", "now_text", help="Pretend it is this moment (UTC, ISO format).")
@click.option("--no-deliver", is_flag=True, help="Only queue; leave sending to `patrol deliver`.")
@with_appcontext
def patrols_remind_cmd(now_text, no_deliver):
    """Patrol schedules, daily (cron, e.g. 18:00): end the patrols that went quiet, and
    remind each team's receiver the day before a week (or month) ends with a patrol still
    due. Safe to run again: each team, compound and period is reminded once."""
    from .services import coverage, notify
    run = coverage.remind(_parse_now(now_text))
    db.session.commit()
    click.echo(f"Patrol reminders {run.day:%Y-%m-%d}: quiet patrols closed {run.closed}; "
               f"still due {run.due}; queued {run.queued}")
    if not no_deliver and run.queued:
        counts = notify.deliver_due(_parse_now(now_text))
        click.echo("delivered: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


@click.command("settings")
@click.option("--markdown", is_flag=True, help="Print README.md's configuration table.")
def settings_cmd(markdown):
    """The settings in effect (from PATROL_* variables), secrets hidden."""
    from . import settings
    if markdown:
        click.echo(settings.markdown_table())
        return
    for name, value in settings.load().model_dump().items():
        hidden = value is not None and any(w in name for w in ("secret", "password", "dsn"))
        click.echo(f"{settings.PREFIX}{name.upper()}={'(set)' if hidden else value}")


def install(app):
    for command in (check_forms_cmd, seed_demo_cmd, create_user_cmd, invite_cmd, invite_cards_cmd,
                    set_password_cmd, posters_cmd, photos_orphans_cmd, weekly_cmd, daily_cmd,
                    deliver_cmd, settings_cmd, patrols_remind_cmd, worker_cmd):
        app.cli.add_command(command)
    from .cli_import import import_cmd, import_template_cmd
    app.cli.add_command(import_template_cmd)
    app.cli.add_command(import_cmd)
