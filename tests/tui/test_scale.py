"""The list on 200,000 orders holds a bounded window of rows, never all of them."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from pulse_tui.app import build_app
from pulse_tui.screens.order_list import OrderListScreen
from pulse_tui.services.desk import Desk
from pulse_tui.storage.db import make_engine
from pulse_tui.widgets.order_table import OrderTable
from tests import factories

STATUSES = ["pending", "processing", "shipped", "delivered", "cancelled"]
PAY = {"pending": "unpaid", "cancelled": "unpaid"}


def build_big_db(path: Path, orders: int, customers: int = 500) -> None:
    """Orders straight into SQLite with executemany (the schema from the migrations).

    Order i is placed i minutes after a base time (ids ascend with time), so
    the newest is PB-(100000 + orders) placed one minute before START."""
    factories.new_engine(path).dispose()
    base = factories.START - timedelta(minutes=orders + 1)
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    with con:
        # Secondary indexes and the counting trigger are rebuilt once at the end,
        # several times cheaper than maintaining them row by row.
        saved = con.execute(
            "SELECT name, sql FROM sqlite_master WHERE type IN ('index', 'trigger')"
            " AND tbl_name IN ('orders', 'order_lines') AND sql IS NOT NULL"
        ).fetchall()
        for name, sql in saved:
            kind = "TRIGGER" if sql.upper().startswith("CREATE TRIGGER") else "INDEX"
            con.execute(f"DROP {kind} {name}")
        con.executemany(
            "INSERT INTO customers(id, name, email, locale, created_at) VALUES (?,?,?,?,?)",
            (
                (i, f"Customer {i:04d}", f"c{i}@example.com", "en_US", "2025-01-01 00:00:00.000000")
                for i in range(1, customers + 1)
            ),
        )
        con.execute(
            "INSERT INTO products(id, sku, name, kind, unit_price, currency, tax_rate_bp,"
            " stock_on_hand, stock_reserved, active) VALUES (1,'MUG-BLUE','Blue mug',"
            "'physical',1250,'EUR',0,0,0,1)"
        )

        def order_rows():  # type: ignore[no-untyped-def]
            for i in range(1, orders + 1):
                status = STATUSES[i % len(STATUSES)]
                placed = (base + timedelta(minutes=i)).strftime("%Y-%m-%d %H:%M:%S.%f")
                total = 1250 * (1 + i % 4)
                yield (
                    i,
                    f"PB-{100000 + i}",
                    1 + i % customers,
                    status,
                    PAY.get(status, "paid"),
                    "unfulfilled",
                    "EUR",
                    0,
                    total,
                    0,
                    0,
                    0,
                    total,
                    0,
                    0,
                    placed,
                    placed,
                    "DE",
                    0,
                    1,
                    1 + i % 4,
                    1,
                )

        con.executemany(
            "INSERT INTO orders(id, number, customer_id, status, payment_status,"
            " fulfillment_status, currency, tax_inclusive, subtotal, discount, shipping, tax,"
            " total, paid, refunded, placed_at, updated_at, country, on_hold, has_physical,"
            " item_count, version) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            order_rows(),
        )
        con.executemany(
            "INSERT INTO order_lines(order_id, product_id, sku, name, kind, quantity,"
            " unit_price, tax_rate_bp, discount, tax, line_total, qty_fulfilled,"
            " qty_returned, qty_refunded) VALUES (?,1,'MUG-BLUE','Blue mug','physical',?,1250,"
            "0,0,0,?,0,0,0)",
            ((i, 1 + i % 4, 1250 * (1 + i % 4)) for i in range(1, orders + 1)),
        )
        for _name, sql in saved:
            con.execute(sql)
        con.execute("UPDATE order_counts SET n = 0")
        con.execute(
            "UPDATE order_counts SET n = (SELECT count(*) FROM orders o"
            " WHERE order_counts.key IN ('all', o.status)"
            " OR (order_counts.key = 'on_hold' AND o.on_hold))"
        )
    con.close()


N = 200_000
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def big_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "big.sqlite"
    t0 = time.perf_counter()
    build_big_db(path, N)
    assert time.perf_counter() - t0 < 25, "building the 200k database got slow"
    return path


@pytest.fixture
def big_app(big_db: Path) -> Callable[[], object]:
    def factory():  # type: ignore[no-untyped-def]
        engine = make_engine(f"sqlite:///{big_db}")
        return build_app(Desk(engine, factories.ADMIN, clock=lambda: factories.START))

    return factory


async def _settle(app, pilot) -> None:  # type: ignore[no-untyped-def]
    for _ in range(2):
        await pilot.pause()
        await app.workers.wait_for_complete()
    await pilot.pause()


def _held(app) -> int:  # type: ignore[no-untyped-def]
    table = app.screen.query_one(OrderTable)
    assert table.row_count == len(table.window.rows)
    return len(table.window.rows)


def _painted_cursor_line(table: OrderTable) -> str:
    y = table.cursor_row - round(table.scroll_y) + 1  # +1: the header line
    assert 1 <= y < table.scrollable_content_region.height, "cursor scrolled out of view"
    return table.render_line(y).text


async def test_list_on_200k_orders_holds_only_a_window(big_app) -> None:  # type: ignore[no-untyped-def]
    app = big_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, OrderListScreen)
        table = screen.query_one(OrderTable)
        assert screen.counts["all"] == N
        assert table.current.number == f"PB-{100000 + N}"  # newest first
        assert 0 < _held(app) <= table.window.max_rows < 1000

        # Scroll far down: pages are fetched, old ones dropped; the window stays bounded.
        for _ in range(25):
            await pilot.press("pagedown")
            await _settle(app, pilot)
            assert _held(app) <= table.window.max_rows
        assert table.absolute_row is not None and table.absolute_row > 500
        # the rows around the cursor are the right ones (keyset paging lost nothing)
        assert table.current.number == f"PB-{100000 + N - table.absolute_row}"
        # ...and the line painted under the cursor is that order (scroll and window agree)
        assert _painted_cursor_line(table).split()[0] == table.current.number
        assert table.render_line(0).text.split()[0] == "Number"  # the header stays put

        # back up past the window's first row: previous pages are fetched in front
        start = table.window.start
        for _ in range(10):
            await pilot.press("pageup")
            await _settle(app, pilot)
            assert _held(app) <= table.window.max_rows
        assert table.window.start is not None and table.window.start < start
        assert table.current.number == f"PB-{100000 + N - table.absolute_row}"
        assert _painted_cursor_line(table).split()[0] == table.current.number

        await pilot.press("G")  # bottom: the oldest order, fetched without walking there
        await _settle(app, pilot)
        assert table.current.number == "PB-100001"
        assert _painted_cursor_line(table).split()[0] == "PB-100001"
        assert table.absolute_row == N - 1
        assert _held(app) <= table.window.max_rows
        assert "200,000 of 200,000" in str(screen.query_one("#list-status").render())

        await pilot.press("g")
        await _settle(app, pilot)
        assert table.current.number == f"PB-{100000 + N}"


async def test_page_down_moves_a_whole_page_at_the_window_edge(big_app) -> None:  # type: ignore[no-untyped-def]
    """The next page is fetched one page-down ahead and parked: the key that
    reaches the window's edge brings it in and moves a whole page (it used to
    stop at the edge while the page was fetched)."""
    app = big_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        table = app.screen.query_one(OrderTable)
        step = table._visible_rows()
        positions = [table.absolute_row]
        for _ in range(8):  # 8 pages of 35 rows: the 250-row window refills and drops
            await pilot.press("pagedown")
            await _settle(app, pilot)
            positions.append(table.absolute_row)
            assert _held(app) <= table.window.max_rows
        assert [b - a for a, b in zip(positions, positions[1:], strict=False)] == [step] * 8
        assert table.window.start and table.window.start > 0  # rows were dropped at the top
        assert table.current.number == f"PB-{100000 + N - table.absolute_row}"
        assert _painted_cursor_line(table).split()[0] == table.current.number
