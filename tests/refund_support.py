"""Helpers for the refund tests: reading what the database holds, and gateway
adapters that misbehave on purpose (time out, refuse, answer slowly) or keep
their refunds in memory like a gateway with no idempotency of its own."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, func, select

from pulse_tui.gateways.base import (
    ChangePage,
    GatewayAdapter,
    GatewayError,
    PaymentInfo,
    RefundInfo,
)
from pulse_tui.storage.db import read_session
from pulse_tui.storage.models import (
    AuditEntry,
    Order,
    OrderEvent,
    OrderLine,
    Payment,
    Product,
    Refund,
)

# -- reading the database -----------------------------------------------------------


def order(engine: Engine, number: str) -> Order:
    with read_session(engine) as s:
        return s.execute(select(Order).where(Order.number == number)).scalar_one()


def refunds(engine: Engine, number: str | None = None) -> list[Refund]:
    with read_session(engine) as s:
        q = select(Refund).order_by(Refund.id)
        if number is not None:
            q = q.join(Order, Order.id == Refund.order_id).where(Order.number == number)
        return list(s.execute(q).scalars())


def refund(engine: Engine, refund_id: int) -> Refund:
    with read_session(engine) as s:
        r = s.get(Refund, refund_id)
        assert r is not None
        return r


def payments(engine: Engine, number: str) -> list[Payment]:
    with read_session(engine) as s:
        return list(
            s.execute(
                select(Payment)
                .join(Order, Order.id == Payment.order_id)
                .where(Order.number == number)
                .order_by(Payment.id)
            ).scalars()
        )


def lines(engine: Engine, number: str) -> dict[str, OrderLine]:
    with read_session(engine) as s:
        return {
            ln.sku: ln
            for ln in s.execute(
                select(OrderLine)
                .join(Order, Order.id == OrderLine.order_id)
                .where(Order.number == number)
                .order_by(OrderLine.id)
            ).scalars()
        }


def stock(engine: Engine, sku: str) -> tuple[int, int]:
    """(on hand, reserved)."""
    with read_session(engine) as s:
        p = s.execute(select(Product).where(Product.sku == sku)).scalar_one()
        return p.stock_on_hand, p.stock_reserved


def event_kinds(engine: Engine, number: str) -> list[str]:
    with read_session(engine) as s:
        return list(
            s.execute(
                select(OrderEvent.kind)
                .join(Order, Order.id == OrderEvent.order_id)
                .where(Order.number == number)
                .order_by(OrderEvent.id)
            ).scalars()
        )


def refund_audit(engine: Engine) -> list[str]:
    with read_session(engine) as s:
        return list(
            s.execute(
                select(AuditEntry.action)
                .where(AuditEntry.entity == "refund")
                .order_by(AuditEntry.id)
            ).scalars()
        )


def footprint(engine: Engine) -> dict[str, Any]:
    """Everything a refused action must leave untouched."""
    with read_session(engine) as s:

        def n(model: Any) -> int:
            return int(s.execute(select(func.count()).select_from(model)).scalar_one())

        return {
            "refunds": n(Refund),
            "events": n(OrderEvent),
            "audit": n(AuditEntry),
            "orders": sorted(
                s.execute(
                    select(Order.number, Order.version, Order.refunded, Order.payment_status)
                ).all()
            ),
            "payments": sorted(s.execute(select(Payment.id, Payment.refunded)).all()),
        }


# -- adapters ---------------------------------------------------------------------


@dataclass
class Call:
    payment_ref: str
    amount: int
    key: str
    refund_id: str


class Wrapped:
    """A real adapter with ``create_refund`` intercepted; every other call goes
    through. ``calls`` keeps what was asked of create_refund (whether or not it
    reached the gateway)."""

    def __init__(self, inner: GatewayAdapter) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls: list[Call] = []

    async def fetch_payment(self, payment_ref: str) -> PaymentInfo:
        return await self.inner.fetch_payment(payment_ref)

    async def list_changes(self, since_cursor: str | None) -> ChangePage:
        return await self.inner.list_changes(since_cursor)

    async def fetch_refund(self, refund_ref: str) -> RefundInfo:
        return await self.inner.fetch_refund(refund_ref)

    async def list_refunds(self, payment_ref: str) -> list[RefundInfo]:
        return await self.inner.list_refunds(payment_ref)

    async def find_refund_by_metadata(self, payment_ref: str, refund_id: str) -> RefundInfo | None:
        return await self.inner.find_refund_by_metadata(payment_ref, refund_id)

    async def create_refund(
        self,
        payment_ref: str,
        amount: int,
        currency: str,
        *,
        idempotency_key: str,
        refund_id: str,
        metadata: dict[str, str] | None = None,
    ) -> RefundInfo:
        self.calls.append(Call(payment_ref, amount, idempotency_key, refund_id))
        return await self.send(
            payment_ref,
            amount,
            currency,
            idempotency_key=idempotency_key,
            refund_id=refund_id,
            metadata=metadata,
        )

    async def send(self, payment_ref: str, amount: int, currency: str, **kw: Any) -> RefundInfo:
        return await self.inner.create_refund(payment_ref, amount, currency, **kw)


def timeout(gateway: str = "stripe") -> GatewayError:
    return GatewayError("timed out: ReadTimeout", gateway=gateway, retryable=True)


class TimeoutAfterCall(Wrapped):
    """The gateway makes the refund, then the answer is lost (read timeout / 5xx)."""

    def __init__(self, inner: GatewayAdapter, times: int = 1, status: int | None = None) -> None:
        super().__init__(inner)
        self.times = times
        self.status = status

    async def send(self, payment_ref: str, amount: int, currency: str, **kw: Any) -> RefundInfo:
        info = await self.inner.create_refund(payment_ref, amount, currency, **kw)
        if self.times > 0:
            self.times -= 1
            if self.status is not None:
                raise GatewayError(
                    "bad gateway", gateway=self.name, status=self.status, retryable=True
                )
            raise timeout(self.name)
        return info


class TimeoutBeforeCall(Wrapped):
    """The request never reaches the gateway (connect timeout)."""

    def __init__(self, inner: GatewayAdapter, times: int = 1) -> None:
        super().__init__(inner)
        self.times = times

    async def send(self, payment_ref: str, amount: int, currency: str, **kw: Any) -> RefundInfo:
        if self.times > 0:
            self.times -= 1
            raise timeout(self.name)
        return await self.inner.create_refund(payment_ref, amount, currency, **kw)


class Redirected(Wrapped):
    """Sends the first ``times`` refunds against another payment reference (one
    the gateway will refuse), the rest against the real one."""

    def __init__(self, inner: GatewayAdapter, refused_ref: str, times: int = 1) -> None:
        super().__init__(inner)
        self.refused_ref = refused_ref
        self.times = times

    async def send(self, payment_ref: str, amount: int, currency: str, **kw: Any) -> RefundInfo:
        if self.times > 0:
            self.times -= 1
            payment_ref = self.refused_ref
        return await self.inner.create_refund(payment_ref, amount, currency, **kw)


class Slow(Wrapped):
    """Answers after a pause, so two senders are surely in flight together."""

    def __init__(self, inner: GatewayAdapter, pause: float = 0.2) -> None:
        super().__init__(inner)
        self.pause = pause

    async def send(self, payment_ref: str, amount: int, currency: str, **kw: Any) -> RefundInfo:
        await asyncio.sleep(self.pause)
        return await self.inner.create_refund(payment_ref, amount, currency, **kw)


class AnswersPending(Wrapped):
    """The gateway accepts the refund but reports it pending (settles later)."""

    async def send(self, payment_ref: str, amount: int, currency: str, **kw: Any) -> RefundInfo:
        info = await self.inner.create_refund(payment_ref, amount, currency, **kw)
        return RefundInfo(
            info.gateway,
            info.ref,
            info.payment_ref,
            "pending",
            info.amount,
            info.currency,
            info.refund_id,
        )


@dataclass
class FakeRefund:
    ref: str
    payment_ref: str
    amount: int
    currency: str
    key: str
    refund_id: str
    status: str


@dataclass
class FakeGateway:
    """An in-memory gateway with no idempotency of its own (like localstripe):
    every create_refund makes a refund. ``script`` decides, per call, what the
    gateway does: "ok" (succeeded), "pending", "async_fail" (made, then failed
    at the bank), "refuse" (HTTP 400, nothing made), "lost" (made, answer lost),
    "unreached" (timeout before it arrives). Lists oldest first."""

    name: str = "fake"
    script: list[str] = field(default_factory=list)
    made: list[FakeRefund] = field(default_factory=list)
    asked: list[tuple[str, int, str]] = field(default_factory=list)  # (payment, amount, key)
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    on_create: Callable[[], None] | None = None

    def info(self, r: FakeRefund) -> RefundInfo:
        failure = "bank refused" if r.status == "failed" else None
        return RefundInfo(
            self.name, r.ref, r.payment_ref, r.status, r.amount, r.currency, r.refund_id, failure
        )

    async def fetch_payment(self, payment_ref: str) -> PaymentInfo:
        raise GatewayError("not used", gateway=self.name, status=404)

    async def list_changes(self, since_cursor: str | None) -> ChangePage:
        return ChangePage([], since_cursor)

    async def create_refund(
        self,
        payment_ref: str,
        amount: int,
        currency: str,
        *,
        idempotency_key: str,
        refund_id: str,
        metadata: dict[str, str] | None = None,
    ) -> RefundInfo:
        self.asked.append((payment_ref, amount, idempotency_key))
        what = self.script.pop(0) if self.script else "ok"
        if what == "refuse":
            raise GatewayError("charge already refunded", gateway=self.name, status=400)
        if what == "unreached":
            raise timeout(self.name)
        status = {"pending": "pending", "async_fail": "failed"}.get(what, "succeeded")
        r = FakeRefund(
            f"re_{next(self._ids)}",
            payment_ref,
            amount,
            currency,
            idempotency_key,
            refund_id,
            status,
        )
        self.made.append(r)
        if what == "lost":
            raise timeout(self.name)
        return self.info(r)

    async def fetch_refund(self, refund_ref: str) -> RefundInfo:
        for r in self.made:
            if r.ref == refund_ref:
                return self.info(r)
        raise GatewayError("no such refund", gateway=self.name, status=404)

    async def list_refunds(self, payment_ref: str) -> list[RefundInfo]:
        return [self.info(r) for r in self.made if r.payment_ref == payment_ref]

    async def find_refund_by_metadata(self, payment_ref: str, refund_id: str) -> RefundInfo | None:
        for r in await self.list_refunds(payment_ref):
            if r.refund_id == refund_id:
                return r
        return None

    def succeeded(self, payment_ref: str | None = None) -> list[FakeRefund]:
        return [
            r
            for r in self.made
            if r.status == "succeeded" and (payment_ref is None or r.payment_ref == payment_ref)
        ]


def place(
    d: Any,
    lines: Any = (("MUG-BLUE", 2),),
    *,
    currency: str = "EUR",
    shipping: int = 495,
    discount: int = 0,
    customer_id: int = 1,
) -> Order:
    """factories.place with an order discount."""
    from pulse_tui.services.orders import AddressInput, LineRequest

    return d.orders.place(  # type: ignore[no-any-return]
        customer_id=customer_id,
        lines=[LineRequest(s, q) for s, q in lines],
        currency=currency,
        shipping_address=AddressInput(
            name="Test", line1="1 Main Street", city="Berlin", country="DE"
        ),
        shipping=shipping,
        discount=discount,
    )
