"""Scan to "received" on slow 3G (issue 15 §2), against a raw upload of the same photo.

    .venv/bin/python bench/slow3g.py [--runs N] [--no-raw]

Serves the demo district (patrol.seed) on a local port, signs a volunteer's phone in with
an invite link in Debian's headless Chromium (/usr/bin/chromium, phone viewport), then
emulates slow 3G with CDP Network.emulateNetworkConditions: 400 ms latency, 400 kbps up,
1.6 Mbps down. Each run times, with no think time:

    open the gate URL /c/<token> → compound page → 上报 → take one 12 MP photo → pick the
    category → submit → the compound page says the report was received (.flash.ok)

with the service worker blocked (every page over the link) and allowed (the phone has the
app: shell and pages kept). Photos, both 4000×3000, stored as phones do (sideways, EXIF
orientation 6, JPEG 92):
- noisy: a gradient with lines under strong sensor-like grain (the worst case);
- smooth: the same scene, no grain, slightly soft.
In the same run, under the same conditions, the original file is POSTed to /photos as a
page without photos.js would send it (the raw upload). Targets: ≤ 10 s, and ≥ 10× faster
than the raw upload. Prints every run, the medians and the ratios, then one JSON line.
"""
from __future__ import annotations

import argparse
import base64
import io
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PIL import Image, ImageChops, ImageDraw, ImageFilter  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from bench_machine import describe  # noqa: E402  (bench/bench_machine.py)

from patrol import create_app, permissions  # noqa: E402
from patrol.extensions import db  # noqa: E402
from patrol.models import Compound, Item, User  # noqa: E402
from patrol.seed import seed_demo  # noqa: E402
from patrol.services import accounts  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
PHONE = dict(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
             locale="zh-CN", geolocation={"latitude": 27.857, "longitude": 112.951},
             permissions=["geolocation"])
SLOW_3G = {"offline": False, "latency": 400, "downloadThroughput": 1_600_000 / 8,
           "uploadThroughput": 400_000 / 8}
W, H = 4000, 3000
GRAIN = 28          # σ of the noisy photo's grain, per channel (0–255)
TARGET_S, TARGET_RATIO = 10.0, 10.0
# libjpeg's luminance table at quality 50: the sent JPEG's quality from its own table.
LUMA_50 = [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24,
           40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77,
           24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95,
           98, 112, 100, 103, 99]


def scene() -> Image.Image:
    base = Image.merge("RGB", (Image.linear_gradient("L").resize((W, H)),
                               Image.linear_gradient("L").resize((W, H))
                               .transpose(Image.Transpose.FLIP_LEFT_RIGHT),
                               Image.radial_gradient("L").resize((W, H))))
    draw = ImageDraw.Draw(base)
    for i in range(0, W, 250):
        draw.line([(i, 0), (W - i, H)], fill=(40, 40, 40), width=12)
    return base


def grain(im: Image.Image, sigma: int) -> Image.Image:
    noise = Image.merge("RGB", [Image.effect_noise(im.size, sigma) for _ in range(3)])
    mid = Image.new("RGB", im.size, (128, 128, 128))
    return ImageChops.subtract(ImageChops.add(im, ImageChops.subtract(noise, mid)),
                               ImageChops.subtract(mid, noise))


def phone_file(shown: Image.Image, path: Path) -> Path:
    exif = Image.Exif()
    exif[0x0112] = 6
    shown.transpose(Image.Transpose.ROTATE_90).save(path, "JPEG", quality=92, exif=exif)
    return path


UPLOADS: list[bytes] = []


def recording(inner):
    """Keeps each POST /photos body as it arrived (Playwright does not show file bodies)."""
    def app(environ, start_response):
        if environ["REQUEST_METHOD"] == "POST" and environ["PATH_INFO"] == "/photos":
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            UPLOADS.append(body)
            environ["wsgi.input"] = io.BytesIO(body)
        return inner(environ, start_response)
    return app


