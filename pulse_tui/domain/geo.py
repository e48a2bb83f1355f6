"""Countries: ISO 3166-1 alpha-2 codes, validated against CLDR via babel."""

from __future__ import annotations

from functools import lru_cache

from babel import Locale


@lru_cache(maxsize=1)
def _countries() -> dict[str, str]:
    return {
        code: name
        for code, name in Locale.parse("en").territories.items()
        if len(code) == 2
        and code.isalpha()
        and code not in {"EU", "EZ", "UN", "QO", "ZZ", "XA", "XB"}
    }


def normalize_country(code: str) -> str:
    up = (code or "").strip().upper()
    if up not in _countries():
        raise ValueError(f"unknown country {code!r} (expected an ISO 3166 code such as DE)")
    return up


def country_name(code: str) -> str:
    return _countries().get(code.upper(), code)
