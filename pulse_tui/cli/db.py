"""`pulse db upgrade`: apply pending migrations (no operator needed)."""

from __future__ import annotations

import typer

from pulse_tui.storage.db import current_revision

from .app_context import state
from .output import result_line

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(ctx: typer.Context) -> None:
    """Create or upgrade the schema to the newest revision (safe to repeat)."""
    st = state(ctx)
    st.engine(migrate=False)
    did = st.migrate(announce=False)
    rev = current_revision(st.engine(migrate=False))
    if did:
        result_line(f"upgraded {st.safe_url} to revision {rev}")
    else:
        result_line(f"{st.safe_url} is up to date (revision {rev})")
