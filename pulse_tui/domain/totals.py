"""Line and order totals.

Tax rates are integer basis points (1900 = 19 %). Each line's tax is computed
with Decimal and rounded once, ROUND_HALF_UP, back to minor units; order totals
are plain integer sums of line results, so they never drift.

Pricing modes:
* tax-exclusive: unit price is net; line total = net + tax.
* tax-inclusive: unit price already contains tax; the tax is extracted from
  the gross line amount; line total = gross.

Order-level ``discount`` and ``shipping`` are flat amounts:
``total = sum(line.total) + shipping - discount``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from .money import round_half_up

MAX_TAX_BP = 10_000  # 100 %; anything above is a data-entry error


class TotalsError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class LineInput:
    unit_price: int
    quantity: int
    tax_rate_bp: int = 0
    discount: int = 0  # line discount, minor units, taken off before tax


@dataclass(frozen=True, slots=True)
class LineTotals:
    subtotal: int  # unit_price * quantity (as priced: net or gross)
    discount: int
    net: int  # taxable base, after discount, without tax
    tax: int
    total: int  # what the customer pays for the line


@dataclass(frozen=True, slots=True)
class OrderTotals:
    lines: tuple[LineTotals, ...]
    subtotal: int  # sum of line totals (after line discounts, incl. tax)
    discount: int
    shipping: int
    tax: int
    total: int


def line_totals(line: LineInput, *, tax_inclusive: bool = False) -> LineTotals:
    _check_int("unit price", line.unit_price, minimum=0)
    _check_int("quantity", line.quantity, minimum=1)
    _check_int("tax rate", line.tax_rate_bp, minimum=0, maximum=MAX_TAX_BP)
    _check_int("line discount", line.discount, minimum=0)
    gross_or_net = line.unit_price * line.quantity
    if line.discount > gross_or_net:
        raise TotalsError("line discount is larger than the line amount")
    base = gross_or_net - line.discount
    rate = Decimal(line.tax_rate_bp)
    if tax_inclusive:
        tax = round_half_up(Decimal(base) * rate / (Decimal(MAX_TAX_BP) + rate))
        return LineTotals(gross_or_net, line.discount, base - tax, tax, base)
    tax = round_half_up(Decimal(base) * rate / Decimal(MAX_TAX_BP))
    return LineTotals(gross_or_net, line.discount, base, tax, base + tax)


def order_totals(
    lines: Sequence[LineInput],
    *,
    shipping: int = 0,
    discount: int = 0,
    tax_inclusive: bool = False,
) -> OrderTotals:
    if not lines:
        raise TotalsError("an order needs at least one line")
    _check_int("shipping", shipping, minimum=0)
    _check_int("discount", discount, minimum=0)
    computed = tuple(line_totals(line, tax_inclusive=tax_inclusive) for line in lines)
    subtotal = sum(lt.total for lt in computed)
    if discount > subtotal + shipping:
        raise TotalsError("discount is larger than the order amount")
    tax = sum(lt.tax for lt in computed)
    return OrderTotals(
        lines=computed,
        subtotal=subtotal,
        discount=discount,
        shipping=shipping,
        tax=tax,
        total=subtotal + shipping - discount,
    )


def _check_int(name: str, value: object, *, minimum: int, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TotalsError(f"{name} must be a whole number of minor units, got {value!r}")
    if value < minimum:
        raise TotalsError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise TotalsError(f"{name} must be at most {maximum}, got {value}")
