"""Managing places (区域管理): streets, communities, compounds, buildings and property
companies, by hand (the district import does the same in bulk). Every act is recorded
in the audit log in the caller's transaction; the caller commits.

Validation errors are raised together as `PlacesInvalid({field: code})`; the web layer
turns the codes into sentences. Nothing here checks who may act: views do, through
patrol.permissions, before calling.
"""
from __future__ import annotations

import re

from ..extensions import db
from ..importer import normalise
from ..models import Building, Community, Company, Compound, Street
from . import audit, row_locks

MAX_BUILDINGS = 500
# GB 32100-2015: 18 characters from this alphabet (no I, O, S, V, Z), the last a check.
CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


class PlacesInvalid(ValueError):
    def __init__(self, errors: dict):
        super().__init__(errors)
        self.errors = errors


def _text(value) -> str:
    return normalise.text(value)


def credit_code_valid(code: str) -> bool:
    """统一社会信用代码: 18 characters and the right check character."""
    if len(code) != 18 or any(ch not in CREDIT_ALPHABET for ch in code):
        return False
    total = sum(CREDIT_ALPHABET.index(ch) * w for ch, w in zip(code[:17], CREDIT_WEIGHTS, strict=True))
    check = (31 - total % 31) % 31
    return CREDIT_ALPHABET[check] == code[17]


def _name(value, errors, field="name", limit=100) -> str:
    name = _text(value)
    if not name or len(name) > limit:
        errors[field] = "name"
    return name


def _number(value, errors, field, low, high, integer=False):
    text = _text(value)
    if not text:
        return None
    try:
        number = int(text) if integer else float(text)
    except ValueError:
        errors[field] = field
        return None
    if not low <= number <= high:
        errors[field] = field
        return None
    return number


def _raise(errors):
    if errors:
        raise PlacesInvalid(errors)


# --- streets and communities -----------------------------------------------------------

def create_street(actor, name, now) -> Street:
    errors: dict[str, str] = {}
    name = _name(name, errors)
    if "name" not in errors and db.session.scalar(db.select(Street.id).where(Street.name == name)):
        errors["name"] = "taken"
    _raise(errors)
    street = Street(name=name)
    db.session.add(street)
    row_locks.flush_or(PlacesInvalid({"name": "taken"}))
    audit.record(actor, "street.create", street, None, {"name": name}, now)
    return street


def rename_street(actor, street, name, now) -> None:
    errors: dict[str, str] = {}
    name = _name(name, errors)
    if "name" not in errors and db.session.scalar(
            db.select(Street.id).where(Street.name == name, Street.id != street.id)):
        errors["name"] = "taken"
    _raise(errors)
    before, after = audit.changes(street, ("name",), {"name": name})
    row_locks.flush_or(PlacesInvalid({"name": "taken"}))
    if after:
        audit.record(actor, "street.rename", street, before, after, now)


def _community_taken(street_id, name, exclude=None) -> bool:
    q = db.select(Community.id).where(Community.street_id == street_id, Community.name == name)
    if exclude is not None:
        q = q.where(Community.id != exclude)
    return db.session.scalar(q) is not None


def create_community(actor, street, name, now) -> Community:
    errors: dict[str, str] = {}
    name = _name(name, errors)
    if "name" not in errors and _community_taken(street.id, name):
        errors["name"] = "taken"
    _raise(errors)
    community = Community(name=name, street=street)
    db.session.add(community)
    row_locks.flush_or(PlacesInvalid({"name": "taken"}))
    audit.record(actor, "community.create", community, None,
                 {"name": name, "street": street.name}, now)
    return community


def rename_community(actor, community, name, now) -> None:
    errors: dict[str, str] = {}
    name = _name(name, errors)
    if "name" not in errors and _community_taken(community.street_id, name, community.id):
        errors["name"] = "taken"
    _raise(errors)
    before, after = audit.changes(community, ("name",), {"name": name})
    row_locks.flush_or(PlacesInvalid({"name": "taken"}))
    if after:
        audit.record(actor, "community.rename", community, before, after, now)


# --- compounds and buildings -------------------------------------------------------------

COMPOUND_FIELDS = ("name", "address", "lat", "lon", "radius_m", "company_id")


def _compound_values(community_id, form, companies, errors, exclude=None) -> dict:
    values = {"name": _name(form.get("name"), errors),
              "address": _text(form.get("address")) or None,
              "lat": _number(form.get("lat"), errors, "lat", -90, 90),
              "lon": _number(form.get("lon"), errors, "lon", -180, 180),
              "radius_m": _number(form.get("radius_m"), errors, "radius_m", 10, 5000,
                                  integer=True)}
    if values["address"] and len(values["address"]) > 200:
        errors["address"] = "address"
    if (values["lat"] is None) != (values["lon"] is None) and not ({"lat", "lon"} & set(errors)):
        errors["lat"] = "both"
    company_id = _text(form.get("company_id"))
    if company_id:
        company = next((c for c in companies if str(c.id) == company_id), None)
        if company is None:
            errors["company_id"] = "choice"
        values["company_id"] = company.id if company else None
    else:
        values["company_id"] = None
    if "name" not in errors:
        q = db.select(Compound.id).where(Compound.community_id == community_id,
                                         Compound.name == values["name"])
        if exclude is not None:
            q = q.where(Compound.id != exclude)
        if db.session.scalar(q):
            errors["name"] = "taken"
    return values


def create_compound(actor, community, form, companies, now) -> Compound:
    """`form`: name, address, lat, lon, radius_m, company_id (one of `companies`)."""
    errors: dict[str, str] = {}
    values = _compound_values(community.id, form, companies, errors)
    _raise(errors)
    compound = Compound(community=community, **values)
    db.session.add(compound)
    row_locks.flush_or(PlacesInvalid({"name": "taken"}))
    audit.record(actor, "compound.create", compound, None, values, now)
    return compound


