"""Weekly-list PDF benchmark: 500 items with photos in one compound, today's code
against the code before issue 15 §5, side by side and interleaved in one run.

    git worktree add --detach /tmp/old-weekly 65ed8bc      # the code before (made if missing)
    .venv/bin/python bench/weekly_pdf.py                    # 500 items, 3 runs of each
    .venv/bin/python bench/weekly_pdf.py --items 200 --runs 1 --full-size --keep

Seeds one compound through the real services (report, acknowledge, fix, verify,
reopen, each with an explicit time) so the chosen ISO week has items in every
section of the list. Every item has its own "before" photo and items that were
fixed have "after" photos: distinct, textured 1600 x 1200 pictures passed through
the upload pipeline (services/photos.process), so the stored files and ~320 px
thumbnails have realistic sizes.

It then renders the compound's weekly list (thumbnails, as `patrol weekly` and the
web download do) with the old code and with this tree's, alternating old/new and
new/old, each render in a fresh subprocess so peak memory is that render's own
(VmHWM of the child: interpreter, Flask and WeasyPrint). The old code runs from a
git worktree (--old, made from --old-rev if missing, with its translations
compiled) against the same database and photo files.

It prints every render's phases (database query, resources = photo reads and QR
codes, layout, PDF writing), pages, file size and peak RSS, then the medians and
the old/new ratios of the write phase and the whole render, and checks both PDFs
read back with poppler: Chinese text (pdftotext), a page number on every page,
the photos (pdfimages -list: count, all JPEG/DCT) and the QR codes.
Exits 1 if the pages differ, a file exceeds --budget-mb, a check fails, or the
write phase is not --target times faster. --budget-s is printed, not enforced:
the machines are shared, so the ratio in one run is the figure that counts.
`--full-size` adds one render (new code) embedding the 1600 px photos, for comparison.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from multiprocessing import Pool
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_machine import describe, peak_rss_mb  # noqa: E402

WEEK = "2026-W10"          # Monday 2 March to Sunday 8 March 2026 (Asia/Shanghai)
BASE_URL = "http://bench.test"
# Share of items per section of the list (the rest of the compound's history is closed).
MIX = {"new": 0.30, "open": 0.30, "fixed": 0.16, "verified": 0.16, "reopened": 0.08}
NOTES = ["楼道堆放纸箱和旧家具，堵住安全出口", "3栋2单元5楼窗口有电线垂下给电动车充电",
         "单元门口和电梯间贴满小广告", "垃圾桶周边脏乱，有异味", "二次供水水箱有异味",
         "枯树有倒伏危险，靠近儿童游乐区", "地下车库入口的灯坏了，晚上看不清",
         "消防栓箱门损坏，水带缺失", "绿化带被占用种菜", "楼顶防水层破损漏水"]


# --- photos -----------------------------------------------------------------------------------

def fake_photo(seed: int, size=(1600, 1200)) -> bytes:
    """A textured picture (blobs, edges, grain) that compresses like a phone photo."""
    from PIL import Image, ImageDraw
    rnd = random.Random(seed)
    w, h = size[0] // 4, size[1] // 4
    small = Image.frombytes("RGB", (16, 12), rnd.randbytes(16 * 12 * 3)).resize(
        (w, h), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(small)
    for _ in range(60):
        x, y = rnd.randrange(w), rnd.randrange(h)
        draw.rectangle([x, y, x + rnd.randrange(4, 60), y + rnd.randrange(4, 40)],
                       fill=tuple(rnd.randrange(256) for _ in range(3)))
    for _ in range(20):
        draw.line([(rnd.randrange(w), rnd.randrange(h)), (rnd.randrange(w), rnd.randrange(h))],
                  fill=(20, 20, 20), width=rnd.randrange(1, 4))
    noise = Image.effect_noise((w, h), 50).convert("RGB")
    im = Image.blend(small, noise, 0.25).resize(size, Image.Resampling.BICUBIC)
    out = io.BytesIO()
    im.save(out, "JPEG", quality=85)
    return out.getvalue()


def _processed(seed: int):
    from patrol.services import photos
    p = photos.process(fake_photo(seed), max_bytes=20 * 1024 * 1024)
    return p.full, p.thumb, p.width, p.height


class PhotoMaker:
    """Hands out Photo rows for distinct pictures made in advance on every core."""

    def __init__(self, count: int, seed: int):
        with Pool(os.cpu_count() or 1) as pool:
            self.ready = pool.map(_processed, range(seed, seed + count), chunksize=8)
        self.next = 0

    def __call__(self, uploader, kind="before"):
        from patrol.extensions import db
        from patrol.models import Photo
        from patrol.services import photos
        from patrol.services.photo_store import storage
        full, thumb, width, height = self.ready[self.next]
        self.next += 1
        key, thumb_key = photos.keys_for(photos.Processed(full, thumb, width, height, None))
        storage().put(key, full)
        storage().put(thumb_key, thumb)
        photo = Photo(uploader_id=uploader.id, kind=kind, key=key, thumb_key=thumb_key,
                      width=width, height=height, size=len(full))
        db.session.add(photo)
        return photo


# --- seeding ----------------------------------------------------------------------------------

def make_app(instance: Path):
    from patrol import create_app
    return create_app({
        "INSTANCE_DIR": instance,
        "SECRET_KEY": "bench",
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{instance / 'bench.db'}",
        "PHOTO_DIR": str(instance / "photos"),
        "RATELIMIT_ENABLED": False,
        "BASE_URL": BASE_URL,
    })


def plan(n: int) -> list[str]:
    sections = []
    for key, share in MIX.items():
        sections += [key] * round(n * share)
    sections = (sections + ["new"] * n)[:n]
    random.Random(7).shuffle(sections)
    return sections


def photo_count(sections) -> int:
    extra = {"new": 0, "open": 0, "fixed": 1, "verified": 2, "reopened": 2}
    return sum(1 + extra[s] for s in sections)


def seed(app, n: int, rng_seed: int):
    """One compound with `n` items spread over the week's sections. Returns (compound id, now)."""
    from patrol.extensions import db
    from patrol.lifecycle import Action
    from patrol.models import Building, Community, Company, Compound, User
    from patrol.services import items as svc
    from patrol.services.weekly import Week
    from patrol.web.helpers import hazard_form

    rng = random.Random(rng_seed)
    sections = plan(n)
    t0 = time.perf_counter()
    make_photo = PhotoMaker(photo_count(sections), rng_seed)
    t_photos = time.perf_counter() - t0
    with app.app_context():
        db.create_all()
        cfg = app.config
        form = hazard_form()
        window = cfg["VERIFY_WINDOW"]
        start, end = Week.parse(WEEK).bounds(cfg["TIMEZONE"])
        now = end + timedelta(hours=2)                 # printed on Monday morning
        community = Community(name="和平社区")
        company = Company(name="宏远物业服务有限公司")
        compound = Compound(name="金桂园", community=community, company=company,
                            buildings=[Building(name=f"{b}栋", sort_key=b) for b in range(1, 21)])
        db.session.add_all([community, company, compound])
        db.session.flush()
        vol = User(username="vol", display_name="刘阿姨", role="volunteer", title="片长",
                   community_id=community.id)
        mgr = User(username="mgr", display_name="李经理", role="manager", company_id=company.id)
        db.session.add_all([vol, mgr])
        db.session.flush()
        categories = [c["code"] for c in form.categories]
        week = end - start

        def at_in_week(lo=0.0, hi=1.0):
            return start + week * rng.uniform(lo, hi)

        def step(item, action, who, at, **given):
            if action in (Action.VERIFY, Action.REOPEN):
                svc.record_presence(who, compound, at - timedelta(minutes=5))
            svc.act(item, action, who, at, svc.ActionInput(**given), form=form, window=window)

        for i, section in enumerate(sections):
            created = (at_in_week(0, 0.8) if section == "new"
                       else start - timedelta(days=rng.uniform(1, 28)))
            clean = {"category": rng.choice(categories),
                     "building": compound.buildings[rng.randrange(20)].id,
                     "floor": str(rng.randrange(1, 19)), "note": f"{rng.choice(NOTES)}（{i + 1}）",
                     "extra": {}}
            item = svc.report(form=form, compound=compound, reporter=vol, clean=clean,
                              photos=[make_photo(vol)], now=created)
            if section in ("new", "open"):
                if rng.random() < 0.5:
                    step(item, Action.ACKNOWLEDGE, mgr, created + timedelta(hours=1))
                continue
            step(item, Action.ACKNOWLEDGE, mgr, created + timedelta(hours=1))
            fixed_at = at_in_week(0.0, 0.5) if section != "fixed" else at_in_week(0.0, 0.9)
            step(item, Action.FIX, mgr, fixed_at, note="已整改",
                 photos=[make_photo(mgr, "after")])
            if section == "verified":
                step(item, Action.VERIFY, vol, at_in_week(0.55, 0.95),
                     photos=[make_photo(vol, "after")])
            elif section == "reopened":
                step(item, Action.REOPEN, vol, at_in_week(0.55, 0.95), reason="not_fixed",
                     note="仍未整改到位", photos=[make_photo(vol, "check")])
            if i % 100 == 99:
                db.session.commit()
        db.session.commit()
        return compound.id, now, t_photos, time.perf_counter() - t0 - t_photos


