"""Export: CSV / XLSX / JSONL content equals the database; no overwrite; no half files."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import Engine, text

from pulse_tui.domain.filters import OrderFilter, parse_query
from pulse_tui.domain.money import plain_amount
from pulse_tui.services import export
from pulse_tui.services.bulk import Selection
from pulse_tui.services.errors import Denied, InvalidInput
from pulse_tui.services.export import (
    DEFAULT_COLUMNS,
    EXPORT_COLUMNS,
    ExportCancelled,
    ExportFormat,
    export_orders,
    major_units,
)
from tests import bulk_db, factories
from tests.bulk_db import NOW, ctx

bulk_template = bulk_db.bulk_template  # fixtures
bulk_path = bulk_db.bulk_path
bulk_engine = bulk_db.bulk_engine

ALL = Selection(OrderFilter())


def expected(engine: Engine, where: str = "1") -> list[dict[str, str]]:
    """What the database says, in the export's words (CSV cells)."""
    with engine.connect() as c:
        orders = c.execute(
            text(
                "SELECT o.id, o.number, o.status, o.payment_status, o.currency, o.total, "
                "o.country, cu.name, cu.email FROM orders o "
                f"JOIN customers cu ON cu.id = o.customer_id WHERE {where} ORDER BY o.id"
            )
        ).all()
        tags: dict[int, list[str]] = {}
        for oid, tag in c.execute(text("SELECT order_id, tag FROM order_tags ORDER BY tag")):
            tags.setdefault(oid, []).append(tag)
        items: dict[int, list[str]] = {}
        for oid, name, qty in c.execute(
            text("SELECT order_id, name, quantity FROM order_lines ORDER BY order_id, id")
        ):
            items.setdefault(oid, []).append(f"{qty}× {name}")
    return [
        {
            "number": number,
            "status": status,
            "payment_status": pay,
            "currency": cur,
            "total": plain_amount(total, cur),
            "total_minor": str(total),
            "country": country,
            "customer_name": name,
            "customer_email": email,
            "tags": ",".join(tags.get(oid, [])),
            "items": ", ".join(items.get(oid, [])),
        }
        for oid, number, status, pay, cur, total, country, name, email in orders
    ]


