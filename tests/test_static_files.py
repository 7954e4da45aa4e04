"""Static files: versioned URLs kept a year (a returning phone asks for nothing), compressed
once; unversioned ones revalidated."""
import brotli
import pytest
from flask import url_for

from patrol.extensions import compress
from patrol.web import static_files

PHONE = "br, gzip"


@pytest.fixture
def phone(app):
    return app.test_client()


def _url(app, filename):
    with app.test_request_context():
        return url_for("static", filename=filename)


def test_pages_link_static_files_by_version(app, phone):
    url = _url(app, "js/app.js")
    assert url.startswith("/static/js/app.js?v=") and len(url.split("v=")[1]) == 12
    page = phone.get("/login").get_data(as_text=True)
    assert url in page
    assert 'href="/static/css/app.css?v=' in page


def test_a_versioned_file_is_kept_a_year_and_compressed_once(app, phone):
    url = _url(app, "js/app.js")
    with open(app.static_folder + "/js/app.js", "rb") as f:
        plain = f.read()
    first = phone.get(url, headers={"Accept-Encoding": PHONE})
    assert first.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert first.headers["Content-Encoding"] == "br"
    assert brotli.decompress(first.get_data()) == plain
    cache = compress.cache
    key = "br;" + url
    assert cache.get(key) == first.get_data()
    # Served from the kept copy: change it, and the next answer is the kept bytes.
    cache.set(key, brotli.compress(b"kept"))
    again = phone.get(url, headers={"Accept-Encoding": PHONE})
    assert brotli.decompress(again.get_data()) == b"kept"


def test_unversioned_or_stale_versions_are_revalidated_and_pages_never_kept(app, phone):
    plain = phone.get("/static/js/app.js")
    assert plain.headers["Cache-Control"] == "no-cache" and plain.headers.get("ETag")
    stale = phone.get("/static/js/app.js?v=000000000000")
    assert stale.headers["Cache-Control"] == "no-cache"
    phone.get("/login", headers={"Accept-Encoding": PHONE})
    cache = compress.cache
    assert not [k for k in cache._data if "/static/" not in k]


def test_a_changed_file_gets_a_new_url(app, tmp_path):
    app.static_folder = str(tmp_path)
    (tmp_path / "x.css").write_text("a{}")
    first = _url(app, "x.css")
    (tmp_path / "x.css").write_text("b{color:red}")
    assert _url(app, "x.css") != first
    assert static_files._digest(app, "../etc/passwd") is None