# --- one render, in its own process --------------------------------------------------------

def render_once(instance: Path, compound_id: int, now: datetime, full_size: bool, out: Path):
    rss_start = peak_rss_mb()
    app = make_app(instance)
    from patrol.extensions import db
    from patrol.models import Compound
    from patrol.services import weekly
    from patrol.services.pdf import write_documents
    from patrol.web.helpers import hazard_form
    with app.app_context(), weekly.rendering_locale("zh"):
        cfg = app.config
        rss_ready = peak_rss_mb()
        t0 = time.perf_counter()
        compound = db.session.get(Compound, compound_id)
        report = weekly.build("compound", compound, weekly.Week.parse(WEEK), now=now,
                              tz=cfg["TIMEZONE"], form=hazard_form())
        t1 = time.perf_counter()
        resources, names = weekly.resources_for(report, BASE_URL, full_size=full_size)
        t2 = time.perf_counter()
        from flask import render_template
        html = render_template("pdf/weekly.html",
                               **weekly._context(report, BASE_URL, cfg["TIMEZONE"], names))
        doc = weekly.lay_out(html, resources)          # what render_document() does
        t3 = time.perf_counter()
        pdf = write_documents([doc])
        t4 = time.perf_counter()
    out.write_bytes(pdf)
    return {
        "items": report.counts["listed"], "sections": {k: len(v) for k, v in report.sections.items()},
        "pages": len(doc.pages), "bytes": len(pdf), "pdf": str(out),
        "images": sum(1 for name in resources if name.startswith("photo-")),
        "image_bytes": sum(len(b) for name, (b, _) in resources.items() if name.startswith("photo-")),
        "t_query": t1 - t0, "t_resources": t2 - t1, "t_layout": t3 - t2, "t_write": t4 - t3,
        "t_total": t4 - t0,
        "rss_start_mb": rss_start, "rss_ready_mb": rss_ready, "peak_rss_mb": peak_rss_mb(),
    }


