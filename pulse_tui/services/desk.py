"""Desk: the one services object every door (TUI, CLI, API) receives."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from pulse_tui.config import Settings
from pulse_tui.domain.filters import OrderFilter, Sort
from pulse_tui.domain.permissions import Permission
from pulse_tui.storage import queries
from pulse_tui.storage.db import read_session

from .context import Actor, Context, utcnow
from .operators import OperatorService
from .orders import OrderService
from .refunds import RefundService

if TYPE_CHECKING:
    from .bulk import BulkService
    from .customers import CustomerService
    from .notifications import NotificationService
    from .returns import ReturnService


class Desk:
    def __init__(
        self,
        engine: Engine,
        actor: Actor,
        settings: Settings | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.ctx = Context(engine, actor, settings, clock)
        self.orders = OrderService(self.ctx)
        self.operators = OperatorService(self.ctx)
        self.refunds = RefundService(self.ctx)

    @cached_property
    def returns(self) -> ReturnService:
        from .returns import ReturnService

        return ReturnService(self.ctx)

    @cached_property
    def bulk(self) -> BulkService:
        from .bulk import BulkService

        return BulkService(self.ctx)

    @cached_property
    def customers(self) -> CustomerService:
        from .customers import CustomerService

        return CustomerService(self.ctx)

    @cached_property
    def notifications(self) -> NotificationService:
        from .notifications import NotificationService

        return NotificationService(self.ctx)

    @property
    def actor(self) -> Actor:
        return self.ctx.actor

    @property
    def engine(self) -> Engine:
        return self.ctx.engine

    def now(self) -> datetime:
        return self.ctx.now()

    # Read side: thin, permission-checked wrappers over storage.queries.
    def list_orders(
        self,
        f: OrderFilter | None = None,
        sort: Sort | None = None,
        *,
        limit: int = queries.PAGE_SIZE,
        after: queries.Cursor | None = None,
        before: queries.Cursor | None = None,
    ) -> queries.Page:
        self.actor.require(Permission.READ, "read orders")
        with read_session(self.engine) as s:
            return queries.list_orders(s, f, sort, limit=limit, after=after, before=before)

    def count_orders(self, f: OrderFilter | None = None, *, cap: int | None = None) -> int:
        self.actor.require(Permission.READ, "read orders")
        with read_session(self.engine) as s:
            return queries.count_orders(s, f, cap=cap)

    def status_counts(self, f: OrderFilter | None = None) -> dict[str, int]:
        self.actor.require(Permission.READ, "read orders")
        with read_session(self.engine) as s:
            return queries.status_counts(s, f)
