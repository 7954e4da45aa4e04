"""The S3 backend against a real S3-compatible server over HTTP on loopback.

The server is moto in server mode, started by these tests on 127.0.0.1 (a free port):
boto3 speaks real HTTP to it, nothing of boto3 is mocked in-process. It runs in a thread
of this process, so it shares the suite's clock (tests/conftest.py): object times and the
store's Date header move with time-machine, and no test depends on the wall clock.
"""
from __future__ import annotations

import io
import urllib.error
import urllib.request
import uuid
from datetime import timedelta, timezone

import pytest
import time_machine

from patrol.extensions import db
from patrol.models import Photo, User
from patrol.services.storage import S3Storage
from tests.conftest import make_app, sign_in
from tests.factories import build_world, jpeg_bytes

KEY_ID, SECRET = "patrol-test", "patrol-test-secret"


@pytest.fixture(scope="session")
def s3_server():
    """An S3-compatible server on loopback for the whole session: its endpoint URL."""
    from moto.server import ThreadedMotoServer
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def s3_settings(endpoint: str, bucket: str, **more) -> dict:
    """Flask config keys for PATROL_STORAGE=s3 (the names settings.flask_config gives)."""
    return {"STORAGE": "s3", "S3_ENDPOINT_URL": endpoint, "S3_BUCKET": bucket,
            "S3_REGION": "us-east-1", "S3_ACCESS_KEY_ID": KEY_ID,
            "S3_SECRET_ACCESS_KEY": SECRET, "S3_ADDRESSING_STYLE": "path", **more}


@pytest.fixture
def bucket(s3_server):
    """A new, empty bucket for one test: its name."""
    name = f"patrol-{uuid.uuid4().hex[:12]}"
    raw_client(s3_server).create_bucket(Bucket=name)
    return name


def raw_client(endpoint):
    import boto3
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET)


def _utc(naive):
    return naive.replace(tzinfo=timezone.utc)


def bucket_keys(endpoint, bucket) -> set[str]:
    answer = raw_client(endpoint).list_objects_v2(Bucket=bucket)
    return {obj["Key"] for obj in answer.get("Contents", [])}


def test_put_get_exists_delete_keys_and_times(s3_server, bucket):
    store = S3Storage(bucket=bucket, prefix="patrol/", endpoint_url=s3_server,
                      access_key_id=KEY_ID, secret_access_key=SECRET, addressing_style="path")
    raw_client(s3_server).put_object(Bucket=bucket, Key="someone-else/x.jpg", Body=b"x")
    before = store.now()
    store.put("ab/abc.jpg", b"\xff\xd8full")
    store.put("ab/abc_t.jpg", b"\xff\xd8thumb")
    assert store.get("ab/abc.jpg") == b"\xff\xd8full"
    assert store.exists("ab/abc.jpg") and not store.exists("ab/nothing.jpg")
    # Under the prefix only, and listed without it.
    assert sorted(store.keys()) == ["ab/abc.jpg", "ab/abc_t.jpg"]
    assert "patrol/ab/abc.jpg" in bucket_keys(s3_server, bucket)
    head = raw_client(s3_server).head_object(Bucket=bucket, Key="patrol/ab/abc.jpg")
    assert head["ContentType"] == "image/jpeg"
    # Times are naive UTC from the store's clock; one second resolution (HTTP dates).
    written = store.modified_at("ab/abc.jpg")
    assert written.tzinfo is None
    assert before - timedelta(seconds=1) <= written <= store.now() + timedelta(seconds=1)
    with pytest.raises(FileNotFoundError):
        store.get("ab/nothing.jpg")
    with pytest.raises(FileNotFoundError):
        store.modified_at("ab/nothing.jpg")
    store.delete("ab/abc.jpg")
    store.delete("ab/abc.jpg")          # gone already: no error
    assert not store.exists("ab/abc.jpg") and list(store.keys()) == ["ab/abc_t.jpg"]
    assert store.local_path("ab/abc_t.jpg") is None
    for bad in ("../x.jpg", "/x.jpg", "a//b.jpg", ""):
        with pytest.raises(ValueError):
            store.put(bad, b"x")


