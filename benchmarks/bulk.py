"""Bulk actions and export at scale (issue 6), beside raw sqlite3 floors.

    .venv/bin/python -m benchmarks.bulk --orders 100000            # bulk transition
    .venv/bin/python -m benchmarks.bulk --orders 1000000 --export  # + export 1M to CSV

Never touches the cached bench databases: each run works on a fresh copy in a
temporary directory (the schema is brought up to date on the copy).

Bulk transition: on the copy, ``--changes`` (10,000) delivered physical orders
are put back to shipped (raw SQL, not timed; triggers keep the counters), then
``BulkService.apply`` moves every ``status:shipped`` order to delivered with
its event, audit entry, shipments and lines (and, unless ``--no-notify``, the
email outbox row the event queues), in 500-order chunks. The floor is a raw
sqlite3 script writing the same rows set-based in one transaction on another
copy prepared the same way (benchmarks/README.md says how that was checked).

Export: ``export_orders`` of every order to CSV in a child process (wall time
and ``ru_maxrss`` of that process, imports included).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pulse_tui.config import NotificationSettings, Settings
from pulse_tui.domain.filters import parse_query
from pulse_tui.domain.notifications import EVENT_TEMPLATES, OPTED_OUT
from pulse_tui.services.bulk import BulkKind, BulkRequest, BulkService, Selection
from pulse_tui.services.context import Context
from pulse_tui.storage.db import ensure_schema, make_engine

from .run import BENCH_NOW, bench_actor, build

TARGET_S = 2.0
TARGET_RATIO = 3.0
EXPORT_TARGET_S = 15.0
EXPORT_TARGET_MB = 150.0


def fresh_copy(src: Path, into: Path, name: str) -> Path:
    dst = into / name
    for suffix in ("", "-wal", "-shm"):
        p = Path(str(dst) + suffix)
        p.unlink(missing_ok=True)
    shutil.copyfile(src, dst)
    engine = make_engine(f"sqlite:///{dst}")
    ensure_schema(engine)
    engine.dispose()
    return dst


def reopen_shipped(path: Path, changes: int) -> int:
    """Make exactly ``changes`` shippable-to-delivered orders (status shipped, not
    held, physical); returns how many shipped orders there are in all."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        have = conn.execute(
            "SELECT count(*) FROM orders WHERE status = 'shipped' AND NOT on_hold AND has_physical"
        ).fetchone()[0]
        need = max(0, changes - have)
        ids = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM orders WHERE status = 'delivered' AND has_physical "
                "AND NOT on_hold ORDER BY id DESC LIMIT ?",
                (need,),
            )
        ]
        marks = ",".join(map(str, ids)) or "NULL"
        conn.execute(f"UPDATE orders SET status = 'shipped' WHERE id IN ({marks})")
        conn.execute(
            "UPDATE shipments SET status = 'shipped', delivered_at = NULL "
            f"WHERE order_id IN ({marks})"
        )
        conn.execute("COMMIT")
        return conn.execute("SELECT count(*) FROM orders WHERE status = 'shipped'").fetchone()[0]
    finally:
        conn.close()


