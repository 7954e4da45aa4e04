"""The district import from the web page: template, upload, preview, confirm, posters.

A preview writes nothing and lists every problem; confirm applies exactly what was
previewed, once; staff import their own community's rows only; bad files and files over
the upload limit get a clear message and write nothing.
"""
from __future__ import annotations

import html
import io
import re
import zipfile

import pytest
from openpyxl import Workbook, load_workbook

from patrol.extensions import db
from patrol.jobs import run_queued
from patrol.importer.read import Refused, read
from patrol.importer.sheets import BY_NAME
from patrol.importer.template import template_bytes
from patrol.lifecycle import Role
from patrol.models import (Building, Community, Company, Compound, Street, Team, User)
from patrol.services import district_import, district_uploads
from patrol.services.photo_store import storage
from tests.conftest import make_app, sign_in
from tests.district_workbook import district
from tests.factories import build_world
from tests.pdftools import qr_texts, require_poppler, write_pdf

BASE_URL = "http://patrol.test"   # tests/conftest.make_app


# --- helpers ----------------------------------------------------------------------------

def counts():
    count = lambda model, *where: db.session.scalar(  # noqa: E731
        db.select(db.func.count()).select_from(model).where(*where))
    return {"streets": count(Street), "communities": count(Community),
            "companies": count(Company), "compounds": count(Compound),
            "buildings": count(Building), "teams": count(Team),
            "users": count(User)}


def db_counts(app):
    with app.app_context():
        return counts()


def filled_template(**sheets) -> bytes:
    """The downloadable template with rows added under its example rows."""
    book = load_workbook(io.BytesIO(template_bytes()))
    for name, rows in sheets.items():
        for row in rows:
            book[name].append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def upload(client, data: bytes, name="名单.xlsx"):
    return client.post("/district/import", content_type="multipart/form-data",
                       data={"file": (io.BytesIO(data), name)})


def confirm_url(resp) -> str:
    m = re.search(r'action="(/district/import/[A-Za-z0-9_-]{32}/confirm)"', resp.text)
    assert m, "no confirm form on the page"
    return m.group(1)


def kept_files(app) -> list[str]:
    """What the store keeps of uploads (imports/<token>/<name>), as <token>/<name>."""
    with app.app_context():
        return sorted(k.removeprefix("imports/") for k in storage().keys("imports/"))


def confirmed(app, client, url, *, status="done"):
    """Confirm as the page does: the answer is the job's page (a progress bar; nothing
    is imported in the web request); then the worker runs the job (run_queued, as
    `patrol worker` would). Returns the job's page once it has run."""
    before = db_counts(app)
    resp = client.post(url)
    assert resp.status_code == 302, text_of(resp)[:2000]
    assert re.fullmatch(r"/jobs/\d+", resp.headers["Location"]), resp.headers["Location"]
    queued = client.get(resp.headers["Location"])
    assert '<progress id="job-progress"' in queued.text and "js/jobs.js" in queued.text
    assert db_counts(app) == before                 # the web request wrote nothing
    run_queued(app)
    page = client.get(resp.headers["Location"])
    assert page.status_code == 200
    status_ = client.get(resp.headers["Location"] + ".json").get_json()
    assert status_["state"] == status, status_
    return page


def done_url(page) -> str:
    """The job page's link to what was imported."""
    m = re.search(r'id="job-import-done" href="(/district/import/[A-Za-z0-9_-]{32})"', page.text)
    assert m, "no link to the import's summary on the job page"
    return m.group(1)


def text_of(resp) -> str:
    return html.unescape(resp.text)


@pytest.fixture
def streets(app, world):
    """Community A in 和平街道, B in 东风街道, as after a real district's import."""
    with app.app_context():
        db.session.get(Community, world.ca).street = Street(name="和平街道")
        db.session.get(Community, world.cb).street = Street(name="东风街道")
        db.session.commit()
    return world


