"""Photo intake: upright, no EXIF, only real images, no bombs, no 5xx."""
import io
import os
import random
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageFile

from patrol.extensions import db
from patrol.models import Item, Photo
from patrol.services import photos as pipeline
from tests.conftest import make_app, sign_in
from tests.factories import build_world, jpeg_bytes

QUADRANTS = {"tl": (255, 0, 0), "tr": (0, 255, 0), "bl": (0, 0, 255), "br": (255, 255, 255)}
# The transform that undoes each EXIF orientation's display transform.
TO_RAW = {1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
          4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
          6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE,
          8: Image.Transpose.ROTATE_270}


def upright(w, h):
    im = Image.new("RGB", (w, h))
    for (x0, y0), key in (((0, 0), "tl"), ((w // 2, 0), "tr"), ((0, h // 2), "bl"),
                          ((w // 2, h // 2), "br")):
        im.paste(QUADRANTS[key], (x0, y0, x0 + w // 2, y0 + h // 2))
    return im


def with_orientation(w, h, orientation, **extra_exif) -> bytes:
    raw = upright(w, h)
    if TO_RAW[orientation] is not None:
        raw = raw.transpose(TO_RAW[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "PhoneMaker"      # Make
    exif[0xA431] = "SERIAL-12345"    # BodySerialNumber
    for tag, value in extra_exif.items():
        exif[int(tag)] = value
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", (27.0, 51.0, 25.0), "E", (112.0, 57.0, 3.0)
    exif.get_ifd(0x8769)[0x9003] = "2026:11:20 09:30:00"
    out = io.BytesIO()
    raw.save(out, "JPEG", quality=92, exif=exif)
    return out.getvalue()


def assert_upright(im):
    w, h = im.size
    assert w > h, "landscape stays landscape"
    probes = {"tl": (w // 4, h // 4), "tr": (3 * w // 4, h // 4), "bl": (w // 4, 3 * h // 4),
              "br": (3 * w // 4, 3 * h // 4)}
    for key, xy in probes.items():
        got = im.convert("RGB").getpixel(xy)
        assert all(abs(a - b) < 40 for a, b in zip(got, QUADRANTS[key], strict=True)), (key, got)


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("size", [(400, 300), (1600, 1200), (3200, 2400)],
                         ids=["small", "phone", "draft"])
def test_every_exif_orientation_comes_out_upright(orientation, size):
    data = with_orientation(*size, orientation)
    done = pipeline.process(data, max_bytes=50 * 2**20)
    full = Image.open(io.BytesIO(done.full))
    assert_upright(full)
    assert max(full.size) == min(max(size), pipeline.LONG_EDGE)
    thumb = Image.open(io.BytesIO(done.thumb))
    assert max(thumb.size) == pipeline.THUMB_EDGE
    assert_upright(thumb)


def test_no_exif_survives_and_time_is_kept_as_data():
    done = pipeline.process(with_orientation(400, 300, 6), max_bytes=2**24)
    for blob in (done.full, done.thumb):
        im = Image.open(io.BytesIO(blob))
        assert len(im.getexif()) == 0
        assert b"Exif" not in blob and b"SERIAL-12345" not in blob and b"PhoneMaker" not in blob
    # 09:30 in Asia/Shanghai is 01:30 UTC
    assert done.taken_at.isoformat() == "2026-11-20T01:30:00"


def _segments(blob: bytes) -> list[tuple[int, bytes]]:
    """A JPEG's marker segments up to the scan: (marker, body)."""
    assert blob[:2] == b"\xff\xd8"
    pos, found = 2, []
    while True:
        marker, length = blob[pos + 1], struct.unpack(">H", blob[pos + 2:pos + 4])[0]
        found.append((marker, blob[pos + 4:pos + 2 + length]))
        if marker == 0xDA:   # start of scan: entropy-coded data follows
            return found
        pos += 2 + length


def _reference_tables(quality: int):
    """The quantisation tables our encoder writes at `quality` (4:2:0)."""
    out = io.BytesIO()
    Image.new("RGB", (64, 64)).save(out, "JPEG", quality=quality)
    return Image.open(out).quantization


def _scene(w=1600, h=1200, grain=0.12, seed=15) -> Image.Image:
    """Edges, flat areas and sensor-like grain, as a phone's photo of a street."""
    from PIL import ImageDraw, ImageFilter
    rnd = random.Random(seed)
    im = Image.merge("RGB", [Image.linear_gradient("L").resize((w, h)),
                             Image.radial_gradient("L").resize((w, h)),
                             Image.linear_gradient("L").rotate(90).resize((w, h))])
    draw = ImageDraw.Draw(im)
    for _ in range(60):
        x, y = rnd.randrange(w), rnd.randrange(h)
        box = (x, y, x + rnd.randrange(w // 20, w // 3), y + rnd.randrange(h // 20, h // 3))
        draw.rectangle(box, fill=tuple(rnd.randrange(256) for _ in range(3)))
    im = im.filter(ImageFilter.GaussianBlur(1.2))
    noise = Image.merge("RGB", [Image.effect_noise((w, h), 64) for _ in range(3)])
    return Image.blend(im, noise, grain)


def _psnr(a: Image.Image, b: Image.Image) -> float:
    import math

    from PIL import ImageChops, ImageStat
    mse = sum(ImageStat.Stat(ImageChops.difference(a, b).point(lambda v: v * v)).mean) / 3
    return 10 * math.log10(255 ** 2 / mse) if mse else 99.0


def test_stored_files_are_fresh_baseline_jpegs_with_nothing_of_the_source_but_pixels():
    """Re-encoded by us (our quantisation tables, not the phone's), baseline (no
    progressive pass), and no marker the source had: no EXIF, XMP or comment."""
    exif = Image.Exif()
    exif[0x0112] = 1
    exif[0xA431] = "SERIAL-12345"
    src = io.BytesIO()
    _scene(1600, 1200, seed=1).save(src, "JPEG", quality=80, exif=exif,
                                    comment=b"owner Zhang, 27.85N 112.95E",
                                    xmp=b"<x:xmpmeta>GPSLatitude 27.85</x:xmpmeta>")
    done = pipeline.process(src.getvalue(), max_bytes=2**24)
    for blob, quality in ((done.full, 82), (done.thumb, 72)):
        markers = [m for m, _ in _segments(blob)]
        assert set(markers) <= {0xE0, 0xDB, 0xC0, 0xC4, 0xDA}, [hex(m) for m in markers]
        assert 0xC0 in markers and 0xC2 not in markers     # baseline, not progressive
        assert Image.open(io.BytesIO(blob)).quantization == _reference_tables(quality)
        for secret in (b"Zhang", b"27.85", b"SERIAL", b"Exif", b"xmpmeta"):
            assert secret not in blob


def test_a_png_with_a_long_comment_is_stored_without_it():
    from PIL import PngImagePlugin
    text = PngImagePlugin.PngInfo()
    text.add_text("comment", "where and who " * 6000)   # over a JPEG marker's 64 KB
    src = io.BytesIO()
    upright(400, 300).save(src, "PNG", pnginfo=text)
    done = pipeline.process(src.getvalue(), max_bytes=2**24)
    assert b"where and who" not in done.full + done.thumb


def test_the_upload_is_decoded_once(monkeypatch):
    """The thumbnail is made from the decoded (and resized) image, not a second decode."""
    opened = []
    real_open = Image.open
    monkeypatch.setattr(pipeline.Image, "open", lambda *a, **k: opened.append(1) or real_open(*a, **k))
    for size in ((1600, 1200), (3200, 2400)):
        opened.clear()
        pipeline.process(with_orientation(*size, 6), max_bytes=2**24)
        assert len(opened) == 1


@pytest.mark.parametrize("size", [(1600, 1200), (1600, 1067), (1067, 1600), (1600, 400),
                                  (1600, 3), (640, 480), (320, 240), (200, 100)])
def test_thumbnail_fits_the_bound_and_keeps_the_shape(size):
    src = io.BytesIO()
    upright(*size).save(src, "PNG")
    done = pipeline.process(src.getvalue(), max_bytes=2**24)
    full, thumb = (Image.open(io.BytesIO(b)) for b in (done.full, done.thumb))
    assert full.size == size                      # nothing here is over the long edge
    assert max(thumb.size) == min(max(size), pipeline.THUMB_EDGE)
    assert min(thumb.size) >= 1
    scale = max(thumb.size) / max(size)
    for got, want in zip(thumb.size, size, strict=True):
        assert abs(got - want * scale) <= 1


# (grain, bytes per pixel as sent, how much larger than the former settings' file it may be)
SIZE_BOUNDS = {"smooth": (0.0, 0.04, 1.05), "noisy": (0.12, 0.13, 1.05), "dense": (0.3, 0.29, 1.12)}


@pytest.mark.parametrize("kind", sorted(SIZE_BOUNDS))
def test_size_and_quality_against_the_former_encoder_settings(kind):
    """A 1600 px photo as the phone sends it, against the former settings (optimize and
    progressive, which cost twice the CPU): the same quality (the same quantisation: the
    pixels differ only by rounding), a thumbnail no worse, and a stored file at most 5%
    larger (measured 0-3%), or 12% for a dense upload (over photos.OPTIMIZE_UP_TO bytes
    a pixel), which skips Huffman optimisation: there it saved 3-7% for up to 25 ms."""
    grain, density, bound = SIZE_BOUNDS[kind]
    scene = _scene(grain=grain)
    src = io.BytesIO()
    scene.save(src, "JPEG", quality=80)
    sent = Image.open(io.BytesIO(src.getvalue())).convert("RGB")
    assert len(src.getvalue()) / (1600 * 1200) == pytest.approx(density, abs=0.01)
    done = pipeline.process(src.getvalue(), max_bytes=2**24)

    def former(im, quality):
        out = io.BytesIO()
        im.save(out, "JPEG", quality=quality, optimize=True, progressive=True)
        return out.getvalue()

    was_full = former(sent, 82)
    full = Image.open(io.BytesIO(done.full)).convert("RGB")
    assert len(done.full) <= bound * len(was_full)
    assert _psnr(full, sent) >= _psnr(Image.open(io.BytesIO(was_full)).convert("RGB"), sent) - 0.05
    # The thumbnail against the former way (Lanczos with Pillow's default reducing gap):
    # as sharp within a small margin, and no larger.
    was_thumb_im = sent.copy()
    was_thumb_im.thumbnail((pipeline.THUMB_EDGE,) * 2, Image.Resampling.LANCZOS)
    was_thumb = former(was_thumb_im, 72)
    fair = sent.resize(was_thumb_im.size, Image.Resampling.LANCZOS)   # no shortcut at all
    thumb = Image.open(io.BytesIO(done.thumb)).convert("RGB")
    assert len(done.thumb) <= 1.05 * len(was_thumb)
    assert _psnr(thumb, fair) >= _psnr(Image.open(io.BytesIO(was_thumb)).convert("RGB"), fair) - 1.0


@pytest.fixture
def env(tmp_path):
    app = make_app(tmp_path, MAX_PHOTO_BYTES=3 * 2**20, MAX_CONTENT_LENGTH=8 * 2**20)
    with app.app_context():
        w = build_world()
    return app, w, sign_in(app.test_client(), w.vol_a), tmp_path / "photos"


def _report(client, w, data: bytes, name="photo.jpg"):
    return client.post(f"/compounds/{w.a1}/report", content_type="multipart/form-data",
                       data={"category": "flyers", "photos": (io.BytesIO(data), name)})


def _files(photo_dir: Path):
    return [p for p in photo_dir.rglob("*") if p.is_file()] if photo_dir.exists() else []


def _file_clock(photo_dir: Path) -> float:
    """Now, as file times see it. Not time.time(): the suite's clock is moved
    (tests/conftest.py), the file system's is not."""
    probe = photo_dir.parent / "clock-probe"
    probe.write_bytes(b"")
    try:
        return probe.stat().st_mtime
    finally:
        probe.unlink()


def test_stored_files_have_no_exif_end_to_end(env):
    app, w, client, photo_dir = env
    assert _report(client, w, with_orientation(800, 600, 8)).status_code == 302
    files = _files(photo_dir)
    assert len(files) == 2  # full and thumbnail
    for path in files:
        blob = path.read_bytes()
        assert blob[:3] == b"\xff\xd8\xff"
        assert len(Image.open(path).getexif()) == 0 and b"Exif" not in blob
        assert_upright(Image.open(path))
    with app.app_context():
        photo = db.session.execute(db.select(Photo)).scalar_one()
        assert photo.taken_at is not None and photo.key.endswith(".jpg")


def test_heic_is_accepted(env):
    app, w, client, photo_dir = env
    out = io.BytesIO()
    upright(640, 480).save(out, "HEIF")
    assert _report(client, w, out.getvalue(), "IMG_0001.HEIC").status_code == 302
    with app.app_context():
        photo = db.session.execute(db.select(Photo)).scalar_one()
        assert (photo.width, photo.height) == (640, 480)
    assert_upright(Image.open(photo_dir / photo.key))


def _png_bomb(w=30000, h=30000) -> bytes:
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1000)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _gif():
    out = io.BytesIO()
    Image.new("P", (20, 20)).save(out, "GIF")
    return out.getvalue()


def _noisy_jpeg(side):
    return Image.effect_noise((side, side), 120).convert("RGB")


def _big_jpeg():
    out = io.BytesIO()
    _noisy_jpeg(1700).save(out, "JPEG", quality=100)
    assert 3 * 2**20 < len(out.getvalue()) < 7 * 2**20
    return out.getvalue()


BAD = {
    "truncated_jpeg": lambda: jpeg_bytes((800, 600))[:2000],
    "zero_bytes": lambda: b"",
    "text_named_jpg": lambda: b"just some text, not a photo\n" * 10,
    "svg": lambda: b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    "html": lambda: b"<!doctype html><html><body><script>alert(1)</script></body></html>",
    "pdf": lambda: b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF",
    "png_bomb": _png_bomb,
    "over_size_limit": _big_jpeg,
    "gif": _gif,
}
# The reason each one is refused for (a key of patrol.labels.PHOTO_ERROR).
BAD_REASON = {"truncated_jpeg": "corrupt", "zero_bytes": "empty", "text_named_jpg": "not_image",
              "svg": "not_image", "html": "not_image", "pdf": "not_image",
              "png_bomb": "too_many_pixels", "over_size_limit": "too_large", "gif": "not_image"}


@pytest.mark.parametrize("truncated_flag", [False, True], ids=["default", "weasyprint-flag"])
@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_input_is_refused_cleanly(env, kind, truncated_flag, monkeypatch):
    # WeasyPrint sets LOAD_TRUNCATED_IMAGES process-wide; refusal must not depend on it.
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", truncated_flag)
    app, w, client, photo_dir = env
    resp = _report(client, w, BAD[kind](), f"{kind}.jpg")
    assert 400 <= resp.status_code < 500
    html = resp.get_data(as_text=True)
    assert f"{kind}.jpg: {reason_in(app, 'zh', BAD_REASON[kind])}" in html
    assert _files(photo_dir) == []
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Photo)) == 0
        assert db.session.scalar(db.select(db.func.count()).select_from(Item)) == 0


def reason_in(app, lang, code):
    """The refusal as the user reads it, HTML-escaped as the page prints it."""
    from flask_babel import force_locale
    from markupsafe import escape
    from patrol.labels import PHOTO_ERROR
    with app.test_request_context(), force_locale(lang):
        return str(escape(str(PHOTO_ERROR[code])))


def test_refusals_are_in_english_for_english_users(env):
    app, w, client, photo_dir = env
    client.post("/lang", data={"lang": "en"})
    html = _report(client, w, BAD["gif"](), "gif.jpg").get_data(as_text=True)
    assert "gif.jpg: Only JPEG, PNG, WebP or HEIC photos are accepted." in html
    assert reason_in(app, "zh", "not_image") not in html


def test_request_over_the_size_limit_is_413(env):
    app, w, client, photo_dir = env
    resp = _report(client, w, b"\xff\xd8" + b"\x00" * (9 * 2**20))
    assert resp.status_code == 413
    assert "照片太大，无法一起发送。请每次少发几张。" in resp.get_data(as_text=True)
    assert _files(photo_dir) == []


@pytest.mark.parametrize("code", ["too_large", "too_many_pixels", "not_image", "corrupt", "empty"])
def test_every_refusal_has_a_message(code):
    from patrol.labels import PHOTO_ERROR
    assert code in PHOTO_ERROR


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about the broken EXIF
def test_fuzzed_jpegs_never_cause_a_server_error(env):
    app, w, client, _ = env
    rnd = random.Random(20261127)
    base = bytearray(with_orientation(320, 240, 6))
    statuses = []
    for _ in range(220):
        data = bytearray(base)
        mode = rnd.choice(["flip", "truncate", "insert", "splice", "zero"])
        if mode == "flip":
            for _ in range(rnd.randint(1, 30)):
                data[rnd.randrange(len(data))] = rnd.randrange(256)
        elif mode == "truncate":
            data = data[:rnd.randrange(len(data))]
        elif mode == "insert":
            pos = rnd.randrange(len(data))
            data[pos:pos] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 200)))
        elif mode == "splice":
            a, b = sorted(rnd.randrange(len(data)) for _ in range(2))
            data = data[:a] + data[b:]
        else:
            pos = rnd.randrange(len(data) - 64)
            data[pos:pos + 64] = b"\x00" * 64
        resp = _report(client, w, bytes(data))
        statuses.append(resp.status_code)
    assert all(s < 500 for s in statuses)
    assert {302, 422} >= set(statuses)


def test_orphans_are_found_and_fixed(env):
    """A crash between file write and commit leaves a file without a row: found, then fixed."""
    app, w, client, photo_dir = env
    assert _report(client, w, jpeg_bytes()).status_code == 302
    with app.app_context():
        from patrol.models import User
        from patrol.services.photo_store import save_upload
        save_upload(jpeg_bytes(color=(1, 2, 3)), uploader=db.session.get(User, w.vol_a),
                    kind="before")
        db.session.rollback()  # the "crash": files written, row never committed
        kept = db.session.execute(db.select(Photo)).scalar_one()
    runner = app.test_cli_runner()
    # Just written, it may be an upload about to commit its row: not touched yet.
    fresh = runner.invoke(args=["photos-orphans", "--fix"])
    assert fresh.exit_code == 0 and "file without row" not in fresh.output
    assert len(_files(photo_dir)) == 4
    an_hour_ago = _file_clock(photo_dir) - 3600
    for path in _files(photo_dir):
        os.utime(path, (an_hour_ago, an_hour_ago))
    report = runner.invoke(args=["photos-orphans"])
    assert report.exit_code == 1 and report.output.count("file without row") == 2
    fixed = runner.invoke(args=["photos-orphans", "--fix"])
    assert fixed.exit_code == 0
    assert sorted(p.relative_to(photo_dir).as_posix() for p in _files(photo_dir)) == \
        sorted([kept.key, kept.thumb_key])
    assert runner.invoke(args=["photos-orphans"]).exit_code == 0
    (photo_dir / kept.thumb_key).unlink()  # a row whose file is gone
    report = runner.invoke(args=["photos-orphans"])
    assert report.exit_code == 1 and f"row {kept.id} without file" in report.output


def test_temporary_files_of_killed_writes_are_found_and_fixed(env):
    """`kill -9` during LocalStorage.put leaves its `.tmp-*` file: past the write grace it
    is reported and removed; a young one may be a write in progress and is left alone.
    (File times are the file system's clock, not the app's, so they are set with os.utime.)"""
    import tempfile
    from patrol.services.photo_store import WRITE_GRACE
    app, w, client, photo_dir = env
    assert _report(client, w, jpeg_bytes()).status_code == 302
    kept = sorted(_files(photo_dir))
    temporaries = []
    for _ in range(2):   # as put() makes them: next to the final file, half written
        fd, tmp = tempfile.mkstemp(dir=kept[0].parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(jpeg_bytes()[:100])
        temporaries.append(Path(tmp))
    old, young = temporaries
    past_grace = _file_clock(photo_dir) - WRITE_GRACE.total_seconds() - 60
    os.utime(old, (past_grace, past_grace))
    old_key = old.relative_to(photo_dir).as_posix()
    runner = app.test_cli_runner()
    report = runner.invoke(args=["photos-orphans"])
    assert report.exit_code == 1, report.output
    assert report.output.splitlines() == [f"unfinished write (temporary file): {old_key}"]
    fixed = runner.invoke(args=["photos-orphans", "--fix"])
    assert fixed.exit_code == 0 and old_key in fixed.output
    assert not old.exists() and young.exists()
    assert sorted(_files(photo_dir)) == sorted(kept + [young])
    assert runner.invoke(args=["photos-orphans"]).exit_code == 0   # the young one: not yet


def test_a_file_gone_between_listing_and_its_age_check_is_skipped(env, monkeypatch):
    """A write finishing renames its temporary file while the sweep looks at it."""
    from patrol.services import photo_store
    app, w, client, photo_dir = env
    assert _report(client, w, jpeg_bytes()).status_code == 302
    with app.app_context():
        store = photo_store.storage()
        monkeypatch.setattr(type(store), "keys",
                            lambda self: iter(["ab/.tmp-renamed-meanwhile", "ab/gone.jpg"]))
        assert not photo_store.find_orphans()


def test_upload_endpoint_stores_one_pending_photo(env):
    app, w, client, photo_dir = env
    resp = client.post("/photos", content_type="multipart/form-data",
                       data={"photo": (io.BytesIO(with_orientation(800, 600, 3)), "p.jpg"),
                             "kind": "before", "lat": "27.85", "lon": "112.95"})
    assert resp.status_code == 201
    body = resp.get_json()
    assert (body["width"], body["height"]) == (800, 600)
    assert client.get(body["thumb"]).status_code == 200
    with app.app_context():
        photo = db.session.get(Photo, body["id"])
        assert photo.item_id is None and (photo.lat, photo.lon) == (27.85, 112.95)
    bad = client.post("/photos", content_type="multipart/form-data",
                      data={"photo": (io.BytesIO(b"<svg/>"), "x.jpg")})
    assert bad.status_code == 422 and bad.get_json()["error"]
    assert client.post("/photos", data={}).status_code == 400
    committee = sign_in(app.test_client(), w.com_a1)
    assert committee.post("/photos", content_type="multipart/form-data",
                          data={"photo": (io.BytesIO(jpeg_bytes()), "p.jpg")}).status_code == 403


def test_abandoned_uploads_are_cleaned_after_the_grace_period(env):
    """Photos uploaded for a form that never arrived: kept while an outbox may still
    send the form, then reported and removed with their files."""
    from datetime import timedelta
    from patrol.models import User, utcnow
    from patrol.services.photo_store import PENDING_GRACE, save_upload
    app, w, client, photo_dir = env
    with app.app_context():
        user = db.session.get(User, w.vol_a)
        fresh = save_upload(jpeg_bytes(color=(9, 9, 9)), uploader=user, kind="before")
        old = save_upload(jpeg_bytes(color=(250, 9, 9)), uploader=user, kind="before")
        old.created_at = utcnow() - PENDING_GRACE - timedelta(hours=1)
        db.session.commit()
        fresh_id, old_id, old_key = fresh.id, old.id, old.key
    runner = app.test_cli_runner()
    report = runner.invoke(args=["photos-orphans"])
    assert report.exit_code == 1
    assert f"row {old_id} uploaded but never attached" in report.output
    assert f"row {fresh_id} " not in report.output
    assert runner.invoke(args=["photos-orphans", "--fix"]).exit_code == 0
    assert not (photo_dir / old_key).exists()
    with app.app_context():
        assert db.session.get(Photo, old_id) is None and db.session.get(Photo, fresh_id)
    assert runner.invoke(args=["photos-orphans"]).exit_code == 0


def test_a_stray_file_used_again_is_not_swept(env):
    """The outbox resends a photo whose row was lost: the same bytes reuse the old file,
    which then counts as freshly written and is not deleted under the new row's feet."""
    app, w, client, photo_dir = env
    with app.app_context():
        from patrol.models import User
        from patrol.services.photo_store import save_upload
        user = db.session.get(User, w.vol_a)
        save_upload(jpeg_bytes(color=(7, 8, 9)), uploader=user, kind="before")
        db.session.rollback()
    an_hour_ago = _file_clock(photo_dir) - 3600
    for path in _files(photo_dir):
        os.utime(path, (an_hour_ago, an_hour_ago))
    with app.app_context():
        from patrol.services.photo_store import find_orphans
        assert len(find_orphans().stray_files) == 2
        again = save_upload(jpeg_bytes(color=(7, 8, 9)), uploader=db.session.get(User, w.vol_a),
                            kind="before")
        db.session.expunge(again)  # its row is still uncommitted in the uploading process
        assert find_orphans().stray_files == []
