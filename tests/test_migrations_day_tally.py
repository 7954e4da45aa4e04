"""Migration a3d9e6f1c284 (issue 15 §4): the day tally loses its due day and the owed
items' due days move to item_tally_day_due. Both ways, on SQLite and PostgreSQL, the
tables are filled from the items already there: after the upgrade they equal what the
listener keeps (services/counts._keys), after the downgrade the old shape's recount."""
import random
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from patrol.extensions import db
from patrol.lifecycle import Status
from patrol.models import Compound, Item, User, utcnow
from patrol.services import counts as tallies
from tests.factories import build_world
from tests.test_item_counts import assert_tallies_match
from tests.test_migrations import ENGINES, empty_app  # noqa: F401 (the fixture)

OLD_KEYS = ("community_id", "day", "compound_id", "company_id", "status", "category",
            "due_day")


def _items(n: int) -> None:
    """Items of every status, created over three weeks, deadlines and fixes around them
    (with and without), through the ORM: the listener keeps the tallies."""
    rng = random.Random(3)
    compounds = db.session.execute(select(Compound)).scalars().all()
    reporter = db.session.execute(select(User.id)).scalars().first()
    now = utcnow()
    statuses = [s.value for s in Status if s != Status.MERGED]
    for _ in range(n):
        compound = rng.choice(compounds)
        created = now - timedelta(minutes=rng.randrange(0, 60 * 24 * 21))
        status = rng.choice(statuses)
        db.session.add(Item(
            compound_id=compound.id, community_id=compound.community_id,
            company_id=compound.company_id, category=rng.choice(("fire_exit", "flying_wire")),
            form_id="hazard", form_version=1, status=status, reporter_id=reporter,
            created_at=created, updated_at=created,
            deadline=None if rng.random() < 0.1
            else created + timedelta(minutes=rng.randrange(30, 60 * 24 * 10)),
            fixed_at=created + timedelta(hours=rng.randrange(1, 72))
            if status in ("fixed", "verified") else None))
    db.session.commit()


def _old_recount() -> Counter:
    want: Counter = Counter()
    for i in db.session.execute(select(Item)).scalars():
        want[(i.community_id, i.created_at.date(), i.compound_id, i.company_id or 0, i.status,
              i.category, tallies.due_day(i.status, i.deadline, i.fixed_at))] += 1
    return want


@pytest.mark.parametrize("empty_app", ENGINES, indirect=True)
def test_day_tally_reshaped_both_ways_from_the_items(empty_app):
    app, engine = empty_app
    runner = app.test_cli_runner()
    assert runner.invoke(args=["db", "upgrade"]).exit_code == 0
    build_world()
    _items(300)
    assert_tallies_match("seeding")
    db.session.remove()

    result = runner.invoke(args=["db", "downgrade", "7c2e9a4b6d13"])
    assert result.exit_code == 0, (result.output, result.exception)
    have = Counter({tuple(r[:-1]): r[-1] for r in db.session.execute(text(
        f"SELECT {', '.join(OLD_KEYS)}, n FROM item_tally_day"))})
    if engine == "sqlite":   # dates come back as text from a raw statement
        from datetime import date
        have = Counter({(k[0], date.fromisoformat(k[1]), *k[2:6], date.fromisoformat(k[6])): n
                        for k, n in have.items()})
    assert have == _old_recount()
    assert "item_tally_day_due" not in db.inspect(db.engine).get_table_names()
    db.session.remove()

    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, (result.output, result.exception)
    assert_tallies_match("the upgrade")
    # And the listener carries on from there.
    item = db.session.execute(select(Item).where(
        Item.status == Status.REPORTED.value)).scalars().first()
    item.status = Status.ACKNOWLEDGED.value
    item.deadline = utcnow() + timedelta(days=3)
    db.session.commit()
    assert_tallies_match("a change after the upgrade")


@pytest.mark.parametrize("empty_app", ENGINES, indirect=True)
def test_item_tally_recounted_by_e7a1c3b5d9f2(empty_app):
    """A tally that drifted (a +1/-1 pair at the wrong keys, as the listener once left)
    is counted afresh from the items by the upgrade."""
    app, engine = empty_app
    runner = app.test_cli_runner()
    assert runner.invoke(args=["db", "upgrade", "b6f2c8d4e1a7"]).exit_code == 0
    build_world()
    _items(60)
    db.session.remove()
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE item_tally SET n = n + 1"))
    with pytest.raises(AssertionError):
        assert_tallies_match("a drifted tally")
    db.session.remove()
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, (result.output, result.exception)
    assert_tallies_match("the recount")
