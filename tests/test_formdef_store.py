"""Form definitions in step with the database: where each field is stored is part of the
definition (`store`), the loader checks each field's limits against the column it fills
(lengths read from the model), and older versions of a form stay loadable."""
from __future__ import annotations

import io
import uuid
from pathlib import Path

import pytest

from patrol.extensions import db
from patrol.formdefs import FormDefError, check_forms, load_forms
from patrol.formdefs.store import column_lengths
from patrol.formdefs.submission import validate_submission
from patrol.models import Item
from tests.conftest import sign_in
from tests.factories import build_world, jpeg_bytes

FORMS = Path(__file__).resolve().parent.parent / "forms"
HAZARD = (FORMS / "hazard.toml").read_text(encoding="utf-8")


def _field(name, type_="text", **keys):
    extra = "".join(f"{k} = {v}\n" for k, v in keys.items())
    return (f'\n[[fields]]\nname = "{name}"\ntype = "{type_}"\n{extra}'
            f'label = {{ zh = "{name}", en = "{name}" }}\n')


def _problems(tmp_path, text):
    (tmp_path / "hazard.toml").write_text(text, encoding="utf-8")
    return [(p, m) for _, p, m in check_forms(tmp_path)]


def test_lengths_come_from_the_model():
    assert column_lengths() == {"unit": Item.__table__.c.unit.type.length,
                                "floor": Item.__table__.c.floor.type.length, "note": None}
    assert column_lengths()["floor"] == 20


def test_a_limit_longer_than_its_column_is_refused(tmp_path):
    text = HAZARD.replace('max_length = 10\nstore = "column:floor"',
                          'max_length = 5000\nstore = "column:floor"')
    assert _problems(tmp_path, text) == [
        ("fields.4.max_length", "5000 is more than column 'floor' holds (20 characters)")]
    text = HAZARD.replace('max_length = 10\nstore = "column:unit"', 'store = "column:unit"')
    assert _problems(tmp_path, text) == [
        ("fields.3.max_length", "needed: column 'unit' holds at most 20 characters")]
    # note is unlimited text: any limit the schema allows fits
    assert _problems(tmp_path, HAZARD.replace("max_length = 500", "max_length = 5000")) == []


def test_every_store_problem_is_listed(tmp_path):
    text = HAZARD.replace('name = "category"\ntype = "category"\n',
                          'name = "category"\ntype = "category"\nstore = "column:category"\n')
    text += _field("bikes", "integer", store='"column:note"')
    text += _field("storey", max_length=5, store='"column:floor"')
    text += _field("colour", store='"column:status"')
    assert _problems(tmp_path, text) == [
        ("fields.1.store", "a category field is stored by its type; remove 'store'"),
        ("fields.6.store", "only text and textarea fields may be stored in a column; store "
                           "this integer field in \"answers\""),
        ("fields.6.store", "column 'note' is also filled by fields.5"),
        ("fields.7.store", "column 'floor' is also filled by fields.4"),
        ("fields.8.store", "'status' is not an item column a form may fill (one of: unit, "
                           "floor, note)"),
    ]
    # A value that is neither form is refused by the schema, with the file and path.
    assert _problems(tmp_path, HAZARD + _field("size", store='"somewhere"')) == [
        ("fields.6.store", 'must be "answers" or "column:<name>", e.g. "column:floor"')]


def test_the_store_key_decides_where_an_answer_goes(tmp_path):
    """A field is followed from the file to its column by its `store`, not its name."""
    text = HAZARD.replace('name = "floor"', 'name = "storey"')
    text += _field("floor", max_length=10)          # an extra answer called "floor"
    (tmp_path / "hazard.toml").write_text(text, encoding="utf-8")
    form = load_forms(tmp_path)["hazard"]
    clean, errors = validate_submission(
        form, {"category": "flyers", "storey": "5楼", "floor": "顶层", "unit": "2"},
        building_ids=set(), photo_count=1, max_photos=4)
    assert errors == {}
    assert (clean["floor"], clean["unit"], clean["extra"]) == ("5楼", "2", {"floor": "顶层"})


