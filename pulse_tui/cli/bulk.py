"""`pulse bulk ...`: one change to many orders, previewed first.

Every command selects orders with ``--filter QUERY`` (the desk's query
language) or ``--ids-from FILE|-`` (order numbers such as PB-100042 / 100042,
or ids as #42, one per line; a CSV's first column works too), shows the
preview (how many change, how many are skipped and why), and applies it only
with ``--yes`` or after a yes at the prompt. ``--dry-run`` shows the preview
and exits 0. Without ``--yes`` when stdin is not a terminal nothing is
changed: the preview is printed and the command exits 2. Thin door: every
rule lives in services.bulk.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from pulse_tui.domain.filters import parse_query
from pulse_tui.services.bulk import (
    BulkKind,
    BulkRequest,
    BulkResult,
    BulkService,
    Preview,
    Selection,
    read_tracking_csv,
)
from pulse_tui.services.bulk import Progress as BulkProgress
from pulse_tui.services.desk import Desk
from pulse_tui.services.errors import InvalidInput

from . import exit_codes
from .app_context import state
from .output import err_console, fail, message, print_json, result_line

app = typer.Typer(
    help="Change many orders at once (admins): preview, then apply with --yes.",
    no_args_is_help=True,
)

FilterOpt = Annotated[
    str | None,
    typer.Option(
        "--filter", "-q", metavar="QUERY", help='Orders matching this query: "status:processing".'
    ),
]
IdsOpt = Annotated[
    str | None,
    typer.Option(
        "--ids-from",
        metavar="FILE|-",
        help="Order numbers (PB-100042) or ids (#42), one per line; - reads stdin.",
    ),
]
DryOpt = Annotated[bool, typer.Option("--dry-run", help="Show the preview only; change nothing.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Apply without asking.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")]
ChunkOpt = Annotated[
    int, typer.Option("--chunk-size", min=1, max=10_000, help="Orders per transaction.")
]


# -- selection -------------------------------------------------------------------


def read_refs(source: str) -> list[str]:
    """The first cell of every non-empty line of FILE (or stdin for -)."""
    if source == "-":
        text = sys.stdin.read()
    else:
        try:
            text = Path(source).read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"cannot read {source}: {exc.strerror or exc}") from None
    refs = [ln.split(",", 1)[0].strip() for ln in text.splitlines()]
    refs = [r for r in refs if r]
    if not refs:
        raise InvalidInput(f"{'stdin' if source == '-' else source} lists no orders")
    return refs


def selection(desk: Desk, svc: BulkService, query: str | None, ids_from: str | None) -> Selection:
    if query is not None and ids_from is not None:
        raise InvalidInput("choose the orders with --filter or --ids-from, not both")
    if ids_from is not None:
        return Selection(ids=svc.resolve_orders(read_refs(ids_from)))
    if query is None:
        raise InvalidInput('choose the orders: --filter QUERY (--filter "" for all) or --ids-from')
    return Selection(filter=parse_query(query, desk.now()))


# -- output ----------------------------------------------------------------------


def preview_json(p: Preview, *, applied: bool = False) -> dict[str, Any]:
    return {
        "applied": applied,
        "matched": p.matched,
        "eligible": p.eligible,
        "skipped": p.skipped,
    }


def result_json(r: BulkResult) -> dict[str, Any]:
    return {
        "applied": True,
        "run_id": r.run_id,
        "kind": r.kind.value,
        "matched": r.matched,
        "changed": r.changed,
        "skipped": r.skipped,
        "cancelled": r.cancelled,
        "changed_sample": r.changed_sample,
        "skipped_sample": [{"order": n, "reason": why} for n, why in r.skipped_sample],
    }


def _reasons(skipped: dict[str, int]) -> list[str]:
    return [f"  {n:>9,}  skipped: {why}" for why, n in skipped.items()]


def show_preview(what: str, p: Preview, write: Callable[[str], None]) -> None:
    write(f"{what}: {p.matched:,} order(s) selected")
    write(f"  {p.eligible:>9,}  will change")
    for line in _reasons(p.skipped):
        write(line)


def show_result(what: str, r: BulkResult) -> None:
    state_ = "cancelled" if r.cancelled else "done"
    result_line(f"{what}: {state_} (run {r.run_id}), {r.matched:,} order(s) selected")
    result_line(f"  {r.changed:>9,}  changed")
    for line in _reasons(r.skipped):
        result_line(line)


@contextmanager
def interruptible() -> Iterator[Callable[[], bool]]:
    """Ctrl+C stops between chunks (the current chunk still commits whole)."""
    stop = {"asked": False}

    def handler(_sig: int, _frame: FrameType | None) -> None:
        if stop["asked"]:
            raise KeyboardInterrupt
        stop["asked"] = True
        message("stopping after this chunk (Ctrl+C again to abort it)…")

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread (tests): no handler
        yield lambda: False
        return
    try:
        yield lambda: stop["asked"]
    finally:
        signal.signal(signal.SIGINT, previous)


def run(
    ctx: typer.Context,
    what: str,
    build: Callable[[Selection], BulkRequest],
    *,
    query: str | None,
    ids_from: str | None,
    dry_run: bool,
    yes: bool,
    as_json: bool,
    chunk_size: int,
    default_selection: Callable[[BulkService], Selection] | None = None,
) -> None:
    desk = state(ctx).desk()
    svc: BulkService = getattr(desk, "bulk", None) or BulkService(desk.ctx)
    svc.require()
    if query is None and ids_from is None and default_selection is not None:
        sel = default_selection(svc)
    else:
        sel = selection(desk, svc, query, ids_from)
    request = build(sel)
    preview = svc.preview(request)
    if dry_run or not yes:
        interactive = not dry_run and sys.stdin.isatty()
        if as_json and not interactive:
            print_json(preview_json(preview))
        else:
            show_preview(what, preview, message if interactive else result_line)
        if dry_run:
            return
        if not interactive:
            fail("not applied: add --yes to apply without a terminal to confirm", 2)
        if preview.eligible == 0 or not typer.confirm(
            f"Apply to {preview.eligible:,} order(s)?", default=False, err=True
        ):
            message("nothing changed")
            return
    with interruptible() as should_cancel:
        result = _apply(svc, request, chunk_size, should_cancel)
    if as_json:
        print_json(result_json(result))
    else:
        show_result(what, result)
    if result.cancelled:
        raise typer.Exit(exit_codes.FAILED)


def _apply(
    svc: BulkService, request: BulkRequest, chunk_size: int, should_cancel: Callable[[], bool]
) -> BulkResult:
    if not sys.stderr.isatty():
        return svc.apply(request, chunk_size=chunk_size, should_cancel=should_cancel)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[changed]:,} changed"),
        TimeRemainingColumn(),
        console=err_console(),
        transient=True,
    ) as bar:
        task = bar.add_task(request.kind.value, total=None, changed=0)

        def on_progress(p: BulkProgress) -> None:
            bar.update(task, completed=p.done, total=p.total, changed=p.changed)

        return svc.apply(
            request, chunk_size=chunk_size, on_progress=on_progress, should_cancel=should_cancel
        )


# -- commands --------------------------------------------------------------------


@app.command("transition")
def transition(
    ctx: typer.Context,
    to: Annotated[
        str, typer.Option("--to", metavar="STATUS", help="processing, delivered, cancelled.")
    ],
    reason: Annotated[
        str | None, typer.Option(help="Cancel reason code when --to cancelled.")
    ] = None,
    query: FilterOpt = None,
    ids_from: IdsOpt = None,
    dry_run: DryOpt = False,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
    chunk_size: ChunkOpt = 500,
) -> None:
    """Move the orders to STATUS through the use case that owns that move."""
    run(
        ctx,
        f"transition → {to}",
        lambda sel: BulkRequest(BulkKind.TRANSITION, sel, target=to, reason=reason),
        query=query,
        ids_from=ids_from,
        dry_run=dry_run,
        yes=yes,
        as_json=as_json,
        chunk_size=chunk_size,
    )


@app.command("ship")
def ship(
    ctx: typer.Context,
    csv_path: Annotated[
        str, typer.Option("--from", metavar="CSV|-", help="order,tracking rows (header optional).")
    ],
    carrier: Annotated[str, typer.Option(help="One carrier for all: DHL, UPS, …")],
    query: FilterOpt = None,
    ids_from: IdsOpt = None,
    dry_run: DryOpt = False,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
    chunk_size: ChunkOpt = 500,
) -> None:
    """Ship orders with the CSV's tracking numbers (without --filter/--ids-from:
    the orders the CSV names). Orders without a row are skipped."""
    if csv_path == "-" and ids_from == "-":
        raise InvalidInput("only one of --from and --ids-from can read stdin")
    if csv_path == "-":
        text = sys.stdin.read()
    else:
        try:
            text = Path(csv_path).read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"cannot read {csv_path}: {exc.strerror or exc}") from None
    tracking = read_tracking_csv(text)
    run(
        ctx,
        f"ship with {carrier}",
        lambda sel: BulkRequest(BulkKind.SHIP, sel, carrier=carrier, tracking=tracking),
        query=query,
        ids_from=ids_from,
        dry_run=dry_run,
        yes=yes,
        as_json=as_json,
        chunk_size=chunk_size,
        default_selection=lambda svc: Selection(ids=svc.resolve_orders(list(tracking))),
    )


@app.command("hold")
def hold(
    ctx: typer.Context,
    reason: Annotated[str, typer.Option(help="Why the orders are held.")],
    query: FilterOpt = None,
    ids_from: IdsOpt = None,
    dry_run: DryOpt = False,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
    chunk_size: ChunkOpt = 500,
) -> None:
    """Put the orders on hold."""
    run(
        ctx,
        "hold",
        lambda sel: BulkRequest(BulkKind.HOLD, sel, reason=reason),
        query=query,
        ids_from=ids_from,
        dry_run=dry_run,
        yes=yes,
        as_json=as_json,
        chunk_size=chunk_size,
    )


@app.command("release")
def release(
    ctx: typer.Context,
    note: Annotated[str | None, typer.Option(help="A note for the timeline.")] = None,
    query: FilterOpt = None,
    ids_from: IdsOpt = None,
    dry_run: DryOpt = False,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
    chunk_size: ChunkOpt = 500,
) -> None:
    """Take the orders off hold."""
    run(
        ctx,
        "release",
        lambda sel: BulkRequest(BulkKind.RELEASE, sel, text=note),
        query=query,
        ids_from=ids_from,
        dry_run=dry_run,
        yes=yes,
        as_json=as_json,
        chunk_size=chunk_size,
    )


@app.command("tag")
def tag(
    ctx: typer.Context,
    tag_: Annotated[str, typer.Argument(metavar="TAG")],
    remove: Annotated[bool, typer.Option("--remove", help="Remove the tag instead.")] = False,
    query: FilterOpt = None,
    ids_from: IdsOpt = None,
    dry_run: DryOpt = False,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
    chunk_size: ChunkOpt = 500,
) -> None:
    """Add TAG to the orders (or remove it with --remove)."""
    run(
        ctx,
        f"{'untag' if remove else 'tag'} {tag_}",
        lambda sel: BulkRequest(BulkKind.TAG, sel, text=tag_, remove=remove),
        query=query,
        ids_from=ids_from,
        dry_run=dry_run,
        yes=yes,
        as_json=as_json,
        chunk_size=chunk_size,
    )


@app.command("note")
def note(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(metavar="TEXT")],
    query: FilterOpt = None,
    ids_from: IdsOpt = None,
    dry_run: DryOpt = False,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
    chunk_size: ChunkOpt = 500,
) -> None:
    """Add a note to the orders' timelines (once: orders with it already are skipped)."""
    run(
        ctx,
        "note",
        lambda sel: BulkRequest(BulkKind.NOTE, sel, text=text),
        query=query,
        ids_from=ids_from,
        dry_run=dry_run,
        yes=yes,
        as_json=as_json,
        chunk_size=chunk_size,
    )


