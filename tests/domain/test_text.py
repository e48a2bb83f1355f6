from __future__ import annotations

import pytest

from pulse_tui.domain.text import MAX_NOTE, clean_free_text, contains_card_number, luhn_valid

CARDS = [
    "4111111111111111",  # Visa test
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
    "5555 5555 5555 4444",  # Mastercard
    "378282246310005",  # Amex, 15
    "3782 822463 10005",
    "4222222222222",  # 13-digit Visa
    "6011 1111 1111 1117",  # Discover
    "3530111333300000",  # JCB
    "6250941006528599",  # UnionPay 16
    "6759649826438453",  # Maestro 16
]


@pytest.mark.parametrize("card", CARDS)
def test_cards_are_detected(card: str) -> None:
    assert luhn_valid(card.replace(" ", "").replace("-", ""))
    assert contains_card_number(card)
    assert contains_card_number(f"customer read out {card} on the phone")
    assert contains_card_number(f"card:{card}, exp 12/27")
    assert contains_card_number(f"{card} 12/27")


def test_19_digit_card_detected() -> None:
    digits = "6304000000000000000"[:-1]
    # make a Luhn-valid 19-digit number
    for last in "0123456789":
        if luhn_valid(digits + last):
            break
    assert contains_card_number(digits[:4] + " " + digits[4:] + last)


@pytest.mark.parametrize(
    "text",
    [
        "4111 1111 1111 1112",  # Luhn fails
        "411111111111",  # 12 digits
        "call +49 151 23456789 after 5",
        "+44 20 7946 0958",
        "+1 (555) 010-0199",
        "+1 555 010 0199 ext 1234",
        "tel 0049 151 2345 6789",
        "0151 2345 6789 01",
        "PB-100042 and PB-100043 and PB-100044",
        "orders 100042 100043 100044 100045",
        "100042, 100043, 100044",
        "tracking JD0000000003 and 1Z999AA10123456784",
        "tracking 00340434161094042557",
        "reference 12345678901234567890123",
        "2026-11-26 12:00",
        "",
    ],
)
def test_not_cards(text: str) -> None:
    assert not contains_card_number(text)


def test_phone_numbers_are_not_flagged_whatever_their_digits() -> None:
    # an E.164 number (up to 15 digits) is never a card, whatever its checksum
    for n in range(10_000):
        phone = f"+49 1512 {n:04d} {n * 7 % 10_000:04d} 1"
        assert not contains_card_number(phone), phone


def test_clean_free_text() -> None:
    assert clean_free_text("  hello  ", "note") == "hello"
    with pytest.raises(ValueError, match="note cannot be empty"):
        clean_free_text("   ", "note")
    with pytest.raises(ValueError, match=f"longer than {MAX_NOTE}"):
        clean_free_text("x" * (MAX_NOTE + 1), "note")
    with pytest.raises(ValueError, match="reason is longer than 5"):
        clean_free_text("abcdef", "reason", max_len=5)
    with pytest.raises(ValueError, match="card number; card data is never stored"):
        clean_free_text("pay with 4111 1111 1111 1111", "note")
