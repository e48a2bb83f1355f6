"""`make bench`: build (once, cached) a reproducible database of N orders and
run the scale benchmarks, printing median and p95 beside each target.

    .venv/bin/python -m benchmarks.run --orders 1000000
"""

from __future__ import annotations

import argparse
import fcntl
import shutil
import sqlite3
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from pulse_tui.storage.db import ensure_schema, head_revision, make_engine

from .db import RUNS, Result, run_db_benchmarks

CACHE = Path(__file__).parent / ".cache"
BENCH_NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def bench_actor(engine: object = None):  # type: ignore[no-untyped-def]
    """The seeder's demo admin (the TUI benchmarks only read)."""
    from pulse_tui.domain.permissions import Role
    from pulse_tui.services.context import Actor

    return Actor("demo", Role.ADMIN, "Demo Admin")


def finalize(path: Path) -> None:
    """ANALYZE, then fold the WAL into the file so the cached copy is one file.

    A checkpoint cannot run inside a transaction ("database table is
    locked"), so this uses a plain autocommit sqlite3 connection."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("ANALYZE")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def build(n: int) -> Path:
    path = CACHE / f"bench-{n}.sqlite"
    if path.exists():
        bring_to_head(path)
        return path
    from pulse_tui.services.demo import seed

    CACHE.mkdir(exist_ok=True)
    tmp = path.with_suffix(".building")
    for p in CACHE.glob(tmp.name + "*"):
        p.unlink()
    engine = make_engine(f"sqlite:///{tmp}")
    ensure_schema(engine)
    t = time.perf_counter()
    summary = seed(engine, orders=n, seed=7, now=BENCH_NOW)
    engine.dispose()
    finalize(tmp)
    tmp.rename(path)
    print(
        f"built {summary.orders:,} orders, {summary.lines:,} lines in "
        f"{time.perf_counter() - t:.1f} s → {path}",
        file=sys.stderr,
    )
    return path


def _revision(path: Path) -> str | None:
    """The file's Alembic revision, read without opening it for writing."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:
        return None
    finally:
        conn.close()
    return row[0] if row else None


def bring_to_head(path: Path) -> bool:
    """Give a cache built before a new migration that migration (backfills
    included), so the queries under test find the schema they expect.

    The cache itself is never written: a copy is migrated, its WAL folded in,
    and it replaces the cache by an atomic rename (processes still reading the
    old file keep their snapshot; a crash leaves the old cache whole). A lock
    file makes concurrent harness runs wait for one migration instead of
    racing. Returns True if it migrated."""
    engine = make_engine(f"sqlite:///{path}")
    head = head_revision(engine)
    engine.dispose()
    if _revision(path) == head:
        return False
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _revision(path) == head:  # another run migrated it while we waited
            return False
        tmp = path.with_suffix(".migrating")
        for p in CACHE.glob(tmp.name + "*"):
            p.unlink()
        t = time.perf_counter()
        shutil.copyfile(path, tmp)
        copied = time.perf_counter() - t
        engine = make_engine(f"sqlite:///{tmp}")
        ensure_schema(engine)
        engine.dispose()
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
        tmp.replace(path)
        for suffix in ("-wal", "-shm"):
            Path(str(tmp) + suffix).unlink(missing_ok=True)
        print(
            f"migrated {path.name} to {head} in {time.perf_counter() - t:.1f} s "
            f"(copy {copied:.1f} s)",
            file=sys.stderr,
        )
    return True


def print_table(title: str, results: list[Result]) -> int:
    print(f"\n{title}")
    print(f"{'case':<44} {'median':>9} {'p95':>9} {'target':>8} {'floor':>9} {'ratio':>6}")
    missed = 0
    for r in results:
        mark = ("  MISS" if r.missed else "") + ("" if r.same_rows else " ≠rows")
        mark += f"  ({r.note})" if r.note else ""
        missed += r.missed
        floor = f"{r.floor_ms:8.3f}" if r.floor_ms is not None else "       -"
        ratio = f"{r.ratio:5.1f}x" if r.ratio is not None else "     -"
        target = f"≤{r.target_ms:g}ms" if r.target_ms is not None else "-"
        print(
            f"{r.name[:44]:<44} {r.median_ms:8.3f}ms {r.p95_ms:8.3f}ms {target:>8} "
            f"{floor}ms {ratio}{mark}"
        )
    return missed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--orders", type=int, default=1_000_000)
    ap.add_argument(
        "--runs",
        type=int,
        default=RUNS,
        help="samples per case with a target (reference cases: 10)",
    )
    ap.add_argument(
        "--tui", action=argparse.BooleanOptionalAction, default=True, help="TUI benchmarks too"
    )
    ap.add_argument("--presses", type=int, default=100, help="page-down presses (TUI)")
    ap.add_argument(
        "--db",
        type=Path,
        help="benchmark this database file instead of the cached build (e.g. a copy "
        "with a new migration applied; it is brought to the schema head first)",
    )
    args = ap.parse_args(argv)
    if args.db is not None:
        path = args.db
        if not path.exists():
            ap.error(f"no such database: {path}")
        ensure_schema(make_engine(f"sqlite:///{path}"))
    else:
        path = build(args.orders)
    engine = make_engine(f"sqlite:///{path}")
    missed = print_table(
        f"Database level, {args.orders:,} orders ({path.name})",
        run_db_benchmarks(engine, str(path), runs=args.runs),
    )
    engine.dispose()
    if args.tui:
        from .tui import RSS_TARGET_MB, run_tui_benchmarks

        results, rss = run_tui_benchmarks(path, args.presses)
        missed += print_table(f"TUI level, {args.orders:,} orders, 120×40", results)
        rss_miss = rss > RSS_TARGET_MB
        missed += rss_miss
        print(
            f"peak RSS (largest of the scenario processes) {rss:.0f} MB, "
            f"target ≤{RSS_TARGET_MB} MB{'  MISS' if rss_miss else ''}"
        )
    db_arg = f" --db {args.db}" if args.db is not None else ""
    print(f"\nreproduce: .venv/bin/python -m benchmarks.run --orders {args.orders}{db_arg}")
    print(f"{missed} figure(s) missed their target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
