"""`pulse returns request|authorize|reject|receive|refund|exchange|list|show`.

Orders are placed, paid by bank transfer and shipped through the CLI, so the
refunds a return makes are paid back by hand and succeed without a gateway.
"""

from __future__ import annotations

import json

from sqlalchemy import select

from pulse_tui.storage.models import Return

from .helpers import assert_clean_failure, ok_json
from .test_refunds_cli import (
    TOTAL,
    everything,
    kinds,
    order_row,
    paid_order,
    place,
    product,
    read,
    refund_rows,
)


def shipped_order(cli, *lines: str) -> str:
    number = paid_order(cli, *lines)
    out = cli("orders", "ship", number, "--carrier", "DHL", "--tracking", f"T-{number}")
    assert out.exit_code == 0, out.stderr
    return number


def all_of(cli) -> dict[str, object]:
    fp = everything(cli)
    fp["return_rows"] = read(
        cli,
        lambda s: [
            (r.id, r.status, json.dumps(r.lines, sort_keys=True), r.refund_id)
            for r in s.execute(select(Return).order_by(Return.id)).scalars()
        ],
    )
    return fp


def request(cli, number: str, *lines: str, operator: str = "alan") -> dict:
    args = ["returns", "request", number, "--reason", "damaged", "--json"]
    for ln in lines or ("MUG-BLUE:2", "TEE-M:1"):
        args += ["--line", ln]
    return ok_json(cli(*args, operator=operator))


def test_the_whole_return_flow_each_step_by_its_role(cli) -> None:
    number = shipped_order(cli)
    mugs, tees = product(cli, "MUG-BLUE").stock_on_hand, product(cli, "TEE-M").stock_on_hand

    # request: agents and admins, not the warehouse or a viewer
    before = all_of(cli)
    for who in ("wes", "vic"):
        assert_clean_failure(
            cli(
                "returns",
                "request",
                number,
                "--line",
                "MUG-BLUE:1",
                "--reason",
                "damaged",
                operator=who,
            ),
            5,
        )
    assert all_of(cli) == before
    out = cli(
        "returns",
        "request",
        number,
        "--line",
        "MUG-BLUE:2",
        "--line",
        "TEE-M:1",
        "--reason",
        "wrong item",
        "--note",
        "sent the wrong size",
        operator="alan",
    )
    assert out.exit_code == 0, out.stderr
    [rid] = [r[0] for r in all_of(cli)["return_rows"]]  # type: ignore[index]
    assert out.stdout.startswith(f"return #{rid} on {number}: requested")
    assert f"pulse returns authorize {rid}" in out.stderr

    # authorize: agents and admins
    before = all_of(cli)
    assert_clean_failure(cli("returns", "authorize", str(rid), operator="wes"), 5)
    assert_clean_failure(
        cli("returns", "receive", str(rid), "--item", "MUG-BLUE:1:resellable"), 1, "authorized"
    )  # not authorised yet
    assert all_of(cli) == before
    got = ok_json(cli("returns", "authorize", str(rid), "--note", "ok", "--json", operator="alan"))
    assert (got["status"], got["decided_by"], got["decision_note"]) == ("authorized", "alan", "ok")

    # receive: the warehouse too; resellable units go back on the shelf
    before = all_of(cli)
    assert_clean_failure(
        cli("returns", "receive", str(rid), "--item", "MUG-BLUE:1:resellable", operator="vic"), 5
    )
    assert_clean_failure(
        cli("returns", "receive", str(rid), "--item", "MUG-BLUE:3:resellable", operator="wes"),
        1,
        "authorised",
    )
    assert all_of(cli) == before
    got = ok_json(
        cli(
            "returns",
            "receive",
            str(rid),
            "--item",
            "MUG-BLUE:1:resellable",
            "--item",
            "MUG-BLUE:1:damaged",
            "--item",
            "TEE-M:1:Resellable",
            "--json",
            operator="wes",
        )
    )
    assert got["status"] == "received" and got["received_by"] == "wes"
    by_sku = {ln["sku"]: ln for ln in got["lines"]}
    assert (by_sku["MUG-BLUE"]["received"], by_sku["MUG-BLUE"]["condition"]) == (2, "mixed")
    assert (by_sku["TEE-M"]["received"], by_sku["TEE-M"]["condition"]) == (1, "resellable")
    assert product(cli, "MUG-BLUE").stock_on_hand == mugs + 1  # the damaged one is not
    assert product(cli, "TEE-M").stock_on_hand == tees + 1
    assert order_row(cli, number).fulfillment_status == "returned"

    # refund: agents and admins; sent at once (bank transfer)
    before = all_of(cli)
    assert_clean_failure(cli("returns", "refund", str(rid), operator="wes"), 5)
    assert_clean_failure(cli("returns", "refund", str(rid), "--approve", operator="alan"), 5)
    assert all_of(cli) == before
    out = cli("returns", "refund", str(rid), "--shipping", "--json", operator="alan")
    made = ok_json(out)
    assert (made["status"], made["reason"], made["return_id"]) == ("succeeded", "return", rid)
    assert made["amount"] == TOTAL  # every unit and the shipping
    assert f"return #{rid} refunded by refund #{made['id']}" in out.stderr
    o = order_row(cli, number)
    assert (o.status, o.payment_status, o.refunded) == ("refunded", "refunded", TOTAL)
    # the refund restocks nothing more: stock was settled when the goods came in
    assert product(cli, "MUG-BLUE").stock_on_hand == mugs + 1

    shown = ok_json(cli("returns", "show", str(rid), "--json", operator="vic"))
    assert (shown["status"], shown["refund_id"]) == ("refunded", made["id"])
    human = cli("returns", "show", str(rid))
    assert human.exit_code == 0
    assert f"return #{rid} on {number}: refunded" in human.stdout
    assert f"refund #{made['id']}" in human.stdout and "decided by alan: ok" in human.stdout
    timeline = kinds(cli, number)
    for kind in ("return_requested", "return_authorized", "return_received", "return_refunded"):
        assert kind in timeline
    # a finished return takes no more steps
    before = all_of(cli)
    assert_clean_failure(cli("returns", "refund", str(rid)), 1, "refunded")
    assert_clean_failure(cli("returns", "reject", str(rid), "--note", "late"), 1)
    assert all_of(cli) == before


