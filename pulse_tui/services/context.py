"""Who is acting, on which database, at what time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine

from pulse_tui.config import Settings
from pulse_tui.domain.permissions import Permission, PermissionDenied, Role, require, role_can

from .errors import Denied


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Actor:
    username: str
    role: Role
    display_name: str = ""

    @property
    def label(self) -> str:
        return self.username

    def can(self, permission: Permission) -> bool:
        return role_can(self.role, permission)

    def require(self, permission: Permission, what: str) -> None:
        try:
            require(self.role, permission, what)
        except PermissionDenied as exc:
            raise Denied(f"{self.username}: {exc}") from None


SYSTEM = Actor("system", Role.ADMIN, "System")


@dataclass
class Context:
    engine: Engine
    actor: Actor
    settings: Settings | None = None
    clock: Callable[[], datetime] = field(default=utcnow)

    def now(self) -> datetime:
        return self.clock()

    def as_actor(self, actor: Actor) -> Context:
        return Context(self.engine, actor, self.settings, self.clock)
