"""Fault injection between the sync worker and localstripe.

A transport wrapper around the real one injects 500s, 429 with Retry-After,
read timeouts, connection errors, connection resets after the server answered
and malformed JSON into a seeded share of requests. The same orders and
payments in two databases, synced once through faults and once cleanly, must
end in the same state; the faulty run never raises and reports what it retried.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, select

from pulse_tui.gateways.stripe import StripeAdapter
from pulse_tui.gateways.sync import RetryPolicy, make_client
from pulse_tui.services import payments as pay
from pulse_tui.services.context import Context
from pulse_tui.services.payment_sync import PaymentSync, SyncReport
from pulse_tui.storage.db import read_session, write_session
from pulse_tui.storage.models import AuditEntry, Order, OrderEvent, Payment, Refund
from tests import factories
from tests.gateways.conftest import DECLINED_CARD, SECRET, Customer

pytestmark = pytest.mark.anyio

KINDS = ("500", "429", "timeout", "connect", "reset", "json")
RETRY_AFTER = 2.5
RATE = 0.3  # share of requests that fail


class FaultyTransport(httpx.AsyncBaseTransport):
    """Injects a fault into a seeded ``rate`` of requests, the kinds in turn.

    No request (method + URL) fails more than ``max_in_a_row`` times running,
    so with enough retry attempts every call gets through in the end.
    """

    def __init__(self, *, rate: float, seed: int, max_in_a_row: int = 3) -> None:
        # One transport may serve several runs (clients): its seeded sequence
        # and counters carry on; the real transport is renewed after each close.
        self.inner: httpx.AsyncBaseTransport = httpx.AsyncHTTPTransport()
        self.rate = rate
        self.rng = random.Random(seed)
        self.kinds = itertools.cycle(KINDS)
        self.max_in_a_row = max_in_a_row
        self.in_a_row: Counter[tuple[str, str]] = Counter()
        self.injected: Counter[str] = Counter()
        self.requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        key = (request.method, str(request.url))
        if self.in_a_row[key] < self.max_in_a_row and self.rng.random() < self.rate:
            self.in_a_row[key] += 1
            kind = next(self.kinds)
            self.injected[kind] += 1
            return await self._inject(kind, request)
        self.in_a_row[key] = 0
        return await self.inner.handle_async_request(request)

    async def _real(self, request: httpx.Request) -> None:
        """Let the server see and answer the request, then lose the answer."""
        resp = await self.inner.handle_async_request(request)
        await resp.aread()
        await resp.aclose()

    async def _inject(self, kind: str, request: httpx.Request) -> httpx.Response:
        error = {"error": {"type": "api_error", "message": f"injected {kind}"}}
        if kind == "500":
            return httpx.Response(500, json=error, request=request)
        if kind == "429":
            headers = {"Retry-After": str(RETRY_AFTER)}
            return httpx.Response(429, json=error, headers=headers, request=request)
        if kind == "timeout":
            raise httpx.ReadTimeout("injected read timeout", request=request)
        if kind == "connect":
            raise httpx.ConnectError("injected connection refused", request=request)
        await self._real(request)
        if kind == "reset":
            raise httpx.RemoteProtocolError("injected: peer closed connection", request=request)
        return httpx.Response(
            200,
            headers={"content-type": "application/json"},
            content=b'{"object": "list", "data": [{"id": "pi_',
            request=request,
        )

    async def aclose(self) -> None:
        await self.inner.aclose()
        self.inner = httpx.AsyncHTTPTransport()


@dataclass
class Sleeps:
    waits: list[float]

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


# -- identical data in two databases -------------------------------------------

PLAN = [
    # lines, currency, country, card, confirm
    ((("MUG-BLUE", 2),), "EUR", "DE", None, True),  # paid
    ((("CAP-RED", 1),), "USD", "US", None, True),  # paid
    ((("TEE-M", 1),), "EUR", "DE", DECLINED_CARD, True),  # failed → on hold
    ((("EBOOK-PY", 1),), "EUR", "FR", None, False),  # still pending
    ((("TEA-SET", 2),), "JPY", "JP", None, True),  # paid, then a pending refund of ours
]


def new_db(path: Path) -> Engine:
    engine = factories.new_engine(path)
    factories.add_operators(engine)
    factories.add_catalog(engine)
    return engine


async def seed(engines: list[Engine], customer: Customer) -> dict[str, str]:
    """The PLAN's orders in every engine, attached to the same PaymentIntents."""
    desks = [factories.desk(e) for e in engines]
    refs: dict[str, str] = {}
    for lines, currency, country, card, confirm in PLAN:
        orders = [
            factories.place(d, lines=lines, currency=currency, country=country) for d in desks
        ]
        o = orders[0]
        assert {x.number for x in orders} == {o.number}
        kw = {"number": card} if card else {}
        pi = await customer.intent(o.total, currency, **kw)
        for e in engines:
            pay.PaymentService(Context(e, factories.ADMIN)).attach(
                o.number, gateway="stripe", reference=pi
            )
        if confirm:
            await customer.confirm(pi)
        refs[o.number] = pi
    # the last order: a partial refund already made at Stripe, still pending here
    number, pi = list(refs.items())[-1]
    r = await customer.post("/v1/refunds", {"payment_intent": pi, "amount": "100"})
    r.raise_for_status()
    for e in engines:
        with write_session(e) as s:
            o = s.execute(select(Order).where(Order.number == number)).scalar_one()
            p = s.execute(select(Payment).where(Payment.gateway_ref == pi)).scalar_one()
            s.add(
                Refund(
                    order_id=o.id,
                    payment_id=p.id,
                    amount=100,
                    currency=o.currency,
                    reason="goodwill",
                    status="pending",
                    idempotency_key=f"idem-{pi}",
                    gateway_ref=r.json()["id"],
                    created_by="ada",
                )
            )
    return refs


