"""`pulse customers add|list|email-pref`: who the desk writes to.

Thin door over services.customers: the email address is validated there
(email-validator, stored normalised); a bad one exits 2 with the validator's
reason and writes nothing.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from pulse_tui.services.customers import CustomerRow, CustomerService
from pulse_tui.services.desk import Desk
from pulse_tui.services.errors import InvalidInput

from .app_context import state
from .output import iso, message, out_console, output_mode, print_csv, print_json, result_line

app = typer.Typer(help="Customers: add, list, email preference.", no_args_is_help=True)

FIELDS = (
    "id",
    "name",
    "email",
    "phone",
    "company",
    "locale",
    "transactional_email",
    "orders",
    "created_at",
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (only JSON) on stdout.")]


def service(desk: Desk) -> CustomerService:
    svc = getattr(desk, "customers", None)
    return svc if isinstance(svc, CustomerService) else CustomerService(desk.ctx)


def customer_json(c: CustomerRow) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "email": c.email,
        "phone": c.phone,
        "company": c.company,
        "locale": c.locale,
        "transactional_email": c.transactional_email,
        "orders": c.orders,
        "created_at": iso(c.created_at),
    }


def customer_id(text: str) -> int:
    t = text.strip().lstrip("#")
    if not t.isdigit() or int(t) < 1:
        raise InvalidInput(f"bad customer id {text!r}: use a number such as 42 or #42")
    return int(t)


def _pref(allowed: bool) -> str:
    return "transactional email allowed" if allowed else "no transactional email"


@app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The customer's full name.")],
    email: Annotated[str, typer.Option("--email", metavar="EMAIL", help="Email address.")],
    phone: Annotated[str | None, typer.Option(help="Phone number.")] = None,
    company: Annotated[str | None, typer.Option(help="Company name.")] = None,
    locale: Annotated[
        str, typer.Option(help="Locale for emails (language, money format): en_US, de_DE, …")
    ] = "en_US",
    no_transactional: Annotated[
        bool,
        typer.Option(
            "--no-transactional-email", help="Send this customer no notifications at all."
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Add a customer (agents, admins). The email is validated and stored normalised."""
    c = service(state(ctx).desk()).create(
        name,
        email,
        phone=phone,
        company=company,
        locale=locale,
        transactional_email=not no_transactional,
    )
    if as_json:
        print_json(customer_json(c))
    else:
        result_line(f"added customer #{c.id} {c.name} <{c.email}> ({_pref(c.transactional_email)})")


@app.command("list")
def list_(
    ctx: typer.Context,
    search: Annotated[
        str | None, typer.Option(help="A fragment of the name or email, or #ID.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=5000, help="At most this many.")] = 50,
    as_json: JsonOpt = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV on stdout.")] = False,
) -> None:
    """List customers, oldest first (anyone who may read orders)."""
    mode = output_mode(as_json, as_csv)
    rows, more = service(state(ctx).desk()).list(search, limit=limit)
    data = [customer_json(c) for c in rows]
    if mode == "json":
        print_json(data)
    elif mode == "csv":
        print_csv(data, FIELDS)
    else:
        t = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        for head in ("id", "name", "email", "company", "locale", "email ok", "orders"):
            t.add_column(head, justify="right" if head in ("id", "orders") else "left")
        for c in rows:
            t.add_row(
                str(c.id),
                c.name,
                c.email,
                c.company or "",
                c.locale,
                "yes" if c.transactional_email else "no",
                str(c.orders),
            )
        out_console().print(t)
    if not rows:
        message(f"no customers match {search!r}" if search else "no customers yet")
    elif more:
        message(f"showing the first {len(rows)}; more match (raise --limit)")


@app.command("email-pref")
def email_pref(
    ctx: typer.Context,
    cid: Annotated[str, typer.Argument(metavar="ID", help="Customer id (42 or #42).")],
    allow: Annotated[
        bool | None,
        typer.Option(
            "--allow/--block", help="Allow or block transactional email to this customer."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Allow or block transactional email (agents, admins).

    A blocked customer's notifications are skipped with a note on the order's timeline."""
    if allow is None:
        raise InvalidInput("choose --allow or --block")
    ident = customer_id(cid)
    svc = service(state(ctx).desk())
    before = svc.get(ident)
    c = svc.set_transactional_email(ident, allow)
    if as_json:
        print_json(customer_json(c))
        return
    same = " (unchanged)" if before.transactional_email == c.transactional_email else ""
    result_line(f"customer #{c.id} {c.name}: {_pref(c.transactional_email)}{same}")
