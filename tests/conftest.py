"""Shared fixtures: a fresh migrated SQLite file per test, actors, clocks."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests import factories


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "pulse.sqlite"


@pytest.fixture
def engine(db_path: Path) -> Engine:
    eng = factories.new_engine(db_path)
    factories.add_operators(eng)
    factories.add_catalog(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def clock() -> factories.FrozenClock:
    return factories.FrozenClock()


@pytest.fixture
def admin_desk(engine: Engine, clock: factories.FrozenClock):
    return factories.desk(engine, factories.ADMIN, clock)


@pytest.fixture
def small_db(tmp_path: Path) -> Engine:
    eng = factories.build_small_db(tmp_path / "small.sqlite")
    yield eng
    eng.dispose()