def test_reject_needs_a_note_and_frees_the_units(cli) -> None:
    number = shipped_order(cli)
    rid = request(cli, number)["id"]
    before = all_of(cli)
    missing = cli("returns", "reject", str(rid))
    assert missing.exit_code == 2 and "--note" in missing.stderr
    assert_clean_failure(cli("returns", "reject", str(rid), "--note", "  "), 2, "note")
    assert_clean_failure(cli("returns", "reject", str(rid), "--note", "no", operator="wes"), 5)
    assert all_of(cli) == before
    # while requested, its units cannot be asked back a second time
    assert_clean_failure(
        cli("returns", "request", number, "--line", "MUG-BLUE:1", "--reason", "other"),
        1,
        "only 0",
    )
    out = cli("returns", "reject", str(rid), "--note", "outside the return window")
    assert out.exit_code == 0, out.stderr
    assert out.stdout.startswith(f"return #{rid} on {number}: rejected")
    assert_clean_failure(cli("returns", "authorize", str(rid)), 1, "rejected")
    again = request(cli, number, "MUG-BLUE:1")
    assert again["status"] == "requested" and again["id"] != rid


def test_exchange_for_something_dearer_leaves_the_difference_owed(cli) -> None:
    number = shipped_order(cli, "MUG-BLUE:2")
    rid = request(cli, number, "MUG-BLUE:1")["id"]
    cli("returns", "authorize", str(rid))
    cli("returns", "receive", str(rid), "--item", "MUG-BLUE:1:resellable")
    orders_before = len(ok_json(cli("orders", "list", "--json", "--limit", "500")))

    res = ok_json(cli("returns", "exchange", str(rid), "--line", "TEE-M:1", "--json"))
    assert res["return"]["status"] == "exchanged"
    assert res["difference"] > 0 and res["refund_id"] is None
    assert res["currency"] == "EUR"
    assert res["difference_formatted"] == f"€{res['difference'] / 100:.2f}"
    new = order_row(cli, res["order_number"])
    assert (new.status, new.payment_status) == ("pending", "unpaid")
    assert len(ok_json(cli("orders", "list", "--json", "--limit", "500"))) == orders_before + 1
    assert res["return"]["exchange_order_number"] == res["order_number"]
    assert "return_exchanged" in kinds(cli, number)
    assert refund_rows(cli) == []  # nothing to give back


def test_exchange_for_something_cheaper_refunds_the_difference(cli) -> None:
    number = shipped_order(cli, "TEE-M:1")
    rid = request(cli, number, "TEE-M:1")["id"]
    cli("returns", "authorize", str(rid))
    cli("returns", "receive", str(rid), "--item", "TEE-M:1:damaged")
    out = cli("returns", "exchange", str(rid), "--line", "MUG-BLUE:1")
    assert out.exit_code == 0, out.stderr
    [refund] = refund_rows(cli)
    assert refund.status == "succeeded" and refund.return_id == rid
    assert f"is refunded (refund #{refund.id})" in out.stdout
    assert f"refund #{refund.id} of" in out.stderr and "succeeded" in out.stderr
    assert order_row(cli, number).refunded == refund.amount > 0


