"""Export orders to CSV, JSON Lines or XLSX, streamed.

Who may call: admins (Permission.EXPORT). The selection (a filter or ids, as
for bulk actions) is read in keyset chunks of ``CHUNK`` orders as plain rows,
written as they come (csv module / one JSON object a line / an openpyxl
write-only workbook), so memory stays flat whatever the number of orders.
The file is written under a temporary name beside ``path`` and renamed at the
end: a cancelled or failed export leaves no half file, and an existing file
is only replaced with ``force``.

Money is never a float: amounts are decimal strings in major units with the
currency's digits ("12.50", JPY "1250", KWD "4.500") beside ``total_minor``
(the integer the database holds). Times are ISO 8601 UTC.
"""

from __future__ import annotations

import csv
import io
import json
import os
import uuid
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, String, and_, cast, func, select, true, type_coerce
from sqlalchemy.orm import Session
from sqlalchemy.types import NullType

from pulse_tui.domain.filters import OrderFilter
from pulse_tui.domain.money import exponent
from pulse_tui.domain.permissions import Permission
from pulse_tui.storage.db import read_session
from pulse_tui.storage.models import Customer, Order, OrderLine, OrderTag
from pulse_tui.storage.queries import filter_clauses

from .audit import table_of
from .bulk import Selection
from .context import Context
from .errors import InvalidInput, ServiceError

CHUNK = 2000
CACHE_KIB = 32 * 1024  # SQLite page cache while exporting (see _page_cache)


class ExportFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"
    XLSX = "xlsx"


class ExportCancelled(ServiceError):
    """should_cancel() said stop: nothing was written."""


_O = table_of(Order)
_C = table_of(Customer)
_L = table_of(OrderLine)
_T = table_of(OrderTag)

# column name -> the database column it reads (None: computed per chunk)
_SOURCES: dict[str, Any] = {
    "number": _O.c.number,
    "placed_at": _O.c.placed_at,
    "status": _O.c.status,
    "payment_status": _O.c.payment_status,
    "fulfillment_status": _O.c.fulfillment_status,
    "on_hold": _O.c.on_hold,
    "hold_reason": _O.c.hold_reason,
    "cancel_reason": _O.c.cancel_reason,
    "customer_name": _C.c.name,
    "customer_email": _C.c.email,
    "country": _O.c.country,
    "currency": _O.c.currency,
    "subtotal": _O.c.subtotal,
    "discount": _O.c.discount,
    "shipping": _O.c.shipping,
    "tax": _O.c.tax,
    "total": _O.c.total,
    "total_minor": _O.c.total,
    "paid": _O.c.paid,
    "refunded": _O.c.refunded,
    "item_count": _O.c.item_count,
    "items": None,
    "tags": None,
    "updated_at": _O.c.updated_at,
}
EXPORT_COLUMNS: tuple[str, ...] = tuple(_SOURCES)
MONEY_COLUMNS = frozenset({"subtotal", "discount", "shipping", "tax", "total", "paid", "refunded"})
DEFAULT_COLUMNS: tuple[str, ...] = (
    "number",
    "placed_at",
    "status",
    "payment_status",
    "fulfillment_status",
    "customer_name",
    "customer_email",
    "country",
    "currency",
    "total",
    "total_minor",
    "items",
    "tags",
)


