"""TUI fixtures: an app on a small deterministic database with time frozen.

The desk's clock is constant (START), so "3 days ago" renders the same on every
run; screens must take "now" from ``app.desk.now()``, never datetime.now().
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pulse_tui.services.context import Actor
from pulse_tui.services.desk import Desk
from tests import factories


@pytest.fixture
def small_db_path(tmp_path: Path) -> Path:
    path = tmp_path / "small.sqlite"
    factories.build_small_db(path).dispose()
    return path


@pytest.fixture
def make_app(small_db_path: Path) -> Callable[..., object]:
    """make_app(actor=ADMIN, theme=None) → a PulseApp on the small database."""
    from pulse_tui.app import build_app
    from pulse_tui.storage.db import make_engine

    def factory(actor: Actor = factories.ADMIN, theme: str | None = None):  # type: ignore[no-untyped-def]
        engine = make_engine(f"sqlite:///{small_db_path}")
        desk = Desk(engine, actor, clock=lambda: factories.START)
        return build_app(desk, theme=theme)

    return factory
