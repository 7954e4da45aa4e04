"""What real sheets carry, made comparable: full-width characters and spaces, phone
numbers written five ways, numbers stored as text and text stored as numbers."""
from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"\s+")


def text(value: object) -> str:
    """A cell as clean text: NFKC (full-width letters, digits and spaces become plain),
    inner runs of spaces collapsed, ends trimmed; numbers written without a stray '.0'."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    out = unicodedata.normalize("NFKC", str(value))
    return _SPACES.sub(" ", out).strip()


def phone(value: object) -> str | None:
    """Digits of a Chinese phone number, or None when it is not one.

    '+86 138-0013-8000', '8613800138000', '１３８００１３８０００' and 13800138000.0 all
    give '13800138000'; a landline keeps its area code: '0731-55551001' → '073155551001'."""
    raw = text(value)
    if not raw:
        return None
    digits = re.sub(r"[\s\-()（）]", "", raw)
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if not digits.isdigit():
        return None
    if len(digits) == 11 and digits.startswith("1"):
        return digits
    if digits.startswith("0") and 10 <= len(digits) <= 12:
        return digits
    return None


def number(value: object) -> float | None:
    """A number from a cell that may hold text ('27.857', '２７.８５７'); None if blank.
    Raises ValueError for anything else."""
    raw = text(value)
    if raw == "":
        return None
    return float(raw)


_BUILDING = re.compile(r"^(?:第)?([0-9A-Za-z]+)\s*(?:号楼|号|栋|幢|座|楼)?$")


def building_key(value: object) -> str:
    """'3号楼', '3栋', '3幢', '第3栋' and '3' are one building when matching a re-import;
    the name is stored as the sheet gives it."""
    raw = text(value)
    match = _BUILDING.match(raw)
    return match.group(1).upper() if match else raw


def building_range(value: object) -> list[str] | None:
    """'1-12栋' / '1–12栋' / '1至12号楼' → ['1栋', …, '12栋'] (with the sheet's suffix);
    None when the cell is not a range."""
    raw = text(value)
    match = re.match(r"^(\d+)\s*(?:-|–|—|~|～|至|到)\s*(\d+)\s*(号楼|栋|幢|座|号)?$", raw)
    if not match:
        return None
    first, last, suffix = int(match.group(1)), int(match.group(2)), match.group(3) or "栋"
    if first > last or last - first > 500:
        return None
    return [f"{n}{suffix}" for n in range(first, last + 1)]