@app.command("cancel")
def cancel(
    ctx: typer.Context,
    reason: Annotated[
        str, typer.Option(metavar="CODE", help="customer_request, out_of_stock, fraud, …")
    ],
    note: Annotated[str | None, typer.Option(help="A note for the timeline.")] = None,
    query: FilterOpt = None,
    ids_from: IdsOpt = None,
    dry_run: DryOpt = False,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
    chunk_size: ChunkOpt = 500,
) -> None:
    """Cancel the orders (paid ones get their refund, as for one order)."""
    run(
        ctx,
        f"cancel ({reason})",
        lambda sel: BulkRequest(BulkKind.CANCEL, sel, reason=reason, text=note),
        query=query,
        ids_from=ids_from,
        dry_run=dry_run,
        yes=yes,
        as_json=as_json,
        chunk_size=chunk_size,
    )


@app.command("notify")
def notify(
    ctx: typer.Context,
    template: Annotated[
        str,
        typer.Option("--template", metavar="NAME", help="shipped, delivered, …, or free_message."),
    ],
    subject: Annotated[str | None, typer.Option(help="free_message: the subject line.")] = None,
    body: Annotated[
        str | None, typer.Option(help="free_message: the text (- reads stdin).")
    ] = None,
    query: FilterOpt = None,
    ids_from: IdsOpt = None,
    dry_run: DryOpt = False,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
    chunk_size: ChunkOpt = 500,
) -> None:
    """Queue an email of TEMPLATE to each order's customer (sent by `pulse notify`).

    Skipped: orders the template does not fit, customers who opted out or have no
    usable address, and orders that already have it queued or sent."""
    if body == "-":
        if ids_from == "-":
            raise InvalidInput("only one of --body and --ids-from can read stdin")
        body = sys.stdin.read()
    run(
        ctx,
        f"notify {template}",
        lambda sel: BulkRequest(
            BulkKind.NOTIFY, sel, text=template.strip(), subject=subject, body=body
        ),
        query=query,
        ids_from=ids_from,
        dry_run=dry_run,
        yes=yes,
        as_json=as_json,
        chunk_size=chunk_size,
    )
