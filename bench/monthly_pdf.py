"""Monthly statistics pack benchmark: a street of 565 compounds, a month of 10,000 items.

    .venv/bin/python bench/monthly_pdf.py                 # 565 compounds, 10,000 items
    .venv/bin/python bench/monthly_pdf.py --items 2000 --compounds 100 --keep

Seeds a file-based SQLite database in bulk (Core inserts, as bench/lists.py and
bench/export.py do): one street of 20 communities and 565 compounds managed by 40
companies, a team and 10 volunteers per community, a weekly patrol schedule per
compound, 10,000 items reported in the month (every status; each history as its status
implies, written by bench/export.py's seed_history), 4,000 ended patrols with one or two
members each, and three before/after highlights with real photos.

Then, in a fresh process (so seeding's memory does not count), builds the street's pack
(services/monthly_pack.build: ledger figures, ratings, coverage, hours) and renders its
PDF, and prints each phase's time, the pages, the file size and the peak RSS.
Target (issue 14): the whole ≤ 30 s. Exits 1 if it is missed.
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from sqlalchemy import insert  # noqa: E402

from bench_machine import describe, peak_rss_mb  # noqa: E402

MONTH = "2026-10"
STATUS_WEIGHTS = {"reported": 0.10, "acknowledged": 0.12, "fixed": 0.10, "verified": 0.55,
                  "reopened": 0.04, "rejected": 0.06, "merged": 0.03}
COMMUNITIES = 20
COMPANIES = 40


def make_app(instance: Path):
    from lists import make_app as lists_app
    return lists_app(instance)


def seed(instance: Path, n_items: int, n_compounds: int, n_patrols: int, rng_seed: int) -> dict:
    from export import seed_history

    from patrol.extensions import db
    from patrol.models import (Building, Community, Company, Compound, Item, ItemEvent,
                               MonthlyHighlight, Patrol, PatrolMember, PatrolSchedule, Street,
                               Team, User)
    from patrol.scoring import Period
    from weekly_pdf import PhotoMaker

    rng = random.Random(rng_seed)
    app = make_app(instance)
    with app.app_context():
        tz = app.config["TIMEZONE"]
        start, end = Period.parse(MONTH).bounds_utc(tz)
        now = end + timedelta(days=2)
        categories = list(app.extensions["patrol.forms"]["hazard"].categories)
        street = Street(name="和平街道")
        communities = [Community(name=f"第{i + 1}社区", street=street) for i in range(COMMUNITIES)]
        companies = [Company(name=f"物业{i + 1:02d}服务有限公司") for i in range(COMPANIES)]
        compounds = [Compound(name=f"小区{i + 1:03d}", community=communities[i % COMMUNITIES],
                              company=companies[i % COMPANIES],
                              buildings=[Building(name="1栋", sort_key=1)])
                     for i in range(n_compounds)]
        db.session.add_all([street, *communities, *companies, *compounds])
        db.session.flush()
        teams = [Team(name=f"{c.name}巡查队", community_id=c.id) for c in communities]
        db.session.add_all(teams)
        db.session.flush()
        volunteers = [User(username=f"v{i}", display_name=f"志愿者{i}", role="volunteer",
                           community_id=communities[i % COMMUNITIES].id,
                           team_id=teams[i % COMMUNITIES].id) for i in range(COMMUNITIES * 10)]
        staff = User(username="staff", display_name="街道", role="street_staff",
                     street_id=street.id)
        manager = User(username="manager", display_name="经理", role="manager",
                       company_id=companies[0].id)
        db.session.add_all([*volunteers, staff, manager])
        db.session.flush()
        team_of = {c.id: t.id for c, t in zip(communities, teams, strict=True)}
        vols_of: dict[int, list[int]] = {}
        for v in volunteers:
            vols_of.setdefault(v.community_id, []).append(v.id)
        # Set before the month (a schedule counts only from the period it was set in).
        db.session.add_all([PatrolSchedule(team_id=team_of[c.community_id], compound_id=c.id,
                                           period="week", times=1,
                                           created_at=start - timedelta(days=30))
                            for c in compounds])
        # Items: reported in the month; times as bench/export.py's history writes them
        # (acknowledged +10 h, fixed +20 h, verified +30 h after the report).
        statuses, weights = list(STATUS_WEIGHTS), list(STATUS_WEIGHTS.values())
        span = end - start
        items = []
        for i in range(n_items):
            compound = compounds[rng.randrange(len(compounds))]
            category = rng.choice(categories)
            status = rng.choices(statuses, weights)[0]
            created = start + span * rng.random()
            hours = 10 * (1 + rng.random())
            fixed = created + timedelta(hours=2 * hours) \
                if status in ("fixed", "verified", "reopened") else None
            closed = created + timedelta(hours=3 * hours) \
                if status in ("verified", "rejected", "merged") else None
            items.append({
                "id": i + 1, "compound_id": compound.id, "community_id": compound.community_id,
                "company_id": compound.company_id, "category": category["code"],
                "note": f"{category['label']['zh']}（{i + 1}）", "answers": {},
                "form_id": "hazard", "form_version": 1, "status": status,
                "deadline": created + timedelta(hours=category["deadline_hours"]),
                "fixed_on_spot": False, "merged_into_id": i if status == "merged" and i else None,
                "reporter_id": rng.choice(vols_of[compound.community_id]),
                "created_at": created, "acknowledged_at":
                    created + timedelta(hours=hours) if status not in ("reported", "rejected",
                                                                       "merged") else None,
                "fixed_at": fixed, "closed_at": closed, "updated_at": closed or fixed or created,
                "version": 1, "source": "patrol", "support_count": 0,
                "location_mismatch": False,
            })
            if items[-1]["status"] == "merged" and items[-1]["merged_into_id"] is None:
                items[-1]["status"] = "rejected"
        reports = [{"item_id": it["id"], "actor_id": it["reporter_id"], "at": it["created_at"],
                    "action": "report", "from_status": None, "to_status": "reported",
                    "note": None, "reason": None, "data": {}, "presence_id": None}
                   for it in items]
        db.session.commit()              # the bulk inserts below use their own connection
        with db.engine.begin() as conn:
            conn.execute(insert(Item.__table__), items)
            conn.execute(insert(ItemEvent.__table__), reports)
        users = {"manager": manager, "volunteer": volunteers[0], "staff": staff}
        events = len(reports) + seed_history(users)
        # Patrols: ended, one or two members, 30–120 minutes.
        patrols, members = [], []
        for k in range(n_patrols):
            compound = compounds[rng.randrange(len(compounds))]
            began = start + span * rng.random()
            minutes = rng.choice((30, 45, 60, 75, 90, 120))
            crew = rng.sample(vols_of[compound.community_id], rng.choice((1, 2)))
            patrols.append({"id": k + 1, "compound_id": compound.id,
                            "team_id": team_of[compound.community_id], "started_by_id": crew[0],
                            "started_at": began, "last_activity_at": began + timedelta(
                                minutes=minutes), "ended_at": began + timedelta(minutes=minutes),
                            "ended_by": "tapped", "summary": "none", "far_scans": 0,
                            "created_at": began})
            members += [{"patrol_id": k + 1, "user_id": u, "joined_at": began,
                         "minutes": minutes} for u in crew]
        with db.engine.begin() as conn:
            conn.execute(insert(Patrol.__table__), patrols)
            conn.execute(insert(PatrolMember.__table__), members)
        # Three highlights: verified items given a real before and after photo each.
        make_photo = PhotoMaker(6, rng_seed)
        chosen = db.session.execute(db.select(Item).where(Item.status == "verified")
                                    .order_by(Item.id).limit(3)).scalars().all()
        for position, item in enumerate(chosen):
            for kind in ("before", "after"):
                make_photo(manager, kind).item_id = item.id
            db.session.add(MonthlyHighlight(month=Period.parse(MONTH).start_date,
                                            street_id=street.id, item_id=item.id,
                                            position=position, chosen_by_id=staff.id))
        db.session.commit()
        db.session.execute(db.text("PRAGMA wal_checkpoint(TRUNCATE)"))
        db.session.commit()
        out = {"street_id": street.id, "now": now.isoformat(), "items": len(items),
               "events": events, "patrols": len(patrols), "members": len(members),
               "compounds": len(compounds)}
        db.engine.dispose()
    return out


def render_once(instance: Path, street_id: int, now: datetime, out: Path) -> dict:
    app = make_app(instance)
    from patrol import display
    from patrol.extensions import db
    from patrol.models import Street
    from patrol.scoring import Period
    from patrol.services import monthly_pack
    with app.app_context(), display.language("zh"):
        rss_ready = peak_rss_mb()
        t0 = time.perf_counter()
        street = db.session.get(Street, street_id)
        pack = monthly_pack.build("street", street, Period.parse(MONTH), now=now,
                                  tz=app.config["TIMEZONE"], min_items=5)
        t1 = time.perf_counter()
        pdf = monthly_pack.render_pdf(pack, tz=app.config["TIMEZONE"], lang="zh")
        t2 = time.perf_counter()
    out.write_bytes(pdf)
    pages = int(subprocess.run(["pdfinfo", str(out)], capture_output=True, text=True)
                .stdout.split("Pages:")[1].split()[0]) if shutil.which("pdfinfo") else -1
    return {"items": pack.figures.total, "volunteers": len(pack.hours),
            "short": len(pack.coverage.short), "companies": len(pack.ratings),
            "t_build": t1 - t0, "t_render": t2 - t1, "t_total": t2 - t0, "pages": pages,
            "bytes": len(pdf), "rss_ready_mb": rss_ready, "peak_rss_mb": peak_rss_mb()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--compounds", type=int, default=565)
    parser.add_argument("--patrols", type=int, default=4_000)
    parser.add_argument("--budget-s", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=20261001)
    parser.add_argument("--keep", action="store_true", help="keep the database and the PDF")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--street-id", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--now", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        result = render_once(args.child, args.street_id, datetime.fromisoformat(args.now),
                             args.child / "monthly.pdf")
        print(json.dumps(result))
        return 0

    import os
    import weasyprint
    instance = Path(tempfile.mkdtemp(prefix="patrol-bench-monthly-"))
    try:
        print(f"machine: {describe(f'WeasyPrint {weasyprint.__version__}')}")
        print(f"date: {datetime.now().astimezone().isoformat(timespec='minutes')}, "
              f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        t0 = time.perf_counter()
        seeded = seed(instance, args.items, args.compounds, args.patrols, args.seed)
        print(f"seeded in {time.perf_counter() - t0:.1f} s: {seeded['compounds']} compounds, "
              f"{seeded['items']} items ({seeded['events']} history rows), "
              f"{seeded['patrols']} patrols ({seeded['members']} members) in {MONTH}")
        proc = subprocess.run([sys.executable, __file__, "--child", str(instance),
                               "--street-id", str(seeded["street_id"]), "--now", seeded["now"]],
                              check=True, capture_output=True, text=True, timeout=900)
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"street pack: {r['items']} items, {r['companies']} companies rated, "
              f"{r['volunteers']} volunteers, {r['short']} schedules not met")
        print(f"time {r['t_total']:.2f} s (build {r['t_build']:.2f}, render {r['t_render']:.2f})"
              f"  {r['pages']} pages  {r['bytes'] / 1e6:.2f} MB  peak RSS "
              f"{r['peak_rss_mb']:.0f} MB (before build {r['rss_ready_mb']:.0f} MB)")
        ok = r["t_total"] <= args.budget_s
        print(f"budget {args.budget_s:g} s: {'OK' if ok else 'EXCEEDED'}")
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        if args.keep:
            print(f"kept in {instance}")
        return 0 if ok else 1
    finally:
        if not args.keep:
            shutil.rmtree(instance, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
