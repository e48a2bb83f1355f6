"""Every (from, to) pair of the status machine, and what each role is offered."""

from __future__ import annotations

import pytest

from pulse_tui.domain.permissions import Role
from pulse_tui.domain.status import (
    TRANSITIONS,
    FulfillmentStatus,
    OrderState,
    OrderStatus,
    PaymentStatus,
    TransitionError,
    check_transition,
    fulfillment_after_shipping,
    hold_problem,
    offered_transitions,
)

S = OrderStatus
OK = None
MANUAL_REFUND = "refunded is set by the refund process, not by hand"

# Expectation for a paid, physical order that is not on hold, acted on by an admin.
# None means allowed; otherwise the exact TransitionError message.
TABLE: dict[tuple[OrderStatus, OrderStatus], str | None] = {
    (S.PENDING, S.PENDING): "order is already pending",
    (S.PENDING, S.PROCESSING): OK,
    (S.PENDING, S.SHIPPED): "cannot go from pending to shipped",
    (S.PENDING, S.DELIVERED): "cannot go from pending to delivered",
    (S.PENDING, S.CANCELLED): OK,
    (S.PENDING, S.REFUNDED): "cannot go from pending to refunded",
    (S.PROCESSING, S.PENDING): "cannot go from processing to pending",
    (S.PROCESSING, S.PROCESSING): "order is already processing",
    (S.PROCESSING, S.SHIPPED): OK,
    (S.PROCESSING, S.DELIVERED): "order has physical goods: ship it first",
    (S.PROCESSING, S.CANCELLED): OK,
    (S.PROCESSING, S.REFUNDED): MANUAL_REFUND,
    (S.SHIPPED, S.PENDING): "cannot go from shipped to pending",
    (S.SHIPPED, S.PROCESSING): "cannot go from shipped to processing",
    (S.SHIPPED, S.SHIPPED): "order is already shipped",
    (S.SHIPPED, S.DELIVERED): OK,
    (S.SHIPPED, S.CANCELLED): "cannot go from shipped to cancelled",
    (S.SHIPPED, S.REFUNDED): MANUAL_REFUND,
    (S.DELIVERED, S.PENDING): "cannot go from delivered to pending",
    (S.DELIVERED, S.PROCESSING): "cannot go from delivered to processing",
    (S.DELIVERED, S.SHIPPED): "cannot go from delivered to shipped",
    (S.DELIVERED, S.DELIVERED): "order is already delivered",
    (S.DELIVERED, S.CANCELLED): "cannot go from delivered to cancelled",
    (S.DELIVERED, S.REFUNDED): MANUAL_REFUND,
    (S.CANCELLED, S.PENDING): "a cancelled order cannot change status",
    (S.CANCELLED, S.PROCESSING): "a cancelled order cannot change status",
    (S.CANCELLED, S.SHIPPED): "a cancelled order cannot change status",
    (S.CANCELLED, S.DELIVERED): "a cancelled order cannot change status",
    (S.CANCELLED, S.CANCELLED): "order is already cancelled",
    (S.CANCELLED, S.REFUNDED): "a cancelled order cannot change status",
    (S.REFUNDED, S.PENDING): "a refunded order cannot change status",
    (S.REFUNDED, S.PROCESSING): "a refunded order cannot change status",
    (S.REFUNDED, S.SHIPPED): "a refunded order cannot change status",
    (S.REFUNDED, S.DELIVERED): "a refunded order cannot change status",
    (S.REFUNDED, S.CANCELLED): "a refunded order cannot change status",
    (S.REFUNDED, S.REFUNDED): "order is already refunded",
}


def test_table_covers_all_36_pairs() -> None:
    assert len(TABLE) == 36
    assert set(TABLE) == {(a, b) for a in OrderStatus for b in OrderStatus}


def paid(status: OrderStatus, **kw: object) -> OrderState:
    return OrderState(status, PaymentStatus.PAID, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("pair", "expected"), TABLE.items(), ids=[f"{a}->{b}" for a, b in TABLE])
def test_every_pair(pair: tuple[OrderStatus, OrderStatus], expected: str | None) -> None:
    src, dst = pair
    state = paid(src)
    if expected is None:
        t = check_transition(state, dst, Role.ADMIN)
        assert (t.source, t.target) == (src, dst)
        assert t.manual
    else:
        with pytest.raises(TransitionError) as err:
            check_transition(state, dst, Role.ADMIN)
        assert str(err.value) == expected


