"""The report page is what a volunteer opens at the gate on a weak mobile connection:
its first load (the HTML plus every stylesheet and script it links, each
gzip-compressed) must stay within 60 kB. Measured exactly as bench/lists.py does.
"""
from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import pytest

from tests.conftest import sign_in

ROOT = Path(__file__).resolve().parent.parent


def _bench():
    spec = importlib.util.spec_from_file_location("patrol_bench_lists", ROOT / "bench" / "lists.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _bench()


@pytest.fixture
def weights(world, client):
    sign_in(client, world.vol_a)
    return bench.first_load_weight(client, f"/compounds/{world.a1}/report")


def test_report_page_first_load_within_budget(weights):
    total = sum(weights.values())
    detail = ", ".join(f"{name} {size:,d} B" for name, size in weights.items())
    assert total <= bench.PAGE_WEIGHT_BUDGET, (
        f"report page first load is {total:,d} B gzip-compressed, over the "
        f"{bench.PAGE_WEIGHT_BUDGET:,d} B budget: {detail}")


def test_measurement_counts_the_html_and_shared_assets(weights, world):
    """The budget means nothing if the measurement misses what the page loads."""
    assert f"/compounds/{world.a1}/report" in weights
    assert "/static/css/app.css" in weights
    assert "/static/js/app.js" in weights
    for name in ("css/app.css", "js/app.js"):
        on_disk = (ROOT / "static" / name).read_bytes()
        assert weights[f"/static/{name}"] == bench.gz(on_disk)
    assert all(size > 20 for size in weights.values()), weights


def test_gzip_measure_is_gzip():
    data = "巡查 hazard report ".encode() * 500
    assert bench.gz(data) == len(gzip.compress(data, compresslevel=bench.GZIP_LEVEL, mtime=0))
    assert bench.gz(data) < len(data) // 10


def test_an_oversized_page_would_fail(app, world, client, monkeypatch):
    """Inflate app.js past the budget: the same measurement must go over it."""
    sign_in(client, world.vol_a)
    import os
    padding = os.urandom(bench.PAGE_WEIGHT_BUDGET).hex().encode()   # incompressible
    original = app.send_static_file

    def fat_static(filename):
        resp = original(filename)
        if filename == "js/app.js":
            resp.direct_passthrough = False
            resp.set_data(resp.get_data() + b"/*" + padding + b"*/")
        return resp

    monkeypatch.setattr(app, "send_static_file", fat_static)
    weights = bench.first_load_weight(client, f"/compounds/{world.a1}/report")
    assert sum(weights.values()) > bench.PAGE_WEIGHT_BUDGET
