"""Import a district from the template workbook: check everything, then write everything.

`plan()` reads the tables (importer.read), cleans every cell (importer.normalise) and
compares each row with what is already in the database. It returns every error at once
(sheet, row, column, message in Chinese) and the changes it would make; it writes
nothing. `apply()` carries out a plan without errors in the caller's transaction.
Re-importing the same file changes nothing; rows missing from a file are never deleted.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..extensions import db
from ..importer import normalise
from ..importer.read import Table
from ..importer.sheets import BY_NAME, EXAMPLE
from ..lifecycle import Role
from ..models import Building, Community, Company, Compound, Street, Team, User

_EXAMPLE = normalise.text(EXAMPLE)   # as cells are compared: NFKC makes "：" a ":"
ROLE_NAMES = {"社区": Role.STAFF, "社区工作人员": Role.STAFF, "物业": Role.MANAGER,
              "物业经理": Role.MANAGER, "业委会": Role.COMMITTEE}


@dataclass(frozen=True)
class Problem:
    sheet: str
    row: int
    column: str
    message: str

    def __str__(self):
        return f"「{self.sheet}」第 {self.row} 行「{self.column}」：{self.message}"


@dataclass
class Plan:
    problems: list[Problem] = field(default_factory=list)
    new: dict[str, int] = field(default_factory=dict)       # sheet → rows that add something
    changed: dict[str, int] = field(default_factory=dict)   # sheet → rows that change something
    ops: list = field(default_factory=list)                 # callables, in order
    buildings: list = field(default_factory=list)           # (compound, name, sort key): bulk
    changes: list[str] = field(default_factory=list)        # what changes, in words

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        new, changed = sum(self.new.values()), sum(self.changed.values())
        return f"新增 {new} 条，修改 {changed} 条"


class _Directory:
    """What the database holds, by the keys the sheets use; updated as rows are planned,
    so later sheets can refer to what earlier sheets add."""

    def __init__(self):
        q = db.session.execute
        self.streets = {s.name: s for s in q(db.select(Street)).scalars()}
        self.communities = {(c.street.name if c.street else "", c.name): c
                            for c in q(db.select(Community)).scalars()}
        self.companies = {c.name: c for c in q(db.select(Company)).scalars()}
        self.compounds = {(c.community_id, c.name): c for c in q(db.select(Compound)).scalars()}
        # Only the keys: a city has 100,000 buildings, and they are never updated here.
        self.buildings = {(compound_id, normalise.building_key(name))
                          for compound_id, name in q(db.select(Building.compound_id,
                                                               Building.name))}
        self.teams = {(t.community_id, t.name): t for t in q(db.select(Team)).scalars()}
        self.users = {u.username: u for u in q(db.select(User)).scalars()}
        self.volunteers = {u.phone: u for u in self.users.values()
                           if u.role == Role.VOLUNTEER.value and u.phone}

    def community_by_name(self, name):
        found = [c for (street, n), c in self.communities.items() if n == name]
        return found


def plan(tables: dict[str, Table]) -> Plan:
    out = Plan()
    d = _Directory()
    for name, step in (("街道社区", _communities), ("物业公司", _companies), ("小区", _compounds),
                       ("楼栋", _buildings), ("志愿者", _volunteers), ("账号", _accounts)):
        if name in tables:
            step(tables[name], d, out)
    return out


def apply(result: Plan, progress: Callable[[int, int], None] | None = None) -> None:
    """Write the plan (flushes; the caller commits). `progress(done, total)` is told as
    its steps go: one a row, one a building (the CLI's progress bar)."""
    if not result.ok:
        raise ValueError("a plan with problems cannot be applied")
    total = len(result.ops) + len(result.buildings)
    done = 0
    for op in result.ops:
        op()
        done += 1
        if progress is not None and done % 100 == 0:
            progress(done, total)
    db.session.flush()
    if progress is not None:
        progress(done, total)
    # Buildings come by the thousand: inserted in bulk, not as one object each.
    rows = [{"compound_id": compound.id, "name": name, "sort_key": key}
            for compound, name, key in result.buildings]
    for start in range(0, len(rows), 5000):
        db.session.execute(db.insert(Building), rows[start:start + 5000])
        if progress is not None:
            progress(done + min(start + 5000, len(rows)), total)


# --- sheets ------------------------------------------------------------------------

def _rows(table: Table, out: Plan):
    """Cleaned rows, without the template's example row and without duplicates."""
    sheet = table.sheet
    seen: dict[tuple[str, ...], int] = {}     # a row's values → its row number
    for number, cells in table.cells():
        row = {k: normalise.text(v) for k, v in cells.items()}
        row["_raw"] = cells
        if row.get(sheet.required[0], "").startswith(_EXAMPLE):   # the template's example
            continue
        values = tuple(row.get(c, "") for c in sheet.columns)
        if values in seen:
            out.problems.append(Problem(sheet.name, number, sheet.required[0],
                                        f"与第 {seen[values]} 行重复"))
            continue
        seen[values] = number
        missing = [c for c in sheet.required if not row.get(c) and c not in _MAY_BE_EMPTY]
        if missing:
            for column in missing:
                out.problems.append(Problem(sheet.name, number, column, "不能为空"))
            continue
        yield number, row


_MAY_BE_EMPTY = {"纬度", "经度", "范围(米)", "地址", "联系电话", "职务", "队伍"}


def _count(out: Plan, sheet: str, kind: str):
    target = out.new if kind == "new" else out.changed
    target[sheet] = target.get(sheet, 0) + 1


def _update(obj, values: dict, out: Plan, sheet: str, label: str):
    """Set the attributes that differ; count the row as changed if any did."""
    diff = {k: v for k, v in values.items() if getattr(obj, k) != v}
    if diff:
        out.changes.append(f"{sheet}：{label} " + "，".join(
            f"{k}: {getattr(obj, k)!r} → {v!r}" for k, v in diff.items()))

        def op(obj=obj, diff=diff):
            for k, v in diff.items():
                setattr(obj, k, v)
        out.ops.append(op)
        _count(out, sheet, "changed")


def _street(d: _Directory, out: Plan, name: str) -> Street:
    street = d.streets.get(name)
    if street is None:
        street = d.streets[name] = Street(name=name)
        out.ops.append(lambda s=street: db.session.add(s))
    return street


def _communities(table, d, out):
    for _number, row in _rows(table, out):
        key = (row["街道"], row["社区"])
        if key in d.communities:
            continue
        street = _street(d, out, row["街道"])
        community = Community(name=row["社区"], street=street)
        d.communities[key] = community
        out.ops.append(lambda c=community: db.session.add(c))
        _count(out, table.sheet.name, "new")


def _companies(table, d, out):
    sheet = table.sheet.name
    for number, row in _rows(table, out):
        phone = None
        if row.get("联系电话"):
            phone = normalise.phone(row["_raw"].get("联系电话"))
            if phone is None:
                out.problems.append(Problem(sheet, number, "联系电话", "不是有效的电话号码"))
                continue
        values = {"phone": phone, "contact": row.get("联系人") or None,
                  "credit_code": row.get("统一社会信用代码") or None}
        code = values["credit_code"]
        if code and (len(code) != 18 or not code.isalnum()):
            out.problems.append(Problem(sheet, number, "统一社会信用代码", "应为 18 位字母或数字"))
            continue
        company = d.companies.get(row["名称"])
        if company is None:
            company = d.companies[row["名称"]] = Company(name=row["名称"], **values)
            out.ops.append(lambda c=company: db.session.add(c))
            _count(out, sheet, "new")
        else:
            _update(company, values, out, sheet, row["名称"])


def _coordinate(row, column, low, high, out, sheet, number):
    try:
        value = normalise.number(row["_raw"].get(column))
    except ValueError:
        out.problems.append(Problem(sheet, number, column, "不是数字"))
        return False, None
    if value is not None and not low <= value <= high:
        out.problems.append(Problem(sheet, number, column, f"应在 {low} 到 {high} 之间"))
        return False, None
    return True, value


def _compounds(table, d, out):
    sheet = table.sheet.name
    for number, row in _rows(table, out):
        community = d.communities.get((row["街道"], row["社区"]))
        if community is None:
            out.problems.append(Problem(sheet, number, "社区",
                                        f"社区「{row['社区']}」不在「{row['街道']}」中"
                                        "（请先在「街道社区」表中列出）"))
            continue
        company = d.companies.get(row["物业公司"])
        if company is None:
            out.problems.append(Problem(sheet, number, "物业公司",
                                        f"物业公司「{row['物业公司']}」不存在"))
            continue
        ok_lat, lat = _coordinate(row, "纬度", 3.0, 54.0, out, sheet, number)
        ok_lon, lon = _coordinate(row, "经度", 73.0, 136.0, out, sheet, number)
        ok_r, radius = _coordinate(row, "范围(米)", 10, 5000, out, sheet, number)
        if not (ok_lat and ok_lon and ok_r):
            continue
        if (lat is None) != (lon is None):
            out.problems.append(Problem(sheet, number, "经度" if lon is None else "纬度",
                                        "纬度和经度须同时填写或同时留空"))
            continue
        values = {"address": row.get("地址") or None, "lat": lat, "lon": lon,
                  "radius_m": int(radius) if radius is not None else None}
        key = (id(community) if community.id is None else community.id, row["小区名称"])
        compound = d.compounds.get(key)
        if compound is None:
            compound = Compound(name=row["小区名称"], community=community, company=company,
                                **values)
            d.compounds[key] = compound
            out.ops.append(lambda c=compound: db.session.add(c))
            _count(out, sheet, "new")
        else:
            if compound.company_id != company.id:
                out.problems.append(Problem(
                    sheet, number, "物业公司", "更换物业请在「小区」页面办理物业更换，"
                    "以便保留原物业的历史和考核"))
                continue
            _update(compound, values, out, sheet, row["小区名称"])


def _one_community(d, name, out, sheet, number, street=""):
    found = d.community_by_name(name)
    if street:
        found = [c for c in found if c.street is not None and c.street.name == street]
    if not found:
        out.problems.append(Problem(sheet, number, "社区", f"社区「{name}」不存在"))
        return None
    if len(found) > 1:
        out.problems.append(Problem(sheet, number, "社区",
                                    f"有多个街道都有「{name}」，无法确定是哪一个"))
        return None
    return found[0]


def _key(obj):
    return id(obj) if obj.id is None else obj.id


def _buildings(table, d, out):
    sheet = table.sheet.name
    for number, row in _rows(table, out):
        community = _one_community(d, row["社区"], out, sheet, number, row.get("街道", ""))
        if community is None:
            continue
        compound = d.compounds.get((_key(community), row["小区名称"]))
        if compound is None:
            out.problems.append(Problem(sheet, number, "小区名称",
                                        f"小区「{row['小区名称']}」不在「{row['社区']}」中"))
            continue
        names = normalise.building_range(row["楼栋"]) or [row["楼栋"]]
        for name in names:
            key = (_key(compound), normalise.building_key(name))
            if key in d.buildings:
                continue
            digits = "".join(ch for ch in normalise.building_key(name) if ch.isdigit())
            d.buildings.add(key)
            out.buildings.append((compound, name[:50], int(digits[:9]) if digits else 0))
            _count(out, sheet, "new")


def _team(d, community, name, out):
    key = (_key(community), name)
    team = d.teams.get(key)
    if team is None:
        team = d.teams[key] = Team(name=name, community=community)
        out.ops.append(lambda t=team: db.session.add(t))
    return team


def _volunteers(table, d, out):
    sheet = table.sheet.name
    for number, row in _rows(table, out):
        phone = normalise.phone(row["_raw"].get("手机号"))
        if phone is None or len(phone) != 11:
            out.problems.append(Problem(sheet, number, "手机号", "不是有效的手机号"))
            continue
        community = _one_community(d, row["社区"], out, sheet, number, row.get("街道", ""))
        if community is None:
            continue
        team = _team(d, community, row["队伍"], out) if row.get("队伍") else None
        values = {"display_name": row["姓名"][:60], "title": (row.get("职务") or "志愿者")[:20],
                  "community": community, "team": team}
        user = d.volunteers.get(phone)
        if user is None:
            user = User(username=f"v{phone}", phone=phone, role=Role.VOLUNTEER.value, **values)
            d.volunteers[phone] = d.users[user.username] = user
            out.ops.append(lambda u=user: db.session.add(u))
            _count(out, sheet, "new")
        else:
            _update(user, values, out, sheet, row["姓名"])


def _accounts(table, d, out):
    sheet = table.sheet.name
    for number, row in _rows(table, out):
        role = ROLE_NAMES.get(row["角色"])
        if role is None:
            out.problems.append(Problem(sheet, number, "角色",
                                        "应为：" + "、".join(sorted(set(ROLE_NAMES)))))
            continue
        username = row["用户名"]
        if not username.isascii() or not username.replace("_", "").replace(".", "").isalnum():
            out.problems.append(Problem(sheet, number, "用户名", "只能用英文字母、数字、点和下划线"))
            continue
        binding = {"community": None, "company": None, "compound": None}
        if role == Role.STAFF:
            binding["community"] = _one_community(d, row["所属"], out, sheet, number)
        elif role == Role.MANAGER:
            binding["company"] = d.companies.get(row["所属"])
            if binding["company"] is None:
                out.problems.append(Problem(sheet, number, "所属", f"物业公司「{row['所属']}」不存在"))
        else:
            found = [c for (_, name), c in d.compounds.items() if name == row["所属"]]
            if len(found) == 1:
                binding["compound"] = found[0]
            else:
                out.problems.append(Problem(sheet, number, "所属", f"小区「{row['所属']}」"
                                            + ("不存在" if not found else "有重名，无法确定")))
        if not any(binding.values()):
            continue
        user = d.users.get(username)
        values = {"display_name": row["姓名"][:60], **binding}
        if user is None:
            user = d.users[username] = User(username=username, role=role.value, **values)
            out.ops.append(lambda u=user: db.session.add(u))
            _count(out, sheet, "new")
        elif user.role != role.value:
            out.problems.append(Problem(sheet, number, "用户名", "该用户名已被其他角色使用"))
        else:
            _update(user, values, out, sheet, username)


SHEET_ORDER = tuple(BY_NAME)
