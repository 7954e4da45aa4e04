"""Open311 GeoReport v2 at /open311/v2/ (docs/open311.md).

Services are the hazard form's categories; a request is an item. A POSTed request comes
with an `api_key` (a personal API token, /tokens/): from a trusted system (an acting
token whose user may report in the compound) it becomes an item at once; from anyone
else it waits in the residents' triage queue, like a resident's report, and answers with
a token. A request's lat/long is matched to the nearest compound within its radius.

Reading requests is open to any client, with public fields only (no free text, no
photos, no names); with a valid `api_key` the description is included for the items its
user may see. `media_url` is never fetched (nothing here reaches out of the machine).
"""
from __future__ import annotations

from flask import Blueprint, Response, current_app, json, request
from flask_babel import force_locale

from .. import open311, permissions
from ..clock import utcnow
from ..display import category_label, hazard_form
from ..extensions import csrf, db, limiter
from ..lifecycle import CLOSED, OPEN
from ..models import ApiToken, Building, Compound, Item, ItemEvent
from ..services import items as item_service
from ..services import residents

bp = Blueprint("open311", __name__, url_prefix="/open311/v2")
csrf.exempt(bp)
FORMATS = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}
ATTRIBUTES = (("building", "楼栋"), ("unit", "单元"), ("floor", "楼层"))
MAX_BODY = 64 * 1024


class Open311Error(Exception):
    def __init__(self, code: int, description: str):
        super().__init__(description)
        self.code, self.description = code, description


def answer(fmt: str, root: str, element: str | None, data, status: int = 200) -> Response:
    if fmt == "xml":
        body = open311.to_xml(root, element, data)
    else:
        body = json.dumps(data, ensure_ascii=False).encode("utf-8")
    return Response(body, status=status, mimetype=FORMATS[fmt].split(";")[0],
                    content_type=FORMATS[fmt])


@bp.errorhandler(Open311Error)
def _error(exc: Open311Error):
    fmt = request.view_args.get("fmt") if request.view_args else None
    return answer(fmt if fmt in FORMATS else "json", "errors", "error",
                  open311.errors_body(exc.code, exc.description), exc.code)


def _fmt(fmt: str) -> str:
    if fmt not in FORMATS:
        raise Open311Error(404, "Unknown format: use .json or .xml")
    return fmt


def _token(required: bool) -> ApiToken | None:
    key = request.values.get("api_key", "")
    if not key:
        if required:
            raise Open311Error(403, "api_key is required")
        return None
    token = ApiToken.find(key)
    if token is None or not token.usable(utcnow()) or not token.user.active:
        raise Open311Error(403, "Invalid api_key")
    return token


# --- discovery and services -----------------------------------------------------------

@bp.get("/discovery.<fmt>")
def discovery(fmt):
    fmt = _fmt(fmt)
    base = current_app.config["BASE_URL"].rstrip("/")
    data = {"changeset": "2026-12-01T00:00:00Z", "contact": "社区工作人员",
            "key_service": f"{base}/tokens/",
            "endpoints": [{"specification": open311.SPEC_URL, "url": f"{base}/open311/v2",
                           "changeset": "2026-12-01T00:00:00Z", "type": "production",
                           "formats": ["application/json", "text/xml"]}]}
    return answer(fmt, "discovery", None, data)


def _services():
    form = hazard_form()
    with force_locale("zh"):
        return [{"service_code": c["code"], "service_name": form.label(c, "zh"),
                 "description": form.label(c, "zh"), "metadata": True, "type": "batch",
                 "keywords": c["code"], "group": "小区巡查"} for c in form.categories]


@bp.get("/services.<fmt>")
def services(fmt):
    return answer(_fmt(fmt), "services", "service", _services())


@bp.get("/services/<code>.<fmt>")
def service_definition(code, fmt):
    fmt = _fmt(fmt)
    if hazard_form().category(code) is None:
        raise Open311Error(404, f"Unknown service_code: {code[:40]}")
    attributes = [{"variable": True, "code": name, "datatype": "string", "required": False,
                   "datatype_description": label, "order": n, "description": label}
                  for n, (name, label) in enumerate(ATTRIBUTES, 1)]
    return answer(fmt, "service_definition", None,
                  {"service_code": code, "attributes": attributes})


