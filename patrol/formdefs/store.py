"""Where a form field's answer is kept, as its definition says (`store` in forms/*.toml).

    store = "column:floor"   → the item table's `floor` column (models/items.py, Item.floor)
    store = "answers"        → the item's JSON `answers`, keyed by the field's name (default)

Only the columns in ITEM_COLUMNS may be named, and only by text and textarea fields; the
loader checks each field's `max_length` against the column's length, read from the model,
so a form can never accept what the database would refuse. Category, building and photos
fields are stored by their type (Item.category, Item.building_id, the photo table).
"""
from __future__ import annotations

ANSWERS = "answers"
COLUMN = "column:"
# The item columns a form field may fill; services/items.report writes them by these names.
ITEM_COLUMNS = ("unit", "floor", "note")
STORED_BY_TYPE = ("category", "building", "photos")
COLUMN_TYPES = ("text", "textarea")


def column_lengths() -> dict[str, int | None]:
    """ITEM_COLUMNS → the column's maximum length in characters (None: unlimited text)."""
    from ..models.items import Item  # the model is the one source of the lengths
    return {name: getattr(Item.__table__.c[name].type, "length", None) for name in ITEM_COLUMNS}


def column_of(field: dict) -> str | None:
    """The item column a field fills, or None (stored in answers, or by its type)."""
    store = field.get("store") or ""
    return store[len(COLUMN):] if store.startswith(COLUMN) else None


def stored_in_answers(field: dict) -> bool:
    return field["type"] not in STORED_BY_TYPE and column_of(field) is None


def check_stores(fields: list[dict]) -> list[tuple[str, str]]:
    """(path, message) for every field whose `store` the database cannot honour."""
    problems: list[tuple[str, str]] = []
    lengths = column_lengths()
    used: dict[str, int] = {}       # column → index of the field that fills it
    for i, f in enumerate(fields):
        store = f.get("store")
        if store is None:
            continue
        path = f"fields.{i}.store"
        if f["type"] in STORED_BY_TYPE:
            problems.append((path, f"a {f['type']} field is stored by its type; remove 'store'"))
            continue
        column = column_of(f)
        if column is None:
            continue
        if column not in lengths:
            problems.append((path, f"'{column}' is not an item column a form may fill "
                                   f"(one of: {', '.join(ITEM_COLUMNS)})"))
            continue
        if f["type"] not in COLUMN_TYPES:
            problems.append((path, f"only {' and '.join(COLUMN_TYPES)} fields may be stored in "
                                   f"a column; store this {f['type']} field in \"answers\""))
        if column in used:
            problems.append((path, f"column '{column}' is also filled by fields.{used[column]}"))
        used.setdefault(column, i)
        limit = lengths[column]
        if limit is not None and f.get("max_length") is None:
            problems.append((f"fields.{i}.max_length", f"needed: column '{column}' holds at "
                                                       f"most {limit} characters"))
        elif limit is not None and f["max_length"] > limit:
            problems.append((f"fields.{i}.max_length", f"{f['max_length']} is more than column "
                                                       f"'{column}' holds ({limit} characters)"))
    return problems
