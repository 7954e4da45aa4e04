"""The demo district: one community, three compounds, two property companies, a team,
one user of each role and items in every state, made through the real services.

Six months of history come first (_demo_history), so the ratings pages have something
to show: 宏远物业 answers quickly and well (red list), 安居物业 is slow, often late and
poorly rated (black list)."""
from __future__ import annotations

import io
import random
from datetime import datetime, time as clock_time, timedelta

from flask import current_app
from PIL import Image, ImageDraw

from .clock import local_date, utc_at
from .extensions import db
from .lifecycle import Action, Role
from .models import (Building, Checkpoint, CommitteeRating, Community, Company, Compound,
                     Department, PatrolSchedule, Photo, ResidentReport, Street, Team, User,
                     utcnow)
from .models.base import new_token
from .models.people import hash_secret
from .services import items as svc
from .services import patrols as patrol_service
from .services.photo_store import save_upload
from .display import hazard_form

DEMO_PASSWORD = "patrol-demo"
HISTORY_MONTHS = 8
DEMO_USERS = [
    # username (the sign-in README lists), display name, role, title, binding
    ("admin", "系统管理员", Role.ADMIN.value, None, None),
    ("staff", "王主任（社区）", Role.STAFF.value, None, "community"),
    ("street", "周科长（和平街道）", Role.STREET_STAFF.value, None, "street"),
    ("manager1", "李经理（宏远物业）", Role.MANAGER.value, None, "company:0"),
    ("manager2", "张经理（安居物业）", Role.MANAGER.value, None, "company:1"),
    ("committee", "陈主任（金桂园业委会）", Role.COMMITTEE.value, None, "compound:0"),
    ("volunteer", "刘阿姨", Role.VOLUNTEER.value, "片长", "community"),
    ("volunteer2", "赵师傅", Role.VOLUNTEER.value, "红色管家", "community"),
    ("water", "孙站长（和平供水所）", Role.DEPARTMENT.value, None, "dept:0"),
]


def is_seeded() -> bool:
    return db.session.scalar(db.select(db.func.count()).select_from(Community)) > 0


