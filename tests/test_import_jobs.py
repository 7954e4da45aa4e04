"""The district import's confirm as a job (jobs/kinds.py `district_import`), and the
uploads waiting for it in the shared store (services/district_uploads.py, `imports/`).

- any app instance or worker reads an upload: two app instances share one S3 bucket
  (a moto server on loopback, tests/test_storage_s3.py) and one database; the preview
  is made on one, the confirm and its job run on the other;
- two confirms of one upload that both reach the queue import it once;
- uploads never confirmed go after a day; `patrol photos-orphans` leaves them alone;
- who may start the job.
"""
from __future__ import annotations

import os
import re
import time
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine

from patrol.extensions import db
from patrol.jobs import run_queued, runner
from patrol.lifecycle import Role
from patrol.models import Community, Compound, Job, Street, User
from patrol.services import district_uploads
from patrol.services.photo_store import storage
from tests.conftest import make_app, sign_in
from tests.factories import build_world
from tests.test_import_page import confirm_url, counts, filled_template, own_rows, upload
from tests.test_jobs import wait_for, worker
from tests.test_storage_s3 import _utc, bucket, bucket_keys, s3_server, s3_settings  # noqa: F401


def _streets(app, w):
    with app.app_context():
        db.session.get(Community, w.ca).street = Street(name="和平街道")
        db.session.get(Community, w.cb).street = Street(name="东风街道")
        db.session.commit()


def _token(url: str) -> str:
    return url.split("/")[3]


def _jobs(app) -> list[tuple[str, str, str | None]]:
    with app.app_context():
        return [(j.state, (j.params or {}).get("token"), j.result_note) for j in
                db.session.execute(db.select(Job).order_by(Job.id)).scalars()]


def _new_compounds(app) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count()).select_from(Compound)
                                 .where(Compound.name == "新桂园"))


# --- any instance, any worker: the upload is in the shared store ---------------------

def test_an_upload_previewed_on_one_instance_is_imported_by_another(tmp_path, s3_server,
                                                                    bucket):  # noqa: F811
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    s3 = s3_settings(s3_server, bucket, S3_PREFIX="patrol/")
    one = make_app(tmp_path / "one", url, **s3)
    two = make_app(tmp_path / "two", url, **s3)
    with one.app_context():
        w = build_world()
    _streets(one, w)

    preview = upload(sign_in(one.test_client(), w.staff_a), filled_template(**own_rows()))
    assert preview.status_code == 200
    token = _token(confirm_url(preview))
    assert bucket_keys(s3_server, bucket) == {f"patrol/imports/{token}/upload",
                                             f"patrol/imports/{token}/meta.json"}
    assert not (tmp_path / "one" / "imports").exists()      # nothing on that disk

    staff_two = sign_in(two.test_client(), w.staff_a)
    resp = staff_two.post(confirm_url(preview))
    assert resp.status_code == 302 and re.fullmatch(r"/jobs/\d+", resp.location)
    assert _new_compounds(one) == 0
    assert run_queued(two) == 1                               # instance two's worker
    assert _new_compounds(one) == 1
    page = staff_two.get(resp.location).text
    assert f'href="/district/import/{token}"' in page and "已导入" in page
    # The record is shared too: instance one shows what was imported.
    done = sign_in(one.test_client(), w.staff_a).get(f"/district/import/{token}")
    assert done.status_code == 200 and "已导入：新增 6 条" in done.text
    assert bucket_keys(s3_server, bucket) == {f"patrol/imports/{token}/done.json"}

    # `patrol photos-orphans` leaves imports/ alone, even an hour on by the store's clock.
    with one.app_context():
        store_now = storage().now()
    with time_machine.travel(_utc(store_now) + timedelta(hours=1), tick=True):
        report = one.test_cli_runner().invoke(args=["photos-orphans", "--fix"])
    assert report.exit_code == 0, report.output
    assert bucket_keys(s3_server, bucket) == {f"patrol/imports/{token}/done.json"}
    # ... and a day on, the next upload's preview removes it.
    with time_machine.travel(_utc(store_now) + timedelta(hours=25), tick=True):
        again = upload(sign_in(one.test_client(), w.staff_a),
                       filled_template(**own_rows(compound="又一园")))
        assert again.status_code == 200
    fresh = _token(confirm_url(again))
    assert bucket_keys(s3_server, bucket) == {f"patrol/imports/{fresh}/upload",
                                             f"patrol/imports/{fresh}/meta.json"}
    for app in (one, two):
        with app.app_context():
            db.engine.dispose()


# --- two confirms of one upload: imported once ---------------------------------------

@pytest.fixture
def iapp(db_app):
    """Both engines (conftest's db_app), with the world and streets of this file."""
    with db_app.app_context():
        db_app.w = build_world()
    _streets(db_app, db_app.w)
    return db_app


def _run_two_confirms(app, rows):
    """Say two app instances each queued a job for the same upload (the page's own check
    sends a second tap to the first job): the worker's two threads run both at once.
    Returns (counts before, counts after, the jobs: state, note, attempts)."""
    staff = sign_in(app.test_client(), app.w.staff_a)
    token = _token(confirm_url(upload(staff, filled_template(**rows))))
    with app.app_context():
        before = counts()
        user = db.session.get(User, app.w.staff_a)
        for _ in range(2):
            runner.submit("district_import", user=user, total=4, title="import",
                          params={"token": token, "lang": "zh"})

    def finished():
        with app.app_context():
            jobs = [(j.state, j.result_note or j.error or "", j.attempts) for j in
                    db.session.execute(db.select(Job).order_by(Job.id)).scalars()]
        return jobs if all(state in ("done", "failed") for state, _, _ in jobs) else None

    with worker(app, workers=2):
        jobs = wait_for(finished, timeout=90)
    with app.app_context():
        return before, counts(), jobs


