"""Two writers on the same order: one wins, the other gets Conflict — never a lost update."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import Engine, func, select

from pulse_tui.services.errors import Conflict
from pulse_tui.storage.db import read_session
from pulse_tui.storage.models import AuditEntry, OrderEvent
from tests import factories
from tests.factories import ADMIN, AGENT, place
from tests.services.test_orders import get_order


def _run_two(work: Any) -> list[Any]:
    barrier = threading.Barrier(2)
    results: list[Any] = [None, None]

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def _counts(engine: Engine, order_id: int) -> tuple[int, int]:
    with read_session(engine) as s:
        ev = s.execute(
            select(func.count()).select_from(OrderEvent).where(OrderEvent.order_id == order_id)
        ).scalar_one()
        au = s.execute(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.entity == "order")
        ).scalar_one()
    return ev, au


def test_same_version_one_wins_other_conflicts(engine: Engine) -> None:
    desks = [factories.desk(engine, ADMIN), factories.desk(engine, AGENT)]
    o = place(desks[0])
    assert o.id is not None
    for _round in range(5):
        seen = get_order(engine, o.number).version
        ev0, au0 = _counts(engine, o.id)
        results = _run_two(
            lambda i, v=seen: desks[i].orders.add_note(o.number, f"from {i}", expected_version=v)
        )
        wins = [r for r in results if not isinstance(r, Exception)]
        losses = [r for r in results if isinstance(r, Exception)]
        assert len(wins) == 1, results
        assert len(losses) == 1 and isinstance(losses[0], Conflict), results
        assert get_order(engine, o.number).version == seen + 1
        assert _counts(engine, o.id) == (ev0 + 1, au0 + 1)


def test_unversioned_writers_serialize_without_lost_updates(engine: Engine) -> None:
    desks = [factories.desk(engine, ADMIN), factories.desk(engine, AGENT)]
    o = place(desks[0])
    assert o.id is not None
    per_thread = 10

    def work(i: int) -> int:
        ok = 0
        for k in range(per_thread):
            try:
                desks[i].orders.add_note(o.number, f"t{i} n{k}")
                ok += 1
            except Conflict:
                pass
        return ok

    results = _run_two(work)
    assert all(isinstance(r, int) for r in results), results
    successes = sum(results)
    assert successes == 2 * per_thread  # no expected version: each write queues, none is lost
    assert get_order(engine, o.number).version == 1 + successes
    ev, _ = _counts(engine, o.id)
    assert ev == 1 + successes  # "placed" + one note per successful write


def test_racing_tags_never_lose_an_update(engine: Engine) -> None:
    desks = [factories.desk(engine, ADMIN), factories.desk(engine, AGENT)]
    o = place(desks[0])

    def work(i: int) -> int:
        ok = 0
        for k in range(8):
            v = get_order(engine, o.number).version
            try:
                desks[i].orders.tag(o.number, [f"t{i}-{k}"], expected_version=v)
                ok += 1
            except Conflict:
                pass
        return ok

    results = _run_two(work)
    assert all(isinstance(r, int) for r in results), results
    successes = sum(results)
    assert successes >= 8
    assert get_order(engine, o.number).version == 1 + successes
    d = desks[0].orders.detail(o.number)
    assert len(d.tags) == successes


def test_concurrent_places_get_distinct_numbers_and_reserve_all_stock(engine: Engine) -> None:
    desks = [factories.desk(engine, ADMIN), factories.desk(engine, AGENT)]

    def work(i: int) -> list[str]:
        return [place(desks[i], lines=(("MUG-BLUE", 2),)).number for _ in range(5)]

    results = _run_two(work)
    assert all(isinstance(r, list) for r in results), results
    numbers = results[0] + results[1]
    assert len(set(numbers)) == 10
    assert sorted(numbers) == [f"PB-{100001 + k}" for k in range(10)]
    from tests.services.test_orders import product

    assert product(engine, "MUG-BLUE").stock_reserved == 20