def update_compound(actor, compound, form, companies, now) -> bool:
    """Name, address, position and radius. A change of company is a handover
    (物业更换): a company can be set here only while the compound has none."""
    errors: dict[str, str] = {}
    values = _compound_values(compound.community_id, form, companies, errors, compound.id)
    if compound.company_id is not None:
        values.pop("company_id")
    _raise(errors)
    before, after = audit.changes(compound, COMPOUND_FIELDS, values)
    row_locks.flush_or(PlacesInvalid({"name": "taken"}))
    if after:
        audit.record(actor, "compound.update", compound, before, after, now)
    return bool(after)


def archive_compound(actor, compound, now) -> None:
    """Gone from lists and QR scans; its items and history stay."""
    if compound.archived_at is None:
        compound.archived_at = now
        audit.record(actor, "compound.archive", compound, {"archived_at": None},
                     {"archived_at": now}, now)


def restore_compound(actor, compound, now) -> None:
    if compound.archived_at is not None:
        before = {"archived_at": compound.archived_at}
        compound.archived_at = None
        audit.record(actor, "compound.restore", compound, before, {"archived_at": None}, now)


_RANGE = re.compile(r"^(\d{1,4})\s*[-－~～—至到]\s*(\d{1,4})(\D*)$")
_SPLIT = re.compile(r"[,，、;；\s]+")


def parse_buildings(text: str) -> list[str]:
    """"1-12栋, 15栋, 商铺" → 1栋 … 12栋, 15栋, 商铺 (a range without a word gets 栋).
    Raises PlacesInvalid({"buildings": code}) on a reversed or too long range."""
    names: list[str] = []
    for token in _SPLIT.split(_text(text)):
        if not token:
            continue
        m = _RANGE.match(token)
        if m:
            first, last, suffix = int(m.group(1)), int(m.group(2)), m.group(3) or "栋"
            if first > last or last - first + 1 > MAX_BUILDINGS:
                raise PlacesInvalid({"buildings": "range"})
            names += [f"{n}{suffix}" for n in range(first, last + 1)]
        else:
            if len(token) > 50:
                raise PlacesInvalid({"buildings": "long"})
            names.append(token)
    if not names:
        raise PlacesInvalid({"buildings": "empty"})
    if len(names) > MAX_BUILDINGS:
        raise PlacesInvalid({"buildings": "range"})
    return list(dict.fromkeys(names))


SORT_KEY_MAX = 2**31 - 1   # the column is a 32-bit integer on PostgreSQL


def _sort_key(name: str, fallback: int) -> int:
    """A building's place in lists: its leading number (3栋 → 3), else its order of entry;
    a number too large for the column sorts last."""
    m = re.match(r"\d+", name)
    return min(int(m.group()), SORT_KEY_MAX) if m else fallback


def add_buildings(actor, compound, text, now) -> list[Building]:
    """Adds the buildings `text` names (parse_buildings) that the compound lacks."""
    names = parse_buildings(text)
    # Held and read again: the same list sent twice at once adds its buildings once.
    row_locks.hold(Compound.id, compound.id)
    db.session.refresh(compound, ["buildings"])
    have = {normalise.building_key(b.name) for b in compound.buildings}
    top = max((b.sort_key for b in compound.buildings), default=0)
    new = []
    for i, name in enumerate(n for n in names if normalise.building_key(n) not in have):
        new.append(Building(compound=compound, name=name, sort_key=_sort_key(name, top + 1000 + i)))
    if new:
        db.session.add_all(new)
        audit.record(actor, "building.add", compound, None,
                     {"buildings": [b.name for b in new]}, now)
    return new


# --- property companies -----------------------------------------------------------------

COMPANY_FIELDS = ("name", "phone", "contact", "credit_code")


def _company_values(form, errors, exclude=None) -> dict:
    values = {"name": _name(form.get("name"), errors),
              "phone": _text(form.get("phone")) or None,
              "contact": _text(form.get("contact")) or None,
              "credit_code": _text(form.get("credit_code")).upper().replace(" ", "") or None}
    if values["phone"]:
        values["phone"] = normalise.phone(values["phone"])
        if values["phone"] is None:
            errors["phone"] = "phone"
    if values["contact"] and len(values["contact"]) > 60:
        errors["contact"] = "name"
    if values["credit_code"] and not credit_code_valid(values["credit_code"]):
        errors["credit_code"] = "credit_code"
    if "name" not in errors:
        q = db.select(Company.id).where(Company.name == values["name"])
        if exclude is not None:
            q = q.where(Company.id != exclude)
        if db.session.scalar(q):
            errors["name"] = "taken"
    return values


def create_company(actor, form, now) -> Company:
    errors: dict[str, str] = {}
    values = _company_values(form, errors)
    _raise(errors)
    company = Company(**values)
    db.session.add(company)
    row_locks.flush_or(PlacesInvalid({"name": "taken"}))
    audit.record(actor, "company.create", company, None, values, now,
                 community_id=getattr(actor, "community_id", None),
                 street_id=getattr(actor, "street_id", None))
    return company


def update_company(actor, company, form, now) -> bool:
    errors: dict[str, str] = {}
    values = _company_values(form, errors, company.id)
    _raise(errors)
    before, after = audit.changes(company, COMPANY_FIELDS, values)
    row_locks.flush_or(PlacesInvalid({"name": "taken"}))
    if after:
        audit.record(actor, "company.update", company, before, after, now,
                     community_id=getattr(actor, "community_id", None),
                     street_id=getattr(actor, "street_id", None))
    return bool(after)
