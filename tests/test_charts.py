"""Server-drawn SVG charts (patrol/charts.py): zero baselines, gaps for periods with no
data, small samples marked, text for screen readers, and user text escaped."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from patrol import charts
from patrol.charts import Datum, Series, Texts

NS = {"s": "http://www.w3.org/2000/svg"}
ONE = [Series("Items", "#0a58a8")]
TWO = [Series("Median", "#0a58a8"), Series("90th percentile", "#b3261e")]
TEXTS = Texts(no_data="无数据", small="* 样本不足")


def parse(svg) -> ET.Element:
    root = ET.fromstring(str(svg))          # well-formed XML, or this raises
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return root


def bars(root):
    return root.findall(".//s:rect[@class='bar']", NS)


def gaps(root):
    return root.findall(".//s:rect[@class='gap']", NS)


def texts(root) -> list[str]:
    return [t.text or "" for t in root.findall(".//s:text", NS)]


@pytest.mark.parametrize("peak,expected", [
    (0, (1, 1)), (1, (1, 1)), (3, (3, 1)), (7, (8, 2)), (10, (10, 5)), (37, (40, 10)),
    (1234, (1500, 500)), (None, (1, 1)),
])
def test_nice_scale_for_counts(peak, expected):
    assert charts.nice_scale(peak) == expected


def test_nice_scale_for_days_may_step_in_fractions():
    assert charts.nice_scale(0.9, integer=False) == (1.0, 0.5)
    top, step = charts.nice_scale(2.3, integer=False)
    assert top >= 2.3 and top / step <= 4


def test_number_format():
    assert [charts.number(v) for v in (0, 12, 3.25, 3.0, 2.04, None)] == \
        ["0", "12", "3.3", "3", "2", "—"]
    assert charts.number(None, "无数据") == "无数据"


def test_hbars_start_at_zero_and_are_proportional():
    data = [Datum("消防通道", (8,)), Datum("飞线充电", (2,)), Datum("水箱", (0,))]
    root = parse(charts.hbars(data, ONE, chart_id="c1", title="按类别", intro="上报数",
                              texts=TEXTS))
    rects = bars(root)
    assert len(rects) == 3
    xs = {float(r.get("x")) for r in rects}
    assert len(xs) == 1                            # every bar grows from the same line…
    zero_x = xs.pop()
    lines = root.findall(".//s:line", NS)
    axis = [ln for ln in lines if float(ln.get("x1")) == zero_x]
    assert axis, "a zero line under the bars"
    assert "0" in texts(root)                      # …labelled 0
    w = [float(r.get("width")) for r in rects]
    assert w[0] == pytest.approx(4 * w[1], rel=0.02)
    assert w[2] == 0                               # a real zero is a zero, not a gap
    assert not gaps(root)


def test_title_and_description_for_screen_readers():
    data = [Datum("物业X", (3.5, 9.0), note="n=12"), Datum("物业Y", (None, None))]
    svg = charts.hbars(data, TWO, chart_id="fix", title="整改用时", intro="整改用时（天）：",
                       texts=TEXTS, integer=False)
    root = parse(svg)
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "fix-title fix-desc"
    assert root.find("s:title", NS).text == "整改用时"
    desc = root.find("s:desc", NS).text
    assert desc == ("整改用时（天）： 物业X (n=12): Median 3.5, 90th percentile 9; "
                    "物业Y: Median 无数据, 90th percentile 无数据.")


def test_no_data_is_a_gap_not_a_zero_bar():
    weeks = [Datum("W45", (4,)), Datum("W46", (0,)), Datum("W47", (None,)), Datum("W48", (2,))]
    root = parse(charts.columns(weeks, ONE, chart_id="wk", title="每周", intro="每周上报",
                                texts=TEXTS))
    assert len(bars(root)) == 3                    # W45, W46 (a zero) and W48
    assert len(gaps(root)) == 1
    assert texts(root).count("无数据") == 1
    heights = [float(r.get("height")) for r in bars(root)]
    assert heights[1] == 0 and heights[0] == pytest.approx(2 * heights[2], rel=0.02)
    # Columns stand on the same zero line.
    bottoms = {round(float(r.get("y")) + float(r.get("height")), 1) for r in bars(root)}
    assert len(bottoms) == 1


def test_small_samples_are_marked_and_explained():
    data = [Datum("物业X", (3.0,), small=False), Datum("物业Y", (7.0,), small=True)]
    root = parse(charts.hbars(data, ONE, chart_id="s", title="t", intro="i", texts=TEXTS))
    marked = [r for r in bars(root) if r.get("stroke-dasharray")]
    assert len(marked) == 1 and marked[0].get("fill-opacity") == "0.35"
    assert "7*" in texts(root) and "3" in texts(root)
    assert "* 样本不足" in texts(root)              # the legend says what "*" means
    # Without a small sample there is no such note.
    root = parse(charts.hbars(data[:1], ONE, chart_id="s", title="t", intro="i", texts=TEXTS))
    assert "* 样本不足" not in texts(root)


def test_user_text_is_escaped():
    evil = '<b>x</b>& "q" </svg><script>alert(1)</script>'
    data = [Datum(evil, (1,), note=evil)]
    for draw in (charts.hbars, charts.columns):
        svg = str(draw(data, [Series(evil, "#000")], chart_id='c"1', title=evil, intro=evil,
                       texts=Texts(no_data=evil, small=evil)))
        assert "<script" not in svg and "<b>" not in svg
        root = parse(svg)
        assert root.find("s:title", NS).text == evil
        assert evil in root.find("s:desc", NS).text


def test_long_labels_are_shortened_in_the_drawing_only():
    name = "一个名字非常非常长的物业服务有限公司第二分公司"
    root = parse(charts.hbars([Datum(name, (2,))], ONE, chart_id="l", title="t", intro="i"))
    shown = [t for t in texts(root) if t.endswith("…")]
    assert shown and len(shown[0]) == 13
    assert name in root.find("s:desc", NS).text    # the description keeps it whole


def test_empty_charts_say_so():
    root = parse(charts.hbars([], ONE, chart_id="e", title="t", intro="i", texts=TEXTS))
    assert "无数据" in texts(root) and not bars(root)
    root = parse(charts.columns([], ONE, chart_id="e2", title="t", intro="i", texts=TEXTS))
    assert not bars(root)


def test_no_style_or_script_in_the_markup():
    svg = str(charts.columns([Datum("W1", (1,), small=True)], TWO[:1], chart_id="x",
                             title="t", intro="i"))
    assert not re.search(r"<script|style=|on\w+=", svg)
