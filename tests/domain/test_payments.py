"""Payment methods and wallets: what the desk records, and what it refuses."""

from __future__ import annotations

import pytest

from pulse_tui.domain.payments import (
    PaymentMethod,
    Wallet,
    method_problem,
    parse_method,
    parse_wallet,
)


@pytest.mark.parametrize(
    ("text", "method"),
    [
        ("card", PaymentMethod.CARD),
        (" Wallet ", PaymentMethod.WALLET),
        ("bank_transfer", PaymentMethod.BANK_TRANSFER),
        ("Bank transfer", PaymentMethod.BANK_TRANSFER),
        ("bank-transfer", PaymentMethod.BANK_TRANSFER),
        ("CRYPTO", PaymentMethod.CRYPTO),
        (PaymentMethod.CARD, PaymentMethod.CARD),
    ],
)
def test_parse_method(text, method) -> None:
    assert parse_method(text) is method


@pytest.mark.parametrize("text", ["cash", "", "paypal", "cardx", "bank"])
def test_unknown_method_lists_the_allowed(text) -> None:
    with pytest.raises(ValueError) as exc:
        parse_method(text)
    assert "card, wallet, bank_transfer, crypto" in str(exc.value)


def test_wallets() -> None:
    assert [w.value for w in Wallet] == ["paypal", "apple_pay", "google_pay"]
    assert parse_wallet("Apple Pay") is Wallet.APPLE_PAY
    assert parse_wallet("google-pay") is Wallet.GOOGLE_PAY
    assert parse_wallet(None) is None and parse_wallet("  ") is None
    with pytest.raises(ValueError, match="paypal, apple_pay, google_pay"):
        parse_wallet("samsung pay")


def test_wallet_only_with_wallet_method() -> None:
    assert method_problem(PaymentMethod.WALLET, Wallet.PAYPAL) is None
    assert method_problem(PaymentMethod.CARD, None) is None
    assert "wallet method" in (method_problem(PaymentMethod.CARD, Wallet.PAYPAL) or "")
