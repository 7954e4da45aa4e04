"""Photos are streamed from the store with ETag, conditional requests and ranges (send_file),
never read whole into memory, and only to who may see them."""
from __future__ import annotations

import io

from tests.conftest import sign_in
from tests.factories import jpeg_bytes


def _upload(client):
    resp = client.post("/photos", data={"photo": (io.BytesIO(jpeg_bytes()), "p.jpg")},
                       content_type="multipart/form-data")
    assert resp.status_code == 201
    return resp.get_json()["id"]


def test_etag_304_and_ranges(app, world):
    client = sign_in(app.test_client(), world.vol_a)
    photo_id = _upload(client)
    full = client.get(f"/photos/{photo_id}/full.jpg")
    assert full.status_code == 200 and full.mimetype == "image/jpeg"
    assert full.data[:2] == b"\xff\xd8"
    assert full.headers["Cache-Control"] == "private, max-age=31536000, immutable"
    etag = full.headers["ETag"]
    assert etag and full.headers.get("Accept-Ranges") == "bytes"
    again = client.get(f"/photos/{photo_id}/full.jpg", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    part = client.get(f"/photos/{photo_id}/full.jpg", headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and part.data == full.data[:10]
    assert part.headers["Content-Range"].startswith("bytes 0-9/")
    thumb = client.get(f"/photos/{photo_id}/thumb.jpg")
    assert thumb.status_code == 200 and len(thumb.data) < len(full.data)


def test_a_pending_photo_is_only_its_senders(app, world):
    client = sign_in(app.test_client(), world.vol_a)
    photo_id = _upload(client)
    other = sign_in(app.test_client(), world.vol_b)
    assert other.get(f"/photos/{photo_id}/full.jpg").status_code == 404
