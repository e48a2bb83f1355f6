"""Action dialogs on their own: how they treat each service outcome.

``perform`` stands in for the service call; the dialog must stay open and
show the message by the right field on InvalidInput / RuleViolation / Denied,
dismiss with "conflict" on Conflict and with "done" on success.
"""

from __future__ import annotations

from typing import Any

import pytest
from textual.app import App
from textual.widgets import Input, OptionList, Select

from pulse_tui.domain.permissions import Permission
from pulse_tui.domain.status import OrderStatus, Transition
from pulse_tui.screens.dialogs import (
    CancelDialog,
    ConfirmDialog,
    HoldDialog,
    NoteDialog,
    Outcome,
    ShipDialog,
    StatusDialog,
    TagDialog,
)
from pulse_tui.services.errors import Conflict, Denied, InvalidInput, RuleViolation

pytestmark = pytest.mark.anyio


class Recorder:
    """A stand-in service call: records its arguments, then returns or raises."""

    def __init__(self, result: Any = "order", error: Exception | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.result = result
        self.error = error

    def __call__(self, **values: Any) -> Any:
        self.calls.append(values)
        if self.error is not None:
            raise self.error
        return self.result


class Host(App[None]):
    def __init__(self, dialog: Any) -> None:
        super().__init__()
        self.dialog = dialog
        self.outcomes: list[Outcome | None] = []

    def on_mount(self) -> None:
        self.push_screen(self.dialog, self.outcomes.append)


async def settle(pilot: Any) -> None:
    for _ in range(2):
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def test_success_dismisses_with_the_result() -> None:
    perform = Recorder(result="changed")
    app = Host(NoteDialog("PB-1", perform))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("h", "i")
        await pilot.press("enter")
        await settle(pilot)
        assert perform.calls == [{"text": "hi"}]
        assert app.outcomes == [Outcome("done", result="changed")]


@pytest.mark.parametrize(
    ("error", "field"),
    [
        (InvalidInput("note cannot be empty"), "note"),
        (RuleViolation("PB-1: a cancelled order cannot change"), None),
        (Denied("vic: a viewer may not add notes"), None),
    ],
    ids=["invalid-input", "rule-violation", "denied"],
)
async def test_refusal_keeps_dialog_open_with_message(error: Exception, field: str | None) -> None:
    perform = Recorder(error=error)
    dialog = NoteDialog("PB-1", perform)
    app = Host(dialog)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is dialog and app.outcomes == []
        assert dialog.error_text(field) == str(error)
        # the message is not duplicated elsewhere
        other = "note" if field is None else None
        assert dialog.error_text(other) == ""
        assert not dialog.query_one("#submit").disabled  # can retry


async def test_conflict_dismisses_so_the_screen_reloads() -> None:
    perform = Recorder(error=Conflict("PB-1 was changed by someone else"))
    app = Host(HoldDialog("PB-1", perform))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("x")
        await pilot.press("enter")
        await settle(pilot)
        assert app.outcomes == [Outcome("conflict", message="PB-1 was changed by someone else")]


async def test_errors_are_cleared_on_retry() -> None:
    perform = Recorder(error=InvalidInput("hold reason cannot be empty"))
    dialog = HoldDialog("PB-1", perform)
    app = Host(dialog)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("enter")
        await settle(pilot)
        assert "hold reason cannot be empty" in dialog.error_text("reason")
        perform.error = None
        await pilot.press("o", "k", "enter")
        await settle(pilot)
        assert perform.calls[-1] == {"reason": "ok"}
        assert app.outcomes == [Outcome("done", result="order")]


async def test_ship_routes_errors_to_their_field() -> None:
    perform = Recorder(error=InvalidInput("carrier cannot be empty"))
    dialog = ShipDialog("PB-1", perform)
    app = Host(dialog)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        dialog.action_submit()
        await settle(pilot)
        assert dialog.error_text("carrier") == "carrier cannot be empty"
        assert dialog.error_text("tracking") == ""
        assert dialog.focused is dialog.query_one("#carrier", Input)


async def test_tag_dialog_splits_and_routes_bad_tag() -> None:
    perform = Recorder(error=InvalidInput("bad tag 'no!': letters, digits"))
    dialog = TagDialog("PB-1", perform, tags=["vip"])
    app = Host(dialog)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        dialog.query_one("#add", Input).value = "rush, gift  wrap"
        dialog.query_one("#remove", Input).value = "no!"
        dialog.action_submit()
        await settle(pilot)
        assert perform.calls == [{"add": ["rush", "gift", "wrap"], "remove": ["no!"]}]
        assert "bad tag" in dialog.error_text("remove")
        assert dialog.error_text("add") == ""


async def test_cancel_needs_a_reason_before_confirming() -> None:
    perform = Recorder()
    dialog = CancelDialog("PB-1", perform)
    app = Host(dialog)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        dialog.action_submit()
        await pilot.pause()
        assert app.screen is dialog
        assert dialog.error_text("reason") == "choose a reason"
        assert perform.calls == []

        dialog.query_one("#reason", Select).value = "out_of_stock"
        dialog.action_submit()
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("y")
        await settle(pilot)
        assert perform.calls == [{"reason": "out_of_stock", "note": None}]
        assert app.outcomes == [Outcome("done", result="order")]


def _transition(target: OrderStatus, action: str, label: str) -> Transition:
    return Transition(OrderStatus.PENDING, target, action, label, Permission.HOLD)


async def test_status_dialog_performs_plain_transitions_and_routes_others() -> None:
    offered = [
        _transition(OrderStatus.PROCESSING, "start_processing", "Start processing"),
        _transition(OrderStatus.CANCELLED, "cancel", "Cancel"),
    ]
    perform = Recorder()
    dialog = StatusDialog("PB-1", perform, current="pending", offered=offered)
    app = Host(dialog)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        options = dialog.query_one("#transition", OptionList)
        assert options.option_count == 2
        await pilot.press("down", "enter")  # Cancel: needs the cancel dialog
        await settle(pilot)
        assert app.outcomes == [Outcome("route", route="cancel")]
        assert perform.calls == []

    perform = Recorder()
    app = Host(StatusDialog("PB-1", perform, current="pending", offered=offered))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("enter")  # Start processing: done here
        await settle(pilot)
        assert perform.calls == [{"target": "processing"}]
        assert app.outcomes == [Outcome("done", result="order")]


async def test_confirm_no_changes_nothing() -> None:
    perform = Recorder()
    app = Host(ConfirmDialog("PB-1", perform, title="Mark delivered", message="Sure?"))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("n")
        await settle(pilot)
        assert perform.calls == [] and app.outcomes == [None]
