"""A few thousand demo orders for bulk and export tests (built once, copied per test).

The demo seeder delivers most orders; ``reopen_shipped`` puts every second
delivered physical order back to shipped (orders, shipments; the SQLite
triggers keep order_counts right) so a bulk "deliver" has ~1,300 orders to move.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from pulse_tui.domain.permissions import Role
from pulse_tui.services.context import Actor, Context
from pulse_tui.services.demo import seed
from pulse_tui.storage.db import make_engine
from tests.factories import FrozenClock

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
DEMO_ADMIN = Actor("demo", Role.ADMIN, "Demo Admin")
DEMO_AGENT = Actor("alan", Role.AGENT, "Alan Agent")
ORDERS = 3000


def reopen_shipped(engine: Engine, every: int = 2) -> int:
    with engine.begin() as c:
        ids = [
            r[0]
            for r in c.execute(
                text(
                    "SELECT id FROM orders WHERE status = 'delivered' AND has_physical "
                    "AND NOT on_hold AND payment_status = 'paid' ORDER BY id"
                )
            )
        ][::every]
        marks = ",".join(map(str, ids))
        c.execute(text(f"UPDATE orders SET status = 'shipped' WHERE id IN ({marks})"))
        c.execute(
            text(
                "UPDATE shipments SET status = 'shipped', delivered_at = NULL "
                f"WHERE order_id IN ({marks})"
            )
        )
    return len(ids)


def build(path: Path, orders: int = ORDERS) -> Path:
    engine = make_engine(f"sqlite:///{path}")
    seed(engine, orders=orders, seed=7, now=NOW)
    reopen_shipped(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def bulk_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("bulk-template") / "bulk.sqlite")


@pytest.fixture
def bulk_path(bulk_template: Path, tmp_path: Path) -> Path:
    path = tmp_path / "bulk.sqlite"
    shutil.copyfile(bulk_template, path)
    return path


@pytest.fixture
def bulk_engine(bulk_path: Path):
    engine = make_engine(f"sqlite:///{bulk_path}")
    yield engine
    engine.dispose()


def ctx(engine: Engine, actor: Actor = DEMO_ADMIN) -> Context:
    return Context(engine, actor, clock=FrozenClock(NOW))


def consistency_problems(engine: Engine) -> list[str]:
    """Maintained tables vs the orders they summarise, and every bulk-changed
    order having exactly its event and its audit entry."""
    out: list[str] = []
    with engine.connect() as c:
        q = lambda sql: c.execute(text(sql)).all()  # noqa: E731
        if q("PRAGMA integrity_check")[0][0] != "ok":
            out.append("integrity_check failed")
        counts = dict(q("SELECT key, n FROM order_counts"))
        real = dict(q("SELECT status, count(*) FROM orders GROUP BY status"))
        real["all"] = sum(real.values())
        real["on_hold"] = q("SELECT count(*) FROM orders WHERE on_hold")[0][0]
        for k, n in real.items():
            if counts.get(k, 0) != n:
                out.append(f"order_counts[{k}] = {counts.get(k)}, orders say {n}")
        days = q(
            "SELECT d.day, d.currency, d.orders, d.revenue, r.n, r.rev FROM order_day_totals d "
            "LEFT JOIN (SELECT date(placed_at) AS day, currency, count(*) AS n, sum(total) AS rev "
            "FROM orders WHERE status != 'cancelled' GROUP BY 1, 2) r "
            "ON r.day = d.day AND r.currency = d.currency "
            "WHERE d.orders != coalesce(r.n, 0) OR d.revenue != coalesce(r.rev, 0)"
        )
        if days:
            out.append(f"order_day_totals off: {days[:3]}")
        events = {
            r[0]
            for r in q(
                "SELECT o.number FROM order_events e JOIN orders o ON o.id = e.order_id "
                "WHERE json_extract(e.data, '$.bulk_run') IS NOT NULL"
            )
        }
        audits = {
            r[0]
            for r in q(
                "SELECT entity_id FROM audit_log WHERE entity = 'order' "
                "AND json_extract(after, '$.bulk_run') IS NOT NULL"
            )
        }
        if events != audits:
            out.append(f"events without audit / audit without event: {sorted(events ^ audits)[:5]}")
    return out
