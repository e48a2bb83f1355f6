"""`pulse demo seed`: fill an empty database with realistic demo orders."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from typing import Annotated, Any

import typer

from pulse_tui.services.errors import ServiceError

from .app_context import state
from .output import err_console, print_json, result_line

app = typer.Typer(help="Demo data.", no_args_is_help=True)

ProgressFn = Callable[..., None]


@contextmanager
def _progress(total: int) -> Iterator[ProgressFn | None]:
    """A Rich progress bar on stderr when stderr is a terminal; silent otherwise."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console(),
        transient=True,
    ) as bar:
        task = bar.add_task("seeding orders", total=total)

        def update(done: int, total_: int | None = None, *_: Any, **__: Any) -> None:
            bar.update(task, completed=done, total=total_ or total)

        yield update


@app.command("seed")
def seed(
    ctx: typer.Context,
    orders: Annotated[int, typer.Option("--orders", min=1, help="How many orders.")] = 20_000,
    seed_: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same data).")] = 42,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Seed an empty database (creates the `demo` admin operator). No operator needed."""
    try:
        from pulse_tui.services import demo as demo_service
    except ImportError as exc:
        if (exc.name or "").startswith("faker"):
            raise ServiceError(
                "demo data needs the demo extra: pip install 'pulse-tui[demo]'"
            ) from None
        raise ServiceError(f"demo data is not available in this build: {exc}") from None
    engine = state(ctx).engine()
    with _progress(orders) as progress:
        summary = demo_service.seed(engine, orders=orders, seed=seed_, progress=progress)
    data = asdict(summary) if is_dataclass(summary) else dict(vars(summary))
    if as_json:
        print_json(data)
    else:
        result_line(
            f"seeded {data['orders']:,} orders, {data['customers']:,} customers, "
            f"{data['products']:,} products, {data['lines']:,} lines "
            f"in {data['seconds']:.1f} s (operator: demo)"
        )


DEMO_REFUND_LIMIT = 5_000  # minor units: agents' refunds above 50.00 wait for approval


@app.command("live")
def live(
    ctx: typer.Context,
    orders: Annotated[
        int, typer.Option("--orders", min=1, help="Pending orders to pay through localstripe.")
    ] = 12,
    over: Annotated[
        float, typer.Option("--over", min=1, help="Seconds over which the customer pays.")
    ] = 60.0,
    interval: Annotated[
        float, typer.Option("--interval", min=1, help="Seconds between sync runs.")
    ] = 5.0,
) -> None:
    """Open the desk with live payment sync against a local localstripe.

    Starts localstripe on 127.0.0.1 (state in memory), creates payment intents
    there for pending orders, and confirms most of them over the first minute,
    so pending orders turn to processing (or on hold) by themselves. Stops
    localstripe when the desk closes."""
    try:
        import localstripe  # noqa: F401
    except ImportError:
        raise ServiceError("live demo needs localstripe: pip install 'pulse-tui[demo]'") from None
    from pulse_tui.config import GatewayConfig
    from pulse_tui.services import demo_live

    from .main import open_desk

    st = state(ctx)
    engine = st.engine()
    with demo_live.LocalStripe() as server:
        customer = demo_live.Customer(server.url)
        try:
            intents = demo_live.create_intents(engine, customer, count=orders)
            rehomed = demo_live.rehome_card_payments(engine, customer)
            if "refund_limit_minor" not in st.settings.raw:
                # a low limit in the demo, so the approvals queue has work in it
                st.settings.refund_limit_minor = DEMO_REFUND_LIMIT
            waiting, returns = demo_live.add_desk_examples(engine, st.settings, rehomed)
            err_console().print(
                f"localstripe on {server.url}: {len(intents)} payment intent(s) created; "
                f"the customer pays over the next {over:.0f} s; the {len(rehomed)} newest "
                f"card payments are real there (refunds move money); {waiting} refund(s) "
                f"wait for approval (F), {returns} return(s) to authorise"
            )
            st.settings.gateways["stripe"] = GatewayConfig(
                "stripe", server.url, secret_key=demo_live.SECRET
            )
            st.settings.sync_interval_s = interval
            confirmer = demo_live.Confirmer(customer, intents, over=over)
            confirmer.start()
            try:
                open_desk(st)
            finally:
                confirmer.stop()
                confirmer.join(5)
        finally:
            customer.close()