def test_a_rewrite_of_the_same_key_is_fresh_again(s3_server, bucket):
    """Content-addressed: the same photo uploaded again writes the same bytes and moves
    Last-Modified on, so the orphan sweep sees a file in use again as new."""
    store = S3Storage(bucket=bucket, endpoint_url=s3_server, access_key_id=KEY_ID,
                      secret_access_key=SECRET, addressing_style="path")
    store.put("cd/cde.jpg", b"same")
    first = store.modified_at("cd/cde.jpg")
    with time_machine.travel(_utc(store.now()) + timedelta(hours=1), tick=True):
        store.put("cd/cde.jpg", b"same")
        assert store.modified_at("cd/cde.jpg") >= first + timedelta(hours=1)


@pytest.fixture
def s3_app(tmp_path, s3_server, bucket):
    app = make_app(tmp_path, **s3_settings(s3_server, bucket))
    with app.app_context():
        w = build_world()
    yield app, w, s3_server, bucket
    with app.app_context():
        db.engine.dispose()


def _report(client, w, data: bytes):
    return client.post(f"/compounds/{w.a1}/report", content_type="multipart/form-data",
                       data={"category": "flyers", "photos": (io.BytesIO(data), "p.jpg")})


def _only_photo(app) -> Photo:
    with app.app_context():
        photo = db.session.execute(db.select(Photo)).scalar_one()
        db.session.expunge(photo)
        return photo


def test_a_report_stores_its_photo_in_the_bucket_and_the_app_serves_it(s3_app, tmp_path):
    app, w, endpoint, bucket = s3_app
    client = sign_in(app.test_client(), w.vol_a)
    assert _report(client, w, jpeg_bytes()).status_code == 302
    photo = _only_photo(app)
    assert photo.item_id is not None
    assert bucket_keys(endpoint, bucket) == {photo.key, photo.thumb_key}
    photo_dir = tmp_path / "photos"
    assert not photo_dir.exists() or not any(p.is_file() for p in photo_dir.rglob("*"))
    stored = raw_client(endpoint).get_object(Bucket=bucket, Key=photo.key)["Body"].read()
    full = client.get(f"/photos/{photo.id}/full.jpg")
    assert full.status_code == 200 and full.mimetype == "image/jpeg"
    assert full.data == stored and stored[:2] == b"\xff\xd8"
    assert full.headers["Cache-Control"] == "private, max-age=31536000, immutable"
    again = client.get(f"/photos/{photo.id}/full.jpg", headers={"If-None-Match": full.headers["ETag"]})
    assert again.status_code == 304
    thumb = client.get(f"/photos/{photo.id}/thumb.jpg")
    assert thumb.status_code == 200 and len(thumb.data) < len(full.data)
    # Someone who may not see the item gets nothing.
    other = sign_in(app.test_client(), w.vol_b)
    assert other.get(f"/photos/{photo.id}/full.jpg").status_code == 404


