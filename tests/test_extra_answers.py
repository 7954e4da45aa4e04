"""Extra answers (form fields stored in `answers`) are shown on the item page and in the
weekly list, escaped, under the labels of the form version the item was made with."""
from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from patrol.extensions import db
from patrol.models import Compound, Item, User, utcnow
from patrol.services import items as svc
from patrol.services import weekly
from patrol.services.photo_store import save_upload
from tests.conftest import make_app, sign_in
from tests.factories import build_world, jpeg_bytes
from tests.pdftools import require_poppler, run, write_pdf

FORMS = Path(__file__).resolve().parent.parent / "forms"
CHOICE = """
[[fields]]
name = "where_charged"
type = "choice"
label = {{ zh = "{label}", en = "{label_en}" }}
choices = [{{ value = "corridor", label = {{ zh = "{corridor}", en = "Corridor" }} }}]

[[fields]]
name = "remark"
type = "text"
max_length = 100
label = {{ zh = "补充", en = "Remark" }}
"""


@pytest.fixture
def app(tmp_path):
    """hazard.v1.toml (kept) and hazard.toml, version 2, which renames the labels."""
    forms = tmp_path / "forms"
    forms.mkdir()
    hazard = (FORMS / "hazard.toml").read_text(encoding="utf-8")
    (forms / "hazard.v1.toml").write_text(hazard + CHOICE.format(
        label="充电位置", label_en="Charged where", corridor="楼道"), encoding="utf-8")
    (forms / "hazard.toml").write_text(hazard.replace("version = 1", "version = 2") +
                                       CHOICE.format(label="充电地点", label_en="Charging spot",
                                                     corridor="楼道内"), encoding="utf-8")
    app = make_app(tmp_path, FORMS_DIR=forms)
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def items(app):
    """One item per form version, each with a choice and a hostile remark."""
    with app.app_context():
        w = build_world()
        forms = app.extensions["patrol.forms"]
        vol, compound = db.session.get(User, w.vol_a), db.session.get(Compound, w.a1)
        made = {}
        for version in (1, 2):
            made[version] = svc.report(
                form=forms.version("hazard", version), compound=compound, reporter=vol,
                now=utcnow(), client_uuid=str(uuid.uuid4()),
                clean={"category": "flying_wire", "extra": {
                    "where_charged": "corridor", "remark": "<script>alert(1)</script>"}},
                photos=[save_upload(jpeg_bytes(), uploader=vol, kind="before")]).id
        db.session.commit()
        return w, made


def facts(html: str) -> str:
    return re.search(r'<dl class="facts">(.*?)</dl>', html, re.S).group(1)


def test_the_item_page_shows_answers_with_the_items_version_labels(app, items):
    w, made = items
    staff = sign_in(app.test_client(), w.staff_a)
    old = facts(staff.get(f"/items/{made[1]}").get_data(as_text=True))
    new = facts(staff.get(f"/items/{made[2]}").get_data(as_text=True))
    assert '<dt>充电位置</dt><dd class="answer">楼道</dd>' in old
    assert '<dt>充电地点</dt><dd class="answer">楼道内</dd>' in new
    assert "充电地点" not in old and "充电位置" not in new
    for page in (old, new):
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>" not in page
    with app.app_context():
        assert db.session.get(Item, made[1]).form_version == 1


def test_a_report_through_the_page_keeps_its_answers(app, items):
    w, _ = items
    phone = sign_in(app.test_client(), w.vol_a)
    import io
    resp = phone.post(f"/compounds/{w.a1}/report", headers={"X-Patrol-Sync": "1"},
                      content_type="multipart/form-data",
                      data={"category": "flyers", "where_charged": "corridor", "remark": "三辆",
                            "client_uuid": str(uuid.uuid4()),
                            "photos": (io.BytesIO(jpeg_bytes()), "p.jpg")})
    assert resp.status_code == 201
    with app.app_context():
        item = db.session.execute(db.select(Item).order_by(Item.id.desc())).scalars().first()
        assert (item.form_version, item.answers) == (2, {"where_charged": "corridor",
                                                         "remark": "三辆"})


def test_the_weekly_list_shows_answers_escaped(app, items, tmp_path):
    w, made = items
    with app.app_context(), weekly.rendering_locale("zh"):
        week = weekly.Week.containing(utcnow(), app.config["TIMEZONE"])
        report = weekly.build("compound", db.session.get(Compound, w.a1), week, now=utcnow(),
                              tz=app.config["TIMEZONE"], form=app.extensions["patrol.forms"]["hazard"])
        _, names = weekly.resources_for(report, "http://patrol.test")
        from flask import render_template
        html = render_template("pdf/weekly.html", **weekly._context(
            report, "http://patrol.test", app.config["TIMEZONE"], names))
    assert '<span class="answer">充电位置：楼道</span>' in html
    assert '<span class="answer">充电地点：楼道内</span>' in html
    assert "补充：&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html

    require_poppler()
    staff = sign_in(app.test_client(), w.staff_a)
    pdf = staff.get(f"/reports/weekly.pdf?scope=compound&id={w.a1}&week={week}")
    assert pdf.status_code == 200
    text = re.sub(r"\s+", "", run("pdftotext", "-enc", "UTF-8",
                                  str(write_pdf(pdf.data, tmp_path, "weekly")), "-"))
    assert "充电位置：楼道" in text and "充电地点：楼道内" in text
    assert "补充：<script>alert(1)</script>" in text   # printed as text, not run
