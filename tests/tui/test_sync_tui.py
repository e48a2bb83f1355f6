"""The payment sync inside the TUI: the worker, the header indicator, refreshes.

The sync runner is injected (``build_app(..., sync=...)``): a fake that
returns canned reports, or a real PaymentSync over an in-memory adapter. No
network anywhere here.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Header

from pulse_tui.app import GatewaySync, PulseApp, build_app, default_sync
from pulse_tui.config import GatewayConfig, Settings
from pulse_tui.domain.status import PaymentStatus
from pulse_tui.gateways.base import ChangePage, PaymentInfo
from pulse_tui.messages import OpenOrder
from pulse_tui.screens.order_detail import OrderDetailScreen
from pulse_tui.services import payments as pay
from pulse_tui.services.context import SYSTEM, Context
from pulse_tui.services.desk import Desk
from pulse_tui.services.payment_sync import GatewayReport, PaymentSync, SyncReport
from pulse_tui.storage.db import make_engine
from pulse_tui.widgets.order_table import OrderTable
from pulse_tui.widgets.sync_indicator import SyncIndicator
from tests import factories

pytestmark = pytest.mark.anyio

START = factories.START


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# -- fakes ------------------------------------------------------------------------


def ok_report(*changed: pay.ApplyResult, ago: timedelta = timedelta(0)) -> SyncReport:
    g = GatewayReport("stripe", applied=list(changed))
    return SyncReport(started_at=START - ago, finished_at=START - ago, gateways=[g])


def error_report(message: str) -> SyncReport:
    g = GatewayReport("stripe", errors=[message])
    return SyncReport(started_at=START, finished_at=START, gateways=[g])


class FakeSync:
    """Plays its steps in order: a SyncReport is returned, an exception raised,
    an asyncio.Event waited for (the run "hangs" until it is set)."""

    def __init__(self, *steps: Any) -> None:
        self.steps = list(steps)
        self.calls = 0
        self.closed = False

    async def run_once(self) -> SyncReport:
        self.calls += 1
        step = self.steps.pop(0) if self.steps else ok_report()
        while isinstance(step, asyncio.Event):
            await step.wait()
            step = self.steps.pop(0) if self.steps else ok_report()
        if isinstance(step, BaseException):
            raise step
        return step

    async def aclose(self) -> None:
        self.closed = True


class MemoryStripe:
    """A GatewayAdapter whose change feed is a list the test fills."""

    name = "stripe"

    def __init__(self) -> None:
        self.feed: list[PaymentInfo] = []

    async def list_changes(self, since_cursor: str | None) -> ChangePage:
        start = int(since_cursor or 0)
        return ChangePage(self.feed[start:], cursor=str(len(self.feed)), has_more=False)

    async def fetch_payment(self, payment_ref: str) -> PaymentInfo:
        for info in reversed(self.feed):
            if info.ref == payment_ref:
                return info
        return PaymentInfo("stripe", payment_ref, PaymentStatus.UNPAID, "processing", 0, "USD")

    async def create_refund(self, *a: Any, **k: Any) -> Any:  # pragma: no cover - unused
        raise NotImplementedError

    async def fetch_refund(self, refund_ref: str) -> Any:  # pragma: no cover - unused
        raise NotImplementedError

    async def list_refunds(self, payment_ref: str) -> list[Any]:  # pragma: no cover
        return []

    async def find_refund_by_metadata(self, payment_ref: str, refund_id: str) -> Any:
        return None  # pragma: no cover


def sync_app(db_path: Path, sync: Any, actor=factories.ADMIN, **kw: Any) -> PulseApp:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{db_path}")
    desk = Desk(engine, actor, clock=lambda: START)
    return build_app(desk, sync=sync, **kw)


async def settle(pilot: Any) -> None:
    for _ in range(3):
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def indicator(app: PulseApp) -> SyncIndicator:
    return app.screen.query_one(Header).query_one(SyncIndicator)


# -- wiring -------------------------------------------------------------------------


def test_default_sync_only_when_a_gateway_is_configured(small_db_path: Path) -> None:
    desk = Desk(make_engine(f"sqlite:///{small_db_path}"), factories.ADMIN)
    off = Settings(database_url="sqlite://", gateways={"stripe": GatewayConfig("stripe", "x")})
    on = Settings(
        database_url="sqlite://",
        gateways={"stripe": GatewayConfig("stripe", "http://127.0.0.1:1", secret_key="sk_x")},
        sync_interval_s=7,
    )
    assert default_sync(desk, None) is None
    assert default_sync(desk, off) is None
    assert isinstance(default_sync(desk, on), GatewaySync)
    app = build_app(desk, settings=on)
    assert isinstance(app.sync_runner, GatewaySync) and app.sync_interval == 7
    assert build_app(desk, settings=on, sync=None).sync_runner is None
    assert build_app(desk, settings=off).sync_runner is None


async def test_no_runner_no_indicator(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert not app.screen.query(SyncIndicator)
        assert app.sync_status.phase == "off"


# -- the indicator ------------------------------------------------------------------


async def test_indicator_shows_syncing_then_synced(small_db_path: Path) -> None:
    gate = asyncio.Event()
    fake = FakeSync(gate, ok_report(ago=timedelta(minutes=2)))
    app = sync_app(small_db_path, fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.pause()
        assert indicator(app).text == "syncing…"
        await pilot.press("j")  # the UI answers while the run is in progress
        gate.set()
        await settle(pilot)
        assert indicator(app).text == "synced 2m ago"
        assert indicator(app).has_class("-ok")
        assert fake.calls == 1
    assert fake.closed  # the runner's client is closed when the App exits


async def test_runs_again_after_the_interval(small_db_path: Path) -> None:
    fake = FakeSync(ok_report(), ok_report(ago=timedelta(minutes=5)))
    app = sync_app(small_db_path, fake, sync_interval=1)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert fake.calls == 1 and indicator(app).text == "synced just now"
        # The second run comes about a second later; poll rather than sleep a
        # fixed time, so a slow machine neither misses it nor sees a third run.
        seen = []
        for _ in range(300):
            await pilot.pause(0.05)
            seen.append(indicator(app).text)
            if seen[-1] == "synced 5m ago":
                break
        assert fake.calls >= 2 and seen[-1] == "synced 5m ago", seen[-5:]


async def test_gateway_errors_show_with_next_retry(small_db_path: Path) -> None:
    fake = FakeSync(error_report("stripe: list changes: stripe HTTP 500: boom"))
    app = sync_app(small_db_path, fake, sync_interval=30)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        ind = indicator(app)
        assert ind.has_class("-error")
        assert ind.text.startswith("sync error, retry in 30s: stripe: list changes: stripe")
        assert ind.tooltip == "stripe: list changes: stripe HTTP 500: boom"
        assert app.sync_status.next_run == START + timedelta(seconds=30)


async def test_worker_exception_shows_and_app_stays_alive(small_db_path: Path) -> None:
    fake = FakeSync(RuntimeError("database is locked"), ok_report())
    app = sync_app(small_db_path, fake)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert app.is_running
        assert indicator(app).text == "sync error, retry in 30s: database is locked"
        # the app still works: open an order, and the next run recovers
        app.post_message(OpenOrder("PB-100002"))
        await settle(pilot)
        assert isinstance(app.screen, OrderDetailScreen)
        app.run_sync()
        await settle(pilot)
        assert indicator(app).text == "synced just now"


async def test_failures_in_a_row_back_off(small_db_path: Path) -> None:
    app = sync_app(small_db_path, FakeSync(), sync_interval=10)
    app._sync_failures = 1
    assert app._retry_delay() == 10
    app._sync_failures = 3
    assert app._retry_delay() == 40
    app._sync_failures = 20
    assert app._retry_delay() == 300


async def test_skipped_run_says_another_process_syncs(small_db_path: Path) -> None:
    report = SyncReport(started_at=START, finished_at=START, skipped_by="host:1:abc")
    app = sync_app(small_db_path, FakeSync(report))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert indicator(app).text == "sync running elsewhere"


async def test_indicator_follows_onto_pushed_screens(small_db_path: Path) -> None:
    app = sync_app(small_db_path, FakeSync(ok_report(ago=timedelta(minutes=3))))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.post_message(OpenOrder("PB-100002"))
        await settle(pilot)
        assert isinstance(app.screen, OrderDetailScreen)
        assert indicator(app).text == "synced 3m ago"
        await pilot.press("escape")
        await settle(pilot)
        assert len(app.screen.query(SyncIndicator)) == 1  # not mounted twice


# -- a run that changes orders ---------------------------------------------------------


def attach_stripe(db_path: Path, number: str, ref: str) -> int:
    engine = make_engine(f"sqlite:///{db_path}")
    ctx = Context(engine, SYSTEM, clock=lambda: START)
    pay.PaymentService(ctx).attach(number, gateway="stripe", reference=ref, method="card")
    desk = Desk(engine, factories.ADMIN, clock=lambda: START)
    order = desk.orders.detail(number).order
    engine.dispose()
    return order.total


def rows_by_number(app: PulseApp) -> dict[str, Any]:
    screen = app.screen_stack[0]
    return {r.number: r for r in screen.query_one(OrderTable).window.rows}


async def test_run_that_pays_an_order_refreshes_list_and_open_detail(
    small_db_path: Path,
) -> None:
    total = attach_stripe(small_db_path, "PB-100006", "pi_live")
    adapter = MemoryStripe()
    engine = make_engine(f"sqlite:///{small_db_path}")
    runner = PaymentSync(engine, {"stripe": adapter}, clock=lambda: START)
    desk = Desk(engine, factories.AGENT, clock=lambda: START)
    app = build_app(desk, sync=runner, sync_interval=3600)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert rows_by_number(app)["PB-100006"].status == "pending"
        app.post_message(OpenOrder("PB-100006"))
        await settle(pilot)
        detail = app.screen
        assert isinstance(detail, OrderDetailScreen)
        assert detail.loaded is not None and detail.loaded.detail.order.status == "pending"

        adapter.feed.append(
            PaymentInfo(
                "stripe",
                "pi_live",
                PaymentStatus.PAID,
                "succeeded",
                total,
                "USD",
                captured=total,
                card_brand="visa",
                card_last4="4242",
            )
        )
        app.run_sync()
        await settle(pilot)
        await settle(pilot)

        assert app.sync_status.phase == "ok" and app.sync_status.changed == 1
        assert detail.loaded.detail.order.status == "processing"
        assert rows_by_number(app)["PB-100006"].status == "processing"
        assert "synced just now" in indicator(app).text
