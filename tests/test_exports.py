"""Ledgers (台账): a filtered list downloaded as XLSX and CSV holds exactly the page's rows,
with real dates, formula injection neutralised and no resident's personal data."""
from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta

import openpyxl
import pytest

from patrol.clock import utcnow
from patrol.display import hazard_form
from patrol.extensions import db
from patrol.ledger import ITEM_COLUMNS, Labels, cells, neutralise
from patrol.lifecycle import Action
from patrol.models import Compound, User
from patrol.services import items as svc
from patrol.services.photo_store import save_upload
from tests.conftest import sign_in
from tests.factories import build_world, jpeg_bytes

INJECTION = '=HYPERLINK("http://x","y")'


@pytest.fixture
def w(db_app):
    """Community A: four items in A1 (one with a formula-like note, one fixed and
    reopened), two in A2; community B: one. Staff A filters A1."""
    with db_app.app_context():
        w = build_world()
        vol, mgr = db.session.get(User, w.vol_a), db.session.get(User, w.mgr_x)
        vol_b = db.session.get(User, w.vol_b)
        now = utcnow() - timedelta(days=2)
        form = hazard_form()

        def report(user, compound_id, note, category="flyers"):
            item = svc.report(form=form, compound=db.session.get(Compound, compound_id),
                              reporter=user, now=now, clean={"category": category, "extra": {},
                                                             "note": note},
                              photos=[save_upload(jpeg_bytes(), uploader=user, kind="before")])
            return item

        items = [report(vol, w.a1, INJECTION), report(vol, w.a1, "+1 楼道堆物"),
                 report(vol, w.a1, "普通"), report(vol, w.a1, "@邻居 说明")]
        svc.act(items[2], Action.ACKNOWLEDGE, mgr, now + timedelta(hours=1), svc.ActionInput(),
                form=form, window=timedelta(hours=2))
        report(vol, w.a2, "A2 的问题")
        report(vol, w.a2, "A2 的第二个")
        report(vol_b, w.b1, "B1 的问题")
        db.session.commit()
        w.items = [i.id for i in items]
        return db_app, w


def download(client, url):
    response = client.get(url)
    assert response.status_code == 200, response.data[:300]
    return response


def test_xlsx_holds_exactly_the_filtered_rows(w):
    app, w = w
    staff = sign_in(app.test_client(), w.staff_a)
    page = staff.get(f"/overview?compound={w.a1}")
    shown = re.findall(r'href="/items/(\d+)"', page.get_data(as_text=True))
    response = download(staff, f"/exports/items.xlsx?compound={w.a1}")
    assert "attachment" in response.headers["Content-Disposition"]
    wb = openpyxl.load_workbook(io.BytesIO(response.data))
    sheet, history = wb.worksheets
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0].startswith("筛选：") and "小区A1" in rows[0][0]
    assert rows[1][0].startswith("导出时间：")
    header = rows[2]
    assert header[:3] == ("编号", "小区", "楼栋")
    body = rows[3:]
    assert len(body) == 4 == len(set(shown))
    assert {r[0] for r in body} == set(w.items) == {int(i) for i in shown}
    col = {name: i for i, name in enumerate(header)}
    # Dates are real dates (Excel dates), in local time.
    assert all(isinstance(r[col["上报时间"]], datetime) for r in body)
    acked = [r for r in body if r[col["受理时间"]] is not None]
    assert len(acked) == 1 and isinstance(acked[0][col["受理时间"]], datetime)
    # Formula injection neutralised: stored as text starting with a quote, never a formula.
    notes = {r[col["描述"]] for r in body}
    assert "'" + INJECTION in notes and "'+1 楼道堆物" in notes and "'@邻居 说明" in notes
    assert not any(isinstance(v, str) and v.startswith("=") for r in body for v in r)
    # The frozen header row and the autofilter.
    assert sheet.freeze_panes == "A4"
    assert sheet.auto_filter.ref.startswith("A3")
    # History: one row per event of these items (4 reports + 1 acknowledgement).
    events = list(history.iter_rows(values_only=True))[3:]
    assert len(events) == 5 and {e[0] for e in events} == set(w.items)


