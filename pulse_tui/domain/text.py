"""Rules for free text we store (notes, reasons, tags): card numbers never go in."""

from __future__ import annotations

import re

_DIGIT_RUN_RE = re.compile(r"(?:\d[ -]?){13,19}")
MAX_NOTE = 2000


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def contains_card_number(text: str) -> bool:
    """True when text holds something that looks like a full card number:
    13–19 digits (spaces or dashes allowed between) passing the Luhn check."""
    for m in _DIGIT_RUN_RE.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        for length in range(19, 12, -1):
            for start in range(0, len(digits) - length + 1):
                if luhn_valid(digits[start : start + length]):
                    return True
    return False


def clean_free_text(text: str, what: str, *, max_len: int = MAX_NOTE) -> str:
    """Trimmed text or ValueError with a message naming ``what``."""
    t = (text or "").strip()
    if not t:
        raise ValueError(f"{what} cannot be empty")
    if len(t) > max_len:
        raise ValueError(f"{what} is longer than {max_len} characters")
    if contains_card_number(t):
        raise ValueError(f"{what} looks like it contains a card number; card data is never stored")
    return t