def final_state(engine: Engine) -> dict[str, object]:
    """Everything the sync may change, without timestamps."""
    with read_session(engine) as s:
        orders = s.execute(
            select(
                Order.number,
                Order.status,
                Order.payment_status,
                Order.paid,
                Order.on_hold,
                Order.hold_reason,
                Order.version,
            ).order_by(Order.number)
        ).all()
        payments = s.execute(
            select(Payment.gateway_ref, Payment.status, Payment.captured, Payment.card_last4)
        ).all()
        refunds = s.execute(select(Refund.gateway_ref, Refund.status)).all()
        events = s.execute(
            select(
                OrderEvent.order_id, OrderEvent.kind, OrderEvent.actor, OrderEvent.message
            ).order_by(OrderEvent.order_id, OrderEvent.id)
        ).all()
        audit = s.execute(
            select(AuditEntry.action, AuditEntry.entity_id).order_by(AuditEntry.id)
        ).all()
    return {
        "orders": [tuple(r) for r in orders],
        "payments": sorted(map(tuple, payments)),
        "refunds": sorted(map(tuple, refunds)),
        # a payment and a refund of one order are refreshed concurrently, so
        # their events may interleave either way: compare each order's as a set
        "events": sorted(map(tuple, events)),
        "audit": sorted(map(tuple, audit)),  # orders apply concurrently
    }


async def sync_once(
    engine: Engine, url: str, transport: httpx.AsyncBaseTransport, sleeps: Sleeps, attempts: int = 5
) -> SyncReport:
    async with make_client(timeout=5, transport=transport) as client:
        worker = PaymentSync(
            engine,
            {"stripe": StripeAdapter(client, SECRET, url)},
            policy=RetryPolicy(attempts=attempts, sleep=sleeps, rand=random.Random(1).random),
        )
        return await worker.run_once()


def assert_expected_outcome(engine: Engine, refs: dict[str, str]) -> None:
    """The clean reference itself is right (so "equal" is not "equally wrong")."""
    paid, usd, failed, pending, refunded = refs
    state = {o[0]: o[1:6] for o in final_state(engine)["orders"]}  # type: ignore[union-attr]
    assert state[paid][:2] == ("processing", "paid")
    assert state[usd][:2] == ("processing", "paid")
    assert state[failed][0] == "pending" and state[failed][3:5] == (True, "payment failed")
    assert state[pending][:2] == ("pending", "unpaid")
    # the refund settled: the money moved on the order too
    assert state[refunded][:2] == ("processing", "partially_refunded")
    assert [r[1] for r in final_state(engine)["refunds"]] == ["succeeded"]  # type: ignore[index]


