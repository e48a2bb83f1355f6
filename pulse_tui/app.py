"""PulseApp: the Textual order desk, built by ``build_app`` from a ready Desk.

Nothing here is a module global: the App receives the Desk (services, engine,
acting operator, clock) and optional Settings, so tests hand it a temporary
database and a frozen clock.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from textual import on, work
from textual.app import App
from textual.binding import Binding
from textual.reactive import var
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Header
from textual.worker import Worker, WorkerState

from pulse_tui import messages
from pulse_tui.commands import PROVIDERS
from pulse_tui.config import Settings, save_setting
from pulse_tui.services.desk import Desk
from pulse_tui.services.errors import ServiceError
from pulse_tui.themes.themes import DEFAULT_THEME, THEMES
from pulse_tui.widgets.sync_indicator import SyncIndicator, SyncStatus

if TYPE_CHECKING:
    import httpx

    from pulse_tui.services.payment_sync import PaymentSync, SyncReport

THEMES_DIR = Path(__file__).parent / "themes"
SYNC_GROUP = "payment-sync"
MAIL_GROUP = "mail-delivery"
MAX_SYNC_BACKOFF_S = 300.0  # longest wait between failing runs (unless the interval is longer)
# The payment sync and the email delivery start once the first rows are on
# screen (their first runs import httpx, Jinja2, and hit the database), and at
# the latest this long after the App started.
BACKGROUND_START_S = 3.0
DETAIL_SCREEN = "order-detail"  # the installed detail screen, reused for each order
FULL_GC_EVERY = 100  # generation-1 collections per full one once running (Python's default: 10)


class SyncRunner(Protocol):
    """What the App's sync worker calls: one run, reporting what it did.

    The default is ``GatewaySync`` (settings' gateways over HTTP); tests pass
    a fake. An optional ``async aclose()`` is awaited when the App exits.
    """

    async def run_once(self) -> SyncReport: ...


class GatewaySync:
    """The default runner: PaymentSync over the configured gateways, with one
    shared httpx client (its connection pool) opened on first use."""

    def __init__(self, desk: Desk, settings: Settings) -> None:
        self.desk = desk
        self.settings = settings
        self._client: httpx.AsyncClient | None = None
        self._sync: PaymentSync | None = None

    async def run_once(self) -> SyncReport:
        if self._sync is None:
            from pulse_tui.gateways.sync import build_adapters, make_client
            from pulse_tui.services.payment_sync import PaymentSync

            self._client = make_client()
            adapters = build_adapters(self.settings, self._client)
            self._sync = PaymentSync(self.desk.engine, adapters, clock=self.desk.ctx.clock)
        return await self._sync.run_once()

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
            self._sync = None


def default_sync(desk: Desk, settings: Settings | None) -> SyncRunner | None:
    """A GatewaySync when settings configure a gateway, else None (sync off)."""
    if settings is None or not any(g.configured for g in settings.gateways.values()):
        return None
    return GatewaySync(desk, settings)


class MailRunner(Protocol):
    """What the App's delivery worker calls: one run over the due emails.

    The default is ``services.notifications.MailSender`` (DB and SMTP in
    threads); it returns a DeliveryReport (sent, failed, retried, skipped).
    """

    async def run_once(self) -> Any: ...


class LazyMail:
    """The default mail runner: a MailSender over the settings' mail backend,
    built on the first run (the notifications service imports Jinja2 and the
    address validator: not needed to show the first rows)."""

    def __init__(self, desk: Desk, settings: Settings) -> None:
        self.desk = desk
        self.settings = settings
        self._sender: Any = None

    async def run_once(self) -> Any:
        if self._sender is None:
            from pulse_tui.services.notifications import MailSender

            desk = self.desk
            self._sender = MailSender(desk.engine, self.settings, clock=desk.ctx.clock)
        return await self._sender.run_once()


def default_mail(desk: Desk, settings: Settings | None) -> MailRunner | None:
    """A MailSender over the settings' mail backend (the file backend by
    default; built on its first run), or None without settings.
    ``[notifications] enabled = false`` stops the automatic emails only: what
    agents queue by hand is still sent."""
    if settings is None:
        return None
    return LazyMail(desk, settings)


def _count(value: Any) -> int:
    """A DeliveryReport field as a number (a count, or a list of what it did)."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    try:
        return len(value)
    except TypeError:
        return 0


def delivered_anything(report: Any) -> bool:
    """Whether a delivery run changed any email (so the screens reload)."""
    return any(_count(getattr(report, f, 0)) for f in ("sent", "failed", "retried", "skipped"))


