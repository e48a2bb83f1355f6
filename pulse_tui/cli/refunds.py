"""`pulse refunds`: placeholder, filled in by the refunds work in progress."""

from __future__ import annotations

import typer

app = typer.Typer(help="refunds (work in progress).", no_args_is_help=True)
