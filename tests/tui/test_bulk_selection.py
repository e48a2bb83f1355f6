"""Selection in the order list: space, v ranges, * (the query), ctrl+space, the count,
what a filter change does to a selection, and who is offered marks at all."""

from __future__ import annotations

import pytest

from pulse_tui.domain.filters import OrderFilter
from pulse_tui.domain.status import OrderStatus
from pulse_tui.screens.order_list import OrderListScreen
from pulse_tui.services.bulk import Selection
from pulse_tui.widgets.order_table import MARK, OrderTable
from pulse_tui.widgets.selection_bar import SelectionBar
from tests import factories
from tests.tui.helpers import settle

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def ids_of(app, *numbers: str) -> set[int]:  # type: ignore[no-untyped-def]
    rows = app.screen.query_one(OrderTable).window.rows
    by_number = {r.number: r.id for r in rows}
    return {by_number[n] for n in numbers}


def marked_lines(table: OrderTable) -> list[str]:
    """The order numbers painted with the mark glyph (what the operator sees)."""
    out = []
    for y in range(1, table.scrollable_content_region.height):
        text = table.render_line(y).text
        if text.startswith(MARK):
            out.append(text[1:].split()[0])
    return out


def bar(app) -> str:  # type: ignore[no-untyped-def]
    return app.screen.query_one(SelectionBar).text


def notices(app) -> list[str]:  # type: ignore[no-untyped-def]
    return [n.message for n in app._notifications]


async def test_space_marks_and_moves_v_marks_a_range_ctrl_space_clears(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, OrderListScreen)
        table = screen.query_one(OrderTable)
        assert bar(app) == "" and screen.selection() is None

        await pilot.press("space", "space")  # marks 24 and 23, the cursor moves on
        assert table.current is not None and table.current.number == "PB-100022"
        assert screen.marks.ids == ids_of(app, "PB-100024", "PB-100023")
        assert marked_lines(table) == ["PB-100024", "PB-100023"]
        assert bar(app).startswith(f"{MARK} 2 selected")

        await pilot.press("space", "k", "k", "space")  # 22 marked; 23 unmarked again
        assert screen.marks.ids == ids_of(app, "PB-100024", "PB-100022")

        # range: from 20 down to 17, back up to 18 shrinks it, v ends it
        await pilot.press("j", "j", "v", "j", "j", "j", "k")
        assert screen.marks.in_range
        assert screen.marks.ids == ids_of(
            app, "PB-100024", "PB-100022", "PB-100020", "PB-100019", "PB-100018"
        )
        assert "range" in bar(app)
        await pilot.press("v", "j", "j")
        assert not screen.marks.in_range
        assert len(screen.marks.ids) == 5
        assert bar(app).startswith(f"{MARK} 5 selected")
        selection = screen.selection()
        assert selection is not None and set(selection.ids) == screen.marks.ids

        await pilot.press("ctrl+space")
        assert screen.selection() is None and bar(app) == "" and marked_lines(table) == []
        await pilot.press("space")
        await pilot.press("ctrl+@")  # what most terminals send for ctrl+space
        assert screen.selection() is None


async def test_star_selects_the_query_with_its_tab(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = app.screen
        screen.show_tab("processing")
        await settle(pilot)
        assert screen.apply_query("country:US")
        await settle(pilot)
        await pilot.press("asterisk")
        await settle(pilot)
        expected = OrderFilter(countries=("US",), statuses=(OrderStatus.PROCESSING,))
        assert screen.selection() == Selection(filter=expected)
        n = app.desk.count_orders(expected)
        assert n > 0
        assert f"All matching selected: {n} order" in bar(app)
        table = screen.query_one(OrderTable)
        assert len(marked_lines(table)) == n  # every row shown is marked

        # single marks are refused while the query is selected
        await pilot.press("space")
        assert screen.selection() == Selection(filter=expected)
        assert any("ctrl+space clears" in m for m in notices(app))

        # sorting keeps the set; a new filter does not silently become the selection
        await pilot.press("s")
        await settle(pilot)
        assert screen.selection() == Selection(filter=expected)
        assert screen.apply_query("country:DE")
        await settle(pilot)
        assert screen.selection() is None and bar(app) == ""
        assert any("Selection cleared: the filter changed" in m for m in notices(app))


async def test_marks_survive_a_filter_change_and_b_needs_a_selection(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = app.screen
        await pilot.press("b")
        assert isinstance(app.screen, OrderListScreen)
        assert any("Select orders first" in m for m in notices(app))
        await pilot.press("space")
        marked = set(screen.marks.ids)
        assert screen.apply_query("status:pending")
        await settle(pilot)
        assert screen.marks.ids == marked  # ids, not rows: they stay marked
        assert bar(app).startswith(f"{MARK} 1 selected")


@pytest.mark.parametrize("actor", [factories.AGENT, factories.VIEWER], ids=["agent", "viewer"])
async def test_roles_without_bulk_actions_get_no_marks(make_app, actor) -> None:  # type: ignore[no-untyped-def]
    app = make_app(actor=actor)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = app.screen
        shown = {b.binding.action for b in screen.active_bindings.values()}
        assert not shown & {"toggle_mark", "mark_range", "mark_all", "clear_marks", "bulk"}
        await pilot.press("space", "asterisk", "b")
        await settle(pilot)
        assert screen.selection() is None and bar(app) == ""
        assert isinstance(app.screen, OrderListScreen)