@dataclass(frozen=True)
class SyncResult:
    report: SyncReport
    changed: list[tuple[int, str]]  # (order id, number) of the orders the run changed


def _css_paths() -> list[Path]:
    """pulse.tcss, plus any screen style sheets present (detail.tcss, ...)."""
    paths = [THEMES_DIR / "pulse.tcss"]
    paths += sorted(p for p in THEMES_DIR.glob("*.tcss") if p.name != "pulse.tcss")
    return paths


class PulseApp(App[None]):
    """The order desk. With a ``sync`` runner it also runs the payment sync in
    an async worker every ``sync_interval`` seconds (never blocking the UI)
    and shows how it went in every screen's header."""

    TITLE = "Pulse order desk"
    CSS_PATH = _css_paths()  # a list: screens may add their own sheets next to pulse.tcss
    ENABLE_COMMAND_PALETTE = True
    COMMANDS = App.COMMANDS | PROVIDERS
    BINDINGS = [
        # ctrl+p is a priority binding (it works inside inputs too); ":" is the
        # k9s habit and, not being a priority, still types a colon in the filter.
        Binding("ctrl+p", "command_palette", "Commands", id="palette", show=False, priority=True),
        Binding("colon", "command_palette", "Commands", id="palette.colon", key_display=":"),
        Binding("question_mark", "help", "Help", id="help", key_display="?"),
        Binding("ctrl+t", "cycle_theme", "Theme", id="theme", show=False),
        Binding("F", "refunds", "Refunds", id="refunds", key_display="F"),
        Binding("M", "notifications", "Emails", id="notifications", key_display="M"),
        Binding("q", "quit", "Quit", id="quit"),
    ]

    sync_status: var[SyncStatus] = var(SyncStatus())

    def __init__(
        self,
        desk: Desk,
        *,
        theme: str | None = None,
        settings: Settings | None = None,
        sync: SyncRunner | None = None,
        sync_interval: float | None = None,
        mail: MailRunner | None = None,
        mail_interval: float | None = None,
    ) -> None:
        super().__init__()
        self.desk = desk
        self.settings = settings
        self.sync_runner = sync
        self.mail_runner = mail
        every = mail_interval or getattr(settings, "notify_interval_s", None) or 30.0
        self.mail_interval = max(0.1, float(every))
        self._mail_failures = 0
        self._mail_error: str | None = None
        self._mail_timer: Timer | None = None
        self.mail_report: Any = None  # the last delivery run's report (tests, status)
        self.mail_sent = 0  # emails this App's worker delivered since it started
        interval = sync_interval or (settings.sync_interval_s if settings else 30.0)
        self.sync_interval = max(1.0, float(interval))
        self._sync_failures = 0
        self._sync_timer: Timer | None = None
        self._initial_theme = theme or (settings.theme if settings else None) or DEFAULT_THEME
        self._persist_theme = False
        self._gc_frozen = False
        self._gc_thresholds: tuple[int, int, int] | None = None  # the process's, to restore
        self._background_started = False
        self._background_timer: Timer | None = None
        self._detail_screen: Any = None  # the OrderDetailScreen kept for the next order
        for t in THEMES.values():
            self.register_theme(t)
        actor = desk.actor
        who = actor.display_name or actor.username
        self.sub_title = f"{who} ({actor.username}) · {actor.role.value}"

    def get_default_screen(self):  # type: ignore[no-untyped-def]
        from pulse_tui.screens.order_list import OrderListScreen

        return OrderListScreen()

    def on_load(self) -> None:
        # What exists before the first screen (modules, classes, the parsed
        # style sheets) lives as long as the App: move it out of the cyclic
        # collector's way, or every full collection walks it again.
        gc.freeze()
        self._gc_frozen = True
        # The theme before the first screen is styled: set in on_mount, it
        # parsed and applied every style sheet a second time (20–30 ms).
        name = self._initial_theme if self._initial_theme in self.available_themes else None
        self.theme = name or DEFAULT_THEME

    def first_rows_shown(self) -> None:
        """The first screen shows its rows: freeze what start-up built (widgets,
        styles, caches) too. A full collection then visits only what the App
        allocated since, a few milliseconds instead of 100–200 ms at 1M
        orders, which used to land on every ~12th key press.

        Full collections then come ten times less often (the third threshold
        10 → 100): what the desk allocates while it runs is short-lived rows,
        strips and render caches, rarely garbage in cycles, and a full
        collection still took 10–20 ms at 1M orders, in about one detail open
        of five (the open's p95)."""
        if self._gc_frozen:
            gc.freeze()
            if self._gc_thresholds is None:
                self._gc_thresholds = gc.get_threshold()
                first, second, _third = self._gc_thresholds
                gc.set_threshold(first, second, FULL_GC_EVERY)
        self._start_background()

    def on_mount(self) -> None:
        self._persist_theme = True
        if self.sync_runner is not None:
            self.screen_change_signal.subscribe(self, self._screen_changed)
            self._screen_changed(self.screen)
        if self.sync_runner is not None or self.mail_runner is not None:
            self._background_timer = self.set_timer(
                BACKGROUND_START_S, self._start_background, name="start background work"
            )

    def _start_background(self) -> None:
        """The first payment sync and email delivery runs (once)."""
        if self._background_started:
            return
        self._background_started = True
        if self._background_timer is not None:
            self._background_timer.stop()
            self._background_timer = None
        if self.sync_runner is not None:
            self.run_sync()
        if self.mail_runner is not None:
            self.run_mail()

    async def on_unmount(self) -> None:
        for runner in (self.sync_runner, self.mail_runner):
            close = getattr(runner, "aclose", None)
            if close is not None:
                await close()
        if self._gc_frozen:
            # back to the collector: a process that runs Apps one after the
            # other (tests) must not keep every finished one
            self._gc_frozen = False
            gc.unfreeze()
        if self._gc_thresholds is not None:
            gc.set_threshold(*self._gc_thresholds)
            self._gc_thresholds = None

    def watch_theme(self, name: str) -> None:
        if self._persist_theme and self.settings is not None and name in THEMES:
            self.settings.theme = name
            save_setting("theme", name)

    # -- actions ---------------------------------------------------------

    def action_help(self) -> None:
        from pulse_tui.screens.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            self.pop_screen()
            return
        self.push_screen(HelpScreen(self.screen))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "refunds":
            from pulse_tui.domain.permissions import Permission

            return self.desk.actor.can(Permission.READ_PAYMENTS)
        return True

    def action_notifications(self, tab: str = "all") -> None:
        """The customer emails screen (``tab``: "failed" lists the failed ones);
        back to it when it is already on the stack."""
        from textual.screen import ModalScreen

        from pulse_tui.screens.notifications import NotificationsScreen

        if isinstance(self.screen, ModalScreen):
            return  # not over a dialog or help
        if any(isinstance(s, NotificationsScreen) for s in self.screen_stack):
            while not isinstance(self.screen, NotificationsScreen):
                self.pop_screen()
            self.screen.show_tab(tab)
            return
        self.push_screen(NotificationsScreen(tab))

    def action_refunds(self, tab: str = "all") -> None:
        """The refunds screen (``tab``: "requested" is the approvals queue);
        back to it when it is already on the stack."""
        from textual.screen import ModalScreen

        from pulse_tui.screens.refunds import RefundsScreen

        if isinstance(self.screen, ModalScreen):
            return  # not over a dialog or help
        if any(isinstance(s, RefundsScreen) for s in self.screen_stack):
            while not isinstance(self.screen, RefundsScreen):
                self.pop_screen()
            self.screen.show_tab(tab)
            return
        self.push_screen(RefundsScreen(tab))

    def action_cycle_theme(self) -> None:
        names = list(THEMES)
        i = names.index(self.theme) if self.theme in names else -1
        self.theme = names[(i + 1) % len(names)]

    def set_theme(self, name: str) -> None:
        """Switch theme (palette, tests); persisted when the App has Settings."""
        if name not in self.available_themes:
            self.notify(f"unknown theme {name!r}", severity="error")
            return
        self.theme = name

    # -- payment sync ------------------------------------------------------

    def _screen_changed(self, screen: Screen[Any]) -> None:
        # the screen may not have composed its Header yet: look after a refresh
        self.call_after_refresh(self._attach_indicator, screen, 3)

    def _attach_indicator(self, screen: Screen[Any], tries: int) -> None:
        """Give the screen's Header (if it has one) its sync indicator."""
        if not screen.is_attached:
            return
        headers = list(screen.query(Header).results(Header))
        if not headers:
            if tries > 0:
                self.call_after_refresh(self._attach_indicator, screen, tries - 1)
            return
        header = headers[0]
        if not header.query(SyncIndicator):
            header.add_class("-sync")
            header.mount(SyncIndicator(classes="sync-indicator"))

    def run_sync(self) -> None:
        """Start a sync run now, unless one is running (or sync is off)."""
        if self.sync_runner is None or self._sync_running():
            return
        if self._sync_timer is not None:
            self._sync_timer.stop()
            self._sync_timer = None
        self.sync_status = replace(self.sync_status, phase="running")
        self._sync_worker(self.sync_runner)

    def _sync_running(self) -> bool:
        return any(w.group == SYNC_GROUP and not w.is_finished for w in self.workers)

    @work(exclusive=False, exit_on_error=False, group=SYNC_GROUP, name="payment sync")
    async def _sync_worker(self, runner: SyncRunner) -> SyncResult:
        report = await runner.run_once()
        numbers = list(dict.fromkeys(r.order for r in report.changed if r.order))
        changed = await asyncio.to_thread(self._order_ids, numbers) if numbers else []
        return SyncResult(report, changed)

    def _order_ids(self, numbers: list[str]) -> list[tuple[int, str]]:
        """(id, number) of each changed order (in a thread: it reads the database)."""
        out = []
        for number in numbers:
            try:
                order = self.desk.orders.detail(number).order
            except ServiceError:
                continue
            assert order.id is not None
            out.append((order.id, order.number))
        return out

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group == MAIL_GROUP and worker.node is self:
            if event.state == WorkerState.SUCCESS:
                self._mail_finished(worker.result, None)
            elif event.state == WorkerState.ERROR:
                self._mail_finished(None, worker.error)
            return
        if worker.group != SYNC_GROUP or worker.node is not self:
            return
        if event.state == WorkerState.SUCCESS:
            self._sync_finished(worker.result, None)
        elif event.state == WorkerState.ERROR:
            self._sync_finished(None, worker.error)

    def _sync_finished(self, result: SyncResult | None, error: BaseException | None) -> None:
        now = self.desk.now()
        status = self.sync_status
        if result is not None and result.report.skipped_by:
            status = replace(status, phase="elsewhere", error=None, next_run=None)
            self._sync_failures = 0
        elif result is not None and result.report.ok:
            report = result.report
            when = report.finished_at or now
            status = SyncStatus("ok", last_success=when, changed=len(result.changed))
            self._sync_failures = 0
        else:
            if result is not None:
                message = result.report.errors[-1]
            else:
                message = str(error) or type(error).__name__
            self._sync_failures += 1
            delay = self._retry_delay()
            status = SyncStatus(
                "error",
                last_success=status.last_success,
                error=message,
                next_run=now + timedelta(seconds=delay),
                changed=len(result.changed) if result else 0,
            )
        self.sync_status = status
        if result is not None:
            for order_id, number in result.changed:
                self.post_message(messages.OrderChanged(order_id, number))
        delay = self._retry_delay() if status.phase == "error" else self.sync_interval
        if self.sync_runner is not None and self.is_running:
            self._sync_timer = self.set_timer(delay, self.run_sync, name="next payment sync")

    def _retry_delay(self) -> float:
        """The interval, doubled for each failed run in a row (up to a cap)."""
        if self._sync_failures <= 1:
            return self.sync_interval
        cap = max(self.sync_interval, MAX_SYNC_BACKOFF_S)
        return min(cap, self.sync_interval * 2 ** (self._sync_failures - 1))

    # -- email delivery ----------------------------------------------------

    def run_mail(self) -> None:
        """Start a delivery run now, unless one is running (or delivery is off)."""
        if self.mail_runner is None or self._mail_running():
            return
        if self._mail_timer is not None:
            self._mail_timer.stop()
            self._mail_timer = None
        self._mail_worker(self.mail_runner)

    def _mail_running(self) -> bool:
        return any(w.group == MAIL_GROUP and not w.is_finished for w in self.workers)

    @work(exclusive=False, exit_on_error=False, group=MAIL_GROUP, name="email delivery")
    async def _mail_worker(self, runner: MailRunner) -> Any:
        # MailSender.run_once does its database and SMTP work in threads
        return await runner.run_once()

    def _mail_finished(self, report: Any, error: BaseException | None) -> None:
        """Errors are shown (once per new error), never fatal; failing runs
        back off like the payment sync."""
        if error is None:
            self.mail_report = report
            self.mail_sent += _count(getattr(report, "sent", 0))
            self._mail_failures = 0
            if self._mail_error is not None:
                self.notify("Email delivery works again.", title="Emails")
            self._mail_error = None
            failed = _count(getattr(report, "failed", 0))
            if failed:
                first = next(iter(getattr(report, "errors", None) or []), "")
                self.notify(
                    f"{failed} email{'' if failed == 1 else 's'} could not be delivered"
                    + (f" ({first})" if first else "")
                    + "; see Failed emails (M).",
                    title="Emails",
                    severity="warning",
                )
            if delivered_anything(report):
                self._emails_changed(report)
        else:
            self._mail_failures += 1
            message = str(error) or type(error).__name__
            if message != self._mail_error:
                self.notify(
                    f"Email delivery failed: {message}; retrying later.",
                    title="Emails",
                    severity="error",
                )
            self._mail_error = message
        delay = self.mail_interval
        if self._mail_failures > 1:
            cap = max(self.mail_interval, MAX_SYNC_BACKOFF_S)
            delay = min(cap, self.mail_interval * 2 ** (self._mail_failures - 1))
        if self.mail_runner is not None and self.is_running:
            self._mail_timer = self.set_timer(delay, self.run_mail, name="next email delivery")

    def _emails_changed(self, report: Any) -> None:
        """Sent/failed emails are new timeline events: reload what shows them.

        An open order reloads (quietly: no loading overlay every few seconds)
        when the run wrote on its timeline (``report.orders``); a runner whose
        report does not say reloads every open one."""
        from pulse_tui.screens.notifications import NotificationsScreen
        from pulse_tui.screens.order_detail import OrderDetailScreen

        orders = getattr(report, "orders", None)
        for screen in self.screen_stack:
            if isinstance(screen, NotificationsScreen):
                screen.post_message(NotificationsScreen.Refresh(quiet=True))
            elif isinstance(screen, OrderDetailScreen):
                shown = screen.loaded.detail.order.id if screen.loaded else None
                if orders is None or shown in orders:
                    screen.post_message(OrderDetailScreen.Refresh(shown, quiet=True))

    # -- messages ----------------------------------------------------------

    @on(messages.OpenOrder)
    def open_order(self, message: messages.OpenOrder) -> None:
        try:
            module = importlib.import_module("pulse_tui.screens.order_detail")
            screen_cls = module.OrderDetailScreen
        except (ImportError, AttributeError):
            self.notify("detail screen not available", severity="warning")
            return
        kept = self._detail_screen
        if kept is not None and kept.is_running and kept not in self.screen_stack:
            kept.reopen(message.ref)  # pushes itself when the order has arrived
            return
        screen = screen_cls(message.ref)
        if kept is None:
            # Kept (installed) after it is popped, for the next order: opening
            # an order then updates its panels instead of building ~60 widgets.
            self.install_screen(screen, DETAIL_SCREEN)
            self._detail_screen = screen
        self.push_screen(screen)

    @on(messages.OrderChanged)
    def order_changed(self, message: messages.OrderChanged) -> None:
        """Tell every list on the stack to re-fetch its window and tab counts.

        OrderChanged bubbles up to the App from whichever screen acted; the
        lists hear about it through a non-bubbling Refresh message."""
        from pulse_tui.screens.notifications import NotificationsScreen
        from pulse_tui.screens.order_detail import OrderDetailScreen
        from pulse_tui.screens.order_list import OrderListScreen
        from pulse_tui.screens.refunds import RefundsScreen

        for screen in self.screen_stack:
            if isinstance(screen, OrderListScreen):
                screen.post_message(OrderListScreen.Refresh(message.order_id))
            elif isinstance(screen, OrderDetailScreen):
                screen.post_message(OrderDetailScreen.Refresh(message.order_id))
            elif isinstance(screen, RefundsScreen):
                screen.post_message(RefundsScreen.Refresh())
            elif isinstance(screen, NotificationsScreen):
                screen.post_message(NotificationsScreen.Refresh())


