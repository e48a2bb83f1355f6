"""`pulse notify ...`: the customer notification outbox, headless.

    pulse notify --once                 deliver every email that is due, then exit
    pulse notify --watch [--interval S] deliver every S seconds until Ctrl+C
    pulse notify check [--json]         render every template with sample data
    pulse notify list [--status S] [--order N] [--limit N] [--json|--csv]
    pulse notify retry ID               a failed email, queued again now
    pulse notify resend ID              a new copy of a sent or failed email
    pulse notify send ORDER [--subject S] [--body B|-] | --template NAME

Delivery first runs `check`: a broken template or unusable mail setting
refuses the run. Exit codes (delivery): 0 ok (temporary failures are retried
later, listed on stderr as warnings); 1 some emails failed for good in this run
(listed on stderr); 2 bad mail configuration, broken template or bad options.
`check` exits 1 when a template is broken, one line per problem on stderr. Thin door: every rule
lives in services.notifications.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from pulse_tui.config import Settings, SettingsError
from pulse_tui.mail import MailError
from pulse_tui.services.errors import InvalidInput, RuleViolation
from pulse_tui.services.notifications import DeliveryReport, MailSender, NotificationRow

from . import exit_codes
from .app_context import CliState, state
from .orders import order_ref
from .output import (
    iso,
    message,
    out_console,
    output_mode,
    print_csv,
    print_json,
    result_line,
    short_time,
)

app = typer.Typer(
    help="Customer emails: deliver the outbox, list, retry, resend, write to a customer.",
    no_args_is_help=False,
)

BATCH = 100
LIST_FIELDS = (
    "id",
    "status",
    "order",
    "customer_id",
    "customer_name",
    "to",
    "template",
    "title",
    "kind",
    "subject",
    "attempts",
    "next_attempt_at",
    "last_error",
    "message_id",
    "created_at",
    "sent_at",
    "created_by",
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (only JSON) on stdout.")]
IdArg = Annotated[int, typer.Argument(metavar="ID", help="The notification's id (notify list).")]


def settings_of(st: CliState) -> Settings:
    """The invocation's settings; a mail/notification setting that cannot work is exit 2."""
    try:
        return st.settings
    except SettingsError as exc:
        raise InvalidInput(f"bad configuration: {exc}") from None


def notification_json(n: NotificationRow) -> dict[str, Any]:
    return {
        "id": n.id,
        "status": n.status,
        "order": n.order_number,
        "order_id": n.order_id,
        "customer_id": n.customer_id,
        "customer_name": n.customer_name,
        "to": n.to_addr,
        "template": n.template,
        "title": n.title,
        "kind": n.kind,
        "subject": n.subject,
        "attempts": n.attempts,
        "next_attempt_at": iso(n.next_attempt_at),
        "last_error": n.last_error,
        "message_id": n.message_id,
        "created_at": iso(n.created_at),
        "sent_at": iso(n.sent_at),
        "created_by": n.created_by,
    }


def describe(n: NotificationRow) -> str:
    order = f" for {n.order_number}" if n.order_number else ""
    return f"#{n.id} {n.title}{order} to {n.to_addr}"


# -- delivery --------------------------------------------------------------------


@app.callback(invoke_without_command=True)
def notify(
    ctx: typer.Context,
    once: Annotated[
        bool, typer.Option("--once", help="Deliver every email that is due, then exit.")
    ] = False,
    watch: Annotated[
        bool, typer.Option("--watch", help="Keep delivering until interrupted (Ctrl+C).")
    ] = False,
    interval: Annotated[
        float | None,
        typer.Option("--interval", metavar="S", help="Seconds between runs (--watch)."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="--once: print the run's counts as JSON on stdout.")
    ] = False,
) -> None:
    """Deliver queued emails through the configured backend (file or SMTP)."""
    if ctx.invoked_subcommand is not None:
        return
    if once == watch:
        raise InvalidInput("choose one of --once or --watch (or a command: see --help)")
    st = state(ctx)
    settings = settings_of(st)
    every = settings.notify_interval_s if interval is None else interval
    if every <= 0:
        raise InvalidInput("--interval must be a positive number of seconds")
    _startup_check(st)
    sender = _sender(st, settings)
    code = _report(_drain(sender), as_json=as_json) if once else _watch(sender, every)
    if code:
        raise typer.Exit(code)


