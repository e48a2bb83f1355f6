"""Money as an integer count of minor units plus an ISO 4217 currency code.

Never a float: amounts are ``int`` and every conversion from text goes through
``decimal.Decimal``. The exponent of each currency comes from babel (CLDR), so
JPY has 0 decimals, USD 2 and KWD 3 without a table of our own.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache

from babel.numbers import format_currency, get_currency_precision, list_currencies


class MoneyError(ValueError):
    """Bad money input: unknown currency, mixed currencies, unparseable amount."""


@lru_cache(maxsize=1)
def _known_currencies() -> frozenset[str]:
    return frozenset(list_currencies())


def normalize_currency(code: str) -> str:
    """Return the upper-case ISO 4217 code or raise MoneyError."""
    if not isinstance(code, str):
        raise MoneyError(f"currency must be a 3-letter ISO 4217 code, got {code!r}")
    up = code.strip().upper()
    if len(up) != 3 or up not in _known_currencies():
        raise MoneyError(f"unknown currency {code!r} (expected an ISO 4217 code such as EUR)")
    return up


@lru_cache(maxsize=512)
def exponent(currency: str) -> int:
    """Number of minor-unit digits of a currency (JPY 0, USD 2, KWD 3)."""
    return int(get_currency_precision(normalize_currency(currency)))


def round_half_up(value: Decimal) -> int:
    """Round a Decimal count of minor units to an int, half away from zero."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True, slots=True, order=False)
class Money:
    amount: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise MoneyError(f"money amount must be an int of minor units, got {self.amount!r}")
        object.__setattr__(self, "currency", normalize_currency(self.currency))

    # -- construction -------------------------------------------------
    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    @classmethod
    def parse(cls, text: str | Decimal | int, currency: str) -> Money:
        """Parse a major-unit amount ("12.50") into minor units.

        Refuses more decimals than the currency has rather than rounding
        silently: "10.005 USD" is a typo, not a price.
        """
        if isinstance(text, float | bool):
            # A float is already inexact (0.1 is not 1/10): refuse it outright.
            raise MoneyError(f"amounts must be text, Decimal or int, not {type(text).__name__}")
        cur = normalize_currency(currency)
        exp = exponent(cur)
        try:
            dec = text if isinstance(text, Decimal) else Decimal(str(text).strip())
        except (InvalidOperation, ValueError) as exc:
            raise MoneyError(f"not an amount: {text!r}") from exc
        if not dec.is_finite():
            raise MoneyError(f"not an amount: {text!r}")
        minor = dec.scaleb(exp)
        if minor != minor.to_integral_value():
            raise MoneyError(f"{text} has more than {exp} decimal places for {cur}")
        return cls(int(minor), cur)

    # -- arithmetic ---------------------------------------------------
    def _same(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise MoneyError(f"cannot mix {self.currency} and {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __mul__(self, qty: int) -> Money:
        if isinstance(qty, bool) or not isinstance(qty, int):
            raise TypeError("Money can only be multiplied by an int quantity")
        return Money(self.amount * qty, self.currency)

    __rmul__ = __mul__

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.amount >= other.amount

    # -- presentation -------------------------------------------------
    def to_decimal(self) -> Decimal:
        """Major units as an exact Decimal (for display and export only)."""
        return Decimal(self.amount).scaleb(-exponent(self.currency))

    def format(self, locale: str = "en_US") -> str:
        return format_money(self.amount, self.currency, locale)

    def __str__(self) -> str:
        return f"{self.to_decimal():.{exponent(self.currency)}f} {self.currency}"


def to_decimal(amount: int, currency: str) -> Decimal:
    return Decimal(amount).scaleb(-exponent(currency))


def format_money(amount: int, currency: str, locale: str = "en_US") -> str:
    """Locale-aware rendering, e.g. 1234 USD → "$12.34", 1234 JPY → "¥1,234"."""
    return format_currency(to_decimal(amount, currency), currency, locale=locale)


def plain_amount(amount: int, currency: str) -> str:
    """Major units with exactly the currency's decimals: 1234 USD → "12.34"."""
    exp = exponent(currency)
    return f"{to_decimal(amount, currency):.{exp}f}"