def test_presigned_links_only_after_the_permission_check(tmp_path, s3_server, bucket):
    app = make_app(tmp_path, **s3_settings(s3_server, bucket, PHOTO_URLS="presigned",
                                           PRESIGN_SECONDS=120))
    with app.app_context():
        w = build_world()
    client = sign_in(app.test_client(), w.vol_a)
    assert _report(client, w, jpeg_bytes(color=(10, 200, 30))).status_code == 302
    photo = _only_photo(app)
    resp = client.get(f"/photos/{photo.id}/full.jpg")
    assert resp.status_code == 302
    link = resp.headers["Location"]
    assert link.startswith(f"{s3_server}/{bucket}/{photo.key}?")
    assert "X-Amz-Signature=" in link and "X-Amz-Expires=120" in link
    assert resp.headers["Cache-Control"] == "private, max-age=60"
    # Pages let images come from the store, and only from it besides the app.
    csp = client.get(f"/compounds/{w.a1}").headers["Content-Security-Policy"]
    assert f"img-src 'self' {s3_server} blob: data:;" in csp
    # Thumbnails stay with the app: small, and kept by phones for offline pages.
    thumb = client.get(f"/photos/{photo.id}/thumb.jpg")
    assert thumb.status_code == 200 and thumb.mimetype == "image/jpeg"
    # The link works over HTTP, without credentials, and gives the stored bytes.
    with urllib.request.urlopen(link, timeout=10) as answer:
        body, kind = answer.read(), answer.headers["Content-Type"]
    assert kind == "image/jpeg"
    assert body == raw_client(s3_server).get_object(Bucket=bucket, Key=photo.key)["Body"].read()
    # The object is private: without the signature the store refuses.
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(link.split("?")[0] + "?x=1", timeout=10)
    # Not allowed: a 404 from the app, and no link anywhere in the answer.
    for who in (w.vol_b, w.mgr_y, w.staff_b):
        refused = sign_in(app.test_client(), who).get(f"/photos/{photo.id}/full.jpg")
        assert refused.status_code in (403, 404)
        assert "Location" not in refused.headers and b"X-Amz" not in refused.data
    anonymous = app.test_client().get(f"/photos/{photo.id}/full.jpg")
    assert anonymous.status_code in (302, 401)
    assert s3_server not in anonymous.headers.get("Location", "")
    with app.app_context():
        db.engine.dispose()


def test_presigned_setting_with_a_local_folder_is_served_by_the_app(tmp_path):
    app = make_app(tmp_path, PHOTO_URLS="presigned")
    with app.app_context():
        w = build_world()
    client = sign_in(app.test_client(), w.vol_a)
    assert _report(client, w, jpeg_bytes()).status_code == 302
    photo = _only_photo(app)
    assert client.get(f"/photos/{photo.id}/full.jpg").status_code == 200
    assert "img-src 'self' blob: data:;" in client.get(f"/compounds/{w.a1}").headers[
        "Content-Security-Policy"]


def test_orphans_are_found_and_removed_on_s3(s3_app):
    """`patrol photos-orphans` goes through the storage interface: on S3 as on disk."""
    app, w, endpoint, bucket = s3_app
    client = sign_in(app.test_client(), w.vol_a)
    assert _report(client, w, jpeg_bytes()).status_code == 302
    with app.app_context():
        from patrol.services.photo_store import save_upload, storage
        save_upload(jpeg_bytes(color=(1, 2, 3)), uploader=db.session.get(User, w.vol_a),
                    kind="before")
        db.session.rollback()      # the "crash": objects written, row never committed
        store_now = storage().now()
    kept = _only_photo(app)
    assert len(bucket_keys(endpoint, bucket)) == 4
    runner = app.test_cli_runner()
    fresh = runner.invoke(args=["photos-orphans", "--fix"])   # young: maybe a write under way
    assert fresh.exit_code == 0 and "file without row" not in fresh.output
    assert len(bucket_keys(endpoint, bucket)) == 4
    # An hour on, by the store's clock (the server shares this process's clock).
    with time_machine.travel(_utc(store_now) + timedelta(hours=1), tick=True):
        report = runner.invoke(args=["photos-orphans"])
        assert report.exit_code == 1 and report.output.count("file without row") == 2
        fixed = runner.invoke(args=["photos-orphans", "--fix"])
        assert fixed.exit_code == 0, fixed.output
        assert bucket_keys(endpoint, bucket) == {kept.key, kept.thumb_key}
        assert runner.invoke(args=["photos-orphans"]).exit_code == 0
        raw_client(endpoint).delete_object(Bucket=bucket, Key=kept.thumb_key)
        report = runner.invoke(args=["photos-orphans"])
        assert report.exit_code == 1 and f"row {kept.id} without file" in report.output
