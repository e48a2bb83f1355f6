"""`pulse payments reconcile`: exit codes, JSON, and nothing changed on bad input."""

from __future__ import annotations

import json
from pathlib import Path

from pulse_tui.cli import exit_codes
from pulse_tui.domain.money import plain_amount
from tests.cli.helpers import all_orders, assert_clean_failure, order


def awaiting(url: str):
    return [o for o in all_orders(url) if o.status == "pending" and o.payment_status == "unpaid"]


def write(tmp_path: Path, text: str, name: str = "statement.csv") -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def line(o, amount: int | None = None, text: str | None = None) -> str:
    return (
        f"2026-11-27,{plain_amount(o.total if amount is None else amount, o.currency)},"
        f"{o.currency},{text or o.number}"
    )


HEADER = "Date,Amount,Currency,Reference\n"


def test_all_matched_exits_0_and_marks_paid(cli, tmp_path) -> None:
    a, b, *_ = awaiting(cli.url)
    path = write(tmp_path, HEADER + line(a) + "\n" + line(b, text=f"inv {b.number.lower()}\n"))
    r = cli("payments", "reconcile", path)
    assert r.exit_code == exit_codes.OK, (r.stdout, r.stderr)
    assert a.number in r.stdout and "matched" in r.stdout
    assert "marked 2 order(s) paid" in r.stderr
    assert order(cli.url, a.number).status == "processing"
    assert order(cli.url, b.number).payment_status == "paid"
    # rerun: already paid, nothing changes, still exit 0
    before = cli.fingerprint()
    again = cli("payments", "reconcile", path, "--json")
    assert again.exit_code == exit_codes.OK
    assert [ln["outcome"] for ln in json.loads(again.stdout)["lines"]] == ["already_paid"] * 2
    assert cli.fingerprint() == before


def test_lines_needing_attention_exit_1_with_json(cli, tmp_path) -> None:
    a, b, c, *_ = awaiting(cli.url)
    text = HEADER + "\n".join(
        [
            line(a),
            line(b, amount=b.total - 1),
            line(c, text=f"{c.number} {a.number}"),
            "2026-11-27,5.00,EUR,no reference here",
        ]
    )
    r = cli("payments", "reconcile", write(tmp_path, text), "--json")
    assert r.exit_code == exit_codes.FAILED, (r.stdout, r.stderr)
    data = json.loads(r.stdout)
    assert [ln["outcome"] for ln in data["lines"]] == [
        "matched",
        "underpaid",
        "ambiguous",
        "unmatched",
    ]
    assert data["needs_attention"] == 3 and data["ok"] is False and data["dry_run"] is False
    assert data["lines"][1]["due"] == b.total and data["lines"][1]["amount"] == b.total - 1
    assert order(cli.url, a.number).status == "processing"  # matched lines still applied
    assert order(cli.url, b.number).status == "pending"


def test_dry_run_changes_nothing(cli, tmp_path) -> None:
    a, *_ = awaiting(cli.url)
    before = cli.fingerprint()
    r = cli("payments", "reconcile", write(tmp_path, HEADER + line(a)), "--dry-run")
    assert r.exit_code == exit_codes.OK
    assert "Dry run" in r.stdout and "would mark 1 order(s) paid" in r.stderr
    assert cli.fingerprint() == before


def test_bad_files_exit_2_and_change_nothing(cli, tmp_path) -> None:
    a, *_ = awaiting(cli.url)
    before = cli.fingerprint()
    cases = {
        "missing": str(tmp_path / "nope.csv"),
        "header": write(tmp_path, "when,what\n1,2\n", "h.csv"),
        "amount": write(tmp_path, HEADER + line(a) + "\n2026-11-27,12.3.4,EUR,x\n", "a.csv"),
        "empty": write(tmp_path, "", "e.csv"),
    }
    for name, path in cases.items():
        r = cli("payments", "reconcile", path)
        assert_clean_failure(r, exit_codes.BAD_INPUT)
        assert name != "amount" or "line 3" in r.stderr
    binary = tmp_path / "b.csv"
    binary.write_bytes(b"\x00\x01\xff\xfe")
    assert_clean_failure(cli("payments", "reconcile", str(binary)), exit_codes.BAD_INPUT)
    assert cli.fingerprint() == before


def test_viewer_may_not_apply_but_may_dry_run(cli, tmp_path) -> None:
    a, *_ = awaiting(cli.url)
    path = write(tmp_path, HEADER + line(a))
    before = cli.fingerprint()
    assert_clean_failure(
        cli("payments", "reconcile", path, operator="vic"), exit_codes.DENIED, "may not"
    )
    assert cli("payments", "reconcile", path, "--dry-run", operator="vic").exit_code == 0
    assert cli.fingerprint() == before


def test_card_number_never_printed(cli, tmp_path) -> None:
    a, *_ = awaiting(cli.url)
    path = write(tmp_path, HEADER + line(a, text=f"{a.number} 4111-1111-1111-1111"))
    before = cli.fingerprint()
    r = cli("payments", "reconcile", path, "--json")
    assert r.exit_code == exit_codes.FAILED
    assert "1111" not in r.stdout and "1111" not in r.stderr
    assert json.loads(r.stdout)["lines"][0]["outcome"] == "refused"
    assert cli.fingerprint() == before
