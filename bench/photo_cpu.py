"""Server CPU per photo (issue 15 §3): today's pipeline against an older commit's, in one run.

    .venv/bin/python bench/photo_cpu.py                  # against the code before issue 15 §3
    .venv/bin/python bench/photo_cpu.py --old <commit> --rounds 30

The old code is checked out with `git worktree` (under /tmp, removed afterwards) and each
side runs in its own process, importing `patrol.services.photos` from its own tree. The
two are driven in turns, one photo at a time (old, new, old, new ...), so the machine's
load falls on both alike; each call is timed with `time.process_time()` in its process
(CPU time: other processes on a shared machine do not count, waiting does not count).

Inputs, made here with a fixed seed (nothing is downloaded):
- `noisy 1600`: a 1600x1200 scene with sensor-like grain, JPEG q80 as the phone's canvas
  sends it (about 300 KB): the worst case for the entropy coder.
- `grainy 1600`: a little less grain, just under `photos.OPTIMIZE_UP_TO` bytes a pixel:
  the dearest upload that still gets Huffman optimisation.
- `smooth 1600`: the same scene without grain (an overcast wall, a clean sky).
- `grain only 1600`: bench/load_reports.py's photo (noise and nothing else, about 870 KB).
- `12 MP original`: 4000x3000 with grain and EXIF orientation 6, as a phone camera writes
  it (the path a desktop browser's upload, or a phone without the shrink, takes).

Prints, per input: median ms per photo, old and new, the ratio, and the stored bytes
(full and thumbnail) on both sides. Target: the new code ≤ 30 ms for a 1600 px upload.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_machine import describe  # noqa: E402  (bench/bench_machine.py)

# The tree before issue 15 §3 changed the pipeline.
OLD_DEFAULT = "e3a48a0"

# One process per side. It reads "<input path> <repeats>" lines and answers one JSON line:
# CPU ms per call and the sizes of what it produced.
WORKER = r"""
import json, sys, time
root = sys.argv[1]
sys.path.insert(0, root)
from patrol.services import photos
assert photos.__file__.startswith(root), (photos.__file__, root)
blobs = {}
print(json.dumps({"ready": photos.__file__}), flush=True)
for line in sys.stdin:
    path, repeats = line.split()
    data = blobs.setdefault(path, open(path, "rb").read())
    times = []
    for _ in range(int(repeats)):
        start = time.process_time()
        done = photos.process(data, max_bytes=1 << 30)
        photos.keys_for(done)
        times.append((time.process_time() - start) * 1000)
    print(json.dumps({"ms": times, "full": len(done.full), "thumb": len(done.thumb),
                      "size": [done.width, done.height]}), flush=True)
