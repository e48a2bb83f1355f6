"""`pulse orders list` and `show`: output formats and every filter against the data."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from pulse_tui.cli import orders as cli_orders
from pulse_tui.domain.money import format_money

from .helpers import Snap, all_orders, ok_json


def numbers(result) -> list[str]:  # type: ignore[no-untyped-def]
    return [r["number"] for r in ok_json(result)]


def test_json_lists_every_order_newest_first_with_money_as_minor_units(cli) -> None:
    data = ok_json(cli("orders", "list", "--json", "--limit", "100"))
    expected = all_orders(cli.url)
    assert len(data) == len(expected) == 24
    assert [r["number"] for r in data] == [o.number for o in reversed(expected)]
    by_number = {o.number: o for o in expected}
    for row in data:
        o = by_number[row["number"]]
        assert row["total"] == o.total and isinstance(row["total"], int)
        assert row["currency"] == o.currency
        assert row["total_formatted"] == format_money(o.total, o.currency)
        assert row["status"] == o.status and row["on_hold"] is o.on_hold
        assert datetime.fromisoformat(row["placed_at"]) == o.placed_at


def test_default_limit_and_more_message(cli) -> None:
    result = cli("orders", "list", "--json", "--limit", "5")
    assert len(ok_json(result)) == 5
    assert "more match" in result.stderr


def test_limit_spanning_several_keyset_pages(cli, monkeypatch) -> None:
    monkeypatch.setattr(cli_orders, "MAX_PAGE", 4)
    got = numbers(cli("orders", "list", "--json", "--limit", "13"))
    assert got == [o.number for o in reversed(all_orders(cli.url))][:13]
    got_all = numbers(cli("orders", "list", "--json", "--limit", "1000"))
    assert len(got_all) == 24 == len(set(got_all))


def _major(o: Snap) -> Decimal:
    return o.major_total


FILTERS: list[tuple[list[str], Callable[[Snap], bool]]] = [
    (["--status", "pending"], lambda o: o.status == "pending"),
    (["--status", "pending,cancelled"], lambda o: o.status in ("pending", "cancelled")),
    (["--pay", "paid"], lambda o: o.payment_status == "paid"),
    (["--fulfil", "fulfilled"], lambda o: o.fulfillment_status == "fulfilled"),
    (
        ["--placed", "2026-11-01..2026-11-15"],
        lambda o: (
            datetime(2026, 11, 1, tzinfo=UTC) <= o.placed_at < datetime(2026, 11, 16, tzinfo=UTC)
        ),
    ),
    (["--placed", "2026-11-10.."], lambda o: o.placed_at >= datetime(2026, 11, 10, tzinfo=UTC)),
    (["--customer", "grace"], lambda o: "grace" in o.customer_name.lower()),
    (["--customer", "example.de"], lambda o: o.customer_email.endswith("example.de")),
    (["--customer", "#3"], lambda o: o.customer_id == 3),
    (["--country", "DE,fr"], lambda o: o.country in ("DE", "FR")),
    (["--total-min", "50"], lambda o: _major(o) >= 50),
    (["--total-max", "22.95"], lambda o: _major(o) <= Decimal("22.95")),
    (["--total-min", "20", "--total-max", "70"], lambda o: 20 <= _major(o) <= 70),
    (["--sku", "cap-red"], lambda o: "CAP-RED" in o.skus),
    (["--tag", "vip"], lambda o: "vip" in o.tags),
    (["--on-hold"], lambda o: o.on_hold),
    (["--not-on-hold"], lambda o: not o.on_hold),
    (["--search", "Tanaka"], lambda o: "Tanaka" in o.customer_name),
    (
        ["-q", "status:processing country:US"],
        lambda o: o.status == "processing" and o.country == "US",
    ),
    (
        ["--query", "pay:paid", "--country", "JP"],
        lambda o: o.payment_status == "paid" and o.country == "JP",
    ),
    (
        ["--status", "delivered", "--sku", "TEA-SET"],
        lambda o: o.status == "delivered" and "TEA-SET" in o.skus,
    ),
]


@pytest.mark.parametrize(("args", "want"), FILTERS, ids=[" ".join(a) for a, _ in FILTERS])
def test_each_filter_returns_exactly_the_matching_orders(cli, args, want) -> None:
    expected = {o.number for o in all_orders(cli.url) if want(o)}
    assert 0 < len(expected) < 24, "the fixture data must make this filter discriminate"
    got = numbers(cli("orders", "list", "--json", "--limit", "100", *args))
    assert set(got) == expected
    assert len(got) == len(expected)


def test_single_day_filter(cli) -> None:
    first = all_orders(cli.url)[0]
    day = first.placed_at.date()
    expected = {o.number for o in all_orders(cli.url) if o.placed_at.date() == day}
    got = numbers(cli("orders", "list", "--json", "--placed", day.isoformat()))
    assert set(got) == expected and first.number in got


def test_relative_span_parses(cli) -> None:
    # The data lies in 2026-10/11; whatever "now" is, a 100-year span holds it all.
    assert len(numbers(cli("orders", "list", "--json", "--placed", "100y"))) >= 1


def test_no_match_prints_empty_json_and_says_so_on_stderr(cli) -> None:
    result = cli("orders", "list", "--json", "--country", "BR")
    assert ok_json(result) == []
    assert "no orders match" in result.stderr and "country BR" in result.stderr


@pytest.mark.parametrize("key", ["total", "status", "placed"])
def test_sorting_both_ways(cli, key) -> None:
    snaps = {o.number: o for o in all_orders(cli.url)}
    value = {
        "total": lambda o: (o.total, o.id),
        "status": lambda o: (o.status, o.id),
        "placed": lambda o: (o.id,),
    }[key]
    asc = numbers(cli("orders", "list", "--json", "--limit", "100", "--sort", key, "--asc"))
    desc = numbers(cli("orders", "list", "--json", "--limit", "100", "--sort", key))
    assert [value(snaps[n]) for n in asc] == sorted(value(o) for o in snaps.values())
    assert desc == list(reversed(asc))


def test_csv_has_header_and_the_same_rows_as_json(cli) -> None:
    result = cli("orders", "list", "--csv", "--status", "processing")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0].keys()) == list(cli_orders.LIST_FIELDS)
    as_json = ok_json(cli("orders", "list", "--json", "--status", "processing"))
    assert [r["number"] for r in rows] == [r["number"] for r in as_json]
    assert [int(r["total"]) for r in rows] == [r["total"] for r in as_json]


def test_human_table_shows_formatted_money(cli) -> None:
    result = cli("orders", "list", "--country", "JP")
    assert result.exit_code == 0, result.stderr
    jp = [o for o in all_orders(cli.url) if o.country == "JP"]
    for o in jp:
        assert o.number in result.stdout
    assert format_money(jp[0].total, "JPY") in result.stdout  # ¥15,840: no decimals


@pytest.mark.parametrize("ref", ["PB-100003", "pb-100003", "100003"])
def test_show_accepts_number_forms_and_prints_the_whole_story(cli, ref) -> None:
    d = ok_json(cli("orders", "show", ref, "--json"))
    assert d["order"]["number"] == "PB-100003"
    assert d["order"]["currency"] == "JPY"
    assert d["order"]["total_formatted"] == format_money(d["order"]["total"], "JPY")
    assert d["customer"]["name"] == "Yuki Tanaka"
    assert [ln["sku"] for ln in d["lines"]] == ["TEA-SET"]
    assert d["addresses"] and {a["kind"] for a in d["addresses"]} == {"billing", "shipping"}
    assert d["timeline"][-1]["kind"] == "placed"  # newest first
    for key in ("payments", "refunds", "shipments", "tags"):
        assert isinstance(d[key], list)


def test_show_human_output(cli) -> None:
    result = cli("orders", "show", "PB-100001")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "PB-100001" in out and "Jürgen Müller" in out and "MUG-BLUE" in out
    assert "Timeline" in out and "Order placed" in out


def test_warehouse_sees_no_payment_details(cli) -> None:
    paid = next(o for o in all_orders(cli.url) if o.payment_status == "paid")
    admin = ok_json(cli("orders", "show", paid.number, "--json"))
    wes = ok_json(cli("orders", "show", paid.number, "--json", operator="wes"))
    assert admin["payments"] and wes["payments"] == []
