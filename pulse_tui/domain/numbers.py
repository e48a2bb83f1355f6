"""Order numbers: a fixed prefix and a sequence, e.g. PB-100042."""

from __future__ import annotations

import re

PREFIX = "PB-"
FIRST = 100_001
_NUMBER_RE = re.compile(r"^PB-(\d{6,})$")


def order_number(sequence: int) -> str:
    if sequence < 1:
        raise ValueError("order sequence starts at 1")
    return f"{PREFIX}{FIRST - 1 + sequence}"


def parse_order_number(text: str) -> str:
    """Normalise what an operator typed ("pb-100042", "100042") to "PB-100042"."""
    t = text.strip().upper()
    if t.isdigit():
        t = PREFIX + t
    if not _NUMBER_RE.match(t):
        raise ValueError(f"not an order number: {text!r} (expected e.g. PB-100042)")
    return t


def looks_like_order_number(text: str) -> bool:
    try:
        parse_order_number(text)
    except ValueError:
        return False
    return True
