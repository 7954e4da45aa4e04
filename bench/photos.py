"""Photo costs: bytes on the wire for a 12 MP photo, server time with and without JPEG
draft decoding (as a ratio in one run), and peak memory per photo.

    .venv/bin/python bench/photos.py

The in-browser figure runs the page's own shrink() (static/js/photos.js) in Debian's
headless Chromium; without Chromium it says so and skips that row.
"""
from __future__ import annotations

import base64
import io
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_machine import describe  # noqa: E402  (bench/bench_machine.py)


def twelve_mp_photo() -> bytes:
    """4000×3000, textured like a real photo, EXIF orientation 6 as phones write it."""
    base = Image.linear_gradient("L").resize((4000, 3000)).convert("RGB")
    noise = Image.effect_noise((4000, 3000), 40).convert("RGB")
    im = Image.blend(base, noise, 0.35).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    im.save(out, "JPEG", quality=92, exif=exif)
    return out.getvalue()


def browser_bytes(data: bytes) -> int | None:
    chromium = "/usr/bin/chromium"
    if not os.path.exists(chromium):
        return None
    from playwright.sync_api import sync_playwright
    js = (ROOT / "static/js/photos.js").read_text()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page()
        page.set_content("<html><body></body></html>")
        page.add_script_tag(content=js)
        size = page.evaluate("""async (b64) => {
            const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
            const file = new File([bytes], "IMG.jpg", {type: "image/jpeg"});
            const out = await window.PatrolPhotos.shrink(file);
            return out.size;
        }""", base64.b64encode(data).decode())
        browser.close()
    return size


def server_ms(data: bytes, draft: bool, runs: int = 7) -> float:
    from patrol.services.photos import process
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        process(data, max_bytes=1 << 30, draft=draft)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def peak_memory_mb(path: Path, draft: bool) -> float:
    """Peak RSS growth while processing one photo, in a fresh process."""
    # VmHWM, not ru_maxrss: the latter carries the parent's peak across exec on Linux.
    code = f"""
import re, sys
sys.path.insert(0, {str(ROOT)!r})
from patrol.services.photos import process
def hwm():
    return int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1))
data = open({str(path)!r}, 'rb').read()
before = hwm()
process(data, max_bytes=1 << 30, draft={draft})
print((hwm() - before) / 1024)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def main():
    data = twelve_mp_photo()
    path = Path("/tmp/patrol-bench-12mp.jpg")
    path.write_bytes(data)
    shrunk = browser_bytes(data)
    with_draft, without = server_ms(data, True), server_ms(data, False)
    mem_draft, mem_full = peak_memory_mb(path, True), peak_memory_mb(path, False)
    rows = {
        "machine": describe(),
        "photo": "4000x3000 JPEG q92, EXIF orientation 6",
        "raw_bytes": len(data),
        "browser_shrunk_bytes": shrunk,
        "wire_ratio": round(len(data) / shrunk, 1) if shrunk else None,
        "server_ms_draft": round(with_draft, 1),
        "server_ms_no_draft": round(without, 1),
        "draft_speedup": round(without / with_draft, 2),
        "peak_rss_mb_draft": round(mem_draft, 1),
        "peak_rss_mb_no_draft": round(mem_full, 1),
    }
    print(f"{'machine':<28}{rows['machine']}")
    print(f"{'photo':<28}{rows['photo']}")
    print(f"{'bytes on the wire, raw':<28}{len(data):>12,}")
    if shrunk:
        print(f"{'bytes, in-browser shrink':<28}{shrunk:>12,}   (1/{rows['wire_ratio']})")
    else:
        print("bytes, in-browser shrink    skipped: no /usr/bin/chromium")
    print(f"{'server ms, draft decoding':<28}{with_draft:>12.1f}")
    print(f"{'server ms, full decoding':<28}{without:>12.1f}   (draft is {rows['draft_speedup']}x faster)")
    print(f"{'peak RSS MB, draft':<28}{mem_draft:>12.1f}")
    print(f"{'peak RSS MB, full decoding':<28}{mem_full:>12.1f}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
