"""Form definitions are data: validated at start-up and by `check-forms`, all errors at once."""
import shutil
from pathlib import Path

import pytest

from patrol.formdefs import FormDefError, check_forms, load_forms
from patrol.formdefs.submission import validate_submission
from tests.conftest import make_app, sign_in

FORMS = Path(__file__).resolve().parent.parent / "forms"

BROKEN = """
[form]
id = "Bad Id"
version = 0
title = { zh = "表" }

[[categories]]
code = "fire"
label = { zh = "火", en = "Fire" }
deadline_hours = -5

[[categories]]
code = "fire"
label = { zh = "火2", en = "Fire 2" }
deadline_hours = 24

[[fields]]
name = "category"
type = "category"
required = false
label = { zh = "类", en = "Type" }

[[fields]]
name = "color"
type = "choice"
label = { zh = "颜色", en = "Colour" }

[[fields]]
name = "size"
type = "slider"
label = { zh = "大小", en = "Size" }
"""


def test_shipped_forms_are_valid():
    forms = load_forms(FORMS)
    hazard = forms["hazard"]
    codes = {c["code"] for c in hazard.categories}
    assert {"flying_wire", "fire_exit", "flyers", "sanitation", "water_tank", "greenery",
            "lighting", "other"} <= codes
    for c in hazard.categories:
        assert c["label"]["zh"] and c["label"]["en"] and c["deadline_hours"] > 0
    assert check_forms(FORMS) == []


def test_every_error_is_reported_at_once_with_file_and_path(tmp_path):
    (tmp_path / "bad.toml").write_text(BROKEN, encoding="utf-8")
    with pytest.raises(FormDefError) as err:
        load_forms(tmp_path)
    problems = err.value.problems
    paths = {p for _, p, _ in problems}
    assert all(f.endswith("bad.toml") for f, _, _ in problems)
    assert {"form.id", "form.version", "form.title.en", "categories.0.deadline_hours",
            "fields.1.choices", "fields.2.type"} <= paths, problems
    # Cross-checks run only on schema-valid files; check them separately below.


def test_cross_checks_report_all_problems(tmp_path):
    text = (FORMS / "hazard.toml").read_text(encoding="utf-8")
    text += '\n[[categories]]\ncode = "flyers"\nlabel = { zh = "重复", en = "Dup" }\ndeadline_hours = 1\n'
    text += '\n[[fields]]\nname = "note"\ntype = "text"\nlabel = { zh = "重复", en = "Dup" }\n'
    text = text.replace('type = "category"\nrequired = true', 'type = "category"\nrequired = false')
    (tmp_path / "hazard.toml").write_text(text, encoding="utf-8")
    problems = check_forms(tmp_path)
    messages = "\n".join(f"{p}: {m}" for _, p, m in problems)
    assert "categories.8.code: duplicate 'flyers'" in messages
    assert "duplicate 'note'" in messages
    assert "category field must be required" in messages
    assert len(problems) == 3


def test_invalid_toml_and_duplicate_form_ids(tmp_path):
    (tmp_path / "a.toml").write_text("[form\n", encoding="utf-8")
    shutil.copy(FORMS / "hazard.toml", tmp_path / "b.toml")
    shutil.copy(FORMS / "hazard.toml", tmp_path / "c.toml")
    problems = check_forms(tmp_path)
    assert any(f.endswith("a.toml") and "not valid TOML" in m for f, _, m in problems)
    assert any(f.endswith("c.toml") and "also used by" in m for f, _, m in problems)


def test_check_forms_command(tmp_path, app):
    runner = app.test_cli_runner()
    ok = runner.invoke(args=["check-forms", str(FORMS)])
    assert ok.exit_code == 0 and "forms OK" in ok.output
    (tmp_path / "bad.toml").write_text(BROKEN, encoding="utf-8")
    bad = runner.invoke(args=["check-forms", str(tmp_path)])
    assert bad.exit_code == 1
    assert "bad.toml: form.id:" in bad.output and "problem(s) found" in bad.output


def test_app_refuses_to_start_with_a_broken_form(tmp_path):
    forms = tmp_path / "forms"
    forms.mkdir()
    (forms / "bad.toml").write_text(BROKEN, encoding="utf-8")
    with pytest.raises(FormDefError):
        make_app(tmp_path, FORMS_DIR=forms)


def test_adding_a_category_is_a_file_change(tmp_path):
    forms = tmp_path / "forms"
    forms.mkdir()
    text = (FORMS / "hazard.toml").read_text(encoding="utf-8")
    text += ('\n[[categories]]\ncode = "lift_dispute"\n'
             'label = { zh = "加装电梯纠纷", en = "Lift installation dispute" }\n'
             'icon = "🛗"\ndeadline_hours = 240\n')
    (forms / "hazard.toml").write_text(text, encoding="utf-8")
    app = make_app(tmp_path, FORMS_DIR=forms)
    from patrol.extensions import db
    from tests.factories import build_world, jpeg_bytes
    import io
    with app.app_context():
        w = build_world()
    client = sign_in(app.test_client(), w.vol_a)
    page = client.get(f"/compounds/{w.a1}/report").get_data(as_text=True)
    assert 'value="lift_dispute"' in page and "加装电梯纠纷" in page
    resp = client.post(f"/compounds/{w.a1}/report", content_type="multipart/form-data",
                       data={"category": "lift_dispute",
                             "photos": (io.BytesIO(jpeg_bytes()), "p.jpg")})
    assert resp.status_code == 302
    with app.app_context():
        from patrol.models import Item
        item = db.session.execute(db.select(Item)).scalar_one()
        assert (item.category, item.form_id, item.form_version) == ("lift_dispute", "hazard", 1)
        assert (item.deadline - item.created_at).total_seconds() == 240 * 3600


def test_submission_validation_against_definition():
    form = load_forms(FORMS)["hazard"]
    clean, errors = validate_submission(
        form, {"category": "flyers", "building": "7", "unit": "2", "note": "  x  "},
        building_ids={7, 8}, photo_count=1, max_photos=4)
    assert errors == {}
    assert clean["category"] == "flyers" and clean["building"] == 7 and clean["note"] == "x"
    _, errors = validate_submission(
        form, {"category": "nope", "building": "9", "unit": "x" * 11},
        building_ids={7}, photo_count=0, max_photos=4)
    assert errors == {"category": "bad_choice", "building": "bad_choice", "unit": "too_long",
                      "photos": "required_photo"}
    _, errors = validate_submission(form, {}, building_ids=set(), photo_count=5, max_photos=4)
    assert errors == {"category": "required", "photos": "too_many_photos"}
