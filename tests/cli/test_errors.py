"""Every bad input: non-zero exit, one clear stderr line, database unchanged."""

from __future__ import annotations

import pytest

from pulse_tui.cli import exit_codes
from pulse_tui.services import errors

from .helpers import all_orders, assert_clean_failure

PLACE = [
    "orders",
    "place",
    "--customer",
    "1",
    "--country",
    "DE",
    "--name",
    "A",
    "--street",
    "B 1",
    "--city",
    "C",
]


def test_exit_codes_are_the_services_codes() -> None:
    assert (exit_codes.OK, exit_codes.FAILED, exit_codes.BAD_INPUT) == (0, 1, 2)
    assert (exit_codes.NOT_FOUND, exit_codes.CONFLICT, exit_codes.DENIED) == (3, 4, 5)
    assert errors.RuleViolation.exit_code == exit_codes.FAILED
    assert errors.InvalidInput.exit_code == exit_codes.BAD_INPUT
    assert errors.NotFound.exit_code == exit_codes.NOT_FOUND
    assert errors.Conflict.exit_code == exit_codes.CONFLICT
    assert errors.Denied.exit_code == exit_codes.DENIED


def _pending(cli) -> str:  # type: ignore[no-untyped-def]
    return next(o.number for o in all_orders(cli.url) if o.status == "pending")


def _delivered(cli) -> str:  # type: ignore[no-untyped-def]
    return next(o.number for o in all_orders(cli.url) if o.status == "delivered")


