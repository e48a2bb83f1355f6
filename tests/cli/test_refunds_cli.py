"""`pulse refunds create|preview|list|show|approve|retry|send|cancel` and the
refunds `pulse orders cancel` sends.

Most orders here are placed and paid through the CLI by bank transfer (gateway
``manual``): their refunds are paid back by hand and succeed at once. The
gateway paths run against the session's real localstripe.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from pulse_tui.gateways.base import ORDER_METADATA_KEY, REFUND_METADATA_KEY
from pulse_tui.storage.db import make_engine, read_session
from pulse_tui.storage.models import Order, OrderEvent, Product, Refund, Return
from tests.gateways.conftest import SECRET, localstripe_url  # noqa: F401  (fixture)

from .helpers import assert_clean_failure, ok_json

PLACE = [
    "orders",
    "place",
    "--customer",
    "2",
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
    "--json",
]
# 2 × MUG-BLUE 12.50 + 1 × TEE-M 25.00, 19 % tax, 4.95 shipping = €64.45
LINES = ("MUG-BLUE:2", "TEE-M:1")
TOTAL = 6445
STRIPE_PAID = "PB-100002"  # small db: processing, paid at "stripe" with pi_0002 (USD)


def place(cli, *lines: str, shipping: str = "4.95", currency: str = "EUR") -> str:
    args = [*PLACE, "--shipping", shipping]
    for ln in lines or LINES:
        args += ["--line", ln]
    if currency != "EUR":
        i = args.index("--currency")
        args[i + 1] = currency
    return str(ok_json(cli(*args))["number"])


def paid_order(cli, *lines: str, **kw: str) -> str:
    """Placed and paid by bank transfer (refunds of it need no gateway)."""
    number = place(cli, *lines, **kw)
    paid = cli("orders", "pay", number)
    assert paid.exit_code == 0, paid.stderr
    return number


def read(cli, fn: Callable):  # type: ignore[no-untyped-def]
    engine = make_engine(cli.url)
    try:
        with read_session(engine) as s:
            return fn(s)
    finally:
        engine.dispose()


def order_row(cli, number: str) -> Order:
    return read(cli, lambda s: s.execute(select(Order).where(Order.number == number)).scalar_one())


def refund_rows(cli) -> list[Refund]:
    return read(cli, lambda s: list(s.execute(select(Refund).order_by(Refund.id)).scalars()))


def product(cli, sku: str) -> Product:
    return read(cli, lambda s: s.execute(select(Product).where(Product.sku == sku)).scalar_one())


def kinds(cli, number: str) -> list[str]:
    return read(
        cli,
        lambda s: list(
            s.execute(
                select(OrderEvent.kind)
                .join(Order, Order.id == OrderEvent.order_id)
                .where(Order.number == number)
                .order_by(OrderEvent.id)
            ).scalars()
        ),
    )


def everything(cli) -> dict[str, object]:
    """fingerprint() plus the refund and return tables (which it does not cover)."""
    fp = cli.fingerprint()
    fp["refunds"] = [
        (r.id, r.status, r.amount, r.attempt, r.failure_reason) for r in refund_rows(cli)
    ]
    fp["returns"] = read(cli, lambda s: s.execute(select(func.count()).select_from(Return)).one())
    fp["money"] = read(
        cli, lambda s: sorted(s.execute(select(Order.number, Order.refunded, Order.paid)).all())
    )
    return fp


def set_limit(cli, minor: int) -> None:
    (cli.path.parent / "config.toml").write_text(f"refund_limit_minor = {minor}\n")


# -- create: lines, shipping, amounts ------------------------------------------


def test_line_refund_with_restock_is_previewed_then_sent(cli) -> None:
    number = paid_order(cli)
    reserved = product(cli, "MUG-BLUE").stock_reserved
    before = everything(cli)

    quote = ok_json(
        cli("refunds", "preview", number, "--line", "mug-blue:1:restock", "--shipping", "--json")
    )
    assert everything(cli) == before  # a preview writes nothing
    assert quote["refundable"] == TOTAL
    assert quote["shipping"] == 495
    [line] = quote["lines"]
    assert (line["sku"], line["quantity"], line["restock"]) == ("MUG-BLUE", 1, True)
    # one of two mugs: half the line (12.50 + 19 % tax) and its tax share
    assert (line["amount"], line["tax"]) == (1488, 238)
    assert quote["amount"] == 1488 + 495 == quote["refundable"] - quote["refundable_after"]
    assert quote["amount_formatted"] == "€19.83"

    out = cli(
        "refunds",
        "create",
        number,
        "--line",
        "MUG-BLUE:1:restock",
        "--shipping",
        "--reason",
        "damaged",
        "--note",
        "cracked in transit",
        "--json",
    )
    made = ok_json(out)
    assert out.stderr == ""  # succeeded: nothing to follow up
    assert made["status"] == "succeeded" and made["gateway"] == "manual"
    assert (made["amount"], made["tax"], made["shipping"]) == (1983, 238, 495)
    assert made["reason"] == "damaged" and made["note"] == "cracked in transit"
    assert made["created_by"] == "ada" == made["approved_by"]

    [row] = refund_rows(cli)
    assert (row.id, row.status, row.amount) == (made["id"], "succeeded", 1983)
    o = order_row(cli, number)
    assert (o.refunded, o.payment_status, o.status) == (1983, "partially_refunded", "processing")
    # not shipped yet: the restocked mug is no longer reserved
    assert product(cli, "MUG-BLUE").stock_reserved == reserved - 1
    assert {"refund_requested", "refund_approved", "refund_succeeded"} <= set(kinds(cli, number))

    shown = ok_json(cli("refunds", "show", str(made["id"]), "--json"))
    assert shown == made
    human = cli("refunds", "show", str(made["id"]))
    assert human.exit_code == 0
    assert f"refund #{made['id']} of €19.83 on {number}: succeeded" in human.stdout
    assert "MUG-BLUE" in human.stdout and "cracked in transit" in human.stdout


def test_full_refund_makes_the_order_refunded_and_nothing_is_left(cli) -> None:
    number = paid_order(cli)
    out = cli(
        "refunds",
        "create",
        number,
        "--line",
        "MUG-BLUE:2",
        "--line",
        "TEE-M:1",
        "--shipping",
        "--reason",
        "customer request",
    )
    assert out.exit_code == 0, out.stderr
    assert out.stdout.strip().endswith(f"of €64.45 on {number}: succeeded")
    o = order_row(cli, number)
    assert (o.status, o.payment_status, o.refunded) == ("refunded", "refunded", TOTAL)

    before = everything(cli)
    again = cli("refunds", "create", number, "--amount", "0.01", "--reason", "other")
    assert_clean_failure(again, 1, "nothing is left to refund")
    assert everything(cli) == before


def test_free_amount_is_parsed_in_the_orders_currency(cli) -> None:
    number = paid_order(cli, "TEA-SET:2", shipping="0", currency="JPY")
    before = everything(cli)
    assert_clean_failure(
        cli("refunds", "create", number, "--amount", "5.5", "--reason", "other"), 2, "JPY"
    )
    assert everything(cli) == before
    made = ok_json(
        cli("refunds", "create", number, "--amount", "500", "--reason", "other", "--json")
    )
    assert (made["amount"], made["currency"], made["amount_formatted"]) == (500, "JPY", "¥500")
    assert order_row(cli, number).refunded == 500


# -- bad input changes nothing ---------------------------------------------------------

BAD: list[tuple[str, list[str], int, str]] = [
    ("unknown sku", ["--line", "NOPE:1", "--reason", "other"], 2, "has no line NOPE"),
    ("sku not on the order", ["--line", "CAP-RED:1", "--reason", "other"], 2, "no line CAP-RED"),
    ("quantity not a number", ["--line", "MUG-BLUE:x", "--reason", "other"], 2, "whole number"),
    ("quantity zero", ["--line", "MUG-BLUE:0", "--reason", "other"], 2, "at least 1"),
    ("bad line syntax", ["--line", "MUG-BLUE", "--reason", "other"], 2, "SKU:QTY"),
    ("restock misspelt", ["--line", "MUG-BLUE:1:back", "--reason", "other"], 2, "SKU:QTY"),
    (
        "amount and lines",
        ["--amount", "1", "--line", "MUG-BLUE:1", "--reason", "other"],
        2,
        "not both",
    ),
    ("amount and shipping", ["--amount", "1", "--shipping", "--reason", "other"], 2, "not both"),
    ("nothing chosen", ["--reason", "other"], 2, "choose what to refund"),
    ("too many decimals", ["--amount", "1.001", "--reason", "other"], 2, "decimal"),
    ("negative amount", ["--amount", "-1", "--reason", "other"], 2, "more than zero"),
    ("not an amount", ["--amount", "ten", "--reason", "other"], 2, "not an amount"),
    ("unknown reason", ["--amount", "1", "--reason", "bored"], 2, "unknown refund reason"),
    ("flow-only reason", ["--amount", "1", "--reason", "return"], 2, "set by the desk"),
    ("unknown payment", ["--amount", "1", "--reason", "other", "--payment", "9999"], 2, "#9999"),
    ("over-refund amount", ["--amount", "64.46", "--reason", "other"], 1, "at most €64.45"),
    ("over-refund units", ["--line", "MUG-BLUE:3", "--reason", "other"], 1, "only 2 of 2"),
    ("agent may not --approve", ["--amount", "1", "--reason", "other", "--approve"], 5, "approve"),
]


def test_bad_create_is_refused_and_changes_nothing(cli) -> None:
    number = paid_order(cli)  # one order for every case: faster than one each
    before = everything(cli)
    for name, args, code, fragment in BAD:
        operator = "alan" if "--approve" in args else "ada"
        out = cli("refunds", "create", number, *args, operator=operator)
        assert out.exit_code == code, name
        assert_clean_failure(out, code, fragment)
        if "--approve" not in args:  # the same selection is refused by preview too
            assert_clean_failure(cli("refunds", "preview", number, *args), code, fragment)
    assert everything(cli) == before


def test_missing_order_and_unpaid_order(cli) -> None:
    before = everything(cli)
    assert_clean_failure(
        cli("refunds", "create", "PB-999999", "--amount", "1", "--reason", "other"), 3, "PB-999999"
    )
    unpaid = place(cli)
    before = everything(cli)
    assert_clean_failure(
        cli("refunds", "create", unpaid, "--amount", "1", "--reason", "other"),
        1,
        "nothing was paid",
    )
    assert everything(cli) == before


# -- who may do what, and the approval flow ------------------------------------------------


def test_viewer_and_warehouse_may_not_refund(cli) -> None:
    number = paid_order(cli)
    before = everything(cli)
    for who in ("vic", "wes"):
        assert_clean_failure(
            cli("refunds", "create", number, "--amount", "1", "--reason", "other", operator=who),
            5,
        )
        assert_clean_failure(cli("refunds", "preview", number, "--amount", "1", operator=who), 5)
    assert everything(cli) == before
    # the viewer may read refunds (payments), the warehouse may not
    assert ok_json(cli("refunds", "list", "--json", operator="vic")) == []
    assert_clean_failure(cli("refunds", "list", operator="wes"), 5)


def test_above_the_limit_an_agents_refund_waits_for_an_admin(cli) -> None:
    set_limit(cli, 1000)  # €10.00
    number = paid_order(cli)

    out = cli("refunds", "create", number, "--amount", "20", "--reason", "other", operator="alan")
    assert out.exit_code == 0, out.stderr
    assert "requested: waits for an admin's approval" in out.stdout
    [row] = refund_rows(cli)
    assert row.status == "requested" and row.approved_by is None
    assert f"pulse refunds approve {row.id}" in out.stderr
    assert "refund_awaiting_approval" in kinds(cli, number)

    before = everything(cli)
    assert_clean_failure(cli("refunds", "send", str(row.id), operator="alan"), 1, "approval")
    assert_clean_failure(cli("refunds", "approve", str(row.id), operator="alan"), 5)
    assert_clean_failure(cli("refunds", "approve", str(row.id), operator="vic"), 5)
    assert everything(cli) == before
    # the approvals queue
    queue = ok_json(cli("refunds", "list", "--status", "requested", "--json", operator="alan"))
    assert [r["id"] for r in queue] == [row.id]

    done = ok_json(cli("refunds", "approve", str(row.id), "--json"))
    assert (done["status"], done["approved_by"]) == ("succeeded", "ada")
    assert order_row(cli, number).refunded == 2000
    # approving twice is refused
    assert_clean_failure(cli("refunds", "approve", str(row.id)), 1, "succeeded")

    # within the limit an agent's refund goes at once; an admin may approve above it
    small = ok_json(
        cli(
            "refunds",
            "create",
            number,
            "--amount",
            "5",
            "--reason",
            "other",
            "--json",
            operator="alan",
        )
    )
    assert small["status"] == "succeeded"
    big = ok_json(
        cli(
            "refunds",
            "create",
            number,
            "--amount",
            "20",
            "--reason",
            "other",
            "--approve",
            "--json",
        )
    )
    assert big["status"] == "succeeded" and big["approved_by"] == "ada"


def test_no_send_then_send_then_send_again_moves_money_once(cli) -> None:
    number = paid_order(cli)
    out = cli("refunds", "create", number, "--amount", "10", "--reason", "other", "--no-send")
    assert out.exit_code == 0, out.stderr
    assert out.stdout.strip().endswith(": approved")
    [row] = refund_rows(cli)
    assert f"pulse refunds send {row.id}" in out.stderr
    assert order_row(cli, number).refunded == 0

    sent = ok_json(cli("refunds", "send", str(row.id), "--json", operator="alan"))
    assert sent["status"] == "succeeded"
    again = ok_json(cli("refunds", "send", str(row.id), "--json"))
    assert again["status"] == "succeeded"
    assert order_row(cli, number).refunded == 1000
    assert kinds(cli, number).count("refund_succeeded") == 1


def test_same_key_makes_one_refund(cli) -> None:
    number = paid_order(cli)
    args = ("refunds", "create", number, "--amount", "10", "--reason", "duplicate", "--key", "k-1")
    first = ok_json(cli(*args, "--json"))
    second = ok_json(cli(*args, "--json"))
    assert first["id"] == second["id"]
    assert len(refund_rows(cli)) == 1
    assert order_row(cli, number).refunded == 1000


def test_cancel_a_refund_frees_what_it_held(cli) -> None:
    number = paid_order(cli)
    made = ok_json(
        cli(
            "refunds",
            "create",
            number,
            "--amount",
            "60",
            "--reason",
            "other",
            "--no-send",
            "--json",
        )
    )
    assert (
        ok_json(cli("refunds", "preview", number, "--amount", "1", "--json"))["refundable"] == 445
    )
    out = cli("refunds", "cancel", str(made["id"]), "--note", "asked by mistake", operator="alan")
    assert out.exit_code == 0, out.stderr
    assert out.stdout.strip().endswith("cancelled: cancelled")
    assert refund_rows(cli)[0].status == "cancelled"
    assert "refund_cancelled" in kinds(cli, number)
    assert (
        ok_json(cli("refunds", "preview", number, "--amount", "1", "--json"))["refundable"] == TOTAL
    )
    before = everything(cli)
    assert_clean_failure(cli("refunds", "cancel", str(made["id"])), 1, "cancelled")
    assert_clean_failure(cli("refunds", "cancel", str(made["id"]), operator="vic"), 5)
    assert_clean_failure(cli("refunds", "show", "9999"), 3, "#9999")
    assert_clean_failure(cli("refunds", "retry", "9999"), 3)
    assert everything(cli) == before


# -- listing ------------------------------------------------------------------------------


def test_list_filters_json_csv_and_table(cli) -> None:
    a, b = paid_order(cli), paid_order(cli)
    cli("refunds", "create", a, "--amount", "1", "--reason", "other")
    cli("refunds", "create", b, "--amount", "2", "--reason", "fraud", "--no-send")
    cli("refunds", "create", b, "--amount", "3", "--reason", "other")

    rows = ok_json(cli("refunds", "list", "--json"))
    assert [r["amount"] for r in rows] == [300, 200, 100]  # newest first
    assert ok_json(cli("refunds", "list", "--status", "approved", "--json"))[0]["reason"] == "fraud"
    assert {
        r["amount"] for r in ok_json(cli("refunds", "list", "--order", b.lower(), "--json"))
    } == {
        200,
        300,
    }
    assert rows[0]["amount_formatted"] == "€3.00" and rows[0]["order_number"] == b

    csv_out = cli("refunds", "list", "--csv")
    assert csv_out.exit_code == 0
    lines = csv_out.stdout.splitlines()
    assert lines[0].startswith("id,order_number,amount,currency,amount_formatted,reason,status")
    assert len(lines) == 4

    limited = cli("refunds", "list", "--limit", "1", "--json")
    assert len(json.loads(limited.stdout)) == 1 and "raise --limit" in limited.stderr

    table = cli("refunds", "list")
    assert table.exit_code == 0 and "fraud" in table.stdout and "€2.00" in table.stdout

    none = cli("refunds", "list", "--status", "failed", "--json")
    assert json.loads(none.stdout) == [] and "no refunds match" in none.stderr

    assert_clean_failure(cli("refunds", "list", "--status", "lost"), 2, "unknown refund status")
    assert_clean_failure(cli("refunds", "list", "--json", "--csv"), 2, "one of --json or --csv")
    assert_clean_failure(cli("refunds", "list", "--order", "PB-999999"), 3)


# -- gateways --------------------------------------------------------------------------------


def test_unconfigured_gateway_leaves_the_refund_pending(cli) -> None:
    out = cli("refunds", "create", STRIPE_PAID, "--amount", "1", "--reason", "other", "--json")
    made = ok_json(out)
    assert made["status"] == "pending" and "not configured" in made["failure_reason"]
    assert "pending at stripe" in out.stderr
    assert order_row(cli, STRIPE_PAID).refunded == 0  # no money moved


@pytest.fixture
def stripe_env(localstripe_url: str, monkeypatch: pytest.MonkeyPatch) -> str:  # noqa: F811
    monkeypatch.setenv("PULSE_STRIPE_SECRET_KEY", SECRET)
    monkeypatch.setenv("PULSE_STRIPE_BASE_URL", localstripe_url)
    return localstripe_url


def _stripe(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {SECRET}"}, timeout=5)


def test_a_refund_the_gateway_refuses_exits_1_and_can_be_retried(cli, stripe_env) -> None:
    # pi_0002 exists only in the small db: localstripe refuses to refund it
    out = cli("refunds", "create", STRIPE_PAID, "--amount", "1", "--reason", "other", "--json")
    assert out.exit_code == 1, (out.stdout, out.stderr)
    made = json.loads(out.stdout)  # the JSON is still on stdout
    assert made["status"] == "failed" and made["failure_reason"]
    err = out.stderr.strip().splitlines()
    assert err == [
        f"error: refund #{made['id']} failed: {made['failure_reason']} "
        f"(pulse refunds retry {made['id']})"
    ]
    assert order_row(cli, STRIPE_PAID).refunded == 0

    again = cli("refunds", "retry", str(made["id"]))
    assert again.exit_code == 1
    assert again.stdout.strip().startswith(
        f"refund #{made['id']} of $1.00 on {STRIPE_PAID} retried: failed"
    )
    assert refund_rows(cli)[0].attempt == 2
    assert "refund_failed" in kinds(cli, STRIPE_PAID)


def test_a_stripe_refund_is_sent_once_whatever_is_repeated(cli, stripe_env) -> None:
    number = place(cli)
    with _stripe(stripe_env) as st:
        pm = st.post(
            "/v1/payment_methods",
            data={
                "type": "card",
                "card[number]": "4242424242424242",
                "card[exp_month]": "12",
                "card[exp_year]": "2030",
                "card[cvc]": "123",
            },
        ).json()["id"]
        pi = st.post(
            "/v1/payment_intents",
            data={"amount": str(TOTAL), "currency": "eur", "payment_method": pm},
        ).json()["id"]
        assert st.post(f"/v1/payment_intents/{pi}/confirm").status_code == 200
        paid = cli(
            "orders", "pay", number, "--gateway", "stripe", "--method", "card", "--reference", pi
        )
        assert paid.exit_code == 0, paid.stderr

        args = (
            "refunds",
            "create",
            number,
            "--line",
            "TEE-M:1",
            "--reason",
            "wrong item",
            "--key",
            "once",
        )
        made = ok_json(cli(*args, "--json"))
        assert made["status"] in ("succeeded", "pending") and made["gateway_ref"]
        assert ok_json(cli(*args, "--json"))["id"] == made["id"]
        assert ok_json(cli("refunds", "send", str(made["id"]), "--json"))["id"] == made["id"]
        at_gateway = st.get("/v1/refunds", params={"payment_intent": pi}).json()["data"]
        assert len(at_gateway) == 1
        assert at_gateway[0]["amount"] == made["amount"]
        assert at_gateway[0]["metadata"][REFUND_METADATA_KEY] == str(made["id"])
        assert at_gateway[0]["metadata"][ORDER_METADATA_KEY] == number


# -- orders cancel sends the refund it made ------------------------------------------------


def test_cancelling_a_paid_order_refunds_it(cli) -> None:
    number = paid_order(cli)
    out = cli("orders", "cancel", number, "--reason", "customer_request", "--json")
    data = ok_json(out)
    assert data["status"] == "cancelled" and data["payment_status"] == "refunded"
    [r] = data["refunds"]
    assert (r["status"], r["amount"], r["reason"]) == ("succeeded", TOTAL, "order_cancelled")
    assert f"refund #{r['id']} of €64.45: succeeded" in out.stderr
    assert order_row(cli, number).refunded == TOTAL

    unpaid = place(cli)
    quiet = cli("orders", "cancel", unpaid, "--reason", "duplicate")
    assert quiet.exit_code == 0 and quiet.stderr == ""
    assert quiet.stdout.startswith(f"{unpaid} cancelled: status cancelled")


def test_cancel_above_the_limit_by_an_agent_waits_for_approval(cli) -> None:
    set_limit(cli, 1000)
    number = paid_order(cli)
    out = cli("orders", "cancel", number, "--reason", "other", "--json", operator="alan")
    data = ok_json(out)
    [r] = data["refunds"]
    assert r["status"] == "requested" and data["payment_status"] == "paid"
    assert f"pulse refunds approve {r['id']}" in out.stderr
    done = ok_json(cli("refunds", "approve", str(r["id"]), "--json"))
    assert done["status"] == "succeeded"
    o = order_row(cli, number)
    assert (o.status, o.payment_status, o.refunded) == ("cancelled", "refunded", TOTAL)


def test_cancelling_a_gateway_paid_order_without_the_gateway_leaves_it_pending(cli) -> None:
    out = cli("orders", "cancel", STRIPE_PAID, "--reason", "fraud")
    assert out.exit_code == 0, out.stderr
    assert out.stdout.startswith(f"{STRIPE_PAID} cancelled: status cancelled")
    assert "pending at stripe" in out.stderr
    [r] = refund_rows(cli)
    assert r.status == "pending" and r.reason == "order_cancelled"


def test_config_file_path_is_the_isolated_one(cli) -> None:
    # set_limit writes next to the test database: make sure that is the config in use
    out = cli("config-path")
    assert Path(out.stdout.strip()) == cli.path.parent / "config.toml"
