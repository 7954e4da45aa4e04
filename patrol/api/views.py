"""/api/v1 resources. Thin: permissions.py decides what a token's user sees and may do,
services/items.py does the reporting and the lifecycle actions (the web's own use cases)."""
from __future__ import annotations

from datetime import timezone

from flask import current_app, g, request, send_file
from flask.views import MethodView
from flask_smorest import Blueprint
from werkzeug.exceptions import HTTPException

from .. import labels, lifecycle, permissions
from ..clock import utcnow
from ..display import form_for, hazard_form
from ..extensions import db
from ..lifecycle import OPEN, TransitionError
from ..models import Company, Compound, Department, Item, ItemEvent, Photo
from ..services import items as item_service
from ..services import ratings as rating_service
from ..services.photo_store import storage
from . import setup_blueprint
from .schemas import (ActionSchema, ChangesPageSchema, ChangesQuerySchema, CompoundSchema,
                      DepartmentSchema, ItemDetailSchema, ItemPageSchema, ItemQuerySchema,
                      NamedSchema, RatingsQuerySchema, RatingsSchema,
                      ReportSchema)

items = Blueprint("api-items", __name__, description="Items (问题): list, detail, report, "
                  "act, and changes for systems that sync")
places = Blueprint("api-places", __name__, description="Compounds, companies, departments")
ratings = Blueprint("api-ratings", __name__, description="Ratings and the red/black list")
BLUEPRINTS = (items, places, ratings)
for _blueprint in BLUEPRINTS:
    setup_blueprint(_blueprint)


class Refused(HTTPException):
    """An answer in the API's error shape from inside a view."""

    def __init__(self, status: int, reason: str, message: str, errors=None):
        super().__init__(message)
        self.code = status
        self.data = {"reason": reason, "message": message, "errors": errors}


def user():
    return g.api_user


def _base() -> str:
    return current_app.config["BASE_URL"].rstrip("/")


def _utc(dt):
    return dt.replace(tzinfo=timezone.utc) if dt is not None else None


def item_json(item: Item, now) -> dict:
    return {
        "id": item.id, "url": f"{_base()}/items/{item.id}", "compound_id": item.compound_id,
        "community_id": item.community_id, "company_id": item.company_id,
        "department_id": item.department_id, "building_id": item.building_id,
        "unit": item.unit, "floor": item.floor, "category": item.category, "note": item.note,
        "status": item.status, "source": item.source,
        "supporting_reports": item.support_count, "flagged": item.flagged_at is not None,
        "disputed": item.disputed_at is not None,
        "overdue": lifecycle.is_overdue(item.status, item.deadline, now),
        "deadline": _utc(item.deadline), "created_at": _utc(item.created_at),
        "acknowledged_at": _utc(item.acknowledged_at), "fixed_at": _utc(item.fixed_at),
        "closed_at": _utc(item.closed_at), "updated_at": _utc(item.updated_at),
        "version": item.version,
    }


def _load_item(item_id: int, check=permissions.can_see_item) -> Item:
    item = db.session.get(Item, item_id)
    if item is None:
        raise Refused(404, "not_found", "No such item.")
    if not check(user(), item):
        status = permissions.refusal_status(check)
        raise Refused(status, "forbidden" if status == 403 else "not_found",
                      "Not yours to see or change." if status == 403 else "No such item.")
    return item


def _cursor(value: str | None) -> int | None:
    if not value:
        return None
    if not value.isdigit() or len(value) > 12:
        raise Refused(422, "bad_cursor", "The cursor is not one this API gave out.")
    return int(value)