def test_csv_matches_and_opens_in_excel(w):
    app, w = w
    staff = sign_in(app.test_client(), w.staff_a)
    response = download(staff, f"/exports/items.csv?compound={w.a1}&status=reported")
    raw = response.data
    assert raw.startswith("\ufeff".encode())          # a BOM, for Excel in Chinese
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    body = rows[3:]
    assert len(body) == 3                             # the acknowledged one is filtered out
    notes = {r[rows[2].index("描述")] for r in body}
    assert "'" + INJECTION in notes
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", r[rows[2].index("上报时间")]) for r in body)


def test_history_csv_has_one_row_per_event(w):
    app, w = w
    staff = sign_in(app.test_client(), w.staff_a)
    rows = list(csv.reader(io.StringIO(download(
        staff, f"/exports/history.csv?compound={w.a1}").data.decode("utf-8-sig"))))
    assert len(rows[3:]) == 5 and {int(r[0]) for r in rows[3:]} == set(w.items)


def test_list_pages_offer_their_own_rows(w):
    """Each list links to the download of exactly its rows: the same query string."""
    app, w = w
    staff = sign_in(app.test_client(), w.staff_a)
    page = staff.get(f"/overview?compound={w.a1}&status=reported&page=1").get_data(as_text=True)
    link = re.search(r'href="(/exports/items\.csv\?[^"]+)"', page).group(1).replace("&amp;", "&")
    assert f"compound={w.a1}" in link and "status=reported" in link and "page=" not in link
    rows = list(csv.reader(io.StringIO(download(staff, link).data.decode("utf-8-sig"))))
    assert len(rows[3:]) == 3
    inbox = sign_in(app.test_client(), w.mgr_x).get("/inbox?tab=new").get_data(as_text=True)
    assert "/exports/items.xlsx?tab=new" in inbox
    escalations = staff.get("/escalations").get_data(as_text=True)
    assert "/exports/items.csv?escalated=1" in escalations
    # Not acknowledged in time (the items are two days old): all of A's open items.
    rows = list(csv.reader(io.StringIO(download(staff, "/exports/items.csv?escalated=1")
                                       .data.decode("utf-8-sig"))))
    assert len(rows[3:]) == 5


def test_english_headers_on_request(w):
    app, w = w
    staff = sign_in(app.test_client(), w.staff_a)
    rows = list(csv.reader(io.StringIO(
        download(staff, f"/exports/items.csv?compound={w.a1}&lang=en").data.decode("utf-8-sig"))))
    assert rows[2][:2] == ["No.", "Compound"]


def test_exports_stay_within_scope(w):
    app, w = w
    # Community B's staff asking for community A's compound get none of its rows.
    other = sign_in(app.test_client(), w.staff_b)
    rows = list(csv.reader(io.StringIO(
        download(other, f"/exports/items.csv?compound={w.a1}").data.decode("utf-8-sig"))))
    assert rows[3:] == []
    # Nor its name in the filter line: a compound they may not open is named by its number.
    assert rows[0][0] == f"筛选：{w.a1}", rows[0][0]
    # A manager gets their company's items only (X: A1 and B1, not A2's Y).
    mgr = sign_in(app.test_client(), w.mgr_x)
    rows = list(csv.reader(io.StringIO(download(mgr, "/exports/items.csv").data.decode("utf-8-sig"))))
    assert len(rows[3:]) == 5
    # Volunteers and committee members have no ledgers.
    for user in (w.vol_a, w.com_a1):
        assert sign_in(app.test_client(), user).get("/exports/items.csv").status_code == 403


def test_no_personal_data_of_residents(w):
    app, w = w
    with app.app_context():
        for u in db.session.scalars(db.select(User)):
            u.phone = "13800001234"
        db.session.commit()
    staff = sign_in(app.test_client(), w.staff_a)
    data = download(staff, "/exports/items.xlsx").data
    wb = openpyxl.load_workbook(io.BytesIO(data))
    text = " ".join(str(v) for ws in wb.worksheets for r in ws.iter_rows(values_only=True)
                    for v in r if v is not None)
    assert "13800001234" not in text and "vol_a" not in text


