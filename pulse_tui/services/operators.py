"""Operators and identity: who is acting.

The acting operator comes from ``--as`` / ``PULSE_OPERATOR``, else the OS
user mapped to an operator (``unix_user``). With no match the door refuses.
The very first operator may be added by anyone (bootstrap); after that only
admins manage operators.
"""

from __future__ import annotations

import getpass
import re

from sqlalchemy import Engine, func, select
from sqlmodel import col

from pulse_tui.domain.permissions import Permission, Role
from pulse_tui.storage.db import read_session, write_session
from pulse_tui.storage.models import Operator

from .audit import record_audit
from .context import Actor, Context
from .errors import Conflict, Denied, InvalidInput, NotFound

_USERNAME_RE = re.compile(r"^[a-z][a-z0-9_.\-]{1,31}$")
DEMO_OPERATOR = "demo"


def actor_of(op: Operator) -> Actor:
    return Actor(op.username, Role(op.role), op.display_name)


def os_user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        return None


def resolve_actor(engine: Engine, requested: str | None, unix_user: str | None = None) -> Actor:
    """Find the acting operator or raise Denied with a message that says what to do."""
    # usernames are stored lower-case (see OperatorService.add)
    requested = (requested or "").strip().lower() or None
    with read_session(engine) as s:
        if requested:
            op = s.execute(
                select(Operator).where(col(Operator.username) == requested)
            ).scalar_one_or_none()
            if op is None:
                raise Denied(f"unknown operator {requested!r} (see `pulse operators list`)")
        else:
            user = unix_user if unix_user is not None else os_user()
            op = (
                s.execute(
                    select(Operator).where(col(Operator.unix_user) == user)
                ).scalar_one_or_none()
                if user
                else None
            )
            if op is None:
                raise Denied(
                    f"no operator is mapped to OS user {user!r}: pass --as NAME, set "
                    "PULSE_OPERATOR, or `pulse operators add NAME --role R --unix-user "
                    f"{user or 'USER'}`"
                )
        if not op.active:
            raise Denied(f"operator {op.username!r} is disabled")
        return actor_of(op)


def operator_count(engine: Engine) -> int:
    with read_session(engine) as s:
        return int(s.execute(select(func.count()).select_from(Operator)).scalar_one())


class OperatorService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def list(self, *, include_inactive: bool = True) -> list[Operator]:
        """Admins. Every operator, by username."""
        self.ctx.actor.require(Permission.OPERATORS, "list operators")
        with read_session(self.ctx.engine) as s:
            stmt = select(Operator).order_by(col(Operator.username))
            if not include_inactive:
                stmt = stmt.where(col(Operator.active))
            return list(s.execute(stmt).scalars())

    def add(
        self,
        username: str,
        *,
        role: str,
        display_name: str | None = None,
        unix_user: str | None = None,
        bootstrap: bool = False,
    ) -> Operator:
        """Admins (or anyone when no operator exists yet: ``bootstrap``)."""
        if not bootstrap:
            self.ctx.actor.require(Permission.OPERATORS, "add operators")
        name = username.strip().lower()
        if not _USERNAME_RE.match(name):
            raise InvalidInput(
                f"bad username {username!r}: 2–32 characters, a-z first, then a-z 0-9 . _ -"
            )
        try:
            role_v = Role(role.strip().lower())
        except ValueError:
            raise InvalidInput(
                f"unknown role {role!r} (one of: {', '.join(r.value for r in Role)})"
            ) from None
        with write_session(self.ctx.engine) as s:
            if bootstrap and s.execute(select(func.count()).select_from(Operator)).scalar_one():
                raise Denied("operators exist already: act as an admin to add more")
            if s.execute(select(Operator).where(col(Operator.username) == name)).first():
                raise Conflict(f"operator {name!r} exists already")
            if (
                unix_user
                and s.execute(select(Operator).where(col(Operator.unix_user) == unix_user)).first()
            ):
                raise Conflict(f"OS user {unix_user!r} is mapped to another operator")
            op = Operator(
                username=name,
                display_name=(display_name or name).strip(),
                role=role_v.value,
                unix_user=unix_user or None,
                created_at=self.ctx.now(),
            )
            s.add(op)
            s.flush()
            record_audit(
                s,
                self.ctx,
                "operator.add",
                "operator",
                name,
                None,
                {"role": role_v.value, "unix_user": unix_user, "active": True},
                actor=name if bootstrap else None,
            )
            return op

    def set_active(self, username: str, active: bool) -> Operator:
        """Admins. Disable (or re-enable) an operator; admins cannot disable themselves."""
        self.ctx.actor.require(Permission.OPERATORS, "disable operators")
        name = username.strip().lower()
        with write_session(self.ctx.engine) as s:
            op = s.execute(
                select(Operator).where(col(Operator.username) == name)
            ).scalar_one_or_none()
            if op is None:
                raise NotFound(f"no operator {username!r}")
            if not active and name == self.ctx.actor.username:
                raise InvalidInput("you cannot disable yourself")
            if op.active == active:
                raise InvalidInput(f"{name} is already {'active' if active else 'disabled'}")
            op.active = active
            record_audit(
                s,
                self.ctx,
                "operator.enable" if active else "operator.disable",
                "operator",
                name,
                {"active": not active},
                {"active": active},
            )
            return op

    def ensure_demo_admin(self) -> Operator:
        """Demo mode: make sure an admin called ``demo`` exists."""
        with write_session(self.ctx.engine) as s:
            op = s.execute(
                select(Operator).where(col(Operator.username) == DEMO_OPERATOR)
            ).scalar_one_or_none()
            if op is None:
                op = Operator(
                    username=DEMO_OPERATOR,
                    display_name="Demo Admin",
                    role=Role.ADMIN.value,
                    created_at=self.ctx.now(),
                )
                s.add(op)
                s.flush()
                record_audit(
                    s,
                    self.ctx,
                    "operator.add",
                    "operator",
                    DEMO_OPERATOR,
                    None,
                    {"role": "admin", "demo": True},
                    actor="system",
                )
            return op
