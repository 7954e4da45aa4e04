"""The audit log (操作记录): one append-only row per administrative act.

    audit.record(actor, "compound.archive", compound, {"archived_at": None},
                 {"archived_at": now}, now)

adds the row to the caller's session (its transaction: the act and its record commit or
roll back together); it flushes only when `obj` is new and has no id yet. `actor` may
be None (the CLI); `obj` is any model with an `id`, or None. `before` / `after` are
small dicts of the fields that changed (JSON: dates become ISO strings). The row's
street and community are read off the object (or, failing that, the actor), so street
staff see their street's rows.
"""
from datetime import date, datetime
from decimal import Decimal

from ..extensions import db
from ..models.audit import AuditEntry


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "value") and isinstance(value.value, str):  # enums
        return value.value
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def object_type(obj) -> str | None:
    if obj is None:
        return None
    return getattr(obj, "__tablename__", None) or type(obj).__name__.lower()


def place_of(obj):
    """(street_id, community_id) an object belongs to, as far as it says."""
    from ..models import Street, Community, Compound, Building, User
    if obj is None:
        return None, None
    if isinstance(obj, Street):
        return obj.id, None
    if isinstance(obj, Community):
        return obj.street_id, obj.id
    if isinstance(obj, Building):
        obj = obj.compound
    if isinstance(obj, Compound):
        community = obj.community
        return (community.street_id if community else None), obj.community_id
    if isinstance(obj, User):
        if obj.community_id:
            community = obj.community
            return (community.street_id if community else None), obj.community_id
        return getattr(obj, "street_id", None), None
    user = getattr(obj, "user", None)      # invites, devices
    if user is not None and isinstance(user, User):
        return place_of(user)
    community = getattr(obj, "community", None)   # receivers, teams
    if community is not None and isinstance(community, Community):
        return place_of(community)
    compound = getattr(obj, "compound", None)
    if compound is not None and isinstance(compound, Compound):
        return place_of(compound)
    return None, None


def record(actor, action: str, obj, before: dict | None, after: dict | None, now,
           *, street_id: int | None = None, community_id: int | None = None) -> AuditEntry:
    """Append one row in the caller's transaction and return it."""
    if obj is not None and hasattr(obj, "id") and obj.id is None:
        db.session.flush()
    s_id, c_id = place_of(obj)
    if s_id is None and c_id is None and actor is not None:
        s_id, c_id = place_of(actor)
    entry = AuditEntry(
        at=now, actor_id=getattr(actor, "id", None), action=action,
        object_type=object_type(obj) or "-", object_id=getattr(obj, "id", None),
        street_id=street_id if street_id is not None else s_id,
        community_id=community_id if community_id is not None else c_id,
        before=_jsonable(before) if before is not None else None,
        after=_jsonable(after) if after is not None else None,
    )
    if entry.street_id is None and entry.community_id is not None:
        from ..models import Community
        community = db.session.get(Community, entry.community_id)
        entry.street_id = community.street_id if community else None
    db.session.add(entry)
    return entry


def changes(obj, fields, values: dict):
    """Apply `values` to `obj` and return (before, after) of the fields that changed."""
    before, after = {}, {}
    for field in fields:
        if field not in values:
            continue
        old, new = getattr(obj, field), values[field]
        if old != new:
            before[field], after[field] = old, new
            setattr(obj, field, new)
    return before, after
