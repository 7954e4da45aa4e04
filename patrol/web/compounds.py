"""Compound pages: the gate QR scan and the compound's open problem list."""
from flask import Blueprint, abort, current_app, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import and_, case, false, union_all
from sqlalchemy.orm import selectinload

from .. import permissions
from ..extensions import db
from ..lifecycle import OPEN, Role, Status
from ..models import (CheckpointScan, Compound, Item, ItemTally, Presence, TeamCompound,
                      utcnow)
from ..services import items as item_service
from ..services import patrols as patrol_service
from . import residents
from .helpers import authorise, get_or_404, load_or_404, page_arg, unknown_code
from .offline import token_digest

bp = Blueprint("compounds", __name__)


@bp.route("/c/<token>", methods=["GET", "POST"])
def scan(token):
    """Opening the gate QR records a presence (an audit record, like an access log).

    A phone that is not signed in is a resident's (or a volunteer's not yet signed in):
    it gets the compound's page for residents (web/residents.py), with the sign-in link.

    A link from another site (Sec-Fetch-Site: cross-site) could make a signed-in phone
    record a scan it never made, since SameSite=Lax cookies go with top-level
    navigations: then the page asks for one tap (POST + CSRF) instead. Scanner apps open
    the link with no initiating site ("none"), so a real scan stays a single step.
    """
    compound = db.session.execute(
        db.select(Compound).where(Compound.qr_token == token)).scalar_one_or_none()
    if compound is None:
        return unknown_code()
    if not current_user.is_authenticated:
        return residents.landing(compound)
    authorise(permissions.can_see_compound, compound)
    if compound.archived_at is not None:   # its poster may still hang at the gate
        return render_template("compounds/archived.html", compound=compound), 410
    records = permissions.can_record_presence(current_user, compound)
    if records and request.method == "GET" and request.headers.get("Sec-Fetch-Site") == "cross-site":
        return render_template("compounds/scan_confirm.html", compound=compound, token=token)
    presence = None
    if records:
        presence = item_service.record_presence(current_user, compound, utcnow())
        patrol_service.on_scan(current_user, compound, presence)
        db.session.commit()
    return redirect(url_for("compounds.show", compound_id=compound.id,
                            scanned=presence.id if presence else None))


@bp.post("/presence/<int:presence_id>/location")
@login_required
def presence_location(presence_id):
    """The page adds the browser's location to a scan, when the user allowed it."""
    presence = get_or_404(Presence, presence_id)
    if presence.user_id != current_user.id or presence.lat is not None:
        abort(403)
    try:
        lat, lon = float(request.form["lat"]), float(request.form["lon"])
        accuracy = float(request.form.get("accuracy") or 0) or None
    except (KeyError, ValueError):
        abort(400)
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        abort(400)
    presence.lat, presence.lon, presence.accuracy = lat, lon, accuracy
    patrol_service.judge_presence(presence, presence.compound)
    db.session.commit()
    return jsonify(ok=True)


def open_items_query(compound_id):
    """Open items, waiting-for-verification (回头看) first, then newest."""
    awaiting_first = case((Item.status == Status.FIXED.value, 0), else_=1)
    return (db.select(Item)
            .where(Item.compound_id == compound_id,
                   Item.status.in_([s.value for s in OPEN]))
            .order_by(awaiting_first, Item.created_at.desc(), Item.id.desc()))