@pytest.mark.parametrize("src", [S.PROCESSING, S.SHIPPED, S.DELIVERED])
def test_refunded_is_system_only(src: OrderStatus) -> None:
    state = OrderState(src, PaymentStatus.REFUNDED)
    with pytest.raises(TransitionError, match=MANUAL_REFUND):
        check_transition(state, S.REFUNDED, Role.ADMIN)
    t = check_transition(state, S.REFUNDED, system=True)
    assert t.target == S.REFUNDED and not t.manual


def test_only_table_entries_are_ever_allowed() -> None:
    # Whatever the order's other axes, a pair outside TRANSITIONS is refused.
    for a in OrderStatus:
        for b in OrderStatus:
            if (a, b) in TRANSITIONS:
                continue
            for pay in PaymentStatus:
                for hold in (False, True):
                    for phys in (False, True):
                        state = OrderState(a, pay, on_hold=hold, has_physical=phys)
                        with pytest.raises(TransitionError):
                            check_transition(state, b, Role.ADMIN, system=True)


@pytest.mark.parametrize(
    ("state", "target", "message"),
    [
        (
            OrderState(S.PROCESSING, PaymentStatus.PAID, on_hold=True),
            S.SHIPPED,
            "order is on hold: release it first",
        ),
        (
            OrderState(S.SHIPPED, PaymentStatus.PAID, on_hold=True),
            S.DELIVERED,
            "order is on hold: release it first",
        ),
        (
            OrderState(S.PROCESSING, PaymentStatus.PAID, on_hold=True, has_physical=False),
            S.DELIVERED,
            "order is on hold: release it first",
        ),
        (
            OrderState(S.PENDING, PaymentStatus.UNPAID),
            S.PROCESSING,
            "payment is unpaid: confirm the payment first",
        ),
        (
            OrderState(S.PENDING, PaymentStatus.FAILED),
            S.PROCESSING,
            "payment is failed: confirm the payment first",
        ),
        (
            OrderState(S.PROCESSING, PaymentStatus.PAID, has_physical=False),
            S.SHIPPED,
            "order has only digital goods: mark it delivered instead",
        ),
        (
            OrderState(S.PROCESSING, PaymentStatus.PAID, has_physical=True),
            S.DELIVERED,
            "order has physical goods: ship it first",
        ),
    ],
)
def test_rule_refusals(state: OrderState, target: OrderStatus, message: str) -> None:
    with pytest.raises(TransitionError) as err:
        check_transition(state, target, Role.ADMIN)
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("state", "target"),
    [
        (OrderState(S.PENDING, PaymentStatus.AUTHORIZED), S.PROCESSING),
        (OrderState(S.PENDING, PaymentStatus.PARTIALLY_REFUNDED), S.PROCESSING),
        (OrderState(S.PENDING, PaymentStatus.UNPAID, on_hold=True), S.CANCELLED),
        (OrderState(S.PROCESSING, PaymentStatus.PAID, on_hold=True), S.CANCELLED),
        (OrderState(S.PROCESSING, PaymentStatus.PAID, has_physical=False), S.DELIVERED),
        (OrderState(S.PENDING, PaymentStatus.UNPAID), S.CANCELLED),
    ],
)
def test_rule_allowances(state: OrderState, target: OrderStatus) -> None:
    assert check_transition(state, target, Role.AGENT).target == target


@pytest.mark.parametrize(
    ("role", "src", "target", "message"),
    [
        (Role.VIEWER, S.PROCESSING, S.SHIPPED, "a viewer may not ship"),
        (Role.VIEWER, S.SHIPPED, S.DELIVERED, "a viewer may not mark delivered"),
        (Role.VIEWER, S.PENDING, S.CANCELLED, "a viewer may not cancel"),
        (Role.WAREHOUSE, S.PENDING, S.CANCELLED, "a warehouse may not cancel"),
        (Role.WAREHOUSE, S.PENDING, S.PROCESSING, "a warehouse may not start processing"),
        (Role.VIEWER, S.PENDING, S.PROCESSING, "a viewer may not start processing"),
    ],
)
def test_role_refusals(role: Role, src: OrderStatus, target: OrderStatus, message: str) -> None:
    with pytest.raises(TransitionError) as err:
        check_transition(paid(src), target, role)
    assert str(err.value) == message


