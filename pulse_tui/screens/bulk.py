"""Bulk actions for the order list's selection: preview, apply with progress, export.

The screen is a thin door over ``services.bulk`` and ``services.export``:

1. choose the action on the left (only the kinds ``BulkService.allowed_kinds``
   offers, plus export for roles that may export) and fill its fields;
2. **preview** (``p``, or enter in a field) runs ``BulkService.preview`` in a
   thread worker and shows matched / eligible / skipped-by-reason; nothing
   has changed yet. Editing any field drops the preview;
3. **apply** (``a``, enabled only when something is eligible; cancel asks
   for a confirmation first) runs ``BulkService.apply`` in a thread worker
   with the previewed request. A ProgressBar follows ``on_progress``; ``esc``
   asks the service to stop after its current chunk (every order is either
   fully changed or untouched);
4. the results view lists changed / skipped counts, reasons and samples, and
   the lists underneath refresh.

Export (``x``) writes the selection with ``export_orders`` the same way.
Emailing the customers (``BulkKind.NOTIFY``) picks a template and goes
through the same preview and apply.
The screen decides no rule and no permission: the services say which orders
are eligible and refuse what a role may not do.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.markup import escape
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import (
    Button,
    Checkbox,
    ContentSwitcher,
    Footer,
    Header,
    Input,
    Label,
    OptionList,
    ProgressBar,
    Select,
    SelectionList,
    Static,
)
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState

from pulse_tui.domain.notifications import FREE_MESSAGE, TEMPLATE_TITLES
from pulse_tui.domain.permissions import Permission
from pulse_tui.domain.status import CancelReason, OrderStatus
from pulse_tui.services.bulk import (
    BulkKind,
    BulkRequest,
    BulkResult,
    BulkService,
    Preview,
    Progress,
    Selection,
    read_tracking_csv,
)
from pulse_tui.services.errors import InvalidInput, ServiceError
from pulse_tui.services.export import (
    DEFAULT_COLUMNS,
    EXPORT_COLUMNS,
    ExportCancelled,
    ExportFormat,
    export_orders,
)
from pulse_tui.widgets.status_tabs import fmt_count

PREVIEW_GROUP = "bulk-preview"
APPLY_GROUP = "bulk-apply"
EXPORT_GROUP = "bulk-export"
EXPORT = "export"  # the export "kind": not a BulkKind, it changes no order

KIND_LABELS: dict[str, str] = {
    BulkKind.TRANSITION: "Change status",
    BulkKind.SHIP: "Ship",
    BulkKind.HOLD: "Put on hold",
    BulkKind.RELEASE: "Release hold",
    BulkKind.TAG: "Add/remove tag",
    BulkKind.NOTE: "Add note",
    BulkKind.CANCEL: "Cancel orders",
    BulkKind.NOTIFY: "Email customers",
    EXPORT: "Export",
}
# The templates a bulk email may use: every shipped one but the free message
# (it needs a subject and body of its own).
NOTIFY_TEMPLATES = tuple(t for t in TEMPLATE_TITLES if t != FREE_MESSAGE)


def kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind) or str(kind).replace("_", " ").capitalize()


# Statuses a plain transition can reach; shipping needs carrier and tracking
# (Ship), cancelling a reason (Cancel), refunds come from the refund process.
TRANSITION_TARGETS = (OrderStatus.PROCESSING, OrderStatus.DELIVERED)


def bulk_service(app: App[Any]) -> BulkService:
    """The bulk service of the app's desk (one place to switch to ``desk.bulk``)."""
    return BulkService(app.desk.ctx)  # type: ignore[attr-defined]


def may_export(app: App[Any]) -> bool:
    return bool(app.desk.actor.can(Permission.EXPORT))  # type: ignore[attr-defined]


def bulk_access(app: App[Any]) -> bool:
    """Whether the acting operator is offered selection and bulk actions at all."""
    return bool(bulk_service(app).allowed_kinds()) or may_export(app)


@dataclass(frozen=True)
class BulkOutcome:
    """What the screen did, for the list that opened it (it clears a selection used up)."""

    applied: bool = False
    cancelled: bool = False
    exported: bool = False


