"""Importing a real district from its Excel sheets: every error at once, nothing written
until there are none, and a re-import changes nothing."""
from __future__ import annotations

import csv
import io
import zipfile

import pytest
from openpyxl import Workbook, load_workbook

from patrol.extensions import db
from patrol.importer import normalise
from patrol.importer.read import Refused, read
from patrol.importer.sheets import SHEETS
from patrol.importer.template import template_bytes
from patrol.lifecycle import Role
from patrol.models import Building, Community, Company, Compound, Street, Team, User
from patrol.services import district_import
from tests.district_workbook import PLANTED, district


def _counts():
    count = lambda model, *where: db.session.scalar(  # noqa: E731
        db.select(db.func.count()).select_from(model).where(*where))
    return {"streets": count(Street), "communities": count(Community),
            "companies": count(Company), "compounds": count(Compound),
            "buildings": count(Building), "teams": count(Team),
            "volunteers": count(User, User.role == Role.VOLUNTEER.value),
            "accounts": count(User, User.role != Role.VOLUNTEER.value)}


def _plan(data, name="district.xlsx"):
    return district_import.plan(read(data, name))


# --- cleaning ------------------------------------------------------------------------

@pytest.mark.parametrize("raw, expected", [
    ("+86 138 0013 8000", "13800138000"), ("8613800138000", "13800138000"),
    ("１３８００１３８０００", "13800138000"), (13800138000.0, "13800138000"),
    ("138-0013-8000 ", "13800138000"), ("0731-55551001", "073155551001"),
    ("1380013800", None), ("电话", None), ("", None), (None, None),
])
def test_phone_numbers(raw, expected):
    assert normalise.phone(raw) == expected


def test_text_and_buildings():
    assert normalise.text("  金桂园\u3000 ") == "金桂园"
    assert normalise.text("ＡＢＣ１２３") == "ABC123"
    assert normalise.text(12.0) == "12"
    assert normalise.building_key("3号楼") == normalise.building_key("3栋") == \
        normalise.building_key("第3幢") == normalise.building_key(3) == "3"
    assert normalise.building_range("1-12栋") == [f"{n}栋" for n in range(1, 13)]
    assert normalise.building_range("1至3号楼") == ["1号楼", "2号楼", "3号楼"]
    assert normalise.building_range("3栋") is None


# --- the district of the seed: 565 compounds ----------------------------------------

def test_a_messy_district_dry_run_import_and_reimport(db_app):
    messy = district(plant_errors=True)
    assert len(messy.planted) == len(PLANTED) == 12
    with db_app.app_context():
        plan = _plan(messy.data)
        found = sorted((p.sheet, p.row, p.column) for p in plan.problems)
        assert found == sorted(messy.planted), "\n".join(map(str, plan.problems))
        assert all("第" in str(p) and "行" in str(p) for p in plan.problems)
        db.session.rollback()
        assert _counts()["compounds"] == 0          # a dry run with errors writes nothing
        with pytest.raises(ValueError):
            district_import.apply(plan)

        clean = district()
        plan = _plan(clean.data)
        assert plan.ok, plan.problems[:5]
        district_import.apply(plan)
        db.session.commit()
        assert _counts() == clean.counts
        # Same name in two streets, same compound name in two communities: both kept.
        assert db.session.scalar(db.select(db.func.count()).select_from(Compound)
                                 .where(Compound.name == "幸福小区")) == 2

        again = _plan(clean.data)
        assert again.ok and again.summary() == "新增 0 条，修改 0 条", again.changes[:5]
        db.session.rollback()
        assert _counts() == clean.counts


def test_an_edited_file_updates_what_changed_and_deletes_nothing(db_app):
    with db_app.app_context():
        small = district(compounds=12, streets=2, communities=4, companies=3, volunteers=10)
        district_import.apply(_plan(small.data))
        db.session.commit()
        book = load_workbook(io.BytesIO(small.data))
        ws = book["物业公司"]
        ws.cell(2, 2, "0731-12345678")                  # a new phone for one company
        book["小区"].delete_rows(5)                       # a compound left out of the file
        out = io.BytesIO()
        book.save(out)
        plan = _plan(out.getvalue())
        assert plan.ok and plan.new == {} and plan.changed == {"物业公司": 1}, plan.changes
        district_import.apply(plan)
        db.session.commit()
        assert _counts()["compounds"] == 12
        assert db.session.execute(db.select(Company.phone).where(
            Company.name == "第0物业服务有限公司")).scalar_one() == "073112345678"


def test_building_names_are_kept_as_given_and_matched_on_reimport(db_app):
    with db_app.app_context():
        small = district(compounds=2, streets=1, communities=1, companies=1, volunteers=1,
                         buildings_per=(3, 3))
        district_import.apply(_plan(small.data))
        db.session.commit()
        names = sorted(db.session.execute(db.select(Building.name)).scalars())
        assert "1号楼" in names and "2栋" in names
        book = load_workbook(io.BytesIO(small.data))
        ws = book["楼栋"]
        for row in ws.iter_rows(min_row=2):
            if row[2].value == "1号楼":
                row[2].value = "1栋"                     # written the other way this time
        out = io.BytesIO()
        book.save(out)
        assert _plan(out.getvalue()).summary() == "新增 0 条，修改 0 条"