@items.route("/items")
class Items(MethodView):
    @items.arguments(ItemQuerySchema, location="query")
    @items.response(200, ItemPageSchema)
    def get(self, args):
        """Items the token's user may see, newest first; `cursor` pages on."""
        now = utcnow()
        query = db.select(Item).where(permissions.item_filter(user(), Item))
        if args.get("status") == "open":
            query = query.where(Item.status.in_([s.value for s in OPEN]))
        elif args.get("status"):
            query = query.where(Item.status == args["status"])
        for key, column in (("compound_id", Item.compound_id), ("company_id", Item.company_id),
                            ("category", Item.category)):
            if args.get(key) is not None:
                query = query.where(column == args[key])
        after = _cursor(args.get("cursor"))
        if after is not None:
            query = query.where(Item.id < after)
        limit = args["limit"]
        rows = db.session.execute(query.order_by(Item.id.desc()).limit(limit + 1)).scalars().all()
        more = len(rows) > limit
        rows = rows[:limit]
        return {"items": [item_json(i, now) for i in rows],
                "next_cursor": str(rows[-1].id) if more and rows else None}

    @items.arguments(ReportSchema, location="form", content_type="multipart/form-data")
    @items.response(201, ItemDetailSchema)
    @items.alt_response(200, schema=ItemDetailSchema, description="The same client_key again")
    def post(self, args):
        """Report an item (multipart, with its photos), exactly as the report form does.
        The same `client_key` again returns the same item (200)."""
        compound = db.session.get(Compound, args["compound_id"])
        if compound is None or not permissions.can_report(user(), compound):
            raise Refused(404 if compound is None else 403, "not_found" if compound is None
                          else "forbidden", "You cannot report in this compound.")
        values = {"category": args["category"],
                  "building": str(args["building_id"]) if args.get("building_id") else "",
                  **{k: args.get(k) or "" for k in ("unit", "floor", "note")}}
        cfg = current_app.config
        sent = item_service.ReportSend(
            values=values, client_uuid=str(args["client_key"]),
            photos=item_service.PhotoSend(uploads=request.files.getlist("photos")))
        out = item_service.submit_report(form=hazard_form(), compound=compound, reporter=user(),
                                         sent=sent, now=utcnow(), max_photos=cfg["MAX_PHOTOS"],
                                         window=cfg["VERIFY_WINDOW"])
        if out.conflict:
            raise Refused(409, "resent_different", "This client_key was used for another report.")
        if out.errors or out.photo_errors:
            errors = {k: [str(labels.FIELD_ERROR.get(v, v))] for k, v in out.errors.items()}
            for field, name, code in out.photo_errors:
                errors.setdefault(field, []).append(f"{name}: {labels.PHOTO_ERROR.get(code, code)}")
            raise Refused(422, "invalid", "The report is not valid.", errors)
        return detail_json(out.item), 200 if out.duplicate else 201


def detail_json(item: Item) -> dict:
    out = item_json(item, utcnow())
    base = _base()
    out["photos"] = [{"id": p.id, "kind": p.kind, "url": f"{base}/api/v1/photos/{p.id}/full.jpg",
                      "thumb_url": f"{base}/api/v1/photos/{p.id}/thumb.jpg"} for p in item.photos]
    out["history"] = [{"id": e.id, "at": _utc(e.at), "action": e.action,
                       "from_status": e.from_status, "to_status": e.to_status,
                       "actor_role": e.actor.role if e.actor else None, "reason": e.reason,
                       "note": e.note} for e in item.events]
    return out


@items.route("/items/<int:item_id>")
class ItemDetail(MethodView):
    @items.response(200, ItemDetailSchema)
    def get(self, item_id):
        """One item with its photos and history (actors by role only)."""
        return detail_json(_load_item(item_id))


@items.route("/items/<int:item_id>/actions")
class ItemActions(MethodView):
    @items.arguments(ActionSchema, location="form", content_type="multipart/form-data")
    @items.response(200, ItemDetailSchema)
    def post(self, args, item_id):
        """Take a lifecycle action, through the web's transition table and services. The
        same `client_key` again is the same change (answered as done)."""
        action = lifecycle.Action(args["action"])
        check = item_service.OBJECT_CHECK.get(action, permissions.can_act_on_item)
        item = _load_item(item_id, check)
        photos, refused = item_service.store_photos(
            item_service.PhotoSend(uploads=request.files.getlist("photos")), uploader=user(),
            kind="after")
        db.session.commit()
        if refused:
            raise Refused(422, "photo_rejected", "A photo was refused.",
                          {"photos": [f"{n}: {labels.PHOTO_ERROR.get(c, c)}" for n, c in refused]})
        deadline = args.get("deadline")
        if deadline is not None and deadline.tzinfo is not None:
            deadline = deadline.astimezone(timezone.utc).replace(tzinfo=None)
        given = item_service.ActionInput(
            note=args.get("note"), reason=args.get("reason"), deadline=deadline,
            target_id=args.get("target_id"), photos=photos, version=args.get("version"),
            client_uuid=str(args["client_key"]), department_id=args.get("department_id"),
            to_company=bool(args.get("to_company")))
        try:
            item_service.act_once(item, action, user(), utcnow(), given, form=form_for(item),
                                  window=current_app.config["VERIFY_WINDOW"])
        except item_service.ConflictError:
            db.session.rollback()
            raise Refused(409, "stale", "The item changed since you read it.") from None
        except TransitionError as exc:
            db.session.rollback()
            message = str(labels.TRANSITION_ERROR.get(exc.code, exc.code))
            if exc.code == "missing_evidence":
                message += " " + ", ".join(str(labels.EVIDENCE.get(e, e))
                                           for e in exc.detail.split(","))
            raise Refused(409 if exc.code == "bad_state" else 403 if exc.code.startswith(
                "forbidden") else 422, exc.code, message) from None
        return detail_json(db.session.get(Item, item_id))


