"""Order filters and the small query language the desk and the CLI share.

``status:pending pay:paid country:DE total:>100 placed:7d sku:MUG-1 tag:vip
customer:ada hold:yes fulfil:unfulfilled some free text`` → ``OrderFilter``.
Pure parsing: storage.queries turns an OrderFilter into SQL.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import TypeVar

from dateutil.parser import ParserError
from dateutil.parser import parse as parse_dt
from dateutil.relativedelta import relativedelta

from .status import FulfillmentStatus, OrderStatus, PaymentStatus


class FilterError(ValueError):
    """A query that cannot be understood; the message says which part."""


SORT_KEYS = ("placed", "total", "status")


@dataclass(frozen=True)
class OrderFilter:
    statuses: tuple[OrderStatus, ...] = ()
    payment_statuses: tuple[PaymentStatus, ...] = ()
    fulfillment_statuses: tuple[FulfillmentStatus, ...] = ()
    placed_from: datetime | None = None  # inclusive
    placed_to: datetime | None = None  # exclusive
    customer: str | None = None  # name or email fragment, or a customer id "#12"
    customer_id: int | None = None
    countries: tuple[str, ...] = ()
    total_min: Decimal | None = None  # major units, compared in the order's currency
    total_max: Decimal | None = None
    total_min_strict: bool = False  # total:>100 (strict) vs total:>=100
    total_max_strict: bool = False
    sku: str | None = None
    tag: str | None = None
    on_hold: bool | None = None
    text: str | None = None  # free text: number, name, email, SKU, tracking

    def with_(self, **changes: object) -> OrderFilter:
        return replace(self, **changes)  # type: ignore[arg-type]

    def is_empty(self) -> bool:
        return self == OrderFilter()

    def describe(self) -> str:
        """Human words for an empty-result message: 'status pending, country DE'."""
        parts: list[str] = []
        if self.statuses:
            parts.append("status " + "/".join(self.statuses))
        if self.payment_statuses:
            parts.append("payment " + "/".join(self.payment_statuses))
        if self.fulfillment_statuses:
            parts.append("fulfilment " + "/".join(self.fulfillment_statuses))
        if self.placed_from or self.placed_to:
            a = self.placed_from.date().isoformat() if self.placed_from else "…"
            b = (
                (self.placed_to - timedelta(seconds=1)).date().isoformat()
                if self.placed_to
                else "now"
            )
            parts.append(f"placed {a}..{b}")
        if self.customer:
            parts.append(f"customer “{self.customer}”")
        if self.countries:
            parts.append("country " + "/".join(self.countries))
        if self.total_min is not None:
            parts.append(f"total {'>' if self.total_min_strict else '≥'} {self.total_min}")
        if self.total_max is not None:
            parts.append(f"total {'<' if self.total_max_strict else '≤'} {self.total_max}")
        if self.sku:
            parts.append(f"SKU {self.sku}")
        if self.tag:
            parts.append(f"tag {self.tag}")
        if self.on_hold is not None:
            parts.append("on hold" if self.on_hold else "not on hold")
        if self.text:
            parts.append(f"text “{self.text}”")
        return ", ".join(parts) or "no filter"


@dataclass(frozen=True)
class Sort:
    key: str = "placed"
    descending: bool = True

    def __post_init__(self) -> None:
        if self.key not in SORT_KEYS:
            raise FilterError(f"unknown sort {self.key!r} (use one of {', '.join(SORT_KEYS)})")


# -- dates -------------------------------------------------------------------

_SPAN_RE = re.compile(r"^(\d+)([dwmy])$")


def parse_date_range(text: str, now: datetime) -> tuple[datetime | None, datetime | None]:
    """``7d`` / ``2w`` / ``3m`` / ``1y`` (until now), ``2026-11-01`` (that day),
    ``2026-11-01..2026-11-30`` (both days included), ``2026-11-01..`` and
    ``..2026-11-30``. Returns [from, to) as aware UTC datetimes."""
    t = text.strip()
    if not t:
        raise FilterError("empty date")
    m = _SPAN_RE.match(t.lower())
    if m:
        n, unit = int(m.group(1)), m.group(2)
        if n <= 0:
            raise FilterError(f"date span must be positive: {text!r}")
        delta = {
            "d": relativedelta(days=n),
            "w": relativedelta(weeks=n),
            "m": relativedelta(months=n),
            "y": relativedelta(years=n),
        }[unit]
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        return now - delta, None
    if ".." in t:
        a, b = t.split("..", 1)
        if not a.strip() and not b.strip():
            raise FilterError(f"date range needs a start or an end: {text!r}")
        start = _day(a, text) if a.strip() else None
        end = _day(b, text) if b.strip() else None
        if start and end and end < start:
            raise FilterError(f"date range ends before it starts: {text!r}")
        return (
            datetime.combine(start, time.min, UTC) if start else None,
            datetime.combine(end + timedelta(days=1), time.min, UTC) if end else None,
        )
    d = _day(t, text)
    return datetime.combine(d, time.min, UTC), datetime.combine(
        d + timedelta(days=1), time.min, UTC
    )


def _day(part: str, whole: str) -> date:
    p = part.strip()
    if not re.match(r"^\d{4}-\d{2}-\d{2}$", p):
        raise FilterError(
            f"bad date {whole!r}: use YYYY-MM-DD, a range A..B, or a span like 7d, 2w, 3m"
        )
    try:
        return parse_dt(p).date()
    except (ParserError, ValueError, OverflowError) as exc:
        raise FilterError(f"bad date {p!r}: {exc}") from exc


# -- the query language ------------------------------------------------------

_ALIASES = {
    "status": "status",
    "s": "status",
    "pay": "pay",
    "payment": "pay",
    "fulfil": "fulfil",
    "fulfill": "fulfil",
    "fulfillment": "fulfil",
    "country": "country",
    "total": "total",
    "placed": "placed",
    "date": "placed",
    "sku": "sku",
    "tag": "tag",
    "customer": "customer",
    "cust": "customer",
    "hold": "hold",
}
_TOTAL_RE = re.compile(r"^(>=|<=|>|<|=)?\s*(\d+(?:\.\d+)?)$")


_E = TypeVar("_E", bound=StrEnum)


def _enum_values(kind: type[_E], raw: str, label: str) -> tuple[_E, ...]:
    out: list[_E] = []
    for v in raw.split(","):
        v = v.strip().lower()
        try:
            out.append(kind(v))
        except ValueError:
            allowed = ", ".join(m.value for m in kind)
            raise FilterError(f"unknown {label} {v!r} (one of: {allowed})") from None
    return tuple(out)


def parse_query(text: str, now: datetime, base: OrderFilter | None = None) -> OrderFilter:
    """Parse the filter bar's text into an OrderFilter (raises FilterError)."""
    f = base or OrderFilter()
    try:
        tokens = shlex.split(text)
    except ValueError as exc:
        raise FilterError(f"unbalanced quotes in {text!r}") from exc
    free: list[str] = []
    for tok in tokens:
        key, sep, val = tok.partition(":")
        name = _ALIASES.get(key.lower()) if sep else None
        if not sep or name is None:
            if sep and key and not key.startswith(("http", "PB", "pb")) and "@" not in tok:
                raise FilterError(
                    f"unknown filter {key!r}: use status, pay, fulfil, country, total, "
                    "placed, sku, tag, customer or hold"
                )
            free.append(tok)
            continue
        if not val:
            raise FilterError(f"{key}: needs a value")
        f = apply_term(f, name, val, now)
    if free:
        f = f.with_(text=" ".join(free))
    return f


