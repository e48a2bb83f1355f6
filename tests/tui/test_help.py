"""`?` lists every binding of the current screen with its description."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable

from pulse_tui.screens.help import HelpScreen, binding_rows
from pulse_tui.screens.order_list import OrderListScreen

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_help_lists_the_list_screens_bindings(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        table = app.screen.query_one(DataTable)
        rows = [tuple(str(c) for c in table.get_row_at(i)) for i in range(table.row_count)]
        by_action = {desc: key for key, desc, _where in rows}
        for desc, key in {
            "Filter": "/",
            "Sort": "s",
            "Reverse": "r",
            "First order": "g",
            "Last order": "G",
            "Open": "⏎",
            "Help": "?",
            "Commands": ":",
        }.items():
            assert key in by_action[desc], (desc, by_action.get(desc))
        assert "j" in by_action["Cursor down"] and "↓" in by_action["Cursor down"]
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, OrderListScreen)


async def test_every_list_binding_has_a_description(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        for b in OrderListScreen.BINDINGS:
            assert b.description and b.id, b  # type: ignore[union-attr]
        listed = {desc for _k, desc, _w in binding_rows(app.screen)}
        assert {"Filter", "Sort", "Next tab", "Prev tab", "Clear filter", "Reload"} <= listed
