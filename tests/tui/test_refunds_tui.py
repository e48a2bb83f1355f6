"""The refund dialog, the refunds screen and the detail's refund keys (pilot).

Orders of the small database are paid via "stripe" with references no server
knows; the app here has no gateways configured, so a stripe refund stays
pending ("not configured"). Refunds that must succeed use an order paid by bank
transfer (paid back by hand: executing records it at once).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Button, Input, Select

from pulse_tui.commands import _desk_actions
from pulse_tui.config import Settings
from pulse_tui.screens.order_detail import OrderDetailScreen
from pulse_tui.screens.refunds import PickRefundDialog, RefundDialog, RefundsScreen
from pulse_tui.services.desk import Desk
from pulse_tui.services.refunds import RefundRequest
from pulse_tui.storage.db import make_engine
from tests import factories
from tests.tui.helpers import open_detail, settle

pytestmark = pytest.mark.anyio

SIZE = (100, 40)


def _desk(path: Path, actor: Any = factories.ADMIN, limit: int | None = None) -> Desk:
    settings = None
    if limit is not None:
        settings = Settings(database_url=f"sqlite:///{path}", refund_limit_minor=limit)
    engine = make_engine(f"sqlite:///{path}")
    return Desk(engine, actor, settings=settings, clock=lambda: factories.START)


def _pay_by_transfer(path: Path, number: str) -> None:
    desk = _desk(path)
    desk.orders.confirm_payment(
        number, gateway="bank_transfer", method="bank_transfer", reference=f"T-{number}"
    )
    desk.engine.dispose()


async def _open_refund(pilot: Any, number: str) -> RefundDialog:
    detail = await open_detail(pilot, number)
    assert detail.check_action("refund", ()) is True
    await pilot.press("f")
    await settle(pilot)
    dialog = pilot.app.screen
    assert isinstance(dialog, RefundDialog)
    return dialog


async def _set(pilot: Any, dialog: RefundDialog, **fields: str) -> None:
    """Fill fields (``qty_<SKU>``, ``amount``, ``reason``) and wait for the preview."""
    assert dialog.options is not None
    by_sku = {ln.sku: ln.line_id for ln in dialog.options.lines}
    for name, value in fields.items():
        if name.startswith("qty_"):
            dialog.query_one(f"#qty-{by_sku[name[4:]]}", Input).value = value
        elif name == "reason":
            dialog.query_one("#reason", Select).value = value
        else:
            dialog.query_one(f"#{name}", Input).value = value
    await pilot.pause(dialog.DEBOUNCE + 0.1)
    await settle(pilot)


async def test_preview_then_double_enter_makes_one_refund(make_app, small_db_path) -> None:
    _pay_by_transfer(small_db_path, "PB-100006")  # USD: KEY-PRO 49.00 + 2 × CAP-RED 18.00
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        dialog = await _open_refund(pilot, "PB-100006")
        submit = dialog.query_one("#submit", Button)
        assert submit.disabled  # nothing chosen, nothing to confirm
        await _set(pilot, dialog, **{"qty_CAP-RED": "1"})
        text = dialog.preview_text
        assert "1 × CAP-RED  $18.00" in text
        assert "Total $18.00" in text
        assert "stays refundable $71.95" in text  # 89.95 paid
        assert not submit.disabled
        # submit insists on a reason; nothing is written
        dialog.action_submit()
        await settle(pilot)
        assert "choose a reason" in dialog.error_text
        assert app.desk.refunds.list_refunds(order_ref="PB-100006") == []

        await _set(pilot, dialog, reason="damaged")
        dialog.query_one(f"#qty-{dialog.options.lines[1].line_id}", Input).focus()
        await pilot.press("enter", "enter")
        await settle(pilot)

        detail = app.screen
        assert isinstance(detail, OrderDetailScreen)
        titles = [title for title, _help, _run in _desk_actions(app, detail)]
        assert {"Refunds", "Refund approvals", "Refund this order"} <= set(titles)
        refunds = app.desk.refunds.list_refunds(order_ref="PB-100006")
        assert [(r.amount, r.status, r.reason) for r in refunds] == [(1800, "succeeded", "damaged")]
        assert "succeeded" in detail.banner_text
        assert detail.detail is not None and detail.detail.order.refunded == 1800
        assert "#" in str(detail.query_one("#payments").query_one(".panel-body").render())


async def test_over_refund_is_refused_and_cannot_be_submitted(make_app, small_db_path) -> None:
    _pay_by_transfer(small_db_path, "PB-100006")
    app = make_app(factories.AGENT)
    async with app.run_test(size=SIZE) as pilot:
        dialog = await _open_refund(pilot, "PB-100006")
        await _set(pilot, dialog, amount="90.00", reason="other")
        assert "at most $89.95 can be refunded" in dialog.error_text
        assert dialog.query_one("#submit", Button).disabled
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is dialog
        # lines and an amount together: the services say which
        await _set(pilot, dialog, **{"qty_CAP-RED": "1"})
        assert "either an amount or lines" in dialog.error_text
        assert app.desk.refunds.list_refunds(order_ref="PB-100006") == []

        # someone else changes the order while the dialog is open
        await _set(pilot, dialog, **{"qty_CAP-RED": "", "amount": "10.00"})
        assert "Total $10.00" in dialog.preview_text
        other = _desk(small_db_path, factories.ADMIN)
        other.orders.add_note("PB-100006", "called the customer")
        await pilot.press("ctrl+s")
        await settle(pilot)
        detail = app.screen
        assert isinstance(detail, OrderDetailScreen)
        assert "changed by someone else — reloaded" in detail.banner_text
        assert app.desk.refunds.list_refunds(order_ref="PB-100006") == []


async def test_admin_approves_from_the_queue_agent_cannot(make_app, small_db_path) -> None:
    _pay_by_transfer(small_db_path, "PB-100006")
    agent = _desk(small_db_path, factories.AGENT, limit=1000)
    waiting = agent.refunds.create("PB-100006", RefundRequest("customer_request", amount=2000))
    assert waiting.status == "requested"

    app = make_app(factories.AGENT)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("F")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RefundsScreen)
        assert screen.current is not None and screen.current.id == waiting.id
        assert screen.check_action("approve", ()) is False  # hidden for agents
        await pilot.press("a")
        await settle(pilot)
        assert app.screen is screen

    app = make_app(factories.ADMIN)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.action_refunds("requested")  # the palette's "Refund approvals"
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RefundsScreen) and screen.tab == "requested"
        assert [r.id for r in screen.rows] == [waiting.id]
        assert "Requested 1" in str(screen.query_one("#refunds-tabs").render())
        await pilot.press("a")
        await settle(pilot)
        await pilot.press("y")  # confirm: approve & send
        await settle(pilot)
        assert app.screen is screen
        row = app.desk.refunds.get(waiting.id)
        assert (row.status, row.approved_by) == ("succeeded", "ada")
        assert screen.rows == []  # the queue is empty now


async def test_retry_a_failed_refund_from_the_detail(make_app, small_db_path) -> None:
    def fail_one() -> int:
        agent = _desk(small_db_path, factories.AGENT)
        refund = agent.refunds.create("PB-100002", RefundRequest("damaged", amount=500))
        rid = int(refund.id or 0)
        assert agent.refunds.execute_sync(rid).status == "pending"  # stripe: not configured
        agent.refunds.record_failure(rid, "card expired", definite=True)
        return rid

    rid = await asyncio.to_thread(fail_one)  # execute_sync runs its own event loop

    app = make_app(factories.AGENT)
    async with app.run_test(size=SIZE) as pilot:
        detail = await open_detail(pilot, "PB-100002")
        panel = str(detail.query_one("#payments").query_one(".panel-body").render())
        assert "failed" in panel and "card expired" in panel
        assert detail.check_action("approve_refund", ()) is False
        assert detail.check_action("retry_refund", ()) is True
        await pilot.press("y")
        await settle(pilot)
        assert isinstance(app.screen, PickRefundDialog)
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is detail
        row = app.desk.refunds.get(rid)
        assert (row.status, row.attempt) == ("pending", 2)
        assert "not configured" in detail.banner_text
