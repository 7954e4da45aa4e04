"""Validate a report submission against its form definition. Pure: no Flask."""
from __future__ import annotations

from .store import column_of


def validate_submission(form, values: dict, *, building_ids: set[int], photo_count: int,
                        max_photos: int) -> tuple[dict, dict[str, str]]:
    """Return (clean values, {field name: error code}). Codes are translated by the view.

    `values` maps field names to submitted strings; photos are counted by the caller.
    Clean values are keyed by where they are stored (formdefs/store.py): `category`,
    `building`, each item column a field names in its `store` (e.g. `floor`), and
    `extra`, the answers (field name → value).
    """
    clean, errors, extra = {}, {}, {}
    for f in form.fields:
        name, kind = f["name"], f["type"]
        if kind == "photos":
            if f["required"] and photo_count == 0:
                errors[name] = "required_photo"
            elif photo_count > max_photos:
                errors[name] = "too_many_photos"
            continue
        raw = (values.get(name) or "").strip()
        if not raw:
            if f["required"]:
                errors[name] = "required"
            continue
        if f.get("max_length") and len(raw) > f["max_length"]:
            errors[name] = "too_long"
            continue
        if kind == "category":
            if form.category(raw) is None:
                errors[name] = "bad_choice"
                continue
            clean["category"] = raw
        elif kind == "building":
            try:
                building_id: int | None = int(raw)
            except ValueError:
                building_id = None
            if building_id not in building_ids:
                errors[name] = "bad_choice"
                continue
            clean["building"] = building_id
        else:
            value = raw
            if kind == "integer":
                try:
                    value = int(raw)
                except ValueError:
                    errors[name] = "not_integer"
                    continue
            elif kind == "choice" and raw not in {c["value"] for c in f["choices"]}:
                errors[name] = "bad_choice"
                continue
            column = column_of(f)
            if column:
                clean[column] = value
            else:
                extra[name] = value
    clean["extra"] = extra
    return clean, errors
