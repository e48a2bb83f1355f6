"""Rules for free text we store (notes, reasons, tags): card numbers never go in."""

from __future__ import annotations

import re

# A run of digit groups joined by single spaces or dashes ("4111 1111-1111 1111").
_DIGIT_RUN_RE = re.compile(r"\d+(?:[ -]\d+)*")
_GROUP_RE = re.compile(r"\d+")
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
    13–19 digits, written as one block or in groups starting with a group of
    four ("4111 1111 1111 1111", "3782 822463 10005"), passing the Luhn check.

    Digits are never cut out of the middle of a group, so order numbers,
    tracking numbers and long references are not mistaken for cards; a run
    written after "+" is a phone number (E.164), and no card starts with 0.
    """
    for m in _DIGIT_RUN_RE.finditer(text):
        if text[: m.start()].rstrip(" (").endswith("+"):
            continue
        groups = _GROUP_RE.findall(m.group())
        for i, first in enumerate(groups):
            if first.startswith("0"):
                continue
            if len(first) != 4:
                if 13 <= len(first) <= 19 and luhn_valid(first):
                    return True
                continue
            digits = first
            for nxt in groups[i + 1 :]:
                digits += nxt
                if len(digits) > 19:
                    break
                if len(digits) >= 13 and luhn_valid(digits):
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
