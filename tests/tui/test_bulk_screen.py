"""The bulk actions screen: preview against the database, apply, stop midway,
the cancel confirmation, export, and the lists refreshing afterwards."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from pulse_tui.domain.filters import OrderFilter
from pulse_tui.domain.status import OrderStatus
from pulse_tui.screens.bulk import BulkScreen
from pulse_tui.screens.dialogs import ConfirmDialog
from pulse_tui.screens.order_list import OrderListScreen
from pulse_tui.services.bulk import Progress, Selection
from pulse_tui.storage.db import read_session
from pulse_tui.storage.models import OrderEvent
from tests.tui.helpers import settle

pytestmark = pytest.mark.anyio

P = OrderStatus


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def count(app: Any, **kw: Any) -> int:
    return int(app.desk.count_orders(OrderFilter(**kw)))


async def open_bulk(pilot: Any, *keys: str) -> BulkScreen:
    """From the list: press ``keys`` (the selection), then b."""
    await settle(pilot)
    for key in keys:
        await pilot.press(key)
        await settle(pilot)
    await pilot.press("b")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, BulkScreen)
    return screen


async def choose(pilot: Any, screen: BulkScreen, label: str) -> None:
    """Highlight an action in the list on the left and enter its form."""
    kinds = screen.query_one("#bulk-kind")
    kinds.focus()
    labels = [str(o.prompt) for o in kinds.options]
    kinds.highlighted = labels.index(label)
    await pilot.press("enter")
    await settle(pilot)


async def test_preview_matches_the_database_then_apply_changes_it(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_bulk(pilot, "asterisk")  # every order
        before_hold = count(app, on_hold=True)
        assert screen.check_action("apply", ()) is None  # greyed until a preview says so
        await choose(pilot, screen, "Put on hold")
        await pilot.press(*"stock", "enter")
        await settle(pilot)

        preview = screen.preview
        assert preview is not None and screen.phase == "previewed"
        # what the database says: a hold needs an undelivered, live order not on hold yet
        holdable = count(app, statuses=(P.PENDING, P.PROCESSING, P.SHIPPED), on_hold=False)
        assert preview.matched == count(app) == 24
        assert preview.eligible == holdable > 0
        assert sum(preview.skipped.values()) == 24 - holdable
        assert preview.skipped["order is already on hold"] == before_hold
        shown = str(screen.query_one("#bulk-preview").render())
        assert f"{holdable} will change" in shown and "already on hold" in shown
        assert count(app, on_hold=True) == before_hold  # a preview changes nothing

        await pilot.press("a")
        await settle(pilot)
        assert screen.phase == "done" and screen.result is not None
        assert screen.result.changed == holdable and not screen.result.cancelled
        assert count(app, on_hold=True) == before_hold + holdable
        results = str(screen.query_one("#bulk-results").render())
        assert f"{holdable} changed" in results and "already on hold" in results

        await pilot.press("escape")  # back to the list: refreshed, selection used up
        await settle(pilot)
        lst = app.screen
        assert isinstance(lst, OrderListScreen)
        assert lst.counts["on_hold"] == before_hold + holdable
        assert lst.selection() is None


async def test_stop_midway_keeps_whole_chunks(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_bulk(pilot, *["space"] * 10)  # ten marked orders
        screen.chunk_size = 3
        await choose(pilot, screen, "Add note")
        await pilot.press(*"ops ok", "enter")
        await settle(pilot)
        assert screen.preview is not None and screen.preview.eligible == 10

        shown = screen.show_progress
        seen: list[Progress] = []

        def stop_after_first_chunk(p: Progress) -> None:
            shown(p)
            seen.append(p)
            if p.done and len(seen) == 2:  # the first chunk is committed
                # what esc does while a run is going
                assert screen.active_bindings["escape"].binding.action == "stop"
                screen.action_stop()

        screen.show_progress = stop_after_first_chunk  # type: ignore[method-assign]
        await pilot.press("a")
        await settle(pilot)

        result = screen.result
        assert result is not None, screen.error_text
        assert result.cancelled and result.changed == 3
        assert "stopping" in str(screen.query_one("#bulk-progress-text").render())
        with read_session(app.desk.engine) as s:
            notes = s.exec(select(OrderEvent).where(OrderEvent.message == "ops ok")).all()
        assert len(notes) == 3  # one whole chunk, nothing of the next
        text = str(screen.query_one("#bulk-results").render())
        assert "Stopped" in text and "3 changed" in text and "untouched" in text

        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, OrderListScreen)
        assert len(app.screen.marks.ids) == 10  # a stopped run keeps its selection


async def test_cancel_asks_first_and_nothing_eligible_means_no_apply(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.screen.show_tab("pending")
        screen = await open_bulk(pilot, "asterisk")
        pending = count(app, statuses=(P.PENDING,))
        await choose(pilot, screen, "Cancel orders")
        screen.query_one("#cancel-reason").value = "customer_request"
        await pilot.press("p")
        await settle(pilot)
        assert screen.preview is not None and screen.preview.eligible == pending

        await pilot.press("a")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("n")  # no: nothing happens
        await settle(pilot)
        assert count(app, statuses=(P.PENDING,)) == pending and screen.phase == "previewed"
        await pilot.press("a")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        assert screen.result is not None and screen.result.changed == pending
        assert count(app, statuses=(P.PENDING,)) == 0

        # the same request again: every order is skipped, Apply stays disabled
        await pilot.press("n")
        await settle(pilot)
        await choose(pilot, screen, "Cancel orders")
        await pilot.press("p")
        await settle(pilot)
        assert screen.preview is not None and screen.preview.eligible == 0
        assert screen.check_action("apply", ()) is None
        await pilot.press("a")
        await settle(pilot)
        assert screen.phase == "previewed" and screen.result is None


async def test_export_writes_the_selection_and_refuses_to_overwrite(
    make_app, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    out = tmp_path / "pending.csv"
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.push_screen(BulkScreen(Selection(filter=OrderFilter(statuses=(P.PENDING,)))))
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, BulkScreen)
        await choose(pilot, screen, "Export")
        screen.query_one("#export-path").value = str(out)
        await pilot.press("x")
        await settle(pilot)
        assert screen.exported == count(app, statuses=(P.PENDING,))
        with out.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert len(rows) == screen.exported and {r["status"] for r in rows} == {"pending"}

        before = out.read_bytes()
        await pilot.press("n")
        await choose(pilot, screen, "Export")
        screen.query_one("#export-path").value = str(out)
        await pilot.press("x")
        await settle(pilot)
        assert "exists" in screen.error_text and screen.phase == "form"
        assert out.read_bytes() == before