def open_items_page(compound_id: int, number: int, per_page: int):
    """The page `number` of open_items_query's order, read as its two parts (waiting for
    the check, then the rest), each newest first on the open items' partial index
    (models/counts.py): the rows skipped are skipped in the index alone, and the totals
    come from the tallies, not a count of the compound's items."""
    from .lists import ListPage
    totals = {status: int(n or 0) for status, n in db.session.execute(
        db.select(ItemTally.status, db.func.sum(ItemTally.n))
        .where(ItemTally.compound_id == compound_id,
               ItemTally.status.in_([s.value for s in OPEN]))
        .group_by(ItemTally.status)).all()}
    fixed = totals.pop(Status.FIXED.value, 0)
    rest = sum(totals.values())
    base = db.select(Item.id).where(Item.compound_id == compound_id,
                                    Item.status.in_([s.value for s in OPEN]))
    order = (Item.created_at.desc(), Item.id.desc())
    offset, ids = (number - 1) * per_page, list[int]()
    if offset < fixed:
        ids += db.session.execute(base.where(Item.status == Status.FIXED.value)
                                  .order_by(*order).offset(offset).limit(per_page)).scalars().all()
    if len(ids) < per_page:
        ids += db.session.execute(base.where(Item.status != Status.FIXED.value)
                                  .order_by(*order).offset(max(0, offset - fixed))
                                  .limit(per_page - len(ids))).scalars().all()
    by_id = {i.id: i for i in db.session.execute(
        db.select(Item).where(Item.id.in_(ids)).options(*Item.row_options())).scalars()}
    total = max(fixed + rest, offset + len(ids))
    more = offset + len(ids) < total
    return ListPage([by_id[i] for i in ids if i in by_id], number, per_page, total,
                    {"page": number + 1} if more else None,
                    {"page": number - 1} if number > 1 else None)


@bp.get("/compounds/<int:compound_id>")
@login_required
def show(compound_id):
    compound = load_or_404(Compound, compound_id, permissions.can_see_compound)
    if "offline_scan" in request.args:
        # The service worker adds it to a kept page when a scan had no signal; if this
        # request reached us there is signal, and a scan goes the usual way (with its checks).
        token = request.args["offline_scan"]
        if token == compound.qr_token:
            return redirect(url_for("compounds.scan", token=token))
        return redirect(url_for("compounds.show", compound_id=compound.id))
    if "offline_checkpoint" in request.args:   # the same for a checkpoint sticker (/k/<token>)
        token = request.args["offline_checkpoint"]
        if any(cp.qr_token == token for cp in patrol_service.checkpoints_of(compound.id)):
            return redirect(url_for("patrols.checkpoint_scan", token=token))
        return redirect(url_for("compounds.show", compound_id=compound.id))
    now = utcnow()
    page = open_items_page(compound.id, page_arg(), current_app.config["PAGE_SIZE"])
    presence = item_service.latest_presence(current_user, compound.id, now,
                                            current_app.config["VERIFY_WINDOW"])
    return render_template("compounds/show.html", compound=compound, page=page, now=now,
                           presence=presence,
                           just_scanned=request.args.get("scanned", type=int),
                           window_end=((presence.device_at or presence.at)
                                       + current_app.config["VERIFY_WINDOW"]) if presence else None,
                           can_report=compound.archived_at is None
                           and permissions.can_report(current_user, compound),
                           **_patrol_context(compound, now))


def _patrol_context(compound, now) -> dict:
    """The patrol panel: 开始巡查, or the user's patrol under way here (members, checkpoints
    with ✓, items found, 结束巡查)."""
    if compound.archived_at is not None or not permissions.can_record_presence(current_user,
                                                                               compound):
        return {"can_patrol_here": False}
    cfg = patrol_service.config()
    patrol = patrol_service.under_way(current_user, compound.id, now, cfg)
    scan_id = request.args.get("checkpoint_scan", type=int)
    just_scanned = db.session.get(CheckpointScan, scan_id) if scan_id else None
    if just_scanned is not None and (just_scanned.user_id != current_user.id
                                     or just_scanned.lat is not None):
        just_scanned = None      # only the scanner's own, and only once, gets a location
    return {
        "can_patrol_here": True, "patrol": patrol,
        "team_patrol": None if patrol else patrol_service.joinable(current_user, compound.id,
                                                                    now, cfg.quiet),
        "checkpoints": patrol_service.checkpoints_of(compound.id),
        "scanned": patrol_service.scanned_checkpoint_ids(patrol) if patrol else set(),
        "found": patrol_service.items_found(patrol) if patrol else 0,
        "just_checkpoint": just_scanned,
        "token_digest": token_digest,
    }


