"""A 12 MP phone photo through the real report form: shrunk in the browser, stored upright."""
import io

import pytest
from PIL import Image
from playwright.sync_api import expect

from patrol.extensions import db
from patrol.models import Item
from tests.browser.test_field_loop import scan_gate, url_re, volunteer_signs_in
from tests.test_photos import assert_upright, upright

pytestmark = pytest.mark.browser


def phone_photo(tmp_path):
    """4000×3000 as displayed, stored sideways with EXIF orientation 6, as phones do;
    textured like a real photo so JPEG sizes are realistic."""
    shown = upright(4000, 3000)
    texture = Image.effect_noise((4000, 3000), 24).convert("RGB")
    shown = Image.blend(shown, texture, 0.25)
    raw = shown.transpose(Image.Transpose.ROTATE_90)   # what the sensor wrote
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "IMG_4032.jpg"
    raw.save(path, "JPEG", quality=92, exif=exif)
    return path


def count_posted_bytes(app):
    """Measure on the server what actually arrived: every POST body's length."""
    sizes, inner = [], app.wsgi_app

    def counting(environ, start_response):
        if environ["REQUEST_METHOD"] == "POST":
            sizes.append(int(environ.get("CONTENT_LENGTH") or 0))
        return inner(environ, start_response)
    app.wsgi_app = counting
    return sizes


def test_big_photo_is_shrunk_in_the_browser_and_stored_upright(live_server, world, phone,
                                                              tmp_path):
    live, w = live_server, world
    photo = phone_photo(tmp_path)
    original = photo.stat().st_size
    vol = volunteer_signs_in(live, phone, w.vol_a)
    page = vol.page
    scan_gate(live, vol, w.a1)
    with page.expect_navigation():   # to "load": the form's scripts have run
        page.locator("#report-btn").tap()
    sent = count_posted_bytes(live.app)
    page.locator("label.choice:has(input[value=flying_wire])").tap()
    page.locator("#f-photos input[name=photos]").set_input_files(str(photo))
    # Preview at once, then the upload finishes (progress full, hidden id added).
    expect(page.locator("#f-photos .previews img")).to_have_count(1)
    expect(page.locator("#f-photos input[name=kept_photos]")).to_have_count(1, timeout=20_000)
    assert page.locator("#f-photos progress").evaluate("el => el.value") == 1
    page.locator("#report-form button[type=submit]").tap()
    expect(page).to_have_url(url_re(live, f"/compounds/{w.a1}"))

    assert len(sent) == 2  # the photo, then the form with its id
    on_the_wire = sum(sent)
    print(f"\noriginal {original} bytes, sent {on_the_wire} bytes, "
          f"ratio 1/{original / on_the_wire:.1f}")
    assert on_the_wire * 6 <= original
    with live.db():
        item = db.session.execute(db.select(Item)).scalar_one()
        stored = item.photos[0]
        assert (stored.width, stored.height) == (1600, 1200)
        path = live.app.config["PHOTO_DIR"] + "/" + stored.key
    with Image.open(path) as im:
        assert_upright(im)
        assert len(im.getexif()) == 0


OLD_SAFARI = """(() => {
    // A browser that knows no imageOrientation option: it rejects the options object, and
    // without it decodes the pixels as stored, ignoring EXIF orientation. (Chromium always
    // applies EXIF, so the model drops the JPEG's EXIF segment before decoding.)
    const original = window.createImageBitmap;
    async function asStored(blob) {
        const b = new Uint8Array(await blob.arrayBuffer());
        if (b[0] !== 0xFF || b[1] !== 0xD8) return blob;
        const parts = [b.subarray(0, 2)];
        let i = 2;
        while (i + 3 < b.length && b[i] === 0xFF && b[i + 1] !== 0xDA) {
            const end = i + 2 + ((b[i + 2] << 8) | b[i + 3]);
            if (b[i + 1] !== 0xE1) parts.push(b.subarray(i, end));  // APP1 = EXIF
            i = end;
        }
        parts.push(b.subarray(i));
        return new Blob(parts, { type: "image/jpeg" });
    }
    window.createImageBitmap = function (source, options) {
        if (options !== undefined) return Promise.reject(new TypeError("bad options"));
        return asStored(source).then((stored) => original.call(window, stored));
    };
})();"""


OLD_CHROMIUM = """(() => {
    // Chromium before 112 (many WeChat and Android WebViews): no "from-image" option, but
    // its plain createImageBitmap applies EXIF orientation.
    const original = window.createImageBitmap;
    window.createImageBitmap = function (source, options) {
        if (options !== undefined) return Promise.reject(new TypeError("bad enum value"));
        return original.call(window, source);
    };
})();"""


@pytest.mark.parametrize("engine", ["old_safari", "old_chromium"])
def test_an_engine_without_the_orientation_option_never_stores_a_sideways_photo(
        live_server, world, phone, tmp_path, engine):
    """An engine that rejects imageOrientation: "from-image". If it applies EXIF by itself
    (older Chromium: many WeChat and Android WebViews), the page, having asked once with a
    tiny rotated JPEG, still shrinks; if not (older Safari), it sends the original: a bigger
    upload rather than a sideways photo, which the server turns upright."""
    live, w = live_server, world
    photo = phone_photo(tmp_path)
    vol = volunteer_signs_in(live, phone, w.vol_a)
    vol.context.add_init_script(OLD_SAFARI if engine == "old_safari" else OLD_CHROMIUM)
    page = vol.page
    page.goto(f"/compounds/{w.a1}/report")
    sent = count_posted_bytes(live.app)
    page.locator("label.choice:has(input[value=flying_wire])").tap()
    page.locator("#f-photos input[name=photos]").set_input_files(str(photo))
    expect(page.locator("#f-photos input[name=kept_photos]")).to_have_count(1, timeout=20_000)
    if engine == "old_safari":
        assert sent[0] > photo.stat().st_size        # the original file went
    else:
        assert sent[0] * 6 <= photo.stat().st_size   # shrunk in the page
    page.locator("#report-form button[type=submit]").tap()
    expect(page).to_have_url(url_re(live, f"/compounds/{w.a1}"))
    with live.db():
        stored = db.session.execute(db.select(Item)).scalar_one().photos[0]
        assert (stored.width, stored.height) == (1600, 1200)
        path = live.app.config["PHOTO_DIR"] + "/" + stored.key
    with Image.open(path) as im:
        assert_upright(im)


