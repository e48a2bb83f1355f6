"""Bulk actions: preview, apply in chunks, cancel, re-run, crash, permissions."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from pulse_tui.domain.filters import OrderFilter, parse_query
from pulse_tui.services.bulk import (
    NO_TRACKING,
    BulkKind,
    BulkRequest,
    BulkService,
    Progress,
    Selection,
    read_tracking_csv,
)
from pulse_tui.services.context import Context
from pulse_tui.services.errors import Denied, InvalidInput, NotFound, RuleViolation
from pulse_tui.services.orders import OrderService
from tests import bulk_db, factories
from tests.bulk_db import DEMO_AGENT, NOW, consistency_problems, ctx

bulk_template = bulk_db.bulk_template  # fixtures
bulk_path = bulk_db.bulk_path
bulk_engine = bulk_db.bulk_engine

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = Selection(parse_query("status:shipped", NOW))
DELIVER = BulkRequest(BulkKind.TRANSITION, SHIPPED, target="delivered")


def rows(engine: Engine, sql: str, **params: object) -> list[tuple]:
    with engine.connect() as c:
        return [tuple(r) for r in c.execute(text(sql), params)]


def one(engine: Engine, sql: str, **params: object) -> object:
    return rows(engine, sql, **params)[0][0]


def snapshot(engine: Engine) -> list[tuple]:
    return rows(engine, "SELECT id, status, version, on_hold FROM orders ORDER BY id")


# -- preview -------------------------------------------------------------------


def test_preview_counts_and_groups_reasons_from_the_domain(small_db: Engine) -> None:
    svc = BulkService(factories.desk(small_db).ctx)
    req = BulkRequest(BulkKind.TRANSITION, Selection(OrderFilter()), target="delivered")
    before = snapshot(small_db)
    p = svc.preview(req)
    assert (p.matched, p.eligible) == (24, 4)
    assert p.skipped == {
        "order is already delivered": 4,
        "a cancelled order cannot change status": 4,
        "cannot go from pending to delivered": 4,
        "order has physical goods: ship it first": 4,
        "order is on hold: release it first": 4,
    }
    assert snapshot(small_db) == before  # a preview changes nothing


def test_preview_matches_what_apply_does(bulk_engine: Engine) -> None:
    svc = BulkService(ctx(bulk_engine))
    p = svc.preview(DELIVER)
    assert p.eligible > 1000
    r = svc.apply(DELIVER, chunk_size=300)
    assert (r.matched, r.changed, r.skipped) == (p.matched, p.eligible, p.skipped)


def test_preview_of_a_tag_and_a_note_counts_orders_that_already_have_them(
    small_db: Engine,
) -> None:
    svc = BulkService(factories.desk(small_db).ctx)
    everything = Selection(OrderFilter())
    assert svc.preview(BulkRequest(BulkKind.TAG, everything, text="VIP")).skipped == {
        "tags already as asked: already tagged vip": 4
    }
    removal = svc.preview(BulkRequest(BulkKind.TAG, everything, text="vip", remove=True))
    assert (removal.eligible, sum(removal.skipped.values())) == (4, 20)
    note = BulkRequest(BulkKind.NOTE, Selection(ids=(1, 2, 3)), text="Called the carrier")
    svc.apply(note)
    assert svc.preview(note).skipped == {"already has this note": 3}


# -- apply ---------------------------------------------------------------------


def test_apply_changes_each_order_with_its_event_audit_and_one_run_entry(
    bulk_engine: Engine,
) -> None:
    svc = BulkService(ctx(bulk_engine))
    seen: list[Progress] = []
    n = svc.preview(DELIVER).eligible
    r = svc.apply(DELIVER, chunk_size=500, on_progress=seen.append)
    assert r.changed == n and not r.cancelled
    assert [p.done for p in seen] == sorted({p.done for p in seen})  # grows per chunk
    assert len(seen) == -(-r.matched // 500) and seen[-1].changed == n
    assert one(bulk_engine, "SELECT count(*) FROM orders WHERE status = 'shipped'") == r.matched - n
    delivered_events = one(
        bulk_engine,
        "SELECT count(*) FROM order_events WHERE kind = 'delivered' "
        "AND json_extract(data, '$.bulk_run') = :run",
        run=r.run_id,
    )
    audits = one(
        bulk_engine,
        "SELECT count(*) FROM audit_log WHERE action = 'order.deliver' "
        "AND json_extract(after, '$.bulk_run') = :run",
        run=r.run_id,
    )
    assert delivered_events == audits == n
    ((action, before, after),) = rows(
        bulk_engine,
        "SELECT action, before, after FROM audit_log WHERE entity = 'bulk_run' AND entity_id = :r",
        r=r.run_id,
    )
    assert action == "bulk.transition"
    assert '"target": "delivered"' in before and f'"changed": {n}' in after
    assert r.changed_sample[:1] and len(r.changed_sample) <= 200
    assert consistency_problems(bulk_engine) == []
    # the shipments and lines of a delivered order follow, as for one order
    num = r.changed_sample[0]
    assert rows(
        bulk_engine,
        "SELECT DISTINCT s.status FROM shipments s JOIN orders o ON o.id = s.order_id "
        "WHERE o.number = :n",
        n=num,
    ) == [("delivered",)]


def test_cancel_midway_leaves_whole_chunks_changed_and_the_rest_untouched(
    bulk_engine: Engine,
) -> None:
    svc = BulkService(ctx(bulk_engine))
    before = dict((r[0], r[1:]) for r in snapshot(bulk_engine))
    progress: list[Progress] = []
    r = svc.apply(
        DELIVER, chunk_size=100, on_progress=progress.append, should_cancel=lambda: bool(progress)
    )
    assert r.cancelled and len(progress) == 1
    after = dict((r_[0], r_[1:]) for r_ in snapshot(bulk_engine))
    changed = sorted(i for i in after if after[i] != before[i])
    first_chunk = sorted(i for i in before if before[i][0] == "shipped")[:100]
    assert changed == first_chunk and r.changed == 100
    assert all(after[i] == ("delivered", before[i][1] + 1, before[i][2]) for i in changed)
    assert consistency_problems(bulk_engine) == []
    # the run still says what it did
    assert one(bulk_engine, "SELECT after FROM audit_log WHERE entity_id = :r", r=r.run_id) == (
        f'{{"matched": {r.matched}, "changed": 100, "skipped": {{}}, "cancelled": true}}'
    )


def test_running_the_same_request_again_changes_nothing_more(bulk_engine: Engine) -> None:
    svc = BulkService(ctx(bulk_engine))
    first = svc.apply(DELIVER)
    state = snapshot(bulk_engine)
    events = one(bulk_engine, "SELECT count(*) FROM order_events")
    again = svc.apply(DELIVER)
    assert (again.changed, again.skipped) == (0, first.skipped)
    by_ids = Selection(ids=tuple(int(n.removeprefix("PB-")) - 100000 for n in first.changed_sample))
    again = svc.apply(BulkRequest(BulkKind.TRANSITION, by_ids, target="delivered"))
    assert (again.changed, again.skipped) == (0, {"order is already delivered": 200})
    assert snapshot(bulk_engine) == state
    assert one(bulk_engine, "SELECT count(*) FROM order_events") == events


@pytest.mark.parametrize(
    "request_",
    [
        BulkRequest(BulkKind.TAG, Selection(OrderFilter()), text="Black-Friday"),
        BulkRequest(BulkKind.NOTE, Selection(OrderFilter()), text="Checked by the lead"),
        BulkRequest(BulkKind.HOLD, Selection(OrderFilter()), reason="carrier strike"),
        BulkRequest(BulkKind.CANCEL, Selection(OrderFilter()), reason="fraud"),
    ],
    ids=lambda r: r.kind.value,
)
def test_every_kind_is_a_no_op_the_second_time(small_db: Engine, request_: BulkRequest) -> None:
    svc = BulkService(factories.desk(small_db).ctx)
    first = svc.apply(request_, chunk_size=7)
    assert first.changed > 0
    state = snapshot(small_db)
    second = svc.apply(request_, chunk_size=7)
    assert second.changed == 0 and sum(second.skipped.values()) == 24
    assert snapshot(small_db) == state


def test_bulk_cancel_requests_the_refund_of_paid_orders(small_db: Engine) -> None:
    svc = BulkService(factories.desk(small_db).ctx)
    refunds = one(small_db, "SELECT count(*) FROM refunds")
    r = svc.apply(BulkRequest(BulkKind.CANCEL, Selection(OrderFilter()), reason="fraud"))
    paid_cancelled = one(
        small_db,
        "SELECT count(*) FROM orders WHERE status = 'cancelled' AND cancel_reason = 'fraud' "
        "AND paid > 0",
    )
    assert r.changed == 12 and paid_cancelled > 0
    assert one(small_db, "SELECT count(*) FROM refunds") - refunds == paid_cancelled
    assert consistency_problems(small_db) == []


def test_bulk_ship_takes_tracking_numbers_from_the_csv(small_db: Engine) -> None:
    svc = BulkService(factories.desk(small_db).ctx)
    processing = [  # shippable ones first; the held ones are skipped for that
        r[0]
        for r in rows(
            small_db,
            "SELECT number FROM orders WHERE status = 'processing' "
            "ORDER BY on_hold OR NOT has_physical, id",
        )
    ]
    tracking = read_tracking_csv(
        "order,tracking\n" + "".join(f"{n},1Z{i:08d}\n" for i, n in enumerate(processing[1:]))
    )
    req = BulkRequest(
        BulkKind.SHIP,
        Selection(parse_query("status:processing", NOW)),
        carrier="UPS",
        tracking=tracking,
    )
    p = svc.preview(req)
    assert p.skipped.get(NO_TRACKING) == 1
    r = svc.apply(req)
    assert (r.changed, r.skipped) == (p.eligible, p.skipped)
    assert (processing[0], NO_TRACKING) in r.skipped_sample
    got = dict(
        rows(
            small_db,
            "SELECT o.number, s.tracking_number FROM shipments s JOIN orders o "
            "ON o.id = s.order_id WHERE s.carrier = 'UPS'",
        )
    )
    assert got == {n: tracking[n] for n in r.changed_sample}


def test_read_tracking_csv_names_the_bad_line() -> None:
    assert read_tracking_csv("PB-100001, 1Z 999\n\n100002,AB1\n") == {
        "PB-100001": "1Z999",
        "PB-100002": "AB1",
    }
    with pytest.raises(InvalidInput, match="line 2: not an order number"):
        read_tracking_csv("PB-100001,1Z1\nnope,1Z2\n")
    with pytest.raises(InvalidInput, match="line 1: expected order,tracking"):
        read_tracking_csv("PB-100001\n")
    with pytest.raises(InvalidInput, match="two tracking numbers"):
        read_tracking_csv("PB-100001,A\nPB-100001,B\n")
    with pytest.raises(InvalidInput, match="no order,tracking rows"):
        read_tracking_csv("order,tracking\n")


# -- state changes between preview and apply --------------------------------------


def test_an_order_changed_after_the_preview_is_checked_again(small_db: Engine) -> None:
    d = factories.desk(small_db)
    svc = BulkService(d.ctx)
    req = BulkRequest(BulkKind.TRANSITION, Selection(OrderFilter()), target="delivered")
    assert svc.preview(req).eligible == 4
    victim = one(
        small_db,
        "SELECT number FROM orders WHERE status = 'shipped' AND NOT on_hold ORDER BY id LIMIT 1",
    )
    held = d.orders.hold(str(victim), reason="customer called")
    r = svc.apply(req)
    assert r.changed == 3
    assert (victim, "order is on hold: release it first") in r.skipped_sample
    assert one(small_db, "SELECT version FROM orders WHERE number = :n", n=victim) == held.version


def test_the_single_order_path_still_refuses_with_the_order_number(small_db: Engine) -> None:
    d = factories.desk(small_db)
    with pytest.raises(RuleViolation, match=r"^PB-\d+: order is already delivered$"):
        number = one(small_db, "SELECT number FROM orders WHERE status = 'delivered' LIMIT 1")
        OrderService(d.ctx).deliver(str(number))


# -- permissions and input -----------------------------------------------------------


def test_an_agent_is_denied_before_anything_is_read(tmp_path: Path) -> None:
    broken = create_engine(f"sqlite:///{tmp_path}/no/such/dir/x.sqlite")
    svc = BulkService(Context(broken, DEMO_AGENT))
    assert svc.allowed_kinds() == []
    for call in (
        lambda: svc.preview(DELIVER),
        lambda: svc.apply(DELIVER),
        svc.require,
    ):
        with pytest.raises(Denied):
            call()


def test_bad_requests_change_nothing(small_db: Engine) -> None:
    svc = BulkService(factories.desk(small_db).ctx)
    everything = Selection(OrderFilter())
    before = snapshot(small_db)
    bad = [
        (BulkRequest(BulkKind.TRANSITION, everything, target="shipped"), InvalidInput, "use ship"),
        (BulkRequest(BulkKind.TRANSITION, everything, target="nope"), InvalidInput, "unknown"),
        (BulkRequest(BulkKind.TRANSITION, everything), InvalidInput, "name the status"),
        (BulkRequest(BulkKind.TRANSITION, everything, target="pending"), RuleViolation, "never"),
        (BulkRequest(BulkKind.CANCEL, everything, reason="bored"), InvalidInput, "cancel reason"),
        (BulkRequest(BulkKind.HOLD, everything), InvalidInput, "reason"),
        (BulkRequest(BulkKind.TAG, everything, text="  "), InvalidInput, "tag"),
        (BulkRequest(BulkKind.SHIP, everything, carrier="UPS"), InvalidInput, "tracking"),
        (
            BulkRequest(BulkKind.SHIP, everything, carrier="UPS", tracking={"x": "1"}),
            InvalidInput,
            "order number",
        ),
        (
            BulkRequest(BulkKind.NOTE, everything, text="card 4242424242424242"),
            InvalidInput,
            "card",
        ),
    ]
    for req, exc, match in bad:
        with pytest.raises(exc, match=match):
            svc.preview(req)
        with pytest.raises(exc, match=match):
            svc.apply(req)
    assert snapshot(small_db) == before
    assert one(small_db, "SELECT count(*) FROM audit_log WHERE entity = 'bulk_run'") == 0


def test_resolve_orders_takes_numbers_and_ids(small_db: Engine) -> None:
    svc = BulkService(factories.desk(small_db).ctx)
    assert svc.resolve_orders(["PB-100003", "100001", "#2", " ", "#2"]) == (1, 2, 3)
    with pytest.raises(NotFound, match=r"no order PB-999999 \(and 1 more\)"):
        svc.resolve_orders(["PB-999999", "#999", "PB-100001"])
    with pytest.raises(InvalidInput):
        svc.resolve_orders(["hello"])


# -- a crash mid-run --------------------------------------------------------------------

CHILD = """
import sys
from pulse_tui.services.bulk import BulkService
from pulse_tui.storage.db import make_engine
from tests.bulk_db import ctx
from tests.services.test_bulk import DELIVER

