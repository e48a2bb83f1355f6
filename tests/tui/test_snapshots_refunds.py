"""Snapshots of the refund dialog, its preview, the approvals queue and the
refunds screen (small db, frozen time, no gateways configured).

Regenerate with ``.venv/bin/pytest tests/tui/test_snapshots_refunds.py
--snapshot-update`` and look at the SVGs before committing them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, Select

from pulse_tui.config import Settings
from pulse_tui.messages import OpenOrder
from pulse_tui.screens.refunds import RefundDialog
from pulse_tui.services.desk import Desk
from pulse_tui.services.refunds import RefundRequest
from pulse_tui.storage.db import make_engine
from tests import factories

SIZES = pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])


async def _settle(pilot: Any) -> None:
    for _ in range(3):
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def _still(pilot: Any) -> None:
    for widget in pilot.app.screen.query(Input):
        widget.cursor_blink = False
    pilot.app.clear_notifications()
    await pilot.pause()


def refund_dialog(number: str, **fields: str) -> Any:
    """run_before: open ``number``, press f, fill ``fields`` (qty_<SKU>, reason,
    shipping="yes") and wait for the preview."""

    async def run_before(pilot: Any) -> None:
        await _settle(pilot)
        pilot.app.post_message(OpenOrder(number))
        await _settle(pilot)
        await pilot.press("f")
        await _settle(pilot)
        dialog = pilot.app.screen
        assert isinstance(dialog, RefundDialog) and dialog.options is not None
        by_sku = {ln.sku: ln.line_id for ln in dialog.options.lines}
        for name, value in fields.items():
            if name.startswith("qty_"):
                dialog.query_one(f"#qty-{by_sku[name[4:]]}", Input).value = value
            elif name == "reason":
                dialog.query_one("#reason", Select).value = value
            elif name == "shipping":
                dialog.query_one("#shipping").value = True  # type: ignore[attr-defined]
        if fields:
            await pilot.pause(dialog.DEBOUNCE + 0.1)
            await _settle(pilot)
            assert "Total" in dialog.preview_text
            # narrow terminals stack the preview under the form: scroll to it
            dialog.query_one("#refund-preview").scroll_visible(animate=False)
            await _settle(pilot)
        await _still(pilot)

    return run_before


def refunds_screen(tab: str) -> Any:
    async def run_before(pilot: Any) -> None:
        await _settle(pilot)
        pilot.app.action_refunds(tab)
        await _settle(pilot)
        await _still(pilot)

    return run_before


def _seed_refunds(path: Path) -> None:
    """One refund in each state that matters on the refunds screen."""
    engine = make_engine(f"sqlite:///{path}")
    settings = Settings(database_url=f"sqlite:///{path}", refund_limit_minor=1000)
    admin = Desk(engine, factories.ADMIN, clock=lambda: factories.START)
    agent = Desk(engine, factories.AGENT, settings=settings, clock=lambda: factories.START)
    for number in ("PB-100006", "PB-100016"):
        admin.orders.confirm_payment(
            number, gateway="bank_transfer", method="bank_transfer", reference=f"T-{number}"
        )
    agent.refunds.create("PB-100006", RefundRequest("customer_request", amount=2000))
    done = agent.refunds.create("PB-100016", RefundRequest("damaged", amount=500))
    agent.refunds.execute_sync(int(done.id or 0))
    failed = agent.refunds.create("PB-100002", RefundRequest("wrong_item", amount=500))
    agent.refunds.execute_sync(int(failed.id or 0))
    agent.refunds.record_failure(int(failed.id or 0), "card expired", definite=True)
    pending = agent.refunds.create("PB-100008", RefundRequest("not_received", amount=700))
    agent.refunds.execute_sync(int(pending.id or 0))
    gone = agent.refunds.create("PB-100014", RefundRequest("duplicate", amount=300))
    agent.refunds.cancel(int(gone.id or 0), note="asked twice")
    engine.dispose()


@SIZES
def test_refund_dialog(snap_compare, make_app, size) -> None:
    assert snap_compare(make_app(), terminal_size=size, run_before=refund_dialog("PB-100001"))


@SIZES
def test_refund_preview(snap_compare, make_app, size) -> None:
    run = refund_dialog("PB-100001", **{"qty_MUG-BLUE": "1"}, shipping="yes", reason="damaged")
    assert snap_compare(make_app(), terminal_size=size, run_before=run)


@SIZES
def test_approvals_queue(snap_compare, make_app, small_db_path, size) -> None:
    _seed_refunds(small_db_path)
    assert snap_compare(make_app(), terminal_size=size, run_before=refunds_screen("requested"))


@SIZES
def test_refunds_screen(snap_compare, make_app, small_db_path, size) -> None:
    _seed_refunds(small_db_path)
    assert snap_compare(make_app(), terminal_size=size, run_before=refunds_screen("all"))
