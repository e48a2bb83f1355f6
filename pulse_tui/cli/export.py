"""`pulse export`: orders to CSV, JSON Lines or XLSX (admins), streamed."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from pulse_tui.services.errors import InvalidInput
from pulse_tui.services.export import ExportFormat, export_orders, parse_columns, require_export

from .app_context import state
from .bulk import IdsOpt, selection
from .output import err_console, message, print_json


def export(
    ctx: typer.Context,
    output: Annotated[
        Path, typer.Option("--output", "-o", metavar="FILE", help="Where to write (not stdout).")
    ],
    query: Annotated[
        str | None,
        typer.Option("--filter", "-q", metavar="QUERY", help="Orders matching this query."),
    ] = None,
    ids_from: IdsOpt = None,
    fmt: Annotated[
        str | None,
        typer.Option("--format", "-f", help="csv, jsonl or xlsx (default: from FILE's suffix)."),
    ] = None,
    columns: Annotated[
        str | None,
        typer.Option("--columns", metavar="A,B", help="Columns to write (see --list-columns)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace FILE if it exists.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON summary on stdout.")
    ] = False,
) -> None:
    """Export the orders matching --filter (all with --filter "") or listed by
    --ids-from to FILE. Money as decimal strings plus total_minor; never floats.
    Refuses to replace FILE without --force; a failed export leaves no file."""
    chosen = fmt or output.suffix.lstrip(".").lower() or "csv"
    try:
        export_format = ExportFormat(chosen.lower())
    except ValueError:
        allowed = ", ".join(f.value for f in ExportFormat)
        raise InvalidInput(f"unknown format {chosen!r} (one of: {allowed})") from None
    cols = parse_columns(columns)
    desk = state(ctx).desk()
    require_export(desk.ctx)
    from pulse_tui.services.bulk import BulkService

    sel = selection(
        desk, BulkService(desk.ctx), query if query is not None or ids_from else "", ids_from
    )
    if sys.stderr.isatty():
        with Progress(
            TextColumn("export"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err_console(),
            transient=True,
        ) as bar:
            task = bar.add_task("export", total=None)
            rows = export_orders(
                desk.ctx,
                sel,
                export_format,
                output,
                columns=cols,
                force=force,
                on_progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    else:
        rows = export_orders(desk.ctx, sel, export_format, output, columns=cols, force=force)
    if as_json:
        print_json(
            {"rows": rows, "path": str(output), "format": export_format.value, "columns": cols}
        )
    else:
        message(f"exported {rows:,} order(s) to {output} ({export_format.value})")