def own_rows(compound="新桂园", company="物业X"):
    """A compound with buildings and two volunteers, all in 和平街道 · 社区A."""
    return dict(
        小区=[["和平街道", "社区A", compound, "建设路1号", company, "27.85", "112.95", "150"]],
        楼栋=[["社区A", compound, "1-3栋", "和平街道"]],
        志愿者=[["刘阿姨", "13800138001", "社区A", "A队", "片长", "和平街道"],
                ["赵师傅", "+86 138 0013 8002", "社区A", "A二队", "红色管家", "和平街道"]],
    )


# --- the page ---------------------------------------------------------------------------

def test_the_page_offers_the_template_and_an_upload_form(app, streets, client):
    sign_in(client, streets.staff_a)
    page = client.get("/district/import")
    assert page.status_code == 200
    assert "下载模板" in page.text
    assert 'enctype="multipart/form-data"' in page.text and 'name="file"' in page.text
    assert "和平街道 · 社区A" in page.text     # the staff member's rule names their community
    resp = client.get("/district/import/template.xlsx")
    assert resp.status_code == 200 and resp.mimetype.endswith("spreadsheetml.sheet")
    assert "attachment" in resp.headers["Content-Disposition"]
    assert set(read(resp.data, "t.xlsx")) == set(BY_NAME)
    # The menu leads there.
    assert "/district/import" in client.get("/district/").text


@pytest.mark.parametrize("who, status", [("vol_a", 403), ("mgr_x", 403), ("com_a1", 403)])
def test_only_staff_and_admins(app, world, client, who, status):
    sign_in(client, getattr(world, who))
    assert client.get("/district/import").status_code == status
    assert upload(client, filled_template(**own_rows())).status_code == status
    assert client.get("/district/").status_code == status
    assert kept_files(app) == []


def test_signed_out_is_sent_to_sign_in(world, client):
    assert client.get("/district/import").status_code in (302, 401)
    assert upload(client, b"x").status_code in (302, 401)


