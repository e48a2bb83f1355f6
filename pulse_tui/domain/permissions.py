"""Roles and what each may do (ARCHITECTURE.md's matrix, as data)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"
    WAREHOUSE = "warehouse"
    AGENT = "agent"
    ADMIN = "admin"


class Permission(StrEnum):
    READ = "read"  # orders and timeline
    READ_PAYMENTS = "read_payments"
    NOTE = "note"
    FULFIL = "fulfil"  # ship, deliver, pick & pack
    HOLD = "hold"  # hold / release, start processing, confirm payment
    CANCEL = "cancel"
    EDIT = "edit"  # edit before fulfilment, tags
    REFUND = "refund"  # up to the configured limit, returns
    REFUND_ANY = "refund_any"  # above the limit, approvals
    BULK = "bulk"
    EXPORT = "export"
    OPERATORS = "operators"
    SETTINGS = "settings"


_P = Permission
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({_P.READ, _P.READ_PAYMENTS}),
    Role.WAREHOUSE: frozenset({_P.READ, _P.NOTE, _P.FULFIL}),
    Role.AGENT: frozenset(
        {_P.READ, _P.READ_PAYMENTS, _P.NOTE, _P.FULFIL, _P.HOLD, _P.CANCEL, _P.EDIT, _P.REFUND}
    ),
    Role.ADMIN: frozenset(Permission),
}


class PermissionDenied(PermissionError):
    pass


def role_can(role: Role | str, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[Role(role)]


def require(role: Role | str, permission: Permission, what: str) -> None:
    if not role_can(role, permission):
        raise PermissionDenied(f"a {Role(role)} may not {what}")