def test_older_versions_stay_loadable(tmp_path):
    (tmp_path / "hazard.v1.toml").write_text(HAZARD, encoding="utf-8")
    v2 = HAZARD.replace("version = 1", "version = 2").replace(
        'label = { zh = "简要说明", en = "Short note" }', 'label = { zh = "情况描述", en = "What you saw" }')
    (tmp_path / "hazard.toml").write_text(v2, encoding="utf-8")
    forms = load_forms(tmp_path)
    assert forms["hazard"].version == 2 and forms.get("hazard").version == 2
    assert forms.version("hazard", 1).field("note")["label"]["en"] == "Short note"
    assert forms.version("hazard", 2).field("note")["label"]["en"] == "What you saw"
    assert forms.version("hazard", 7).version == 2          # unknown: the current one
    assert forms.version("gone", 1) is None
    # The same id and version twice is still an error.
    (tmp_path / "hazard.copy.toml").write_text(v2, encoding="utf-8")
    with pytest.raises(FormDefError) as err:
        load_forms(tmp_path)
    assert any("version 2 is also used by" in m for _, _, m in err.value.problems)


def test_answer_rows_use_the_versions_labels():
    text = HAZARD + _field("bikes", "integer") + (
        '\n[[fields]]\nname = "where_charged"\ntype = "choice"\n'
        'label = { zh = "充电位置", en = "Charged where" }\n'
        'choices = [{ value = "corridor", label = { zh = "楼道", en = "Corridor" } }]\n')
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        Path(d, "hazard.toml").write_text(text, encoding="utf-8")
        form = load_forms(Path(d))["hazard"]
    answers = {"where_charged": "corridor", "bikes": 3, "retired": "<b>x</b>", "empty": ""}
    assert form.answer_rows(answers, "zh") == [("bikes", "3"), ("充电位置", "楼道"),
                                               ("retired", "<b>x</b>")]
    assert form.answer_rows(answers, "en")[1] == ("Charged where", "Corridor")
    assert form.answer_rows(None, "zh") == []


def test_a_full_length_answer_fits_its_column_on_every_engine(db_app, tmp_path):
    """The form allows exactly what the column holds; PostgreSQL, which enforces
    VARCHAR(20), stores the longest floor the form accepts."""
    forms = tmp_path / "forms"
    forms.mkdir()
    (forms / "hazard.toml").write_text(HAZARD.replace(
        'max_length = 10\nstore = "column:floor"', 'max_length = 20\nstore = "column:floor"'),
        encoding="utf-8")
    db_app.extensions["patrol.forms"] = load_forms(forms)
    with db_app.app_context():
        w = build_world()
    client = sign_in(db_app.test_client(), w.vol_a)
    floor = "地下二层自行车棚东侧第三排靠墙"[:20].ljust(20, "层")
    data = {"category": "flyers", "floor": floor, "client_uuid": str(uuid.uuid4()),
            "photos": (io.BytesIO(jpeg_bytes()), "p.jpg")}
    resp = client.post(f"/compounds/{w.a1}/report", data=data, headers={"X-Patrol-Sync": "1"},
                       content_type="multipart/form-data")
    assert resp.status_code == 201, resp.get_json()
    too_long = dict(data, floor=floor + "楼", client_uuid=str(uuid.uuid4()),
                    photos=(io.BytesIO(jpeg_bytes()), "p.jpg"))
    refused = client.post(f"/compounds/{w.a1}/report", data=too_long,
                          headers={"X-Patrol-Sync": "1"}, content_type="multipart/form-data")
    assert refused.status_code == 422 and refused.get_json()["errors"]["floor"]
    with db_app.app_context():
        assert db.session.execute(db.select(Item.floor)).scalars().all() == [floor]