def test_state_changes_are_post_only(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint in ("district.upload", "district.confirm",
                             "district.team_cards_job"):
            assert rule.methods - {"OPTIONS"} == {"POST"}, rule


def test_confirm_needs_a_csrf_token(tmp_path):
    app = make_app(tmp_path, WTF_CSRF_ENABLED=True)
    with app.app_context():
        w = build_world()
    client = sign_in(app.test_client(), w.admin)
    assert upload(client, filled_template()).status_code == 400
    assert client.post("/district/import/" + "a" * 32 + "/confirm").status_code == 400
    assert kept_files(app) == []


# --- preview --------------------------------------------------------------------------

def test_the_preview_lists_every_problem_and_writes_nothing(db_app):
    with db_app.app_context():
        w = build_world()
        before = counts()
    messy = district(compounds=20, streets=2, communities=4, companies=3, volunteers=10,
                     plant_errors=True)
    client = sign_in(db_app.test_client(), w.admin)
    resp = upload(client, messy.data)
    assert resp.status_code == 422
    with db_app.app_context():
        expected = district_import.plan(read(messy.data, "x.xlsx")).problems
        db.session.rollback()
    assert len(expected) == len(messy.planted) == 12
    page = text_of(resp)
    assert "发现 12 处错误" in page
    items = re.findall(r'<li class="item problem">(.*?)</li>', resp.text, re.S)
    assert len(items) == 12
    for problem, item in zip(expected, items, strict=True):
        item = html.unescape(item)
        for part in (problem.sheet, f"第 {problem.row} 行", problem.column, problem.message):
            assert part in item, (str(problem), item)
    assert "/confirm" not in resp.text
    assert db_counts(db_app) == before
    assert kept_files(db_app) == []


def test_preview_confirm_applies_once_and_a_second_confirm_does_nothing(db_app):
    with db_app.app_context():
        w = build_world()
        before = counts()
    small = district(compounds=3, streets=1, communities=2, companies=2, volunteers=4,
                     buildings_per=(2, 2))
    client = sign_in(db_app.test_client(), w.admin)
    resp = upload(client, small.data)
    assert resp.status_code == 200, text_of(resp)[:2000]
    with db_app.app_context():
        plan = district_import.plan(read(small.data, "x.xlsx"))
        summary = plan.summary()
        db.session.rollback()
    assert summary in text_of(resp) and summary.startswith("新增 ")
    assert db_counts(db_app) == before                       # the preview wrote nothing
    assert len(kept_files(db_app)) == 2                       # the file and its record

    url = confirm_url(resp)
    job_page = confirmed(db_app, client, url)
    assert summary in text_of(job_page)                       # the job's note
    after = db_counts(db_app)
    assert after["compounds"] == before["compounds"] + 3
    assert after["buildings"] == before["buildings"] + 6
    done = done_url(job_page)
    page = client.get(done)
    assert page.status_code == 200 and summary in text_of(page)
    assert "已导入" in text_of(page)

    again = client.post(url)                                  # a double tap, a reload
    assert again.status_code == 302 and again.headers["Location"] == done
    assert "没有重复写入" in text_of(client.get(again.headers["Location"]))
    assert run_queued(db_app) == 0                            # no second job
    assert db_counts(db_app) == after
    assert [n for n in kept_files(db_app) if not n.endswith("/done.json")] == []

    # Uploading the same file again: nothing new.
    resp = upload(client, small.data)
    assert "新增 0 条，修改 0 条" in text_of(resp)


def test_the_preview_shows_what_an_edited_file_changes(app, world, client):
    small = district(compounds=2, streets=1, communities=1, companies=2, volunteers=1)
    with app.app_context():
        district_import.apply(district_import.plan(read(small.data, "x.xlsx")))
        db.session.commit()
    book = load_workbook(io.BytesIO(small.data))
    book["物业公司"].cell(2, 2, "0731-12345678")
    out = io.BytesIO()
    book.save(out)
    sign_in(client, world.admin)
    resp = upload(client, out.getvalue())
    page = text_of(resp)
    assert resp.status_code == 200 and "新增 0 条，修改 1 条" in page
    assert re.search(r"物业公司：第0物业服务有限公司 phone: .*073112345678", page), page[-3000:]
    confirmed(app, client, confirm_url(resp))
    with app.app_context():
        assert db.session.execute(db.select(Company.phone).where(
            Company.name == "第0物业服务有限公司")).scalar_one() == "073112345678"


def test_confirm_is_refused_when_the_data_changed_after_the_preview(app, streets, client):
    sign_in(client, streets.staff_a)
    resp = upload(client, filled_template(**own_rows()))
    assert resp.status_code == 200
    # Meanwhile someone else adds the same compound: the previewed plan no longer holds.
    with app.app_context():
        db.session.add(Compound(name="新桂园", community_id=streets.ca, company_id=streets.x))
        db.session.commit()
        before = counts()
    refused = confirmed(app, client, confirm_url(resp), status="failed")
    assert "预览之后数据有了变化" in text_of(refused)
    assert 'id="job-import-again"' in refused.text           # upload again
    assert db_counts(app) == before
    assert kept_files(app) == []


def test_an_upload_is_confirmed_only_by_whoever_uploaded_it(app, streets, client):
    sign_in(client, streets.staff_a)
    resp = upload(client, filled_template(**own_rows()))
    url = confirm_url(resp)
    before = db_counts(app)
    for other in (streets.admin, streets.staff_b):
        intruder = sign_in(app.test_client(), other)
        assert intruder.post(url).status_code == 409
        assert intruder.get(url.removesuffix("/confirm")).status_code == 404
    assert db_counts(app) == before
    assert run_queued(app) == 0                                 # nothing was queued
    confirmed(app, client, url)                                 # the owner still can
    assert db_counts(app)["compounds"] == before["compounds"] + 1


def test_unknown_and_malformed_tokens(app, world, client):
    sign_in(client, world.admin)
    for token in ("a" * 32, "..%2F..%2Fsecret_key", "x"):
        assert client.post(f"/district/import/{token}/confirm").status_code in (404, 409)
        assert client.get(f"/district/import/{token}").status_code == 404
        assert client.get(f"/district/import/{token}/posters.pdf").status_code == 404


# --- staff: their own community only --------------------------------------------------

def test_staff_import_their_own_community_and_get_the_new_posters(app, streets, client, tmp_path):
    require_poppler()
    sign_in(client, streets.staff_a)
    rows = own_rows()
    rows["物业公司"] = [["新安物业有限公司", "0731-5555-0000", "王经理", None]]  # new: allowed
    rows["小区"].append(["和平街道", "社区A", "新竹苑", "建设路2号", "新安物业有限公司",
                       None, None, None])
    resp = upload(client, filled_template(**rows))
    assert resp.status_code == 200, text_of(resp)[:3000]
    assert "新增 8 条，修改 0 条" in text_of(resp)   # a company, 2 compounds, 3 buildings, 2 volunteers
    done = done_url(confirmed(app, client, confirm_url(resp)))
    with app.app_context():
        new = db.session.execute(db.select(Compound).where(
            Compound.name.in_(["新桂园", "新竹苑"])).order_by(Compound.name, Compound.id)
        ).scalars().all()
        assert [c.community_id for c in new] == [streets.ca, streets.ca]
        expected = [f"{BASE_URL}/c/{c.qr_token}" for c in new]
        vols = db.session.execute(db.select(User).where(User.phone.in_(
            ["13800138001", "13800138002"]))).scalars().all()
        assert {v.community_id for v in vols} == {streets.ca}
        assert {v.team.name for v in vols} == {"A队", "A二队"}   # a new team too
        assert {v.team.community_id for v in vols} == {streets.ca}
    page = client.get(done)
    assert "/posters.pdf" in page.text
    pdf = client.get(done + "/posters.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert sorted(sum(qr_texts(write_pdf(pdf.data, tmp_path, "new")), [])) == sorted(expected)

    # Staff may also update their own compounds: a new address.
    rows["小区"][0][3] = "建设路100号"
    resp = upload(client, filled_template(**rows))
    assert resp.status_code == 200 and "新增 0 条，修改 1 条" in text_of(resp)
    confirmed(app, client, confirm_url(resp))
    with app.app_context():
        assert db.session.execute(db.select(Compound.address).where(
            Compound.name == "新桂园")).scalar_one() == "建设路100号"


def test_staff_of_another_community_are_refused_with_the_places_listed(app, streets, client):
    before = db_counts(app)
    sign_in(client, streets.staff_b)                 # 东风街道 · 社区B
    rows = own_rows()
    rows["小区"].append(["东风街道", "社区B", "东风小区", "路1号", "物业X", None, None, None])
    rows["街道社区"] = [["光明街道", "光明社区"]]
    resp = upload(client, filled_template(**rows))
    assert resp.status_code == 422
    page = text_of(resp)
    assert "您只能导入本社区（东风街道 · 社区B）的数据" in page
    listed = re.search(r"这个文件还有以下社区的行：(.*?)。", page).group(1)
    assert set(listed.split("、")) == {"和平街道 · 社区A", "光明街道 · 光明社区"}
    assert "/confirm" not in resp.text
    assert db_counts(app) == before and kept_files(app) == []


@pytest.mark.parametrize("extra, words", [
    (dict(账号=[["李经理", "li", "物业", "物业X"]]), "须由系统管理员导入"),
    (dict(物业公司=[["物业X", "0731-0000-0000", None, None]]), "已在系统中的物业公司只能由系统管理员修改"),
    (dict(志愿者=[["外社区", "13900000009", "社区A", "A队", "组长", "和平街道"]]), "属于其他社区"),
    (dict(楼栋=[["社区B", "小区B1", "9栋"]]), "社区B"),
])
def test_staff_cannot_reach_beyond_their_community(app, streets, client, extra, words):
    with app.app_context():   # a volunteer of community B with the phone used above
        db.session.add(User(username="v-b2", display_name="乙", role=Role.VOLUNTEER.value,
                            phone="13900000009", community_id=streets.cb))
        db.session.commit()
    before = db_counts(app)
    sign_in(client, streets.staff_a)
    rows = own_rows()
    for sheet, more in extra.items():
        rows[sheet] = rows.get(sheet, []) + more
    resp = upload(client, filled_template(**rows))
    assert resp.status_code == 422
    assert words in text_of(resp)
    assert "/confirm" not in resp.text
    assert db_counts(app) == before and kept_files(app) == []


def test_the_write_check_refuses_what_the_sheet_check_missed(app, streets, monkeypatch):
    """Defence in depth: should the reading of the sheets let a row of another
    community through, the check on what is about to be written refuses it."""
    data = filled_template(小区=[["东风街道", "社区B", "漏网小区", "路1号", "物业X",
                                None, None, None]])
    with app.app_context():
        admin = db.session.get(User, streets.admin)
        kept = district_uploads.preview(data, "x.xlsx", admin)   # admins may: kept
        db.session.rollback()
        staff = db.session.get(User, streets.staff_a)
        key = f"imports/{kept.token}/meta.json"
        meta = storage().get(key).decode()
        storage().delete(key)
        storage().put(key, meta.replace(f'"user": {streets.admin}',
                                        f'"user": {streets.staff_a}').encode())
        monkeypatch.setattr(district_uploads, "rows_out_of_scope", lambda tables, user: [])
        before = counts()
        with pytest.raises(district_uploads.OutOfScope) as info:
            district_uploads.confirm(kept.token, staff)
        assert info.value.refusals == [district_uploads.Refusal("outside")]
        db.session.rollback()
        assert counts() == before


# --- bad files ------------------------------------------------------------------------

def _zip_bomb() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", "<workbook/>")
        z.writestr("xl/worksheets/sheet1.xml", b"\0" * (20 * 1024 * 1024))
    return out.getvalue()


def _with_formula() -> bytes:
    book = Workbook()
    ws = book.active
    ws.title = "街道社区"
    ws.append(["街道", "社区"])
    ws.append(["和平街道", "=A2&\"社区\""])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _with_macros() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(filled_template())) as src, \
            zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        dst.writestr("xl/vbaProject.bin", b"\0" * 100)
    return out.getvalue()


@pytest.mark.parametrize("make, name", [
    (lambda: b"just some text, not a workbook", "名单.xlsx"),
    (lambda: b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "photo.xlsx"),
    (lambda: filled_template(), "名单.xlsm"),
    (_with_macros, "innocent.xlsx"),
    (_zip_bomb, "bomb.xlsx"),
    (_with_formula, "formula.xlsx"),
    (lambda: b"anything", "old.xls"),
    (lambda: b"\0\0\0binary", "data.csv"),
], ids=["text", "png", "xlsm", "macros", "zip-bomb", "formula", "xls", "binary-csv"])
def test_bad_files_are_refused_with_the_message_and_nothing_written(app, world, client,
                                                                      make, name):
    data = make()
    with pytest.raises(Refused) as info:
        read(data, name)
    before = db_counts(app)
    sign_in(client, world.admin)
    resp = upload(client, data, name)
    assert resp.status_code == 422
    page = text_of(resp)
    assert "这个文件无法导入" in page and str(info.value) in page
    assert "/confirm" not in resp.text and 'name="file"' in resp.text   # upload again
    assert db_counts(app) == before and kept_files(app) == []


def test_no_file_chosen(app, world, client):
    sign_in(client, world.admin)
    resp = client.post("/district/import", content_type="multipart/form-data", data={})
    assert resp.status_code == 400 and "请选择文件" in text_of(resp)


def test_a_file_over_the_upload_limit_gets_a_clear_413(tmp_path):
    # With CSRF on, as in production: the token check reads the form and meets the limit.
    app = make_app(tmp_path, MAX_CONTENT_LENGTH=64 * 1024, WTF_CSRF_ENABLED=True)
    with app.app_context():
        w = build_world()
        before = counts()
    client = sign_in(app.test_client(), w.staff_a)
    resp = upload(client, b"PK" + b"\0" * (200 * 1024))
    assert resp.status_code == 413
    page = text_of(resp)
    assert "文件太大（最大 64 KB）" in page and 'name="file"' in resp.text
    assert db_counts(app) == before and kept_files(app) == []


def test_the_413_message_names_the_limit(tmp_path):
    app = make_app(tmp_path, MAX_CONTENT_LENGTH=2 * 1024 * 1024)
    with app.app_context():
        w = build_world()
    client = sign_in(app.test_client(), w.admin)
    resp = upload(client, b"\0" * (3 * 1024 * 1024))
    assert resp.status_code == 413
    assert "文件太大（最大 2 MB）" in text_of(resp)