def parse_columns(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"number,total"`` or a list → checked column names (default: DEFAULT_COLUMNS)."""
    if text is None:
        return DEFAULT_COLUMNS
    names = text.split(",") if isinstance(text, str) else list(text)
    cols = tuple(n.strip().lower() for n in names if n.strip())
    if not cols:
        raise InvalidInput("name at least one column")
    unknown = [c for c in cols if c not in _SOURCES]
    if unknown:
        raise InvalidInput(f"unknown column {unknown[0]!r} (one of: {', '.join(EXPORT_COLUMNS)})")
    if len(set(cols)) != len(cols):
        raise InvalidInput("a column is named twice")
    return cols


@cache
def _exp(currency: str) -> int:
    return exponent(currency)


def major_units(amount: int, currency: str) -> str:
    """1250 EUR → "12.50", 1250 JPY → "1250", -5 USD → "-0.05" (integers only)."""
    return _money_format(currency)(amount)


def _iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


def require_export(ctx: Context) -> None:
    """Denied unless the actor may export (doors ask before reading anything)."""
    ctx.actor.require(Permission.EXPORT, "export orders")


def export_orders(
    ctx: Context,
    selection: Selection,
    fmt: ExportFormat,
    path: Path,
    *,
    columns: Sequence[str] | None = None,
    force: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> int:
    """Admins. Write the selection's orders (oldest first) to ``path`` in
    ``fmt``; returns the rows written. InvalidInput when ``path`` exists and
    not ``force``, or for an unknown column; ExportCancelled when
    ``should_cancel()`` said stop (checked between chunks; nothing is left
    behind). ``on_progress(done, total)`` after every chunk."""
    require_export(ctx)
    try:
        fmt = ExportFormat(str(fmt).lower())
    except ValueError:
        allowed = ", ".join(f.value for f in ExportFormat)
        raise InvalidInput(f"unknown export format {fmt!r} (one of: {allowed})") from None
    cols = parse_columns(columns)
    path = Path(path)
    if path.exists() and not force:
        raise InvalidInput(f"{path} exists; use --force to replace it")
    if path.is_dir():
        raise InvalidInput(f"{path} is a directory")
    if not path.parent.is_dir():
        raise InvalidInput(f"no directory {path.parent}")
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        with read_session(ctx.engine) as s, _page_cache(s.connection()):
            total = _count(s, selection)
            chunks = _chunks(s, selection, cols, flat=fmt != ExportFormat.JSONL)
            try:
                n = _WRITERS[fmt](tmp, cols, chunks, total, on_progress, should_cancel)
            finally:
                chunks.close()
        os.replace(tmp, path)
        return n
    finally:
        tmp.unlink(missing_ok=True)


def _where(s: Session, selection: Selection) -> Iterator[list[Any]]:
    if selection.ids:
        ids = sorted(set(selection.ids))
        for i in range(0, len(ids), CHUNK):
            yield [_O.c.id.in_(ids[i : i + CHUNK])]
    else:
        yield filter_clauses(s, selection.filter or OrderFilter())


def _count(s: Session, selection: Selection) -> int:
    n = 0
    for where in _where(s, selection):
        inner = select(_O.c.id).where(and_(true(), *where)).subquery()
        n += int(s.execute(select(func.count()).select_from(inner)).scalar_one())
    return n


def _raw(expr: Any) -> Any:
    """The driver's own value (no SQLAlchemy result processing: it costs more
    per cell than the rest of the export); the converters accept both forms."""
    return type_coerce(expr, NullType())


@cache
def _money_format(currency: str) -> Callable[[int], str]:
    """``major_units`` for one currency, with its digits looked up once."""
    e = _exp(currency)
    if e == 0:
        return str
    pattern, unit = f"%d.%0{e}d", 10**e

    def fmt(amount: int) -> str:
        if amount < 0:
            return "-" + pattern % divmod(-amount, unit)
        return pattern % divmod(amount, unit)

    return fmt


def _when(v: Any) -> Any:
    """A stored time as ISO 8601 UTC. SQLite holds text: SQLAlchemy writes
    'YYYY-MM-DD HH:MM:SS.ffffff' (UTC); rows written through the driver's own
    datetime adapter carry an offset ('... 12:00:00+00:00')."""
    if v is None:
        return None
    if isinstance(v, str):
        if len(v) > 19 and v[19] != ".":  # an offset: parse, convert
            return _iso(datetime.fromisoformat(v))
        return f"{v[:10]}T{v[11:]}+00:00"
    return _iso(v)


# -- reading: a chunk of orders as columns ---------------------------------------
#
# Per chunk: one keyset query over orders and customers, and one query each for
# the chunk's lines and tags when those columns are asked for (a range scan of
# the order_id index, instead of a correlated subquery per order). Values come
# as the driver's tuples and are converted a column at a time: a chunk is a
# list of columns, each a sequence of cells in ``cols`` order.

_Columns = list[Sequence[Any]]
_Fetched = tuple[_Columns, dict[str, Any]]  # the query's columns, items/tags per order id


def _fetch(conn: Connection, stmt: Any) -> list[Any]:
    """All rows of ``stmt`` as the driver's tuples: SQLAlchemy binds the
    parameters, the DBAPI cursor (``CursorResult.cursor``) hands over the rows
    without building a Row object each."""
    result = conn.execute(stmt)
    try:
        return list(result.cursor.fetchall())
    finally:
        result.close()


def _per_order(conn: Connection, ids: Sequence[int], stmt: Any, oid: Any) -> list[Any]:
    """``stmt`` (child rows, order_id first) for the orders ``ids`` (ascending):
    one index range scan when the ids are dense (all orders, a broad filter),
    an IN list when the chunk is sparse."""
    if ids[-1] - ids[0] < 4 * len(ids):
        return _fetch(conn, stmt.where(oid >= ids[0], oid <= ids[-1]))
    return _fetch(conn, stmt.where(oid.in_(list(ids))))


# '2× Blue mug, 1× T-shirt M' per order, aggregated in the database (one cell
# per order, not one row per line). The aggregate takes the lines in the order
# of the order_id index scan, (order_id, id): the order they were added in.
_LINES_STMT = select(
    _raw(_L.c.order_id),
    func.aggregate_strings(cast(_L.c.quantity, String) + "× " + _L.c.name, ", "),
).group_by(_L.c.order_id)
_TAGS_STMT = select(_raw(_T.c.order_id), _raw(_T.c.tag)).order_by(_T.c.order_id, _T.c.tag)


def _items(conn: Connection, ids: Sequence[int]) -> dict[int, str]:
    """order id -> its lines as '2× Blue mug, 1× T-shirt M'."""
    return dict(_per_order(conn, ids, _LINES_STMT, _L.c.order_id))


def _tags(conn: Connection, ids: Sequence[int]) -> dict[int, list[str]]:
    """order id -> its tags, sorted (tags cannot hold commas: normalize_tag)."""
    out: dict[int, list[str]] = {}
    for oid, tag in _per_order(conn, ids, _TAGS_STMT, _T.c.order_id):
        out.setdefault(oid, []).append(tag)
    return out


def _money_column(values: Sequence[int], currencies: Sequence[str]) -> list[str]:
    fmts: dict[str, Callable[[int], str]] = {}
    out = []
    for v, c in zip(values, currencies, strict=True):
        f = fmts.get(c)
        if f is None:
            f = fmts[c] = _money_format(c)
        out.append(f(v))
    return out


_Maker = Callable[[_Fetched], Sequence[Any]]


def _maker(name: str, j: int, flat: bool) -> _Maker:
    """How export column ``name`` is made from a chunk (``j``: its query column)."""
    if name == "items":
        return lambda f: [f[1]["items"].get(i) for i in f[0][0]]
    if name == "tags":
        if flat:
            return lambda f: [",".join(f[1]["tags"].get(i, ())) for i in f[0][0]]
        return lambda f: [f[1]["tags"].get(i, []) for i in f[0][0]]
    if name in MONEY_COLUMNS:
        return lambda f: _money_column(f[0][j], f[0][1])
    if name in ("placed_at", "updated_at"):
        # the common SQLite text (26 characters) inline, anything else through _when
        return lambda f: [
            f"{v[:10]}T{v[11:]}+00:00" if type(v) is str and len(v) == 26 else _when(v)
            for v in f[0][j]
        ]
    if name == "on_hold":
        if flat:
            return lambda f: ["yes" if v else "no" for v in f[0][j]]
        return lambda f: [bool(v) for v in f[0][j]]
    return lambda f: f[0][j]


def _plan(cols: Sequence[str], flat: bool) -> tuple[list[Any], list[_Maker]]:
    """What to fetch (order id and currency first, each database column once)
    and how to make each export column from the fetched ones."""
    fetch: list[Any] = [_O.c.id, _O.c.currency]
    at: dict[Any, int] = {_O.c.currency: 1}
    makers = []
    for name in cols:
        src = _SOURCES[name]
        if src is not None and src not in at:
            at[src] = len(fetch)
            fetch.append(src)
        makers.append(_maker(name, at.get(src, -1), flat))
    return fetch, makers


def _chunks(s: Session, selection: Selection, cols: Sequence[str], *, flat: bool) -> _Chunks:
    """The selection's orders, oldest first, a chunk of columns at a time
    (``flat``: CSV/XLSX cells; else JSON values)."""
    fetch, makers = _plan(cols, flat)
    want_items, want_tags = "items" in cols, "tags" in cols
    exprs = [_raw(e) for e in fetch]
    conn = s.connection()
    for where in _where(s, selection):
        after = 0
        while True:
            stmt = (
                select(*exprs)
                .join(_C, _C.c.id == _O.c.customer_id)
                .where(and_(true(), *where), _O.c.id > after)
                .order_by(_O.c.id)
                .limit(CHUNK)
            )
            rows = _fetch(conn, stmt)
            if not rows:
                break
            columns: _Columns = list(zip(*rows, strict=True))
            ids = columns[0]
            extra: dict[str, Any] = {}
            if want_items:
                extra["items"] = _items(conn, ids)
            if want_tags:
                extra["tags"] = _tags(conn, ids)
            after = ids[-1]
            fetched = (columns, extra)
            yield [make(fetched) for make in makers]
            if len(rows) < CHUNK:
                break


@contextmanager
def _page_cache(conn: Connection) -> Iterator[None]:
    """SQLite: a bigger page cache on this connection while exporting (the
    customers join looks customers up in random order; with the default 2 MB
    most lookups go back to the OS). Restored afterwards: the connection goes
    back to the pool."""
    if conn.dialect.name != "sqlite":
        yield
        return
    old = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    conn.exec_driver_sql(f"PRAGMA cache_size=-{CACHE_KIB}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size={int(old or 0)}")


# -- writing ------------------------------------------------------------------------

_Chunks = Generator[_Columns, None, None]
_Progress = Callable[[int, int], None] | None
_Cancel = Callable[[], bool] | None


def _drive(
    chunks: _Chunks,
    total: int,
    write: Callable[[_Columns], None],
    on_progress: _Progress,
    should_cancel: _Cancel,
) -> int:
    done = 0
    for chunk in chunks:
        if should_cancel is not None and should_cancel():
            raise ExportCancelled(f"export cancelled after {done:,} of {total:,} orders")
        write(chunk)
        done += len(chunk[0])
        if on_progress is not None:
            on_progress(done, max(total, done))
    return done


def _csv_column(values: Sequence[Any]) -> Sequence[str]:
    """A column of cells as csv.writer (excel dialect, QUOTE_MINIMAL) writes
    them: None as empty, numbers with str(), quoted when a cell holds a comma,
    a quote or a line break. Most columns of a chunk need no quoting at all
    (codes, numbers, dates): one search over the joined column says so, and
    only the others look at every cell."""
    if None in values:
        values = ["" if v is None else v for v in values]
    try:
        joined = "\x00".join(values)
    except TypeError:  # numbers
        values = [v if type(v) is str else str(v) for v in values]
        joined = "\x00".join(values)
    if "," in joined or '"' in joined or "\n" in joined or "\r" in joined:
        return [
            '"' + v.replace('"', '""') + '"'
            if "," in v or '"' in v or "\n" in v or "\r" in v
            else v
            for v in values
        ]
    return values


def csv_lines(columns: _Columns) -> str:
    """The rows of ``columns`` as CSV text, byte for byte what ``csv.writer``
    (excel dialect) writes for them, a column at a time instead of a cell at a
    time."""
    if len(columns) == 1:  # csv.writer quotes a lone empty cell: let it
        buf = io.StringIO()
        csv.writer(buf).writerows(zip(*columns, strict=True))
        return buf.getvalue()
    cells = [_csv_column(c) for c in columns]
    if not cells[0]:
        return ""
    return "\r\n".join(map(",".join, zip(*cells, strict=True))) + "\r\n"


def _write_csv(
    tmp: Path, cols: Sequence[str], chunks: _Chunks, total: int, prog: _Progress, cancel: _Cancel
) -> int:
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        out: IO[str] = fh
        csv.writer(out).writerow(cols)

        def write(chunk: _Columns) -> None:
            out.write(csv_lines(chunk))

        return _drive(chunks, total, write, prog, cancel)


def _write_jsonl(
    tmp: Path, cols: Sequence[str], chunks: _Chunks, total: int, prog: _Progress, cancel: _Cancel
) -> int:
    with open(tmp, "w", encoding="utf-8") as fh:
        out: IO[str] = fh
        dumps = json.JSONEncoder(ensure_ascii=False).encode

        def write(chunk: _Columns) -> None:
            rows = zip(*chunk, strict=True)
            out.write("".join(dumps(dict(zip(cols, r, strict=True))) + "\n" for r in rows))

        return _drive(chunks, total, write, prog, cancel)


def _write_xlsx(
    tmp: Path, cols: Sequence[str], chunks: _Chunks, total: int, prog: _Progress, cancel: _Cancel
) -> int:
    from openpyxl import Workbook  # only exports to XLSX pay for the import

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("orders")
    ws.append(list(cols))

    def write(chunk: _Columns) -> None:
        for row in zip(*chunk, strict=True):
            ws.append(row)

    n = _drive(chunks, total, write, prog, cancel)
    wb.save(tmp)
    return n


_WRITERS = {
    ExportFormat.CSV: _write_csv,
    ExportFormat.JSONL: _write_jsonl,
    ExportFormat.XLSX: _write_xlsx,
}
