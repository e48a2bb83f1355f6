"""ARCHITECTURE.md's role × action matrix, through the services."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine

from pulse_tui.domain.permissions import Role
from pulse_tui.services.desk import Desk
from pulse_tui.services.errors import Denied
from tests import factories
from tests.factories import ADMIN, place
from tests.services.test_orders import db_state, set_order, shipped_order


def _pending(d: Desk) -> str:
    return place(d).number


def _paid(d: Desk) -> str:
    o = place(d)
    d.orders.confirm_payment(o.number)
    return o.number


def _authorized(d: Desk) -> str:
    o = place(d)
    set_order(d.engine, o.number, payment_status="authorized")
    return o.number


def _held(d: Desk) -> str:
    o = place(d)
    d.orders.hold(o.number, reason="check")
    return o.number


def _read(d: Desk, n: str) -> Any:
    detail = d.orders.detail(n)
    page = d.list_orders()
    assert [r.number for r in page.rows] == [n]
    assert d.count_orders() == 1
    assert d.status_counts()["all"] == 1
    return detail


Setup = Callable[[Desk], str]
Act = Callable[[Desk, str], Any]

ACTIONS: dict[str, tuple[Setup, Act, set[Role]]] = {
    "read": (_pending, _read, set(Role)),
    "note": (
        _pending,
        lambda d, n: d.orders.add_note(n, "hi"),
        {Role.WAREHOUSE, Role.AGENT, Role.ADMIN},
    ),
    "ship": (
        _paid,
        lambda d, n: d.orders.ship(n, carrier="DHL", tracking="JD9"),
        {Role.WAREHOUSE, Role.AGENT, Role.ADMIN},
    ),
    "deliver": (
        lambda d: shipped_order(d).number,
        lambda d, n: d.orders.deliver(n),
        {Role.WAREHOUSE, Role.AGENT, Role.ADMIN},
    ),
    "hold": (_pending, lambda d, n: d.orders.hold(n, reason="why"), {Role.AGENT, Role.ADMIN}),
    "release": (_held, lambda d, n: d.orders.release(n), {Role.AGENT, Role.ADMIN}),
    "cancel": (_pending, lambda d, n: d.orders.cancel(n, reason="other"), {Role.AGENT, Role.ADMIN}),
    "tag": (_pending, lambda d, n: d.orders.tag(n, ["vip"]), {Role.AGENT, Role.ADMIN}),
    "start_processing": (
        _authorized,
        lambda d, n: d.orders.start_processing(n),
        {Role.AGENT, Role.ADMIN},
    ),
    "transition_processing": (
        _authorized,
        lambda d, n: d.orders.transition(n, "processing"),
        {Role.AGENT, Role.ADMIN},
    ),
    "transition_cancel": (
        _pending,
        lambda d, n: d.orders.transition(n, "cancelled", reason="other"),
        {Role.AGENT, Role.ADMIN},
    ),
    "confirm_payment": (
        _pending,
        lambda d, n: d.orders.confirm_payment(n),
        {Role.AGENT, Role.ADMIN},
    ),
    "place": (lambda d: "", lambda d, n: place(d), {Role.AGENT, Role.ADMIN}),
    "operators_add": (
        lambda d: "",
        lambda d, n: d.operators.add("newbie", role="viewer"),
        {Role.ADMIN},
    ),
    "operators_list": (lambda d: "", lambda d, n: d.operators.list(), {Role.ADMIN}),
    "operators_disable": (
        lambda d: "",
        lambda d, n: d.operators.set_active("vic", False),
        {Role.ADMIN},
    ),
}

CASES = [(action, role) for action in ACTIONS for role in Role]


@pytest.mark.parametrize(("action", "role"), CASES, ids=[f"{a}-{r}" for a, r in CASES])
def test_role_action_matrix(engine: Engine, action: str, role: Role) -> None:
    setup, act, allowed = ACTIONS[action]
    number = setup(factories.desk(engine, ADMIN))
    d = factories.desk(engine, factories.ACTORS[role])
    before = db_state(engine)
    if role in allowed:
        act(d, number)
        if action not in ("read", "operators_list"):
            assert db_state(engine) != before
        else:
            assert db_state(engine) == before
    else:
        with pytest.raises(Denied) as exc:
            act(d, number)
        assert str(exc.value).startswith(f"{d.actor.username}: a {role} may not ")
        assert exc.value.exit_code == 5
        assert db_state(engine) == before


def test_matrix_matches_architecture() -> None:
    """The table above, read row by row, is ARCHITECTURE.md's."""
    w, a, ad = Role.WAREHOUSE, Role.AGENT, Role.ADMIN
    expected = {
        "read": {Role.VIEWER, w, a, ad},
        "note": {w, a, ad},
        "ship": {w, a, ad},
        "deliver": {w, a, ad},
        "hold": {a, ad},
        "release": {a, ad},
        "cancel": {a, ad},
        "tag": {a, ad},
        "start_processing": {a, ad},
        "confirm_payment": {a, ad},
        "place": {a, ad},
        "operators_add": {ad},
    }
    for action, roles in expected.items():
        assert ACTIONS[action][2] == roles


@pytest.mark.parametrize(
    ("role", "sees_payments"),
    [(Role.VIEWER, True), (Role.WAREHOUSE, False), (Role.AGENT, True), (Role.ADMIN, True)],
)
def test_warehouse_sees_no_payment_details(engine: Engine, role: Role, sees_payments: bool) -> None:
    admin = factories.desk(engine, ADMIN)
    n = _paid(admin)
    admin.orders.cancel(n, reason="other")
    d = factories.desk(engine, factories.ACTORS[role]).orders.detail(n)
    assert (len(d.payments), len(d.refunds)) == ((1, 1) if sees_payments else (0, 0))
    assert len(d.lines) == 1 and d.events


@pytest.mark.parametrize("role", list(Role))
def test_offered_transitions_follow_role(engine: Engine, role: Role) -> None:
    admin = factories.desk(engine, ADMIN)
    n = _paid(admin)
    d = factories.desk(engine, factories.ACTORS[role])
    order = d.orders.detail(n).order
    expected = {
        Role.VIEWER: [],
        Role.WAREHOUSE: ["ship"],
        Role.AGENT: ["ship", "cancel"],
        Role.ADMIN: ["ship", "cancel"],
    }[role]
    assert [t.action for t in d.orders.offered_transitions(order)] == expected
