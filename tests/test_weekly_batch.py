"""A week's lists of every compound the user may print, as one PDF made by the job queue."""
from __future__ import annotations


from patrol.jobs import runner
from patrol.models import Compound
from tests.conftest import sign_in
from tests.pdftools import run, write_pdf
from tests.test_jobs import japp, job_row, more_compounds, pg_jobs_url, wait_for, worker  # noqa: F401


def test_every_compound_of_the_staff_in_one_pdf_with_progress(japp, monkeypatch, tmp_path):
    monkeypatch.setattr(runner, "PROGRESS_EVERY", 0)
    more_compounds(japp, 3)
    w = japp.w
    staff = sign_in(japp.test_client(), w.staff_a)
    page = staff.get("/reports/weekly").get_data(as_text=True)
    assert 'id="weekly-batch"' in page
    resp = staff.post("/reports/weekly/batch", data={"week": "2026-W46"})
    assert resp.status_code == 302 and "/jobs/" in resp.location
    job_id = int(resp.location.rsplit("/", 1)[1])
    job = job_row(japp, job_id)
    with japp.app_context():
        from patrol.extensions import db
        mine = set(db.session.execute(db.select(Compound.id).where(
            Compound.community_id == w.ca)).scalars())
    # Only the staff member's own community: 小区B1 is another community's.
    assert set(job.params["compound_ids"]) == mine and w.b1 not in job.params["compound_ids"]
    assert job.params["week"] == "2026-W46" and job.state == "queued"

    def poll():
        status = staff.get(f"/jobs/{job_id}.json").get_json()
        return status if status["state"] in ("done", "failed") else None

    with worker(japp):
        status = wait_for(poll, every=0.05)
    assert status["state"] == "done", status
    assert status["done"] == status["total"] == len(mine)
    pdf = staff.get(status["result"])
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    text = run("pdftotext", str(write_pdf(pdf.data, tmp_path, "weekly")), "-")
    for name in ("小区A1", "小区A2"):
        assert name in text
    assert "小区B1" not in text
    assert sign_in(japp.test_client(), w.staff_b).get(status["result"]).status_code == 404


def test_a_volunteer_cannot_start_a_batch(japp):
    vol = sign_in(japp.test_client(), japp.w.vol_a)
    assert vol.post("/reports/weekly/batch", data={"week": "2026-W46"}).status_code in (302, 403)


def test_a_batch_prints_only_the_rows_its_owner_may_see(japp, tmp_path):
    """After a handover (物业更换) the new company's manager may print a week before it: the
    batch must hold what the single list's PDF holds for them, not the former company's
    items (it printed every item of the compound)."""
    from datetime import date, timedelta

    from patrol.display import hazard_form
    from patrol.extensions import db
    from patrol.models import Company, User
    from patrol.services import handover
    from patrol.services import items as svc
    w, tz, day = japp.w, "Asia/Shanghai", date(2026, 11, 18)
    with japp.app_context():
        at = handover.start_of(day, tz)
        item = svc.report(form=hazard_form(), compound=db.session.get(Compound, w.a1),
                          reporter=db.session.get(User, w.vol_a),
                          clean={"category": "flying_wire", "note": "前物业的事项", "extra": {}},
                          photos=[], now=at - timedelta(days=5))
        db.session.commit()
        assert item.company_id == w.x
        handover.hand_over(db.session.get(Compound, w.a1), db.session.get(Company, w.y), day,
                           actor=db.session.get(User, w.staff_a), now=at, tz=tz,
                           default_choice="close")
        db.session.commit()

    def batch_text(user_id, name):
        client = sign_in(japp.test_client(), user_id)
        resp = client.post("/reports/weekly/batch", data={"week": "2026-W46"})
        assert resp.status_code == 302, resp.status_code
        job_id = int(resp.location.rsplit("/", 1)[1])
        with japp.app_context():
            runner.execute(job_id)
        status = client.get(f"/jobs/{job_id}.json").get_json()
        assert status["state"] == "done", status
        return run("pdftotext", str(write_pdf(client.get(status["result"]).data, tmp_path,
                                              name)), "-")

    manager = sign_in(japp.test_client(), w.mgr_y)
    single = manager.get(f"/reports/weekly.pdf?scope=compound&id={w.a1}&week=2026-W46")
    assert single.status_code == 200
    assert "前物业的事项" not in run("pdftotext", str(write_pdf(single.data, tmp_path, "one")), "-")
    assert "前物业的事项" not in batch_text(w.mgr_y, "manager")
    assert "前物业的事项" in batch_text(w.staff_a, "staff")     # the community's staff see it
