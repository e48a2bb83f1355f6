"""Database-level benchmarks: our query layer beside the raw sqlite3 floor.

Each case runs the desk's own call (storage.queries through a Session, exactly
what the TUI and CLI use) and a raw ``sqlite3`` query returning the same rows
on the same file; the ratio shows what our layers cost.
"""

from __future__ import annotations

import sqlite3
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session

from pulse_tui.domain.filters import parse_query
from pulse_tui.storage import queries
from pulse_tui.storage.search import fts_query


@dataclass
class Result:
    name: str
    median_ms: float
    p95_ms: float
    target_ms: float | None
    floor_ms: float | None = None

    @property
    def ratio(self) -> float | None:
        if not self.floor_ms:
            return None
        return self.median_ms / self.floor_ms

    @property
    def missed(self) -> bool:
        return self.target_ms is not None and self.p95_ms > self.target_ms


def timed(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    fn()  # warm
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    p95 = samples[min(len(samples) - 1, int(round(0.95 * (len(samples) - 1))))]
    return statistics.median(samples), p95


RAW_PAGE = """
SELECT o.*, c.name, c.email FROM orders o JOIN customers c ON c.id = o.customer_id
{where} ORDER BY o.id DESC LIMIT 50
"""


def _raw(conn: sqlite3.Connection, where: str = "", params: tuple = ()) -> Callable[[], object]:
    sql = RAW_PAGE.format(where=where)
    return lambda: conn.execute(sql, params).fetchall()


def probe_values(conn: sqlite3.Connection) -> dict[str, object]:
    """Real values from the data set for the search cases (rare/common surname, ...)."""
    newest = conn.execute("SELECT max(id), max(placed_at) FROM orders").fetchone()
    email = conn.execute(
        "SELECT c.email FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.id = ?",
        (newest[0] // 2,),
    ).fetchone()[0]
    surnames = conn.execute(
        "SELECT substr(name, instr(name, ' ') + 1) AS s, count(*) n FROM customers "
        "WHERE instr(name, ' ') > 0 GROUP BY s ORDER BY n DESC"
    ).fetchall()
    common = surnames[0][0]
    rare = next((s for s, n in surnames if n <= 3 and s.isalpha()), surnames[-1][0])
    deep_id = conn.execute(
        "SELECT id FROM orders ORDER BY id DESC LIMIT 1 OFFSET ?", (min(250_000, newest[0] // 2),)
    ).fetchone()[0]
    sku = conn.execute("SELECT sku FROM order_lines WHERE order_id = ?", (newest[0],)).fetchone()[0]
    number = conn.execute("SELECT number FROM orders WHERE id = ?", (newest[0] // 3,)).fetchone()[0]
    return {
        "max_id": newest[0],
        "now": datetime.fromisoformat(newest[1]).replace(tzinfo=UTC) + timedelta(minutes=1),
        "email": email,
        "email_start": email.split("@")[0][:6],
        "email_mid": email.split("@")[0][2:6],
        "common": common,
        "rare": rare,
        "deep_id": deep_id,
        "sku": sku,
        "number": number,
    }


def run_db_benchmarks(engine: Engine, path: str, runs: int = 40) -> list[Result]:
    raw = sqlite3.connect(path)
    v = probe_values(raw)
    now = v["now"]
    out: list[Result] = []
    session = Session(engine)

    def ours_page(q: str, after: queries.Cursor | None = None) -> Callable[[], object]:
        f = parse_query(q, now) if q else None

        def call() -> object:
            return queries.list_orders(session, f, after=after)

        return call

    def case(
        name: str,
        ours: Callable[[], object],
        floor: Callable[[], object] | None,
        target: float | None,
    ) -> None:
        med, p95 = timed(ours, runs)
        fmed = timed(floor, runs)[0] if floor else None
        out.append(Result(name, med, p95, target, fmed))

    seven = (now - timedelta(days=7)).strftime("%Y-%m-%d %H:%M:%S")
    case("first page, newest first", ours_page(""), _raw(raw), 3)
    case("status:pending", ours_page("status:pending"), _raw(raw, "WHERE o.status = 'pending'"), 3)
    case("pay:failed", ours_page("pay:failed"), _raw(raw, "WHERE o.payment_status = 'failed'"), 3)
    case(
        "fulfil:unfulfilled",
        ours_page("fulfil:unfulfilled"),
        _raw(raw, "WHERE o.fulfillment_status = 'unfulfilled'"),
        3,
    )
    case("placed:7d", ours_page("placed:7d"), _raw(raw, "WHERE o.placed_at >= ?", (seven,)), 3)
    case(
        "country:DE total:>100",
        ours_page("country:DE total:>100"),
        _raw(raw, "WHERE o.country = 'DE' AND o.currency = 'EUR' AND o.total > 10000"),
        3,
    )
    case(
        "sku:" + str(v["sku"]),
        ours_page(f"sku:{v['sku']}"),
        _raw(raw, "WHERE o.id IN (SELECT order_id FROM order_lines WHERE sku = ?)", (v["sku"],)),
        3,
    )
    case(
        "tag:vip",
        ours_page("tag:vip"),
        _raw(raw, "WHERE o.id IN (SELECT order_id FROM order_tags WHERE tag = 'vip')"),
        3,
    )
    case("hold:yes", ours_page("hold:yes"), _raw(raw, "WHERE o.on_hold = 1"), 3)
    case(f"customer:{v['rare']}", ours_page(f"customer:{v['rare']}"), None, 3)
    deep = queries.Cursor(v["deep_id"], v["deep_id"])
    case(
        "keyset page deep in the list",
        ours_page("", deep),
        _raw(raw, "WHERE o.id < ?", (v["deep_id"],)),
        3,
    )

    def fts_floor(text: str) -> Callable[[], object]:
        return _raw(
            raw,
            "WHERE o.id IN (SELECT rowid FROM order_search WHERE order_search MATCH ?)",
            (fts_query(text),),
        )

    for label, text, target in (
        ("search: order number", str(v["number"]), 10),
        ("search: email start", str(v["email_start"]), 10),
        ("search: common surname", str(v["common"]), 10),
        ("search: rare surname", str(v["rare"]), 10),
    ):
        case(label, ours_page(text), fts_floor(text), target)
    mid = str(v["email_mid"])
    case(
        "search: mid-email fragment",
        ours_page(mid),
        _raw(raw, "WHERE c.email LIKE ?", (f"%{mid}%",)),
        30,
    )
    case(
        "counts per status",
        lambda: queries.status_counts(session),
        lambda: raw.execute("SELECT status, count(*) FROM orders GROUP BY status").fetchall(),
        5,
    )
    number = str(v["number"])
    case(
        "order detail",
        lambda: (session.expunge_all(), queries.order_detail(session, number)),
        lambda: (
            raw.execute("SELECT * FROM orders WHERE number = ?", (number,)).fetchall(),
            raw.execute(
                "SELECT * FROM order_lines WHERE order_id = ?",
                (int(number.split("-")[1]) - 100000,),
            ).fetchall(),
        ),
        5,
    )
    ninety = (now - timedelta(days=90)).strftime("%Y-%m-%d %H:%M:%S")
    rev_sql = (
        "SELECT date(placed_at), currency, sum(total) FROM orders WHERE placed_at >= ? "
        "AND status NOT IN ('cancelled') GROUP BY 1, 2"
    )
    case("revenue per day, 90 days", lambda: raw.execute(rev_sql, (ninety,)).fetchall(), None, 50)
    session.close()
    raw.close()
    return out