BAD = [
    ("unknown sku", ["--line", "NOPE:1", "--reason", "other"], 2, "not on this order"),
    ("bad syntax", ["--line", "MUG-BLUE", "--reason", "other"], 2, "SKU:QTY"),
    ("quantity not a number", ["--line", "MUG-BLUE:two", "--reason", "other"], 2, "whole number"),
    ("quantity zero", ["--line", "MUG-BLUE:0", "--reason", "other"], 2, "at least 1"),
    ("unknown reason", ["--line", "MUG-BLUE:1", "--reason", "meh"], 2, "unknown refund reason"),
    ("flow-only reason", ["--line", "MUG-BLUE:1", "--reason", "return"], 2, "not a return reason"),
    ("more than shipped", ["--line", "MUG-BLUE:3", "--reason", "other"], 1, "only 2"),
]


def test_bad_requests_change_nothing(cli) -> None:
    number = shipped_order(cli)
    before = all_of(cli)
    for name, args, code, fragment in BAD:
        out = cli("returns", "request", number, *args)
        assert out.exit_code == code, name
        assert_clean_failure(out, code, fragment)
    assert all_of(cli) == before


def test_orders_that_cannot_be_returned_and_bad_receipts(cli) -> None:
    unshipped = paid_order(cli)
    pending = place(cli)
    number = shipped_order(cli)
    rid = request(cli, number)["id"]
    cli("returns", "authorize", str(rid))
    before = all_of(cli)
    assert_clean_failure(
        cli("returns", "request", unshipped, "--line", "MUG-BLUE:1", "--reason", "other"),
        1,
        "only 0",
    )
    assert_clean_failure(
        cli("returns", "request", pending, "--line", "MUG-BLUE:1", "--reason", "other"),
        1,
        "nothing",
    )
    assert_clean_failure(
        cli("returns", "request", "PB-999999", "--line", "MUG-BLUE:1", "--reason", "other"), 3
    )
    for item, code, frag in [
        ("MUG-BLUE:1:broken", 2, "unknown condition"),
        ("MUG-BLUE:1", 2, "SKU:QTY:CONDITION"),
        ("CAP-RED:1:damaged", 2, "not in this return"),
        ("MUG-BLUE:3:damaged", 1, "2 unit(s) were authorised"),
    ]:
        assert_clean_failure(cli("returns", "receive", str(rid), "--item", item), code, frag)
    assert_clean_failure(cli("returns", "show", "9999"), 3, "#9999")
    assert_clean_failure(cli("returns", "authorize", "9999"), 3)
    assert_clean_failure(cli("returns", "refund", str(rid)), 1, "received")
    assert_clean_failure(cli("returns", "exchange", str(rid), "--line", "TEE-M:1"), 1, "received")
    assert all_of(cli) == before


def test_list_json_csv_table_and_filters(cli) -> None:
    a, b = shipped_order(cli), shipped_order(cli)
    ra = request(cli, a, "MUG-BLUE:1")["id"]
    rb = request(cli, b, "TEE-M:1")["id"]
    cli("returns", "reject", str(ra), "--note", "no")

    rows = ok_json(cli("returns", "list", "--json", operator="vic"))
    assert [r["id"] for r in rows] == [rb, ra]  # open ones first
    assert rows[0]["order_number"] == b and rows[0]["lines"][0]["sku"] == "TEE-M"
    assert [r["id"] for r in ok_json(cli("returns", "list", "--status", "rejected", "--json"))] == [
        ra
    ]
    assert [r["id"] for r in ok_json(cli("returns", "list", "--order", a, "--json"))] == [ra]

    csv_out = cli("returns", "list", "--csv")
    lines = csv_out.stdout.splitlines()
    assert lines[0].startswith("id,order_number,status,reason,items")
    assert len(lines) == 3 and "1 × TEE-M" in lines[1]

    table = cli("returns", "list")
    assert table.exit_code == 0 and a in table.stdout and "rejected" in table.stdout

    limited = cli("returns", "list", "--limit", "1", "--json")
    assert len(json.loads(limited.stdout)) == 1 and "raise --limit" in limited.stderr
    empty = cli("returns", "list", "--status", "exchanged", "--json")
    assert json.loads(empty.stdout) == [] and "no returns match" in empty.stderr

    assert_clean_failure(cli("returns", "list", "--status", "lost"), 2, "unknown return status")
    assert_clean_failure(cli("returns", "list", "--csv", "--json"), 2)