def pick(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    wanted = (
        "number",
        "status",
        "payment_status",
        "currency",
        "total",
        "total_minor",
        "country",
        "customer_name",
        "customer_email",
        "tags",
        "items",
    )
    return [{k: str(r[k]) for k in wanted} for r in rows]


def test_csv_round_trips(small_db: Engine, tmp_path: Path) -> None:
    d = factories.desk(small_db)
    d.orders.tag("PB-100003", ["vip", "gift"])
    out = tmp_path / "orders.csv"
    n = export_orders(d.ctx, ALL, ExportFormat.CSV, out)
    with out.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert n == len(rows) == 24
    assert tuple(rows[0]) == DEFAULT_COLUMNS
    assert pick(rows) == expected(small_db)
    by_number = {r["number"]: r for r in rows}
    assert by_number["PB-100003"]["tags"] == "gift,vip"
    assert {r["currency"] for r in rows} >= {"JPY", "KWD", "EUR", "USD"}  # 0, 3, 2 digits


def test_xlsx_round_trips_with_money_as_text(bulk_engine: Engine, tmp_path: Path) -> None:
    out = tmp_path / "orders.xlsx"
    sel = Selection(parse_query("status:shipped", NOW))
    n = export_orders(ctx(bulk_engine), sel, ExportFormat.XLSX, out)
    ws = load_workbook(out, read_only=True).active
    assert ws is not None
    values = list(ws.iter_rows(values_only=True))
    header, body = values[0], values[1:]
    assert header == DEFAULT_COLUMNS and n == len(body) > 1000
    # read-only openpyxl drops a row's trailing empty cells: pad them back
    rows = [
        dict(
            zip(
                header,
                ["" if v is None else v for v in r] + [""] * (len(header) - len(r)),
                strict=True,
            )
        )
        for r in body
    ]
    assert pick(rows) == expected(bulk_engine, "o.status = 'shipped'")
    assert all(isinstance(r["total"], str) for r in rows)  # never a float


def test_jsonl_is_valid_with_native_types(small_db: Engine, tmp_path: Path) -> None:
    out = tmp_path / "orders.jsonl"
    cols = ["tags", "number", "total", "total_minor", "on_hold", "placed_at"]
    n = export_orders(factories.desk(small_db).ctx, ALL, "jsonl", out, columns=cols)
    lines = out.read_text(encoding="utf-8").splitlines()
    records = [json.loads(ln) for ln in lines]
    assert n == len(records) == 24
    assert all(list(r) == cols for r in records)
    assert all(isinstance(r["total_minor"], int) and isinstance(r["total"], str) for r in records)
    assert all(isinstance(r["on_hold"], bool) and isinstance(r["tags"], list) for r in records)
    assert records[0]["placed_at"].endswith("+00:00")


def test_ids_selection_exports_exactly_those(small_db: Engine, tmp_path: Path) -> None:
    out = tmp_path / "some.csv"
    export_orders(
        factories.desk(small_db).ctx, Selection(ids=(5, 2, 9)), "csv", out, columns=["number"]
    )
    assert out.read_text().split() == ["number", "PB-100002", "PB-100005", "PB-100009"]


def test_an_existing_file_is_refused_without_force(small_db: Engine, tmp_path: Path) -> None:
    out = tmp_path / "orders.csv"
    out.write_text("keep me")
    c = factories.desk(small_db).ctx
    with pytest.raises(InvalidInput, match="exists; use --force"):
        export_orders(c, ALL, ExportFormat.CSV, out)
    assert out.read_text() == "keep me"
    assert export_orders(c, ALL, ExportFormat.CSV, out, force=True) == 24
    assert out.read_text().startswith("number,")


def test_a_cancelled_export_leaves_no_file(bulk_engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "orders.csv"
    seen: list[int] = []
    with pytest.raises(ExportCancelled):
        export_orders(
            ctx(bulk_engine),
            ALL,
            ExportFormat.CSV,
            out,
            on_progress=lambda done, total: seen.append(done),
            should_cancel=lambda: bool(seen),
        )
    assert seen and list((tmp_path / "out").iterdir()) == []


def test_bad_columns_and_permissions(small_db: Engine, tmp_path: Path) -> None:
    c = factories.desk(small_db).ctx
    with pytest.raises(InvalidInput, match="unknown column 'price'"):
        export_orders(c, ALL, ExportFormat.CSV, tmp_path / "x.csv", columns=["number", "price"])
    with pytest.raises(Denied):
        export_orders(factories.desk(small_db, factories.AGENT).ctx, ALL, "csv", tmp_path / "x.csv")
    assert not (tmp_path / "x.csv").exists()
    assert "total_minor" in EXPORT_COLUMNS and set(DEFAULT_COLUMNS) <= set(EXPORT_COLUMNS)


@pytest.mark.parametrize(
    ("amount", "currency", "text_"),
    [
        (1250, "EUR", "12.50"),
        (5, "USD", "0.05"),
        (-5, "USD", "-0.05"),
        (1250, "JPY", "1250"),
        (4500, "KWD", "4.500"),
        (0, "EUR", "0.00"),
    ],
)
def test_major_units_is_exact(amount: int, currency: str, text_: str) -> None:
    assert major_units(amount, currency) == text_ == plain_amount(amount, currency)


@pytest.mark.parametrize("query", ["", "status:shipped"])
def test_chunk_boundaries_keep_every_order_with_its_lines_and_tags(
    bulk_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, query: str
) -> None:
    # Small chunks: lines and tags are read per chunk (a range scan of the
    # order_id index for a dense chunk, an IN list for a sparse one, as with
    # status:shipped); every order must still get exactly its own.
    monkeypatch.setattr(export, "CHUNK", 37)
    with bulk_engine.begin() as c:
        ids = [r[0] for r in c.execute(text("SELECT id FROM orders ORDER BY id"))]
        for oid in ids[35:40] + ids[-3:]:  # tags on both sides of a chunk boundary
            c.execute(
                text("INSERT INTO order_tags VALUES (:o, 'b-tag'), (:o, 'a-tag')"), {"o": oid}
            )
    out = tmp_path / "orders.csv"
    n = export_orders(ctx(bulk_engine), Selection(parse_query(query, NOW)), "csv", out)
    with out.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    where = "o.status = 'shipped'" if query else "1"
    assert n == len(rows) > 37 * 3
    assert pick(rows) == expected(bulk_engine, where)
    assert sum(r["tags"] == "a-tag,b-tag" for r in rows) >= (8 if not query else 0)


def test_csv_text_is_what_the_csv_module_writes() -> None:
    columns = [
        ("plain", "a,b", 'say "hi"', "two\nlines", "cr\r", "", None, "× ü"),
        (1, None, -5, 0, 10**20, 7, 8, 9),
        ("x", "y", "z", "", None, "q", "r", "s"),
    ]
    buf = io.StringIO()
    csv.writer(buf).writerows(zip(*columns, strict=True))
    assert export.csv_lines(list(columns)) == buf.getvalue()
    lone = [("", None, "a")]  # csv.writer quotes a lone empty cell
    buf = io.StringIO()
    csv.writer(buf).writerows(zip(*lone, strict=True))
    assert export.csv_lines(lone) == buf.getvalue() == '""\r\n""\r\na\r\n'


def test_times_are_iso_utc_whichever_way_they_were_stored(small_db: Engine, tmp_path: Path) -> None:
    d = factories.desk(small_db)
    d.orders.add_note("PB-100004", "address checked")  # the batch path writes updated_at
    with small_db.begin() as c:  # and the forms a driver may have written
        c.execute(text("UPDATE orders SET updated_at = '2026-01-02 03:04:05' WHERE id = 5"))
        c.execute(text("UPDATE orders SET updated_at = '2026-01-02 04:04:05+01:00' WHERE id = 6"))
    out = tmp_path / "t.csv"
    export_orders(d.ctx, ALL, "csv", out, columns=["number", "placed_at", "updated_at"])
    with out.open(newline="", encoding="utf-8") as fh:
        rows = {r["number"]: r for r in csv.DictReader(fh)}
    for r in rows.values():
        for k in ("placed_at", "updated_at"):
            assert datetime.fromisoformat(r[k]).utcoffset() == timedelta(0), r
    assert rows["PB-100004"]["updated_at"].count("+") == 1  # not '...+00:00+00:00'
    assert rows["PB-100005"]["updated_at"] == "2026-01-02T03:04:05+00:00"
    assert rows["PB-100006"]["updated_at"] == "2026-01-02T03:04:05+00:00"
