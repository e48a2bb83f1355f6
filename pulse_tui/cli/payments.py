"""`pulse payments ...`: payments the desk handles itself.

    pulse payments reconcile STATEMENT.csv [--dry-run] [--json]

Matches a bank statement's lines to orders awaiting a bank transfer (by the
order number quoted in the reference, and the exact amount due) and marks
matched orders paid; everything else is reported and left unchanged (see
services/reconcile.py for the statement format and the outcomes).

Exit codes: 0 every line matched (or was already applied, or is a debit);
1 some lines need attention (unmatched, ambiguous, duplicate, over/under-paid,
wrong currency, refused, or changed meanwhile): the matched ones are still
applied; 2 the file cannot be read or is not a usable statement (nothing
changed); 5 the operator may not confirm payments.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich import box
from rich.table import Table

from pulse_tui.services.reconcile import LineOutcome, Reconciler, ReconcileReport, load_statement

from . import exit_codes
from .app_context import state
from .output import message, money, out_console, print_json

app = typer.Typer(help="Payments: bank transfer reconciliation.", no_args_is_help=True)

_STYLE = {
    LineOutcome.MATCHED: "green",
    LineOutcome.ALREADY_PAID: "dim",
    LineOutcome.IGNORED: "dim",
}


@app.command("reconcile")
def reconcile(
    ctx: typer.Context,
    statement: Annotated[
        str, typer.Argument(metavar="STATEMENT.csv", help="Bank statement as CSV.")
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would happen; change nothing.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (only JSON) on stdout.")
    ] = False,
) -> None:
    """Match a bank statement to orders awaiting a transfer; mark matched ones paid."""
    lines = load_statement(statement)
    desk = state(ctx).desk()
    report = Reconciler(desk.ctx).run(lines, dry_run=dry_run)
    if as_json:
        print_json({"statement": statement, **report.as_dict()})
    else:
        _table(report)
    verb = "would mark" if dry_run else "marked"
    message(
        f"pulse: {len(report.lines)} line(s): {verb} {len(report.matched)} order(s) paid, "
        f"{len(report.attention)} line(s) need attention"
    )
    if not report.ok:
        raise typer.Exit(exit_codes.FAILED)


def _table(report: ReconcileReport) -> None:
    t = Table(
        "line",
        "date",
        "amount",
        "order",
        "outcome",
        "details",
        "statement text",
        box=box.SIMPLE_HEAD,
        title="Dry run: nothing changed" if report.dry_run else None,
    )
    for r in report.lines:
        style = _STYLE.get(r.outcome, "" if not r.attention else "yellow")
        t.add_row(
            str(r.line),
            r.date,
            money(r.amount, r.currency),
            r.order or "",
            r.outcome.value.replace("_", " "),
            r.message,
            r.text,
            style=style,
        )
    out_console().print(t)
