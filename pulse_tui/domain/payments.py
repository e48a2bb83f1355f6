"""How an order is paid: the payment methods and wallets the desk records.

Card payments keep the brand and last four digits only; a wallet payment
names its wallet; crypto is a slot for a future gateway adapter (see
gateways/base.py), recorded like any other method.
"""

from __future__ import annotations

from enum import StrEnum


class PaymentMethod(StrEnum):
    CARD = "card"
    WALLET = "wallet"
    BANK_TRANSFER = "bank_transfer"
    CRYPTO = "crypto"
    CREDIT = "credit"  # store credit, e.g. an exchange settled by returned goods


class Wallet(StrEnum):
    PAYPAL = "paypal"
    APPLE_PAY = "apple_pay"
    GOOGLE_PAY = "google_pay"


def _key(text: str) -> str:
    return "_".join(text.strip().lower().replace("-", " ").split())


def parse_method(value: str | PaymentMethod) -> PaymentMethod:
    """The method for what an operator or gateway wrote ("card", "Bank transfer",
    "bank-transfer"); ValueError naming the allowed ones otherwise."""
    try:
        return PaymentMethod(_key(str(value)))
    except ValueError:
        allowed = ", ".join(m.value for m in PaymentMethod)
        raise ValueError(f"unknown payment method {value!r} (one of: {allowed})") from None


def parse_wallet(value: str | Wallet | None) -> Wallet | None:
    """ "Apple Pay", "apple_pay" → Wallet.APPLE_PAY; None or blank → None."""
    if value is None or not str(value).strip():
        return None
    try:
        return Wallet(_key(str(value)))
    except ValueError:
        allowed = ", ".join(w.value for w in Wallet)
        raise ValueError(f"unknown wallet {value!r} (one of: {allowed})") from None


def method_problem(method: PaymentMethod, wallet: Wallet | None) -> str | None:
    """Why ``method`` and ``wallet`` do not go together, or None."""
    if wallet is not None and method != PaymentMethod.WALLET:
        return f"a wallet ({wallet}) goes with the wallet method, not {method}"
    return None


__all__ = ["PaymentMethod", "Wallet", "method_problem", "parse_method", "parse_wallet"]
