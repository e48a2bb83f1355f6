"""Reading the CLI's database independently of the CLI (to compare against)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select
from typer.testing import Result

from pulse_tui.domain.money import exponent
from pulse_tui.storage.db import make_engine, read_session
from pulse_tui.storage.models import Customer, Order, OrderLine, OrderTag


@dataclass
class Snap:
    number: str
    id: int
    status: str
    payment_status: str
    fulfillment_status: str
    placed_at: datetime
    customer_id: int
    customer_name: str
    customer_email: str
    country: str
    total: int
    currency: str
    on_hold: bool
    version: int
    skus: set[str] = field(default_factory=set)
    tags: set[str] = field(default_factory=set)

    @property
    def major_total(self) -> Decimal:
        return Decimal(self.total).scaleb(-exponent(self.currency))


def all_orders(url: str) -> list[Snap]:
    engine = make_engine(url)
    try:
        with read_session(engine) as s:
            out = {}
            for o, c in s.execute(select(Order, Customer).join(Customer)).all():
                placed = o.placed_at if o.placed_at.tzinfo else o.placed_at.replace(tzinfo=UTC)
                out[o.id] = Snap(
                    o.number,
                    o.id,
                    o.status,
                    o.payment_status,
                    o.fulfillment_status,
                    placed,
                    o.customer_id,
                    c.name,
                    c.email,
                    o.country,
                    o.total,
                    o.currency,
                    o.on_hold,
                    o.version,
                )
            for oid, sku in s.execute(select(OrderLine.order_id, OrderLine.sku)):
                out[oid].skus.add(sku)
            for oid, tag in s.execute(select(OrderTag.order_id, OrderTag.tag)):
                out[oid].tags.add(tag)
            return sorted(out.values(), key=lambda o: o.id)
    finally:
        engine.dispose()


def order(url: str, number: str) -> Snap:
    return next(o for o in all_orders(url) if o.number == number)


def ok_json(result: Result):  # type: ignore[no-untyped-def]
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    return json.loads(result.stdout)


def assert_clean_failure(result: Result, code: int, *fragments: str) -> None:
    """Exit ``code``, one readable `error:` line on stderr, nothing on stdout, no traceback."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.stderr
    err = result.stderr.strip()
    assert err.startswith("error: "), err
    assert len(err.splitlines()) == 1, err
    for frag in fragments:
        assert frag.lower() in err.lower(), (frag, err)
    assert result.stdout == ""