# --- requests -------------------------------------------------------------------------

def _request_json(item: Item, full: bool, last_notes: dict) -> dict:
    compound = item.compound
    out = {"service_request_id": str(item.id), "status": open311.open_or_closed(item.status),
           "status_notes": last_notes.get(item.id), "service_name": category_label(item.category, "zh"),
           "service_code": item.category, "agency_responsible": (
               item.department.name if item.department else
               item.company.name if item.company else None),
           "service_notice": None,
           "requested_datetime": open311.w3c(item.created_at),
           "updated_datetime": open311.w3c(item.updated_at),
           "expected_datetime": open311.w3c(item.deadline) if item.status not in
           {s.value for s in CLOSED} else None,
           "address": compound.name if compound else None, "address_id": str(item.compound_id),
           "zipcode": None, "lat": compound.lat if compound else None,
           "long": compound.lon if compound else None, "media_url": None}
    out["description"] = item.note if full else category_label(item.category, "zh")
    return out


def _notes(item_ids: list[int]) -> dict[int, str]:
    """Each item's latest status in words (public: no names, no free text)."""
    from .. import labels
    out: dict[int, str] = {}
    if not item_ids:
        return out
    with force_locale("zh"):
        for item_id, to_status in db.session.execute(
                db.select(ItemEvent.item_id, ItemEvent.to_status)
                .where(ItemEvent.item_id.in_(item_ids)).order_by(ItemEvent.id)):
            out[item_id] = str(labels.STATUS.get(to_status, to_status))
    return out


def _listing(items: list[Item], token: ApiToken | None, fmt: str) -> Response:
    notes = _notes([i.id for i in items])
    user = token.user if token else None
    data = [_request_json(i, bool(user and permissions.can_see_item(user, i)), notes)
            for i in items]
    return answer(fmt, "service_requests", "request", data)


def _ids(text: str) -> list[int]:
    try:
        ids = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise Open311Error(400, "service_request_id must be numbers, comma separated") from None
    if not ids or len(ids) > open311.MAX_REQUESTS or any(i < 1 or i > 2**31 - 1 for i in ids):
        raise Open311Error(400, "service_request_id out of range")
    return ids


@bp.get("/requests.<fmt>")
@limiter.limit("120 per minute")
def requests_list(fmt):
    fmt = _fmt(fmt)
    token = _token(required=False)
    query = db.select(Item).where(Item.status != "merged")
    args = request.args
    if args.get("service_request_id"):
        query = query.where(Item.id.in_(_ids(args["service_request_id"])))
    else:
        codes = [c for c in args.get("service_code", "").split(",") if c]
        if codes:
            query = query.where(Item.category.in_(codes[:50]))
        try:
            start = open311.parse_w3c(args["start_date"]) if args.get("start_date") else None
            end = open311.parse_w3c(args["end_date"]) if args.get("end_date") else None
            start, end = open311.window(start, end, utcnow())
        except (ValueError, OverflowError) as exc:
            raise Open311Error(400, f"Bad start_date or end_date: {exc}") from None
        query = query.where(Item.created_at >= start, Item.created_at <= end)
        statuses = [s for s in args.get("status", "").split(",") if s]
        if any(s not in ("open", "closed") for s in statuses):
            raise Open311Error(400, "status must be open or closed")
        if statuses and set(statuses) != {"open", "closed"}:
            wanted = OPEN if statuses == ["open"] else CLOSED
            query = query.where(Item.status.in_([s.value for s in wanted]))
    items = db.session.execute(query.order_by(Item.created_at.desc(), Item.id.desc())
                               .limit(open311.MAX_REQUESTS)).scalars().all()
    return _listing(list(items), token, fmt)