def test_monthly_ledger(w):
    app, w = w
    staff = sign_in(app.test_client(), w.staff_a)
    with app.app_context():
        from patrol.services.ledger import to_local_date
        month = to_local_date(utcnow() - timedelta(days=2)).strftime("%Y-%m")
    wb = openpyxl.load_workbook(io.BytesIO(download(
        staff, f"/exports/monthly.xlsx?community={w.ca}&month={month}").data))
    summary = {r[0]: r[1] for r in wb.worksheets[0].iter_rows(values_only=True) if r[0]}
    assert summary["上报问题数"] == 6
    assert sign_in(app.test_client(), w.staff_b).get(
        f"/exports/monthly.xlsx?community={w.ca}").status_code == 404


@pytest.mark.parametrize("value,safe", [
    ("=1+1", "'=1+1"), ("+86 138", "'+86 138"), ("-5", "'-5"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\tx", "'\tx"), ("\rx", "'\rx"), ("普通文字", "普通文字"), (5, 5), (None, None)])
def test_neutralise(value, safe):
    assert neutralise(value) == safe


def test_labels_are_made_safe_once():
    names = Labels({"a": "=x", "b": "普通"})
    assert names["a"] == "'=x" and names["b"] == "普通"
    # A code without a name reads as itself, neutralised; no code is an empty cell.
    assert names["zz"] == "zz" and names["=q"] == "'=q" and names[None] is None


def test_names_staff_typed_are_neutralised_on_every_row():
    columns = [c for c in ITEM_COLUMNS if c.key in ("compound", "note")]
    rows = [{"compound": "=东区", "note": "@x"}, {"compound": "=东区", "note": "普通"}]
    assert list(cells(columns, rows, "zh")) == [["'=东区", "'@x"], ["'=东区", "普通"]]


def test_the_filter_on_top_is_in_words_and_a_bad_month_says_so(w):
    app, w = w
    staff = sign_in(app.test_client(), w.staff_a)
    rows = list(csv.reader(io.StringIO(download(
        staff, "/exports/items.csv?status=open&since=2026-11-01").data.decode("utf-8-sig"))))
    assert rows[0][0] == "筛选：全部未办结; 从 2026-11-01", rows[0][0]
    for month in ("2026-13", "9999-12", "0001-01"):   # 9999-12 ends in no year at all
        resp = staff.get(f"/exports/monthly.xlsx?community={w.ca}&month={month}")
        assert resp.status_code == 400 and "2026-11" in resp.get_data(as_text=True), month
        assert "月份格式不对" in resp.get_data(as_text=True)


def test_a_note_longer_than_a_cell_holds_is_cut_in_the_xlsx_and_whole_in_the_csv(
        w, monkeypatch):
    """Excel's cell ends at 32,767 characters, and the writer refuses a longer string (the
    whole download failed). Notes are limited now, but history written before may hold one."""
    app, w = w
    from patrol.models import Item
    from patrol.xlsx import TEXT_MAX
    long_note = "长" * 40_000
    monkeypatch.setattr(svc, "NOTE_MAX", 10**6)   # as before the limit
    with app.app_context():
        svc.act(db.session.get(Item, w.items[2]), Action.COMMENT,
                db.session.get(User, w.mgr_x), utcnow(), svc.ActionInput(note=long_note),
                form=hazard_form(), window=timedelta(hours=2))
        db.session.commit()
    staff = sign_in(app.test_client(), w.staff_a)
    wb = openpyxl.load_workbook(io.BytesIO(download(
        staff, f"/exports/items.xlsx?compound={w.a1}").data))
    notes = [r[-1] for r in wb.worksheets[1].iter_rows(values_only=True) if r[-1]]
    cut = [n for n in notes if n.startswith("长")]
    assert cut == ["长" * (TEXT_MAX - 1) + "…"]
    rows = csv.reader(io.StringIO(download(
        staff, f"/exports/history.csv?compound={w.a1}").data.decode("utf-8-sig")))
    assert long_note in [cell for row in rows for cell in row]
