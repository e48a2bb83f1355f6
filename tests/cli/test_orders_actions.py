"""`pulse orders place|pay|ship|deliver|cancel|hold|release|note|tag|transition`."""

from __future__ import annotations

import json

from pulse_tui.domain.money import format_money

from .helpers import all_orders, ok_json, order

PLACE = [
    "orders",
    "place",
    "--customer",
    "2",
    "--line",
    "MUG-BLUE:2",
    "--line",
    "tee-m:1",
    "--currency",
    "EUR",
    "--country",
    "DE",
    "--name",
    "Jürgen Müller",
    "--street",
    "Hauptstraße 1",
    "--city",
    "Berlin",
]


def test_place_then_walk_the_whole_lifecycle(cli) -> None:
    placed = ok_json(cli(*PLACE, "--shipping", "4.95", "--discount", "1.00", "--json"))
    number = placed["number"]
    assert number == "PB-100025"
    # 2 × 12.50 + 25.00 = 50.00, +19 % tax on the lines, + 4.95 shipping − 1.00 discount
    assert placed["shipping"] == 495 and placed["discount"] == 100
    assert placed["total_formatted"] == format_money(placed["total"], "EUR")
    assert (placed["status"], placed["payment_status"]) == ("pending", "unpaid")

    out = cli("orders", "pay", number, "--gateway", "stripe", "--method", "card")
    assert out.exit_code == 0, out.stderr
    assert out.stdout.startswith(f"{number} paid: status processing, payment paid")
    assert len(out.stdout.splitlines()) == 1

    shipped = ok_json(
        cli("orders", "ship", number, "--carrier", "DHL", "--tracking", "JD42", "--json")
    )
    assert shipped["status"] == "shipped" and shipped["fulfillment_status"] == "fulfilled"
    assert ok_json(cli("orders", "deliver", number, "--json"))["status"] == "delivered"

    d = ok_json(cli("orders", "show", number, "--json"))
    assert [s["tracking_number"] for s in d["shipments"]] == ["JD42"]
    assert [e["kind"] for e in reversed(d["timeline"])][:1] == ["placed"]
    assert {"payment_confirmed", "shipped", "delivered"} <= {e["kind"] for e in d["timeline"]}
    assert all(e["actor"] == "ada" for e in d["timeline"])
    # found again by the tracking number
    assert [r["number"] for r in ok_json(cli("orders", "list", "--json", "--search", "JD42"))] == [
        number
    ]


def test_place_in_a_zero_decimal_currency(cli) -> None:
    args = [
        "orders",
        "place",
        "--customer",
        "3",
        "--line",
        "TEA-SET:1",
        "--currency",
        "jpy",
        "--country",
        "JP",
        "--name",
        "Yuki",
        "--street",
        "1-1",
        "--city",
        "Tokyo",
        "--shipping",
        "500",
        "--json",
    ]
    placed = ok_json(cli(*args))
    assert placed["currency"] == "JPY" and placed["shipping"] == 500


def test_hold_release_note_tag_and_cancel(cli) -> None:
    number = next(o.number for o in all_orders(cli.url) if o.status == "pending")
    v0 = order(cli.url, number).version
    held = ok_json(cli("orders", "hold", number, "--reason", "address check", "--json"))
    assert held["on_hold"] is True and held["hold_reason"] == "address check"
    assert held["version"] == v0 + 1
    assert (
        ok_json(cli("orders", "release", number, "--note", "fixed", "--json"))["on_hold"] is False
    )
    out = cli("orders", "note", number, "Customer called")
    assert out.exit_code == 0 and out.stdout.startswith(f"{number} noted:")
    tagged = ok_json(cli("orders", "tag", number, "--add", "rush", "--add", "B2B", "--json"))
    assert tagged["tags"] == ["b2b", "rush"]
    tagged = ok_json(cli("orders", "tag", number, "--remove", "rush", "--json"))
    assert tagged["tags"] == ["b2b"]
    cancelled = ok_json(
        cli("orders", "cancel", number, "--reason", "duplicate", "--note", "twice", "--json")
    )
    assert cancelled["status"] == "cancelled" and cancelled["cancel_reason"] == "duplicate"
    kinds = [e["kind"] for e in ok_json(cli("orders", "show", number, "--json"))["timeline"]]
    assert kinds[:6] == ["cancelled", "tagged", "tagged", "note", "released", "held"]


def test_transition_uses_the_owning_action(cli) -> None:
    o = next(o for o in all_orders(cli.url) if o.status == "processing" and not o.on_hold)
    has_digital_only = o.skus <= {"EBOOK-PY", "KEY-PRO"}
    target = "delivered" if has_digital_only else "cancelled"
    result = cli("orders", "transition", o.number, target, "--reason", "fraud")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"{o.number} → {target}:")
    assert order(cli.url, o.number).status == target


def test_if_version_matching_succeeds(cli) -> None:
    o = next(o for o in all_orders(cli.url) if o.status == "pending")
    out = cli("orders", "note", o.number, "ok", "--if-version", str(o.version), "--json")
    assert json.loads(out.stdout)["version"] == o.version + 1


def test_warehouse_may_ship_and_note(cli) -> None:
    o = next(
        o
        for o in all_orders(cli.url)
        if o.status == "processing"
        and not o.on_hold
        and o.skus & {"MUG-BLUE", "CAP-RED", "TEA-SET", "DATES-1KG"}
    )
    r = cli("orders", "ship", o.number, "--carrier", "UPS", "--tracking", "1Z999", operator="wes")
    assert r.exit_code == 0, r.stderr
    assert order(cli.url, o.number).status == "shipped"
