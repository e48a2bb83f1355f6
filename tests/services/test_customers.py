"""CustomerService: validated, normalised addresses; email preference with audit; permissions."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from pulse_tui.services.customers import CustomerService, normalize_email
from pulse_tui.services.errors import Conflict, Denied, InvalidInput, NotFound
from pulse_tui.services.orders import AddressInput
from pulse_tui.storage.db import read_session
from pulse_tui.storage.models import Address, AuditEntry, Customer
from tests import factories


def svc(engine, actor=factories.ADMIN) -> CustomerService:
    return CustomerService(factories.desk(engine, actor).ctx)


def count(engine, model) -> int:
    with read_session(engine) as s:
        return int(s.execute(select(func.count()).select_from(model)).scalar_one())


def audits(engine, action: str) -> list[AuditEntry]:
    with read_session(engine) as s:
        return list(
            s.execute(select(AuditEntry).where(AuditEntry.action == action)).scalars().all()
        )


def test_create_stores_the_normalised_address_and_audits(engine) -> None:
    c = svc(engine, factories.AGENT).create(
        "  Ada Lovelace ", " Ada@EXAMPLE.Org ", phone="+44 20 0000", locale="en-GB"
    )
    assert (c.name, c.email, c.locale, c.transactional_email) == (
        "Ada Lovelace",
        "Ada@example.org",
        "en_GB",
        True,
    )
    with read_session(engine) as s:
        row = s.get(Customer, c.id)
        assert row is not None and row.email == "Ada@example.org"
        assert row.no_transactional_email is False
    (entry,) = audits(engine, "customer.create")
    assert entry.actor == "alan" and entry.entity_id == str(c.id)
    assert entry.after is not None and entry.after["email"] == "Ada@example.org"


def test_create_can_mark_no_transactional_email_and_add_addresses(engine) -> None:
    addr = AddressInput(name="Ada", line1="1 Street", city="London", country="gb")
    c = svc(engine).create(
        "Ada", "ada@example.org", transactional_email=False, shipping_address=addr
    )
    assert c.transactional_email is False
    with read_session(engine) as s:
        (a,) = s.execute(select(Address).where(Address.customer_id == c.id)).scalars()
        assert (a.kind, a.country, a.city) == ("shipping", "GB", "London")


@pytest.mark.parametrize(
    ("email", "reason"),
    [
        ("not-an-address", "must have an @-sign"),
        ("a@b", "should have a period"),
        ("x@y..z", "two periods in a row"),
        ("", "an email address is required"),
    ],
)
def test_bad_email_is_refused_with_the_validators_reason_and_writes_nothing(
    engine, email: str, reason: str
) -> None:
    before = count(engine, Customer), count(engine, AuditEntry)
    with pytest.raises(InvalidInput) as exc:
        svc(engine).create("Someone", email)
    assert reason in exc.value.message
    assert (count(engine, Customer), count(engine, AuditEntry)) == before


def test_duplicate_address_in_any_case_is_a_conflict(engine) -> None:
    with pytest.raises(Conflict, match="already has the address"):
        svc(engine).create("Grace Again", "GRACE@example.com")


def test_bad_locale_name_and_card_number_are_refused(engine) -> None:
    s = svc(engine)
    with pytest.raises(InvalidInput, match="unknown locale"):
        s.create("X", "x@example.org", locale="xx_QQ_nonsense")
    with pytest.raises(InvalidInput, match="needs a name"):
        s.create("  ", "x@example.org")
    with pytest.raises(InvalidInput, match="card number"):
        s.create("X", "x@example.org", company="4111 1111 1111 1111")
    with pytest.raises(InvalidInput, match="unknown country"):
        s.create(
            "X",
            "x@example.org",
            billing_address=AddressInput(name="X", line1="1", city="Y", country="QQ"),
        )
    assert count(engine, Customer) == len(factories.CUSTOMERS)


@pytest.mark.parametrize("actor", [factories.VIEWER, factories.WAREHOUSE])
def test_only_agents_and_admins_create_or_change_preferences(engine, actor) -> None:
    s = svc(engine, actor)
    with pytest.raises(Denied):
        s.create("X", "x@example.org")
    with pytest.raises(Denied):
        s.set_transactional_email(1, False)
    assert s.get(1).name == "Grace Hopper"  # reading is fine
    assert count(engine, Customer) == len(factories.CUSTOMERS)


def test_set_transactional_email_audits_a_change_and_only_a_change(engine) -> None:
    s = svc(engine, factories.AGENT)
    assert s.set_transactional_email(2, False).transactional_email is False
    assert s.set_transactional_email(2, False).transactional_email is False  # no-op
    (entry,) = audits(engine, "customer.transactional_email")
    assert entry.before == {"no_transactional_email": False}
    assert entry.after == {"no_transactional_email": True}
    assert s.set_transactional_email(2, True).transactional_email is True
    assert len(audits(engine, "customer.transactional_email")) == 2
    with pytest.raises(NotFound, match="no customer #999"):
        s.set_transactional_email(999, True)


def test_list_searches_name_email_and_id_and_pages(engine) -> None:
    s = svc(engine, factories.VIEWER)
    rows, more = s.list()
    assert [r.id for r in rows] == [1, 2, 3, 4, 5] and not more
    assert [r.name for r in s.list("müller")[0]] == ["Jürgen Müller"]
    assert [r.name for r in s.list("EXAMPLE.JP")[0]] == ["Yuki Tanaka"]
    assert [r.id for r in s.list("#4")[0]] == [4]
    assert s.list("nobody-like-this")[0] == []
    page, more = s.list(limit=2)
    assert [r.id for r in page] == [1, 2] and more
    assert [r.id for r in s.list(limit=2, after_id=2)[0]] == [3, 4]


def test_order_counts(small_db) -> None:
    rows, _ = svc(small_db).list()
    assert sum(r.orders for r in rows) == 24
    assert svc(small_db).get(1).orders == 8


def test_normalize_email_keeps_unicode() -> None:
    assert normalize_email("jürgen@Müller.DE") == "jürgen@müller.de"
