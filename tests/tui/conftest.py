"""TUI fixtures: an app on a small deterministic database with time frozen.

The desk's clock is constant (START), so "3 days ago" renders the same on every
run; screens must take "now" from ``app.desk.now()``, never datetime.now().
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from pulse_tui.services.context import Actor
from pulse_tui.services.desk import Desk
from tests import factories


@pytest.fixture(scope="session")
def _small_db_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tui") / "small.sqlite"
    factories.build_small_db(path).dispose()
    return path


@pytest.fixture
def small_db_path(_small_db_template: Path, tmp_path: Path) -> Path:
    """A private copy of one deterministic build per session (tests may write to it)."""
    path = tmp_path / "small.sqlite"
    for suffix in ("", "-wal", "-shm"):
        src = Path(f"{_small_db_template}{suffix}")
        if src.exists():
            shutil.copyfile(src, f"{path}{suffix}")
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
