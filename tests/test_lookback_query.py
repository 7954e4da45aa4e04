"""The 待回头看 list's query (web/compounds.lookback_query) reads a short range per
compound on the partial index of fixes and merges them (issue 15 §4): it must return
the same rows in the same order as one query over every fix, oldest fix first, a fix
without a time before any, ties by id, on SQLite and PostgreSQL."""
from __future__ import annotations

import random
from datetime import timedelta

import pytest

from patrol.extensions import db
from patrol.models import Compound, Item, User, utcnow
from patrol.web import compounds as pages
from tests.factories import build_world


def direct(user) -> list[int]:
    """The list as one query over all the user's compounds' fixes, sorted."""
    return list(db.session.execute(
        db.select(Item.id).where(Item.status == "fixed",
                                 Item.compound_id.in_(pages.lookback_compounds(user)))
        .order_by(Item.fixed_at.asc().nulls_first(), Item.id)).scalars())


@pytest.mark.parametrize("merge_max", [pages.LOOKBACK_MERGE_MAX, 0])
def test_lookback_query_equals_one_sorted_query(db_app, monkeypatch, merge_max):
    monkeypatch.setattr(pages, "LOOKBACK_MERGE_MAX", merge_max)
    rng = random.Random(15)
    with db_app.app_context():
        w = build_world()
        now = utcnow()
        places = [db.session.get(Compound, c) for c in (w.a1, w.a2, w.b1)]
        times = [now - timedelta(hours=h) for h in range(12)]   # few: many ties
        statuses = ("fixed",) * 4 + ("reported", "verified")
        for _ in range(120):
            place = rng.choice(places)
            status = rng.choice(statuses)
            fixed_at = None if rng.random() < 0.1 else rng.choice(times)
            db.session.add(Item(
                compound_id=place.id, community_id=place.community_id,
                company_id=place.company_id, category="flying_wire", form_id="hazard",
                form_version=1, status=status, reporter_id=w.vol_a,
                created_at=now - timedelta(days=1),
                fixed_at=fixed_at if status in ("fixed", "verified") else None))
        db.session.commit()
        for user_id in (w.vol_a, w.vol_b, w.staff_a, w.admin):
            user = db.session.get(User, user_id)
            every = direct(user)
            assert user_id not in (w.vol_a, w.vol_b) or every   # the test shows something
            for limit in (1, 3, 10, 100):
                got = list(db.session.execute(
                    pages.lookback_query(user, limit=limit)).scalars())
                assert [i.id for i in got] == every[:limit], (user.username, limit)