@pytest.mark.parametrize("seed_", [7, 2024])
async def test_faulty_sync_converges_to_the_clean_state(
    tmp_path: Path, customer: Customer, localstripe_url: str, seed_: int
) -> None:
    faulty_db, clean_db = new_db(tmp_path / "faulty.sqlite"), new_db(tmp_path / "clean.sqlite")
    refs = await seed([faulty_db, clean_db], customer)
    assert final_state(faulty_db) == final_state(clean_db)

    clean_sleeps = Sleeps([])
    clean = await sync_once(clean_db, localstripe_url, httpx.AsyncHTTPTransport(), clean_sleeps)
    assert clean.ok and clean.gateways[0].retried == [] and clean_sleeps.waits == []
    assert_expected_outcome(clean_db, refs)

    faults = FaultyTransport(rate=RATE, seed=seed_)
    sleeps = Sleeps([])
    first = await sync_once(faulty_db, localstripe_url, faults, sleeps)
    # Anything that failed for good is reported, and only the change feed may
    # (several requests per attempt); every pending payment is also refreshed
    # one by one, so the first run already converges.
    assert all("list changes" in e for e in first.errors), first.errors
    assert final_state(faulty_db) == final_state(clean_db)

    # Later runs through the same faulty transport: nothing changes, and the
    # feed gets through; keep going until every kind of fault has been met.
    reports = [first]
    while len(reports) < 12 and not (reports[-1].ok and set(faults.injected) == set(KINDS)):
        again = await sync_once(faulty_db, localstripe_url, faults, sleeps)
        assert again.changed == [] and again.skipped_by is None
        assert final_state(faulty_db) == final_state(clean_db)
        reports.append(again)
    assert reports[-1].ok, reports[-1].errors
    assert set(faults.injected) == set(KINDS), faults.injected

    retried = [r for rep in reports for r in rep.gateways[0].retried]
    errors = [e for rep in reports for e in rep.errors]
    assert len(retried) == len(sleeps.waits)
    assert len(retried) + len(errors) == sum(faults.injected.values())
    text = "\n".join(retried + errors)  # every fault is reported, one way or the other
    for fragment in (
        "HTTP 500",
        "HTTP 429",
        "timed out: ReadTimeout",
        "connection failed: ConnectError",
        "connection failed: RemoteProtocolError",
        "malformed JSON",
    ):
        assert fragment in text, (fragment, text)
    assert RETRY_AFTER in sleeps.waits  # Retry-After honoured
    assert all(0 <= w <= 30 for w in sleeps.waits)
    faulty_db.dispose()
    clean_db.dispose()


async def test_a_run_that_cannot_get_through_reports_and_a_later_run_catches_up(
    tmp_path: Path, customer: Customer, localstripe_url: str
) -> None:
    down_db, clean_db = new_db(tmp_path / "down.sqlite"), new_db(tmp_path / "clean.sqlite")
    refs = await seed([down_db, clean_db], customer)
    untouched = final_state(down_db)

    dead = FaultyTransport(rate=1.0, seed=3, max_in_a_row=10**6)
    report = await sync_once(down_db, localstripe_url, dead, Sleeps([]), attempts=3)
    assert not report.ok and report.errors
    assert any("list changes" in e for e in report.errors)
    assert sum(1 for e in report.errors if "fetch" in e) == len(refs) + 1  # payments + refund
    assert final_state(down_db) == untouched  # nothing half-applied
    (st,) = pay.sync_states(Context(down_db, factories.ADMIN))
    assert st.last_error and st.error_count == len(report.errors) and st.last_success_at is None

    await sync_once(clean_db, localstripe_url, httpx.AsyncHTTPTransport(), Sleeps([]))
    later = await sync_once(down_db, localstripe_url, httpx.AsyncHTTPTransport(), Sleeps([]))
    assert later.ok
    assert_expected_outcome(down_db, refs)
    assert final_state(down_db) == final_state(clean_db)
    down_db.dispose()
    clean_db.dispose()
