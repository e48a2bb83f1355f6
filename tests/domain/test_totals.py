from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pulse_tui.domain.totals import (
    MAX_TAX_BP,
    LineInput,
    TotalsError,
    line_totals,
    order_totals,
)


def exact_half_up(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


lines_st = st.lists(
    st.builds(
        LineInput,
        unit_price=st.integers(min_value=0, max_value=10**9),
        quantity=st.integers(min_value=1, max_value=1000),
        tax_rate_bp=st.one_of(
            st.sampled_from([0, 500, 700, 1000, 1900, 2000, 2100, 2500]),
            st.integers(min_value=0, max_value=MAX_TAX_BP),
        ),
    ),
    min_size=1,
    max_size=8,
)


@st.composite
def orders(draw):  # type: ignore[no-untyped-def]
    lines = draw(lines_st)
    inclusive = draw(st.booleans())
    shipping = draw(st.integers(min_value=0, max_value=10**6))
    gross = sum(line_totals(ln, tax_inclusive=inclusive).total for ln in lines) + shipping
    discount = draw(st.integers(min_value=0, max_value=gross))
    return lines, inclusive, shipping, discount


@settings(max_examples=200)
@given(orders())
def test_order_total_is_sum_of_lines_plus_shipping_minus_discount(case) -> None:  # type: ignore[no-untyped-def]
    lines, inclusive, shipping, discount = case
    t = order_totals(lines, shipping=shipping, discount=discount, tax_inclusive=inclusive)
    per_line = [line_totals(ln, tax_inclusive=inclusive) for ln in lines]
    assert t.lines == tuple(per_line)
    assert t.subtotal == sum(lt.total for lt in per_line)
    assert t.total == sum(lt.total for lt in per_line) + shipping - discount
    assert t.total >= 0
    for v in (t.subtotal, t.tax, t.total, t.discount, t.shipping):
        assert type(v) is int


@settings(max_examples=200)
@given(orders())
def test_tax_rounding_never_drifts(case) -> None:  # type: ignore[no-untyped-def]
    lines, inclusive, shipping, discount = case
    t = order_totals(lines, shipping=shipping, discount=discount, tax_inclusive=inclusive)
    assert t.tax == sum(lt.tax for lt in t.lines)
    for ln, lt in zip(lines, t.lines, strict=True):
        base = Decimal(ln.unit_price * ln.quantity)
        rate = Decimal(ln.tax_rate_bp)
        if inclusive:
            exact = base * rate / (Decimal(10_000) + rate)
            assert lt.tax == exact_half_up(exact)
            assert lt.net + lt.tax == lt.total == ln.unit_price * ln.quantity
        else:
            exact = base * rate / Decimal(10_000)
            assert lt.tax == exact_half_up(exact)
            assert lt.total == lt.net + lt.tax
            assert lt.net == ln.unit_price * ln.quantity
        assert abs(Decimal(lt.tax) - exact) <= Decimal("0.5")


@settings(max_examples=200)
@given(
    st.integers(min_value=0, max_value=10**9),
    st.integers(min_value=1, max_value=100),
    st.integers(min_value=0, max_value=MAX_TAX_BP),
    st.data(),
)
def test_line_discount_taken_before_tax(price: int, qty: int, rate: int, data) -> None:  # type: ignore[no-untyped-def]
    disc = data.draw(st.integers(min_value=0, max_value=price * qty))
    for inclusive in (False, True):
        lt = line_totals(LineInput(price, qty, rate, disc), tax_inclusive=inclusive)
        assert lt.subtotal == price * qty
        assert lt.discount == disc
        base = price * qty - disc
        if inclusive:
            assert lt.total == base and lt.net + lt.tax == base
        else:
            assert lt.net == base and lt.total == base + lt.tax


def test_half_up_examples() -> None:
    # 0.5 minor units rounds away from zero, never to even.
    assert line_totals(LineInput(50, 1, 1000)).tax == 5
    assert line_totals(LineInput(5, 1, 1000)).tax == 1  # 0.5 -> 1
    assert line_totals(LineInput(25, 1, 1000)).tax == 3  # 2.5 -> 3 (banker's would say 2)
    assert line_totals(LineInput(15, 1, 1000)).tax == 2  # 1.5 -> 2
    # inclusive: 119 gross at 19 % is 100 net + 19 tax
    lt = line_totals(LineInput(119, 1, 1900), tax_inclusive=True)
    assert (lt.net, lt.tax, lt.total) == (100, 19, 119)


def test_known_order() -> None:
    t = order_totals(
        [LineInput(1250, 2, 1900), LineInput(2500, 1, 1900)], shipping=495, discount=100
    )
    assert [lt.tax for lt in t.lines] == [475, 475]
    assert t.subtotal == 2975 + 2975
    assert t.tax == 950
    assert t.total == 5950 + 495 - 100


@pytest.mark.parametrize(
    ("call", "msg"),
    [
        (lambda: order_totals([]), "at least one line"),
        (lambda: line_totals(LineInput(100, 0)), "quantity must be at least 1"),
        (lambda: line_totals(LineInput(100, -1)), "quantity must be at least 1"),
        (lambda: line_totals(LineInput(-1, 1)), "unit price must be at least 0"),
        (lambda: line_totals(LineInput(1.5, 1)), "whole number"),  # type: ignore[arg-type]
        (lambda: line_totals(LineInput(100, 1, 10_001)), "tax rate must be at most"),
        (lambda: line_totals(LineInput(100, 1, -1)), "tax rate must be at least"),
        (lambda: line_totals(LineInput(100, 1, 0, 101)), "larger than the line amount"),
        (lambda: order_totals([LineInput(100, 1)], shipping=-1), "shipping must be at least"),
        (lambda: order_totals([LineInput(100, 1)], discount=-1), "discount must be at least"),
        (
            lambda: order_totals([LineInput(100, 1)], shipping=10, discount=111),
            "discount is larger",
        ),
        (lambda: order_totals([LineInput(100, 1)], shipping=0.5), "whole number"),  # type: ignore[arg-type]
    ],
)
def test_bad_inputs(call, msg: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TotalsError, match=msg):
        call()
