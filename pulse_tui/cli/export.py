"""`pulse export`: placeholder, filled in by the bulk/export work in progress."""

from __future__ import annotations

import typer


def export(ctx: typer.Context) -> None:
    """Export orders (work in progress)."""
    raise typer.Exit(2)
