"""Bank statement reconciliation: matching by reference and amount, reporting the rest."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from pulse_tui.domain.money import plain_amount
from pulse_tui.services.context import Context
from pulse_tui.services.errors import Denied, InvalidInput
from pulse_tui.services.reconcile import (
    LineOutcome,
    Reconciler,
    StatementLine,
    load_statement,
    parse_statement,
)
from pulse_tui.storage.db import read_session
from pulse_tui.storage.models import AuditEntry, Order, OrderEvent, Payment
from tests import factories

VISA = "4111 1111 1111 1111"


def counts(engine) -> tuple[int, int, int, int]:
    with read_session(engine) as s:
        return (
            s.execute(select(func.count()).select_from(OrderEvent)).scalar_one(),
            s.execute(select(func.count()).select_from(AuditEntry)).scalar_one(),
            s.execute(select(func.count()).select_from(Payment)).scalar_one(),
            s.execute(select(func.sum(Order.version))).scalar_one(),
        )


def order_state(engine, number: str) -> tuple[str, str, int, int]:
    with read_session(engine) as s:
        o = s.execute(select(Order).where(Order.number == number)).scalar_one()
        return o.status, o.payment_status, o.paid, o.version


def csv_text(*rows: tuple[str, str, str, str]) -> str:
    lines = ["Date,Amount,Currency,Reference"]
    lines += [",".join(f'"{c}"' for c in r) for r in rows]
    return "\n".join(lines) + "\n"


def eur(order) -> str:
    return plain_amount(order.total, "EUR")


@pytest.fixture
def rec(engine, clock) -> Reconciler:
    return Reconciler(Context(engine, factories.ADMIN, clock=clock))


@pytest.fixture
def orders(admin_desk):
    """Six pending EUR orders, one USD order, one paid by card."""
    eur_orders = [factories.place(admin_desk) for _ in range(6)]
    usd = factories.place(admin_desk, lines=(("CAP-RED", 1),), currency="USD", country="US")
    card = factories.place(admin_desk)
    admin_desk.orders.confirm_payment(
        card.number, gateway="stripe", method="card", reference="pi_card"
    )
    return eur_orders, usd, card


def mixed_statement(orders) -> str:
    (a, b, c, d, e, _f), usd, card = orders
    return csv_text(
        ("2026-11-27", eur(a), "EUR", f"Payment {a.number.lower()} thanks"),  # 2 matched
        ("2026-11-27", plain_amount(b.total - 100, "EUR"), "EUR", b.number),  # 3 underpaid
        ("2026-11-27", plain_amount(c.total + 1, "EUR"), "EUR", c.number),  # 4 overpaid
        ("2026-11-27", eur(d), "EUR", f"first {d.number}"),  # 5 duplicate
        ("2026-11-28", eur(d), "EUR", f"again {d.number}"),  # 6 duplicate
        ("2026-11-28", eur(e), "EUR", f"{e.number} and PB-{int(a.number[3:]) + 100}"),  # 7
        ("2026-11-28", "10.00", "EUR", "rent November"),  # 8 no reference
        ("2026-11-28", "10.00", "EUR", "PB-999999"),  # 9 no such order
        ("2026-11-28", plain_amount(usd.total, "USD"), "EUR", usd.number),  # 10 wrong currency
        ("2026-11-28", eur(card), "EUR", card.number),  # 11 already paid by card
        ("2026-11-28", "-25.00", "EUR", "bank fee"),  # 12 debit
    )


def test_mixed_statement_matches_one_and_reports_the_rest(engine, rec, orders) -> None:
    (a, b, c, d, e, _f), usd, card = orders
    untouched = [o.number for o in (b, c, d, e, usd)]
    before = {n: order_state(engine, n) for n in untouched}
    report = rec.run(parse_statement(mixed_statement(orders)))
    got = {r.line: r.outcome for r in report.lines}
    assert got == {
        2: LineOutcome.MATCHED,
        3: LineOutcome.UNDERPAID,
        4: LineOutcome.OVERPAID,
        5: LineOutcome.DUPLICATE,
        6: LineOutcome.DUPLICATE,
        7: LineOutcome.AMBIGUOUS,
        8: LineOutcome.UNMATCHED,
        9: LineOutcome.UNMATCHED,
        10: LineOutcome.WRONG_CURRENCY,
        11: LineOutcome.ALREADY_PAID,
        12: LineOutcome.IGNORED,
    }
    assert not report.ok
    assert {r.line for r in report.attention} == set(range(3, 12))
    assert report.lines[0].order == a.number
    assert "no order PB-999999" in report.lines[7].message
    assert "possible double payment" in report.lines[9].message
    # only the matched order changed: paid, processing, a bank_transfer payment
    assert order_state(engine, a.number)[:3] == ("processing", "paid", a.total)
    assert {n: order_state(engine, n) for n in untouched} == before
    with read_session(engine) as s:
        p = s.execute(select(Payment).where(Payment.order_id == a.id)).scalar_one()
    assert (p.gateway, p.method, p.gateway_ref, p.amount) == (
        "bank_transfer",
        "bank_transfer",
        report.lines[0].id,
        a.total,
    )


def test_rerun_changes_nothing_more(engine, rec, orders) -> None:
    text = mixed_statement(orders)
    first = rec.run(parse_statement(text))
    after_first = counts(engine)
    second = rec.run(parse_statement(text))
    assert counts(engine) == after_first
    assert second.lines[0].outcome == LineOutcome.ALREADY_PAID
    assert not second.lines[0].attention
    assert [r.outcome for r in second.lines[1:]] == [r.outcome for r in first.lines[1:]]


def test_matched_only_statement_is_ok_and_stays_ok_on_rerun(engine, rec, orders) -> None:
    (a, b, *_), _usd, _card = orders
    text = csv_text(
        ("2026-11-27", eur(a), "EUR", a.number), ("2026-11-27", eur(b), "EUR", b.number)
    )
    assert rec.run(parse_statement(text)).ok
    again = rec.run(parse_statement(text))
    assert again.ok and {r.outcome for r in again.lines} == {LineOutcome.ALREADY_PAID}


def test_dry_run_changes_nothing(engine, rec, orders) -> None:
    (a, *_), _usd, _card = orders
    before = counts(engine)
    report = rec.run(parse_statement(mixed_statement(orders)), dry_run=True)
    assert report.dry_run and report.lines[0].outcome == LineOutcome.MATCHED
    assert counts(engine) == before
    assert order_state(engine, a.number)[0] == "pending"


def test_every_change_has_event_and_audit(engine, rec, orders) -> None:
    (a, *_), _usd, _card = orders
    before = counts(engine)
    rec.run(parse_statement(csv_text(("2026-11-27", eur(a), "EUR", a.number))))
    with read_session(engine) as s:
        events = s.execute(
            select(OrderEvent.kind, OrderEvent.actor)
            .where(OrderEvent.order_id == a.id)
            .order_by(OrderEvent.id)
        ).all()
        audits = s.execute(
            select(AuditEntry.action, AuditEntry.actor).where(AuditEntry.entity_id == a.number)
        ).all()
    assert [tuple(e) for e in events[-2:]] == [("payment_confirmed", "ada"), ("status", "ada")]
    assert ("order.confirm_payment", "ada") in [tuple(x) for x in audits]
    ev, au, pays, versions = counts(engine)
    assert (ev - before[0], au - before[1], pays - before[2], versions - before[3]) == (2, 1, 1, 1)


def test_card_number_in_line_is_refused_and_never_stored(engine, rec, orders) -> None:
    (a, *_), _usd, _card = orders
    text = csv_text(("2026-11-27", eur(a), "EUR", f"{a.number} card {VISA}"))
    before = counts(engine)
    report = rec.run(parse_statement(text))
    (line,) = report.lines
    assert line.outcome == LineOutcome.REFUSED and line.attention
    assert "1111" not in line.text and "card number" in line.message
    assert counts(engine) == before
    # an id column holding a card number is refused the same way
    with_id = f"Id,Date,Amount,Currency,Reference\n{VISA},2026-11-27,{eur(a)},EUR,{a.number}\n"
    (line,) = rec.run(parse_statement(with_id)).lines
    assert line.outcome == LineOutcome.REFUSED and "1111" not in line.id
    assert counts(engine) == before


def test_order_changed_meanwhile_is_reported_not_applied(engine, rec, orders, monkeypatch) -> None:
    (a, *_), _usd, _card = orders
    real = Reconciler._orders

    def stale(self, numbers):
        views = real(self, numbers)
        factories.desk(engine).orders.add_note(a.number, "changed meanwhile")
        return views

    monkeypatch.setattr(Reconciler, "_orders", stale)
    (line,) = rec.run(parse_statement(csv_text(("2026-11-27", eur(a), "EUR", a.number)))).lines
    assert line.outcome == LineOutcome.FAILED and line.attention
    assert order_state(engine, a.number)[0] == "pending"


def test_cancelled_order_is_not_awaiting_payment(engine, rec, admin_desk) -> None:
    o = factories.place(admin_desk)
    admin_desk.orders.cancel(o.number, reason="customer_request")
    (line,) = rec.run(parse_statement(csv_text(("2026-11-27", eur(o), "EUR", o.number)))).lines
    assert line.outcome == LineOutcome.UNMATCHED and "not awaiting payment" in line.message


def test_permissions(engine, clock, orders) -> None:
    (a, *_), _usd, _card = orders
    lines = parse_statement(csv_text(("2026-11-27", eur(a), "EUR", a.number)))
    viewer = Reconciler(Context(engine, factories.VIEWER, clock=clock))
    with pytest.raises(Denied):
        viewer.run(lines)
    assert viewer.run(lines, dry_run=True).lines[0].outcome == LineOutcome.MATCHED
    with pytest.raises(Denied):
        Reconciler(Context(engine, factories.WAREHOUSE, clock=clock)).run(lines, dry_run=True)
    agent = Reconciler(Context(engine, factories.AGENT, clock=clock))
    assert agent.run(lines).ok
    assert order_state(engine, a.number)[0] == "processing"


# -- parsing ------------------------------------------------------------------


def test_references_found_case_insensitively_and_only_whole() -> None:
    def refs(text: str) -> tuple[str, ...]:
        return StatementLine(2, "x", "d", 1, "EUR", text).references

    assert refs("Order pb-100042, thank you") == ("PB-100042",)
    assert refs("PB100042") == ("PB-100042",)
    assert refs("pb 100042 / PB-100042") == ("PB-100042",)
    assert refs("PB-100042 PB-100043") == ("PB-100042", "PB-100043")
    assert refs("XPB-100042") == ()
    assert refs("PB-1000421") == ("PB-1000421",)  # a different number, never cut short
    assert refs("PB-1234") == ()


def test_liberal_headers_delimiters_and_amounts() -> None:
    text = (
        "BOOKING DATE;Transaction ID;Credit;CCY;Details;Memo\n"
        "27.11.2026;T-1;1.234,50;eur;Invoice;pb-100001\n"
        "27.11.2026;T-2;12,50;EUR;PB-100002;\n"
        "\n"
        "27.11.2026;T-3;+7;JPY;PB-100003;\n"
    )
    lines = parse_statement(text)
    assert [(ln.line, ln.id, ln.amount, ln.currency, ln.references) for ln in lines] == [
        (2, "T-1", 123450, "EUR", ("PB-100001",)),
        (3, "T-2", 1250, "EUR", ("PB-100002",)),
        (5, "T-3", 7, "JPY", ("PB-100003",)),
    ]
    comma = parse_statement('date,amount,currency,description\n2026-11-27,"1,234.50",USD,x\n')
    assert comma[0].amount == 123450


def test_derived_ids_are_stable_and_distinct() -> None:
    text = csv_text(
        ("2026-11-27", "10.00", "EUR", "PB-100001"), ("2026-11-27", "11.00", "EUR", "x")
    )
    a, b = parse_statement(text)
    assert a.id != b.id and a.id.startswith("stmt-")
    assert [ln.id for ln in parse_statement(text)] == [a.id, b.id]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("date,amount,currency\n2026-11-27,1.00,EUR\n", "reference/description"),
        ("when,howmuch,ccy,reference\nx,1,EUR,y\n", "date, amount"),
        ("date,amount,currency,reference\n2026-11-27,abc,EUR,PB-100001\n", "line 2"),
        ("date,amount,currency,reference\n2026-11-27,1.005,EUR,PB-100001\n", "decimal places"),
        ("date,amount,currency,reference\n2026-11-27,1.00,XXQ,PB-100001\n", "line 2"),
        ("date,amount,currency,reference\n2026-11-27,,EUR,PB-100001\n", "no amount"),
        ("date,amount,currency,reference\n2026-11-27,1.00,,PB-100001\n", "no currency"),
    ],
)
def test_bad_statements_are_invalid_input(text: str, fragment: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        parse_statement(text)
    assert fragment in exc.value.message


def test_load_statement_errors(tmp_path) -> None:
    with pytest.raises(InvalidInput, match="no such file"):
        load_statement(tmp_path / "missing.csv")
    with pytest.raises(InvalidInput, match="directory"):
        load_statement(tmp_path)
    binary = tmp_path / "x.csv"
    binary.write_bytes(b"\xff\xfe\x00\x81garbage")
    with pytest.raises(InvalidInput, match="UTF-8"):
        load_statement(binary)
    good = tmp_path / "ok.csv"
    good.write_text("\ufeffDate,Amount,Currency,Reference\n2026-11-27,1.00,EUR,PB-100001\n")
    assert load_statement(good)[0].references == ("PB-100001",)


# -- payment methods (confirm_payment / attach) ------------------------------------


def test_confirm_payment_validates_method(engine, admin_desk) -> None:
    o = factories.place(admin_desk)
    before = counts(engine)
    with pytest.raises(InvalidInput) as exc:
        admin_desk.orders.confirm_payment(o.number, method="cash")
    assert "card, wallet, bank_transfer, crypto" in exc.value.message
    assert counts(engine) == before
    admin_desk.orders.confirm_payment(o.number, method="Bank transfer", reference="T-1")
    with read_session(engine) as s:
        assert s.execute(select(Payment.method).where(Payment.order_id == o.id)).scalar_one() == (
            "bank_transfer"
        )


def test_attach_validates_method_and_wallet(engine, admin_desk, clock) -> None:
    from pulse_tui.services.payments import PaymentService

    svc = PaymentService(Context(engine, factories.ADMIN, clock=clock))
    o = factories.place(admin_desk)
    before = counts(engine)
    for kw, fragment in [
        ({"method": "bitcoin"}, "one of: card, wallet, bank_transfer, crypto"),
        ({"method": "wallet", "wallet": "venmo"}, "one of: paypal, apple_pay, google_pay"),
        ({"method": "card", "wallet": "paypal"}, "wallet method"),
    ]:
        with pytest.raises(InvalidInput) as exc:
            svc.attach(o.number, gateway="paypal", reference="PP-1", **kw)
        assert fragment in exc.value.message
    assert counts(engine) == before
    p = svc.attach(
        o.number, gateway="paypal", reference="PP-1", method="Wallet", wallet="Apple Pay"
    )
    assert (p.method, p.wallet) == ("wallet", "apple_pay")
    svc.attach(o.number, gateway="crypto_processor", reference="inv_1", method="crypto")
