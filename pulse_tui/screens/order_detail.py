"""Order detail: summary, lines, customer, payments, shipments and the timeline.

Reads go through ``desk.orders.detail`` in a thread worker; every action opens
a dialog (screens/dialogs.py) whose ``perform`` calls one service with the
version this screen displayed. Success reloads the screen and posts
OrderChanged (the App refreshes the lists); a Conflict reloads and says so.
Which keys are offered comes from the services and the status machine
(``offered_transitions``, ``hold_problem``, ``Actor.can``); the services still
refuse anything not allowed.

Refunds and returns (issue 5): ``f`` opens the refund dialog (screens/refunds.py),
``A`` approves and sends a refund waiting for an admin, ``y`` retries a failed
one, ``x`` requests a return and ``w`` takes an open return's next step
(screens/returns.py). A cancel that made refunds sends them right after.

Customer emails (issue 7): ``e`` writes a free message to the customer
(ComposeDialog, prefilled from ``desk.notifications.compose_draft``), ``E``
sends one of the order's emails again (ResendDialog: a failed one is
retried, a sent one resent). Sent and failed emails are timeline events.

Opening fast (issue 8: enter → detail painted ≤ 100 ms at 1M orders). The App
keeps one detail screen: the first order opened builds it, and it stays
mounted (installed) when popped; the next order refills its panels
(``reopen``) and the screen is pushed when the order has arrived, restyled only
if the theme or the wide/narrow breakpoint changed meanwhile. Building the
screen's ~60 widgets was most of the time an open took (the keys, styles and
layout of a new screen; see benchmarks/README.md).
A new screen reads its order from the constructor on, in a thread, while it
composes and mounts; when it has arrived by ``on_mount`` (the usual case) the
first frame is the whole order, with no loading overlay (the keys follow a
frame later). The footer is rebuilt only when its keys change
(widgets.footer.KeysFooter), reloads update the panels and timeline in place,
and the screen skips the restyles and the second layout Textual would do for
nothing on a fresh push (see the ``_on_*`` handlers).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.markup import escape
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Header, Static
from textual.worker import Worker, WorkerState

from pulse_tui.domain.permissions import Permission
from pulse_tui.domain.refunds import RefundStatus
from pulse_tui.domain.status import Transition, awaiting_payment, hold_problem
from pulse_tui.messages import OrderChanged
from pulse_tui.screens.dialogs import (
    DETAIL_CSS,
    CancelDialog,
    ConfirmDialog,
    HoldDialog,
    NoteDialog,
    Outcome,
    ReleaseDialog,
    ShipDialog,
    StatusDialog,
    TagDialog,
    TransferDialog,
)
from pulse_tui.screens.notifications import (
    RESENDABLE,
    SEND_PERMISSION,
    ComposeDialog,
    ResendDialog,
    describe_notification,
    send_again,
)
from pulse_tui.screens.refunds import (
    PickRefundDialog,
    RefundDialog,
    RefundOutcome,
    describe_refund,
    send_if_approved,
)
from pulse_tui.screens.returns import (
    AuthorizeReturnDialog,
    ExchangeReturnDialog,
    ReceiveReturnDialog,
    RefundReturnDialog,
    RejectReturnDialog,
    RequestReturnDialog,
    ReturnStepDialog,
    offered_steps,
)
from pulse_tui.services.errors import ServiceError
from pulse_tui.services.orders import state_of
from pulse_tui.storage.queries import OrderDetail
from pulse_tui.widgets.footer import KeysFooter
from pulse_tui.widgets.formatting import money
from pulse_tui.widgets.order_panels import (
    CustomerPanel,
    LinesPanel,
    PaymentsPanel,
    ShipmentsPanel,
    SummaryHeader,
)
from pulse_tui.widgets.timeline import Timeline

LOAD_GROUP = "detail-load"
FETCH_GROUP = "detail-fetch"
SEND_GROUP = "detail-send"
RETURNABLE_STATES = ("shipped", "delivered")
BANNER_LEVEL = {"information": "info", "warning": "warning", "error": "error"}
CONFLICT_TEXT = "changed by someone else — reloaded"
WIDE_AT = 110  # columns from which the side panels sit next to lines and timeline
PUSH_AFTER_S = 0.15  # a reopened screen waits this long for its order, then shows loading


def read_order(desk: Any, ref: str | int) -> Loaded:
    """Everything the detail screen shows of one order (blocking: call it in a
    thread). Services raise for an unknown order or a role that may not read
    it; the optional parts (refund options, returns, emails) are left empty
    when their service refuses."""
    d = desk.orders.detail(ref)
    refund_options = None
    if desk.actor.can(Permission.REFUND):
        try:
            refund_options = desk.refunds.options(d.order.id)
        except ServiceError:
            refund_options = None
    returns: list[Any] = []
    try:
        returns = list(desk.returns.list_returns(order_ref=d.order.id))
    except (ImportError, ServiceError):
        returns = []  # no returns service here, or not for this role
    notifications: list[Any] = []
    try:
        notifications = list(desk.notifications.list_notifications(order_ref=d.order.id))
    except ServiceError:
        notifications = []  # no notifications service here, or not for this role
    return Loaded(
        detail=d,
        offered=desk.orders.offered_transitions(d.order),
        now=desk.now(),
        payments_allowed=desk.actor.can(Permission.READ_PAYMENTS),
        refund_options=refund_options,
        returns=returns,
        notifications=notifications,
    )


def warm_up(desk: Any, ref: str | int) -> None:
    """Read one order as the detail screen does, and drop it (blocking: call it
    in a thread worker, e.g. once the list's first rows are on screen).

    A process's first read compiles its SQL statements and configures the ORM
    mappers: about 60 ms of CPU at 1M orders against 7 ms for the next ones,
    so the first order an operator opens is otherwise the slowest. Reads only;
    a failure is ignored (the real open reports its own errors)."""
    with contextlib.suppress(Exception):  # a warm-up never fails its caller
        read_order(desk, ref)


class DetailHeader(Header):
    """Textual's Header, minus a leak.

    Header watches the App's ``title`` and ``sub_title``; Textual drops a dead
    watcher only when that attribute next changes, which the App's title never
    does. So every detail screen opened kept its Header, with its widgets and
    their render caches, for the life of the App: about 7,000 objects per
    open, which every full garbage collection then walked again. Unmounting
    removes this header's App watchers.
    """

    def on_unmount(self) -> None:
        watchers = getattr(self.app, "__watchers", {})  # Textual's (reactive._watch)
        for name in ("title", "sub_title"):
            if name in watchers:
                watchers[name][:] = [(n, cb) for n, cb in watchers[name] if n is not self]


class DetailBody(VerticalScroll):
    """The scrolling body of the detail screen (it holds the focus)."""

    def watch_has_focus(self, _has_focus: bool) -> None:
        # Widget.watch_has_focus restyles the widget *and every descendant*
        # (about 40 here) in case a rule depends on its :focus. No rule of ours
        # or Textual's does for the body (detail.tcss, pulse.tcss, VerticalScroll
        # have no :focus / :focus-within styles for it or inside it): restyle
        # the body alone.
        self.app.stylesheet.update_nodes([self], animate=True)


@dataclass(frozen=True)
class Loaded:
    detail: OrderDetail
    offered: list[Transition]
    now: datetime
    payments_allowed: bool
    refund_options: Any = None  # RefundOptions, for roles that may refund
    returns: list[Any] = field(default_factory=list)  # ReturnRow
    notifications: list[Any] = field(default_factory=list)  # NotificationRow, this order's


class OrderDetailScreen(Screen[None]):
    CSS_PATH = DETAIL_CSS
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (WIDE_AT, "-wide")]
    BINDINGS = [
        Binding("escape", "back", "Back", id="detail.back"),
        Binding("s", "change_status", "Status", id="detail.status"),
        Binding("n", "add_note", "Note", id="detail.note"),
        Binding("h", "hold", "Hold", id="detail.hold"),
        Binding("r", "release", "Release", id="detail.release"),
        Binding("c", "cancel_order", "Cancel", id="detail.cancel"),
        Binding("t", "tag", "Tags", id="detail.tag"),
        Binding("p", "ship", "Ship", id="detail.ship"),
        Binding("d", "deliver", "Delivered", id="detail.deliver"),
        Binding("m", "transfer_received", "Transfer received", id="detail.transfer_received"),
        Binding("f", "refund", "Refund", id="detail.refund"),
        Binding("A", "approve_refund", "Approve refund", id="detail.approve_refund"),
        Binding("y", "retry_refund", "Retry refund", id="detail.retry_refund"),
        Binding("x", "request_return", "Return", id="detail.request_return"),
        Binding("w", "return_step", "Return step", id="detail.return_step"),
        Binding("e", "email_customer", "Email", id="detail.email_customer"),
        Binding(
            "E",
            "resend_email",
            "Resend email",
            id="detail.resend_email",
            key_display="E",
            show=False,
        ),
        Binding("ctrl+r", "reload", "Reload", id="detail.reload", show=False),
        Binding("j", "scroll_body(1)", "Scroll down", id="detail.down", show=False),
        Binding("k", "scroll_body(-1)", "Scroll up", id="detail.up", show=False),
    ]

    class Refresh(Message, bubble=False):
        """An order changed elsewhere (the payment sync, another screen): reload
        if it is the one shown."""

        def __init__(self, order_id: int | None = None, *, quiet: bool = False) -> None:
            super().__init__()
            self.order_id = order_id
            self.quiet = quiet

    def __init__(self, ref: str | int) -> None:
        super().__init__()
        self.ref = ref
        self.title = f"Order {ref}"  # before the header reads it
        self.loaded: Loaded | None = None
        self._resumed = False
        self._resized = False
        # The breakpoint class Textual would add on the first Resize, set before
        # mounting: that Resize then changes no class (a class change restyles
        # every widget of the screen).
        self.add_class("-wide" if self.app.size.width >= WIDE_AT else "-narrow", update=False)
        # Read the order now: the worker thread runs while the screen composes
        # and mounts, instead of after.
        self.loading_detail = True
        self._first_load: Worker[Loaded] = self._load(self.app.desk)  # type: ignore[attr-defined]
        self._finished: Worker[Loaded] | None = None  # the last load shown
        self._push_pending = False  # reopened: push when the order arrives
        self._push_timer: Timer | None = None

    # -- layout --------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield DetailHeader()
        yield Static("", id="detail-banner")
        with DetailBody(id="detail-body"):
            yield SummaryHeader(id="summary")
            with Horizontal(id="detail-columns"):
                with Vertical(id="detail-main"):
                    yield LinesPanel(id="lines")
                    yield Timeline(id="timeline")
                with Vertical(id="detail-side"):
                    yield CustomerPanel(id="customer")
                    yield PaymentsPanel(id="payments")
                    yield ShipmentsPanel(id="shipments")
        yield KeysFooter()

    async def on_mount(self) -> None:
        self.query_one("#detail-body").focus()
        if self._first_load.state in (WorkerState.SUCCESS, WorkerState.ERROR):
            # read while the screen mounted: the first frame is the whole order
            await self._finish_load(self._first_load)
        else:
            self.query_one("#detail-body").loading = True

    async def _on_resize(self, event: events.Resize) -> None:
        # Runs before Screen._on_resize. The first layout of a screen just
        # pushed sends the screen a Resize to the size it was laid out at, and
        # Screen._on_resize would lay it (and the list below) out again at once:
        # a second full reflow and render for nothing. prevent_default ends
        # Textual's walk of the handlers before Screen's. Later Resizes (the
        # terminal's) go through.
        if not self._resized and event.size == self._compositor.size:
            event.prevent_default()
            event.stop()
        self._resized = True

    def on_unmount(self) -> None:
        # Popped and not kept (a detail opened over the kept one): this
        # screen's widgets, styles and caches (~10,000 objects)
        # hang in reference cycles that only a full collection frees. Left to
        # chance, that collection (20-70 ms with the list behind it at 1M
        # orders) lands in the middle of a later key press - in 4 of 10 opens
        # of the next detail, measured. Collect once the list has repainted.
        self.app.call_after_refresh(gc.collect)

    def _on_screen_resume(self, event: events.ScreenResume) -> None:
        # Runs before Screen._on_screen_resume (Textual calls the handler of every
        # class in the MRO), which restyles every widget on the screen. The
        # first resume comes right after mounting, whose styles are fresh; a
        # reopened screen (``reopen``) needs a restyle only if the CSS changed
        # (a theme) or the terminal crossed the wide/narrow breakpoint while
        # it was off the stack.
        wide = self.app.size.width >= WIDE_AT
        if self.has_class("-wide") != wide:
            self.set_class(wide, "-wide", update=False)
            self.set_class(not wide, "-narrow", update=False)
        elif not self._resumed or self._css_update_count == self.app._css_update_count:
            event.refresh_styles = False
        self._resumed = True
        self._css_update_count = self.app._css_update_count

    # -- reuse -----------------------------------------------------------------

    def reopen(self, ref: str | int) -> None:
        """Show another order on this screen, which is off the stack but still
        mounted (the App keeps one detail screen installed): reset to ``ref``,
        read it in a thread and push this screen when the order has arrived,
        so the first frame is the new order with nothing of the last one.
        A read slower than ``PUSH_AFTER_S`` pushes the screen with its loading
        overlay instead."""
        self.ref = ref
        self.loaded = None
        self._finished = None
        self.title = f"Order {ref}"
        self.set_banner("")
        self.query_one("#detail-columns").display = True
        self.query_one("#summary", SummaryHeader).display = True
        self.query_one("#detail-body", DetailBody).scroll_home(animate=False)
        self.loading_detail = True
        self._push_pending = True
        if self._push_timer is not None:  # an order opened just before this one
            self._push_timer.stop()
        self._push_timer = self.set_timer(PUSH_AFTER_S, self._push_loading)
        self._load(self.app.desk)  # type: ignore[attr-defined]

    def _push_loading(self) -> None:
        if self._push_pending:
            self.query_one("#detail-body").loading = True
            self._push()

    def _push(self) -> None:
        self._push_pending = False
        if self._push_timer is not None:
            self._push_timer.stop()
            self._push_timer = None
        if self not in self.app.screen_stack:
            self.app.push_screen(self)

    # -- loading ---------------------------------------------------------------

    @property
    def detail(self) -> OrderDetail | None:
        return self.loaded.detail if self.loaded else None

    def load(self, *, quiet: bool = False) -> None:
        """Read the order again in a thread; ``quiet`` (a background refresh,
        e.g. the email delivery worker) keeps the screen and its keys as they
        are until the new state arrives, with no loading overlay."""
        if not quiet:
            self.loading_detail = True
            self.query_one("#detail-body").loading = True
        self._load(self.app.desk)  # type: ignore[attr-defined]

    @work(thread=True, exclusive=True, exit_on_error=False, group=LOAD_GROUP)
    def _load(self, desk: Any) -> Loaded:
        order_id = self.loaded.detail.order.id if self.loaded else None
        return read_order(desk, self.ref if order_id is None else order_id)

    async def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group in (FETCH_GROUP, SEND_GROUP):
            self._side_work_done(event)
            return
        if worker.group != LOAD_GROUP or event.state not in (
            WorkerState.SUCCESS,
            WorkerState.ERROR,
        ):
            return
        await self._finish_load(worker)

    async def _finish_load(self, worker: Worker[Loaded]) -> None:
        """Show what a load worker read (or its error), once per worker."""
        if worker is self._finished:
            return  # shown from on_mount already
        self._finished = worker
        if self._push_pending:
            self._push()
        if worker.state == WorkerState.SUCCESS:
            await self.show_loaded(worker.result)  # type: ignore[arg-type]
        else:
            error = worker.error
            text = error.message if isinstance(error, ServiceError) else f"could not load: {error}"
            self.set_banner(text, "error")
            if self.loaded is None:
                self.query_one("#detail-columns").display = False
                self.query_one("#summary", SummaryHeader).display = False
            await self._loading_done()
        self.refresh_bindings()

    async def _loading_done(self) -> None:
        self.loading_detail = False
        self.query_one("#detail-body").loading = False

    async def show_loaded(self, loaded: Loaded) -> None:
        self.loaded = loaded
        d, now = loaded.detail, loaded.now
        self.title = f"Order {d.order.number}"
        self.query_one("#summary", SummaryHeader).show(d, now)
        self.query_one("#lines", LinesPanel).show(d, now)
        self.query_one("#customer", CustomerPanel).show(d, now, emails=loaded.notifications)
        self.query_one("#payments", PaymentsPanel).show(
            d, now, allowed=loaded.payments_allowed, returns=loaded.returns
        )
        self.query_one("#shipments", ShipmentsPanel).show(d, now)
        await self.query_one("#timeline", Timeline).show(d.events, now)
        await self._loading_done()

    @on(Refresh)
    def _refresh(self, message: Refresh) -> None:
        if self.loaded is None:
            return  # the first load is on its way and will see the change
        if message.order_id is None or message.order_id == self.loaded.detail.order.id:
            self.load(quiet=message.quiet)

    def set_banner(self, text: str, level: str = "info") -> None:
        banner = self.query_one("#detail-banner", Static)
        banner.set_classes(f"-{level}" if text else "")
        banner.update(escape(text))
        banner.display = bool(text)

    @property
    def banner_text(self) -> str:
        banner = self.query_one("#detail-banner", Static)
        return str(banner.render()) if banner.display else ""

    # -- which keys are offered ---------------------------------------------

    def _can(self, permission: Permission) -> bool:
        return bool(self.app.desk.actor.can(permission))  # type: ignore[attr-defined]

    def _offered_actions(self) -> set[str]:
        return {t.action for t in self.loaded.offered} if self.loaded else set()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """False hides a key the role may never use; None greys out one that
        the order's state does not allow right now."""
        needs = {
            "change_status": None,
            "add_note": Permission.NOTE,
            "hold": Permission.HOLD,
            "release": Permission.HOLD,
            "cancel_order": Permission.CANCEL,
            "tag": Permission.EDIT,
            "ship": Permission.FULFIL,
            "deliver": Permission.FULFIL,
            "transfer_received": Permission.HOLD,  # the services' "confirm payments"
        }
        if action in RETURN_ACTIONS:
            return self._check_refund_action(action)
        if action in EMAIL_ACTIONS:
            return self._check_email_action(action)
        if action not in needs:
            return True
        permission = needs[action]
        if action == "change_status":
            if not any(
                self._can(p) for p in (Permission.FULFIL, Permission.HOLD, Permission.CANCEL)
            ):
                return False
        elif permission is not None and not self._can(permission):
            return False
        if self.loaded is None or self.loading_detail:
            return None
        order = self.loaded.detail.order
        if action in ("hold", "release"):
            holding = action == "hold"
            if order.on_hold == holding:
                return False  # only one of hold / release is shown at a time
            return hold_problem(state_of(order), hold=holding) is None or None
        if action == "change_status":
            return bool(self.loaded.offered) or None
        if action == "cancel_order":
            return "cancel" in self._offered_actions() or None
        if action in ("ship", "deliver"):
            return action in self._offered_actions() or None
        if action == "transfer_received":
            if not awaiting_payment(state_of(order)):
                return False
            return not order.on_hold or None  # on hold: release first (services say so)
        return True

    # -- actions -------------------------------------------------------------

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()

    def action_reload(self) -> None:
        self.set_banner("")
        self.load()

    def action_scroll_body(self, direction: int) -> None:
        body = self.query_one("#detail-body", VerticalScroll)
        if direction > 0:
            body.scroll_down()
        else:
            body.scroll_up()

    def _perform(self, use_case: str) -> Callable[..., Any]:
        """A call to ``desk.orders.<use_case>`` pinned to the version shown."""
        assert self.loaded is not None
        order = self.loaded.detail.order
        method = getattr(self.app.desk.orders, use_case)  # type: ignore[attr-defined]
        order_id, version = order.id, order.version

        def perform(**values: Any) -> Any:
            return method(order_id, expected_version=version, **values)

        return perform

    def _open(self, dialog: Any, done: str) -> None:
        self.app.push_screen(dialog, lambda outcome: self._after(outcome, done))

    def _after(self, outcome: Outcome | None, done: str) -> None:
        if outcome is None or self.loaded is None:
            return
        order = self.loaded.detail.order
        if outcome.kind == "route":
            routes = {
                "ship": self.action_ship,
                "cancel": self.action_cancel_order,
                "deliver": self.action_deliver,
            }
            routes[outcome.route]()
            return
        if outcome.kind == "conflict":
            self.set_banner(
                f"{order.number} {CONFLICT_TEXT}; your change was not applied", "warning"
            )
            self.notify(f"{order.number} {CONFLICT_TEXT}", severity="warning")
        else:
            self.set_banner("")
            self.notify(f"{order.number}: {done}")
            if done == "cancelled" and self._can(Permission.REFUND):
                # the cancel made its refunds; this door sends them (the
                # payment sync's recovery catches anything left)
                self._send_approved(self.app.desk, order.id)  # type: ignore[attr-defined]
        # lists and counts may show the old state either way
        self.post_message(OrderChanged(order.id, order.number))  # type: ignore[arg-type]
        self.load()

    def action_change_status(self) -> None:
        if self.loaded is None:
            return
        order = self.loaded.detail.order
        dialog = StatusDialog(
            order.number,
            self._perform("transition"),
            current=order.status,
            offered=self.loaded.offered,
        )
        self._open(dialog, "status changed")

    def action_add_note(self) -> None:
        if self.loaded is None:
            return
        number = self.loaded.detail.order.number
        self._open(NoteDialog(number, self._perform("add_note")), "note added")

    def action_hold(self) -> None:
        if self.loaded is None:
            return
        number = self.loaded.detail.order.number
        self._open(HoldDialog(number, self._perform("hold")), "put on hold")

    def action_release(self) -> None:
        if self.loaded is None:
            return
        order = self.loaded.detail.order
        dialog = ReleaseDialog(
            order.number, self._perform("release"), hold_reason=order.hold_reason
        )
        self._open(dialog, "released from hold")

    def action_cancel_order(self) -> None:
        if self.loaded is None:
            return
        order = self.loaded.detail.order
        due = order.paid - order.refunded
        consequence = "Reserved stock is released."
        if due > 0:
            consequence += f" {money(due, order.currency)} paid: a refund is requested."
        dialog = CancelDialog(order.number, self._perform("cancel"), consequence=consequence)
        self._open(dialog, "cancelled")

    def action_tag(self) -> None:
        if self.loaded is None:
            return
        d = self.loaded.detail
        self._open(TagDialog(d.order.number, self._perform("tag"), tags=d.tags), "tags updated")

    def action_ship(self) -> None:
        if self.loaded is None:
            return
        number = self.loaded.detail.order.number
        self._open(ShipDialog(number, self._perform("ship")), "shipped")

    def action_transfer_received(self) -> None:
        if self.loaded is None:
            return
        order = self.loaded.detail.order
        dialog = TransferDialog(
            order.number,
            self._perform("confirm_payment"),
            amount=money(order.total - order.paid, order.currency),
        )
        self._open(dialog, "bank transfer recorded")

    def action_deliver(self) -> None:
        if self.loaded is None:
            return
        number = self.loaded.detail.order.number
        dialog = ConfirmDialog(
            number,
            self._perform("deliver"),
            title="Mark delivered",
            message=f"Mark {escape(number)} as delivered to the customer?",
            yes="Mark delivered",
        )
        self._open(dialog, "marked delivered")

    # -- refunds and returns ---------------------------------------------------

    def _check_refund_action(self, action: str) -> bool | None:
        """Refund / return keys: hidden for roles that may never use them (and
        approve, retry and return step when the order has nothing to act on);
        greyed out while the order's state does not allow them."""
        if action == "refund":
            if not self._can(Permission.REFUND):
                return False
            if self.loaded is None or self.loading_detail:
                return None
            options = self.loaded.refund_options
            return (options is not None and options.refundable > 0) or None
        if action == "request_return":
            if not self._can(Permission.REFUND):
                return False
            if self.loaded is None or self.loading_detail:
                return None
            order = self.loaded.detail.order
            shipped = any(ln.qty_fulfilled > 0 for ln in self.loaded.detail.lines)
            return (order.status in RETURNABLE_STATES and shipped) or None
        if self.loaded is None:
            return False
        if action == "approve_refund":
            if not self._can(Permission.REFUND_ANY) or not self._refunds(RefundStatus.REQUESTED):
                return False
        elif action == "retry_refund":
            if not self._can(Permission.REFUND) or not self._refunds(RefundStatus.FAILED):
                return False
        elif action == "return_step" and not self._return_choices():
            return False
        return not self.loading_detail or None

    def _refunds(self, status: RefundStatus) -> list[Any]:
        if self.loaded is None:
            return []
        return [r for r in self.loaded.detail.refunds if r.status == status]

    def _return_choices(self) -> list[tuple[Any, str]]:
        if self.loaded is None:
            return []
        return [
            (ret, step) for ret in self.loaded.returns for step in offered_steps(ret, self._can)
        ]

    def _report(self, text: str, level: str) -> None:
        self.set_banner(text, BANNER_LEVEL.get(level, "info"))
        self.notify(text, severity=level)  # type: ignore[arg-type]

    def _changed(self) -> None:
        if self.loaded is None:
            return
        order = self.loaded.detail.order
        self.post_message(OrderChanged(order.id, order.number))  # type: ignore[arg-type]
        self.load()

    def action_refund(self) -> None:
        if self.loaded is None:
            return
        order = self.loaded.detail.order
        self.app.push_screen(RefundDialog(order.id, order.number), self._after_refund)  # type: ignore[arg-type]

    def _after_refund(self, outcome: RefundOutcome | None) -> None:
        if outcome is None or self.loaded is None:
            return
        number = self.loaded.detail.order.number
        if outcome.kind == "conflict":
            self._report(f"{number} {CONFLICT_TEXT}; no refund was made", "warning")
        else:
            self._report(*outcome.text())
        self._changed()

    def _after_refund_step(self, outcome: Outcome | None) -> None:
        if outcome is None or outcome.kind != "done":
            return
        self._report(*describe_refund(outcome.result))
        self._changed()

    def action_approve_refund(self) -> None:
        waiting = self._refunds(RefundStatus.REQUESTED)
        if self.loaded is None or not waiting:
            return
        desk = self.app.desk  # type: ignore[attr-defined]

        def perform(refund_id: int) -> Any:
            return send_if_approved(desk, desk.refunds.approve(refund_id))

        dialog = PickRefundDialog(
            self.loaded.detail.order.number,
            perform,
            refunds=waiting,
            title="Approve refund",
            submit="Approve & send",
            message="Approved refunds are sent to the gateway at once.",
        )
        self.app.push_screen(dialog, self._after_refund_step)

    def action_retry_refund(self) -> None:
        failed = self._refunds(RefundStatus.FAILED)
        if self.loaded is None or not failed:
            return
        desk = self.app.desk  # type: ignore[attr-defined]

        def perform(refund_id: int) -> Any:
            return send_if_approved(desk, desk.refunds.retry(refund_id))

        dialog = PickRefundDialog(
            self.loaded.detail.order.number,
            perform,
            refunds=failed,
            title="Retry refund",
            submit="Retry",
            message="A new attempt is sent to the gateway.",
        )
        self.app.push_screen(dialog, self._after_refund_step)

    # customer emails

    def _check_email_action(self, action: str) -> bool | None:
        """Hidden for roles that may not email customers (and resend when the
        order has no sent or failed email); greyed out while loading."""
        if not self._can(SEND_PERMISSION):
            return False
        if action == "resend_email" and not self._resendable():
            return False
        if self.loaded is None or self.loading_detail:
            return None
        return True

    def _resendable(self) -> list[Any]:
        if self.loaded is None:
            return []
        return [n for n in self.loaded.notifications if n.status in RESENDABLE]

    def action_email_customer(self) -> None:
        """Compose a free message: the draft (subject, body with the order's
        details) is fetched in a thread, then the dialog opens prefilled."""
        if self.loaded is None:
            return
        d = self.loaded.detail
        order = d.order
        desk = self.app.desk  # type: ignore[attr-defined]
        order_id, version, number = order.id, order.version, order.number
        to = d.customer.email

        def perform(subject: str, body: str) -> Any:
            return desk.notifications.compose(order_id, subject, body, expected_version=version)

        def show(draft: tuple[str, str]) -> None:
            subject, body = draft
            dialog = ComposeDialog(number, perform, to=to, subject=subject, body=body)
            self.app.push_screen(dialog, self._after_email)

        self._fetch(lambda: desk.notifications.compose_draft(order_id), show)

    def action_resend_email(self) -> None:
        choices = self._resendable()
        if self.loaded is None or not choices:
            return
        desk = self.app.desk  # type: ignore[attr-defined]

        def perform(notification_id: int, status: str) -> Any:
            return send_again(desk, notification_id, status)

        dialog = ResendDialog(
            self.loaded.detail.order.number, perform, notifications=choices, now=self.loaded.now
        )
        self.app.push_screen(dialog, self._after_email)

    def _after_email(self, outcome: Outcome | None) -> None:
        if outcome is None or self.loaded is None:
            return
        number = self.loaded.detail.order.number
        if outcome.kind == "conflict":
            self._report(f"{number} {CONFLICT_TEXT}; no email was queued", "warning")
        elif outcome.kind == "done":
            self.set_banner("")
            text, level = describe_notification(outcome.result, "queued")
            self.notify(text, severity=level)  # type: ignore[arg-type]
        self._changed()

    # returns

    @work(thread=True, exclusive=True, exit_on_error=False, group=FETCH_GROUP)
    def _fetch(self, fn: Callable[[], Any], then: Callable[[Any], None]) -> tuple[Any, Any]:
        return fn(), then

    @work(thread=True, exclusive=True, exit_on_error=False, group=SEND_GROUP)
    def _send_approved(self, desk: Any, order_id: int) -> list[Any]:
        """After a cancel: send the refunds it made (approved ones) now."""
        rows = desk.refunds.list_refunds(order_ref=order_id, status="approved")
        return [send_if_approved(desk, r) for r in rows]

    def _side_work_done(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if event.state == WorkerState.ERROR:
            error = worker.error
            text = error.message if isinstance(error, ServiceError) else str(error)
            self.set_banner(text, "error")
            self.notify(text, severity="error")
        elif event.state == WorkerState.SUCCESS:
            if worker.group == FETCH_GROUP:
                result, then = worker.result
                then(result)
            else:
                for refund in worker.result:
                    self._report(*describe_refund(refund))
                self._changed()

    def action_request_return(self) -> None:
        if self.loaded is None:
            return
        order = self.loaded.detail.order
        desk = self.app.desk  # type: ignore[attr-defined]
        order_id, version, number = order.id, order.version, order.number

        def perform(lines: list[tuple[str, int]], reason: str, note: str | None) -> Any:
            from pulse_tui.services.returns import ReturnPick

            picks = [ReturnPick(sku=sku, quantity=qty) for sku, qty in lines]
            return desk.returns.request(
                order_id, lines=picks, reason=reason, note=note, expected_version=version
            )

        def show(options: Any) -> None:
            dialog = RequestReturnDialog(number, perform, options=options)
            self._open(dialog, "return requested")

        self._fetch(lambda: desk.returns.options(order_id), show)

    def action_return_step(self) -> None:
        choices = self._return_choices()
        if self.loaded is None or not choices:
            return
        number = self.loaded.detail.order.number

        def route(outcome: Outcome | None) -> None:
            if outcome is None or outcome.kind != "route":
                return
            step, _, rid = outcome.route.partition(":")
            for ret, s in choices:
                if s == step and str(ret.id) == rid:
                    self.open_return_step(ret, step)
                    return

        self.app.push_screen(ReturnStepDialog(number, choices=choices), route)

    def open_return_step(self, ret: Any, step: str) -> None:
        """The dialog for one step of one return (also used by tests)."""
        if self.loaded is None:
            return
        order = self.loaded.detail.order
        number, currency, version = order.number, order.currency, order.version
        svc = self.app.desk.returns  # type: ignore[attr-defined]
        desk = self.app.desk  # type: ignore[attr-defined]
        rid = int(ret.id)
        if step == "authorize":
            dialog: Any = AuthorizeReturnDialog(
                number,
                lambda note: svc.authorize(rid, note=note, expected_version=version),
                ret=ret,
            )
            self._open(dialog, f"return #{rid} authorized")
        elif step == "reject":
            dialog = RejectReturnDialog(
                number,
                lambda note: svc.reject(rid, note=note, expected_version=version),
                ret=ret,
            )
            self._open(dialog, f"return #{rid} rejected")
        elif step == "receive":

            def receive(items: list[tuple[str, int, str]]) -> Any:
                from pulse_tui.services.returns import ReceivedItem

                got = [ReceivedItem(sku=s, quantity=q, condition=c) for s, q, c in items]
                return svc.receive(rid, got, expected_version=version)

            self._open(ReceiveReturnDialog(number, receive, ret=ret), f"return #{rid} received")
        elif step == "refund":

            def refund(**values: Any) -> Any:
                return send_if_approved(desk, svc.refund(rid, **values))

            options = self.loaded.refund_options
            dialog = RefundReturnDialog(
                number,
                refund,
                ret=ret,
                payments=options.payments if options else (),
                currency=currency,
                may_approve=bool(options and options.may_approve),
                shipping=options.shipping_refundable if options else 0,
            )
            self.app.push_screen(dialog, self._after_refund_step)
        elif step == "exchange":

            def exchanged(outcome: Outcome | None) -> None:
                if outcome is None or outcome.kind != "done":
                    return
                res = outcome.result
                diff = int(getattr(res, "difference", 0))
                text = f"Return #{rid} exchanged: new order {res.order_number}"
                if diff > 0:
                    text += f"; the customer owes {money(diff, currency)}"
                elif diff < 0:
                    text += f"; {money(-diff, currency)} is refunded"
                self._report(text, "information")
                self._changed()

            def exchange(replacement: list[tuple[str, int]]) -> Any:
                res = svc.exchange(rid, replacement, expected_version=version)
                if res.refund_id is not None:  # we owe the difference: send it
                    send_if_approved(desk, desk.refunds.get(res.refund_id))
                return res

            dialog = ExchangeReturnDialog(number, exchange, ret=ret)
            self.app.push_screen(dialog, exchanged)


EMAIL_ACTIONS = frozenset({"email_customer", "resend_email"})
RETURN_ACTIONS = frozenset(
    {"refund", "approve_refund", "retry_refund", "request_return", "return_step"}
)