def run_child(script: Path, instance: Path, compound_id: int, now: datetime, full_size: bool,
              out: Path) -> dict:
    """One render by `script` (this file, or the old tree's copy of it, which imports the
    old tree's code) in a fresh interpreter."""
    cmd = [sys.executable, str(script), "--child", str(instance), "--compound-id", str(compound_id),
           "--now", now.isoformat(), "--out", str(out)] + (["--full-size"] if full_size else [])
    proc = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=900,
                          cwd=script.parent.parent)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["pdf"] = str(out)
    return result


def old_tree(path: Path, rev: str) -> Path:
    """The old code's bench script, in a git worktree at `path` (made from `rev` if
    missing), with its translations compiled (*.mo files are not in git)."""
    if not path.exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), rev],
                       check=True, capture_output=True)
    translations = path / "patrol" / "translations"
    if not list(translations.glob("*/LC_MESSAGES/*.mo")):
        subprocess.run([str(Path(sys.executable).parent / "pybabel"), "-q", "compile", "-d",
                        str(translations)], check=True)
    return path / "bench" / "weekly_pdf.py"


# --- reading the PDFs back -------------------------------------------------------------------

def read_back(path: Path, photos: int, items: int) -> dict:
    """What poppler sees: Chinese title and a page number on every page (pdftotext),
    photos as JPEG (DCTDecode) images and one more image per item if the QR codes
    are raster (pdfimages -list)."""
    def run(*args):
        return subprocess.run(args, check=True, capture_output=True, text=True,
                              timeout=300).stdout
    pages = run("pdftotext", "-enc", "UTF-8", str(path), "-").split("\f")
    pages = pages[:-1] if pages and not pages[-1].strip() else pages
    flat = ["".join(p.split()) for p in pages]
    numbered = all(f"第{n}页/共{len(pages)}页" in text for n, text in enumerate(flat, 1))
    rows = [line.split() for line in run("pdfimages", "-list", str(path)).splitlines()[2:]]
    encs = [row[8] for row in rows if row]
    jpeg = encs.count("jpeg")
    # DCTDecode alone on every photo stream, not also deflated (a filter array).
    raw = path.read_bytes()
    filters = re.findall(rb"/Subtype\s*/Image\b.*?(/Filter\s*(?:/\w+|\[[^\]]*\]))", raw, re.S)
    dct_only = [f for f in filters if b"DCT" in f and re.fullmatch(rb"/Filter\s*/DCTDecode", f)]
    return {
        "chinese": "每周问题清单" in flat[0] and "金桂园" in flat[0], "numbered": numbered,
        "pages": len(pages), "jpeg": jpeg, "dct_only": len(dct_only), "other_images": len(encs) - jpeg,
        "ok": ("每周问题清单" in flat[0] and numbered and jpeg == photos
               and len(dct_only) == photos and len(encs) - jpeg in (0, items)),
    }


