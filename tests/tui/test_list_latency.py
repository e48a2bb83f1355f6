"""What keeps the order list quick at scale, as behaviour: a fast load paints
nothing in between, a slow one says so, the footer follows the focus, tabs
relabel only what changed, the collector skips what start-up built, and
background work waits for the first rows. (Pages fetched ahead of the cursor:
test_scale.py.)"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from typing import Any

import pytest
from textual.widgets._footer import FooterKey

from pulse_tui.app import FULL_GC_EVERY, build_app
from pulse_tui.screens.order_list import LOADING_OVERLAY_DELAY_S, OrderListScreen
from pulse_tui.services.desk import Desk
from pulse_tui.services.payment_sync import SyncReport
from pulse_tui.storage.db import make_engine
from pulse_tui.widgets.order_table import OrderTable
from pulse_tui.widgets.status_tabs import StatusTabs
from tests import factories
from tests.tui.helpers import settle

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def footer_keys(app) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """(key, description) of the keys the footer shows, left to right."""
    return [(k.key, k.description) for k in app.screen.query(FooterKey) if k.display]


def slow_pages(desk: Desk, delay: float) -> threading.Event:
    """Make ``desk.list_orders`` take ``delay`` seconds once armed (in its thread)."""
    armed = threading.Event()
    fetch = desk.list_orders

    def slow(*args: Any, **kwargs: Any):  # type: ignore[no-untyped-def]
        if armed.is_set():
            time.sleep(delay)
        return fetch(*args, **kwargs)

    desk.list_orders = slow  # type: ignore[method-assign]
    return armed


async def test_a_slow_load_says_loading_a_fast_one_changes_the_screen_once(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, OrderListScreen)
        table = screen.query_one(OrderTable)
        status = screen.query_one("#list-status")
        before = str(status.render())
        armed = slow_pages(app.desk, LOADING_OVERLAY_DELAY_S + 0.6)
        armed.set()
        await pilot.press("slash", *"country:DE", "enter")
        await asyncio.sleep(LOADING_OVERLAY_DELAY_S / 3)
        # not yet: the old rows, their status line and the filter bar's focus stay
        assert screen.is_loading and not table.loading
        assert str(status.render()) == before
        await asyncio.sleep(LOADING_OVERLAY_DELAY_S)
        await pilot.pause()
        # slow: now the table is covered and the status line says so
        assert table.loading
        assert str(status.render()).startswith("loading…")
        await settle(pilot)
        await pilot.pause(0.7)
        await settle(pilot)
        assert not screen.is_loading and not table.loading
        assert {r.country for r in table.window.rows} == {"DE"}
        assert app.focused is table
        # a fast load never covers the table
        armed.clear()
        seen: list[bool] = []
        await pilot.press("slash")
        screen.filter_bar.input.value = "status:pending"
        await pilot.press("enter")
        for _ in range(5):
            seen.append(table.loading)
            await pilot.pause()
        await settle(pilot)
        assert not any(seen)
        assert {r.status for r in table.window.rows} == {"pending"}


async def test_footer_follows_the_focus(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        on_table = footer_keys(app)
        assert ("enter", "Open") in on_table
        await pilot.press("slash")
        await settle(pilot)
        on_input = footer_keys(app)
        assert ("escape", "Close filter") in on_input
        assert ("enter", "Open") not in on_input
        await pilot.press("escape")
        await settle(pilot)
        assert footer_keys(app) == on_table  # the same keys, in the same order


async def test_set_counts_relabels_only_changed_tabs(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        tabs = app.screen.query_one(StatusTabs)
        labels = {t.id: t.label for t in tabs.query("Tab")}
        tabs.set_counts(dict(tabs.counts))
        assert {t.id: t.label for t in tabs.query("Tab")} == labels
        assert all(t.label is labels[t.id] for t in tabs.query("Tab"))
        tabs.set_counts({**tabs.counts, "pending": tabs.counts["pending"] + 1})
        changed = [t.id for t in tabs.query("Tab") if t.label is not labels[t.id]]
        assert changed == ["tab-pending"]


async def test_start_up_objects_are_frozen_while_the_app_runs(make_app) -> None:  # type: ignore[no-untyped-def]
    process_thresholds = gc.get_threshold()
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert app.screen.query_one(OrderTable).window.rows
        assert gc.get_freeze_count() > 0
        # full collections ten times rarer while the desk runs
        assert gc.get_threshold()[2] == FULL_GC_EVERY != process_thresholds[2]
    assert gc.get_freeze_count() == 0  # given back when the App ends
    assert gc.get_threshold() == process_thresholds


class RowsAtFirstRun:
    """A sync runner that notes whether the list showed rows when it first ran."""

    def __init__(self) -> None:
        self.app: Any = None
        self.rows_at_first_run: int | None = None

    async def run_once(self) -> SyncReport:
        if self.rows_at_first_run is None:
            table = self.app.screen.query_one(OrderTable)
            self.rows_at_first_run = len(table.window.rows)
        return SyncReport(started_at=factories.START, finished_at=factories.START)


async def test_background_work_starts_after_the_first_rows(small_db_path) -> None:  # type: ignore[no-untyped-def]
    runner = RowsAtFirstRun()
    desk = Desk(make_engine(f"sqlite:///{small_db_path}"), factories.ADMIN)
    slow_pages(desk, 0.5).set()  # the first page takes a while
    app = build_app(desk, sync=runner, mail=None)
    runner.app = app
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.pause(0.2)
        await settle(pilot)
        assert runner.rows_at_first_run == 24
        assert app.sync_status.phase == "ok"