# --- CSV ------------------------------------------------------------------------------

@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_csv_in_every_encoding_excel_writes(db_app, encoding):
    rows = [["街道", "社区"], ["和平街道", "和平社区"], ["建设街道 ", "建设社区"]]
    text = io.StringIO()
    csv.writer(text).writerows(rows)
    with db_app.app_context():
        plan = _plan(text.getvalue().encode(encoding), "街道社区.csv")
        assert plan.ok and plan.new == {"街道社区": 2}
        district_import.apply(plan)
        db.session.commit()
        assert sorted(db.session.execute(db.select(Street.name)).scalars()) == \
            ["和平街道", "建设街道"]


# --- bad files --------------------------------------------------------------------------

def _xlsx(fill) -> bytes:
    book = Workbook()
    ws = book.active
    ws.title = "街道社区"
    ws.append(["街道", "社区"])
    fill(ws)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@pytest.mark.parametrize("data, name, words", [
    (b"just some text, not a workbook", "a.xlsx", "不是 Excel"),
    (b"PK\x03\x04 broken zip", "a.xlsx", "损坏"),
    (b"anything", "a.xlsm", "宏"),
    (b"anything", "a.xls", ".xls"),
    (_xlsx(lambda ws: ws.append(["和平街道", "=A1&\"社区\""])), "a.xlsx", "公式"),
])
def test_bad_files_are_refused_in_chinese(data, name, words):
    with pytest.raises(Refused) as info:
        read(data, name)
    assert words in str(info.value)


def test_a_zip_bomb_is_refused_before_it_is_unpacked():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", "<workbook/>")
        z.writestr("xl/worksheets/sheet1.xml", b"\0" * (300 * 1024 * 1024))
    assert len(out.getvalue()) < 2 * 1024 * 1024
    with pytest.raises(Refused, match="过大"):
        read(out.getvalue(), "bomb.xlsx")


def test_a_workbook_with_macros_is_refused_whatever_its_name():
    data = _xlsx(lambda ws: None)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        dst.writestr("xl/vbaProject.bin", b"\0" * 100)
    with pytest.raises(Refused, match="宏"):
        read(out.getvalue(), "innocent.xlsx")


# --- the template -------------------------------------------------------------------------

def test_the_template_has_a_sheet_per_kind_with_header_example_and_notes(db_app):
    book = load_workbook(io.BytesIO(template_bytes()))
    assert book.sheetnames == ["说明", *[s.name for s in SHEETS]]
    for sheet in SHEETS:
        ws = book[sheet.name]
        assert [c.value for c in ws[1]] == list(sheet.columns)
        assert [c.value for c in ws[2]][:len(sheet.example)] == list(sheet.example)
    # The untouched template imports as nothing at all (example rows are skipped).
    with db_app.app_context():
        plan = _plan(template_bytes(), "template.xlsx")
        assert plan.ok and plan.summary() == "新增 0 条，修改 0 条"


def test_cli_dry_run_then_import(db_app, tmp_path):
    messy, clean = district(compounds=8, streets=2, communities=3, companies=2, volunteers=5,
                            plant_errors=True), \
        district(compounds=8, streets=2, communities=3, companies=2, volunteers=5)
    bad, good = tmp_path / "bad.xlsx", tmp_path / "good.xlsx"
    bad.write_bytes(messy.data)
    good.write_bytes(clean.data)
    runner = db_app.test_cli_runner()
    result = runner.invoke(args=["import", str(bad), "--dry-run"])
    assert result.exit_code == 1 and "12 处错误" in result.output
    result = runner.invoke(args=["import", str(good), "--dry-run"])
    assert result.exit_code == 0 and "试导入" in result.output
    with db_app.app_context():
        assert _counts()["compounds"] == 0
    assert runner.invoke(args=["import", str(good)]).exit_code == 0
    result = runner.invoke(args=["import", str(good)])
    assert "新增 0 条，修改 0 条" in result.output
    with db_app.app_context():
        assert _counts() == clean.counts
    # The new compounds' posters, a street at a time, in one PDF.
    with db_app.app_context():
        street = db.session.execute(db.select(Street).order_by(Street.name)).scalars().first()
        expected = sum(len(c.compounds) for c in street.communities)
    posters = tmp_path / "posters.pdf"
    result = runner.invoke(args=["posters", "--street", street.name, "-o", str(posters)])
    assert result.exit_code == 0, result.output
    assert f"{expected} poster(s)" in result.output and posters.read_bytes()[:4] == b"%PDF"
    out = tmp_path / "t.xlsx"
    assert runner.invoke(args=["import-template", "-o", str(out)]).exit_code == 0
    assert load_workbook(out).sheetnames[0] == "说明"
