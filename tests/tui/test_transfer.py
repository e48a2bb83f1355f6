"""'Mark transfer received' on the order detail, and the reference to quote.

PB-100006 is pending and unpaid in the small database; PB-100002 is paid.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from pulse_tui.screens.dialogs import ConfirmDialog, TransferDialog
from pulse_tui.screens.order_detail import OrderDetailScreen
from pulse_tui.services.desk import Desk
from pulse_tui.storage.db import make_engine, read_session
from pulse_tui.storage.models import Order, OrderEvent, Payment
from tests import factories
from tests.tui.helpers import open_detail, settle

pytestmark = pytest.mark.anyio

KEY = "m"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def transfer_key(screen: OrderDetailScreen) -> bool | None:
    """None when the key is not offered at all; else whether it is enabled."""
    b = screen.active_bindings.get(KEY)
    if b is None or b.node is not screen:
        return None
    assert b.binding.id == "detail.transfer_received"
    return b.enabled


def order_row(app: Any, number: str) -> Order:
    with read_session(app.desk.engine) as s:
        return s.execute(select(Order).where(Order.number == number)).scalar_one()


def payments_of(app: Any, number: str) -> list[Payment]:
    with read_session(app.desk.engine) as s:
        oid = s.execute(select(Order.id).where(Order.number == number)).scalar_one()
        return list(s.execute(select(Payment).where(Payment.order_id == oid)).scalars())


def payments_text(screen: OrderDetailScreen) -> str:
    return str(screen.query_one("#payments .panel-body").render())


async def type_into(pilot: Any, text: str) -> None:
    await pilot.press(*[{" ": "space"}.get(ch, ch) for ch in text])


async def test_agent_marks_transfer_received(make_app) -> None:
    app = make_app(factories.AGENT)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_detail(pilot, "PB-100006")
        assert "Bank transfer: quote PB-100006" in payments_text(screen)
        version = screen.loaded.detail.order.version
        assert transfer_key(screen) is True
        await pilot.press(KEY)
        await settle(pilot)
        assert isinstance(app.screen, TransferDialog)
        await type_into(pilot, "SEPA PB-100006 J MUELLER")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmDialog)
        assert order_row(app, "PB-100006").status == "pending"  # nothing before "yes"
        await pilot.press("y")
        await settle(pilot)

        assert app.screen is screen
        order = order_row(app, "PB-100006")
        assert (order.status, order.payment_status) == ("processing", "paid")
        assert order.version > version
        [p] = payments_of(app, "PB-100006")
        assert (p.gateway, p.method, p.gateway_ref, p.status) == (
            "bank_transfer",
            "bank_transfer",
            "SEPA PB-100006 J MUELLER",
            "paid",
        )
        with read_session(app.desk.engine) as s:
            events = s.execute(
                select(OrderEvent).where(OrderEvent.order_id == order.id).order_by(OrderEvent.id)
            ).scalars()
            last = [(e.kind, e.actor) for e in events][-2:]
        assert last == [("payment_confirmed", "alan"), ("status", "alan")]
        # the screen reloaded: paid now, so neither the key nor the reference is offered
        assert screen.loaded.detail.order.status == "processing"
        assert transfer_key(screen) is None
        assert "quote" not in payments_text(screen)


async def test_reference_is_required(make_app) -> None:
    app = make_app(factories.ADMIN)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_detail(pilot, "PB-100006")
        await pilot.press(KEY)
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, TransferDialog)
        await type_into(pilot, "   ")
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is dialog  # no confirmation, nothing sent
        assert "transfer reference" in dialog.error_text("reference")
        assert order_row(app, "PB-100006").status == "pending"


async def test_declined_confirmation_changes_nothing(make_app) -> None:
    app = make_app(factories.ADMIN)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_detail(pilot, "PB-100006")
        await pilot.press(KEY)
        await settle(pilot)
        await type_into(pilot, "REF-1")
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        assert isinstance(app.screen, TransferDialog)
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is screen
        assert order_row(app, "PB-100006").payment_status == "unpaid"
        assert payments_of(app, "PB-100006") == []


@pytest.mark.parametrize("actor", [factories.WAREHOUSE, factories.VIEWER], ids=["wh", "viewer"])
async def test_not_offered_to_warehouse_or_viewer(make_app, actor) -> None:
    app = make_app(actor)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_detail(pilot, "PB-100006")
        assert transfer_key(screen) is None
        await pilot.press(KEY)
        await settle(pilot)
        assert app.screen is screen
        assert order_row(app, "PB-100006").status == "pending"


async def test_not_offered_for_a_paid_order(make_app) -> None:
    app = make_app(factories.ADMIN)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_detail(pilot, "PB-100002")
        assert transfer_key(screen) is None
        assert "quote" not in payments_text(screen)


async def test_greyed_out_while_on_hold(make_app, small_db_path) -> None:
    engine = make_engine(f"sqlite:///{small_db_path}")
    Desk(engine, factories.AGENT).orders.hold("PB-100006", reason="fraud check")
    engine.dispose()
    app = make_app(factories.AGENT)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_detail(pilot, "PB-100006")
        assert transfer_key(screen) is False


async def test_stale_version_is_a_conflict(make_app, small_db_path) -> None:
    app = make_app(factories.AGENT)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_detail(pilot, "PB-100006")
        await pilot.press(KEY)
        await settle(pilot)
        await type_into(pilot, "REF-2")
        # someone else touches the order while the dialog is open
        other = Desk(make_engine(f"sqlite:///{small_db_path}"), factories.ADMIN)
        other.orders.add_note("PB-100006", "customer called")
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        assert app.screen is screen
        assert "changed by someone else" in screen.banner_text
        assert order_row(app, "PB-100006").payment_status == "unpaid"
