from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pulse_tui.domain.money import (
    Money,
    MoneyError,
    exponent,
    format_money,
    normalize_currency,
    plain_amount,
)

CURRENCIES = ["JPY", "USD", "KWD", "EUR"]


@pytest.mark.parametrize(("cur", "exp"), [("JPY", 0), ("USD", 2), ("KWD", 3), ("EUR", 2)])
def test_exponent_from_babel(cur: str, exp: int) -> None:
    assert exponent(cur) == exp
    assert exponent(cur.lower()) == exp


@pytest.mark.parametrize("bad", [1.5, 0.0, Decimal("1"), "12", True, None])
def test_money_rejects_non_int_amounts(bad: object) -> None:
    with pytest.raises(MoneyError, match="int of minor units"):
        Money(bad, "USD")  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["XXY", "US", "", "EURO", "usd1"])
def test_unknown_currency(bad: str) -> None:
    with pytest.raises(MoneyError, match="unknown currency"):
        Money(1, bad)


def test_non_string_currency() -> None:
    with pytest.raises(MoneyError, match="3-letter"):
        normalize_currency(840)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "cur", "minor"),
    [
        ("1234", "JPY", 1234),
        ("1234.", "JPY", 1234),
        ("12.34", "USD", 1234),
        ("12.3", "USD", 1230),
        ("12", "USD", 1200),
        ("0.01", "USD", 1),
        ("-5.5", "USD", -550),
        ("1.234", "KWD", 1234),
        ("1.2", "KWD", 1200),
        (" 7.50 ", "eur", 750),
        (Decimal("9.99"), "USD", 999),
        (3, "KWD", 3000),
    ],
)
def test_parse(text: str, cur: str, minor: int) -> None:
    m = Money.parse(text, cur)
    assert m == Money(minor, cur.upper())
    assert isinstance(m.amount, int)


@pytest.mark.parametrize(
    ("text", "cur"),
    [("12.5", "JPY"), ("1.001", "USD"), ("10.005", "USD"), ("1.2345", "KWD"), ("0.1", "JPY")],
)
def test_parse_refuses_extra_decimals(text: str, cur: str) -> None:
    with pytest.raises(MoneyError, match=f"more than {exponent(cur)} decimal places"):
        Money.parse(text, cur)


@pytest.mark.parametrize("text", ["abc", "", "1,000.00", "NaN", "Infinity", "1.2.3"])
def test_parse_refuses_non_amounts(text: str) -> None:
    with pytest.raises(MoneyError):
        Money.parse(text, "USD")


@pytest.mark.parametrize("value", [0.1, 12.5, 1e3])
def test_parse_refuses_floats(value: float) -> None:
    with pytest.raises(MoneyError, match="float"):
        Money.parse(value, "USD")  # type: ignore[arg-type]


def test_arithmetic_refuses_mixed_currencies() -> None:
    usd, eur = Money(100, "USD"), Money(100, "EUR")
    for op in (lambda: usd + eur, lambda: usd - eur, lambda: usd < eur, lambda: usd >= eur):
        with pytest.raises(MoneyError, match="cannot mix USD and EUR"):
            op()


def test_arithmetic_refuses_non_money_and_floats() -> None:
    usd = Money(100, "USD")
    with pytest.raises(TypeError):
        usd + 1  # type: ignore[operator]
    with pytest.raises(TypeError):
        usd * 1.5  # type: ignore[operator]
    with pytest.raises(TypeError):
        usd * True  # type: ignore[operator]


def test_arithmetic_same_currency() -> None:
    a, b = Money(150, "KWD"), Money(25, "kwd")
    assert a + b == Money(175, "KWD")
    assert a - b == Money(125, "KWD")
    assert -a == Money(-150, "KWD")
    assert a * 3 == 3 * a == Money(450, "KWD")
    assert b < a and a > b and a >= a and b <= b
    assert Money.zero("JPY") == Money(0, "JPY")


@settings(max_examples=200)
@given(
    st.integers(min_value=-(10**15), max_value=10**15),
    st.integers(min_value=-(10**15), max_value=10**15),
    st.sampled_from(CURRENCIES),
)
def test_sum_is_integer_sum(a: int, b: int, cur: str) -> None:
    total = Money(a, cur) + Money(b, cur)
    assert isinstance(total.amount, int)
    assert total.amount == a + b


@settings(max_examples=200)
@given(st.integers(min_value=-(10**15), max_value=10**15), st.sampled_from(CURRENCIES))
def test_str_then_parse_round_trips(amount: int, cur: str) -> None:
    m = Money(amount, cur)
    text, code = str(m).split(" ")
    assert code == cur
    assert Money.parse(text, cur) == m
    assert plain_amount(amount, cur) == text
    assert m.to_decimal() == Decimal(text)


@pytest.mark.parametrize(
    ("amount", "cur", "locale", "text"),
    [
        (123456, "JPY", "en_US", "¥123,456"),
        (123456, "USD", "en_US", "$1,234.56"),
        (123456, "KWD", "en_US", "KWD123.456"),
        (123456, "EUR", "en_US", "€1,234.56"),
        (123456, "EUR", "de_DE", "1.234,56\xa0€"),
        (5, "USD", "en_US", "$0.05"),
        (5, "KWD", "en_US", "KWD0.005"),
        (0, "JPY", "en_US", "¥0"),
    ],
)
def test_format_money(amount: int, cur: str, locale: str, text: str) -> None:
    assert format_money(amount, cur, locale) == text
    assert Money(amount, cur).format(locale) == text


@pytest.mark.parametrize(
    ("amount", "cur", "text"),
    [(1234, "JPY", "1234"), (1234, "USD", "12.34"), (1234, "KWD", "1.234"), (-5, "USD", "-0.05")],
)
def test_plain_amount(amount: int, cur: str, text: str) -> None:
    assert plain_amount(amount, cur) == text