def apply_term(f: OrderFilter, name: str, val: str, now: datetime) -> OrderFilter:
    """Apply one `name:value` term (name as in the query language, e.g. "status",
    "pay", "placed") — the CLI options use this too, so both doors parse alike."""
    name = _ALIASES.get(name, name)
    if name == "status":
        return f.with_(statuses=_enum_values(OrderStatus, val, "status"))
    if name == "pay":
        return f.with_(payment_statuses=_enum_values(PaymentStatus, val, "payment status"))
    if name == "fulfil":
        return f.with_(
            fulfillment_statuses=_enum_values(FulfillmentStatus, val, "fulfilment status")
        )
    if name == "country":
        codes = tuple(c.strip().upper() for c in val.split(","))
        bad = [c for c in codes if not re.match(r"^[A-Z]{2}$", c)]
        if bad:
            raise FilterError(f"country must be a 2-letter ISO code, got {bad[0]!r}")
        return f.with_(countries=codes)
    if name == "total":
        return _apply_total(f, val)
    if name == "placed":
        start, end = parse_date_range(val, now)
        return f.with_(placed_from=start, placed_to=end)
    if name == "sku":
        return f.with_(sku=val.upper())
    if name == "tag":
        return f.with_(tag=normalize_tag(val))
    if name == "customer":
        if val.startswith("#") and val[1:].isdigit():
            return f.with_(customer_id=int(val[1:]))
        return f.with_(customer=val)
    if name == "hold":
        v = val.lower()
        if v not in ("yes", "no", "true", "false", "1", "0"):
            raise FilterError("hold: takes yes or no")
        return f.with_(on_hold=v in ("yes", "true", "1"))
    raise AssertionError(name)  # pragma: no cover


def _apply_total(f: OrderFilter, val: str) -> OrderFilter:
    if ".." in val:
        a, b = val.split("..", 1)
        if not a.strip() and not b.strip():
            raise FilterError(f"total range needs a start or an end: {val!r}")
        lo = _amount(a, val) if a else None
        hi = _amount(b, val) if b else None
        if lo is not None and hi is not None and hi < lo:
            raise FilterError(f"total range ends below its start: {val!r}")
        return f.with_(total_min=lo, total_max=hi)
    m = _TOTAL_RE.match(val.strip())
    if not m:
        raise FilterError(f"bad total {val!r}: use e.g. total:>100, total:<=50, total:10..20")
    op, amount = m.group(1) or "=", Decimal(m.group(2))
    if amount.adjusted() > 15:
        raise FilterError(f"bad total {val!r}: too large")
    if op in (">", ">="):
        return f.with_(total_min=amount, total_min_strict=op == ">")
    if op in ("<", "<="):
        return f.with_(total_max=amount, total_max_strict=op == "<")
    return f.with_(total_min=amount, total_max=amount)


def _amount(text: str, whole: str) -> Decimal:
    try:
        d = Decimal(text.strip())
    except InvalidOperation:
        raise FilterError(f"bad total {whole!r}") from None
    # NaN/Infinity would blow up in comparisons or SQL; huge exponents too.
    if not d.is_finite() or d.adjusted() > 15:
        raise FilterError(f"bad total {whole!r}")
    if d < 0:
        raise FilterError("total cannot be negative")
    return d


def normalize_tag(tag: str) -> str:
    t = tag.strip().lower()
    if not re.match(r"^[a-z0-9][a-z0-9_\-]{0,31}$", t):
        raise FilterError(f"bad tag {tag!r}: letters, digits, '-' and '_', up to 32 characters")
    return t
