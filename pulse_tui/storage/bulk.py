"""Raw bulk loading: executemany in one big transaction on one connection.

For loaders that write hundreds of thousands of rows (the demo seeder): the
ORM costs ~100 µs a row, a DB-API ``executemany`` of plain tuples ~1 µs. No
business rules here: callers hand over finished rows.

On SQLite the loading connection is detached from the pool (its PRAGMAs die
with it), the file uses a rollback journal instead of WAL during the load
(new pages need no journal, where WAL writes every page twice: 189 s → 130 s
for a million-order seed), foreign-key checks are off for the load (callers write consistent
ids) and secondary indexes of the tables being filled are dropped and rebuilt
once at the end, which is several times cheaper than maintaining them row by
row. Everything, index rebuild included, is one transaction: a failure
leaves the database as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

US_PER_SECOND = 1_000_000
US_PER_DAY = 86_400 * US_PER_SECOND
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class BulkLoader:
    """One open write transaction with helpers for fast inserts."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.raw: Any = conn.connection.driver_connection
        self.sqlite = conn.dialect.name == "sqlite"
        style = conn.dialect.paramstyle
        self._mark = "?" if style == "qmark" else "%s"
        self._dropped: list[str] = []

    def insert(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        marks = ",".join([self._mark] * len(columns))
        sql = f"INSERT INTO {table} ({','.join(columns)}) VALUES ({marks})"
        cur = self.raw.cursor()
        try:
            cur.executemany(sql, rows)
        finally:
            cur.close()

    def update(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """UPDATE table SET columns... WHERE id = ?; each row is (*values, id)."""
        sets = ", ".join(f"{c} = {self._mark}" for c in columns)
        cur = self.raw.cursor()
        try:
            cur.executemany(f"UPDATE {table} SET {sets} WHERE id = {self._mark}", rows)
        finally:
            cur.close()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cur = self.raw.cursor()
        try:
            cur.execute(sql, tuple(params))
            return list(cur.fetchall()) if cur.description else []
        finally:
            cur.close()

    def session(self) -> Session:
        """An ORM session inside this transaction (for storage helpers that take one)."""
        return Session(bind=self.conn, join_transaction_mode="create_savepoint")

    # -- secondary indexes (SQLite) -----------------------------------------

    def drop_indexes(self, tables: Sequence[str]) -> None:
        """Drop the explicit indexes of ``tables``; ``rebuild_indexes`` restores them."""
        if not self.sqlite:
            return
        marks = ",".join("?" * len(tables))
        rows = self.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            f"AND tbl_name IN ({marks}) ORDER BY name",
            tables,
        )
        for name, sql in rows:
            self.execute(f'DROP INDEX "{name}"')
            self._dropped.append(sql)

    def rebuild_indexes(self) -> None:
        for sql in self._dropped:
            self.execute(sql)
        self._dropped = []


@contextmanager
def bulk_load(engine: Engine, *, cache_mib: int = 512) -> Iterator[BulkLoader]:
    """Open a connection, start a write transaction, commit on success.

    SQLite: BEGIN IMMEDIATE (writers queue instead of failing halfway),
    foreign keys off and a large page cache for the load; the connection's
    PRAGMAs are put back before it returns to the pool.
    """
    if engine.dialect.name == "sqlite":
        # Alone on the file, the load can leave WAL for a rollback journal:
        # a bulk load into new pages journals almost nothing that way, where
        # WAL would write every page twice (log, then checkpoint).
        engine.dispose()
    conn = engine.connect()
    sqlite = conn.dialect.name == "sqlite"
    raw: Any = conn.connection.driver_connection
    restore: list[str] = []
    try:
        if sqlite:
            mode = raw.execute("PRAGMA journal_mode").fetchone()[0]
            if raw.execute("PRAGMA journal_mode=DELETE").fetchone()[0] == "delete":
                restore.append(f"PRAGMA journal_mode={mode}")
            for pragma in ("foreign_keys", "cache_size", "temp_store"):
                value = raw.execute(f"PRAGMA {pragma}").fetchone()[0]
                restore.append(f"PRAGMA {pragma}={int(value)}")
            raw.execute("PRAGMA foreign_keys=OFF")
            raw.execute(f"PRAGMA cache_size=-{cache_mib * 1024}")
            raw.execute("PRAGMA temp_store=MEMORY")
            conn = conn.execution_options(sqlite_begin="IMMEDIATE")
        trans = conn.begin()
        loader = BulkLoader(conn)
        try:
            yield loader
            loader.rebuild_indexes()
            trans.commit()
        except BaseException:
            trans.rollback()
            raise
        if sqlite:
            raw.execute("PRAGMA analysis_limit=1000")
            raw.execute("ANALYZE")
            raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        for sql in restore:
            raw.execute(sql)
        conn.close()


def timestamp_text() -> Callable[[int], str]:
    """A function: microseconds since the epoch → 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC).

    Exactly the text SQLAlchemy's DateTime writes on SQLite, so ORM reads
    work; several times faster than ``datetime.isoformat`` for millions of values.
    """
    days: dict[int, str] = {}
    hms = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}." for s in range(86_400)]

    def text(us: int) -> str:
        day, rest = divmod(us, US_PER_DAY)
        d = days.get(day)
        if d is None:
            d = days[day] = datetime.fromtimestamp(day * 86_400, UTC).strftime("%Y-%m-%d ")
        sec, frac = divmod(rest, US_PER_SECOND)
        return f"{d}{hms[sec]}{frac:06d}"

    return text


def to_us(dt: datetime) -> int:
    """An aware datetime as integer microseconds since the epoch."""
    delta = dt.astimezone(UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * US_PER_SECOND + delta.microseconds
