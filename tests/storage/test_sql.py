"""storage.sql.id_in: the same rows as an IN list, on SQLite through json_each."""

from __future__ import annotations

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql

from pulse_tui.services.audit import table_of
from pulse_tui.storage.models import Order
from pulse_tui.storage.sql import id_in

ORDERS = table_of(Order)


def test_id_in_selects_exactly_the_listed_ids(small_db: Engine) -> None:
    with small_db.connect() as c:
        every = c.execute(select(ORDERS.c.id)).scalars().all()
        for ids in ([], [every[0]], every[::3] + [10**9], list(reversed(every))):
            stmt = select(ORDERS.c.id).where(id_in(c, ORDERS.c.id, ids)).order_by(ORDERS.c.id)
            assert c.execute(stmt).scalars().all() == sorted(set(ids) & set(every))
            assert "json_each" in str(stmt.compile(c))


def test_id_in_is_a_plain_in_list_elsewhere() -> None:
    class PostgresConn:
        dialect = postgresql.dialect()

    clause = id_in(PostgresConn(), ORDERS.c.id, [3, 1])  # type: ignore[arg-type]
    sql = str(select(ORDERS.c.id).where(clause).compile(dialect=postgresql.dialect()))
    assert "json_each" not in sql and "orders.id IN (__[POSTCOMPILE_id_1])" in sql
