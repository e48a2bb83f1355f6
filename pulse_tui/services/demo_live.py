"""Live payment sync for the demo: a local localstripe and a pretend customer.

``pulse demo live`` (the Makefile's ``demo`` target) uses this module to

1. start localstripe on 127.0.0.1 and a free port, its state in memory only
   (``python -m pulse_tui.services.demo_live PORT``; localstripe otherwise
   pickles its store to /tmp and reloads it at start);
2. create a PaymentIntent there for some of the demo's pending, unpaid orders
   and attach it to the order (through PaymentService, as the checkout would);
3. play the customer in a background thread: over the first minute it
   confirms most intents (some with a card that is declined), so the TUI's
   own sync turns pending orders to processing, or on hold, by itself;
4. give the newest card-paid orders a real, paid PaymentIntent at localstripe
   (``rehome_card_payments``), so refunding them from the desk really moves
   money at the gateway. Older seeded card payments keep references no
   gateway knows: refunding one fails with the gateway's "No such
   payment_intent", which is how the desk shows a failed refund.

Nothing here is used outside the demo; it needs the ``demo`` extra (localstripe).
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import Engine, select
from sqlmodel import col

from pulse_tui.config import Settings
from pulse_tui.domain.filters import OrderFilter
from pulse_tui.domain.status import OrderStatus, PaymentStatus
from pulse_tui.storage.db import write_session
from pulse_tui.storage.models import Order, Payment

from .context import SYSTEM, Context
from .desk import Desk
from .errors import ServiceError
from .payments import PaymentService

SECRET = "sk_test_pulse_demo_0000000000000000"
GOOD_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000341"  # attaches fine, declined when charged


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalStripe:
    """A localstripe process on 127.0.0.1; a context manager that stops it."""

    def __init__(self, log: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15.0) -> LocalStripe:
        out = open(self.log, "wb") if self.log else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pulse_tui.services.demo_live", str(self.port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServiceError(f"localstripe exited at start (code {self.proc.returncode})")
            try:
                r = httpx.get(
                    f"{self.url}/v1/customers",
                    headers={"Authorization": f"Bearer {SECRET}"},
                    timeout=1,
                )
                if r.status_code < 500:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise ServiceError(f"localstripe did not answer on {self.url}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> LocalStripe:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class Intent:
    order: str
    ref: str
    declines: bool


@dataclass
class Customer:
    """Plays the customer's side against localstripe."""

    base_url: str
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(
            base_url=self.base_url, headers={"Authorization": f"Bearer {SECRET}"}, timeout=10
        )

    def close(self) -> None:
        self.client.close()

    def _post(self, path: str, data: dict[str, str]) -> dict[str, object]:
        r = self.client.post(path, data=data)
        r.raise_for_status()
        return r.json()  # type: ignore[no-any-return]

    def intent(self, order: str, amount: int, currency: str, card: str) -> str:
        pm = self._post(
            "/v1/payment_methods",
            {
                "type": "card",
                "card[number]": card,
                "card[exp_month]": "12",
                "card[exp_year]": "2030",
                "card[cvc]": "123",
            },
        )["id"]
        data = {
            "amount": str(amount),
            "currency": currency.lower(),
            "payment_method": str(pm),
            "metadata[pulse_order]": order,
        }
        return str(self._post("/v1/payment_intents", data)["id"])

    def confirm(self, ref: str) -> None:
        # a declined card answers 402: that is the point, not an error here
        self.client.post(f"/v1/payment_intents/{ref}/confirm", data={})


def create_intents(
    engine: Engine, customer: Customer, *, count: int = 12, seed: int = 7
) -> list[Intent]:
    """PaymentIntents for up to ``count`` of the newest pending, unpaid orders,
    attached to those orders (as SYSTEM, like a checkout). About one in four
    uses a card that will be declined."""
    rng = random.Random(seed)
    desk = Desk(engine, SYSTEM)
    f = OrderFilter(
        statuses=(OrderStatus.PENDING,), payment_statuses=(PaymentStatus.UNPAID,), on_hold=False
    )
    payments = PaymentService(Context(engine, SYSTEM))
    out: list[Intent] = []
    for row in desk.list_orders(f, limit=count * 2).rows:
        if len(out) >= count:
            break
        d = desk.orders.detail(row.number)
        if d.payments:  # already has a gateway payment: leave it alone
            continue
        o = d.order
        declines = rng.random() < 0.25
        ref = customer.intent(
            o.number, o.total - o.paid, o.currency, DECLINED_CARD if declines else GOOD_CARD
        )
        try:
            payments.attach(o.number, gateway="stripe", reference=ref, method="card")
        except ServiceError:
            continue
        out.append(Intent(o.number, ref, declines))
    return out


