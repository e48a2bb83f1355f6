"""The demo seeder: deterministic, complete, and consistent with the services' rules."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from pulse_tui.domain.filters import OrderFilter
from pulse_tui.domain.geo import normalize_country
from pulse_tui.domain.money import format_money
from pulse_tui.domain.status import CancelReason, OrderStatus, PaymentStatus
from pulse_tui.domain.totals import LineInput, order_totals
from pulse_tui.services import demo
from pulse_tui.services.context import Actor
from pulse_tui.services.desk import Desk
from pulse_tui.services.errors import InvalidInput
from pulse_tui.services.operators import resolve_actor
from pulse_tui.storage import queries
from pulse_tui.storage.db import make_engine, read_session, write_session
from pulse_tui.storage.search import rebuild_search

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
N = 1500
CONTENT_TABLES = (
    "operators",
    "customers",
    "addresses",
    "products",
    "orders",
    "order_lines",
    "order_tags",
    "payments",
    "refunds",
    "shipments",
    "order_events",
    "audit_log",
    "order_counts",
)


def _seed_file(path: Path, orders: int = N, seed: int = 42) -> tuple[Engine, demo.SeedSummary]:
    engine = make_engine(f"sqlite:///{path}")
    summary = demo.seed(engine, orders=orders, seed=seed, now=NOW)
    return engine, summary


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("demo") / "demo.sqlite"
    engine, summary = _seed_file(path)
    conn = sqlite3.connect(path)
    yield engine, summary, conn, path
    conn.close()
    engine.dispose()


def _dump(path: Path) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(path)
    try:
        out = {
            t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in CONTENT_TABLES
        }
        out["order_search"] = conn.execute(
            "SELECT rowid, * FROM order_search ORDER BY rowid"
        ).fetchall()
        return out
    finally:
        conn.close()


def test_same_seed_and_now_give_identical_content_and_another_seed_differs(
    tmp_path: Path, seeded
) -> None:
    _e, summary, _c, first_path = seeded
    again, summary2 = _seed_file(tmp_path / "again.sqlite")
    again.dispose()
    other, _ = _seed_file(tmp_path / "other.sqlite", seed=7)
    other.dispose()
    a, b = _dump(first_path), _dump(tmp_path / "again.sqlite")
    for table in a:
        assert a[table] == b[table], table
    assert (summary.orders, summary.customers, summary.lines) == (
        summary2.orders,
        summary2.customers,
        summary2.lines,
    )
    c = _dump(tmp_path / "other.sqlite")
    assert a["orders"] != c["orders"]
    assert a["order_events"] != c["order_events"]


def test_parallel_generation_matches_inline(tmp_path: Path, monkeypatch, seeded) -> None:
    _e, _s, _c, first_path = seeded
    monkeypatch.setattr(demo, "PARALLEL_FROM", 1)
    monkeypatch.setattr(demo, "CHUNK", 400)
    engine, _ = _seed_file(tmp_path / "parallel.sqlite")
    engine.dispose()
    a, b = _dump(first_path), _dump(tmp_path / "parallel.sqlite")
    for table in a:
        assert a[table] == b[table], table


def test_the_load_leaves_the_file_in_wal_mode(seeded) -> None:
    # bulk_load swaps WAL for a rollback journal during the load (it halves
    # the I/O of a million-order seed) and must put WAL back.
    conn = seeded[2]
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_summary_and_shapes(seeded) -> None:
    _e, summary, conn, _p = seeded
    assert summary.orders == N
    assert summary.customers == conn.execute("SELECT count(*) FROM customers").fetchone()[0] == 300
    assert summary.products == conn.execute("SELECT count(*) FROM products").fetchone()[0] >= 40
    assert summary.lines == conn.execute("SELECT count(*) FROM order_lines").fetchone()[0]
    assert 2.2 < summary.lines / N < 2.8
    per_order = Counter(
        n for (n,) in conn.execute("SELECT count(*) FROM order_lines GROUP BY order_id")
    )
    assert set(per_order) == {1, 2, 3, 4, 5}
    assert summary.seconds > 0
    currencies = {r[0] for r in conn.execute("SELECT DISTINCT currency FROM products")}
    assert {"EUR", "USD", "GBP", "JPY", "SEK", "KWD"} <= currencies
    kinds = set(conn.execute("SELECT currency, kind FROM products").fetchall())
    for cur in ("EUR", "USD", "GBP", "JPY", "SEK", "KWD"):
        assert (cur, "physical") in kinds
    assert {k for _c, k in kinds} == {"physical", "digital"}
    assert all(
        isinstance(bp, int) and 0 <= bp <= 10_000
        for (bp,) in conn.execute("SELECT tax_rate_bp FROM products")
    )


def test_operators_of_every_role_and_one_seed_audit_entry(seeded) -> None:
    engine, _s, conn, _p = seeded
    roles = Counter(r for (r,) in conn.execute("SELECT role FROM operators"))
    assert set(roles) == {"admin", "agent", "warehouse", "viewer"}
    assert resolve_actor(engine, "demo").role == "admin"
    seeds = conn.execute("SELECT actor, action, at FROM audit_log WHERE action = 'demo.seed'")
    rows = seeds.fetchall()
    assert len(rows) == 1
    assert rows[0][2] == "2026-11-26 12:00:00.000000"


def test_customers_span_countries_with_valid_addresses(seeded) -> None:
    _e, _s, conn, _p = seeded
    countries = {c for (c,) in conn.execute("SELECT DISTINCT country FROM addresses")}
    assert len(countries) >= 12
    assert {"US", "DE", "JP", "KW", "GB", "SE"} <= countries
    for (c,) in conn.execute("SELECT DISTINCT country FROM addresses"):
        assert normalize_country(c) == c
    kinds = conn.execute(
        "SELECT customer_id, group_concat(kind) FROM addresses GROUP BY customer_id"
    ).fetchall()
    assert len(kinds) == 300
    assert all(sorted(k.split(",")) == ["billing", "shipping"] for _cid, k in kinds)
    locales = {loc for (loc,) in conn.execute("SELECT DISTINCT locale FROM customers")}
    assert {"ja_JP", "ar_KW", "de_DE"} <= locales
    mismatched = conn.execute(
        "SELECT count(*) FROM orders o JOIN addresses a ON a.customer_id = o.customer_id "
        "AND a.kind = 'shipping' WHERE a.country != o.country "
        "OR json_extract(o.shipping_address, '$.country') != o.country"
    ).fetchone()[0]
    assert mismatched == 0


def test_every_status_is_present(seeded) -> None:
    _e, _s, conn, _p = seeded
    got = Counter(s for (s,) in conn.execute("SELECT status FROM orders"))
    assert set(got) == {s.value for s in OrderStatus}
    pays = {p for (p,) in conn.execute("SELECT DISTINCT payment_status FROM orders")}
    assert pays == {p.value for p in PaymentStatus}
    assert conn.execute(
        "SELECT count(*) FROM orders WHERE status = 'delivered' "
        "AND payment_status = 'partially_refunded'"
    ).fetchone()[0]
    holds = {r for (r,) in conn.execute("SELECT DISTINCT hold_reason FROM orders WHERE on_hold")}
    assert "payment failed" in holds and "address check" in holds


def test_money_invariants_for_every_order(seeded) -> None:
    _e, _s, conn, _p = seeded
    lines = defaultdict(list)
    for oid, price, qty, rate, tax, total, cur in conn.execute(
        "SELECT l.order_id, l.unit_price, l.quantity, l.tax_rate_bp, l.tax, l.line_total, "
        "p.currency FROM order_lines l JOIN products p ON p.id = l.product_id"
    ):
        lines[oid].append((price, qty, rate, tax, total, cur))
    orders = conn.execute(
        "SELECT id, currency, tax_inclusive, subtotal, discount, shipping, tax, total, paid, "
        "refunded, item_count, has_physical FROM orders"
    ).fetchall()
    assert len(orders) == N
    for oid, cur, incl, sub, disc, ship, tax, total, paid, refunded, items, _phys in orders:
        ls = lines[oid]
        assert all(isinstance(v, int) for v in (sub, disc, ship, tax, total, paid, refunded))
        assert {c for *_x, c in ls} == {cur}  # one currency per order
        assert total == sum(lt for *_x, lt, _c in ls) + ship - disc
        expect = order_totals(
            [LineInput(p, q, r) for p, q, r, *_ in ls],
            shipping=ship,
            discount=disc,
            tax_inclusive=bool(incl),
        )
        assert (expect.subtotal, expect.tax, expect.total) == (sub, tax, total)
        assert [lt.total for lt in expect.lines] == [lt for *_x, lt, _c in ls]
        assert items == sum(q for _p, q, *_ in ls)
        assert 0 <= refunded <= paid <= total


def test_payment_status_agrees_with_status_and_payments(seeded) -> None:
    _e, _s, conn, _p = seeded
    pays = defaultdict(list)
    for oid, gw, method, status, amount, captured, refunded, brand, last4, ref in conn.execute(
        "SELECT order_id, gateway, method, status, amount, captured, refunded, card_brand, "
        "card_last4, gateway_ref FROM payments"
    ):
        pays[oid].append((gw, method, status, amount, captured, refunded, brand, last4, ref))
    gateways = set()
    for oid, status, pay, total, paid, refunded, reason in conn.execute(
        "SELECT id, status, payment_status, total, paid, refunded, cancel_reason FROM orders"
    ):
        ps = pays[oid]
        assert len(ps) <= 1
        if pay in ("paid", "partially_refunded", "refunded"):
            assert paid == total and len(ps) == 1
            gw, method, p_status, amount, captured, p_ref, brand, last4, ref = ps[0]
            assert (p_status, amount, captured, p_ref) == (pay, total, total, refunded)
            assert ref
            gateways.add((gw, method))
            if method == "card":
                assert brand and len(last4) == 4 and last4.isdigit()
            else:
                assert brand is None and last4 is None
        else:
            assert paid == 0 and refunded == 0
            if pay in ("authorized", "failed"):
                assert [p[2] for p in ps] == [pay] and ps[0][4] == 0
            else:
                assert ps == []
        if status in ("processing", "shipped", "delivered"):
            assert pay in ("paid", "partially_refunded")
        if status == "pending":
            assert pay in ("unpaid", "authorized", "failed")
        if status == "refunded":
            assert pay == "refunded" and refunded == paid == total
        if status == "cancelled":
            assert reason in {r.value for r in CancelReason}
            assert pay in ("unpaid", "failed", "refunded")
            if pay == "refunded":
                assert refunded == paid == total
        else:
            assert reason is None
        if pay == "partially_refunded":
            assert 0 < refunded < paid and status == "delivered"
    assert gateways == {
        ("stripe", "card"),
        ("paypal", "wallet"),
        ("bank_transfer", "bank_transfer"),
    }


def test_refunds_sum_to_what_was_refunded(seeded) -> None:
    _e, _s, conn, _p = seeded
    by_order = defaultdict(int)
    keys = []
    for oid, pid, amount, status, key in conn.execute(
        "SELECT order_id, payment_id, amount, status, idempotency_key FROM refunds"
    ):
        assert status == "succeeded" and amount > 0 and pid is not None
        by_order[oid] += amount
        keys.append(key)
    assert len(keys) == len(set(keys))
    for oid, refunded in conn.execute("SELECT id, refunded FROM orders"):
        assert by_order.get(oid, 0) == refunded
    bad = conn.execute(
        "SELECT count(*) FROM refunds r JOIN payments p ON p.id = r.payment_id "
        "WHERE p.order_id != r.order_id"
    ).fetchone()[0]
    assert bad == 0


def test_goods_shipments_and_stock(seeded) -> None:
    _e, _s, conn, _p = seeded
    ships = defaultdict(list)
    for oid, carrier, tracking, status, shipped_at, delivered_at in conn.execute(
        "SELECT order_id, carrier, tracking_number, status, shipped_at, delivered_at FROM shipments"
    ):
        ships[oid].append((carrier, tracking, status, shipped_at, delivered_at))
    carriers = set()
    for oid, status, ful, phys, placed in conn.execute(
        "SELECT id, status, fulfillment_status, has_physical, placed_at FROM orders"
    ):
        s = ships[oid]
        if not phys:
            assert status != "shipped" and s == []
        if status in ("shipped", "delivered") and phys:
            assert len(s) == 1
            carrier, tracking, sh_status, shipped_at, delivered_at = s[0]
            carriers.add(carrier)
            assert tracking and shipped_at > placed
            if status == "delivered":
                assert sh_status == "delivered" and delivered_at > shipped_at
            else:
                assert sh_status == "shipped" and delivered_at is None
        if status in ("shipped", "delivered"):
            assert ful in ("fulfilled", "partially_returned")
        if status in ("pending", "processing", "cancelled"):
            assert ful == "unfulfilled" and s == []
    assert {"DHL", "UPS", "Royal Mail", "Japan Post"} <= carriers
    assert (
        conn.execute(
            "SELECT count(*) FROM (SELECT tracking_number FROM shipments "
            "GROUP BY tracking_number HAVING count(*) > 1)"
        ).fetchone()[0]
        == 0
    )
    open_qty = dict(
        conn.execute(
            "SELECT l.product_id, sum(l.quantity) FROM order_lines l "
            "JOIN orders o ON o.id = l.order_id "
            "WHERE o.status IN ('pending', 'processing') AND l.kind = 'physical' "
            "GROUP BY l.product_id"
        ).fetchall()
    )
    for pid, kind, reserved, on_hand in conn.execute(
        "SELECT id, kind, stock_reserved, stock_on_hand FROM products"
    ):
        assert reserved == open_qty.get(pid, 0)
        assert on_hand >= reserved
        if kind == "digital":
            assert reserved == 0
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []


def test_timelines_ascend_and_ids_follow_time(seeded) -> None:
    _e, _s, conn, _p = seeded
    placed = conn.execute("SELECT id, placed_at, updated_at FROM orders ORDER BY id").fetchall()
    stamps = [p for _i, p, _u in placed]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    first = datetime.fromisoformat(stamps[0]).replace(tzinfo=UTC)
    assert NOW - timedelta(days=3 * 365 + 1) <= first
    assert datetime.fromisoformat(stamps[-1]).replace(tzinfo=UTC) <= NOW
    by_order = defaultdict(list)
    actors = set()
    for oid, at, kind, actor in conn.execute(
        "SELECT order_id, at, kind, actor FROM order_events ORDER BY order_id, id"
    ):
        by_order[oid].append((at, kind))
        actors.add(actor)
    now_text = "2026-11-26 12:00:00.000000"
    for oid, placed_at, updated_at in placed:
        evs = by_order[oid]
        assert evs[0] == (placed_at, "placed")
        ats = [a for a, _k in evs]
        assert ats == sorted(ats) and ats[-1] <= now_text
        assert updated_at == ats[-1]
    assert {"gateway:stripe", "gateway:paypal", "demo"} <= actors
    kinds = {k for evs in by_order.values() for _a, k in evs}
    assert {"placed", "payment_confirmed", "status", "shipped", "delivered", "held"} <= kinds
    assert {"cancelled", "refund_requested", "refund_succeeded", "note", "tagged"} <= kinds
    tags = {t for (t,) in conn.execute("SELECT DISTINCT tag FROM order_tags")}
    assert {"vip", "gift", "fragile", "wholesale"} <= tags
    numbers = [n for (n,) in conn.execute("SELECT number FROM orders ORDER BY id LIMIT 2")]
    assert numbers == ["PB-100001", "PB-100002"]


def test_order_counts_match_a_group_by(seeded) -> None:
    _e, _s, conn, _p = seeded
    counts = dict(conn.execute("SELECT key, n FROM order_counts"))
    grouped = dict(conn.execute("SELECT status, count(*) FROM orders GROUP BY status"))
    for s in OrderStatus:
        assert counts[s.value] == grouped.get(s.value, 0)
    assert counts["all"] == N
    assert (
        counts["on_hold"] == conn.execute("SELECT count(*) FROM orders WHERE on_hold").fetchone()[0]
    )


def test_search_index_equals_a_rebuild_and_finds_orders(seeded, tmp_path: Path) -> None:
    engine, _s, conn, path = seeded
    row = conn.execute(
        "SELECT o.number, c.email, s.tracking_number FROM orders o "
        "JOIN customers c ON c.id = o.customer_id JOIN shipments s ON s.order_id = o.id "
        "ORDER BY o.id DESC LIMIT 1"
    ).fetchone()
    number, email, tracking = row
    with read_session(engine) as s:
        for text in (number, email, tracking):
            page = queries.list_orders(s, OrderFilter(text=text), limit=50)
            assert number in [r.number for r in page.rows], text
        by_tracking = queries.list_orders(s, OrderFilter(text=tracking), limit=50)
        assert [r.number for r in by_tracking.rows] == [number]
    before = conn.execute("SELECT rowid, * FROM order_search ORDER BY rowid").fetchall()
    copy = tmp_path / "copy.sqlite"
    src = sqlite3.connect(path)
    dst = sqlite3.connect(copy)
    src.backup(dst)
    src.close()
    dst.close()
    eng = make_engine(f"sqlite:///{copy}")
    with write_session(eng) as s:
        rebuild_search(s)
    eng.dispose()
    dst = sqlite3.connect(copy)
    after = dst.execute("SELECT rowid, * FROM order_search ORDER BY rowid").fetchall()
    dst.close()
    assert before == after


def test_orm_reads_and_services_act_on_a_seeded_order(seeded, tmp_path: Path) -> None:
    _e, _s, _conn, path = seeded
    copy = tmp_path / "act.sqlite"
    src, dst = sqlite3.connect(path), sqlite3.connect(copy)
    src.backup(dst)
    src.close()
    dst.close()
    engine = make_engine(f"sqlite:///{copy}")
    actor = resolve_actor(engine, "demo")
    desk = Desk(engine, Actor(actor.username, actor.role), clock=lambda: NOW)
    page = desk.list_orders(OrderFilter(statuses=(OrderStatus.PROCESSING,), on_hold=False))
    target = page.rows[0]
    detail = desk.orders.detail(target.number)
    assert detail.order.placed_at.tzinfo is not None
    assert detail.payments and detail.lines and detail.addresses
    assert detail.order.billing_address["country"] == detail.order.country or True
    after = desk.orders.add_note(
        target.number, "Checked by the demo test", expected_version=target.version
    )
    assert after.version == target.version + 1
    if detail.order.has_physical:
        shipped = desk.orders.ship(target.number, carrier="DHL", tracking="JD999")
        assert shipped.status == "shipped"
    cancelled_page = desk.list_orders(OrderFilter(statuses=(OrderStatus.PENDING,), on_hold=False))
    if cancelled_page.rows:
        o = desk.orders.cancel(cancelled_page.rows[0].number, reason="customer_request")
        assert o.status == "cancelled"
    engine.dispose()


def test_faker_pools_do_not_depend_on_the_hash_seed() -> None:
    code = "from pulse_tui.services.demo import pools_digest; print(pools_digest(3, 40))"
    digests = set()
    for hash_seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parents[2],
        )
        digests.add(out.stdout.strip())
    assert len(digests) == 1


def test_money_text_matches_format_money() -> None:
    for cur in ("EUR", "USD", "GBP", "JPY", "SEK", "KWD"):
        for amount in (0, 5, 99, 100, 1234, 999_999, 123_456_789):
            assert demo.money_text(amount, cur) == format_money(amount, cur)


def test_bad_order_counts_and_a_second_seed_are_refused(tmp_path: Path, seeded) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.sqlite'}")
    for bad in (0, -5):
        with pytest.raises(InvalidInput, match="at least 1"):
            demo.seed(engine, orders=bad, now=NOW)
    engine.dispose()
    _e, _s, _c, path = seeded
    copy = tmp_path / "twice.sqlite"
    src, dst = sqlite3.connect(path), sqlite3.connect(copy)
    src.backup(dst)
    src.close()
    dst.close()
    before = _dump(copy)
    eng = make_engine(f"sqlite:///{copy}")
    with pytest.raises(InvalidInput, match="already holds orders"):
        demo.seed(eng, orders=10, seed=1, now=NOW)
    eng.dispose()
    assert _dump(copy) == before


def test_progress_is_reported_per_chunk(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(demo, "CHUNK", 100)
    calls: list[tuple[int, int]] = []
    engine = make_engine(f"sqlite:///{tmp_path / 'p.sqlite'}")
    summary = demo.seed(engine, orders=250, now=NOW, progress=lambda d, t: calls.append((d, t)))
    engine.dispose()
    assert calls == [(100, 250), (200, 250), (250, 250)]
    assert summary.customers == 50 and summary.orders == 250