def _startup_check(st: CliState) -> None:
    """Templates and mail settings are checked before anything is sent: a broken
    template refuses the run (exit 2) instead of failing every email using it."""
    problems = st.system_desk().notifications.check()
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise InvalidInput(
            f"bad configuration: {problems[0]}{more}; nothing sent (see `pulse notify check`)"
        )


def _sender(st: CliState, settings: Settings) -> MailSender:
    engine = st.engine()
    try:
        return MailSender(engine, settings)
    except (SettingsError, ValueError, MailError) as exc:
        raise InvalidInput(f"bad mail configuration: {exc}") from None


def _drain(sender: MailSender) -> DeliveryReport:
    """One run: batches until nothing more is due (retries wait for later)."""
    total = DeliveryReport()
    while True:
        r = sender.deliver_due(BATCH)
        total.sent += r.sent
        total.failed += r.failed
        total.retried += r.retried
        total.skipped += r.skipped
        total.errors += r.errors
        if r.total < BATCH:
            return total


def _report(r: DeliveryReport, *, as_json: bool = False) -> int:
    if as_json:
        print_json(
            {
                "sent": r.sent,
                "failed": r.failed,
                "retried": r.retried,
                "skipped": r.skipped,
                "errors": r.errors,
            }
        )
    if r.total or not as_json:
        message(
            f"notify: {r.sent} sent, {r.failed} failed, {r.retried} to retry later, "
            f"{r.skipped} skipped"
        )
    for line in r.errors:
        # DeliveryReport.errors holds failures (": failed: ") and retries alike
        message(f"{'error' if ': failed: ' in line else 'warning'}: {line}")
    return exit_codes.FAILED if r.failed else exit_codes.OK


def _watch(sender: MailSender, interval: float) -> int:
    """Until Ctrl+C: the first one lets the email being sent finish (its state
    is committed) and stops; a second one aborts at once."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def ask_stop() -> None:
            message("pulse notify: stopping after the current email (Ctrl+C again to abort)…")
            stop.set()
            loop.remove_signal_handler(signal.SIGINT)  # the next Ctrl+C: KeyboardInterrupt

        try:
            loop.add_signal_handler(signal.SIGINT, ask_stop)
            loop.add_signal_handler(signal.SIGTERM, ask_stop)
        except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover - not POSIX
            pass
        message(f"pulse notify: delivering every {interval:g}s (Ctrl+C stops)")

        def on_report(r: DeliveryReport) -> None:
            if r.total:  # quiet while there is nothing to send
                _report(r)

        await sender.watch(interval, stop=stop, on_report=on_report)

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        message("pulse notify: interrupted")
        return 130
    message("pulse notify: stopped")
    return exit_codes.OK


# -- templates -------------------------------------------------------------------


@app.command("check")
def check(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Render every email template with sample orders; exit 1 listing each problem.

    Shipped and overridden templates, in several currencies and locales, and the
    mail settings."""
    st = state(ctx)
    settings = settings_of(st)
    problems = st.system_desk().notifications.check()
    if as_json:
        print_json(
            {
                "ok": not problems,
                "templates_dir": str(settings.templates_dir()),
                "backend": settings.mail.masked(),
                "problems": problems,
            }
        )
    elif not problems:
        result_line(f"templates ok (overrides from {settings.templates_dir()})")
    for p in problems:
        message(f"error: {p}")
    if problems:
        raise typer.Exit(exit_codes.FAILED)


# -- the desk's hands on it -------------------------------------------------------