@bp.get("/compounds")
@login_required
def index():
    compounds = db.session.execute(
        db.select(Compound).where(permissions.compound_filter(current_user, Compound),
                                  Compound.archived_at.is_(None))
        .order_by(Compound.name)).scalars().all()
    counts = {k: int(n) for k, n in db.session.execute(   # from the tallies (models/counts.py)
        db.select(ItemTally.compound_id, db.func.sum(ItemTally.n))
        .where(ItemTally.compound_id.in_([c.id for c in compounds]),
               ItemTally.status.in_([s.value for s in OPEN]))
        .group_by(ItemTally.compound_id)).all() if n}
    lookback = []
    if permissions.can_patrol(current_user):
        lookback = db.session.execute(
            lookback_query(current_user).options(selectinload(Item.photos),
                                                 selectinload(Item.building),
                                                 selectinload(Item.compound))
            ).scalars().all()
    return render_template("compounds/index.html", compounds=compounds, counts=counts,
                           lookback=lookback, lookback_total=lookback_count(current_user),
                           now=utcnow())


# --- 待回头看: fixes waiting for their on-the-spot check ------------------------------

# The oldest 30: a phone's screenful or three, about 18 KB of page; each compound's own page
# lists the rest, and /sync/pages keeps these items' pages (and more) for use offline.
LOOKBACK_SHOWN = 30


def lookback_compounds(user):
    """The compounds whose fixes this user is asked to look back at: a volunteer's
    team's (Team.compounds); without a team, every compound the user sees (their
    community's). Archived compounds are nobody's walk."""
    cond = and_(permissions.compound_filter(user, Compound), Compound.archived_at.is_(None))
    if Role(user.role) == Role.VOLUNTEER and user.team_id is not None:
        cond = and_(cond, Compound.id.in_(db.select(TeamCompound.compound_id)
                                          .where(TeamCompound.team_id == user.team_id)))
    return db.select(Compound.id).where(cond)


# Above this many compounds the list is one query over all of them (a sort of their
# fixes) rather than two short index ranges per compound (a union of twice as many parts).
LOOKBACK_MERGE_MAX = 100


def lookback_query(user, limit: int | None = None):
    """The first `limit` fixed items waiting for their check in the user's compounds,
    oldest fix first (a fix without a time before any, then by id).

    Read as short ranges per compound on the partial index of fixes in that order
    (ix_item_compound_fixed_at: compound, fix time, id; models/counts.py), at most
    `limit` entries each: the fixes without a time, then the others; the outer query
    orders those few rows and keeps the first `limit`. No sort of every fix waiting in
    the compounds (a city's history grows them); the same rows in the same order.
    `limit` defaults to LOOKBACK_SHOWN."""
    limit = LOOKBACK_SHOWN if limit is None else limit
    fixed = Item.status == Status.FIXED.value
    order = (Item.fixed_at.asc().nulls_first(), Item.id)
    compound_ids = db.session.execute(lookback_compounds(user)).scalars().all()
    if len(compound_ids) > LOOKBACK_MERGE_MAX:
        return (db.select(Item).where(fixed, Item.compound_id.in_(compound_ids))
                .order_by(*order).limit(limit))
    # Per compound, each part in the index's order (compound equal, then fix time and
    # id; NULL or not NULL, so the two engines' NULL placements agree), as a subquery:
    # SQLite allows no ORDER BY or LIMIT on a member of a union.
    parts = [db.select(Item.id).where(fixed, Item.compound_id == compound_id, when)
             .order_by(Item.fixed_at, Item.id).limit(limit).subquery().select()
             for compound_id in compound_ids
             for when in (Item.fixed_at.is_(None), Item.fixed_at.is_not(None))]
    if not parts:
        return db.select(Item).where(false())
    first = union_all(*parts).subquery()
    return (db.select(Item).join(first, Item.id == first.c.id)
            .order_by(*order).limit(limit))


def lookback_count(user) -> int:
    if not (getattr(user, "is_authenticated", False) and permissions.can_patrol(user)):
        return 0
    return int(db.session.execute(   # from the tallies (models/counts.py), not the items
        db.select(db.func.coalesce(db.func.sum(ItemTally.n), 0))
        .where(ItemTally.status == Status.FIXED.value,
               ItemTally.compound_id.in_(lookback_compounds(user)))).scalar_one())


@bp.app_context_processor
def inject_lookback():
    """`lookback_badge()`: the volunteer's 待回头看 count for the menu (computed only
    when a page asks)."""
    def lookback_badge() -> int:
        if not current_user.is_authenticated or current_user.role != Role.VOLUNTEER.value:
            return 0
        return lookback_count(current_user)
    return {"lookback_badge": lookback_badge}
