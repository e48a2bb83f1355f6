"""`pulse bulk`: placeholder, filled in by the bulk work in progress."""

from __future__ import annotations

import typer

app = typer.Typer(help="bulk (work in progress).", no_args_is_help=True)