def serve(tmp: Path):
    app = create_app({"INSTANCE_DIR": tmp, "SECRET_KEY": "bench",
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp / 'b.db'}"})
    with app.app_context():
        db.create_all()
        seed_demo()
    app.wsgi_app = recording(app.wsgi_app)  # type: ignore[method-assign]
    server = make_server("127.0.0.1", 0, app, threaded=True)
    app.config["BASE_URL"] = f"http://127.0.0.1:{server.server_port}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return app, server


RAW_JS = """async ([b64, csrf]) => {
    const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
    const body = new FormData();
    body.append("photo", new Blob([bytes], {type: "image/jpeg"}), "IMG_0001.jpg");
    body.append("kind", "before");
    body.append("csrf_token", csrf);
    const t0 = performance.now();
    const r = await fetch("/photos", {method: "POST", body, credentials: "same-origin"});
    await r.text();
    return {status: r.status, ms: performance.now() - t0};
}"""


def one_report(page, base, gate, compound_id, photo: Path) -> dict:
    marks: dict = {}
    UPLOADS.clear()

    def on_request(r):
        if r.method == "POST" and r.url.endswith("/photos"):
            marks.setdefault("upload_start", time.perf_counter())
        if r.url.endswith("/sync/token"):
            marks["token_requests"] = marks.get("token_requests", 0) + 1

    def on_finished(r):
        if r.method == "POST" and r.url.endswith("/photos"):
            marks["upload_end"] = time.perf_counter()
    page.on("request", on_request)
    page.on("requestfinished", on_finished)
    t0 = time.perf_counter()
    page.goto(gate)
    page.wait_for_url(f"**/compounds/{compound_id}?*")
    t_compound = time.perf_counter()
    page.locator("#report-btn").tap()
    page.wait_for_url(f"**/compounds/{compound_id}/report")
    page.locator("#f-photos input[name=photos]").wait_for(state="attached")
    t_form = time.perf_counter()
    page.locator("#f-photos input[name=photos]").set_input_files(str(photo))
    t_photo = time.perf_counter()
    page.locator("label.choice:has(input[value=flying_wire])").tap()
    page.locator("#report-form button[type=submit]").tap()
    t_submit = time.perf_counter()
    page.locator(".flash.ok").wait_for(timeout=180_000)
    t1 = time.perf_counter()
    body = UPLOADS[-1] if UPLOADS else b""   # as the server received it
    jpeg = body[body.find(b"\xff\xd8\xff"):body.rfind(b"\xff\xd9") + 2]
    quality = None
    if jpeg:
        with Image.open(io.BytesIO(jpeg)) as im:
            scale = 100 * sum(im.quantization[0]) / sum(LUMA_50)
            quality = round((200 - scale) / 2 if scale <= 100 else 5000 / scale)
    page.remove_listener("request", on_request)
    page.remove_listener("requestfinished", on_finished)
    return {"total_s": t1 - t0, "to_compound_s": t_compound - t0, "to_form_s": t_form - t_compound,
            "photo_to_upload_start_s": marks.get("upload_start", t1) - t_photo,
            "upload_s": marks.get("upload_end", t1) - marks.get("upload_start", t1),
            "submit_to_received_s": t1 - t_submit,
            "upload_done_to_received_s": t1 - marks.get("upload_end", t1),
            "token_requests": marks.get("token_requests", 0),
            "photo_bytes": len(jpeg), "quality": quality}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=2, help="reports per photo and mode")
    ap.add_argument("--no-raw", action="store_true", help="skip the raw uploads (2+ minutes)")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright
    if not os.path.exists(CHROMIUM):
        sys.exit("needs Debian's chromium at /usr/bin/chromium (never `playwright install`)")
    tmp = Path(tempfile.mkdtemp(prefix="patrol-bench-slow3g-"))
    photos = {"noisy": phone_file(grain(scene(), GRAIN), tmp / "noisy.jpg"),
              "smooth": phone_file(scene().filter(ImageFilter.GaussianBlur(1)), tmp / "smooth.jpg")}
    app, server = serve(tmp)
    base = app.config["BASE_URL"]
    with app.app_context():
        user = db.session.execute(db.select(User).where(User.username == "volunteer")).scalar_one()
        compound = db.session.execute(
            db.select(Compound).where(permissions.compound_filter(user, Compound),
                                      Compound.archived_at.is_(None))
            .order_by(Compound.id)).scalars().first()
        gate = f"{base}/c/{compound.qr_token}"
        cid = compound.id
        invites = {mode: accounts.create_invite(user, None, app.config["INVITE_LIFETIME"])
                   for mode in ("block", "allow")}
        db.session.commit()
        items_before = db.session.scalar(db.select(db.func.count()).select_from(Item))
    load = os.getloadavg()
    results: dict = {"noisy": {"block": [], "allow": []}, "smooth": {"block": [], "allow": []}}
    raw: dict = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        pages = {}
        for mode in ("block", "allow"):
            ctx = browser.new_context(base_url=base, service_workers=mode, **PHONE)
            ctx.set_default_timeout(120_000)
            page = ctx.new_page()
            page.goto(f"/invite/{invites[mode]}")
            page.locator("#redeem").tap()
            page.wait_for_url("**/compounds")
            page.goto(f"/compounds/{cid}/report")      # the phone has used the app before
            page.goto(f"/compounds/{cid}")
            page.wait_for_load_state("networkidle")
            if mode == "allow":
                page.evaluate("() => navigator.serviceWorker.ready.then(() => true)")
                page.reload()                           # now under the worker's control
                page.goto(f"/compounds/{cid}/report")   # kept by the worker
                page.goto(f"/compounds/{cid}")
                page.wait_for_timeout(3000)             # let the worker keep the pages
            cdp = ctx.new_cdp_session(page)
            cdp.send("Network.enable")
            cdp.send("Network.emulateNetworkConditions", SLOW_3G)
            pages[mode] = page
        for run in range(args.runs):               # interleaved: photo, mode, run
            for name, photo in photos.items():
                for mode, page in pages.items():
                    r = one_report(page, base, gate, cid, photo)
                    results[name][mode].append(r)
                    print(f"run {run + 1} {name:<6} sw {mode:<5} {r['total_s']:6.2f} s  "
                          f"photo {r['photo_bytes']:,} B q{r['quality']}, "
                          f"upload {r['upload_s']:.2f} s, started {r['photo_to_upload_start_s']:.2f} s "
                          f"after the photo; submit→received {r['submit_to_received_s']:.2f} s; "
                          f"/sync/token {r['token_requests']}", flush=True)
        if not args.no_raw:
            page = pages["block"]
            page.goto(f"/compounds/{cid}/report")
            csrf = page.locator("input[name=csrf_token]").first.input_value()
            for name, photo in photos.items():
                b64 = base64.b64encode(photo.read_bytes()).decode()
                r = page.evaluate(RAW_JS, [b64, csrf])
                raw[name] = r["ms"] / 1000
                print(f"raw upload {name:<6} {photo.stat().st_size:>9,} B  {raw[name]:7.2f} s "
                      f"(HTTP {r['status']})", flush=True)
        browser.close()
    server.shutdown()
    with app.app_context():
        items = db.session.scalar(db.select(db.func.count()).select_from(Item)) - items_before
    print(f"\nmachine: {describe()}; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start"
          f"; {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(f"reports received: {items} (expected {args.runs * 4})")
    summary = {}
    for name in photos:
        with Image.open(photos[name]) as im:
            size = f"{im.size[1]}×{im.size[0]}"     # as shown (EXIF 6)
        for mode in ("block", "allow"):
            med = statistics.median(r["total_s"] for r in results[name][mode])
            ratio = raw[name] / med if name in raw else None
            ok = med <= TARGET_S and (ratio is None or ratio >= TARGET_RATIO)
            summary[f"{name}/{mode}"] = {"median_s": round(med, 2), "ratio": ratio and round(ratio, 1),
                                         "photo_bytes": results[name][mode][-1]["photo_bytes"]}
            print(f"{name:<6} ({size}, {photos[name].stat().st_size:,} B) sw {mode:<5} median "
                  f"{med:5.2f} s" + (f", raw upload {raw[name]:.1f} s, {ratio:.1f}× faster" if ratio
                                     else "") + ("  OK" if ok else "  MISSES the target"))
    print(json.dumps({"summary": summary, "raw_s": raw, "load": load}))


if __name__ == "__main__":
    main()