@dataclass(frozen=True)
class Draft:
    """The form's values, turned into a BulkRequest in the preview worker
    (the ship form names a CSV file that has to be read first)."""

    kind: BulkKind
    target: str | None = None
    reason: str | None = None
    text: str | None = None
    remove: bool = False
    carrier: str | None = None
    csv_path: str | None = None


@dataclass(frozen=True)
class ExportDraft:
    fmt: ExportFormat
    path: str
    columns: tuple[str, ...]
    force: bool


def describe(request: BulkRequest, csv_path: str | None = None) -> str:
    """Human words for what a request does: 'change status to delivered'."""
    kind = request.kind
    if kind == BulkKind.TRANSITION:
        return f"change status to {request.target}"
    if kind == BulkKind.SHIP:
        n = len(request.tracking or {})
        src = f" from {Path(csv_path).name}" if csv_path else ""
        return f"ship with {request.carrier} ({fmt_count(n)} tracking numbers{src})"
    if kind == BulkKind.HOLD:
        return f"put on hold: {request.reason}"
    if kind == BulkKind.RELEASE:
        return "release the hold"
    if kind == BulkKind.TAG:
        return f"{'remove' if request.remove else 'add'} tag {request.text}"
    if kind == BulkKind.NOTE:
        return f"add the note “{request.text}”"
    if kind == BulkKind.CANCEL:
        return f"cancel ({str(request.reason or 'other').replace('_', ' ')})"
    if kind == BulkKind.NOTIFY:
        template = str(request.text or "")  # NOTIFY: text is the template name
        return f"email the customers: {TEMPLATE_TITLES.get(template, template)}"
    return str(kind)  # pragma: no cover


def _orders(n: int) -> str:
    return f"{fmt_count(n)} order{'' if n == 1 else 's'}"


def preview_text(preview: Preview) -> str:
    lines = [
        "[b]Preview[/b] — nothing has changed yet",
        f"{_orders(preview.matched)} selected · [b]{fmt_count(preview.eligible)} will change[/b]"
        f" · {fmt_count(sum(preview.skipped.values()))} skipped",
    ]
    lines += _reasons(preview.skipped)
    if preview.eligible:
        lines.append("a apply · esc back")
    else:
        lines.append("Nothing to change: none of the selected orders is eligible.")
    return "\n".join(lines)


def _reasons(skipped: dict[str, int]) -> list[str]:
    if not skipped:
        return []
    width = max(len(fmt_count(n)) for n in skipped.values())
    out = ["Skipped, by reason:"]
    for reason, n in sorted(skipped.items(), key=lambda kv: (-kv[1], kv[0])):
        out.append(f"  {fmt_count(n):>{width}}  {escape(reason)}")
    return out


def progress_text(p: Progress, stopping: bool = False) -> str:
    text = (
        f"{fmt_count(p.done)} of {_orders(p.total)} · {fmt_count(p.changed)} changed"
        f" · {fmt_count(p.skipped)} skipped"
    )
    return text + (" · stopping after this chunk…" if stopping else " · esc stops")


def result_text(result: BulkResult, what: str) -> str:
    skipped = sum(result.skipped.values())
    head = "[b]Stopped[/b]" if result.cancelled else "[b]Done[/b]"
    lines = [
        f"{head}: {escape(what)}",
        f"[b]{fmt_count(result.changed)} changed[/b] · {fmt_count(skipped)} skipped"
        f" · {_orders(result.matched)} selected",
    ]
    if result.cancelled:
        done = result.changed + skipped
        lines.append(
            f"Stopped after {_orders(done)}; every other order is untouched. "
            "Running the same action again changes only what is left."
        )
    lines += _reasons(result.skipped)
    if result.changed_sample:
        more = " …" if result.changed > len(result.changed_sample) else ""
        lines.append("Changed: " + ", ".join(result.changed_sample) + more)
    if result.skipped_sample:
        lines.append("Skipped orders:")
        lines += [f"  {n}  {escape(why)}" for n, why in result.skipped_sample]
        if skipped > len(result.skipped_sample):
            lines.append("  …")
    return "\n".join(lines)


