"""Row locks that hold on both engines, for a check followed by a write.

Two requests that read "is there a patrol under way?", "is this report still pending?" or
"which company runs this compound?" and then write on the answer must not both act on the
same old answer. Holding the row makes the second wait for the first's commit; it then
reads what the first wrote.

- PostgreSQL: SELECT … FOR NO KEY UPDATE (exclusive), or FOR SHARE (many readers, no
  writer). NO KEY UPDATE, not UPDATE: inserting a row that refers to this one (an item of
  the compound) takes KEY SHARE on it and must not wait.
- SQLite has a single writer and reads outside a transaction until the first write: a
  write that changes nothing (UPDATE … RETURNING, SQLite 3.35+) takes its lock now and
  reads the row; later reads see the latest commit. Shared and exclusive are the same.
"""
from __future__ import annotations

import functools

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from ..extensions import db


def hold(column, ident: int, *, share: bool = False):
    """Hold the row of a model whose id is `ident` until the commit, and return its
    `column` (a model attribute: `Compound.company_id`) as it is now, None if it is gone."""
    model = column.class_
    if db.session.get_bind().dialect.name == "postgresql":
        return db.session.execute(
            db.select(column).where(model.id == ident)
            .with_for_update(read=share, key_share=not share)).scalar()
    # Text, not an ORM or Core update: those would add the table's onupdate columns.
    name = column.property.columns[0].name
    same = _plain_column(model.__table__)
    return db.session.execute(text(
        f'UPDATE "{model.__table__.name}" SET "{same}" = "{same}" WHERE id = :id '
        f'RETURNING "{name}"'), {"id": ident}).scalar()


@functools.cache
def _plain_column(table) -> str:
    """A column to set to itself: not `id` (with foreign keys on, SQLite treats any write
    of a referenced key as a change and checks every table that refers to it: the whole
    presence table, twice, for a compound); one no index or foreign key names if there
    is one (nothing else to maintain), else any other."""
    indexed = {c.name for index in table.indexes for c in index.columns}
    indexed |= {c.name for constraint in table.constraints
                for c in getattr(constraint, "columns", ())}
    others = [c for c in table.columns if not c.primary_key]
    plain = [c for c in others if not c.foreign_keys and c.name not in indexed]
    return (plain or others)[0].name


def flush_or(refusal: Exception) -> None:
    """Flush a new or renamed row whose name another request may have taken a moment
    after this one checked (the check and the unique key say the same): if the key
    refuses it, roll back and raise `refusal`, the worded answer the check gives."""
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise refusal from None
