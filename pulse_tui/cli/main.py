"""The `pulse` command: the desk's scriptable door.

``pulse`` alone opens the TUI; subcommands run the admin side. Every command
works through one Desk built for this invocation; errors from services and
bad option values become one ``error: ...`` line on stderr and a documented
exit code (see exit_codes.py and the README).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from pulse_tui.config import config_path
from pulse_tui.domain.filters import FilterError
from pulse_tui.domain.money import MoneyError
from pulse_tui.services.errors import ServiceError

from . import (
    bulk,
    customers,
    db,
    demo,
    exit_codes,
    export,
    notify,
    operators,
    orders,
    payments,
    refunds,
    returns,
)
from . import sync as sync_cli
from .app_context import CliState, state
from .output import fail


class PulseGroup(TyperGroup):
    """Turns expected errors into one stderr line and an exit code (no traceback)."""

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except ServiceError as exc:
            fail(exc.message, exc.exit_code)
        except (FilterError, MoneyError) as exc:
            fail(str(exc), exit_codes.BAD_INPUT)


app = typer.Typer(
    cls=PulseGroup,
    name="pulse",
    help="Pulse order desk. Without a command, opens the terminal desk.",
    invoke_without_command=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
app.add_typer(orders.app, name="orders")
app.add_typer(operators.app, name="operators")
app.add_typer(db.app, name="db")
app.add_typer(demo.app, name="demo")
app.add_typer(sync_cli.app, name="sync")
app.add_typer(payments.app, name="payments")
app.add_typer(refunds.app, name="refunds")
app.add_typer(returns.app, name="returns")
app.add_typer(bulk.app, name="bulk")
app.add_typer(customers.app, name="customers")
app.add_typer(notify.app, name="notify")
app.command("export")(export.export)


@app.callback()
def main(
    ctx: typer.Context,
    db_url: Annotated[
        str | None,
        typer.Option(
            "--db",
            metavar="URL",
            help="SQLAlchemy database URL (else PULSE_DATABASE_URL, config file, default).",
        ),
    ] = None,
    as_operator: Annotated[
        str | None,
        typer.Option(
            "--as",
            metavar="OPERATOR",
            help="Act as this operator (else PULSE_OPERATOR, else your OS user's operator).",
        ),
    ] = None,
) -> None:
    st = CliState(db_url=db_url, operator=as_operator)
    ctx.obj = st
    ctx.call_on_close(st.close)
    if ctx.invoked_subcommand is None:
        open_desk(st)


def open_desk(st: CliState) -> None:
    """The TUI, handed a ready Desk (imported lazily: scripts don't pay for Textual)."""
    desk_ = st.desk()
    from pulse_tui.app import build_app

    build_app(desk_, theme=st.settings.theme, settings=st.settings).run()


@app.command("config-path")
def config_path_cmd(ctx: typer.Context) -> None:
    """Print where the config file is read from (PULSE_CONFIG overrides it)."""
    state(ctx)
    typer.echo(str(config_path()))


def run() -> None:
    """Console-script entry point."""
    app(prog_name="pulse")


if __name__ == "__main__":  # pragma: no cover
    run()
