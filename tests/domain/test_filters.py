from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from pulse_tui.domain.filters import (
    FilterError,
    OrderFilter,
    Sort,
    apply_term,
    normalize_tag,
    parse_date_range,
    parse_query,
)
from pulse_tui.domain.status import FulfillmentStatus, OrderStatus, PaymentStatus

NOW = datetime(2026, 11, 26, 12, 30, tzinfo=UTC)


def d(y: int, m: int, day: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, m, day, h, mi, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("7d", d(2026, 11, 19, 12, 30), None),
        ("2w", d(2026, 11, 12, 12, 30), None),
        ("3m", d(2026, 8, 26, 12, 30), None),
        ("1y", d(2025, 11, 26, 12, 30), None),
        ("1D", d(2026, 11, 25, 12, 30), None),
        ("2026-11-01", d(2026, 11, 1), d(2026, 11, 2)),
        ("2026-11-01..2026-11-30", d(2026, 11, 1), d(2026, 12, 1)),
        ("2026-11-01..", d(2026, 11, 1), None),
        ("..2026-11-30", None, d(2026, 12, 1)),
        ("2026-11-05..2026-11-05", d(2026, 11, 5), d(2026, 11, 6)),
        (" 2026-02-28 ", d(2026, 2, 28), d(2026, 3, 1)),
    ],
)
def test_parse_date_range(text: str, start: datetime | None, end: datetime | None) -> None:
    assert parse_date_range(text, NOW) == (start, end)


def test_relative_span_from_naive_now_is_utc() -> None:
    start, end = parse_date_range("1d", datetime(2026, 11, 26, 12, 30))
    assert start == d(2026, 11, 25, 12, 30) and start.tzinfo is not None and end is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty date"),
        ("0d", "date span must be positive"),
        ("7x", "bad date '7x'"),
        ("yesterday", "bad date 'yesterday'"),
        ("2026-13-01", "bad date '2026-13-01'"),
        ("2026-02-30", "bad date '2026-02-30'"),
        ("26-11-01", "use YYYY-MM-DD"),
        ("2026-11-30..2026-11-01", "date range ends before it starts"),
        ("2026-11-01..tomorrow", "bad date"),
        ("..", "date range needs a start or an end"),
    ],
)
def test_bad_dates(text: str, message: str) -> None:
    with pytest.raises(FilterError, match=message):
        parse_date_range(text, NOW)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", OrderFilter()),
        ("status:pending", OrderFilter(statuses=(OrderStatus.PENDING,))),
        (
            "s:PENDING,shipped",
            OrderFilter(statuses=(OrderStatus.PENDING, OrderStatus.SHIPPED)),
        ),
        ("pay:paid", OrderFilter(payment_statuses=(PaymentStatus.PAID,))),
        (
            "payment:partially_refunded",
            OrderFilter(payment_statuses=(PaymentStatus.PARTIALLY_REFUNDED,)),
        ),
        (
            "fulfil:unfulfilled",
            OrderFilter(fulfillment_statuses=(FulfillmentStatus.UNFULFILLED,)),
        ),
        (
            "fulfillment:fulfilled",
            OrderFilter(fulfillment_statuses=(FulfillmentStatus.FULFILLED,)),
        ),
        ("country:de,us", OrderFilter(countries=("DE", "US"))),
        ("total:>100", OrderFilter(total_min=Decimal(100), total_min_strict=True)),
        ("total:>=100.5", OrderFilter(total_min=Decimal("100.5"))),
        ("total:<50", OrderFilter(total_max=Decimal(50), total_max_strict=True)),
        ("total:<=50", OrderFilter(total_max=Decimal(50))),
        ("total:12.34", OrderFilter(total_min=Decimal("12.34"), total_max=Decimal("12.34"))),
        ("total:=7", OrderFilter(total_min=Decimal(7), total_max=Decimal(7))),
        ("total:10..20", OrderFilter(total_min=Decimal(10), total_max=Decimal(20))),
        ("total:10..", OrderFilter(total_min=Decimal(10))),
        ("total:..20", OrderFilter(total_max=Decimal(20))),
        ("placed:7d", OrderFilter(placed_from=d(2026, 11, 19, 12, 30))),
        (
            "date:2026-11-01..2026-11-30",
            OrderFilter(placed_from=d(2026, 11, 1), placed_to=d(2026, 12, 1)),
        ),
        ("sku:mug-blue", OrderFilter(sku="MUG-BLUE")),
        ("tag:VIP", OrderFilter(tag="vip")),
        ("customer:ada", OrderFilter(customer="ada")),
        ("cust:#12", OrderFilter(customer_id=12)),
        ("hold:yes", OrderFilter(on_hold=True)),
        ("hold:no", OrderFilter(on_hold=False)),
        ("hold:1", OrderFilter(on_hold=True)),
        ("grace hopper", OrderFilter(text="grace hopper")),
        (
            '"grace hopper" status:shipped',
            OrderFilter(statuses=(OrderStatus.SHIPPED,), text="grace hopper"),
        ),
        ("PB-100042", OrderFilter(text="PB-100042")),
        ("pb:100042", OrderFilter(text="pb:100042")),
        ("grace@example.com", OrderFilter(text="grace@example.com")),
        ("mailto:grace@example.com", OrderFilter(text="mailto:grace@example.com")),
        (
            "status:processing hold:yes country:DE some words",
            OrderFilter(
                statuses=(OrderStatus.PROCESSING,),
                on_hold=True,
                countries=("DE",),
                text="some words",
            ),
        ),
    ],
)
def test_parse_query(query: str, expected: OrderFilter) -> None:
    assert parse_query(query, NOW) == expected


