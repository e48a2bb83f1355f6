"""Deterministic test data built through the services (so it obeys every rule).

``FrozenClock`` starts at 2026-11-26 12:00 UTC and moves one minute per call,
so timelines are ordered and identical on every run.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine

from pulse_tui.domain.permissions import Role
from pulse_tui.services.context import Actor
from pulse_tui.services.desk import Desk
from pulse_tui.services.orders import AddressInput, LineRequest
from pulse_tui.storage.db import ensure_schema, make_engine, write_session
from pulse_tui.storage.models import Address, Customer, Operator, Product

START = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


class FrozenClock:
    def __init__(self, start: datetime = START, step: timedelta = timedelta(minutes=1)) -> None:
        self.t = start
        self.step = step

    def __call__(self) -> datetime:
        now = self.t
        self.t += self.step
        return now


ADMIN = Actor("ada", Role.ADMIN, "Ada Admin")
AGENT = Actor("alan", Role.AGENT, "Alan Agent")
WAREHOUSE = Actor("wes", Role.WAREHOUSE, "Wes Warehouse")
VIEWER = Actor("vic", Role.VIEWER, "Vic Viewer")
ACTORS = {a.role: a for a in (ADMIN, AGENT, WAREHOUSE, VIEWER)}

CUSTOMERS = [
    ("Grace Hopper", "grace@example.com", "US", "New York", "en_US"),
    ("Jürgen Müller", "juergen.mueller@example.de", "DE", "Berlin", "de_DE"),
    ("Yuki Tanaka", "yuki@example.jp", "JP", "Tokyo", "ja_JP"),
    ("Amélie Dubois", "amelie@example.fr", "FR", "Paris", "fr_FR"),
    ("Omar Haddad", "omar@example.kw", "KW", "Kuwait City", "ar_KW"),
]

PRODUCTS = [
    # sku, name, kind, price (minor units), currency, tax bp, stock
    ("MUG-BLUE", "Blue mug", "physical", 1250, "EUR", 1900, 500),
    ("TEE-M", "T-shirt M", "physical", 2500, "EUR", 1900, 500),
    ("EBOOK-PY", "Python ebook", "digital", 1999, "EUR", 700, 0),
    ("CAP-RED", "Red cap", "physical", 1800, "USD", 0, 500),
    ("KEY-PRO", "Pro license", "digital", 4900, "USD", 0, 0),
    ("TEA-SET", "Tea set", "physical", 4800, "JPY", 1000, 500),
    ("DATES-1KG", "Dates 1 kg", "physical", 4500, "KWD", 0, 500),
]


def new_engine(path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{path}")
    ensure_schema(engine)
    return engine


def add_operators(engine: Engine) -> None:
    with write_session(engine) as s:
        for a in ACTORS.values():
            s.add(Operator(username=a.username, display_name=a.display_name, role=a.role.value))


def add_catalog(engine: Engine) -> None:
    with write_session(engine) as s:
        for name, email, country, city, locale in CUSTOMERS:
            c = Customer(name=name, email=email, locale=locale, phone="+1 555 0100")
            s.add(c)
            s.flush()
            assert c.id is not None
            for kind in ("billing", "shipping"):
                s.add(
                    Address(
                        customer_id=c.id,
                        kind=kind,
                        name=name,
                        line1="1 Main Street",
                        city=city,
                        postal_code="10001",
                        country=country,
                    )
                )
        for sku, name, kind, price, cur, tax, stock in PRODUCTS:
            s.add(
                Product(
                    sku=sku,
                    name=name,
                    kind=kind,
                    unit_price=price,
                    currency=cur,
                    tax_rate_bp=tax,
                    stock_on_hand=stock,
                )
            )


def desk(engine: Engine, actor: Actor = ADMIN, clock: FrozenClock | None = None) -> Desk:
    return Desk(engine, actor, clock=clock or FrozenClock())


def place(
    d: Desk,
    customer_id: int = 1,
    lines=(("MUG-BLUE", 2),),
    currency: str = "EUR",
    country: str = "DE",
    shipping: int = 495,
):
    return d.orders.place(
        customer_id=customer_id,
        lines=[LineRequest(s, q) for s, q in lines],
        currency=currency,
        shipping_address=AddressInput(
            name="Test", line1="1 Main Street", city="Berlin", country=country
        ),
        shipping=shipping,
    )


def build_small_db(path: Path, clock: FrozenClock | None = None) -> Engine:
    """About 24 orders in every status, with payments, shipments, holds, notes, tags."""
    engine = new_engine(path)
    add_operators(engine)
    add_catalog(engine)
    d = desk(engine, ADMIN, clock or FrozenClock(START - timedelta(days=32), timedelta(hours=3)))
    plans = [
        (2, (("MUG-BLUE", 2), ("TEE-M", 1)), "EUR", "DE"),
        (1, (("CAP-RED", 1),), "USD", "US"),
        (3, (("TEA-SET", 3),), "JPY", "JP"),
        (4, (("EBOOK-PY", 1),), "EUR", "FR"),
        (5, (("DATES-1KG", 2),), "KWD", "KW"),
        (1, (("KEY-PRO", 1), ("CAP-RED", 2)), "USD", "US"),
    ]
    n = 0
    for rnd in range(4):
        for cust, lines, cur, country in plans:
            n += 1
            o = place(d, cust, lines, cur, country, shipping=0 if cur == "JPY" else 495)
            if n % 5 == 0:
                d.orders.add_note(o.number, "Customer asked for gift wrap")
                d.orders.tag(o.number, ["vip"])
            step = (n + rnd) % 6
            if step == 0:
                continue  # pending, unpaid
            if step == 5:
                d.orders.cancel(o.number, reason="customer_request", note="changed their mind")
                continue
            d.orders.confirm_payment(
                o.number,
                gateway="stripe",
                method="card",
                reference=f"pi_{n:04d}",
                card_brand="visa",
                card_last4="4242",
            )
            if step == 1:
                d.orders.hold(o.number, reason="address check")
                continue
            if step >= 3:
                if o.has_physical:
                    d.orders.ship(o.number, carrier="DHL", tracking=f"JD{n:010d}")
                if step == 4 or not o.has_physical:
                    d.orders.deliver(o.number)
    return engine
