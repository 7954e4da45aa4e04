"""Offline app: first-load transfer of the app shell, and what the service worker keeps.

    .venv/bin/python bench/offline.py

Serves the demo district (patrol.seed) on a local port, signs a volunteer's phone in
with an invite link in Debian's headless Chromium (phone viewport), and prints:
- the first load: every response of the first page view, raw and gzip-compressed
  (gzip as a production proxy would send it; the test server sends raw bytes);
- the service worker's caches after it has kept the volunteer's compound pages:
  entries and bytes per cache, and navigator.storage.estimate().
"""
from __future__ import annotations

import gzip
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from werkzeug.serving import make_server  # noqa: E402

from bench_machine import describe  # noqa: E402  (bench/bench_machine.py)

from patrol import create_app  # noqa: E402
from patrol.extensions import db  # noqa: E402
from patrol.models import User  # noqa: E402
from patrol.seed import seed_demo  # noqa: E402
from patrol.services import accounts  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
PHONE = dict(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
             locale="zh-CN")

CACHES_JS = """async () => {
    const out = {};
    for (const name of await caches.keys()) {
        const cache = await caches.open(name);
        let bytes = 0, entries = 0;
        for (const req of await cache.keys()) {
            const resp = await cache.match(req);
            bytes += (await resp.blob()).size;
            entries += 1;
        }
        out[name] = {entries, bytes};
    }
    const est = navigator.storage && await navigator.storage.estimate();
    out.__estimate = est ? est.usage : null;
    return out;
}"""


def serve(tmp: Path):
    app = create_app({"INSTANCE_DIR": tmp, "SECRET_KEY": "bench",
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp / 'b.db'}"})
    with app.app_context():
        db.create_all()
        seed_demo()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    app.config["BASE_URL"] = f"http://127.0.0.1:{server.server_port}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return app, server


def main():
    from playwright.sync_api import sync_playwright
    if not os.path.exists(CHROMIUM):
        sys.exit("needs Debian's chromium at /usr/bin/chromium (make test installs it)")
    tmp = Path(tempfile.mkdtemp(prefix="patrol-bench-offline-"))
    app, server = serve(tmp)
    base = app.config["BASE_URL"]
    with app.app_context():
        user = db.session.execute(db.select(User).where(User.username == "volunteer")).scalar_one()
        token = accounts.create_invite(user, None, app.config["INVITE_LIFETIME"])
        db.session.commit()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        context = browser.new_context(base_url=base, **PHONE)
        page = context.new_page()
        page.goto(f"/invite/{token}")
        page.locator("#redeem").tap()
        page.wait_for_url("**/compounds")
        # A fresh context: this is the first view of the app, nothing cached yet.
        first = browser.new_context(base_url=base, storage_state=context.storage_state(), **PHONE)
        fpage = first.new_page()
        bodies = {}

        def keep(response):
            if response.url.startswith(base) and "/sync/" not in response.url:
                try:
                    bodies[response.url[len(base):]] = response.body()
                except Exception:  # redirects have no body
                    pass
        fpage.on("response", keep)
        fpage.goto("/compounds")
        fpage.wait_for_load_state("networkidle")
        deadline = time.time() + 30
        stats = fpage.evaluate(CACHES_JS)
        while time.time() < deadline and not any(k.startswith("pages-") and v["entries"] > 3
                                                  for k, v in stats.items() if k != "__estimate"):
            fpage.wait_for_timeout(300)
            stats = fpage.evaluate(CACHES_JS)
        browser.close()
    server.shutdown()

    raw = sum(len(b) for b in bodies.values())
    gz = sum(len(gzip.compress(b, 6, mtime=0)) for b in bodies.values())
    print(f"machine: {describe()}")
    print(f"\nFirst load of the app shell ({len(bodies)} page requests; the service worker then "
          "fetches the same shell files once more, plus /sw.js, the manifest and /offline):")
    for url, body in sorted(bodies.items()):
        print(f"  {url:<40}{len(body):>9,} B raw {len(gzip.compress(body, 6, mtime=0)):>8,} B gzip")
    print(f"  {'total':<40}{raw:>9,} B raw {gz:>8,} B gzip")
    print("\nService worker caches after keeping the volunteer's pages:")
    total = 0
    for name, v in sorted(stats.items()):
        if name == "__estimate":
            continue
        total += v["bytes"]
        print(f"  {name:<20}{v['entries']:>4} entries {v['bytes']:>10,} B")
    print(f"  {'total':<20}{'':>12} {total:>10,} B   (storage.estimate usage: {stats['__estimate']:,} B)")
    print(json.dumps({"first_load_raw": raw, "first_load_gzip": gz, "cache_bytes": total,
                      "estimate": stats["__estimate"]}))


if __name__ == "__main__":
    main()
