"""The report form: rendered from the definition; bad input loses nothing."""
import io

from patrol.extensions import db
from patrol.models import Item, Photo
from tests.conftest import sign_in
from tests.factories import jpeg_bytes


def test_error_keeps_text_and_photos_for_the_retry(app, world):
    client = sign_in(app.test_client(), world.vol_a)
    resp = client.post(f"/compounds/{world.a1}/report", content_type="multipart/form-data",
                       data={"note": "三楼窗外电线", "floor": "3",
                             "photos": (io.BytesIO(jpeg_bytes()), "p.jpg")})
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert "三楼窗外电线</textarea>" in html and 'value="3"' in html
    with app.app_context():
        photo = db.session.execute(db.select(Photo)).scalar_one()
        assert photo.item_id is None
    assert f'name="kept_photos" value="{photo.id}"' in html
    # The retry sends only the missing choice; the photo comes back by id.
    resp = client.post(f"/compounds/{world.a1}/report", content_type="multipart/form-data",
                       data={"category": "flying_wire", "note": "三楼窗外电线", "floor": "3",
                             "kept_photos": str(photo.id)})
    assert resp.status_code == 302
    with app.app_context():
        item = db.session.execute(db.select(Item)).scalar_one()
        assert [p.id for p in item.photos] == [photo.id]
        assert item.note == "三楼窗外电线" and item.floor == "3"


def test_someone_elses_pending_photo_cannot_be_attached(app, world):
    vol = sign_in(app.test_client(), world.vol_a)
    vol.post(f"/compounds/{world.a1}/report", content_type="multipart/form-data",
             data={"photos": (io.BytesIO(jpeg_bytes()), "p.jpg")})
    with app.app_context():
        pid = db.session.execute(db.select(Photo)).scalar_one().id
    staff = sign_in(app.test_client(), world.staff_a)
    resp = staff.post(f"/compounds/{world.a1}/report", content_type="multipart/form-data",
                      data={"category": "other", "kept_photos": str(pid)})
    assert resp.status_code == 422  # no photo of their own


def test_bad_photo_is_refused_with_a_message_and_nothing_stored(app, world):
    client = sign_in(app.test_client(), world.vol_a)
    resp = client.post(f"/compounds/{world.a1}/report", content_type="multipart/form-data",
                       data={"category": "flyers", "note": "x",
                             "photos": (io.BytesIO(b"hello, I am text"), "evil.jpg")})
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert "evil.jpg" in html
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Photo)) == 0
        assert db.session.scalar(db.select(db.func.count()).select_from(Item)) == 0


def test_fixed_on_spot_needs_a_scan_and_an_after_photo(app, world):
    client = sign_in(app.test_client(), world.vol_a)
    data = lambda: {"category": "flyers", "fixed_on_spot": "1",  # noqa: E731
                    "photos": (io.BytesIO(jpeg_bytes()), "before.jpg"),
                    "after_photos": (io.BytesIO(jpeg_bytes(color=(0, 200, 0))), "after.jpg")}
    resp = client.post(f"/compounds/{world.a1}/report", content_type="multipart/form-data",
                       data=data())
    assert resp.status_code == 422  # not scanned
    with app.app_context():
        from patrol.models import Compound
        token = db.session.get(Compound, world.a1).qr_token
    assert client.get(f"/c/{token}").status_code == 302
    resp = client.post(f"/compounds/{world.a1}/report", content_type="multipart/form-data",
                       data=data())
    assert resp.status_code == 302
    with app.app_context():
        item = db.session.execute(db.select(Item)).scalar_one()
        assert item.status == "verified" and item.fixed_on_spot
        assert [e.action for e in item.events] == ["report", "fix_on_spot"]
        assert [p.kind for p in item.photos] == ["before", "after"]


def test_compound_page_puts_items_awaiting_check_first(app, world):
    from datetime import timedelta
    from patrol.lifecycle import Action
    from patrol.models import Compound, User, utcnow
    from patrol.services import items as svc
    from patrol.services.photo_store import save_upload
    from patrol.web.helpers import hazard_form
    with app.app_context():
        vol, mgr = db.session.get(User, world.vol_a), db.session.get(User, world.mgr_x)
        compound = db.session.get(Compound, world.a1)
        now = utcnow()
        ids = []
        for i in range(3):
            item = svc.report(form=hazard_form(), compound=compound, reporter=vol,
                              clean={"category": "other", "extra": {}}, now=now + timedelta(minutes=i),
                              photos=[save_upload(jpeg_bytes(), uploader=vol, kind="before")])
            ids.append(item.id)
        old = db.session.get(Item, ids[0])
        svc.act(old, Action.ACKNOWLEDGE, mgr, now, svc.ActionInput(), form=hazard_form(),
                window=timedelta(hours=2))
        svc.act(old, Action.FIX, mgr, now, svc.ActionInput(
            note="ok", photos=[save_upload(jpeg_bytes(), uploader=mgr, kind="after")]),
            form=hazard_form(), window=timedelta(hours=2))
        db.session.commit()
    html = sign_in(app.test_client(), world.vol_a).get(f"/compounds/{world.a1}").get_data(as_text=True)
    order = [html.index(f'href="/items/{i}"') for i in (ids[0], ids[2], ids[1])]
    assert order == sorted(order)