engine = make_engine(sys.argv[1])
BulkService(ctx(engine)).apply(
    DELIVER, chunk_size=40, on_progress=lambda p: print(p.done, flush=True)
)
print("finished", flush=True)
"""


def test_a_process_killed_mid_run_leaves_a_consistent_database(
    bulk_engine: Engine, bulk_path: Path
) -> None:
    shipped = {
        r[0]: r[1]
        for r in rows(bulk_engine, "SELECT id, version FROM orders WHERE status = 'shipped'")
    }
    bulk_engine.dispose()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, f"sqlite:///{bulk_path}"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert child.stdout is not None
    for _ in range(3):  # let it commit a few chunks, then kill it inside the next
        line = child.stdout.readline()
        assert line and line != "finished\n"
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert consistency_problems(bulk_engine) == []
    now = dict(
        rows(
            bulk_engine,
            f"SELECT id, version FROM orders WHERE id IN ({','.join(map(str, shipped))})",
        )
    )
    delivered = sorted(i for i in shipped if now[i] == shipped[i] + 1)
    untouched = sorted(i for i in shipped if now[i] == shipped[i])
    assert len(delivered) + len(untouched) == len(shipped)
    assert len(delivered) >= 3 * 40 and len(delivered) % 40 == 0  # whole chunks only
    assert delivered == sorted(shipped)[: len(delivered)]
    # and a second run finishes the job
    r = BulkService(ctx(bulk_engine)).apply(DELIVER)
    assert r.changed == len(untouched)
    assert consistency_problems(bulk_engine) == []


def test_batch_writes_store_times_as_the_orm_does(small_db: Engine) -> None:
    """Events written by the batch path (executemany) and by the ORM store
    their times in one text format, so SQL ordering and comparisons agree."""
    import re

    from sqlalchemy import text

    d = factories.desk(small_db)
    d.orders.add_note("PB-100001", "batch-written")
    with small_db.connect() as conn:
        rows = conn.execute(
            text("SELECT kind, at FROM order_events WHERE order_id = 1 ORDER BY id")
        ).all()
    kinds = {k for k, _ in rows}
    assert {"placed", "note"} <= kinds
    stamp = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}$")
    assert all(stamp.match(str(at)) for _, at in rows), rows


def test_a_batch_whose_order_moved_on_since_it_was_read_conflicts_and_writes_nothing(
    small_db: Engine,
) -> None:
    """The batch UPDATE is guarded on each order's version: one stale order in
    a chunk makes the whole chunk's transaction fail, with nothing written."""
    from pulse_tui.services.errors import Conflict
    from pulse_tui.services.orders import load_targets
    from pulse_tui.storage.db import write_session

    d = factories.desk(small_db)
    ids = [r[0] for r in rows(small_db, "SELECT id FROM orders WHERE status = 'shipped'")]
    assert len(ids) >= 2
    events = one(small_db, "SELECT count(*) FROM order_events")
    audits = one(small_db, "SELECT count(*) FROM audit_log")
    stale = pytest.raises(Conflict, match="1 of these orders were changed by someone else")
    with stale, write_session(small_db) as s:
        targets = load_targets(s, ids)
        # another writer (same transaction here, for determinism) bumps one version
        s.connection().execute(
            text("UPDATE orders SET version = version + 1 WHERE id = :i"), {"i": ids[-1]}
        )
        d.orders.deliver_in(s, targets)
    assert rows(
        small_db,
        "SELECT count(*) FROM orders WHERE status = 'delivered' AND id IN "
        f"({','.join(map(str, ids))})",
    ) == [(0,)]
    assert one(small_db, "SELECT count(*) FROM order_events") == events
    assert one(small_db, "SELECT count(*) FROM audit_log") == audits


def test_batch_documents_are_the_json_text_the_orm_writes(small_db: Engine) -> None:
    """Audit before/after and event data written by the batch path read back
    equal to what went in, as the same text json.dumps gives."""
    import json

    d = factories.desk(small_db)
    [(number,)] = rows(
        small_db, "SELECT number FROM orders WHERE NOT on_hold AND status = 'pending' LIMIT 1"
    )
    d.orders.hold(number, reason="Fraud check — ünïcode")
    [(before, after)] = rows(
        small_db,
        "SELECT before, after FROM audit_log WHERE action = 'order.hold' ORDER BY id DESC LIMIT 1",
    )
    assert json.loads(after)["hold_reason"] == "Fraud check — ünïcode"
    assert after == json.dumps(json.loads(after)) and before == json.dumps(json.loads(before))
    assert json.loads(before)["on_hold"] is False and json.loads(after)["on_hold"] is True
