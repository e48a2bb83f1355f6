"""`pulse bulk ...`: preview, --dry-run, --yes, refusal without a terminal, --json, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from pulse_tui.cli.main import app

from .helpers import all_orders, assert_clean_failure, ok_json

SHIPPED = ["--filter", "status:shipped"]


def test_dry_run_prints_the_preview_and_changes_nothing(cli) -> None:
    before = cli.fingerprint()
    r = cli("bulk", "transition", "--filter", "", "--to", "delivered", "--dry-run")
    assert r.exit_code == 0, r.stderr
    assert "24 order(s) selected" in r.stdout and "4  will change" in r.stdout
    assert "4  skipped: order is on hold: release it first" in r.stdout
    assert r.stderr == ""
    assert cli.fingerprint() == before


def test_dry_run_json_is_only_json(cli) -> None:
    got = ok_json(cli("bulk", "transition", *SHIPPED, "--to", "delivered", "--dry-run", "--json"))
    shipped = [o for o in all_orders(cli.url) if o.status == "shipped"]
    held = sum(o.on_hold for o in shipped)
    assert got == {
        "applied": False,
        "matched": len(shipped),
        "eligible": len(shipped) - held,
        "skipped": {"order is on hold: release it first": held} if held else {},
    }


def test_without_yes_and_no_terminal_it_refuses_with_exit_2(cli) -> None:
    before = cli.fingerprint()
    r = cli("bulk", "hold", "--filter", "status:processing", "--reason", "strike")
    assert r.exit_code == 2
    assert "will change" in r.stdout  # the preview, so a script can see what it would do
    assert (
        r.stderr.strip() == "error: not applied: add --yes to apply without a terminal to confirm"
    )
    assert cli.fingerprint() == before


def test_yes_applies_and_a_second_run_changes_nothing(cli) -> None:
    first = ok_json(cli("bulk", "transition", *SHIPPED, "--to", "delivered", "--yes", "--json"))
    assert first["applied"] and first["changed"] > 0 and not first["cancelled"]
    assert len(first["changed_sample"]) == first["changed"]
    delivered = {o.number for o in all_orders(cli.url) if o.status == "delivered"}
    assert set(first["changed_sample"]) <= delivered
    after = cli.fingerprint()
    again = ok_json(cli("bulk", "transition", *SHIPPED, "--to", "delivered", "--yes", "--json"))
    assert again["changed"] == 0
    assert cli.fingerprint()["orders"] == after["orders"]


def test_human_result_goes_to_stdout(cli) -> None:
    r = cli("bulk", "tag", "rush", "--filter", "", "--yes")
    assert r.exit_code == 0, r.stderr
    assert "tag rush: done (run " in r.stdout and "24  changed" in r.stdout
    assert sum("rush" in o.tags for o in all_orders(cli.url)) == 24


def test_ids_from_a_file_and_from_stdin(cli, tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("PB-100001\n100002\n\n#3\n")
    got = ok_json(cli("bulk", "note", "Checked", "--ids-from", str(ids), "--yes", "--json"))
    assert sorted(got["changed_sample"]) == ["PB-100001", "PB-100002", "PB-100003"]
    r = cli.runner.invoke(
        app,
        ["--as", "ada", "bulk", "tag", "batch-7", "--ids-from", "-", "--yes", "--json"],
        input="PB-100004,anything\nPB-100005\n",
    )
    assert json.loads(r.stdout)["changed_sample"] == ["PB-100004", "PB-100005"]


def test_ship_from_a_csv_without_a_filter_ships_the_orders_it_names(cli, tmp_path: Path) -> None:
    ready = [
        o.number
        for o in all_orders(cli.url)
        if o.status == "processing" and not o.on_hold and o.skus - {"EBOOK-PY", "KEY-PRO"}
    ]
    csv_file = tmp_path / "tracking.csv"
    csv_file.write_text("order,tracking\n" + "".join(f"{n},1Z{i}\n" for i, n in enumerate(ready)))
    got = ok_json(
        cli("bulk", "ship", "--from", str(csv_file), "--carrier", "UPS", "--yes", "--json")
    )
    assert sorted(got["changed_sample"]) == sorted(ready) and got["matched"] == len(ready)
    csv_file.write_text("PB-100001,1Z1\nPB-999999,1Z2\n")
    before = cli.fingerprint()
    assert_clean_failure(
        cli("bulk", "ship", "--from", str(csv_file), "--carrier", "UPS", "--yes"),
        3,
        "no order PB-999999",
    )
    assert cli.fingerprint() == before


def test_bad_input_and_permission_exit_codes(cli, tmp_path: Path) -> None:
    before = cli.fingerprint()
    cases = [
        (["bulk", "transition", *SHIPPED, "--to", "shipped", "--yes"], 2, "use ship"),
        (["bulk", "transition", "--filter", "colour:red", "--to", "delivered"], 2, "colour"),
        (["bulk", "cancel", *SHIPPED, "--reason", "bored", "--yes"], 2, "cancel reason"),
        (["bulk", "hold", "--reason", "x", "--yes"], 2, "choose the orders"),
        (
            ["bulk", "release", *SHIPPED, "--ids-from", str(tmp_path / "none"), "--yes"],
            2,
            "not both",
        ),
        (["bulk", "release", "--ids-from", str(tmp_path / "none"), "--yes"], 2, "cannot read"),
    ]
    for argv, code, fragment in cases:
        assert_clean_failure(cli(*argv), code, fragment)
    r = cli("bulk", "transition", *SHIPPED, "--to", "delivered", "--yes", operator="alan")
    assert_clean_failure(r, 5, "may not run bulk actions")
    assert cli.fingerprint() == before
