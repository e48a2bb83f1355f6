"""`pulse export`: files, formats, --force, --json, exit codes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from openpyxl import load_workbook

from .helpers import all_orders, assert_clean_failure, ok_json


def test_export_csv_then_refuse_to_overwrite(cli, tmp_path: Path) -> None:
    out = tmp_path / "orders.csv"
    r = cli("export", "--filter", "status:delivered", "-o", str(out))
    assert r.exit_code == 0, r.stderr
    assert r.stdout == ""
    delivered = sorted(o.number for o in all_orders(cli.url) if o.status == "delivered")
    with out.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(row["number"] for row in rows) == delivered
    assert r.stderr.strip() == f"exported {len(delivered)} order(s) to {out} (csv)"
    out.write_text("mine")
    assert_clean_failure(cli("export", "-o", str(out)), 2, "exists; use --force")
    assert out.read_text() == "mine"
    assert cli("export", "-o", str(out), "--force").exit_code == 0
    assert len(out.read_text().splitlines()) == 25  # header + every order


def test_export_xlsx_with_columns_and_json_summary(cli, tmp_path: Path) -> None:
    out = tmp_path / "orders.xlsx"
    got = ok_json(cli("export", "-o", str(out), "--columns", "number,total,tags", "--json"))
    assert got == {
        "rows": 24,
        "path": str(out),
        "format": "xlsx",
        "columns": ["number", "total", "tags"],
    }
    ws = load_workbook(out, read_only=True).active
    assert ws is not None
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0] == ("number", "total", "tags") and len(rows) == 25
    tagged = {r[0]: (r[2] if len(r) > 2 else None) for r in rows[1:]}  # trailing empties dropped
    assert tagged["PB-100007"] == "gift,vip"


def test_export_jsonl_by_format_option(cli, tmp_path: Path) -> None:
    out = tmp_path / "orders.data"
    assert cli("export", "-o", str(out), "--format", "jsonl").exit_code == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 24 and all(isinstance(r["total_minor"], int) for r in records)


def test_export_refusals(cli, tmp_path: Path) -> None:
    out = tmp_path / "o.csv"
    assert_clean_failure(cli("export", "-o", str(out), operator="alan"), 5, "may not export")
    assert_clean_failure(cli("export", "-o", str(out), "--columns", "number,colour"), 2, "colour")
    assert_clean_failure(cli("export", "-o", str(tmp_path / "o.pdf")), 2, "unknown format 'pdf'")
    assert_clean_failure(cli("export", "-o", str(tmp_path / "no" / "o.csv")), 2, "no directory")
    assert not [p for p in tmp_path.iterdir() if not p.name.startswith("pulse.sqlite")]