CASES = [
    # (name, args builder, operator, exit code, message fragments)
    ("unknown order", lambda c: ["orders", "show", "PB-999999"], "ada", 3, ["no order PB-999999"]),
    ("unknown order action", lambda c: ["orders", "deliver", "999999"], "ada", 3, ["no order"]),
    (
        "not an order number",
        lambda c: ["orders", "show", "hello"],
        "ada",
        2,
        ["not an order number"],
    ),
    (
        "illegal transition",
        lambda c: ["orders", "transition", _delivered(c), "processing"],
        "ada",
        1,
        ["cannot go from delivered to processing"],
    ),
    (
        "illegal cancel of delivered",
        lambda c: ["orders", "cancel", _delivered(c), "--reason", "other"],
        "ada",
        1,
        ["delivered"],
    ),
    (
        "ship via transition",
        lambda c: ["orders", "transition", _pending(c), "shipped"],
        "ada",
        2,
        ["carrier"],
    ),
    (
        "unknown status",
        lambda c: ["orders", "transition", _pending(c), "lost"],
        "ada",
        2,
        ["unknown status"],
    ),
    (
        "negative quantity",
        lambda c: [*PLACE, "--currency", "EUR", "--line", "MUG-BLUE:-1"],
        "ada",
        2,
        ["quantity must be at least 1"],
    ),
    (
        "zero quantity",
        lambda c: [*PLACE, "--currency", "EUR", "--line", "MUG-BLUE:0"],
        "ada",
        2,
        ["at least 1"],
    ),
    (
        "quantity not a number",
        lambda c: [*PLACE, "--currency", "EUR", "--line", "MUG-BLUE:two"],
        "ada",
        2,
        ["whole number"],
    ),
    (
        "line without quantity",
        lambda c: [*PLACE, "--currency", "EUR", "--line", "MUG-BLUE"],
        "ada",
        2,
        ["SKU:QTY"],
    ),
    (
        "unknown currency",
        lambda c: [*PLACE, "--currency", "XYZ", "--line", "MUG-BLUE:1"],
        "ada",
        2,
        ["unknown currency"],
    ),
    (
        "bad shipping amount",
        lambda c: [*PLACE, "--currency", "EUR", "--line", "MUG-BLUE:1", "--shipping", "4.955"],
        "ada",
        2,
        ["decimal places"],
    ),
    (
        "unknown product",
        lambda c: [*PLACE, "--currency", "EUR", "--line", "NOPE-1:1"],
        "ada",
        3,
        ["no product NOPE-1"],
    ),
    (
        "currency mismatch",
        lambda c: [*PLACE, "--currency", "USD", "--line", "MUG-BLUE:1"],
        "ada",
        2,
        ["priced in EUR"],
    ),
    (
        "unknown country",
        lambda c: [*PLACE[:5], "XX", *PLACE[6:], "--currency", "EUR", "--line", "MUG-BLUE:1"],
        "ada",
        2,
        ["unknown country"],
    ),
    (
        "unknown customer",
        lambda c: [
            "orders",
            "place",
            "--customer",
            "99",
            *PLACE[4:],
            "--currency",
            "EUR",
            "--line",
            "MUG-BLUE:1",
        ],
        "ada",
        3,
        ["no customer"],
    ),
    ("bad date", lambda c: ["orders", "list", "--placed", "2026-13-45"], "ada", 2, ["bad date"]),
    (
        "bad date words",
        lambda c: ["orders", "list", "--placed", "yesterday"],
        "ada",
        2,
        ["bad date"],
    ),
    (
        "backwards range",
        lambda c: ["orders", "list", "--placed", "2026-11-30..2026-11-01"],
        "ada",
        2,
        ["ends before"],
    ),
    (
        "bad status filter",
        lambda c: ["orders", "list", "--status", "lost"],
        "ada",
        2,
        ["unknown status 'lost'"],
    ),
    ("bad total", lambda c: ["orders", "list", "--total-min", "-5"], "ada", 2, ["bad total"]),
    ("bad query", lambda c: ["orders", "list", "-q", "colour:red"], "ada", 2, ["unknown filter"]),
    ("bad sort", lambda c: ["orders", "list", "--sort", "colour"], "ada", 2, ["unknown sort"]),
    (
        "json and csv",
        lambda c: ["orders", "list", "--json", "--csv"],
        "ada",
        2,
        ["--json or --csv"],
    ),
    (
        "bad cancel reason",
        lambda c: ["orders", "cancel", _pending(c), "--reason", "bored"],
        "ada",
        2,
        ["unknown cancel reason"],
    ),
    (
        "bad tag",
        lambda c: ["orders", "tag", _pending(c), "--add", "no spaces"],
        "ada",
        2,
        ["bad tag"],
    ),
    ("empty tag call", lambda c: ["orders", "tag", _pending(c)], "ada", 2, ["at least one tag"]),
    ("unknown operator", lambda c: ["orders", "list"], "nobody", 5, ["unknown operator 'nobody'"]),
    (
        "no operator at all",
        lambda c: ["orders", "list"],
        None,
        5,
        ["no operator is mapped", "--as"],
    ),
    (
        "viewer may not hold",
        lambda c: ["orders", "hold", _pending(c), "--reason", "x"],
        "vic",
        5,
        ["viewer may not"],
    ),
    (
        "warehouse may not cancel",
        lambda c: ["orders", "cancel", _pending(c), "--reason", "other"],
        "wes",
        5,
        ["warehouse may not"],
    ),
    (
        "warehouse may not place",
        lambda c: [*PLACE, "--currency", "EUR", "--line", "MUG-BLUE:1"],
        "wes",
        5,
        ["may not"],
    ),
    ("agent may not list operators", lambda c: ["operators", "list"], "alan", 5, ["may not"]),
    (
        "stale version",
        lambda c: ["orders", "note", _pending(c), "hi", "--if-version", "0"],
        "ada",
        4,
        ["changed by someone else"],
    ),
    (
        "release when not held",
        lambda c: ["orders", "release", _pending(c)],
        "ada",
        1,
        ["not on hold"],
    ),
]


@pytest.mark.parametrize(
    ("args", "operator", "code", "fragments"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_bad_input_fails_cleanly_and_changes_nothing(cli, args, operator, code, fragments) -> None:
    argv = args(cli)
    before = cli.fingerprint()
    result = cli(*argv, operator=operator)
    assert_clean_failure(result, code, *fragments)
    assert cli.fingerprint() == before


def test_usage_errors_exit_2(cli) -> None:
    before = cli.fingerprint()
    result = cli("orders", "ship", "PB-100001", "--carrier", "DHL")  # no --tracking
    assert result.exit_code == 2
    assert "tracking" in result.stderr
    assert cli("orders", "list", "--limit", "0").exit_code == 2
    assert cli.fingerprint() == before


def test_disabled_operator_is_refused(cli) -> None:
    assert cli("operators", "disable", "alan").exit_code == 0
    before = cli.fingerprint()
    result = cli("orders", "note", _pending(cli), "hi", operator="alan")
    assert_clean_failure(result, 5, "disabled")
    assert cli.fingerprint() == before
