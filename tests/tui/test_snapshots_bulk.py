"""Snapshots of the selection and the bulk actions screen (preview, progress, results)
at 80×24 and 120×40, on the small database with time frozen.

Regenerate with ``.venv/bin/pytest tests/tui/test_snapshots_bulk.py --snapshot-update``
and look at the SVGs before committing them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from textual.widgets import Input

from pulse_tui.services.bulk import Progress

SIZES = [(80, 24), (120, 40)]
IDS = ["80x24", "120x40"]


def _reason(screen: Any) -> None:
    screen.query_one("#hold-reason", Input).value = "waiting for stock"  # typing is slow


HOLD = (("down", "down", "enter"), _reason, "enter")  # Put on hold, a reason, preview


async def _settle(pilot: Any) -> None:
    app = pilot.app
    for _ in range(3):
        await pilot.pause()
        await app.workers.wait_for_complete()
    await pilot.pause()


Step = str | tuple[str, ...] | Callable[[Any], None]


def steps(*keys: Step) -> Callable[[Any], Any]:
    """run_before: press ``keys`` on the list (and on the screens they open; a
    callable gets the screen instead), letting workers finish after each key
    or tuple of keys; then a still picture (no blink, no toasts)."""

    async def run_before(pilot: Any) -> None:
        await _settle(pilot)
        for key in keys:
            if callable(key):
                key(pilot.app.screen)
            else:
                await pilot.press(*((key,) if isinstance(key, str) else key))
            await _settle(pilot)
        for widget in pilot.app.screen.query(Input):
            widget.cursor_blink = False
        pilot.app.clear_notifications()
        await pilot.pause(0.2)

    return run_before


MARKS = (("space", "space", "j", "v", "j", "j", "v", "j"),)  # two marks, a range of three


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_selection(snap_compare, make_app, size) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(make_app(), terminal_size=size, run_before=steps(*MARKS))


@pytest.mark.parametrize("theme", ["pulse-light", "kiosk"])
def test_selection_theme(snap_compare, make_app, theme) -> None:  # type: ignore[no-untyped-def]
    # pulse-dark is test_selection; marks must read in every theme
    assert snap_compare(make_app(theme=theme), terminal_size=(80, 24), run_before=steps(*MARKS))


def test_selection_all_matching(snap_compare, make_app) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(
        make_app(), terminal_size=(120, 40), run_before=steps("right_square_bracket", "asterisk")
    )


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_preview(snap_compare, make_app, size) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(make_app(), terminal_size=size, run_before=steps("asterisk", "b", *HOLD))


def _progress(screen: Any) -> None:
    # the running state, set directly rather than racing the apply worker
    screen.show_progress(Progress(done=10, total=24, changed=7, skipped=3))


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_progress(snap_compare, make_app, size) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(
        make_app(), terminal_size=size, run_before=steps("asterisk", "b", *HOLD, _progress)
    )


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_results(snap_compare, make_app, size) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(
        make_app(), terminal_size=size, run_before=steps("asterisk", "b", *HOLD, "a")
    )
