"""Gate posters, read back the way a phone would: rasterise each PDF page at 150 dpi
with poppler's pdftoppm and decode the QR code with zxing-cpp.

Covers the three ways a poster is made (the service, the staff download, the
`patrol posters` CLI), A4 and A5, the embedded CJK font, and token rotation.
Needs poppler-utils (pdftoppm, pdffonts, pdfinfo, pdftotext) and zxing-cpp;
`make test` installs both, so a missing tool is a failure, not a skip.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from patrol.extensions import db
from patrol.models import Community, Compound
from patrol.services.posters import poster_pdf
from tests.conftest import sign_in
from tests.pdftools import (distinct_shapes, embedded_fonts, glyph_shapes, qr_texts,
                             require_poppler, run, write_pdf)


BASE_URL = "http://patrol.test"   # tests/conftest.make_app sets this
PAGE_POINTS = {"A4": (595, 842), "A5": (420, 595)}
@pytest.fixture(autouse=True)
def _poppler():
    require_poppler()


# --- reading a PDF back ---------------------------------------------------------------

def page_texts(pdf_path: Path) -> list[str]:
    """Extracted text per page (pdftotext separates pages with form feeds)."""
    text = run("pdftotext", "-enc", "UTF-8", "-layout", str(pdf_path), "-")
    pages = text.split("\f")
    return pages[:-1] if pages and not pages[-1].strip() else pages


def page_size(pdf_path: Path) -> tuple[int, int]:
    info = run("pdfinfo", str(pdf_path))
    m = re.search(r"Page size:\s+([\d.]+) x ([\d.]+) pts", info)
    assert m, info
    return round(float(m.group(1))), round(float(m.group(2)))


def check_poster(pdf: bytes, compounds: list[tuple[str, str]], size: str, tmp_path: Path,
                 name: str):
    """`compounds`: [(name, qr_token)] in page order. One page per compound, each with
    exactly one QR code pointing at that compound, the right paper size, the
    compound's name as real text, and an embedded Noto Sans CJK font."""
    path = write_pdf(pdf, tmp_path, name)
    expected = [f"{BASE_URL}/c/{token}" for _, token in compounds]
    decoded = qr_texts(path)
    assert decoded == [[url] for url in expected], (
        f"{size}: expected one QR per page {expected}, decoded {decoded}")
    assert page_size(path) == PAGE_POINTS[size]

    texts = page_texts(path)
    assert len(texts) == len(compounds)
    for text, (compound_name, token) in zip(texts, compounds, strict=True):
        flat = re.sub(r"\s+", "", text)   # long names wrap over two lines
        assert re.sub(r"\s+", "", compound_name) in flat
        assert "巡查志愿者请用手机扫码" in flat
        assert token in flat

    fonts = embedded_fonts(path)
    cjk = {font: emb for font, emb in fonts.items()
           if re.search(r"Noto.?Sans.?CJK", font, re.I)}
    assert cjk, f"no Noto Sans CJK font in the PDF: {fonts}"
    assert all(emb == "yes" for emb in cjk.values()), f"CJK font not embedded: {cjk}"
    shapes = glyph_shapes(path, "巡查志愿者请用手机扫码，查看和上报本小区隐患")
    assert len(shapes) == 21 and distinct_shapes(shapes), "Chinese drawn as empty boxes"
    return decoded


def _compounds(app, *ids) -> list[tuple[str, str]]:
    with app.app_context():
        return [(c.name, c.qr_token) for c in (db.session.get(Compound, i) for i in ids)]


# --- the service --------------------------------------------------------------------------

@pytest.mark.parametrize("size", ["A4", "A5"])
def test_service_one_page_per_compound(app, world, tmp_path, size):
    order = [world.a2, world.b1, world.a1]   # the service keeps the caller's order
    with app.app_context():
        compounds = [db.session.get(Compound, i) for i in order]
        pdf = poster_pdf(compounds, app.config["BASE_URL"], size=size)
    check_poster(pdf, _compounds(app, *order), size, tmp_path, f"service-{size}")


def test_tokens_are_distinct_and_long(app, world):
    tokens = [t for _, t in _compounds(app, world.a1, world.a2, world.b1)]
    assert len(set(tokens)) == 3
    assert all(len(t) >= 32 for t in tokens)


# --- the staff download ---------------------------------------------------------------

@pytest.mark.parametrize("size", ["A4", "A5"])
def test_staff_downloads_poster(app, world, client, tmp_path, size):
    sign_in(client, world.staff_a)
    resp = client.get(f"/admin/compounds/{world.a2}/poster.pdf?size={size}")
    assert resp.status_code == 200
    assert resp.mimetype == "application/pdf"
    assert f'filename="poster-{world.a2}.pdf"' in resp.headers["Content-Disposition"]
    check_poster(resp.data, _compounds(app, world.a2), size, tmp_path, f"web-{size}")


def test_unknown_size_falls_back_to_a4(app, world, client, tmp_path):
    sign_in(client, world.staff_a)
    resp = client.get(f"/admin/compounds/{world.a1}/poster.pdf?size=A0")
    assert resp.status_code == 200
    check_poster(resp.data, _compounds(app, world.a1), "A4", tmp_path, "web-fallback")