FLOOR_SQL = [
    """CREATE TEMP TABLE moving AS
       SELECT id, number, version, status, payment_status, fulfillment_status, on_hold,
              hold_reason, cancel_reason, paid, refunded, total
       FROM orders WHERE status = 'shipped' AND NOT on_hold AND has_physical""",
    """UPDATE orders SET status = 'delivered', fulfillment_status = 'fulfilled',
              version = version + 1, updated_at = :now
       WHERE id IN (SELECT id FROM moving)""",
    """UPDATE shipments SET status = 'delivered', delivered_at = :now
       WHERE order_id IN (SELECT id FROM moving) AND status != 'delivered'""",
    """UPDATE order_lines SET qty_fulfilled = quantity
       WHERE order_id IN (SELECT id FROM moving)""",
    """INSERT INTO order_events (order_id, at, kind, actor, message, data)
       SELECT id, :now, 'delivered', 'demo', 'Delivered', '{"bulk_run": "floor"}' FROM moving""",
    # the same before/after documents as ours (on_hold a JSON boolean, as ours writes it)
    """INSERT INTO audit_log (at, actor, action, entity, entity_id, before, after)
       SELECT :now, 'demo', 'order.deliver', 'order', number,
         json_object('status', status, 'payment_status', payment_status,
           'fulfillment_status', fulfillment_status,
           'on_hold', json(CASE WHEN on_hold THEN 'true' ELSE 'false' END),
           'hold_reason', hold_reason, 'cancel_reason', cancel_reason, 'paid', paid,
           'refunded', refunded, 'total', total, 'version', version),
         json_object('status', 'delivered', 'payment_status', payment_status,
           'fulfillment_status', 'fulfilled',
           'on_hold', json(CASE WHEN on_hold THEN 'true' ELSE 'false' END),
           'hold_reason', hold_reason, 'cancel_reason', cancel_reason, 'paid', paid,
           'refunded', refunded, 'total', total, 'version', version + 1,
           'bulk_run', 'floor')
       FROM moving""",
    """INSERT INTO audit_log (at, actor, action, entity, entity_id, before, after)
       VALUES (:now, 'demo', 'bulk.transition', 'bulk_run', 'floor',
         '{"request": {"kind": "transition", "target": "delivered"}}',
         json_object('matched', (SELECT count(*) FROM moving),
                     'changed', (SELECT count(*) FROM moving)))""",
]
# The email outbox rows the "delivered" events queue (services.notifications,
# on by default): one per order, ``skipped`` plus a timeline note for customers
# who opted out. The floor does not validate addresses (ours does, in Python).
FLOOR_NOTIFY_SQL = [
    """INSERT INTO notifications (order_id, customer_id, kind, template, to_addr, subject,
         body_text, context, status, attempts, next_attempt_at, claimed_at, claimed_by,
         last_error, message_id, created_at, sent_at, created_by)
       SELECT m.id, c.id, 'delivered', :template, lower(trim(c.email)), NULL, NULL,
         json_object('event', 'delivered', 'bulk_run', 'floor'),
         CASE WHEN c.no_transactional_email THEN 'skipped' ELSE 'queued' END, 0,
         CASE WHEN c.no_transactional_email THEN NULL ELSE :now END, NULL, NULL,
         CASE WHEN c.no_transactional_email THEN :opted_out END,
         '<pulse.' || lower(hex(randomblob(16))) || '@pulse.local>', :now, NULL, 'demo'
       FROM moving m JOIN orders o ON o.id = m.id JOIN customers c ON c.id = o.customer_id""",
    """INSERT INTO order_events (order_id, at, kind, actor, message, data)
       SELECT m.id, :now, 'notification_skipped', 'demo', 'Email skipped: ' || :opted_out,
         json_object('template', :template)
       FROM moving m JOIN orders o ON o.id = m.id JOIN customers c ON c.id = o.customer_id
       WHERE c.no_transactional_email""",
]


def run_floor(path: Path, notify: bool = True) -> tuple[float, float, int]:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        params = {
            "now": BENCH_NOW.strftime("%Y-%m-%d %H:%M:%S.%f"),
            "template": EVENT_TEMPLATES["delivered"],
            "opted_out": OPTED_OUT,
        }
        t, c = time.perf_counter(), time.process_time()
        conn.execute("BEGIN IMMEDIATE")
        for sql in FLOOR_SQL + (FLOOR_NOTIFY_SQL if notify else []):
            conn.execute(sql, {k: v for k, v in params.items() if f":{k}" in sql})
        conn.execute("COMMIT")
        elapsed, cpu = time.perf_counter() - t, time.process_time() - c
        n = conn.execute("SELECT count(*) FROM temp.moving").fetchone()[0]
        return elapsed, cpu, n
    finally:
        conn.close()


def run_ours(path: Path, chunk: int, notify: bool = True) -> tuple[float, float, int]:
    engine = make_engine(f"sqlite:///{path}")
    settings = Settings(
        database_url=f"sqlite:///{path}", notifications=NotificationSettings(enabled=notify)
    )
    try:
        svc = BulkService(Context(engine, bench_actor(), settings, clock=lambda: BENCH_NOW))
        req = BulkRequest(
            BulkKind.TRANSITION,
            Selection(parse_query("status:shipped", BENCH_NOW)),
            target="delivered",
        )
        t, c = time.perf_counter(), time.process_time()
        result = svc.apply(req, chunk_size=chunk)
        return time.perf_counter() - t, time.process_time() - c, result.changed
    finally:
        engine.dispose()


