"""Operations baseline: health checks, request ids in logs, HSTS over HTTPS only."""
from __future__ import annotations

import logging

from tests.conftest import make_app


def test_healthz_and_readyz(app, client):
    assert client.get("/healthz").get_json() == {"ok": True}
    resp = client.get("/readyz")
    assert resp.status_code == 200
    assert resp.get_json() == {"ok": True, "checks": {"database": "ok", "photos": "ok",
                                                      "queue": "ok"}}


def test_readyz_fails_when_the_photo_store_cannot_be_written(tmp_path):
    app = make_app(tmp_path)
    photos = tmp_path / "photos"
    photos.mkdir(exist_ok=True)
    photos.chmod(0o500)
    try:
        import os
        if os.access(photos, os.W_OK):   # root ignores permissions: use a file instead
            photos.chmod(0o700)
            (tmp_path / "not-a-dir").write_text("x")
            app.config["PHOTO_DIR"] = str(tmp_path / "not-a-dir")
            app.extensions.pop("patrol.storage", None)
        resp = app.test_client().get("/readyz")
    finally:
        photos.chmod(0o700)
    assert resp.status_code == 503
    body = resp.get_json()
    assert body["ok"] is False and body["checks"]["database"] == "ok"
    assert body["checks"]["photos"].startswith("failed")


def test_readyz_fails_when_the_database_is_gone(tmp_path):
    from patrol.extensions import db
    app = make_app(tmp_path)
    with app.app_context():
        db.engine.dispose()
    (tmp_path / "test.db").unlink()
    (tmp_path / "test.db").mkdir()   # where the database was, something that is not one
    resp = app.test_client().get("/readyz")
    assert resp.status_code == 503 and resp.get_json()["checks"]["database"].startswith("failed")


def test_each_request_is_logged_once_with_its_request_id(app, client, caplog):
    with caplog.at_level(logging.INFO, logger="patrol.requests"):
        resp = client.get("/login", headers={"X-Request-ID": "probe-1234abcd"})
        other = client.get("/login", headers={"X-Request-ID": "bad id with spaces"})
    assert resp.headers["X-Request-ID"] == "probe-1234abcd"
    made = other.headers["X-Request-ID"]
    assert made and made != "bad id with spaces" and len(made) == 32
    lines = [r for r in caplog.records if r.name == "patrol.requests"]
    assert [r.request_id for r in lines] == ["probe-1234abcd", made]
    assert "GET /login 200" in lines[0].getMessage()


def test_hsts_only_over_https(app, client):
    assert "Strict-Transport-Security" not in client.get("/login").headers
    secure = client.get("/login", base_url="https://patrol.invalid")
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=")
    app.config["HSTS"] = False
    assert "Strict-Transport-Security" not in client.get("/login", base_url="https://patrol.invalid").headers