def _imported_once(jobs):
    assert [(state, attempts) for state, _, attempts in jobs] == [("done", 1)] * 2, jobs
    notes = sorted(note for _, note, _ in jobs)
    assert notes[0].startswith("已导入：新增") and "没有重复写入" in notes[1], notes


def test_two_confirms_that_both_reach_the_queue_import_once(iapp, monkeypatch):
    """The import is written once; the other job says it was imported already, at its
    first try (it waited for the first one, then found the upload claimed)."""
    monkeypatch.setattr(runner, "PROGRESS_EVERY", 0)
    before, after, jobs = _run_two_confirms(iapp, own_rows())
    _imported_once(jobs)
    assert after["compounds"] == before["compounds"] + 1
    assert after["buildings"] == before["buildings"] + 3
    assert after["users"] == before["users"] + 2
    assert _new_compounds(iapp) == 1


def test_two_confirms_of_buildings_only_add_them_once(iapp, monkeypatch):
    """Buildings have no unique key the database could refuse a second copy by: only
    the claim keeps them single."""
    monkeypatch.setattr(runner, "PROGRESS_EVERY", 0)
    with iapp.app_context():
        a1 = db.session.get(Compound, iapp.w.a1).name
    before, after, jobs = _run_two_confirms(iapp, dict(楼栋=[["社区A", a1, "20-29栋",
                                                             "和平街道"]]))
    _imported_once(jobs)
    assert after["buildings"] == before["buildings"] + 10


def test_a_double_tap_on_confirm_queues_one_job(app, world, client):
    _streets(app, world)
    sign_in(client, world.staff_a)
    url = confirm_url(upload(client, filled_template(**own_rows())))
    first, second = client.post(url), client.post(url)
    assert first.status_code == second.status_code == 302
    assert first.location == second.location and re.fullmatch(r"/jobs/\d+", first.location)
    assert len(_jobs(app)) == 1
    assert run_queued(app) == 1 and _new_compounds(app) == 1
    third = client.post(url)                       # done: the import's summary
    assert third.status_code == 302 and third.location == f"/district/import/{_token(url)}"
    assert run_queued(app) == 0 and len(_jobs(app)) == 1


# --- who may start it ------------------------------------------------------------------

def test_street_staff_and_others_cannot_start_an_import(app, world, client):
    _streets(app, world)
    staff = sign_in(app.test_client(), world.staff_a)
    url = confirm_url(upload(staff, filled_template(**own_rows())))
    with app.app_context():
        street = db.session.execute(db.select(Street).where(Street.name == "和平街道")).scalar_one()
        db.session.add(User(username="street", display_name="周科长",
                            role=Role.STREET_STAFF.value, street_id=street.id))
        db.session.commit()
        street_staff = db.session.execute(db.select(User.id).where(
            User.username == "street")).scalar_one()
    for who, status in ((street_staff, 403), (world.vol_a, 403), (world.mgr_x, 403),
                        (world.staff_b, 409), (world.admin, 409)):
        assert sign_in(app.test_client(), who).post(url).status_code == status, who
    assert _jobs(app) == [] and run_queued(app) == 0 and _new_compounds(app) == 0
    assert len(district_uploads_keys(app)) == 2                  # still waiting for its owner


def district_uploads_keys(app) -> list[str]:
    with app.app_context():
        return sorted(storage().keys(district_uploads.PREFIX))


# --- a day at most ---------------------------------------------------------------------

def test_uploads_never_confirmed_are_removed_after_a_day(app, world, client):
    """On the local folder the store's clock is the file system's: age the files."""
    _streets(app, world)
    sign_in(client, world.staff_a)
    old = confirm_url(upload(client, filled_template(**own_rows())))
    folder = Path(app.config["PHOTO_DIR"]) / "imports" / _token(old)
    assert sorted(p.name for p in folder.iterdir()) == ["meta.json", "upload"]
    day_ago = time.time() - 25 * 3600
    for path in folder.iterdir():
        os.utime(path, (day_ago, day_ago))
    recent = confirm_url(upload(client, filled_template(**own_rows(compound="又一园"))))
    assert district_uploads_keys(app) == sorted(
        f"imports/{_token(recent)}/{n}" for n in ("meta.json", "upload"))
    gone = client.post(old)
    assert gone.status_code == 409 and "超过一天" in gone.text
    assert _jobs(app) == []


def test_the_upload_is_read_through_the_store(app, world, monkeypatch):
    """confirm() reads what preview() kept through the store's interface only."""
    _streets(app, world)
    with app.app_context():
        user = db.session.get(User, world.staff_a)
        kept = district_uploads.preview(filled_template(**own_rows()), "名单.xlsx", user)
        db.session.rollback()
        assert kept.token and storage().exists(f"imports/{kept.token}/upload")
        seen = []
        real_get = type(storage()).get
        monkeypatch.setattr(type(storage()), "get",
                            lambda self, key: seen.append(key) or real_get(self, key))
        applied = district_uploads.confirm(kept.token, user)
        db.session.commit()
        district_uploads.record_done(kept.token, user, applied)
        assert f"imports/{kept.token}/upload" in seen
        assert district_uploads.done(kept.token, user)["summary"] == applied.summary
        with pytest.raises(district_uploads.ImportGone):
            district_uploads.confirm(kept.token, user)
        db.session.rollback()
    assert _new_compounds(app) == 1