_DEFAULT_SYNC: Any = object()


def build_app(
    desk: Desk,
    *,
    theme: str | None = None,
    settings: Settings | None = None,
    sync: SyncRunner | None = _DEFAULT_SYNC,
    sync_interval: float | None = None,
    mail: MailRunner | None = _DEFAULT_SYNC,
    mail_interval: float | None = None,
) -> PulseApp:
    """The one way to make the App: hand it a ready Desk (and optional Settings).

    ``sync`` runs the payment sync inside the App; by default it is built from
    the settings' configured gateways (none configured, or ``sync=None``: off).
    ``sync_interval`` defaults to ``settings.sync_interval_s``.

    ``mail`` delivers queued customer emails inside the App (an async worker
    every ``mail_interval`` seconds, default ``settings.notify_interval_s``);
    by default a MailSender over the settings' mail backend (no settings or
    ``mail=None``: off; ``pulse notify --watch`` delivers headless).
    """
    if sync is _DEFAULT_SYNC:
        sync = default_sync(desk, settings)
    if mail is _DEFAULT_SYNC:
        mail = default_mail(desk, settings)
    return PulseApp(
        desk,
        theme=theme,
        settings=settings,
        sync=sync,
        sync_interval=sync_interval,
        mail=mail,
        mail_interval=mail_interval,
    )
