"""Time the demo seeder: `python benchmarks/seed_timing.py 100000 [--db PATH] [--profile]`.

Prints the summary, wall time, peak RSS and database file size. Not run by
`make test`.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulse_tui.services.demo import seed  # noqa: E402
from pulse_tui.storage.db import make_engine  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("orders", type=int)
    ap.add_argument("--db", type=Path)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    tmp = None
    if args.db is None:
        tmp = tempfile.mkdtemp(prefix="pulse-seed-")
        args.db = Path(tmp) / "demo.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{args.db}{suffix}").unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{args.db}")
    now = datetime(2026, 11, 26, 12, tzinfo=UTC)
    t0 = time.perf_counter()
    if args.profile:
        prof = cProfile.Profile()
        summary = prof.runcall(seed, engine, orders=args.orders, seed=args.seed, now=now)
        pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
    else:
        summary = seed(engine, orders=args.orders, seed=args.seed, now=now)
    wall = time.perf_counter() - t0
    engine.dispose()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    size = os.path.getsize(args.db) / 2**20
    print(summary)
    print(f"wall {wall:.1f} s, peak RSS {rss:.0f} MiB, file {size:.0f} MiB ({args.db})")


if __name__ == "__main__":
    main()
