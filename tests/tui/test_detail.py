"""Order detail screen: what it shows, which actions it offers, what they do.

Orders of the small database used here (tests/factories.build_small_db):
PB-100001 processing, paid, on hold "address check" (EUR, 2 lines)
PB-100002 processing, paid, not on hold (USD)
PB-100003 shipped (JPY, DHL shipment)
PB-100006 pending, unpaid (USD)
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console
from sqlalchemy import select
from textual.widgets import Input, OptionList, Select

from pulse_tui.messages import OpenOrder, OrderChanged
from pulse_tui.screens.dialogs import (
    CancelDialog,
    ConfirmDialog,
    HoldDialog,
    NoteDialog,
    ReleaseDialog,
    ShipDialog,
    StatusDialog,
    TagDialog,
)
from pulse_tui.screens.order_detail import (
    OrderDetailScreen,
    read_order,
    warm_up,
)
from pulse_tui.services.desk import Desk
from pulse_tui.storage.db import make_engine, read_session
from pulse_tui.storage.models import Order, OrderEvent
from pulse_tui.widgets.order_panels import TotalsRow
from pulse_tui.widgets.timeline import Timeline
from tests import factories
from tests.tui.helpers import open_detail, settle, slow_reads

# anyio's pytest plugin (installed with httpx) runs the async tests on asyncio
pytestmark = pytest.mark.anyio


def spy_order_changed(app: Any) -> list[OrderChanged]:
    """Record OrderChanged messages as they bubble up to the App."""
    seen: list[OrderChanged] = []
    original = app.post_message

    def post(message: Any) -> bool:
        if isinstance(message, OrderChanged):
            seen.append(message)
        return original(message)

    app.post_message = post
    return seen


def order_row(app: Any, number: str) -> Order:
    with read_session(app.desk.engine) as s:
        return s.execute(select(Order).where(Order.number == number)).scalar_one()


def event_kinds(app: Any, number: str) -> list[str]:
    with read_session(app.desk.engine) as s:
        oid = s.execute(select(Order.id).where(Order.number == number)).scalar_one()
        rows = s.execute(
            select(OrderEvent.kind).where(OrderEvent.order_id == oid).order_by(OrderEvent.id)
        )
        return list(rows.scalars())


def text_of(screen: Any, selector: str) -> str:
    """The plain text a widget shows (Rich renderables rendered at its width)."""
    widget = screen.query_one(selector)
    content = getattr(widget, "content", None)
    if content is not None and not isinstance(content, str):
        console = Console(width=max(widget.size.width, 40), record=True, file=io.StringIO())
        console.print(content)
        return console.export_text()
    return str(widget.render())


async def type_into(pilot: Any, text: str) -> None:
    await pilot.press(*[{" ": "space"}.get(ch, ch) for ch in text])


# -- what the screen shows --------------------------------------------------


async def test_detail_shows_header_lines_payments_and_timeline(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_detail(pilot, "PB-100001")
        title = text_of(screen, "#summary-title")
        assert "PB-100001" in title and "processing" in title and "paid" in title
        hold = screen.query_one("#summary-hold")
        assert hold.display and "address check" in str(hold.render())
        assert "Jürgen Müller" in text_of(screen, "#summary-meta")
        totals = screen.query_one(TotalsRow)
        assert "Total" in totals.cell("total") and "€64.45" in totals.cell("total")
        assert "Shipping" in totals.cell("shipping") and "€4.95" in totals.cell("shipping")
        assert "€4.95" in text_of(screen, "#summary-totals")  # what the row renders
        lines = text_of(screen, "#lines .panel-body")
        assert "MUG-BLUE" in lines and "TEE-M" in lines and "€29.75" in lines
        assert "4242" in text_of(screen, "#payments .panel-body")
        assert "Berlin" in text_of(screen, "#customer .panel-body")
        events = screen.query_one(Timeline).events
        # newest first, every event, with actor and relative + absolute time
        assert [e.event_kind for e in events] == ["held", "status", "payment_confirmed", "placed"]
        first = str(events[0].render())
        assert "ada" in first and "1mo ago" in first and "2026-10-26 12:00" in first
        assert "On hold: address check" in first
        assert not screen.banner_text


async def test_loading_indicator_while_the_worker_reads(make_app) -> None:
    app = make_app()
    gate = slow_reads(app)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.post_message(OpenOrder("PB-100002"))
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, OrderDetailScreen)
        assert screen.query_one("#detail-body").loading
        assert screen.check_action("add_note", ()) is None  # nothing to act on yet
        gate.set()
        await settle(pilot)
        assert not screen.query_one("#detail-body").loading
        assert "PB-100002" in text_of(screen, "#summary-title")
        assert screen.check_action("add_note", ()) is True


async def test_warehouse_sees_no_access_instead_of_payments(make_app) -> None:
    app = make_app(factories.WAREHOUSE)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_detail(pilot, "PB-100002")
        payments = text_of(screen, "#payments .panel-body")
        assert "No access" in payments and "4242" not in payments


async def test_unknown_order_shows_error_and_app_stays_alive(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_detail(pilot, "PB-999999")
        assert "no order PB-999999" in screen.banner_text
        assert screen.check_action("add_note", ()) is None  # nothing to act on
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, OrderDetailScreen)


async def test_resizing_the_terminal_relays_out_the_detail(make_app) -> None:
    # the screen skips the Resize its own first layout sends; real ones count
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_detail(pilot, "PB-100001")
        side, main = screen.query_one("#detail-side"), screen.query_one("#detail-main")
        assert screen.has_class("-wide") and side.region.x > main.region.x
        await pilot.resize_terminal(80, 40)
        await settle(pilot)
        assert screen.has_class("-narrow") and not screen.has_class("-wide")
        assert side.region.y > main.region.y and side.region.x == main.region.x


def test_warm_up_reads_like_the_screen_and_never_raises(small_db_path) -> None:
    engine = make_engine(f"sqlite:///{small_db_path}")
    desk = Desk(engine, factories.ADMIN, clock=lambda: factories.START)
    seen: list[Any] = []
    real = desk.orders.detail
    desk.orders.detail = lambda ref: seen.append(ref) or real(ref)  # type: ignore[method-assign]
    warm_up(desk, "PB-100001")
    warm_up(desk, "PB-999999")  # unknown: NotFound swallowed
    assert seen == ["PB-100001", "PB-999999"]
    assert read_order(desk, "PB-100001").detail.order.number == "PB-100001"
    engine.dispose()


# -- which actions are offered ------------------------------------------------


def offered_keys(screen: OrderDetailScreen) -> dict[str, bool]:
    keys = "shnrctpd"
    return {
        k: b.enabled for k, b in screen.active_bindings.items() if k in keys and b.node is screen
    }


@pytest.mark.parametrize(
    ("actor", "expected_keys", "expected_status"),
    [
        (
            factories.ADMIN,
            {"s": True, "n": True, "h": True, "c": True, "t": True, "p": True, "d": False},
            ["Ship", "Cancel"],
        ),
        (
            factories.AGENT,
            {"s": True, "n": True, "h": True, "c": True, "t": True, "p": True, "d": False},
            ["Ship", "Cancel"],
        ),
        (factories.WAREHOUSE, {"s": True, "n": True, "p": True, "d": False}, ["Ship"]),
        (factories.VIEWER, {}, None),
    ],
    ids=["admin", "agent", "warehouse", "viewer"],
)
async def test_status_change_offered_per_role(
    make_app, actor, expected_keys, expected_status
) -> None:
    app = make_app(actor)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_detail(pilot, "PB-100002")
        assert offered_keys(screen) == expected_keys
        await pilot.press("s")
        await pilot.pause()
        if expected_status is None:
            assert app.screen is screen  # no dialog for a viewer
            return
        dialog = app.screen
        assert isinstance(dialog, StatusDialog)
        options = dialog.query_one("#transition", OptionList)
        labels = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert [lbl.split("  ")[0] for lbl in labels] == expected_status


async def test_pending_unpaid_order_offers_only_cancel(make_app) -> None:
    app = make_app(factories.ADMIN)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_detail(pilot, "PB-100006")
        assert [t.action for t in screen.loaded.offered] == ["cancel"]
        keys = offered_keys(screen)
        assert keys["p"] is False and keys["d"] is False and keys["c"] is True


async def test_release_offered_instead_of_hold_when_on_hold(make_app) -> None:
    app = make_app(factories.AGENT)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_detail(pilot, "PB-100001")
        keys = offered_keys(screen)
        assert "h" not in keys and keys["r"] is True
        assert keys["p"] is False  # on hold blocks shipping


# -- actions ----------------------------------------------------------------


async def test_note_appears_in_timeline(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_detail(pilot, "PB-100002")
        before = screen.query_one(Timeline).events
        before_messages = [b.event_message for b in before]
        changed = spy_order_changed(app)
        version = order_row(app, "PB-100002").version
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, NoteDialog)
        await type_into(pilot, "Called the customer")
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is screen
        events = screen.query_one(Timeline).events
        first = events[0]
        assert first.event_kind == "note" and first.has_class("note")
        assert "Called the customer" in str(first.render())
        # the reload updated the event widgets in place and mounted one more
        assert all(a is b for a, b in zip(events, before, strict=False))
        assert [e.event_message for e in events[1:]] == before_messages
        assert not events[1].has_class("note")
        assert order_row(app, "PB-100002").version == version + 1
        assert screen.loaded.detail.order.version == version + 1
        assert [(m.number, m.order_id) for m in changed] == [("PB-100002", 2)]


async def test_hold_with_reason_then_release(make_app) -> None:
    app = make_app(factories.AGENT)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_detail(pilot, "PB-100002")
        await pilot.press("h")
        await pilot.pause()
        assert isinstance(app.screen, HoldDialog)
        app.screen.query_one("#reason", Input).value = "fraud check"
        await pilot.press("enter")
        await settle(pilot)
        row = order_row(app, "PB-100002")
        assert row.on_hold and row.hold_reason == "fraud check"
        hold = screen.query_one("#summary-hold")
        assert hold.display and "fraud check" in str(hold.render())
        assert offered_keys(screen)["r"] is True

        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, ReleaseDialog)
        app.screen.query_one("#note", Input).value = "verified"
        await pilot.press("enter")
        await settle(pilot)
        row = order_row(app, "PB-100002")
        assert not row.on_hold and row.hold_reason is None
        assert not screen.query_one("#summary-hold").display
        first = screen.query_one(Timeline).events[0]
        assert first.event_kind == "released" and "verified" in str(first.render())


async def test_cancel_with_reason_after_confirmation(make_app) -> None:
    app = make_app(factories.AGENT)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_detail(pilot, "PB-100006")
        await pilot.press("c")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, CancelDialog)
        dialog.query_one("#reason", Select).value = "fraud"
        dialog.query_one("#note", Input).value = "stolen card"
        dialog.query_one("#note", Input).focus()
        await pilot.press("enter")
        await pilot.pause()
        # destructive: a confirmation first, with "No" focused
        assert isinstance(app.screen, ConfirmDialog)
        assert app.screen.focused.id == "close"
        assert order_row(app, "PB-100006").status == "pending"
        await pilot.press("y")
        await settle(pilot)
        assert app.screen is screen
        row = order_row(app, "PB-100006")
        assert row.status == "cancelled" and row.cancel_reason == "fraud"
        assert "cancelled" in text_of(screen, "#summary-title")
        first = screen.query_one(Timeline).events[0]
        assert "fraud" in str(first.render()) and "stolen card" in str(first.render())


async def test_cancel_declined_at_confirmation_changes_nothing(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await open_detail(pilot, "PB-100006")
        await pilot.press("c")
        await pilot.pause()
        app.screen.query_one("#reason", Select).value = "duplicate"
        app.screen.action_submit()
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("n")
        await settle(pilot)
        assert isinstance(app.screen, CancelDialog)  # back in the form, not cancelled
        assert order_row(app, "PB-100006").status == "pending"


async def test_tag_add_and_remove(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_detail(pilot, "PB-100002")
        await pilot.press("t")
        await pilot.pause()
        assert isinstance(app.screen, TagDialog)
        app.screen.query_one("#add", Input).value = "vip, rush"
        await pilot.press("enter")
        await settle(pilot)
        assert screen.loaded.detail.tags == ["rush", "vip"]
        assert "rush, vip" in text_of(screen, "#summary-meta")

        await pilot.press("t")
        await pilot.pause()
        app.screen.query_one("#remove", Input).value = "rush"
        app.screen.action_submit()
        await settle(pilot)
        assert screen.loaded.detail.tags == ["vip"]


async def test_ship_with_carrier_and_tracking(make_app) -> None:
    app = make_app(factories.WAREHOUSE)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_detail(pilot, "PB-100002")
        await pilot.press("p")
        await pilot.pause()
        assert isinstance(app.screen, ShipDialog)
        await type_into(pilot, "UPS")
        await pilot.press("enter")  # moves on to the tracking number
        await type_into(pilot, "1Z999AA10123456784")
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is screen
        assert order_row(app, "PB-100002").status == "shipped"
        assert "shipped" in text_of(screen, "#summary-title")
        shipments = text_of(screen, "#shipments .panel-body")
        assert "UPS" in shipments and "1Z999AA10123456784" in shipments
        assert offered_keys(screen)["d"] is True


async def test_status_dialog_routes_ship_to_ship_dialog(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await open_detail(pilot, "PB-100002")
        await pilot.press("s")
        await pilot.pause()
        await pilot.press("enter")  # "Ship" is highlighted first
        await pilot.pause()
        assert isinstance(app.screen, ShipDialog)
        assert order_row(app, "PB-100002").status == "processing"


async def test_mark_delivered_after_confirmation(make_app) -> None:
    app = make_app(factories.WAREHOUSE)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_detail(pilot, "PB-100003")
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        assert order_row(app, "PB-100003").status == "shipped"
        await pilot.press("enter")  # "Mark delivered" has the focus
        await settle(pilot)
        assert app.screen is screen
        assert order_row(app, "PB-100003").status == "delivered"
        assert screen.query_one(Timeline).events[0].event_kind == "delivered"


# -- bad input and conflicts ---------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [("   ", "note cannot be empty"), ("card 4242 4242 4242 4242", "card number")],
    ids=["empty", "card-number"],
)
async def test_bad_note_shows_message_and_changes_nothing(make_app, text, message) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_detail(pilot, "PB-100002")
        before = (order_row(app, "PB-100002").version, event_kinds(app, "PB-100002"))
        await pilot.press("n")
        await pilot.pause()
        dialog = app.screen
        dialog.query_one("#note", Input).value = text
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is dialog  # still open
        assert message in dialog.error_text("note")
        assert dialog.query_one("#note", Input).has_class("-invalid")
        assert (order_row(app, "PB-100002").version, event_kinds(app, "PB-100002")) == before


async def test_empty_ship_fields_show_message_next_to_field(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_detail(pilot, "PB-100002")
        await pilot.press("p")
        await pilot.pause()
        dialog = app.screen
        dialog.query_one("#carrier", Input).value = "DHL"
        dialog.action_submit()
        await settle(pilot)
        assert app.screen is dialog
        assert "tracking number cannot be empty" in dialog.error_text("tracking")
        assert dialog.error_text("carrier") == ""
        assert order_row(app, "PB-100002").status == "processing"


async def test_conflict_reloads_and_says_so(make_app, small_db_path) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_detail(pilot, "PB-100002")
        shown = screen.loaded.detail.order.version
        # someone else, on another desk, changes the order behind the screen's back
        other_engine = make_engine(f"sqlite:///{small_db_path}")
        other = Desk(other_engine, factories.AGENT, clock=lambda: factories.START)
        other.orders.add_note("PB-100002", "Changed elsewhere")
        other_engine.dispose()

        await pilot.press("n")
        await pilot.pause()
        app.screen.query_one("#note", Input).value = "Mine"
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is screen
        assert "changed by someone else — reloaded" in screen.banner_text
        events = screen.query_one(Timeline).events
        assert "Changed elsewhere" in str(events[0].render())
        assert all("Mine" not in str(e.render()) for e in events)
        assert screen.loaded.detail.order.version == shown + 1
        assert event_kinds(app, "PB-100002").count("note") == 1


async def test_escape_goes_back(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_detail(pilot, "PB-100002")
        await pilot.press("n")
        await pilot.pause()
        await pilot.press("escape")  # closes the dialog
        await pilot.pause()
        assert app.screen is screen
        await pilot.press("escape")  # leaves the detail
        await pilot.pause()
        assert not isinstance(app.screen, OrderDetailScreen)