def rehome_card_payments(engine: Engine, customer: Customer, *, count: int = 40) -> list[str]:
    """Demo data only: the ``count`` newest paid Stripe payments get a real,
    confirmed PaymentIntent at localstripe for what they captured, and their
    gateway reference is switched to it. The seeded references were made up;
    this is part of building the demo, not a business action, so it writes
    the reference directly and leaves no event."""
    with write_session(engine) as s:
        rows = s.execute(
            select(Payment, col(Order.number))
            .join(Order, col(Order.id) == col(Payment.order_id))
            .where(
                col(Payment.gateway) == "stripe",
                col(Payment.status) == PaymentStatus.PAID.value,
                col(Payment.refunded) == 0,
                col(Order.status).in_(
                    [OrderStatus.PROCESSING, OrderStatus.SHIPPED, OrderStatus.DELIVERED]
                ),
            )
            .order_by(col(Order.id).desc())
            .limit(count)
        ).all()
        for payment, number in rows:
            ref = customer.intent(number, payment.captured, payment.currency, GOOD_CARD)
            customer.confirm(ref)
            payment.gateway_ref = ref
        return [str(number) for _payment, number in rows]


def add_desk_examples(
    engine: Engine, settings: Settings | None, numbers: list[str], *, agent: str = "amara"
) -> tuple[int, int]:
    """Work waiting for the demo admin, made through the services as the agent
    ``agent`` would: full refunds above the refund limit on two of ``numbers``
    (they wait in the approvals queue, F) and one return request on a
    delivered order. Returns (refunds, returns) made."""
    from pulse_tui.domain.permissions import Role

    from .context import Actor
    from .refunds import RefundRequest
    from .returns import ReturnPick

    desk = Desk(engine, Actor(agent, Role.AGENT, agent), settings)

    def limit(currency: str) -> int:
        return settings.refund_limit(currency) if settings is not None else 50_000

    refunds = returns = 0
    for number in numbers:
        try:
            d = desk.orders.detail(number)
            if refunds < 2 and d.order.total > limit(d.order.currency) and not d.refunds:
                desk.refunds.create(
                    number, RefundRequest(reason="not_received", amount=d.order.total)
                )
                refunds += 1
            elif returns < 1 and d.order.status == OrderStatus.DELIVERED and d.lines:
                line = d.lines[0]
                desk.returns.request(
                    number, [ReturnPick(line.sku, 1)], "damaged", note="arrived cracked"
                )
                returns += 1
        except ServiceError:
            continue
        if refunds >= 2 and returns >= 1:
            break
    return refunds, returns


class Confirmer(threading.Thread):
    """Confirms the intents one by one, spread over ``over`` seconds."""

    def __init__(
        self,
        customer: Customer,
        intents: list[Intent],
        *,
        over: float = 60.0,
        keep_pending: int = 2,
        sleep: Callable[[float], bool] | None = None,
    ) -> None:
        super().__init__(name="demo-customer", daemon=True)
        self.customer = customer
        self.todo = intents[: max(0, len(intents) - keep_pending)]  # a few stay pending
        self.gap = over / max(1, len(self.todo))
        self.stopped = threading.Event()
        self.confirmed: list[str] = []
        self._sleep = sleep or self.stopped.wait

    def run(self) -> None:
        for intent in self.todo:
            if self._sleep(self.gap) or self.stopped.is_set():
                return
            try:
                self.customer.confirm(intent.ref)
                self.confirmed.append(intent.ref)
            except httpx.HTTPError:
                return  # localstripe went away (the demo is closing)

    def stop(self) -> None:
        self.stopped.set()


def serve(port: int) -> None:
    """Run localstripe on 127.0.0.1:``port`` with its store in memory only."""
    from aiohttp import web
    from localstripe import resources, server

    resources.Store.dump_to_disk = lambda self: None  # type: ignore[method-assign]
    resources.Store.try_load_from_disk = lambda self: None  # type: ignore[method-assign]
    web.run_app(server.app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    serve(int(sys.argv[1]))