def test_sending_the_same_form_twice_creates_one_item(app, world):
    import uuid
    client = sign_in(app.test_client(), world.vol_a)
    key = str(uuid.uuid4())
    form = lambda **kw: dict({"category": "flyers", "note": "门口小广告", "client_uuid": key,  # noqa: E731
                              "photos": (io.BytesIO(jpeg_bytes()), "p.jpg")}, **kw)
    assert client.post(f"/compounds/{world.a1}/report", content_type="multipart/form-data",
                       data=form()).status_code == 302
    again = client.post(f"/compounds/{world.a1}/report", content_type="multipart/form-data",
                        data=form())
    assert again.status_code == 302
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Item)) == 1
    changed = client.post(f"/compounds/{world.a1}/report", content_type="multipart/form-data",
                          data=form(category="lighting"))
    assert changed.status_code == 409
    with app.app_context():
        item = db.session.execute(db.select(Item)).scalar_one()
        assert item.category == "flyers" and item.client_uuid == key


def test_lists_show_thumbnails_and_the_item_page_full_size(app, world):
    client = sign_in(app.test_client(), world.vol_a)
    client.post(f"/compounds/{world.a1}/report", content_type="multipart/form-data",
                data={"category": "flyers", "photos": (io.BytesIO(jpeg_bytes((1200, 900))), "p.jpg")})
    with app.app_context():
        item = db.session.execute(db.select(Item)).scalar_one()
        photo_id = item.photos[0].id
    listing = client.get(f"/compounds/{world.a1}").get_data(as_text=True)
    assert f'src="/photos/{photo_id}/thumb.jpg"' in listing
    assert f"/photos/{photo_id}/full.jpg" not in listing
    page = client.get(f"/items/{item.id}").get_data(as_text=True)
    assert f'id="hero" src="/photos/{photo_id}/full.jpg"' in page
    full = client.get(f"/photos/{photo_id}/full.jpg")
    thumb = client.get(f"/photos/{photo_id}/thumb.jpg")
    assert full.headers["Cache-Control"] == "private, max-age=31536000, immutable"
    assert len(thumb.data) < len(full.data)


def test_an_item_waiting_for_its_check_shows_before_and_after_side_by_side(app, world):
    """The checker compares on the spot: first the reported photo and the company's fix
    photo with its note, as small images (the full size is a tap away)."""
    from datetime import timedelta

    from patrol.lifecycle import Action
    from patrol.models import Compound, User, utcnow
    from patrol.services import items as svc
    from patrol.services.photo_store import save_upload
    from patrol.web.helpers import hazard_form
    with app.app_context():
        vol, mgr = db.session.get(User, world.vol_a), db.session.get(User, world.mgr_x)
        now, form, window = utcnow(), hazard_form(), timedelta(hours=2)
        before = save_upload(jpeg_bytes(), uploader=vol, kind="before")
        item = svc.report(form=form, compound=db.session.get(Compound, world.a1), reporter=vol,
                          clean={"category": "water_tank", "extra": {}}, now=now, photos=[before])
        svc.act(item, Action.ACKNOWLEDGE, mgr, now, svc.ActionInput(), form=form, window=window)
        after = save_upload(jpeg_bytes(color=(0, 200, 0)), uploader=mgr, kind="after")
        svc.act(item, Action.FIX, mgr, now, svc.ActionInput(note="水箱已清洗<消毒>", photos=[after]),
                form=form, window=window)
        db.session.commit()
        item_id, before_id, after_id = item.id, before.id, after.id
    page = sign_in(app.test_client(), world.vol_a).get(f"/items/{item_id}").get_data(as_text=True)
    compare = page.split('id="compare"')[1].split("</div>")[0]
    assert compare.index(f"/photos/{before_id}/thumb.jpg") < compare.index(f"/photos/{after_id}/thumb.jpg")
    assert "整改前" in compare and "整改后" in compare
    assert "水箱已清洗&lt;消毒&gt;" in page.split('class="fix-note"')[1].split("</p>")[0]
    assert 'id="hero"' not in page