"""


def scene(w: int, h: int, seed: int):
    """Shapes over gradients, softly blurred: edges and flat areas like a street photo."""
    from PIL import Image, ImageDraw, ImageFilter
    rnd = random.Random(seed)
    im = Image.merge("RGB", [Image.linear_gradient("L").resize((w, h)),
                             Image.radial_gradient("L").resize((w, h)),
                             Image.linear_gradient("L").rotate(90).resize((w, h))])
    draw = ImageDraw.Draw(im)
    for _ in range(60):
        x, y = rnd.randrange(w), rnd.randrange(h)
        box = (x, y, x + rnd.randrange(w // 20, w // 3), y + rnd.randrange(h // 20, h // 3))
        colour = tuple(rnd.randrange(256) for _ in range(3))
        (draw.rectangle if rnd.random() < 0.6 else draw.ellipse)(box, fill=colour)
    for _ in range(40):
        draw.line([(rnd.randrange(w), rnd.randrange(h)) for _ in range(2)],
                  fill=tuple(rnd.randrange(256) for _ in range(3)), width=rnd.randrange(1, 6))
    return im.filter(ImageFilter.GaussianBlur(1.2))


def grain(im, amount: float):
    from PIL import Image
    noise = Image.merge("RGB", [Image.effect_noise(im.size, 64) for _ in range(3)])
    return Image.blend(im, noise, amount)


def jpeg(im, quality: int, **kw) -> bytes:
    out = io.BytesIO()
    im.save(out, "JPEG", quality=quality, **kw)
    return out.getvalue()


def inputs() -> dict[str, bytes]:
    from PIL import Image
    base = scene(1600, 1200, 15)
    big = grain(scene(4000, 3000, 15), 0.12).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    noise = Image.effect_noise((1600, 1200), 40).convert("RGB")
    return {
        "noisy 1600": jpeg(grain(base, 0.12), 80),
        # Just under photos.OPTIMIZE_UP_TO bytes a pixel: the dearest 1600 px upload that
        # still gets Huffman optimisation.
        "grainy 1600": jpeg(grain(base, 0.113), 80),
        "smooth 1600": jpeg(base, 80),
        # bench/load_reports.py's photo: nothing but grain, far denser than a photo.
        "grain only 1600": jpeg(noise, 80),
        "12 MP original": jpeg(big, 92, exif=exif),
    }


class Side:
    def __init__(self, name: str, root: Path):
        self.name = name
        self.proc = subprocess.Popen([sys.executable, "-c", WORKER, str(root)], cwd=root,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout and self.proc.stdin
        json.loads(self.proc.stdout.readline())

    def run(self, path: Path, repeats: int) -> dict:
        assert self.proc.stdout and self.proc.stdin
        self.proc.stdin.write(f"{path} {repeats}\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self):
        assert self.proc.stdin
        self.proc.stdin.close()
        self.proc.wait(30)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", default=OLD_DEFAULT, help="commit to compare against")
    ap.add_argument("--rounds", type=int, default=20, help="turns per side and input")
    ap.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = ap.parse_args()
    print(f"date: {time.strftime('%Y-%m-%d %H:%M')}  machine: {describe()}  "
          f"load: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    tmp = Path(tempfile.mkdtemp(prefix="patrol-photo-cpu-"))
    old_tree = tmp / "old"
    subprocess.run(["git", "worktree", "add", "--detach", "-q", str(old_tree), args.old],
                   cwd=ROOT, check=True)
    try:
        paths = {}
        for name, data in inputs().items():
            paths[name] = tmp / (name.replace(" ", "_") + ".jpg")
            paths[name].write_bytes(data)
        sides = [Side("old", old_tree), Side("new", ROOT)]
        try:
            results = {name: {s.name: {"ms": []} for s in sides} for name in paths}
            for side in sides:   # warm up: first calls pay for imports and allocations
                for path in paths.values():
                    side.run(path, 1)
            for turn in range(args.rounds):
                for name, path in paths.items():
                    for side in (sides if turn % 2 == 0 else sides[::-1]):
                        got = side.run(path, 1)
                        slot = results[name][side.name]
                        slot["ms"] += got["ms"]
                        slot.update(full=got["full"], thumb=got["thumb"], size=got["size"])
        finally:
            for side in sides:
                side.close()
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(old_tree)], cwd=ROOT,
                       check=False)
    print(f"old: {args.old}   new: working tree   rounds: {args.rounds}, interleaved\n")
    print(f"{'input':<16}{'bytes in':>10}{'old ms':>9}{'new ms':>9}{'ratio':>7}"
          f"{'old full':>10}{'new full':>10}{'size':>8}{'old thumb':>10}{'new thumb':>10}")
    summary = {}
    for name, path in paths.items():
        old, new = results[name]["old"], results[name]["new"]
        old_ms, new_ms = statistics.median(old["ms"]), statistics.median(new["ms"])
        summary[name] = {"bytes_in": path.stat().st_size, "old_ms": round(old_ms, 1),
                         "new_ms": round(new_ms, 1), "speedup": round(old_ms / new_ms, 2),
                         "old_full": old["full"], "new_full": new["full"],
                         "full_size_ratio": round(new["full"] / old["full"], 3),
                         "old_thumb": old["thumb"], "new_thumb": new["thumb"],
                         "stored_px": new["size"]}
        s = summary[name]
        print(f"{name:<16}{s['bytes_in']:>10,}{old_ms:>9.1f}{new_ms:>9.1f}{s['speedup']:>6.2f}x"
              f"{old['full']:>10,}{new['full']:>10,}{s['full_size_ratio']:>8.3f}"
              f"{old['thumb']:>10,}{new['thumb']:>10,}")
    worst = max(summary[n]["new_ms"] for n in summary if "1600" in n and "grain only" not in n)
    print(f"\n1600 px photo, new code, dearest: {worst:.1f} ms (target ≤ 30 ms): "
          f"{'MET' if worst <= 30 else 'NOT MET'}")
    if args.json:
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