def test_removing_a_photo_before_sending(live_server, world, phone, tmp_path):
    live, w = live_server, world
    vol = volunteer_signs_in(live, phone, w.vol_a)
    page = vol.page
    page.goto(f"/compounds/{w.a1}/report")
    files = []
    for i, color in enumerate([(200, 0, 0), (0, 200, 0)]):
        path = tmp_path / f"p{i}.jpg"
        Image.new("RGB", (800, 600), color).save(path, "JPEG")
        files.append(str(path))
    page.locator("#f-photos input[name=photos]").set_input_files(files)
    expect(page.locator("#f-photos input[name=kept_photos]")).to_have_count(2)
    page.locator("#f-photos .photo .remove").first.tap()
    expect(page.locator("#f-photos input[name=kept_photos]")).to_have_count(1)
    page.locator("label.choice:has(input[value=flyers])").tap()
    page.locator("#report-form button[type=submit]").tap()
    expect(page).to_have_url(url_re(live, f"/compounds/{w.a1}"))
    with live.db():
        item = db.session.execute(db.select(Item)).scalar_one()
        assert len(item.photos) == 1
        path = live.app.config["PHOTO_DIR"] + "/" + item.photos[0].key
        with Image.open(io.BytesIO(open(path, "rb").read())) as im:
            assert im.getpixel((10, 10))[1] > 150  # the green one was kept


def test_failed_upload_keeps_everything_for_a_retry(live_server, world, phone, tmp_path):
    """The photo cannot be sent: the report waits in the phone's outbox, nothing is lost,
    and it goes through once the signal is back.

    Without a service worker (as in some in-app browsers): requests that pass through a
    worker escape Playwright's routing now and then, so the cut-off upload would succeed."""
    live, w = live_server, world
    vol = volunteer_signs_in(live, lambda name: phone(name, service_workers="block"), w.vol_a)
    page = vol.page
    page.goto(f"/compounds/{w.a1}/report")
    path = tmp_path / "p.jpg"
    Image.new("RGB", (800, 600), (10, 10, 200)).save(path, "JPEG")
    page.route("**/photos", lambda route: route.abort("internetdisconnected"))
    page.locator("label.choice:has(input[value=fire_exit])").tap()
    page.locator("textarea[name=note]").fill("五楼楼道堆满纸箱")
    page.locator("#f-photos input[name=photos]").set_input_files(str(path))
    expect(page.locator("#f-photos .photo.failed")).to_have_count(1)
    page.locator("#report-form button[type=submit]").tap()
    expect(page).to_have_url(url_re(live, f"/compounds/{w.a1}"))
    expect(page.locator("#queue")).to_be_visible()
    expect(page.locator("#queue li")).to_have_count(1)
    with live.db():
        assert db.session.scalar(db.select(db.func.count()).select_from(Item)) == 0
    page.unroute("**/photos")  # signal is back
    page.locator("#queue button.sync").dispatch_event("click")
    expect(page.locator("#queue")).to_be_hidden(timeout=15_000)
    with live.db():
        item = db.session.execute(db.select(Item)).scalar_one()
        assert item.category == "fire_exit" and item.note == "五楼楼道堆满纸箱"
        assert len(item.photos) == 1


def test_photo_messages_say_what_to_do_and_go_when_done(live_server, world, phone, tmp_path):
    live, w = live_server, world
    vol = volunteer_signs_in(live, phone, w.vol_a)
    page = vol.page
    page.goto(f"/compounds/{w.a1}/report")
    # Each category is one box (the name inside is not drawn as a second one).
    assert page.locator("label.choice .name").first.evaluate(
        "e => getComputedStyle(e).borderTopWidth") == "0px"
    page.locator("label.choice:has(input[value=flyers])").tap()
    page.locator("#report-form button[type=submit]").tap()
    need = page.locator("#report-form p.error[role=alert]")
    expect(need).to_have_text("请拍一张照片。")
    # A file that is no photo: refused with the reason and what to do, and no full bar.
    fake = tmp_path / "not-a-photo.jpg"
    fake.write_text("这不是照片")
    page.locator("#f-photos input[name=photos]").set_input_files(str(fake))
    bad = page.locator("#f-photos .photo.failed")
    expect(bad.locator(".msg")).to_contain_text("请点「拍照」重新拍一张。")
    expect(bad.locator("progress")).to_be_hidden()
    page.locator("#report-form button[type=submit]").tap()   # a refused photo is no photo
    expect(need).to_have_text("请拍一张照片。")
    good = tmp_path / "good.jpg"
    Image.new("RGB", (800, 600), (200, 60, 60)).save(good, "JPEG")
    page.locator("#f-photos input[name=photos]").set_input_files(str(good))
    expect(need).to_be_hidden()                # the photo is there now
    expect(page.locator("#f-photos input[name=kept_photos]")).to_have_count(1)
