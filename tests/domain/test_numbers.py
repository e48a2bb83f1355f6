from __future__ import annotations

import pytest

from pulse_tui.domain.geo import country_name, normalize_country
from pulse_tui.domain.numbers import looks_like_order_number, order_number, parse_order_number
from pulse_tui.domain.permissions import Permission, PermissionDenied, Role, require, role_can


def test_order_numbers() -> None:
    assert order_number(1) == "PB-100001"
    assert order_number(42) == "PB-100042"
    with pytest.raises(ValueError):
        order_number(0)
    assert parse_order_number(" pb-100042 ") == "PB-100042"
    assert parse_order_number("100042") == "PB-100042"
    for bad in ("PB-12", "XX-100042", "PB100042", ""):
        with pytest.raises(ValueError, match="not an order number"):
            parse_order_number(bad)
        assert not looks_like_order_number(bad)
    assert looks_like_order_number("PB-1000000")


def test_countries() -> None:
    assert normalize_country(" de ") == "DE"
    assert country_name("jp") == "Japan"
    for bad in ("", "XX", "DEU", "EU", "ZZ"):
        with pytest.raises(ValueError, match="unknown country"):
            normalize_country(bad)


def test_role_matrix_as_data() -> None:
    assert role_can(Role.VIEWER, Permission.READ)
    assert not role_can(Role.VIEWER, Permission.NOTE)
    assert not role_can(Role.WAREHOUSE, Permission.READ_PAYMENTS)
    assert role_can(Role.WAREHOUSE, Permission.FULFIL)
    assert not role_can(Role.WAREHOUSE, Permission.HOLD)
    assert role_can(Role.AGENT, Permission.REFUND)
    assert not role_can(Role.AGENT, Permission.REFUND_ANY)
    assert not role_can(Role.AGENT, Permission.OPERATORS)
    assert all(role_can("admin", p) for p in Permission)
    with pytest.raises(PermissionDenied, match="a viewer may not add notes"):
        require("viewer", Permission.NOTE, "add notes")