def test_parse_query_keeps_base() -> None:
    base = OrderFilter(countries=("DE",))
    assert parse_query("status:pending", NOW, base) == OrderFilter(
        countries=("DE",), statuses=(OrderStatus.PENDING,)
    )


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("status:shipping", "unknown status 'shipping' (one of: pending, processing"),
        ("pay:free", "unknown payment status 'free'"),
        ("fulfil:done", "unknown fulfilment status 'done'"),
        ("country:Germany", "country must be a 2-letter ISO code, got 'GERMANY'"),
        ("country:D1", "country must be a 2-letter ISO code"),
        ("total:abc", "bad total 'abc'"),
        ("total:-5", "bad total '-5'"),
        ("total:>>5", "bad total"),
        ("total:20..10", "total range ends below its start"),
        ("total:..", "total range needs a start or an end"),
        ("total:..-1", "total cannot be negative"),
        ("total:x..1", "bad total 'x..1'"),
        ("total:nan..", "bad total"),
        ("total:..inf", "bad total"),
        ("total:1e999999..", "bad total"),
        ("total:>99999999999999999999", "bad total .* too large"),
        ("placed:yesterday", "bad date"),
        ("placed:0d", "date span must be positive"),
        ("tag:spaces!", "bad tag .spaces!."),
        ("tag:!", "bad tag '!'"),
        ("hold:maybe", "hold: takes yes or no"),
        ("status:", "status: needs a value"),
        ("colour:red", "unknown filter 'colour'"),
        ('"unbalanced', "unbalanced quotes"),
    ],
)
def test_bad_queries(query: str, message: str) -> None:
    with pytest.raises(FilterError, match=message.replace("(", r"\(")):
        parse_query(query, NOW)


def test_apply_term_matches_query_language() -> None:
    f = apply_term(OrderFilter(), "status", "pending", NOW)
    f = apply_term(f, "payment", "unpaid", NOW)
    f = apply_term(f, "placed", "2026-11-01..2026-11-30", NOW)
    f = apply_term(f, "total", ">=10", NOW)
    assert f == parse_query(
        "status:pending pay:unpaid placed:2026-11-01..2026-11-30 total:>=10", NOW
    )
    with pytest.raises(FilterError, match="bad date"):
        apply_term(OrderFilter(), "placed", "soon", NOW)


def test_describe_and_is_empty() -> None:
    assert OrderFilter().is_empty()
    assert OrderFilter().describe() == "no filter"
    f = parse_query(
        "status:pending country:de total:>10 hold:no placed:2026-11-01..2026-11-30", NOW
    )
    assert not f.is_empty()
    assert f.describe() == (
        "status pending, placed 2026-11-01..2026-11-30, country DE, total > 10, not on hold"
    )


def test_sort_keys() -> None:
    assert Sort() == Sort("placed", True)
    for key in ("placed", "total", "status"):
        Sort(key, False)
    with pytest.raises(FilterError, match="unknown sort 'price'"):
        Sort("price")


@pytest.mark.parametrize("tag", ["vip", "VIP ", "gift-wrap", "a_b", "x" * 32])
def test_normalize_tag_ok(tag: str) -> None:
    assert normalize_tag(tag) == tag.strip().lower()


@pytest.mark.parametrize("tag", ["", "-lead", "with space", "x" * 33, "ümlaut"])
def test_normalize_tag_bad(tag: str) -> None:
    with pytest.raises(FilterError, match="bad tag"):
        normalize_tag(tag)
