"""Snapshots of the list, filter, empty state, help, palette and themes at 80×24 and 120×40.

The database is the small deterministic one, the desk's clock is frozen, and
every input's cursor blink is off, so an SVG changes only when the screen does.
Each snapshot waits for the list's workers first: it shows rows, not "loading".
"""

from __future__ import annotations

import pytest
from textual.widgets import Input

SIZES = [(80, 24), (120, 40)]
IDS = ["80x24", "120x40"]


async def settle(pilot) -> None:  # type: ignore[no-untyped-def]
    app = pilot.app
    for _ in range(3):
        await pilot.pause()
        await app.workers.wait_for_complete()
    for inp in app.screen.query(Input):
        inp.cursor_blink = False
    await pilot.pause(0.2)  # footer/bindings refresh after focus settles
    for inp in app.screen.query(Input):
        inp.cursor_blink = False
    await pilot.pause()


def _before(*keys: str, query: str | None = None):  # type: ignore[no-untyped-def]
    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await settle(pilot)
        if query is not None:
            pilot.app.screen.apply_query(query)
            await settle(pilot)
        if keys:
            await pilot.press(*keys)
            await pilot.pause(0.6)  # palette search debounce
            await settle(pilot)

    return run_before


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_list(snap_compare, make_app, size) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(make_app(), terminal_size=size, run_before=_before())


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_list_filtered(snap_compare, make_app, size) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(
        make_app(), terminal_size=size, run_before=_before(query="status:processing pay:paid")
    )


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_list_bad_query(snap_compare, make_app, size) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(make_app(), terminal_size=size, run_before=_before(query="country:Germany"))


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_list_empty_result(snap_compare, make_app, size) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(
        make_app(), terminal_size=size, run_before=_before(query="country:BR total:>100")
    )


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_help(snap_compare, make_app, size) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(make_app(), terminal_size=size, run_before=_before("question_mark"))


@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_palette(snap_compare, make_app, size) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(make_app(), terminal_size=size, run_before=_before("colon", *"PB-100007"))


@pytest.mark.parametrize("theme", ["pulse-light", "kiosk"])
@pytest.mark.parametrize("size", SIZES, ids=IDS)
def test_theme(snap_compare, make_app, size, theme) -> None:  # type: ignore[no-untyped-def]
    # pulse-dark (the default) is what every other snapshot shows
    assert snap_compare(make_app(theme=theme), terminal_size=size, run_before=_before())