@app.command("list")
def list_(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option(help="queued, sending, sent, failed or skipped.")
    ] = None,
    order: Annotated[
        str | None, typer.Option("--order", metavar="NUMBER", help="Only this order's emails.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=5000, help="At most this many.")] = 200,
    as_json: JsonOpt = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV on stdout.")] = False,
) -> None:
    """List emails: failed ones first, then the newest."""
    mode = output_mode(as_json, as_csv)
    ref = order_ref(order) if order is not None else None
    svc = state(ctx).desk().notifications
    rows = svc.list_notifications(
        status=status.strip().lower() if status else None, order_ref=ref, limit=limit
    )
    data = [notification_json(n) for n in rows]
    if mode == "json":
        print_json(data)
    elif mode == "csv":
        print_csv(data, LIST_FIELDS)
    else:
        _table(rows)
    if not rows:
        message("no emails match")
    elif len(rows) == limit:
        message(f"showing the first {len(rows)}; there may be more (raise --limit)")


def _table(rows: list[NotificationRow]) -> None:
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for head in ("id", "status", "order", "to", "email", "tries", "when", "error"):
        t.add_column(head, justify="right" if head in ("id", "tries") else "left")
    for n in rows:
        t.add_row(
            str(n.id),
            n.status,
            n.order_number or "",
            n.to_addr,
            n.title,
            str(n.attempts),
            short_time(n.sent_at or n.created_at),
            n.last_error or "",
        )
    out_console().print(t)


@app.command("retry")
def retry(ctx: typer.Context, nid: IdArg, as_json: JsonOpt = False) -> None:
    """Queue a failed email again, to be sent on the next delivery run (agents, admins)."""
    n = state(ctx).desk().notifications.retry(nid)
    if as_json:
        print_json(notification_json(n))
    else:
        result_line(f"queued again: {describe(n)}")


@app.command("resend")
def resend(ctx: typer.Context, nid: IdArg, as_json: JsonOpt = False) -> None:
    """Send a sent or failed email once more, as a new email (agents, admins)."""
    n = state(ctx).desk().notifications.resend(nid)
    if as_json:
        print_json(notification_json(n))
    else:
        result_line(f"queued: {describe(n)} (a copy of #{nid})")


@app.command("send")
def send(
    ctx: typer.Context,
    number: Annotated[str, typer.Argument(metavar="ORDER", help="PB-100042 or 100042.")],
    subject: Annotated[
        str | None, typer.Option(help="Subject (default: the free_message template's).")
    ] = None,
    body: Annotated[
        str | None,
        typer.Option(help="Message text; - reads stdin (default: the template's draft)."),
    ] = None,
    template: Annotated[
        str | None,
        typer.Option(metavar="NAME", help="Send this template (e.g. shipped) instead."),
    ] = None,
    if_version: Annotated[
        int | None,
        typer.Option(
            "--if-version", metavar="N", help="Only if the order is still at version N (else 4)."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write to the order's customer (agents, admins).

    A free message (subject and body; each defaults to the free_message template's
    draft with the order's details), or with --template one of the templates."""
    ref = order_ref(number)
    desk = state(ctx).desk()
    svc = desk.notifications
    if template is not None:
        if subject is not None or body is not None:
            raise InvalidInput("--template sends the template as it is: no --subject/--body")
        ids = desk.bulk.resolve_orders([ref])
        outcome = svc.notify_orders(ids, template.strip())
        if outcome.skipped:
            raise RuleViolation(f"{ref}: {outcome.skipped[0][1]}")
        rows = [r for r in svc.list_notifications(order_ref=ref) if r.template == template.strip()]
        n = max(rows, key=lambda r: r.id) if rows else None
    else:
        if body == "-":
            body = sys.stdin.read()
        if subject is None or body is None:
            draft_subject, draft_body = svc.compose_draft(ref)
            subject = draft_subject if subject is None else subject
            body = draft_body if body is None else body
        n = svc.compose(ref, subject, body, expected_version=if_version)
    if as_json:
        print_json(notification_json(n) if n is not None else {"order": ref, "template": template})
    elif n is not None:
        result_line(f"queued: {describe(n)}")
    else:
        result_line(f"queued: {template} for {ref}")