class BulkScreen(Screen[BulkOutcome]):
    """The bulk actions screen for one selection (see the module docstring)."""

    AUTO_FOCUS = "#bulk-kind"
    BINDINGS = [
        Binding("escape", "back", "Back", id="bulk.back"),
        Binding("escape", "stop", "Stop", id="bulk.stop"),
        Binding("p", "preview", "Preview", id="bulk.preview"),
        Binding("a", "apply", "Apply", id="bulk.apply"),
        Binding("x", "export", "Export", id="bulk.export"),
        Binding("n", "again", "Another action", id="bulk.again"),
    ]

    def __init__(self, selection: Selection, *, count: int | None = None, scope: str = "") -> None:
        super().__init__()
        self.selection = selection
        self.count = count
        self.scope = scope
        self.chunk_size = 500  # orders per transaction (tests make it small)
        self.phase = "form"  # form → previewing → previewed → running → done
        self.preview: Preview | None = None
        self.request: BulkRequest | None = None  # the previewed request, applied as is
        self.result: BulkResult | None = None
        self.exported: int | None = None
        self._what = ""
        self._stop = threading.Event()
        self._progress: Progress | None = None
        self._outcome = BulkOutcome()
        service = bulk_service(self.app)
        self.kinds: list[str] = [str(k) for k in service.allowed_kinds()]
        if may_export(self.app):
            self.kinds.append(EXPORT)

    # -- layout ------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(self._title(), id="bulk-title")
        with Horizontal(id="bulk-top"):
            yield OptionList(
                *(Option(kind_label(k), id=k) for k in self.kinds), id="bulk-kind", compact=True
            )
            with Vertical(id="bulk-form"):
                with ContentSwitcher(initial=self.kinds[0] if self.kinds else None):
                    for kind in self.kinds:
                        with Vertical(id=kind, classes="bulk-fields"):
                            yield from self._fields(kind)
                with Horizontal(id="bulk-buttons"):
                    yield Button("Preview", id="bulk-preview-btn", compact=True)
                    yield Button("Apply", id="bulk-apply-btn", variant="primary", compact=True)
                    yield Button("Export", id="bulk-export-btn", variant="primary", compact=True)
        yield Static("", id="bulk-what")
        yield Static("", id="bulk-error")
        with VerticalScroll(id="bulk-outcome"):
            yield Static("", id="bulk-preview")
            yield ProgressBar(id="bulk-progress", show_eta=False)
            yield Static("", id="bulk-progress-text")
            yield Static("", id="bulk-results")
        yield Footer(show_command_palette=False)

    @staticmethod
    def _row(label: str, widget: Widget) -> ComposeResult:
        with Horizontal(classes="bulk-row"):
            yield Label(label, classes="bulk-label")
            yield widget

    def _fields(self, kind: str) -> ComposeResult:
        if kind == BulkKind.TRANSITION:
            options = [(s.value, s.value) for s in TRANSITION_TARGETS]
            yield from self._row(
                "Move to",
                Select(options, prompt="status", id="transition-target", compact=True),
            )
        elif kind == BulkKind.SHIP:
            yield from self._row(
                "Carrier", Input(id="ship-carrier", placeholder="DHL, UPS…", compact=True)
            )
            yield from self._row(
                "Tracking",
                Input(id="ship-csv", placeholder="CSV file of order,tracking", compact=True),
            )
        elif kind == BulkKind.HOLD:
            yield from self._row("Reason", Input(id="hold-reason", compact=True))
        elif kind == BulkKind.RELEASE:
            yield Static("Releases the hold of every selected order on hold.", classes="bulk-hint")
            yield from self._row(
                "Note", Input(id="release-note", placeholder="optional", compact=True)
            )
        elif kind == BulkKind.TAG:
            yield from self._row("Tag", Input(id="tag-text", compact=True))
            yield from self._row(
                "", Checkbox("remove instead of add", id="tag-remove", compact=True)
            )
        elif kind == BulkKind.NOTE:
            yield from self._row("Note", Input(id="note-text", compact=True))
        elif kind == BulkKind.CANCEL:
            options = [(r.value.replace("_", " "), r.value) for r in CancelReason]
            yield from self._row(
                "Reason", Select(options, prompt="reason", id="cancel-reason", compact=True)
            )
            yield from self._row(
                "Note", Input(id="cancel-note", placeholder="optional", compact=True)
            )
            yield Static("Paid orders are refunded on cancel.", classes="bulk-hint")
        elif kind == BulkKind.NOTIFY:
            options = [(TEMPLATE_TITLES[t], t) for t in NOTIFY_TEMPLATES]
            yield from self._row(
                "Template", Select(options, prompt="template", id="notify-template", compact=True)
            )
            yield Static(
                "Queues one email per order to its customer; opted-out customers "
                "are skipped with a timeline note.",
                classes="bulk-hint",
            )
        elif kind == EXPORT:
            formats = [(f.value, f.value) for f in ExportFormat]
            yield from self._row(
                "Format",
                Select(
                    formats,
                    value=ExportFormat.CSV.value,
                    allow_blank=False,
                    id="export-format",
                    compact=True,
                ),
            )
            yield from self._row(
                "File", Input(id="export-path", placeholder="orders.csv", compact=True)
            )
            yield from self._row(
                "", Checkbox("overwrite an existing file", id="export-force", compact=True)
            )
            yield from self._row(
                "Columns",
                SelectionList[str](
                    *((c, c, c in DEFAULT_COLUMNS) for c in EXPORT_COLUMNS),
                    id="export-columns",
                    compact=True,
                ),
            )

    def _title(self) -> str:
        sel = self.selection
        if sel.ids:
            what = f"{_orders(len(sel.ids))} marked"
        else:
            n = "" if self.count is None else f"{fmt_count(self.count)} "
            scope = self.scope if self.scope and self.scope != "every order" else ""
            what = f"all {n}orders" + (f" matching {scope}" if scope else "")
        return f"Bulk actions · {what}"

    def on_mount(self) -> None:
        self.query_one("#bulk-kind", OptionList).highlighted = 0 if self.kinds else None
        if not self.kinds:
            self.show_error("Your role may not run bulk actions or exports.")
        self._sync()

    # -- state -------------------------------------------------------------

    @property
    def kind(self) -> str | None:
        ol = self.query_one("#bulk-kind", OptionList)
        if ol.highlighted is None or not self.kinds:
            return None
        return self.kinds[ol.highlighted]

    def _set_phase(self, phase: str) -> None:
        self.phase = phase
        self._sync()

    def _sync(self) -> None:
        """Show what the phase shows; enable what it allows."""
        busy = self.phase in ("running", "done")
        self.set_class(busy, "-busy")
        self.query_one("#bulk-top").display = not busy
        kind = self.kind
        export = kind == EXPORT
        self.query_one("#bulk-preview-btn", Button).display = not export
        self.query_one("#bulk-apply-btn", Button).display = not export
        self.query_one("#bulk-export-btn", Button).display = export
        self.query_one("#bulk-preview-btn", Button).disabled = self.phase == "previewing"
        self.query_one("#bulk-apply-btn", Button).disabled = not self._can_apply()
        what = self.query_one("#bulk-what", Static)  # the results repeat it when done
        what.update(escape(self._what) if self.phase == "running" else "")
        what.display = self.phase == "running"
        preview = self.query_one("#bulk-preview", Static)
        preview.display = self.phase in ("previewing", "previewed")
        if self.phase == "previewing":
            preview.update("Previewing…")
        elif self.phase == "previewed" and self.preview is not None:
            preview.update(preview_text(self.preview))
        running = self.phase == "running"
        self.query_one("#bulk-progress").display = running
        self.query_one("#bulk-progress-text").display = running
        self.query_one("#bulk-results").display = self.phase == "done"
        self.refresh_bindings()

    def _can_apply(self) -> bool:
        return self.phase == "previewed" and self.preview is not None and self.preview.eligible > 0

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        running = self.phase == "running"
        editing = self.phase in ("form", "previewing", "previewed")
        export = self.kind == EXPORT
        if action == "back":
            return not running
        if action == "stop":
            return running
        if action == "preview":
            return (editing and not export and self.kind is not None) and (
                self.phase != "previewing" or None
            )
        if action == "apply":
            return (editing and not export and self.kind is not None) and (
                self._can_apply() or None
            )
        if action == "export":
            return editing and export
        if action == "again":
            return self.phase == "done"
        return True

    def _invalidate(self) -> None:
        """A field changed: the preview shown is not the request any more."""
        if self.phase in ("previewed", "previewing"):
            self.preview = None
            self.request = None
            self.phase = "form"
        self.show_error("")
        self._sync()

    @on(OptionList.OptionHighlighted, "#bulk-kind")
    def _kind_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id:
            self.query_one(ContentSwitcher).current = event.option.id
        self._invalidate()

    @on(OptionList.OptionSelected, "#bulk-kind")
    def _kind_selected(self) -> None:
        first = self._first_field()
        if first is not None:
            first.focus()
        elif self.kind != EXPORT:
            self.action_preview()

    def _first_field(self) -> Widget | None:
        kind = self.kind
        if kind is None:
            return None
        for widget in self.query_one(f"#{kind}").query("Input, Select, Checkbox"):
            return widget
        return None

    @on(Select.Changed, "#export-format")
    def _format_changed(self, event: Select.Changed) -> None:
        self.query_one("#export-path", Input).placeholder = f"orders.{event.value}"

    @on(Input.Changed)
    @on(Select.Changed)
    @on(Checkbox.Changed)
    @on(SelectionList.SelectedChanged)
    def _field_changed(self) -> None:
        self._invalidate()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "ship-carrier":
            self.query_one("#ship-csv", Input).focus()
        elif self.kind == EXPORT:
            self.action_export()
        else:
            self.action_preview()

    @on(Button.Pressed, "#bulk-preview-btn")
    def _preview_pressed(self) -> None:
        self.action_preview()

    @on(Button.Pressed, "#bulk-apply-btn")
    def _apply_pressed(self) -> None:
        self.action_apply()

    @on(Button.Pressed, "#bulk-export-btn")
    def _export_pressed(self) -> None:
        self.action_export()

    # -- errors --------------------------------------------------------------

    def show_error(self, message: str) -> None:
        error = self.query_one("#bulk-error", Static)
        error.update(escape(message))
        error.display = bool(message)

    @property
    def error_text(self) -> str:
        error = self.query_one("#bulk-error", Static)
        return str(error.render()) if error.display else ""

    # -- the form -------------------------------------------------------------

    def _value(self, selector: str) -> str:
        return self.query_one(selector, Input).value.strip()

    def _choice(self, selector: str) -> str | None:
        value = self.query_one(selector, Select).value
        return None if value is Select.NULL else str(value)

    def draft(self) -> Draft | None:
        """The form's values for the highlighted kind; None (and a message) if incomplete."""
        kind = self.kind
        if kind is None or kind == EXPORT:
            return None
        k = BulkKind(kind)
        if k == BulkKind.TRANSITION:
            target = self._choice("#transition-target")
            if target is None:
                self.show_error("choose the status to move to")
                return None
            return Draft(k, target=target)
        if k == BulkKind.SHIP:
            path = self._value("#ship-csv")
            if not path:
                self.show_error("name the CSV file of order,tracking rows")
                return None
            return Draft(k, carrier=self._value("#ship-carrier"), csv_path=path)
        if k == BulkKind.HOLD:
            return Draft(k, reason=self._value("#hold-reason"))
        if k == BulkKind.TAG:
            return Draft(
                k,
                text=self._value("#tag-text"),
                remove=self.query_one("#tag-remove", Checkbox).value,
            )
        if k == BulkKind.NOTE:
            return Draft(k, text=self._value("#note-text"))
        if k == BulkKind.CANCEL:
            reason = self._choice("#cancel-reason")
            if reason is None:
                self.show_error("choose a cancel reason")
                return None
            return Draft(k, reason=reason, text=self._value("#cancel-note"))
        if k == BulkKind.NOTIFY:
            template = self._choice("#notify-template")
            if template is None:
                self.show_error("choose the email template")
                return None
            return Draft(k, text=template)
        return Draft(k, text=self._value("#release-note"))  # release, with an optional note

    def export_draft(self) -> ExportDraft | None:
        path = self._value("#export-path")
        if not path:
            self.show_error("name the file to export to")
            return None
        columns = tuple(self.query_one("#export-columns", SelectionList).selected)
        if not columns:
            self.show_error("choose at least one column")
            return None
        fmt = ExportFormat(str(self.query_one("#export-format", Select).value))
        force = self.query_one("#export-force", Checkbox).value
        # keep the order of EXPORT_COLUMNS, whatever order they were ticked in
        ordered = tuple(c for c in EXPORT_COLUMNS if c in columns)
        return ExportDraft(fmt, path, ordered, force)

    # -- preview -------------------------------------------------------------

    def action_preview(self) -> None:
        if self.check_action("preview", ()) is not True:
            return
        self.show_error("")
        draft = self.draft()
        if draft is None:
            return
        self.preview = None
        self.request = None
        self._set_phase("previewing")
        self._preview_worker(draft)

    @work(thread=True, exclusive=True, exit_on_error=False, group=PREVIEW_GROUP)
    def _preview_worker(self, draft: Draft) -> tuple[Draft, BulkRequest, Preview]:
        request = self._request_for(draft)
        return draft, request, bulk_service(self.app).preview(request)

    def _request_for(self, draft: Draft) -> BulkRequest:
        """The BulkRequest for a draft (in a worker: the ship form's CSV is read here)."""
        tracking = None
        if draft.kind == BulkKind.SHIP and draft.csv_path:
            path = Path(draft.csv_path).expanduser()
            try:
                text = path.read_text(encoding="utf-8-sig")
            except OSError as exc:
                raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from None
            tracking = read_tracking_csv(text)
        return BulkRequest(
            kind=draft.kind,
            selection=self.selection,
            target=draft.target,
            reason=draft.reason or None,
            text=draft.text or None,
            remove=draft.remove,
            carrier=draft.carrier or None,
            tracking=tracking,
        )

    def _previewed(self, draft: Draft, request: BulkRequest, preview: Preview) -> None:
        if self.phase != "previewing":
            return  # a field changed meanwhile: this preview is not the form's any more
        self.request = request
        self.preview = preview
        self._what = describe(request, draft.csv_path)
        self._set_phase("previewed")
        if preview.eligible:
            self.query_one("#bulk-apply-btn", Button).focus()

    # -- apply ---------------------------------------------------------------

    def action_apply(self) -> None:
        if not self._can_apply() or self.request is None or self.preview is None:
            return
        request, preview = self.request, self.preview
        if request.kind != BulkKind.CANCEL:
            self._start_apply(request, preview)
            return
        from pulse_tui.screens.dialogs import ConfirmDialog, Outcome

        reason = str(request.reason or "other").replace("_", " ")
        message = (
            f"Cancel {_orders(preview.eligible)} ({escape(reason)})? Paid orders are "
            "refunded. This cannot be undone."
        )

        def confirmed(outcome: Outcome | None) -> None:
            if outcome is not None and outcome.kind == "confirmed":
                self._start_apply(request, preview)

        self.app.push_screen(
            ConfirmDialog(
                _orders(preview.eligible),
                None,
                title="Really cancel",
                message=message,
                yes=f"Yes, cancel {_orders(preview.eligible)}",
                destructive=True,
            ),
            confirmed,
        )

    def _start_apply(self, request: BulkRequest, preview: Preview) -> None:
        self._stop.clear()
        self.result = None
        self.show_progress(Progress(0, preview.matched, 0, 0))
        self._apply_worker(request)

    @work(thread=True, exclusive=True, exit_on_error=False, group=APPLY_GROUP)
    def _apply_worker(self, request: BulkRequest) -> BulkResult:
        def progress(p: Progress) -> None:
            self.app.call_from_thread(self.show_progress, p)

        return bulk_service(self.app).apply(
            request,
            chunk_size=self.chunk_size,
            on_progress=progress,
            should_cancel=self._stop.is_set,
        )

    def show_progress(self, p: Progress) -> None:
        """Show the running state at ``p`` (the apply worker's on_progress; tests)."""
        self._progress = p
        if self.phase != "running":
            self._set_phase("running")
        bar = self.query_one("#bulk-progress", ProgressBar)
        bar.update(total=max(1, p.total), progress=p.done)
        self.query_one("#bulk-progress-text", Static).update(
            progress_text(p, stopping=self._stop.is_set())
        )

    def action_stop(self) -> None:
        if self.phase != "running":
            return
        self._stop.set()
        if self._progress is not None:
            self.show_progress(self._progress)

    def _applied(self, result: BulkResult) -> None:
        self.result = result
        self._outcome = replace(self._outcome, applied=True, cancelled=result.cancelled)
        self.query_one("#bulk-results", Static).update(result_text(result, self._what))
        self._set_phase("done")
        self.query_one("#bulk-outcome").focus()
        if result.changed:
            self._refresh_lists()

    def _refresh_lists(self) -> None:
        """Orders changed: every list on the stack re-fetches its rows and counts."""
        from pulse_tui.screens.order_list import OrderListScreen

        for screen in self.app.screen_stack:
            if isinstance(screen, OrderListScreen):
                screen.post_message(OrderListScreen.Refresh(None))

    # -- export ----------------------------------------------------------------

    def action_export(self) -> None:
        if self.check_action("export", ()) is not True:
            return
        self.show_error("")
        draft = self.export_draft()
        if draft is None:
            return
        self._stop.clear()
        self._what = f"export {draft.fmt.value} to {draft.path}"
        self.exported = None
        total = self.count if self.count is not None else len(self.selection.ids) or 0
        self.show_progress(Progress(0, total, 0, 0))
        self._export_worker(draft)

    @work(thread=True, exclusive=True, exit_on_error=False, group=EXPORT_GROUP)
    def _export_worker(self, draft: ExportDraft) -> int:
        def progress(done: int, total: int) -> None:
            self.app.call_from_thread(self.show_progress, Progress(done, total, done, 0))

        return export_orders(
            self.app.desk.ctx,  # type: ignore[attr-defined]
            self.selection,
            draft.fmt,
            Path(draft.path).expanduser(),
            columns=draft.columns,
            force=draft.force,
            on_progress=progress,
            should_cancel=self._stop.is_set,
        )

    def _exported(self, rows: int | None) -> None:
        """Show how the export went; ``rows`` None: stopped, and nothing was written."""
        self.exported = rows
        if rows is None:
            text = f"[b]Stopped[/b]: {escape(self._what)}\nNothing was written."
        else:
            self._outcome = replace(self._outcome, exported=True)
            text = f"[b]Done[/b]: {escape(self._what)}\n{_orders(rows)} written."
        self.query_one("#bulk-results", Static).update(text)
        self._set_phase("done")

    # -- workers ---------------------------------------------------------------

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        group = worker.group
        if group not in (PREVIEW_GROUP, APPLY_GROUP, EXPORT_GROUP):
            return
        if event.state == WorkerState.SUCCESS:
            result: Any = worker.result
            if group == PREVIEW_GROUP:
                self._previewed(*result)
            elif group == APPLY_GROUP:
                self._applied(result)
            else:
                self._exported(result)
        elif event.state == WorkerState.ERROR:
            error = worker.error
            if isinstance(error, ExportCancelled):
                self._exported(None)
                return
            message = (
                error.message if isinstance(error, ServiceError) else f"unexpected error: {error}"
            )
            # nothing (more) was changed by the failing call: back to the form
            self.preview = None
            self.request = None
            self._set_phase("form")
            self.show_error(message)
            if group == APPLY_GROUP:
                # chunks committed before the error stay committed, each one whole
                self.show_error(f"{message} — orders done before it stay changed; run it again")
                self._refresh_lists()

    # -- leaving -----------------------------------------------------------------

    def action_back(self) -> None:
        if self.phase == "running":
            return
        self.dismiss(self._outcome)

    def action_again(self) -> None:
        """From the results back to the form, for another action on the same selection."""
        self.preview = None
        self.request = None
        self.result = None
        self.query_one("#bulk-results", Static).update("")
        self._set_phase("form")
        self.query_one("#bulk-kind", OptionList).focus()