# --- report -----------------------------------------------------------------------------------

def machine() -> str:
    import weasyprint
    return describe(f"WeasyPrint {weasyprint.__version__}")


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def median_run(runs: list[dict]) -> dict:
    best = dict(runs[0])
    for key in ("t_query", "t_resources", "t_layout", "t_write", "t_total", "peak_rss_mb"):
        best[key] = statistics.median(r[key] for r in runs)
    return best


def show(label: str, r: dict):
    print(f"{label:11} {r['t_total']:6.2f} s  (query {r['t_query']:.2f}, resources "
          f"{r['t_resources']:.2f}, layout {r['t_layout']:.2f}, write {r['t_write']:.2f})  "
          f"{r['pages']:3d} pages  {r['bytes'] / 1e6:6.2f} MB  "
          f"({r['images']} photos, {r['image_bytes'] / 1e6:.2f} MB of JPEG)  "
          f"peak RSS {r['peak_rss_mb']:.0f} MB (before render {r['rss_ready_mb']:.0f} MB)",
          flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3, help="renders per variant (median)")
    parser.add_argument("--old", type=Path, default=Path("/tmp/old-weekly"),
                        help="git worktree with the old code (made if missing)")
    parser.add_argument("--old-rev", default="65ed8bc",
                        help="commit for a new --old worktree (default: before issue 15 §5)")
    parser.add_argument("--target", type=float, default=2.0,
                        help="required old/new ratio of the write phase")
    parser.add_argument("--full-size", action="store_true",
                        help="also render once with the 1600 px photos (new code)")
    parser.add_argument("--budget-s", type=float, default=10.0, help="printed, not enforced")
    parser.add_argument("--budget-mb", type=float, default=15.0, help="file size budget")
    parser.add_argument("--seed", type=int, default=20260302)
    parser.add_argument("--keep", action="store_true", help="keep the database and PDFs")
    # internal: one render in a child process
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--compound-id", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--now", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        result = render_once(args.child, args.compound_id, datetime.fromisoformat(args.now),
                             args.full_size, args.out)
        print(json.dumps(result))
        return 0

    old_script = old_tree(args.old, args.old_rev)
    new_script = Path(__file__).resolve()
    instance = Path(tempfile.mkdtemp(prefix="patrol-bench-weekly-"))
    try:
        print(f"machine: {machine()}")
        print(f"date: {datetime.now().astimezone().isoformat(timespec='minutes')}")
        print(f"old code: {args.old} at "
              + subprocess.run(["git", "-C", str(args.old), "log", "-1", "--format=%h %s"],
                               capture_output=True, text=True).stdout.strip()[:80])
        print(f"load average before seeding: {load()}")
        app = make_app(instance)
        compound_id, now, t_photos, t_seed = seed(app, args.items, args.seed)
        print(f"seeded {args.items} items in one compound for {WEEK}: photos "
              f"{t_photos:.1f} s, items {t_seed:.1f} s", flush=True)
        runs: dict[str, list[dict]] = {"old": [], "new": []}
        loads = [os.getloadavg()[0]]
        for i in range(args.runs):
            for variant in (("old", "new") if i % 2 == 0 else ("new", "old")):
                script = old_script if variant == "old" else new_script
                r = run_child(script, instance, compound_id, now, False,
                              instance / f"weekly-{variant}-{i + 1}.pdf")
                runs[variant].append(r)
                show(f"{variant} #{i + 1}", r)
                loads.append(os.getloadavg()[0])
        old, new = median_run(runs["old"]), median_run(runs["new"])
        print(f"listed: {new['items']} items {new['sections']}")
        print(f"medians of {args.runs} (load average during the renders "
              f"{min(loads):.2f}-{max(loads):.2f}, now {load()}):")
        show("old code", old)
        show("new code", new)
        write_ratio = old["t_write"] / new["t_write"]
        total_ratio = old["t_total"] / new["t_total"]
        pairs = [(o["t_write"] / n["t_write"], o["t_total"] / n["t_total"])
                 for o, n in zip(runs["old"], runs["new"], strict=True)]
        print(f"old / new: write {write_ratio:.2f}x, whole render {total_ratio:.2f}x, "
              f"layout {old['t_layout'] / new['t_layout']:.2f}x "
              f"(per pair: write {', '.join(f'{w:.2f}' for w, _ in pairs)}; "
              f"whole {', '.join(f'{t:.2f}' for _, t in pairs)})")
        checks = {}
        for variant, r in (("old", runs["old"][-1]), ("new", runs["new"][-1])):
            checks[variant] = c = read_back(Path(r["pdf"]), r["images"], r["items"])
            print(f"read back ({variant}): Chinese {'yes' if c['chinese'] else 'NO'}, "
                  f"page numbers {'yes' if c['numbered'] else 'NO'} ({c['pages']} pages), "
                  f"{c['jpeg']} JPEG images of {r['images']} photos, {c['dct_only']} DCTDecode "
                  f"alone, {c['other_images']} other images (QR codes)")
        if args.full_size:
            full = run_child(new_script, instance, compound_id, now, True,
                             instance / "weekly-full.pdf")
            show("full size", full)
            print(f"full size / thumbnails (new code): time {full['t_total'] / new['t_total']:.2f}x, "
                  f"file {full['bytes'] / new['bytes']:.2f}x, "
                  f"peak RSS {full['peak_rss_mb'] / new['peak_rss_mb']:.2f}x")
        same_pages = {r["pages"] for r in runs["old"] + runs["new"]}
        sizes_ok = all(r["bytes"] <= args.budget_mb * 1e6 for r in runs["old"] + runs["new"])
        ok = (len(same_pages) == 1 and sizes_ok and all(c["ok"] for c in checks.values())
              and write_ratio >= args.target)
        print(f"pages equal: {'yes' if len(same_pages) == 1 else 'NO ' + str(sorted(same_pages))}; "
              f"size budget {args.budget_mb:g} MB: {'OK' if sizes_ok else 'EXCEEDED'}; "
              f"write phase target {args.target:g}x: {'met' if write_ratio >= args.target else 'MISSED'}; "
              f"time budget {args.budget_s:g} s (not enforced): new "
              f"{'within' if new['t_total'] <= args.budget_s else 'over'}")
        print("OK" if ok else "FAILED")
        if args.keep:
            print(f"kept in {instance}")
        return 0 if ok else 1
    finally:
        if not args.keep:
            shutil.rmtree(instance, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