@items.route("/changes")
class Changes(MethodView):
    @items.arguments(ChangesQuerySchema, location="query")
    @items.response(200, ChangesPageSchema)
    def get(self, args):
        """Every history entry after the cursor, oldest first, of the items the user may
        see: ask again with `next_cursor` to keep a copy in step."""
        since = _cursor(args.get("since")) or 0
        rows = db.session.execute(
            db.select(ItemEvent.id, ItemEvent.item_id, ItemEvent.at, ItemEvent.action,
                      ItemEvent.to_status)
            .join(Item, Item.id == ItemEvent.item_id)
            .where(permissions.item_filter(user(), Item), ItemEvent.id > since)
            .order_by(ItemEvent.id).limit(args["limit"])).all()
        return {"changes": [{"event_id": r[0], "item_id": r[1], "at": _utc(r[2]),
                             "action": r[3], "to_status": r[4]} for r in rows],
                "next_cursor": str(rows[-1][0] if rows else since)}


@items.route("/photos/<int:photo_id>/<any(full, thumb):size>.jpg")
class PhotoFile(MethodView):
    @items.response(200, description="JPEG", content_type="image/jpeg")
    def get(self, photo_id, size):
        """A photo of an item the user may see."""
        photo = db.session.get(Photo, photo_id)
        if photo is None or photo.item is None or not permissions.can_see_item(user(), photo.item):
            raise Refused(404, "not_found", "No such photo.")
        store = storage()
        key = photo.key if size == "full" else photo.thumb_key
        path = store.local_path(key)
        try:
            if path is not None:
                return send_file(path, mimetype="image/jpeg", max_age=None)
            import io
            return send_file(io.BytesIO(store.get(key)), mimetype="image/jpeg")
        except FileNotFoundError:
            raise Refused(404, "not_found", "No such photo.") from None


@places.route("/compounds")
class Compounds(MethodView):
    @places.response(200, CompoundSchema(many=True))
    def get(self):
        """Compounds the user may see (archived ones left out)."""
        return db.session.execute(
            db.select(Compound).where(permissions.compound_filter(user(), Compound),
                                      Compound.archived_at.is_(None))
            .order_by(Compound.id)).scalars().all()


@places.route("/companies")
class Companies(MethodView):
    @places.response(200, NamedSchema(many=True))
    def get(self):
        """Property companies working in the compounds the user may see."""
        ids = db.select(Compound.company_id).where(permissions.compound_filter(user(), Compound))
        if user().company_id:
            ids = ids.union(db.select(db.literal(user().company_id)))
        return db.session.execute(db.select(Company).where(Company.id.in_(ids))
                                  .order_by(Company.id)).scalars().all()


@places.route("/departments")
class Departments(MethodView):
    @places.response(200, DepartmentSchema(many=True))
    def get(self):
        """Departments (部门) items can be routed to."""
        return db.session.execute(db.select(Department).where(Department.active.is_(True))
                                  .order_by(Department.id)).scalars().all()


@ratings.route("/ratings")
class Ratings(MethodView):
    @ratings.arguments(RatingsQuerySchema, location="query")
    @ratings.response(200, RatingsSchema)
    def get(self, args):
        """Company ratings and the red/black list of a period, as on the ratings page:
        community staff their community, street staff one of their street's, admins any."""
        from ..scoring import Period
        if not permissions.can_see_ratings_list(user()):
            raise Refused(403, "forbidden", "Ratings are for community staff and admins.")
        now = utcnow()
        try:
            period = Period.parse(args["period"]) if args.get("period") else \
                rating_service.default_period(now)
        except (ValueError, KeyError):
            raise Refused(422, "bad_period", "Use a period like 2026-Q3 or 2026-09.") from None
        own = permissions.own_communities(user())
        community_id = args.get("community_id")
        if community_id is not None and own and community_id not in own:
            raise Refused(404, "not_found", "No such community.")
        if community_id is None and own:
            community_id = own[0]
        result = rating_service.rate_period(period, community_id=community_id, now=now)
        return {"period": period.code, "ratings": [
            {"company_id": f.company_id, "company": result.names.get(f.company_id, ""),
             "items": f.items, "score": f.score, "stars": f.stars, "listing": f.listing,
             "sufficient": f.sufficient, "rank": f.rank} for f in result.figures],
            "red": [f.company_id for f in result.red],
            "black": [f.company_id for f in result.black]}


