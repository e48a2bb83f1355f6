"""domain.refunds: allocation, quotes and the statuses money leads to."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pulse_tui.domain.refunds import (
    ACTIVE,
    OPERATOR_REASONS,
    LinePick,
    LineState,
    RefundError,
    RefundReason,
    RefundStatus,
    exchange_difference,
    fully_refunded_status,
    line_values,
    needs_approval,
    parse_reason,
    payment_status_after,
    quote,
    return_step_problem,
    returnable_quantity,
)
from pulse_tui.domain.status import OrderStatus, PaymentStatus


def q(lines, picks=(), **kw):
    args = {
        "shipping": 0,
        "shipping_committed": 0,
        "include_shipping": False,
        "amount": None,
        "refundable": 10**9,
        "currency": "EUR",
    }
    args.update(kw)
    return quote(lines, picks, **args)


def line(value=1000, quantity=3, tax=160, committed=0, line_id=1, sku="MUG"):
    return LineState(line_id, sku, quantity, value, tax, committed)


# -- allocation -------------------------------------------------------------------


def test_unit_by_unit_sums_to_the_line_value_exactly() -> None:
    # 1000 over 3 units: 333, 334, 333 (cumulative rounding), never 999 or 1002
    amounts, taxes = [], []
    for done in range(3):
        got = q([line(committed=done)], [LinePick(1, 1)])
        amounts.append(got.amount)
        taxes.append(got.tax)
    assert amounts == [333, 334, 333]
    assert sum(amounts) == 1000
    assert sum(taxes) == 160


@settings(max_examples=100, deadline=None)
@given(
    value=st.integers(0, 10**7),
    tax=st.integers(0, 10**6),
    quantity=st.integers(1, 40),
    data=st.data(),
)
def test_any_split_of_a_line_sums_to_its_value(value, tax, quantity, data) -> None:
    parts = []
    left = quantity
    while left:
        k = data.draw(st.integers(1, left))
        parts.append(k)
        left -= k
    # A second line, one unit per refund, keeps every refund above zero (a part
    # of a tiny line may round to nothing, which alone is refused: see below).
    other = LineState(2, "PAD", 10**4, 10**4, 0, 0)
    done, amounts, taxes = 0, [], []
    for i, k in enumerate(parts):
        ln = line(value=value, quantity=quantity, tax=tax, committed=done)
        pad = LineState(2, "PAD", other.quantity, other.value, 0, i)
        got = q([ln, pad], [LinePick(1, k), LinePick(2, 1)])
        mine = got.lines[0]
        assert mine.quantity == k
        assert got.amount == mine.amount + got.lines[1].amount
        amounts.append(mine.amount)
        taxes.append(mine.tax)
        done += k
    assert sum(amounts) == value
    assert sum(taxes) == tax
    assert all(a >= 0 for a in amounts)


def test_a_part_that_rounds_to_nothing_is_refused_alone() -> None:
    # 1 cent over 2 units: the first unit carries the cent, the second nothing.
    assert q([line(value=1, quantity=2, tax=0)], [LinePick(1, 1)]).amount == 1
    with pytest.raises(RefundError, match="that refund comes to nothing"):
        q([line(value=1, quantity=2, tax=0, committed=1)], [LinePick(1, 1)])


@settings(max_examples=100, deadline=None)
@given(
    totals=st.lists(st.integers(0, 10**6), min_size=1, max_size=8),
    discount=st.integers(0, 2 * 10**6),
)
def test_discount_shares_add_up(totals, discount) -> None:
    values = line_values(totals, discount)
    assert len(values) == len(totals)
    whole = sum(totals)
    taken = min(max(discount, 0), whole)
    assert sum(values) == whole - taken
    assert all(0 <= v <= t for v, t in zip(values, totals, strict=True))


def test_discount_shares_examples() -> None:
    assert line_values([1000, 2000], 0) == [1000, 2000]
    assert line_values([1000, 2000], 300) == [900, 1800]
    # 100 over three equal lines: the remainder cent goes to the first line
    assert line_values([1000, 1000, 1000], 100) == [966, 967, 967]
    # largest remainder: 1000·100/1500 = 66.67 → 67, 500·100/1500 = 33.33 → 33
    assert line_values([1000, 500], 100) == [933, 467]
    assert line_values([500], 9999) == [0]


def test_a_full_refund_of_every_line_and_shipping_is_the_order_total() -> None:
    totals, discount, shipping = [2975, 5950, 1999], 777, 495
    values = line_values(totals, discount)
    states = [
        LineState(i + 1, f"S{i}", qty, v, 0, 0)
        for i, (v, qty) in enumerate(zip(values, (2, 3, 1), strict=True))
    ]
    got = q(
        states,
        [LinePick(1, 2), LinePick(2, 3), LinePick(3, 1)],
        shipping=shipping,
        include_shipping=True,
    )
    assert got.amount == sum(totals) + shipping - discount
    assert got.shipping == shipping


# -- quotes ---------------------------------------------------------------------


def test_quote_lines_and_shipping() -> None:
    got = q(
        [line(), line(value=500, quantity=1, tax=80, line_id=2, sku="TEE")],
        [LinePick(1, 2, restock=True)],
        shipping=495,
        shipping_committed=0,
        include_shipping=True,
    )
    assert got.amount == 667 + 495
    assert got.shipping == 495
    assert got.tax == 107  # round(160 * 2/3)
    assert [(ql.sku, ql.quantity, ql.amount, ql.tax, ql.restock) for ql in got.lines] == [
        ("MUG", 2, 667, 107, True)
    ]


def test_free_amount() -> None:
    got = q([line()], amount=250, refundable=300)
    assert (got.amount, got.tax, got.shipping, got.lines, got.refundable) == (250, 0, 0, (), 300)


@pytest.mark.parametrize(
    ("kw", "picks", "message"),
    [
        ({"refundable": 0}, [LinePick(1, 1)], "nothing is left to refund"),
        ({"amount": 10, "include_shipping": True}, [], "either an amount or lines"),
        ({"amount": 10}, [LinePick(1, 1)], "either an amount or lines"),
        ({"amount": 0}, [], "must be a positive amount"),
        ({"amount": -5}, [], "must be a positive amount"),
        ({"amount": True}, [], "must be a positive amount"),
        ({"amount": 301, "refundable": 300}, [], r"at most €3\.00 can be refunded, asked €3\.01"),
        ({}, [], "choose lines, shipping or an amount"),
        ({}, [LinePick(9, 1)], "line 9 is not on this order"),
        ({}, [LinePick(1, 1), LinePick(1, 1)], "MUG is listed twice"),
        ({}, [LinePick(1, 0)], "MUG: quantity must be a whole number of at least 1"),
        ({}, [LinePick(1, True)], "quantity must be a whole number"),
        ({}, [LinePick(1, 4)], "MUG: only 3 of 3 left to refund, asked 4"),
        (
            {"shipping": 495, "shipping_committed": 495, "include_shipping": True},
            [],
            "the shipping was already refunded",
        ),
        ({"refundable": 500}, [LinePick(1, 3)], r"at most €5\.00 can be refunded, this comes to"),
    ],
)
def test_quote_refusals(kw, picks, message) -> None:
    with pytest.raises(RefundError, match=message):
        q([line()], picks, **kw)


def test_committed_units_are_not_refundable_twice() -> None:
    with pytest.raises(RefundError, match="only 1 of 3 left to refund, asked 2"):
        q([line(committed=2)], [LinePick(1, 2)])


def test_shipping_refunded_with_lines_only_counts_what_is_left() -> None:
    got = q(
        [line()],
        [LinePick(1, 3)],
        shipping=495,
        shipping_committed=495,
        include_shipping=True,
    )
    assert got.amount == 1000 and got.shipping == 0


# -- statuses ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("paid", "refunded", "status"),
    [
        (0, 0, PaymentStatus.UNPAID),
        (0, 100, PaymentStatus.UNPAID),
        (1000, 0, PaymentStatus.PAID),
        (1000, 1, PaymentStatus.PARTIALLY_REFUNDED),
        (1000, 999, PaymentStatus.PARTIALLY_REFUNDED),
        (1000, 1000, PaymentStatus.REFUNDED),
    ],
)
def test_payment_status_after(paid, refunded, status) -> None:
    assert payment_status_after(paid, refunded) == status


@pytest.mark.parametrize(
    ("status", "paid", "refunded", "target"),
    [
        (OrderStatus.PROCESSING, 1000, 1000, OrderStatus.REFUNDED),
        (OrderStatus.SHIPPED, 1000, 1000, OrderStatus.REFUNDED),
        (OrderStatus.DELIVERED, 1000, 1000, OrderStatus.REFUNDED),
        (OrderStatus.DELIVERED, 1000, 999, None),
        (OrderStatus.CANCELLED, 1000, 1000, None),  # a cancelled order stays cancelled
        (OrderStatus.PENDING, 0, 0, None),
        (OrderStatus.REFUNDED, 1000, 1000, None),
    ],
)
def test_fully_refunded_status(status, paid, refunded, target) -> None:
    assert fully_refunded_status(status, paid, refunded) == target


def test_reasons_and_approval() -> None:
    assert parse_reason("Customer request") == RefundReason.CUSTOMER_REQUEST
    assert parse_reason(" not-received ") == RefundReason.NOT_RECEIVED
    with pytest.raises(RefundError, match="unknown refund reason 'whim'.*customer_request"):
        parse_reason("whim")
    assert RefundReason.ORDER_CANCELLED not in OPERATOR_REASONS
    assert RefundReason.RETURN not in OPERATOR_REASONS
    assert len(OPERATOR_REASONS) == 7
    assert needs_approval(50_001, 50_000, may_approve=False)
    assert not needs_approval(50_000, 50_000, may_approve=False)
    assert not needs_approval(90_000, 50_000, may_approve=True)
    assert RefundStatus.FAILED not in ACTIVE and RefundStatus.CANCELLED not in ACTIVE


def test_return_rules() -> None:
    assert return_step_problem("requested", "authorize") is None
    assert return_step_problem("requested", "receive") == (
        "the return is requested; receive needs it authorized"
    )
    assert returnable_quantity(3, 1) == 2
    assert returnable_quantity(1, 3) == 0
    assert exchange_difference(1000, 1500) == 500
    assert exchange_difference(1000, 400) == -600
