"""Bulk NOTIFY: preview counts and grouped reasons, apply (rows, timeline, no version
bump), re-running, inputs and permissions."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select, update

from pulse_tui.domain import notifications as rules
from pulse_tui.domain.filters import OrderFilter
from pulse_tui.services.bulk import INVALID_ADDRESS, BulkKind, BulkRequest, Selection
from pulse_tui.services.customers import CustomerService
from pulse_tui.services.errors import Denied, InvalidInput
from pulse_tui.storage.db import make_engine, read_session, write_session
from pulse_tui.storage.models import Customer, Notification, Order, OrderEvent
from tests import factories

ALL = Selection(filter=OrderFilter())
ALREADY = "message already queued or sent"


def message(selection: Selection = ALL, subject: str = "Delay") -> BulkRequest:
    return BulkRequest(
        BulkKind.NOTIFY, selection, text="free_message", subject=subject, body="We are late."
    )


@pytest.fixture(scope="module")
def small_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once for the module; each test works on a copy."""
    path = tmp_path_factory.mktemp("bulk-notify") / "small.sqlite"
    factories.build_small_db(path).dispose()  # dispose checkpoints the WAL
    return path


@pytest.fixture
def small_db(small_file: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "small.sqlite"
    shutil.copyfile(small_file, path)
    engine = make_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()


@pytest.fixture
def desk(small_db):
    d = factories.desk(small_db)
    # customer 2 (4 orders) opted out; 3 (4 orders) has no address; 4 (4 orders)
    # a malformed one, as legacy data may hold (CustomerService refuses it).
    CustomerService(d.ctx).set_transactional_email(2, False)
    with write_session(small_db) as s:
        s.execute(update(Customer).where(Customer.id == 3).values(email=""))
        s.execute(update(Customer).where(Customer.id == 4).values(email="amelie@@example.fr"))
    return d


def bulk_rows(engine, template: str = "free_message") -> list[Notification]:
    with read_session(engine) as s:
        return list(
            s.execute(
                select(Notification).where(
                    Notification.template == template, Notification.kind == "bulk"
                )
            ).scalars()
        )


def versions(engine) -> dict[str, int]:
    with read_session(engine) as s:
        return dict(s.execute(select(Order.number, Order.version)).all())


def test_preview_counts_and_groups_the_reasons(desk) -> None:
    p = desk.bulk.preview(message())
    assert p.matched == 24
    assert p.skipped == {rules.OPTED_OUT: 4, rules.NO_ADDRESS: 4}
    assert p.eligible == 16  # the malformed address is found when applying


def test_apply_queues_one_email_per_order_with_a_timeline_event(desk, small_db) -> None:
    before = versions(small_db)
    r = desk.bulk.apply(message(), chunk_size=5)
    assert (r.matched, r.changed) == (24, 12)
    assert r.skipped == {rules.OPTED_OUT: 4, rules.NO_ADDRESS: 4, INVALID_ADDRESS: 4}
    rows = bulk_rows(small_db)
    assert len(rows) == 12
    assert {n.status for n in rows} == {"queued"}
    assert {n.subject for n in rows} == {"Delay"}
    assert {n.context["bulk_run"] for n in rows} == {r.run_id}
    assert {n.customer_id for n in rows} == {1, 5}
    with read_session(small_db) as s:
        events = s.execute(
            select(OrderEvent.order_id, OrderEvent.data).where(
                OrderEvent.kind == rules.EVENT_QUEUED
            )
        ).all()
    assert Counter(oid for oid, _ in events) == Counter(n.order_id for n in rows)
    assert all(data["bulk_run"] == r.run_id for _, data in events)
    assert versions(small_db) == before  # an email does not change the order


def test_running_it_again_queues_nothing_more_but_retries_failed_ones(desk, small_db) -> None:
    desk.bulk.apply(message())
    again = desk.bulk.preview(message())
    assert again.skipped[ALREADY] == 12
    assert again.eligible == 4  # the malformed addresses: skipped again when applying
    r = desk.bulk.apply(message())
    assert r.changed == 0 and r.skipped[ALREADY] == 12
    assert len(bulk_rows(small_db)) == 12
    one = bulk_rows(small_db)[0]
    with write_session(small_db) as s:
        s.execute(update(Notification).where(Notification.id == one.id).values(status="failed"))
    r = desk.bulk.apply(message())
    assert r.changed == 1 and r.changed_sample and len(bulk_rows(small_db)) == 13
    # another subject is another message
    assert desk.bulk.preview(message(subject="Delay, part 2")).eligible == 16


def test_templates_check_the_orders_state_and_what_was_sent_automatically(desk) -> None:
    req = BulkRequest(BulkKind.NOTIFY, ALL, text="shipped")
    p = desk.bulk.preview(req)
    r = desk.bulk.apply(req)
    # shipping queued the email already (the outbox hook); the others are not shipped,
    # but for PB-100004 (digital, delivered without a shipment) of customer 4, whose
    # malformed address only applying finds
    assert p.skipped == {"not shipped": 16, "shipped already queued or sent": 7}
    assert (p.eligible, r.changed) == (1, 0)
    assert r.skipped == {**p.skipped, INVALID_ADDRESS: 1}
    assert ("PB-100004", INVALID_ADDRESS) in r.skipped_sample


def test_ids_selection(desk) -> None:
    ids = desk.bulk.resolve_orders(["PB-100001", "PB-100002", "PB-100003"])  # customers 2, 1, 3
    p = desk.bulk.preview(message(Selection(ids=ids)))
    assert (p.matched, p.eligible) == (3, 1)
    assert p.skipped == {rules.OPTED_OUT: 1, rules.NO_ADDRESS: 1}


@pytest.mark.parametrize(
    ("request_", "fragment"),
    [
        (BulkRequest(BulkKind.NOTIFY, ALL, text="nope"), "unknown template 'nope'"),
        (BulkRequest(BulkKind.NOTIFY, ALL, text=" "), "name the template"),
        (BulkRequest(BulkKind.NOTIFY, ALL, text="free_message", body="x"), "subject"),
        (
            BulkRequest(BulkKind.NOTIFY, ALL, text="shipped", subject="Hi", body="x"),
            "only with the free_message template",
        ),
    ],
)
def test_bad_requests_are_refused_before_anything_is_read(desk, request_, fragment) -> None:
    with pytest.raises(InvalidInput, match=fragment):
        desk.bulk.preview(request_)


def test_only_admins_may_bulk_notify(small_db) -> None:
    agent = factories.desk(small_db, factories.AGENT)
    with pytest.raises(Denied):
        agent.bulk.preview(message())
    admin = factories.desk(small_db)
    assert BulkKind.NOTIFY in admin.bulk.allowed_kinds()
    assert agent.bulk.allowed_kinds() == []