def bench_transition(src: Path, changes: int, runs: int, chunk: int, notify: bool) -> bool:
    ours, floor, ours_cpu, floor_cpu = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="pulse-bulk-bench-") as tmp:
        for _ in range(runs):
            a = fresh_copy(src, Path(tmp), "ours.sqlite")
            shipped = reopen_shipped(a, changes)
            t, tc, n = run_ours(a, chunk, notify)
            ours.append(t)
            ours_cpu.append(tc)
            b = fresh_copy(src, Path(tmp), "floor.sqlite")
            reopen_shipped(b, changes)
            tf, tfc, nf = run_floor(b, notify)
            floor.append(tf)
            floor_cpu.append(tfc)
            print(
                f"  run: ours {t:.3f} s wall / {tc:.3f} s CPU ({n:,} changed of {shipped:,} "
                f"shipped), floor {tf:.3f} s wall / {tfc:.3f} s CPU ({nf:,})",
                file=sys.stderr,
            )
            if n != nf:
                print(f"  ≠rows: ours changed {n:,}, floor {nf:,}", file=sys.stderr)
                return False
    o, f = statistics.median(ours), statistics.median(floor)
    ratio = o / f
    ok = o <= TARGET_S and ratio <= TARGET_RATIO
    print(
        f"bulk transition shipped→delivered, {changes:,} orders, chunk {chunk}, "
        f"notifications {'on' if notify else 'off'}: "
        f"ours median {o:.3f} s (target ≤ {TARGET_S} s), raw sqlite3 floor {f:.3f} s, "
        f"ratio {ratio:.2f} (target ≤ {TARGET_RATIO}) {'ok' if ok else 'MISS'}; "
        f"CPU time: ours {statistics.median(ours_cpu):.3f} s, floor "
        f"{statistics.median(floor_cpu):.3f} s, ratio "
        f"{statistics.median(ours_cpu) / statistics.median(floor_cpu):.2f}"
    )
    return ok


EXPORT_CHILD = """
import sys, time
from pathlib import Path
from pulse_tui.domain.filters import OrderFilter
from pulse_tui.services.bulk import Selection
from pulse_tui.services.context import Context
from pulse_tui.services.export import ExportFormat, export_orders
from pulse_tui.storage.db import make_engine
from benchmarks.run import BENCH_NOW, bench_actor

engine = make_engine(f"sqlite:///{sys.argv[1]}")
t = time.perf_counter()
n = export_orders(Context(engine, bench_actor(), clock=lambda: BENCH_NOW),
                  Selection(OrderFilter()), ExportFormat(sys.argv[3]), Path(sys.argv[2]))
print(n, time.perf_counter() - t)
"""


def bench_export(src: Path, fmt: str) -> bool:
    with tempfile.TemporaryDirectory(prefix="pulse-export-bench-") as tmp:
        db = fresh_copy(src, Path(tmp), "export.sqlite")
        out = Path(tmp) / f"orders.{fmt}"
        t = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-c", EXPORT_CHILD, str(db), str(out), fmt],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[1],
        )
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - t
        assert child.stdout is not None
        line = child.stdout.read().split()
        child.stdout.close()
        if status != 0 or not line:
            print(f"export child failed (status {status})")
            return False
        rows, inner = int(line[0]), float(line[1])
        rss_mb = usage.ru_maxrss / 1024  # KiB on Linux
        cpu = usage.ru_utime + usage.ru_stime
        size_mb = out.stat().st_size / 1e6
    ok = inner <= EXPORT_TARGET_S and rss_mb <= EXPORT_TARGET_MB
    print(
        f"export {rows:,} orders to {fmt.upper()} ({size_mb:.0f} MB): {inner:.2f} s in "
        f"export_orders ({wall:.2f} s with process start and imports; target ≤ "
        f"{EXPORT_TARGET_S} s; process CPU {cpu:.2f} s), peak RSS {rss_mb:.0f} MB "
        f"(target ≤ {EXPORT_TARGET_MB}) "
        f"{'ok' if ok else 'MISS'}"
    )
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--orders", type=int, default=100_000, help="cached bench DB size")
    ap.add_argument("--changes", type=int, default=10_000, help="orders to transition")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--chunk", type=int, default=500)
    ap.add_argument("--export", action="store_true", help="also export every order to CSV")
    ap.add_argument("--format", default="csv", choices=["csv", "jsonl", "xlsx"])
    ap.add_argument("--no-transition", action="store_true")
    ap.add_argument(
        "--no-notify",
        action="store_true",
        help="bulk transition with notifications off (no outbox rows on either side)",
    )
    args = ap.parse_args(argv)
    src = build(args.orders)  # built once, or brought up to the schema once (not per copy)
    print(f"database: {src} (copied per run); load: {os.getloadavg()}", file=sys.stderr)
    ok = True
    if not args.no_transition:
        ok &= bench_transition(src, args.changes, args.runs, args.chunk, not args.no_notify)
    if args.export:
        ok &= bench_export(src, args.format)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"(this process peak RSS {peak:.0f} MB)", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