@bp.get("/requests/<int:request_id>.<fmt>")
def request_one(request_id, fmt):
    fmt = _fmt(fmt)
    token = _token(required=False)
    item = db.session.get(Item, request_id) if request_id <= 2**31 - 1 else None
    if item is None or item.status == "merged":
        raise Open311Error(404, "No such service request")
    return _listing([item], token, fmt)


@bp.get("/tokens/<token>.<fmt>")
def token_lookup(token, fmt):
    fmt = _fmt(fmt)
    report = residents.find_by_token(token)
    if report is None:
        raise Open311Error(404, "No such token")
    entry = {"token": token}
    if report.item_id:
        entry["service_request_id"] = str(report.item_id)
    return answer(fmt, "service_requests", "request", [entry])


@bp.post("/requests.<fmt>")
@limiter.limit("60 per minute")
def request_create(fmt):
    fmt = _fmt(fmt)
    if (request.content_length or 0) > MAX_BODY:
        raise Open311Error(413, "The request is too large")
    token = _token(required=True)
    assert token is not None
    form = hazard_form()
    code = request.values.get("service_code", "")
    if not code:
        raise Open311Error(400, "service_code is required")
    if form.category(code) is None:
        raise Open311Error(404, f"Unknown service_code: {code[:40]}")
    try:
        lat, lon = float(request.values["lat"]), float(request.values["long"])
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise ValueError
    except (KeyError, ValueError):
        raise Open311Error(400, "lat and long are required, in degrees") from None
    compounds = db.session.execute(db.select(Compound).where(
        Compound.archived_at.is_(None), Compound.lat.is_not(None))).scalars().all()
    compound, _ = open311.nearest(lat, lon, compounds)
    if compound is None:
        raise Open311Error(400, "No compound of this district is within reach of lat/long")
    assert isinstance(compound, Compound)
    attr = {name: (request.values.get(f"attribute[{name}]") or "").strip()[:20]
            for name, _ in ATTRIBUTES}
    building = None
    if attr["building"]:
        building = db.session.execute(db.select(Building).where(
            Building.compound_id == compound.id, Building.name == attr["building"])).scalar()
    description = (request.values.get("description") or "").strip()
    now = utcnow()
    user = token.user
    if token.scope == "act" and permissions.can_report(user, compound):
        # A trusted system: straight to the responsible party, like a volunteer's report.
        item = item_service.report(
            form=form, compound=compound, reporter=user, now=now, photos=[],
            clean={"category": code, "building": building.id if building else None,
                   "unit": attr["unit"] or None, "floor": attr["floor"] or None,
                   "note": description[:2000] or None, "extra": {}})
        db.session.commit()
        return answer(fmt, "service_requests", "request", [{
            "service_request_id": str(item.id), "service_notice": "已交办",
            "account_id": None}], 201)
    # Anyone else: the residents' triage queue; nothing reaches a company before it.
    cfg = current_app.config
    values = {"category": code, "building": str(building.id) if building else "",
              "note": description[:residents.NOTE_MAX],
              "phone": (request.values.get("phone") or "")[:residents.PHONE_MAX],
              "client_uuid": request.values.get("device_id") if _is_uuid(
                  request.values.get("device_id")) else ""}
    out = residents.submit(
        compound, values, [], device_id=f"open311:{token.id}", ip=request.remote_addr, now=now,
        limits=residents.Limits(device_limit=cfg["RESIDENT_DEVICE_LIMIT"],
                                max_photos=cfg["MAX_PHOTOS"], secret=cfg["SECRET_KEY"]),
        form=form, photo_required=False)
    if out.conflict:
        raise Open311Error(409, "This device_id was used for another request")
    if out.errors:
        raise Open311Error(400, "Invalid " + ", ".join(sorted(out.errors)))
    if out.collapsed:
        raise Open311Error(429, "Too many requests from this key at this compound today")
    return answer(fmt, "service_requests", "request", [{
        "token": out.token, "service_notice": "已收到，等待社区受理", "account_id": None}], 201)


def _is_uuid(value: str | None) -> bool:
    import uuid
    try:
        uuid.UUID(value or "")
        return True
    except ValueError:
        return False
