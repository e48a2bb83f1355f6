"""The App shell: factory, header, detail opening, OrderChanged routing."""

from __future__ import annotations

import pytest

from pulse_tui.app import PulseApp, build_app
from pulse_tui.screens.order_list import OrderListScreen
from pulse_tui.services.desk import Desk
from pulse_tui.storage.db import make_engine
from tests import factories

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_build_app_receives_the_desk(small_db_path) -> None:  # type: ignore[no-untyped-def]
    desk = Desk(make_engine(f"sqlite:///{small_db_path}"), factories.AGENT)
    app = build_app(desk)
    assert isinstance(app, PulseApp)
    assert app.desk is desk
    other = build_app(Desk(make_engine(f"sqlite:///{small_db_path}"), factories.VIEWER))
    assert other.desk is not desk  # no module-level state shared between apps


async def test_header_shows_operator_and_role(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(actor=factories.WAREHOUSE)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert "Wes Warehouse" in app.sub_title and "warehouse" in app.sub_title
        assert isinstance(app.screen, OrderListScreen)


async def test_unknown_order_ref_does_not_crash(make_app) -> None:  # type: ignore[no-untyped-def]
    from pulse_tui import messages

    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        app.post_message(messages.OpenOrder("PB-100003"))
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.is_running
        try:
            from pulse_tui.screens.order_detail import OrderDetailScreen
        except ImportError:
            assert any("not available" in n.message for n in app._notifications)
        else:
            assert isinstance(app.screen, OrderDetailScreen)


async def test_quit_key(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running
