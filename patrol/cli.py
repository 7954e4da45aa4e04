"""The `patrol` command: `patrol db upgrade`, `patrol seed-demo`, `patrol create-user`, …"""
from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext

from .extensions import db


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
    from .config import Config
    from .formdefs import check_forms
    problems = check_forms(Path(directory or Config.FORMS_DIR))
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
              type=click.Choice(["volunteer", "manager", "staff", "committee", "admin"]))
@click.option("--password", help="Staff, managers, committee and admins only.")
@click.option("--community", "community_name")
@click.option("--company", "company_name")
@click.option("--compound", "compound_name")
@click.option("--title", default=None, help="Volunteers: 片长/组长/邻长/红色管家/和事佬/志愿者")
@with_appcontext
def create_user_cmd(username, display_name, role, password, community_name, company_name,
                    compound_name, title):
    """Create a user. Volunteers get a one-time invite link instead of a password."""
    from .models import Community, Company, Compound, User
    from .services import accounts

    def find(model, name, label):
        obj = db.session.execute(db.select(model).where(model.name == name)).scalar_one_or_none()
        if obj is None:
            raise click.BadParameter(f"no {label} named {name!r}")
        return obj

    user = User(username=username, display_name=display_name, role=role, title=title)
    if community_name:
        user.community = find(Community, community_name, "community")
    if company_name:
        user.company = find(Company, company_name, "company")
    if compound_name:
        user.compound = find(Compound, compound_name, "compound")
    needs = {"volunteer": "community", "staff": "community", "manager": "company",
             "committee": "compound"}.get(role)
    if needs and getattr(user, needs) is None:
        raise click.UsageError(f"a {role} needs --{needs}")
    if role == "volunteer":
        if password:
            raise click.UsageError("volunteers sign in by invite link, not password")
    elif not password:
        raise click.UsageError("--password is required for this role")
    else:
        user.set_password(password)
    db.session.add(user)
    db.session.flush()
    if role == "volunteer":
        token = accounts.create_invite(user, None, current_app.config["INVITE_LIFETIME"])
        click.echo(invite_url(token))
    db.session.commit()
    click.echo(f"created {role} {username}")


def invite_url(token: str) -> str:
    return f"{current_app.config['BASE_URL'].rstrip('/')}/invite/{token}"


@click.command("invite")
@click.argument("username")
@with_appcontext
def invite_cmd(username):
    """Print a new one-time sign-in link for a volunteer."""
    from .models import User
    from .services import accounts
    user = db.session.execute(db.select(User).where(User.username == username)).scalar_one_or_none()
    if user is None or user.role != "volunteer":
        raise click.BadParameter(f"no volunteer named {username!r}")
    token = accounts.create_invite(user, None, current_app.config["INVITE_LIFETIME"])
    db.session.commit()
    click.echo(invite_url(token))


@click.command("posters")
@click.option("--community", "community_name", help="All compounds of this community.")
@click.option("--compound", "compound_names", multiple=True, help="One compound (repeatable).")
@click.option("--size", type=click.Choice(["A4", "A5"]), default="A4")
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True)
@with_appcontext
def posters_cmd(community_name, compound_names, size, output):
    """Print gate QR posters to one PDF, one compound a page."""
    from .models import Community, Compound
    from .services.posters import poster_pdf
    query = db.select(Compound).order_by(Compound.name)
    if community_name:
        query = query.join(Community).where(Community.name == community_name)
    if compound_names:
        query = query.where(Compound.name.in_(compound_names))
    compounds = db.session.execute(query).scalars().all()
    if not compounds:
        raise click.UsageError("no compounds match")
    Path(output).write_bytes(poster_pdf(compounds, current_app.config["BASE_URL"], size=size))
    click.echo(f"{len(compounds)} poster(s) written to {output}")


@click.command("photos-orphans")
@click.option("--fix", is_flag=True, help="Delete stray files; drop rows whose files are gone.")
@with_appcontext
def photos_orphans_cmd(fix):
    """Report photo files without rows and rows without files."""
    from .models import Photo
    from .services.photo_store import find_orphans, storage
    stray, missing = find_orphans()
    for key in stray:
        click.echo(f"file without row: {key}")
    for photo_id, key in missing:
        click.echo(f"row {photo_id} without file: {key}")
    if fix:
        for key in stray:
            storage().delete(key)
        for photo_id in {pid for pid, _ in missing}:
            db.session.delete(db.session.get(Photo, photo_id))
        db.session.commit()
        click.echo("fixed")
    if (stray or missing) and not fix:
        sys.exit(1)


def install(app):
    for command in (check_forms_cmd, seed_demo_cmd, create_user_cmd, invite_cmd, posters_cmd,
                    photos_orphans_cmd):
        app.cli.add_command(command)
