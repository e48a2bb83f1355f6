"""Snapshots of the payments panel, the transfer dialog and the sync indicator.

Small database, frozen clock, a fake sync runner (no network). Regenerate with
``.venv/bin/pytest tests/tui/test_snapshots_payments.py --snapshot-update`` and
look at the SVGs before committing them.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input

from pulse_tui.app import SYNC_GROUP, build_app
from pulse_tui.domain.status import PaymentStatus
from pulse_tui.gateways.base import PaymentInfo
from pulse_tui.messages import OpenOrder
from pulse_tui.screens.order_detail import OrderDetailScreen
from pulse_tui.services import payments as pay
from pulse_tui.services.context import SYSTEM, Context
from pulse_tui.services.desk import Desk
from pulse_tui.services.payment_sync import GatewayReport, SyncReport
from pulse_tui.storage.db import make_engine
from tests import factories

NARROW = (80, 24)
WIDE = (120, 40)
START = factories.START
SIZES = pytest.mark.parametrize("size", [NARROW, WIDE], ids=["80x24", "120x40"])


async def _settle(pilot: Any) -> None:
    """Let every worker but a (possibly never-ending) sync run finish."""
    for _ in range(3):
        await pilot.pause()
        others = [w for w in pilot.app.workers if w.group != SYNC_GROUP]
        if others:  # an empty list would mean "all workers" to Textual
            await pilot.app.workers.wait_for_complete(others)
    await pilot.pause()


def show(ref: str | None = None, *keys: str, panel: bool = False) -> Any:
    """run_before: open ``ref`` (or stay on the list), press ``keys``; with
    ``panel`` scroll the payments panel into view (narrow layouts stack it low)."""

    async def run_before(pilot: Any) -> None:
        await _settle(pilot)
        if ref is not None:
            pilot.app.post_message(OpenOrder(ref))
            await _settle(pilot)
            assert isinstance(pilot.app.screen, OrderDetailScreen)
        if panel:
            pilot.app.screen.query_one("#payments").scroll_visible(animate=False, top=True)
            await _settle(pilot)
        for key in keys:
            await pilot.press(key)
            await _settle(pilot)
        for widget in pilot.app.screen.query(Input):
            widget.cursor_blink = False
        pilot.app.clear_notifications()
        await pilot.pause()

    return run_before


def _app(db_path: Path, actor=factories.ADMIN, sync: Any = None) -> Any:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{db_path}")
    desk = Desk(engine, actor, clock=lambda: START)
    return build_app(desk, sync=sync, sync_interval=3600)


def _ctx(db_path: Path) -> Context:
    return Context(make_engine(f"sqlite:///{db_path}"), SYSTEM, clock=lambda: START)


def _await_transfer(db_path: Path, number: str) -> None:
    """The customer chose bank transfer: a pending payment quoting the order number."""
    pay.PaymentService(_ctx(db_path)).attach(
        number, gateway="bank_transfer", reference=number, method="bank_transfer"
    )


def _failed_card(db_path: Path, number: str) -> None:
    """A card payment the gateway declined: the order goes on hold."""
    ctx = _ctx(db_path)
    svc = pay.PaymentService(ctx)
    svc.attach(number, gateway="stripe", reference="pi_3Declined", method="card")
    total = Desk(ctx.engine, factories.ADMIN).orders.detail(number).order.total
    result = svc.apply(
        PaymentInfo(
            "stripe",
            "pi_3Declined",
            PaymentStatus.FAILED,
            "requires_payment_method",
            total,
            "USD",
            failure_reason="card_declined",
        )
    )
    assert result.outcome == pay.Outcome.FAILED


# -- the payments panel -------------------------------------------------------------


@SIZES
def test_paid_card(snap_compare, small_db_path, size) -> None:
    app = _app(small_db_path)
    assert snap_compare(app, terminal_size=size, run_before=show("PB-100002", panel=True))


@SIZES
def test_bank_transfer_awaiting(snap_compare, small_db_path, size) -> None:
    _await_transfer(small_db_path, "PB-100006")
    app = _app(small_db_path, factories.AGENT)
    assert snap_compare(app, terminal_size=size, run_before=show("PB-100006", panel=True))


@SIZES
def test_failed_payment_on_hold(snap_compare, small_db_path, size) -> None:
    _failed_card(small_db_path, "PB-100006")
    app = _app(small_db_path, factories.AGENT)
    assert snap_compare(app, terminal_size=size, run_before=show("PB-100006", panel=True))


@SIZES
def test_transfer_dialog(snap_compare, small_db_path, size) -> None:
    app = _app(small_db_path, factories.AGENT)
    assert snap_compare(app, terminal_size=size, run_before=show("PB-100006", "m"))


# -- the sync indicator -------------------------------------------------------------


class FakeSync:
    def __init__(self, step: Any) -> None:
        self.step = step

    async def run_once(self) -> SyncReport:
        if isinstance(self.step, asyncio.Event):
            await self.step.wait()  # never set: "syncing…" for the whole test
        if isinstance(self.step, BaseException):
            raise self.step
        return self.step


def _report(errors: list[str] | None = None, ago: timedelta = timedelta(0)) -> SyncReport:
    g = GatewayReport("stripe", errors=errors or [])
    return SyncReport(started_at=START - ago, finished_at=START - ago, gateways=[g])


SYNC_STATES = {
    "off": None,
    "syncing": "block",
    "synced": _report(ago=timedelta(minutes=2)),
    "error": _report(["stripe: list changes: stripe HTTP 503: service unavailable"]),
}


@pytest.mark.parametrize("state", list(SYNC_STATES))
def test_sync_indicator(snap_compare, small_db_path, state) -> None:
    step = SYNC_STATES[state]
    runner = None if step is None else FakeSync(asyncio.Event() if step == "block" else step)
    app = _app(small_db_path, sync=runner)
    assert snap_compare(app, terminal_size=NARROW, run_before=show())


def test_sync_error_wide_on_detail(snap_compare, small_db_path) -> None:
    runner = FakeSync(RuntimeError("connection refused by 127.0.0.1:12111"))
    app = _app(small_db_path, sync=runner)
    assert snap_compare(app, terminal_size=WIDE, run_before=show("PB-100002"))
