"""`pulse sync`: the payment sync, headless.

    pulse sync --once                 one run, then exit
    pulse sync --watch [--interval S] run every S seconds until interrupted
    pulse sync status [--json]        cursor, last success and last error per gateway

Exit codes: 0 ok; 1 the run reported gateway errors; 2 no gateway configured
or bad options; 4 another process holds the sync lease.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from pulse_tui.gateways.sync import build_adapters, make_client
from pulse_tui.services import payments as pay
from pulse_tui.services.context import SYSTEM, Context
from pulse_tui.services.errors import InvalidInput
from pulse_tui.services.payment_sync import PaymentSync, SyncReport

from . import exit_codes
from .app_context import state
from .output import iso, message, print_json, result_line

app = typer.Typer(help="Payment sync with the gateways (Stripe, PayPal).", no_args_is_help=False)


@app.callback(invoke_without_command=True)
def sync(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="Run one sync and exit.")] = False,
    watch: Annotated[bool, typer.Option("--watch", help="Keep syncing until interrupted.")] = False,
    interval: Annotated[
        float | None, typer.Option("--interval", metavar="S", help="Seconds between runs.")
    ] = None,
) -> None:
    """Run the payment sync (see `pulse sync status` for how it went)."""
    if ctx.invoked_subcommand is not None:
        return
    if once == watch:
        raise InvalidInput("choose one of --once or --watch (or `pulse sync status`)")
    st = state(ctx)
    settings = st.settings
    every = settings.sync_interval_s if interval is None else interval
    if every <= 0:
        raise InvalidInput("--interval must be a positive number of seconds")
    engine = st.engine()
    code = asyncio.run(_run(engine, settings, once=once, interval=every))
    if code:
        raise typer.Exit(code)


async def _run(engine, settings, *, once: bool, interval: float) -> int:  # type: ignore[no-untyped-def]
    async with make_client() as client:
        adapters = build_adapters(settings, client)
        if not adapters:
            raise InvalidInput(
                "no payment gateway configured (set [gateways.stripe] secret_key "
                "or PULSE_STRIPE_SECRET_KEY)"
            )
        worker = PaymentSync(engine, adapters)
        if once:
            return _report(await worker.run_once())
        stop = asyncio.Event()
        try:
            await worker.watch(interval, stop=stop, on_report=_report)
        except (KeyboardInterrupt, asyncio.CancelledError):  # pragma: no cover - interactive
            stop.set()
        return exit_codes.OK


def _report(report: SyncReport) -> int:
    if report.skipped_by:
        message(f"pulse: sync skipped: another sync is running ({report.skipped_by})")
        return exit_codes.CONFLICT
    for g in report.gateways:
        message(
            f"{g.gateway}: {g.changes} change(s), {g.refreshed} refreshed, "
            f"{len(g.changed)} order(s) updated, {len(g.retried)} retried, {len(g.errors)} error(s)"
        )
        for r in g.changed:
            result_line(f"{r.order}\t{r.outcome}\t{g.gateway}:{r.ref}")
        for e in g.errors:
            message(f"error: {e}")
        if g.unknown:
            shown = ", ".join(g.unknown[:5]) + (" …" if len(g.unknown) > 5 else "")
            message(f"warning: {len(g.unknown)} pending payment(s) unknown at {g.gateway}: {shown}")
    return exit_codes.OK if report.ok else exit_codes.FAILED


@app.command("status")
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False,
) -> None:
    """Per gateway: configured (secret masked), cursor, last run, last success, last error."""
    st = state(ctx)
    pctx = Context(st.engine(), SYSTEM)
    states = {s.gateway: s for s in pay.sync_states(pctx)}
    holder, expires = pay.lease_holder(pctx)
    rows = []
    for name, cfg in st.settings.gateways.items():
        s = states.get(name)
        rows.append(
            {
                **cfg.masked(),
                "configured": cfg.configured,
                "cursor": s.cursor if s else None,
                "last_run_at": iso(s.last_run_at) if s else None,
                "last_success_at": iso(s.last_success_at) if s else None,
                "last_error": s.last_error if s else None,
                "error_count": s.error_count if s else 0,
            }
        )
    if as_json:
        print_json({"running": holder, "lease_expires_at": iso(expires), "gateways": rows})
        return
    result_line(f"sync running: {holder or 'no'}")
    for r in rows:
        result_line(
            f"{r['name']}: {'configured' if r['configured'] else 'not configured'} "
            f"key {r['secret_key']} at {r['base_url']}; last success {r['last_success_at'] or '-'}"
            + (f"; last error: {r['last_error']}" if r["last_error"] else "")
        )
