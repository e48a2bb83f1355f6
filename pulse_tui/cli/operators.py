"""`pulse operators add|list|disable|enable`: who may use the desk."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from pulse_tui.services.operators import operator_count
from pulse_tui.storage.models import Operator

from .app_context import state
from .output import iso, out_console, output_mode, print_csv, print_json, result_line

app = typer.Typer(
    help="Operators and roles (admins only, except the very first).", no_args_is_help=True
)

FIELDS = ("username", "display_name", "role", "unix_user", "active", "created_at")


def operator_json(op: Operator) -> dict[str, Any]:
    return {
        "username": op.username,
        "display_name": op.display_name,
        "role": op.role,
        "unix_user": op.unix_user,
        "active": op.active,
        "created_at": iso(op.created_at),
    }


@app.command("add")
def add(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(metavar="NAME", help="Login name, e.g. ada.")],
    role: Annotated[str, typer.Option("--role", help="admin, agent, warehouse or viewer.")],
    display_name: Annotated[str | None, typer.Option("--name", help="Display name.")] = None,
    unix_user: Annotated[
        str | None, typer.Option("--unix-user", help="OS user that acts as this operator.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the operator as JSON.")] = False,
) -> None:
    """Add an operator. The first operator of a new database needs no acting admin."""
    st = state(ctx)
    bootstrap = operator_count(st.engine()) == 0
    desk = st.system_desk() if bootstrap else st.desk()
    op = desk.operators.add(
        username, role=role, display_name=display_name, unix_user=unix_user, bootstrap=bootstrap
    )
    if as_json:
        print_json(operator_json(op))
    else:
        extra = f", OS user {op.unix_user}" if op.unix_user else ""
        note = " (first operator)" if bootstrap else ""
        result_line(f"added operator {op.username} ({op.role}{extra}){note}")


@app.command("list")
def list_(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV on stdout.")] = False,
) -> None:
    """List every operator (admins)."""
    mode = output_mode(as_json, as_csv)
    ops = [operator_json(o) for o in state(ctx).desk().operators.list()]
    if mode == "json":
        print_json(ops)
    elif mode == "csv":
        print_csv(ops, FIELDS)
    else:
        from rich.table import Table

        t = Table("username", "name", "role", "OS user", "active", "created")
        for o in ops:
            t.add_row(
                o["username"],
                o["display_name"],
                o["role"],
                o["unix_user"] or "",
                "yes" if o["active"] else "no",
                (o["created_at"] or "")[:16].replace("T", " "),
            )
        out_console().print(t)


@app.command("disable")
def disable(ctx: typer.Context, username: Annotated[str, typer.Argument(metavar="NAME")]) -> None:
    """Disable an operator (they can no longer act; history keeps their name)."""
    op = state(ctx).desk().operators.set_active(username, False)
    result_line(f"disabled operator {op.username}")


@app.command("enable")
def enable(ctx: typer.Context, username: Annotated[str, typer.Argument(metavar="NAME")]) -> None:
    """Re-enable a disabled operator."""
    op = state(ctx).desk().operators.set_active(username, True)
    result_line(f"enabled operator {op.username}")