def demo_photo(seed: int, size=(800, 600)) -> bytes:
    """A recognisable but synthetic picture, so the demo needs no image files."""
    rnd = random.Random(seed)
    im = Image.new("RGB", size, tuple(rnd.randrange(120, 220) for _ in range(3)))
    draw = ImageDraw.Draw(im)
    for _ in range(12):
        x, y = rnd.randrange(size[0]), rnd.randrange(size[1])
        r = rnd.randrange(20, 120)
        draw.rectangle([x, y, x + r, y + r // 2], fill=tuple(rnd.randrange(256) for _ in range(3)))
    draw.line([(0, size[1] // 3), (size[0], size[1] // 4)], fill=(20, 20, 20), width=6)
    out = io.BytesIO()
    im.save(out, "JPEG", quality=80)
    return out.getvalue()


def seed_demo(now=None):
    now = now or utcnow()
    community = Community(name="和平社区", street=Street(name="和平街道"))
    companies = [Company(name="宏远物业服务有限公司", phone="0731-5555-1001"),
                 Company(name="安居物业管理有限公司", phone="0731-5555-2002")]
    compounds = [
        Compound(name="金桂园", address="岳塘区建设路12号", lat=27.857, lon=112.951,
                 radius_m=250, community=community, company=companies[0]),
        Compound(name="银杏苑", address="岳塘区建设路48号", lat=27.859, lon=112.957,
                 radius_m=200, community=community, company=companies[0]),
        Compound(name="翠竹小区", address="岳塘区和平路7号", lat=27.862, lon=112.944,
                 radius_m=300, community=community, company=companies[1]),
    ]
    for compound, count in zip(compounds, (6, 4, 8), strict=True):
        compound.buildings = [Building(name=f"{n}栋", sort_key=n) for n in range(1, count + 1)]
    db.session.add_all([community, *companies, *compounds])
    db.session.flush()
    team = Team(name="和平社区第一巡查队", community_id=community.id, compounds=compounds)
    db.session.add(team)
    # Departments (部门) staff can route items to: the street's water works, the community.
    departments = [
        Department(name="和平供水所", kind="water", phone="0731-5555-3003",
                   street_id=community.street_id),
        Department(name="和平社区居委会", kind="community", phone="0731-5555-4004",
                   community_id=community.id),
    ]
    db.session.add_all(departments)
    db.session.flush()
    users = {}
    for username, name, role, title, binding in DEMO_USERS:
        user = User(username=username, display_name=name, role=role, title=title)
        if role != Role.VOLUNTEER:
            user.set_password(DEMO_PASSWORD)
        kind, _, index = (binding or "").partition(":")
        if kind == "community":
            user.community_id = community.id
        elif kind == "street":   # street staff (街道工作人员) of the community's street
            user.street_id = community.street_id
        elif kind == "company":
            user.company = companies[int(index)]
        elif kind == "compound":
            user.compound = compounds[int(index)]
        elif kind == "dept":
            user.department = departments[int(index)]
        if role == Role.VOLUNTEER:
            user.team = team
        db.session.add(user)
        users[username] = user
    db.session.flush()
    _demo_history(compounds, users, now)
    walk = _demo_patrols(compounds, team, users, now)
    _demo_items(compounds, users, now)
    _end_demo_walk(walk, users, now)
    _demo_workflow(compounds, departments, users, now)
    db.session.commit()
    return users


def _demo_items(compounds, users, now):
    form = hazard_form()
    window = current_app.config["VERIFY_WINDOW"]
    vol, vol2 = users["volunteer"], users["volunteer2"]
    managers = {compounds[0].company_id: users["manager1"], compounds[2].company_id: users["manager2"]}
    seq = iter(range(1000))

    def photos(n=1, kind="before", who=vol):
        return [save_upload(demo_photo(next(seq)), uploader=who, kind=kind) for _ in range(n)]

    def new(compound, category, hours_ago, note, building=0, who=vol, floor=None):
        at = now - timedelta(hours=hours_ago)
        clean = {"category": category, "building": compound.buildings[building].id,
                 "floor": floor, "note": note, "extra": {}}
        return svc.report(form=form, compound=compound, reporter=who, clean=clean,
                          photos=photos(who=who), now=at), at

    def step(item, action, who, at, **given):
        if action in (Action.VERIFY, Action.REOPEN, Action.FIX_ON_SPOT):
            svc.record_presence(who, item.compound, at - timedelta(minutes=5))
        svc.act(item, action, who, at, svc.ActionInput(**given), form=form, window=window)

    a, b, c = compounds
    # Reported, waiting for the company.
    new(a, "flying_wire", 3, "3栋2单元5楼窗口有电线垂下给电动车充电", building=2, floor="5")
    new(c, "fire_exit", 30, "楼道堆放纸箱和旧家具，堵住安全出口", building=1)  # overdue
    # Acknowledged, with a deadline.
    item, at = new(a, "flyers", 20, "单元门口贴满小广告", building=0)
    step(item, Action.ACKNOWLEDGE, managers[a.company_id], at + timedelta(hours=2))
    item, at = new(b, "lighting", 60, "地下车库入口的灯坏了", building=1, who=vol2)
    step(item, Action.ACKNOWLEDGE, managers[b.company_id], at + timedelta(hours=5))
    # Fixed, waiting for the on-the-spot check (回头看).
    item, at = new(a, "water_tank", 50, "二次供水水箱有异味", building=3)
    mgr = managers[a.company_id]
    step(item, Action.ACKNOWLEDGE, mgr, at + timedelta(hours=1))
    step(item, Action.FIX, mgr, at + timedelta(hours=20), note="已清洗水箱并消毒",
         photos=photos(kind="after", who=mgr))
    # Verified and closed.
    item, at = new(c, "sanitation", 120, "垃圾桶周边脏乱", building=4)
    mgr = managers[c.company_id]
    step(item, Action.ACKNOWLEDGE, mgr, at + timedelta(hours=3))
    step(item, Action.FIX, mgr, at + timedelta(hours=24), note="已清理并增加清运次数",
         photos=photos(kind="after", who=mgr))
    step(item, Action.VERIFY, vol, at + timedelta(hours=30), photos=photos(kind="after"),
         rating=4)
    # Reopened after a failed check.
    item, at = new(b, "greenery", 200, "枯树有倒伏危险", building=0, who=vol2)
    mgr = managers[b.company_id]
    step(item, Action.ACKNOWLEDGE, mgr, at + timedelta(hours=6))
    step(item, Action.FIX, mgr, at + timedelta(hours=48), note="已修剪", photos=photos(kind="after", who=mgr))
    step(item, Action.REOPEN, vol2, at + timedelta(hours=60), reason="badly_fixed",
         note="只剪了一半，仍有倒伏危险", photos=photos(kind="check", who=vol2))
    # Fixed on the spot during the patrol (立行立改).
    item, at = new(c, "flyers", 8, "电梯间小广告，已当场清除", building=2)
    step(item, Action.FIX_ON_SPOT, vol, at + timedelta(minutes=10), photos=photos(kind="after"))


def _demo_patrols(compounds, team, users, now):
    """Checkpoints, schedules and five weeks of patrols; returns the walk under way in 金桂园
    (started before the demo's newest report there, so that report is linked to it).

    The team is due twice a week in each compound and once a month at 金桂园's fire exit.
    翠竹小区 was walked only once in some weeks, so the coverage board shows 漏巡."""
    vol, vol2 = users["volunteer"], users["volunteer2"]
    a = compounds[0]
    checkpoints = [Checkpoint(compound=a, name="1栋", kind="building", building=a.buildings[0]),
                   Checkpoint(compound=a, name="3栋", kind="building", building=a.buildings[2]),
                   Checkpoint(compound=a, name="北侧消防通道", kind="fire_exit")]
    db.session.add_all(checkpoints)
    # Set six weeks ago: a schedule counts from the period it was set in.
    since = now - timedelta(weeks=6)
    db.session.add_all([PatrolSchedule(team=team, compound=c, period="week", times=2,
                                       created_at=since) for c in compounds])
    db.session.add(PatrolSchedule(team=team, compound=a, checkpoint=checkpoints[2],
                                  period="month", times=1, created_at=since))
    db.session.flush()
    tz = current_app.config["TIMEZONE"]
    this_monday = local_date(now, tz) - timedelta(days=local_date(now, tz).weekday())
    for weeks_ago in range(1, 6):
        monday = this_monday - timedelta(weeks=weeks_ago)
        # Tuesday and Friday mornings; 翠竹小区 on Thursday and Saturday.
        for day, compound in ((1, compounds[0]), (1, compounds[1]), (3, compounds[2]),
                              (4, compounds[0]), (4, compounds[1]), (5, compounds[2])):
            if compound is compounds[2] and day == 5 and weeks_ago % 2:
                continue   # 翠竹小区: only once in those weeks (漏巡)
            start = utc_at(monday + timedelta(days=day), clock_time(9, 0), tz)
            patrol, _ = patrol_service.start(vol, compound, start)
            patrol_service.start(vol2, compound, start + timedelta(minutes=5))
            if compound is a:
                for n, cp in enumerate(checkpoints[: 3 if day == 1 else 2]):
                    patrol_service.scan_checkpoint(vol, cp, start + timedelta(minutes=10 + 8 * n))
            patrol_service.end(patrol, vol, start + timedelta(minutes=55 + 5 * day),
                               summary="none")
    walk, _ = patrol_service.start(vol, a, now - timedelta(hours=3, minutes=15))
    patrol_service.start(vol2, a, now - timedelta(hours=3, minutes=10))
    patrol_service.scan_checkpoint(vol, checkpoints[0], now - timedelta(hours=3, minutes=5))
    patrol_service.scan_checkpoint(vol, checkpoints[1], now - timedelta(hours=2, minutes=55))
    return walk


def _end_demo_walk(walk, users, now):
    patrol_service.end(walk, users["volunteer"], now - timedelta(hours=2, minutes=40),
                       summary="found")


# Per month and company: (scenario, hours to acknowledge, rating at the check).
# good: fixed in half the time; late: fixed at 1.3× the deadline; reopen: the first
# check fails, fixed again; extend: staff extend the deadline in time; open: acknowledged,
# never fixed (still overdue); reject: not the company's work (not counted).
_PROFILES = {
    0: [("good", 1, 5), ("good", 2, 5), ("reopen", 3, 4), ("good", 1.5, 4), ("extend", 4, 5),
        ("good", 2.5, 5), ("good", 1, 4)],
    1: [("late", 9, 2), ("good", 20, 4), ("reopen", 14, 2), ("late", 30, 3), ("good", 6, 3),
        ("late", 16, 2), ("reject", 0, None)],
}
_HISTORY_CATEGORIES = ("flyers", "sanitation", "fire_exit", "lighting", "flying_wire",
                       "water_tank", "greenery", "other")
_HISTORY_NOTES = {
    "flyers": "楼道墙面小广告", "sanitation": "垃圾桶满溢未清运", "fire_exit": "消防通道停放电动车",
    "lighting": "楼道声控灯不亮", "flying_wire": "楼上拉线给电动车充电", "water_tank": "水箱盖未锁",
    "greenery": "绿化带杂草丛生", "other": "单元门门禁损坏",
}


def _demo_history(compounds, users, now, months=HISTORY_MONTHS):
    """Items of the last `months` full months for both companies, through the services.

    Eight months, so the last complete quarter (the ratings pages' default) always has
    at least six months of history in its 12-month chart, whatever the day.

    Photos: a handful of real uploads; later events reuse their stored files (new rows,
    same content-addressed keys), so seeding stays fast."""
    from .scoring import Period
    from .services.ratings import default_period
    form = hazard_form()
    window = current_app.config["VERIFY_WINDOW"]
    tz = current_app.config["TIMEZONE"]
    rnd = random.Random(20261127)
    vols = [users["volunteer"], users["volunteer2"]]
    staff = users["staff"]
    managers = {compounds[0].company_id: users["manager1"], compounds[2].company_id: users["manager2"]}
    by_company = {0: compounds[:2], 1: compounds[2:]}
    pool: list[Photo] = []

    def photo(who, kind):
        if len(pool) < 4:
            pool.append(save_upload(demo_photo(500 + len(pool)), uploader=who, kind=kind))
            return [pool[-1]]
        base = rnd.choice(pool)
        clone = Photo(uploader_id=who.id, kind=kind, key=base.key, thumb_key=base.thumb_key,
                      width=base.width, height=base.height, size=base.size)
        db.session.add(clone)
        return [clone]

    def step(item, action, who, at, **given):
        if at > now:
            return False
        if action in (Action.VERIFY, Action.REOPEN):
            svc.record_presence(who, item.compound, at - timedelta(minutes=5))
        svc.act(item, action, who, at, svc.ActionInput(**given), form=form, window=window)
        return True

    current_month = Period.containing(default_period(now, "month").shift(1).start_date, "month")
    for back in range(months, 0, -1):
        start, _end = current_month.shift(-back).bounds_utc(tz)
        for company, profile in _PROFILES.items():
            for i, (scenario, ack_h, rating) in enumerate(profile):
                compound = by_company[company][i % len(by_company[company])]
                category = _HISTORY_CATEGORIES[(i + back + company) % len(_HISTORY_CATEGORIES)]
                hours = form.category(category)["deadline_hours"]
                at = start + timedelta(days=1 + i * 3 + company, hours=1 + (i * 5 + back) % 9)
                vol = vols[(i + back) % 2]
                building = compound.buildings[(i + back) % len(compound.buildings)]
                clean = {"category": category, "building": building.id, "floor": None,
                         "note": _HISTORY_NOTES[category], "extra": {}}
                item = svc.report(form=form, compound=compound, reporter=vol, clean=clean,
                                  photos=photo(vol, "before"), now=at)
                if scenario == "reject":
                    step(item, Action.REJECT, staff, at + timedelta(hours=3), reason="not_a_hazard")
                    continue
                mgr = managers[compound.company_id]
                ack_h = ack_h * (1 + rnd.random() * 0.2)
                step(item, Action.ACKNOWLEDGE, mgr, at + timedelta(hours=ack_h))
                fix_at = at + timedelta(hours=max(ack_h + 1, hours * (1.3 if scenario == "late" else 0.5)))
                if scenario == "extend":
                    step(item, Action.EXTEND_DEADLINE, staff, at + timedelta(hours=hours * 0.5),
                         deadline=at + timedelta(hours=hours * 3), reason="needs_materials",
                         note="需要采购配件")
                    fix_at = at + timedelta(hours=hours * 2)
                if not step(item, Action.FIX, mgr, fix_at, note="已整改", photos=photo(mgr, "after")):
                    continue
                check_at = fix_at + timedelta(hours=3)
                if scenario == "reopen":
                    step(item, Action.REOPEN, vol, check_at, reason="badly_fixed",
                         note="整改不到位", photos=photo(vol, "check"))
                    fix_at = check_at + timedelta(hours=hours * 0.3)
                    if not step(item, Action.FIX, mgr, fix_at, note="已重新整改",
                                photos=photo(mgr, "after")):
                        continue
                    check_at = fix_at + timedelta(hours=3)
                step(item, Action.VERIFY, vol, check_at, photos=photo(vol, "after"), rating=rating)
    # One company item left unfixed and overdue since last month.
    start, _end = current_month.shift(-1).bounds_utc(tz)
    compound = compounds[2]
    at = start + timedelta(days=20, hours=2)
    clean = {"category": "fire_exit", "building": compound.buildings[5].id, "floor": "3",
             "note": "三楼楼道堆放旧沙发，长期未清理", "extra": {}}
    item = svc.report(form=form, compound=compound, reporter=vols[0], clean=clean,
                      photos=photo(vols[0], "before"), now=at)
    step(item, Action.ACKNOWLEDGE, managers[compound.company_id], at + timedelta(hours=20))


def _demo_workflow(compounds, departments, users, now):
    """The seed's chain around the fix: an item routed to the water works, a disputed
    one, one the committee flagged (督办), replies, two residents' reports (one waiting
    for triage, one accepted, fixed, checked and rated) and the committee's ratings."""
    from .services.committee import rating_month
    form = hazard_form()
    window = current_app.config["VERIFY_WINDOW"]
    staff, committee, water = users["staff"], users["committee"], users["water"]
    vol = users["volunteer"]
    a, b, c = compounds
    managers = {a.company_id: users["manager1"], c.company_id: users["manager2"]}

    def new(compound, category, hours_ago, note, building=0, who=vol):
        at = now - timedelta(hours=hours_ago)
        clean = {"category": category, "building": compound.buildings[building].id,
                 "floor": None, "note": note, "extra": {}}
        photo = save_upload(demo_photo(900 + int(hours_ago)), uploader=who, kind="before")
        return svc.report(form=form, compound=compound, reporter=who, clean=clean,
                          photos=[photo], now=at), at

    def step(item, action, who, at, **given):
        if action in (Action.VERIFY, Action.REOPEN):
            svc.record_presence(who, item.compound, at - timedelta(minutes=5))
        svc.act(item, action, who, at, svc.ActionInput(**given), form=form, window=window)

    # Routed to the water works (部门), which acknowledged it.
    item, at = new(b, "water_tank", 26, "小区总水表井盖破损，自来水外漏", building=2)
    step(item, Action.ROUTE, staff, at + timedelta(hours=1), department_id=departments[0].id,
         reason="department_duty", note="市政供水管网，属供水所职责")
    step(item, Action.ACKNOWLEDGE, water, at + timedelta(hours=3))
    step(item, Action.COMMENT, water, at + timedelta(hours=4), note="已派维修班，明天上午到场")
    # The company says it is not its duty (不属于物业职责): staff have not decided yet.
    item, at = new(c, "flying_wire", 16, "小区外墙通信线缆脱落，垂到人行道", building=3)
    step(item, Action.DISPUTE, managers[c.company_id], at + timedelta(hours=2),
         note="通信线缆归运营商所有，不属于物业职责")
    # 督办: the owners' committee flags a slow item at its compound, and replies go back and forth.
    item, at = new(a, "fire_exit", 40, "2栋消防通道长期停放电动车", building=1)
    step(item, Action.ACKNOWLEDGE, managers[a.company_id], at + timedelta(hours=6))
    step(item, Action.FLAG, committee, at + timedelta(hours=30), reason="residents_complain",
         note="业主多次反映，请社区督办")
    step(item, Action.COMMENT, managers[a.company_id], at + timedelta(hours=31),
         note="已张贴通知，本周内清理")
    step(item, Action.COMMENT, staff, at + timedelta(hours=32), note="请周五前完成并上传照片")

    # Residents (业主): one report waiting for triage …
    db.session.add(ResidentReport(
        compound_id=a.id, community_id=a.community_id, category="lighting",
        building_id=a.buildings[4].id, note="5栋一楼大厅灯坏了一周", phone="13800000000",
        status="pending", device_hash="d" * 64, receipt_hash=hash_secret(new_token()),
        created_at=now - timedelta(hours=5)))
    # … and one staff accepted: fixed, checked, and rated by the resident.
    item, at = new(a, "sanitation", 100, "3栋垃圾桶满溢，气味很大", building=2, who=staff)
    item.source = "resident"
    mgr = managers[a.company_id]
    step(item, Action.ACKNOWLEDGE, mgr, at + timedelta(hours=2))
    step(item, Action.FIX, mgr, at + timedelta(hours=20), note="已清运并消毒",
         photos=[save_upload(demo_photo(990), uploader=mgr, kind="after")])
    step(item, Action.VERIFY, vol, at + timedelta(hours=26),
         photos=[save_upload(demo_photo(991), uploader=vol, kind="after")], rating=4)
    db.session.add(ResidentReport(
        compound_id=a.id, community_id=a.community_id, category="sanitation",
        building_id=a.buildings[2].id, note="3栋垃圾桶满溢，气味很大", status="accepted",
        item_id=item.id, handled_by_id=staff.id, handled_at=at, device_hash="e" * 64,
        receipt_hash=hash_secret(new_token()), rating=5, rated_at=at + timedelta(hours=30),
        created_at=at - timedelta(hours=1)))

    # The committee's monthly ratings of 宏远物业 at 金桂园: the last two months.
    tz = current_app.config["TIMEZONE"]
    this_month = rating_month(now, tz)
    for months_back, stars, note in ((1, 4, "整改及时，态度好"), (2, 3, "消防通道问题反复")):
        month = rating_month(datetime.combine(this_month, datetime.min.time())
                             - timedelta(days=28 * months_back - 14), tz)
        db.session.add(CommitteeRating(
            compound_id=a.id, company_id=a.company_id, user_id=committee.id, month=month,
            stars=stars, note=note, created_at=now - timedelta(days=30 * months_back)))
