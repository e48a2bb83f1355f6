"""`pulse returns`: placeholder, filled in by the returns work in progress."""

from __future__ import annotations

import typer

app = typer.Typer(help="returns (work in progress).", no_args_is_help=True)
