"""Invite cards: one-time sign-in QR codes for a whole team, printed on A4 to cut apart.

Each card carries the volunteer's name and title, "用手机扫码登录", the QR code of a new
invite link (`{BASE_URL}/invite/<token>`) and the day it expires. Printing a team's cards
again makes new invites and voids the member's unused ones (accounts.void_open_invites),
so the last printed card is the only one that works; a card already used stays used.
Only hashes of the links are stored: the PDF is the one place the raw links exist, so
the caller hands it over at once and keeps no copy.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..display import language, local
from ..extensions import db
from ..lifecycle import Role
from ..models import Team, User, utcnow
from . import accounts, qr
from .pdf import render_pdf

CARDS_PER_PAGE = 8          # 2 × 4 on A4: 95 × 69 mm each inside the margins


@dataclass(frozen=True)
class Card:
    name: str
    title: str
    url: str
    qr: str                 # patrol-res: name of the QR image


def team_members(team: Team) -> list[User]:
    """The team's active volunteers, by name."""
    return list(db.session.execute(
        db.select(User).where(User.team_id == team.id, User.role == Role.VOLUNTEER.value,
                              User.active.is_(True))
        .order_by(User.display_name, User.id)).scalars())


def member_counts(teams) -> dict[int, int]:
    """{team id: active volunteers}, in one query."""
    ids = [t.id for t in teams]
    if not ids:
        return {}
    rows = db.session.execute(
        db.select(User.team_id, db.func.count()).where(
            User.team_id.in_(ids), User.role == Role.VOLUNTEER.value, User.active.is_(True))
        .group_by(User.team_id)).all()
    return {team_id: 0 for team_id in ids} | dict(rows)


def invite_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/invite/{token}"


def print_cards(users, *, created_by, lifetime, base_url: str, heading: str = "",
                lang: str = "zh") -> bytes:
    """New invites for `users` (their open ones voided) and the PDF of their cards, in
    `lang` (the volunteers', Chinese by default, whoever prints). Flushes; the caller
    commits once the PDF is made."""
    cards, resources = [], {}
    for n, user in enumerate(users):
        accounts.void_open_invites(user)
        url = invite_url(base_url, accounts.create_invite(user, created_by, lifetime))
        # Not qr.svg_compact: its cache would keep live sign-in links in memory.
        resources[f"qr-{n}"] = (qr.svg(url), "image/svg+xml")
        cards.append(Card(name=user.display_name, title=user.title or accounts.DEFAULT_TITLE,
                          url=url, qr=f"patrol-res:qr-{n}"))
    expires = local(utcnow() + lifetime)
    pages = [cards[i:i + CARDS_PER_PAGE] for i in range(0, len(cards), CARDS_PER_PAGE)]
    with language(lang):
        return render_pdf("pdf/invite_cards.html", resources=resources, pages=pages,
                          expires=expires, heading=heading)


def team_cards(team: Team, *, created_by, lifetime, base_url: str) -> tuple[bytes, int]:
    """(PDF, number of cards) for every active volunteer of `team`; (b"", 0) for an
    empty team, with nothing created."""
    members = team_members(team)
    if not members:
        return b"", 0
    heading = f"{team.community.name} · {team.name}" if team.community else team.name
    return print_cards(members, created_by=created_by, lifetime=lifetime,
                       base_url=base_url, heading=heading), len(members)
