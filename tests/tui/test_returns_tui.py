"""A return (RMA) through the order detail's keys: x request, then w for each
next step (authorize, receive, refund), and what each role is offered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, Select

from pulse_tui.screens.order_detail import OrderDetailScreen
from pulse_tui.screens.returns import (
    AuthorizeReturnDialog,
    ReceiveReturnDialog,
    RefundReturnDialog,
    RequestReturnDialog,
    ReturnStepDialog,
)
from pulse_tui.services.desk import Desk
from pulse_tui.storage.db import make_engine
from tests import factories
from tests.tui.helpers import open_detail, settle

pytestmark = pytest.mark.anyio
SIZE = (100, 40)


def _paid_and_shipped(path: Path, number: str) -> None:
    """Paid by bank transfer (its refunds are paid back by hand) and shipped."""
    desk = Desk(make_engine(f"sqlite:///{path}"), factories.ADMIN, clock=lambda: factories.START)
    desk.orders.confirm_payment(
        number, gateway="bank_transfer", method="bank_transfer", reference=f"T-{number}"
    )
    desk.orders.ship(number, carrier="DHL", tracking="JD0000000099")
    desk.engine.dispose()


async def _step(pilot: Any, detail: OrderDetailScreen, expect: type) -> Any:
    """w, enter on the first offered step: the step's dialog."""
    await pilot.press("w")
    await settle(pilot)
    assert isinstance(pilot.app.screen, ReturnStepDialog)
    await pilot.press("enter")
    await settle(pilot)
    dialog = pilot.app.screen
    assert isinstance(dialog, expect)
    return dialog


async def test_request_authorize_receive_refund(make_app, small_db_path) -> None:
    _paid_and_shipped(small_db_path, "PB-100006")  # KEY-PRO (digital) + 2 × CAP-RED 18.00
    app = make_app(factories.ADMIN)
    async with app.run_test(size=SIZE) as pilot:
        detail = await open_detail(pilot, "PB-100006")
        assert detail.check_action("request_return", ()) is True
        assert detail.check_action("return_step", ()) is False  # no return yet

        await pilot.press("x")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, RequestReturnDialog)
        cap = next(i for i, ln in enumerate(dialog.lines) if ln.sku == "CAP-RED")
        dialog.query_one(f"#ret-{cap}", Input).value = "1"
        dialog.action_submit()  # no reason yet: refused in the dialog
        await settle(pilot)
        assert app.screen is dialog and "choose a reason" in dialog.error_text("reason")
        dialog.query_one("#reason", Select).value = "damaged"
        dialog.action_submit()
        await settle(pilot)
        assert app.screen is detail
        (ret,) = app.desk.returns.list_returns(order_ref="PB-100006")
        assert (ret.status, [(ln["sku"], ln["quantity"]) for ln in ret.lines]) == (
            "requested",
            [("CAP-RED", 1)],
        )
        panel = str(detail.query_one("#payments").query_one(".panel-body").render())
        assert f"RMA #{ret.id} requested" in panel

        dialog = await _step(pilot, detail, AuthorizeReturnDialog)  # first offer: authorize
        await pilot.press("enter")
        await settle(pilot)
        assert app.desk.returns.get(ret.id).status == "authorized"

        dialog = await _step(pilot, detail, ReceiveReturnDialog)
        assert dialog.query_one("#got-0", Input).value == "1"
        dialog.query_one("#cond-0", Select).value = "damaged"
        dialog.action_submit()
        await settle(pilot)
        got = app.desk.returns.get(ret.id)
        assert (got.status, got.lines[0]["received"]) == ("received", 1)

        dialog = await _step(pilot, detail, RefundReturnDialog)  # refund before exchange
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is detail
        got = app.desk.returns.get(ret.id)
        assert got.status == "refunded" and got.refund_id is not None
        refund = app.desk.refunds.get(got.refund_id)
        assert (refund.amount, refund.status, refund.reason) == (1800, "succeeded", "return")
        assert "succeeded" in detail.banner_text
        assert detail.check_action("return_step", ()) is False  # nothing left to do


async def test_warehouse_may_only_receive(make_app, small_db_path) -> None:
    _paid_and_shipped(small_db_path, "PB-100006")
    from pulse_tui.services.returns import ReturnPick

    admin = Desk(
        make_engine(f"sqlite:///{small_db_path}"), factories.ADMIN, clock=lambda: factories.START
    )
    ret = admin.returns.request("PB-100006", [ReturnPick("CAP-RED", 2)], "wrong_item")

    app = make_app(factories.WAREHOUSE)
    async with app.run_test(size=SIZE) as pilot:
        detail = await open_detail(pilot, "PB-100006")
        for action in ("refund", "request_return", "approve_refund", "retry_refund"):
            assert detail.check_action(action, ()) is False, action
        assert detail.check_action("return_step", ()) is False  # requested: not theirs
        admin.returns.authorize(ret.id)
        detail.load()
        await settle(pilot)
        assert detail.check_action("return_step", ()) is True
        await pilot.press("w")
        await settle(pilot)
        step = app.screen
        assert isinstance(step, ReturnStepDialog)
        assert [s for _r, s in step.choices] == ["receive"]
