"""`patrol handover`: hand a compound to another company from the command line, through
the same service as the staff page (services/handover.py)."""
from __future__ import annotations

from datetime import date

import click
from flask import current_app
from flask.cli import with_appcontext

from .extensions import db
from .lifecycle import Role
from .models import Company, Compound, Community, User, utcnow
from .services import handover as service


@click.command("handover")
@click.option("--compound", "compound_name", required=True)
@click.option("--community", "community_name", help="When two communities have a compound of that name.")
@click.option("--to", "company_name", required=True, help="The new property company.")
@click.option("--date", "date_text", required=True, help="Effective date, YYYY-MM-DD (local).")
@click.option("--open-items", "choice", type=click.Choice(service.CHOICES), default="transfer",
              show_default=True, help="Open items: passed on to the new company, or closed.")
@click.option("--by", "username", required=True, help="The staff or admin account doing it.")
@with_appcontext
def handover_command(compound_name, community_name, company_name, date_text, choice, username):
    """Hand a compound to another property company (物业更换)."""
    query = db.select(Compound).where(Compound.name == compound_name)
    if community_name:
        query = query.join(Community).where(Community.name == community_name)
    compounds = db.session.execute(query).scalars().all()
    if len(compounds) != 1:
        raise click.ClickException(f"{len(compounds)} compounds named {compound_name!r} "
                                   "(give --community)")
    actor = db.session.execute(db.select(User).where(User.username == username)).scalar_one_or_none()
    if actor is None or actor.role not in (Role.STAFF.value, Role.ADMIN.value):
        raise click.ClickException(f"no staff or admin account {username!r}")
    company = db.session.execute(
        db.select(Company).where(Company.name == company_name)).scalar_one_or_none()
    try:
        day = date.fromisoformat(date_text)
    except ValueError:
        raise click.ClickException(f"not a date: {date_text!r} (YYYY-MM-DD)") from None
    try:
        done = service.hand_over(compounds[0], company, day, actor=actor, now=utcnow(),
                                 tz=current_app.config["TIMEZONE"], default_choice=choice)
    except service.HandoverInvalid as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    click.echo(f"{compound_name}: {company_name} from {day.isoformat()}; "
               f"{len(done.transferred)} open items passed on, {len(done.closed)} closed")


def install(app):
    app.cli.add_command(handover_command)
