"""marshmallow schemas of the JSON API: what /api/v1 returns and takes (and documents)."""
from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from ..lifecycle import Action, Status


class PhotoSchema(ma.Schema):
    id = fields.Integer()
    kind = fields.String(metadata={"description": "before, after or check"})
    url = fields.String()
    thumb_url = fields.String()


class EventSchema(ma.Schema):
    id = fields.Integer()
    at = fields.DateTime(metadata={"description": "UTC"})
    action = fields.String()
    from_status = fields.String(allow_none=True)
    to_status = fields.String()
    actor_role = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    note = fields.String(allow_none=True)


class ItemSchema(ma.Schema):
    id = fields.Integer()
    url = fields.String()
    compound_id = fields.Integer()
    community_id = fields.Integer()
    company_id = fields.Integer(allow_none=True)
    department_id = fields.Integer(allow_none=True)
    building_id = fields.Integer(allow_none=True)
    unit = fields.String(allow_none=True)
    floor = fields.String(allow_none=True)
    category = fields.String()
    note = fields.String(allow_none=True)
    status = fields.String(validate=validate.OneOf([s.value for s in Status]))
    source = fields.String()
    supporting_reports = fields.Integer()
    flagged = fields.Boolean()
    disputed = fields.Boolean()
    overdue = fields.Boolean()
    deadline = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    acknowledged_at = fields.DateTime(allow_none=True)
    fixed_at = fields.DateTime(allow_none=True)
    closed_at = fields.DateTime(allow_none=True)
    updated_at = fields.DateTime()
    version = fields.Integer(metadata={"description": "Send it back with an action to "
                                                      "refuse a stale change (409)"})


class ItemDetailSchema(ItemSchema):
    photos = fields.List(fields.Nested(PhotoSchema))
    history = fields.List(fields.Nested(EventSchema))


class ItemPageSchema(ma.Schema):
    items = fields.List(fields.Nested(ItemSchema))
    next_cursor = fields.String(allow_none=True, metadata={
        "description": "Pass as `cursor` for the next page; null on the last"})


class ItemQuerySchema(ma.Schema):
    status = fields.String(validate=validate.OneOf([s.value for s in Status] + ["open"]))
    compound_id = fields.Integer(validate=validate.Range(min=1, max=2**31 - 1))
    company_id = fields.Integer(validate=validate.Range(min=1, max=2**31 - 1))
    category = fields.String(validate=validate.Length(max=40))
    cursor = fields.String(validate=validate.Regexp(r"^[0-9]{1,12}$"),
                           metadata={"description": "next_cursor of the previous page"})
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class ChangeSchema(ma.Schema):
    event_id = fields.Integer()
    item_id = fields.Integer()
    at = fields.DateTime()
    action = fields.String()
    to_status = fields.String()


class ChangesPageSchema(ma.Schema):
    changes = fields.List(fields.Nested(ChangeSchema))
    next_cursor = fields.String(metadata={"description": "Ask again with it as `since`"})


class ChangesQuerySchema(ma.Schema):
    since = fields.String(load_default="0", validate=validate.Regexp(r"^[0-9]{1,12}$"),
                          metadata={"description": "next_cursor of the previous answer"})
    limit = fields.Integer(load_default=200, validate=validate.Range(min=1, max=1000))


class CompoundSchema(ma.Schema):
    id = fields.Integer()
    name = fields.String()
    address = fields.String(allow_none=True)
    community_id = fields.Integer()
    company_id = fields.Integer(allow_none=True)
    lat = fields.Float(allow_none=True)
    lon = fields.Float(allow_none=True)
    radius_m = fields.Integer(allow_none=True)


class NamedSchema(ma.Schema):
    id = fields.Integer()
    name = fields.String()


class DepartmentSchema(NamedSchema):
    kind = fields.String()


class RatingSchema(ma.Schema):
    company_id = fields.Integer()
    company = fields.String()
    items = fields.Integer()
    score = fields.Float(allow_none=True)
    stars = fields.Integer(allow_none=True)
    listing = fields.String(allow_none=True, metadata={"description": "red, black or null"})
    sufficient = fields.Boolean()
    rank = fields.Integer(allow_none=True)


class RatingsSchema(ma.Schema):
    period = fields.String(metadata={"example": "2026-Q3"})
    ratings = fields.List(fields.Nested(RatingSchema))
    red = fields.List(fields.Integer(), metadata={"description": "company ids on the red list"})
    black = fields.List(fields.Integer())


class RatingsQuerySchema(ma.Schema):
    period = fields.String(validate=validate.Length(max=10),
                           metadata={"description": "2026-Q3 or 2026-09; default: the last "
                                                    "complete quarter"})
    community_id = fields.Integer(validate=validate.Range(min=1, max=2**31 - 1))


def _photos_field():
    """Documents the multipart files; the view reads them from request.files."""
    return fields.List(fields.Raw(metadata={"type": "string", "format": "binary"}),
                       metadata={"description": "JPEG, PNG, WebP or HEIC photos (files)"})


class ReportSchema(ma.Schema):
    compound_id = fields.Integer(required=True, validate=validate.Range(min=1, max=2**31 - 1))
    category = fields.String(required=True, validate=validate.Length(min=1, max=40))
    building_id = fields.Integer(validate=validate.Range(min=1, max=2**31 - 1))
    unit = fields.String(validate=validate.Length(max=20))
    floor = fields.String(validate=validate.Length(max=20))
    note = fields.String(validate=validate.Length(max=2000))
    client_key = fields.UUID(required=True, metadata={
        "description": "Idempotency key: the same key again returns the same item"})
    photos = _photos_field()


class ActionSchema(ma.Schema):
    action = fields.String(required=True, validate=validate.OneOf(
        [a.value for a in Action if a not in (Action.FIX_ON_SPOT, Action.HAND_OVER)]))
    note = fields.String(validate=validate.Length(max=2000))
    reason = fields.String(validate=validate.Length(max=40))
    deadline = fields.DateTime(metadata={"description": "acknowledge / extend_deadline (UTC)"})
    target_id = fields.Integer(validate=validate.Range(min=1, max=2**31 - 1))
    department_id = fields.Integer(validate=validate.Range(min=1, max=2**31 - 1))
    to_company = fields.Boolean()
    version = fields.Integer(validate=validate.Range(min=1, max=2**31 - 1))
    client_key = fields.UUID(required=True)
    photos = _photos_field()


