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
import json
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import IO, Any

from sqlalchemy import String, and_, cast, func, select, true, type_coerce
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
    e = _exp(currency)
    if e == 0:
        return str(amount)
    q, r = divmod(abs(amount), 10**e)
    return f"{'-' if amount < 0 else ''}{q}.{r:0{e}d}"


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
        with read_session(ctx.engine) as s:
            total = _count(s, selection)
            rows = _rows(s, selection, cols, flat=fmt != ExportFormat.JSONL)
            n = _WRITERS[fmt](tmp, cols, rows, total, on_progress, should_cancel)
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
    per cell than the rest of the export); converters below accept both forms."""
    return type_coerce(expr, NullType())


def _source(name: str) -> Any:
    if name == "items":  # '2× Blue mug, 1× T-shirt M', aggregated in the database
        part = cast(_L.c.quantity, String) + "× " + _L.c.name
        return (
            select(func.aggregate_strings(part, ", "))
            .where(_L.c.order_id == _O.c.id)
            .scalar_subquery()
        )
    if name == "tags":  # tags cannot hold commas (domain.filters.normalize_tag)
        return (
            select(func.aggregate_strings(_T.c.tag, ","))
            .where(_T.c.order_id == _O.c.id)
            .scalar_subquery()
        )
    return _SOURCES[name]


def _when(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, str):  # SQLite: 'YYYY-MM-DD HH:MM:SS[.ffffff]', stored as UTC
        return f"{v[:10]}T{v[11:]}+00:00"
    return _iso(v)


def _converters(cols: Sequence[str], flat: bool) -> list[Callable[[Any, str], Any] | None]:
    """One converter per column (None: the value as it comes; csv and openpyxl
    write None as an empty cell), built once."""
    out: list[Callable[[Any, str], Any] | None] = []
    for name in cols:
        if name in MONEY_COLUMNS:
            out.append(major_units)
        elif name in ("placed_at", "updated_at"):
            out.append(lambda v, _c: _when(v))
        elif name == "on_hold":
            out.append((lambda v, _c: "yes" if v else "no") if flat else (lambda v, _c: bool(v)))
        elif name == "tags" and not flat:
            out.append(lambda v, _c: sorted(v.split(",")) if v else [])
        else:
            out.append(None)
    return out


def _convert(r: Any, plan: list[tuple[int, Callable[[Any, str], Any]]]) -> list[Any]:
    row = list(r[2:])  # copied in C; only the few columns with a converter cost Python
    for j, f in plan:
        row[j] = f(row[j], r[1])
    return row


def _rows(
    s: Session, selection: Selection, cols: Sequence[str], *, flat: bool
) -> Iterator[list[list[Any]]]:
    """The selection's rows as lists of values in ``cols`` order, a chunk at a
    time (``flat``: CSV/XLSX cells; else JSON values)."""
    exprs = [_raw(_source(c)) for c in cols]
    convs = _converters(cols, flat)
    plan = [(j, f) for j, f in enumerate(convs) if f is not None]
    conn = s.connection()
    for where in _where(s, selection):
        after = 0
        while True:
            stmt = (
                select(_O.c.id, _raw(_O.c.currency), *exprs)
                .join(_C, _C.c.id == _O.c.customer_id)
                .where(and_(true(), *where), _O.c.id > after)
                .order_by(_O.c.id)
                .limit(CHUNK)
            )
            chunk = conn.execute(stmt).all()
            if not chunk:
                break
            after = chunk[-1][0]
            yield [_convert(r, plan) for r in chunk]
            if len(chunk) < CHUNK:
                break


_Chunks = Iterator[list[list[Any]]]
_Progress = Callable[[int, int], None] | None
_Cancel = Callable[[], bool] | None


def _drive(
    chunks: _Chunks,
    total: int,
    write: Callable[[list[list[Any]]], None],
    on_progress: _Progress,
    should_cancel: _Cancel,
) -> int:
    done = 0
    for chunk in chunks:
        if should_cancel is not None and should_cancel():
            raise ExportCancelled(f"export cancelled after {done:,} of {total:,} orders")
        write(chunk)
        done += len(chunk)
        if on_progress is not None:
            on_progress(done, max(total, done))
    return done


def _write_csv(
    tmp: Path, cols: Sequence[str], chunks: _Chunks, total: int, prog: _Progress, cancel: _Cancel
) -> int:
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        return _drive(chunks, total, w.writerows, prog, cancel)


def _write_jsonl(
    tmp: Path, cols: Sequence[str], chunks: _Chunks, total: int, prog: _Progress, cancel: _Cancel
) -> int:
    with open(tmp, "w", encoding="utf-8") as fh:
        out: IO[str] = fh
        dumps = json.JSONEncoder(ensure_ascii=False).encode

        def write(chunk: list[list[Any]]) -> None:
            out.write("".join(dumps(dict(zip(cols, r, strict=True))) + "\n" for r in chunk))

        return _drive(chunks, total, write, prog, cancel)


def _write_xlsx(
    tmp: Path, cols: Sequence[str], chunks: _Chunks, total: int, prog: _Progress, cancel: _Cancel
) -> int:
    from openpyxl import Workbook  # only exports to XLSX pay for the import

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("orders")
    ws.append(list(cols))

    def write(chunk: list[list[Any]]) -> None:
        for row in chunk:
            ws.append(row)

    n = _drive(chunks, total, write, prog, cancel)
    wb.save(tmp)
    return n


_WRITERS = {
    ExportFormat.CSV: _write_csv,
    ExportFormat.JSONL: _write_jsonl,
    ExportFormat.XLSX: _write_xlsx,
}