@pytest.mark.parametrize("who, status", [
    ("vol_a", 403),      # a volunteer of the same community
    ("mgr_x", 403),      # the manager of the compound's company
    ("com_a1", 403),     # its committee
    ("staff_b", 404),    # staff of another community: not told it exists
])
def test_poster_forbidden(world, client, who, status):
    sign_in(client, getattr(world, who))
    resp = client.get(f"/admin/compounds/{world.a1}/poster.pdf")
    assert resp.status_code == status
    assert resp.mimetype != "application/pdf"


def test_poster_needs_sign_in(world, client):
    resp = client.get(f"/admin/compounds/{world.a1}/poster.pdf")
    assert resp.status_code in (302, 401)
    assert resp.mimetype != "application/pdf"


def test_poster_unknown_compound(world, client):
    sign_in(client, world.staff_a)
    assert client.get("/admin/compounds/999999/poster.pdf").status_code == 404


# --- the CLI ------------------------------------------------------------------------------

@pytest.mark.parametrize("size", ["A4", "A5"])
def test_cli_posters_for_a_community(app, world, tmp_path, size):
    out = tmp_path / f"cli-{size}.pdf"
    result = app.test_cli_runner().invoke(
        args=["posters", "--community", "社区A", "--size", size, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "2 poster(s)" in result.output
    # Ordered by compound name; community B's compound is not included.
    check_poster(out.read_bytes(), _compounds(app, world.a1, world.a2), size, tmp_path,
                 f"cli-check-{size}")


def test_cli_default_is_a4_and_compound_option(app, world, tmp_path):
    out = tmp_path / "cli-one.pdf"
    result = app.test_cli_runner().invoke(
        args=["posters", "--compound", "小区B1", "-o", str(out)])
    assert result.exit_code == 0, result.output
    check_poster(out.read_bytes(), _compounds(app, world.b1), "A4", tmp_path, "cli-one-check")


def test_cli_no_match_is_an_error(app, world, tmp_path):
    out = tmp_path / "none.pdf"
    result = app.test_cli_runner().invoke(
        args=["posters", "--community", "没有这个社区", "-o", str(out)])
    assert result.exit_code != 0
    assert not out.exists()


# --- rotating the token ---------------------------------------------------------------

def test_rotate_changes_qr_and_kills_old_url(app, world, client, tmp_path):
    [(name, old_token)] = _compounds(app, world.a1)
    [(_, other_before)] = _compounds(app, world.a2)
    sign_in(client, world.staff_a)
    before = client.get(f"/admin/compounds/{world.a1}/poster.pdf")
    assert qr_texts(write_pdf(before.data, tmp_path, "before")) == [[f"{BASE_URL}/c/{old_token}"]]

    resp = client.post(f"/admin/compounds/{world.a1}/rotate")
    assert resp.status_code == 302

    [(_, new_token)] = _compounds(app, world.a1)
    assert new_token != old_token
    assert _compounds(app, world.a2) == [("小区A2", other_before)]   # only this compound
    after = client.get(f"/admin/compounds/{world.a1}/poster.pdf")
    decoded = check_poster(after.data, [(name, new_token)], "A4", tmp_path, "after")
    assert decoded == [[f"{BASE_URL}/c/{new_token}"]]

    # A volunteer scanning the old poster gets 404; the new one works.
    sign_in(client, world.vol_a)
    assert client.get(f"/c/{old_token}").status_code == 404
    resp = client.get(f"/c/{new_token}")
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith(f"/compounds/{world.a1}")


@pytest.mark.parametrize("who", ["vol_a", "mgr_x", "staff_b"])
def test_rotate_forbidden(app, world, client, who):
    [(_, token)] = _compounds(app, world.a1)
    sign_in(client, getattr(world, who))
    assert client.post(f"/admin/compounds/{world.a1}/rotate").status_code in (403, 404)
    assert _compounds(app, world.a1)[0][1] == token


def test_every_demo_compound_gets_a_readable_poster(app, tmp_path):
    """The seeded demo district, through the CLI, as an operator would print it."""
    from patrol.seed import seed_demo
    with app.app_context():
        seed_demo()
        community = db.session.execute(db.select(Community)).scalar_one()
        expected = [(c.name, c.qr_token) for c in sorted(community.compounds,
                                                          key=lambda c: c.name)]
        community_name = community.name
    out = tmp_path / "demo.pdf"
    result = app.test_cli_runner().invoke(
        args=["posters", "--community", community_name, "--size", "A5", "-o", str(out)])
    assert result.exit_code == 0, result.output
    check_poster(out.read_bytes(), expected, "A5", tmp_path, "demo-check")


@pytest.mark.parametrize("size", ["A4", "A5"])
def test_long_names_still_fit_one_sheet(app, world, tmp_path, size):
    """A two-line compound name and a long company name must not push the poster
    onto a second sheet."""
    from patrol.models import Company
    with app.app_context():
        compound = db.session.get(Compound, world.a1)
        compound.name = "岳塘区建设路幸福里花园小区二期东区A组团"
        db.session.get(Company, world.x).name = "湘潭市宏远物业服务有限公司岳塘分公司"
        db.session.commit()
        pdf = poster_pdf([compound], app.config["BASE_URL"], size=size)
    check_poster(pdf, _compounds(app, world.a1), size, tmp_path, f"long-{size}")
