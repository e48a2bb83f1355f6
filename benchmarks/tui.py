"""TUI-level benchmarks: the real app, headless, on the cached database.

    .venv/bin/python -m benchmarks.tui --orders 100000

Runs ``build_app(Desk(...))`` under ``App.run_test(size=(120, 40))`` with a
fixed clock. Times are taken inside the app, not from ``pilot.press`` round
trips: a key's clock starts when the key event is posted to the app and stops
in a ``call_after_refresh`` callback scheduled by the code that put the new
rows on screen (the first frame that shows them). Each scenario runs in a
fresh process (``--one``) so peak RSS (``ru_maxrss``) is the whole run's,
imports included, and never mixes two sizes.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .db import Result, summarize

TARGETS = {"cold": 600, "filter": 100, "page_down": 35, "refill": 35, "detail": 100}
RSS_TARGET_MB = 150
DETAIL_OPENS = 20  # orders opened one after another (the first builds the screen)


class Probe:
    """Timestamps from inside the app: a mark, then the frame after it."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.frames: list[tuple[str, float]] = []
        self.event = asyncio.Event()
        self.waiting_for: str | None = None
        self.refills: list[float] = []

    def painted(self, what: str) -> None:
        """Called by the code that just changed the screen: record the next frame."""

        def done() -> None:
            self.frames.append((what, time.perf_counter()))
            if self.waiting_for == what:
                self.event.set()

        self.app.call_after_refresh(done)

    async def wait(self, what: str, timeout: float = 30.0) -> float:
        self.waiting_for = what
        self.event.clear()
        if not any(w == what for w, _ in self.frames):
            await asyncio.wait_for(self.event.wait(), timeout)
        t = next(t for w, t in self.frames if w == what)
        self.frames = [(w, x) for w, x in self.frames if w != what]
        return t


class GcPauses:
    """Full (generation 2) collections and how long each held the UI thread.

    Reported because the page-down p95 used to be made of them: one press in
    ~12 took 120-250 ms while the collector walked every object the App and
    its imports had made (fixed by ``gc.freeze()`` in app.py)."""

    def __init__(self) -> None:
        self.full: list[float] = []
        self._start = 0.0
        self.active = False

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if info.get("generation") != 2 or not self.active:
            return
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.full.append((time.perf_counter() - self._start) * 1000)