def labels(state: OrderState, role: Role) -> list[str]:
    return [t.action for t in offered_transitions(state, role)]


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        # state -> {role: offered actions}
        (
            OrderState(S.PENDING, PaymentStatus.UNPAID),
            {Role.VIEWER: [], Role.WAREHOUSE: [], Role.AGENT: ["cancel"], Role.ADMIN: ["cancel"]},
        ),
        (
            OrderState(S.PENDING, PaymentStatus.PAID),
            {
                Role.VIEWER: [],
                Role.WAREHOUSE: [],
                Role.AGENT: ["start_processing", "cancel"],
                Role.ADMIN: ["start_processing", "cancel"],
            },
        ),
        (
            OrderState(S.PROCESSING, PaymentStatus.PAID),
            {
                Role.VIEWER: [],
                Role.WAREHOUSE: ["ship"],
                Role.AGENT: ["ship", "cancel"],
                Role.ADMIN: ["ship", "cancel"],
            },
        ),
        (
            OrderState(S.PROCESSING, PaymentStatus.PAID, on_hold=True),
            {Role.VIEWER: [], Role.WAREHOUSE: [], Role.AGENT: ["cancel"], Role.ADMIN: ["cancel"]},
        ),
        (
            OrderState(S.PROCESSING, PaymentStatus.PAID, has_physical=False),
            {
                Role.VIEWER: [],
                Role.WAREHOUSE: ["deliver"],
                Role.AGENT: ["deliver", "cancel"],
                Role.ADMIN: ["deliver", "cancel"],
            },
        ),
        (
            OrderState(S.SHIPPED, PaymentStatus.PAID),
            {
                Role.VIEWER: [],
                Role.WAREHOUSE: ["deliver"],
                Role.AGENT: ["deliver"],
                Role.ADMIN: ["deliver"],
            },
        ),
        (
            OrderState(S.SHIPPED, PaymentStatus.PAID, on_hold=True),
            {Role.VIEWER: [], Role.WAREHOUSE: [], Role.AGENT: [], Role.ADMIN: []},
        ),
        *[
            (OrderState(s, PaymentStatus.PAID), dict.fromkeys(Role, []))
            for s in (S.DELIVERED, S.CANCELLED, S.REFUNDED)
        ],
    ],
)
def test_offered_transitions_per_role(state: OrderState, expected: dict[Role, list[str]]) -> None:
    # exact lists: the table's order is the order the UI offers them in
    assert {role: labels(state, role) for role in Role} == expected


def test_offered_is_exactly_what_check_transition_allows() -> None:
    for status in OrderStatus:
        for pay in PaymentStatus:
            for hold in (False, True):
                for phys in (False, True):
                    state = OrderState(status, pay, on_hold=hold, has_physical=phys)
                    for role in Role:
                        offered = {t.target for t in offered_transitions(state, role)}
                        allowed = set()
                        for target in OrderStatus:
                            try:
                                check_transition(state, target, role)
                            except TransitionError:
                                continue
                            allowed.add(target)
                        assert offered == allowed, (state, role)


@pytest.mark.parametrize(
    ("state", "hold", "message"),
    [
        (OrderState(S.PENDING), True, None),
        (OrderState(S.PROCESSING), True, None),
        (OrderState(S.SHIPPED), True, None),
        (OrderState(S.DELIVERED), True, "a delivered order cannot be put on hold"),
        (OrderState(S.PENDING, on_hold=True), True, "order is already on hold"),
        (OrderState(S.PENDING), False, "order is not on hold"),
        (OrderState(S.PROCESSING, on_hold=True), False, None),
        (
            OrderState(S.CANCELLED),
            True,
            "a cancelled order cannot be put on or taken off hold",
        ),
        (
            OrderState(S.REFUNDED, on_hold=True),
            False,
            "a refunded order cannot be put on or taken off hold",
        ),
    ],
)
def test_hold_problem(state: OrderState, hold: bool, message: str | None) -> None:
    assert hold_problem(state, hold=hold) == message


def test_fulfillment_after_shipping() -> None:
    assert fulfillment_after_shipping(3, 0) == FulfillmentStatus.UNFULFILLED
    assert fulfillment_after_shipping(3, 1) == FulfillmentStatus.PARTIALLY_FULFILLED
    assert fulfillment_after_shipping(3, 3) == FulfillmentStatus.FULFILLED


@pytest.mark.parametrize("status", list(OrderStatus))
@pytest.mark.parametrize("pay", list(PaymentStatus))
def test_awaiting_payment_only_for_pending_orders_with_nothing_taken(status, pay) -> None:
    from pulse_tui.domain.status import awaiting_payment

    expected = status == OrderStatus.PENDING and pay in (PaymentStatus.UNPAID, PaymentStatus.FAILED)
    assert awaiting_payment(OrderState(status, pay)) is expected
