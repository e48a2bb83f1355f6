"""Themes: registered, default pulse-dark, switch persisted to the config file."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from pulse_tui.app import build_app
from pulse_tui.config import Settings
from pulse_tui.services.desk import Desk
from pulse_tui.storage.db import make_engine
from pulse_tui.themes.themes import THEMES
from tests import factories

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "config.toml"
    monkeypatch.setenv("PULSE_CONFIG", str(path))
    return path


def _app(db: Path, settings: Settings | None = None, theme: str | None = None):  # type: ignore[no-untyped-def]
    desk = Desk(make_engine(f"sqlite:///{db}"), factories.ADMIN, clock=lambda: factories.START)
    return build_app(desk, theme=theme, settings=settings)


async def test_themes_registered_and_default(make_app, config_file: Path) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert {"pulse-dark", "pulse-light", "kiosk"} <= set(app.available_themes)
        assert app.theme == "pulse-dark"
        assert not THEMES["pulse-light"].dark
    assert not config_file.exists()  # nothing persisted without Settings


async def test_theme_switch_is_persisted(small_db_path: Path, config_file: Path) -> None:
    settings = Settings(database_url="sqlite://", theme="pulse-light")
    app = _app(small_db_path, settings)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.theme == "pulse-light"  # from the settings
        assert not config_file.exists()  # starting up is not a choice
        await pilot.press("ctrl+t")  # cycle → kiosk
        await pilot.pause()
        assert app.theme == "kiosk"
    assert tomllib.loads(config_file.read_text())["theme"] == "kiosk"


async def test_explicit_theme_wins_and_unknown_falls_back(
    small_db_path: Path, config_file: Path
) -> None:  # type: ignore[no-untyped-def]
    app = _app(small_db_path, theme="kiosk")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.theme == "kiosk"
    app = _app(small_db_path, theme="no-such-theme")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.theme == "pulse-dark"