def instrument(probe_ref: list[Probe]) -> None:
    """Wrap the methods that put rows on screen so they report their frame."""
    from textual.screen import Screen

    from pulse_tui.screens.order_detail import OrderDetailScreen
    from pulse_tui.widgets.order_table import OrderTable

    def wrap(cls: type, name: str, label: Callable[..., str]) -> None:
        orig = getattr(cls, name)

        def wrapper(self: Any, *a: Any, **k: Any) -> Any:
            r = orig(self, *a, **k)
            probe_ref[0].painted(label(self, *a, **k))
            return r

        setattr(cls, name, wrapper)

    show_window = OrderTable.show_window

    def timed_show_window(self: Any, *a: Any, **k: Any) -> Any:
        # keep_offset: a page fetched at the window's edge being merged in
        # (the refill); otherwise a fresh first page (start, filter)
        t = time.perf_counter()
        r = show_window(self, *a, **k)
        probe = probe_ref[0]
        if k.get("keep_offset"):

            def done() -> None:
                probe.refills.append((time.perf_counter() - t) * 1000)

            probe.app.call_after_refresh(done)
        else:
            probe.painted("rows")
        return r

    OrderTable.show_window = timed_show_window  # type: ignore[method-assign]
    extend = getattr(OrderTable, "extend_window", None)
    if extend is not None:

        def timed_extend(self: Any, *a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            r = extend(self, *a, **k)
            probe = probe_ref[0]
            probe.app.call_after_refresh(
                lambda: probe.refills.append((time.perf_counter() - t) * 1000)
            )
            return r

        OrderTable.extend_window = timed_extend  # type: ignore[attr-defined]
    wrap(OrderTable, "action_page_down", lambda self, *a, **k: "key")

    # Opening an order: the clock stops at the first frame the compositor
    # renders of a detail screen that shows its order (the screen is current
    # and its order was put into the panels before that render).
    show_loaded = OrderDetailScreen.show_loaded

    async def timed_show_loaded(self: Any, *a: Any, **k: Any) -> Any:
        r = await show_loaded(self, *a, **k)
        self._bench_armed = True
        return r

    OrderDetailScreen.show_loaded = timed_show_loaded  # type: ignore[method-assign]
    refresh = Screen._compositor_refresh

    def timed_refresh(self: Any) -> None:
        refresh(self)
        if getattr(self, "_bench_armed", False) and self is self.app.screen:
            self._bench_armed = False
            probe = probe_ref[0]
            probe.frames.append(("detail", time.perf_counter()))
            if probe.waiting_for == "detail":
                probe.event.set()

    Screen._compositor_refresh = timed_refresh  # type: ignore[method-assign]


async def scenario(db: Path, which: str, presses: int) -> dict[str, Any]:
    from pulse_tui.app import build_app
    from pulse_tui.services.desk import Desk
    from pulse_tui.storage.db import make_engine

    from .run import BENCH_NOW, bench_actor

    probe_ref: list[Probe] = []
    instrument(probe_ref)
    t0 = time.perf_counter()
    engine = make_engine(f"sqlite:///{db}")
    app = build_app(Desk(engine, bench_actor(engine), clock=lambda: BENCH_NOW))
    probe_ref.append(Probe(app))
    probe = probe_ref[0]
    out: dict[str, Any] = {}
    pauses = GcPauses()
    gc.callbacks.append(pauses)
    async with app.run_test(size=(120, 40)) as pilot:
        out["cold"] = [(await probe.wait("rows", 60) - t0) * 1000]
        pauses.active = True
        from pulse_tui.widgets.order_table import OrderTable

        table = app.screen.query_one(OrderTable)
        if which == "page_down":
            keys = []
            for _ in range(presses):
                probe.frames.clear()
                t = time.perf_counter()
                await pilot.press("pagedown")
                keys.append((await probe.wait("key") - t) * 1000)
                # a page fetched for the window edge lands later: time its repaint
                # from the message's arrival (the worker's query is not UI time)
            await pilot.pause()
            out["page_down"] = keys
            out["refill"] = probe.refills
            out["position"] = table.absolute_row
        elif which == "filter":
            samples = []
            for text in ("status:pending", "country:DE", "placed:30d", "smith", ""):
                await pilot.press("slash")
                await pilot.pause()
                bar = app.screen.query_one("#filter-bar")
                bar.query_one("Input").value = text  # type: ignore[attr-defined]
                await pilot.pause()
                probe.frames.clear()
                t = time.perf_counter()
                await pilot.press("enter")
                samples.append((await probe.wait("rows") - t) * 1000)
            out["filter"] = samples
        elif which == "detail":
            samples = []
            for i in range(DETAIL_OPENS):
                await pilot.press("down")
                # An operator's keys are not a millisecond apart: let the
                # cursor move and what closing the last detail left for idle
                # time (its collection, the list's footer) finish first.
                await pilot.pause(0.2)
                probe.frames.clear()
                t = time.perf_counter()
                await pilot.press("enter")
                samples.append((await probe.wait("detail") - t) * 1000)
                await pilot.press("escape")
                await pilot.pause()
                del i
            out["detail"] = samples
            out["detail_first"] = samples[0]  # a new screen; the next ones reuse it
        pauses.active = False
    gc.callbacks.remove(pauses)
    engine.dispose()
    out["rss_mb"] = peak_rss_mb()
    out["gc_full_ms"] = pauses.full
    return out


def peak_rss_mb() -> float:
    """This process's peak RSS. Linux keeps ``ru_maxrss`` across exec, so a
    scenario spawned by the process that just built a 1M database (``make
    bench``) would report the builder's ~900 MB; ``VmHWM`` is the peak of this
    program's own memory."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(db: Path, which: str, presses: int) -> dict[str, Any]:
    """Run a scenario in a fresh interpreter; its JSON comes back on stdout."""
    cmd = [sys.executable, "-m", "benchmarks.tui", "--one", which, "--db", str(db)]
    cmd += ["--presses", str(presses)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{which} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_tui_benchmarks(db: Path, presses: int = 100) -> tuple[list[Result], float]:
    got: dict[str, list[float]] = {"cold": []}
    rss = 0.0
    gc_notes = []
    first_detail = None
    for which in ("cold", "cold", "cold", "page_down", "filter", "detail"):
        r = run_one(db, which, presses)
        rss = max(rss, r["rss_mb"])
        full = r.pop("gc_full_ms", [])
        first_detail = r.pop("detail_first", first_detail)
        if which != "cold":
            worst = f", longest {max(full):.1f} ms" if full else ""
            gc_notes.append(f"{which} {len(full)}{worst}")
            if which == "page_down":
                gc_notes[-1] += f" (at row {r.get('position')})"
        for k, v in r.items():
            if isinstance(v, list):
                got.setdefault(k, []).extend(v)
    print("full GC collections after start-up: " + "; ".join(gc_notes))
    if first_detail is not None:
        print(
            f"open detail: the first of {DETAIL_OPENS} opens (it builds the screen) took"
            f" {first_detail:.0f} ms"
        )
    labels = {
        "cold": "cold start → first rows painted",
        "filter": "filter typed into / → rows repainted",
        "page_down": f"page down ×{presses}: key → frame",
        "refill": "page down: window refill → frame",
        "detail": "open detail: enter → detail painted",
    }
    out = []
    for k, label in labels.items():
        if got.get(k):
            med, p95 = summarize(got[k])
            out.append(Result(label, med, p95, TARGETS[k]))
    return out, rss


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--one", choices=["cold", "page_down", "filter", "detail"])
    ap.add_argument("--db", type=Path)
    ap.add_argument("--orders", type=int, default=100_000)
    ap.add_argument("--presses", type=int, default=100)
    args = ap.parse_args(argv)
    if args.one:
        if args.db is None or not args.db.exists():
            ap.error("--one runs one scenario on an existing database: give it --db FILE")
        print(json.dumps(asyncio.run(scenario(args.db, args.one, args.presses))))
        return 0
    from .run import build, print_table

    db = build(args.orders)
    results, rss = run_tui_benchmarks(db, args.presses)
    print_table(f"TUI level, {args.orders:,} orders, 120×40", results)
    print(f"peak RSS {rss:.0f} MB (target ≤ {RSS_TARGET_MB} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
