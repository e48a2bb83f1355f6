"""Returns (RMA): goods asked back, authorised, received, then refunded or exchanged.

The life of a return (``domain.refunds.ReturnStatus``)::

    requested ──authorize──▶ authorized ──receive──▶ received ──refund───▶ refunded
        └──reject──▶ rejected                           └──────exchange──▶ exchanged

Every step is one transaction on the order (``OrderService._locked``: version
lock + the order's audit entry) with a timeline event (``return_<step>``) and
an audit entry for the return (entity ``return``).

Two steps move money through other use cases, each committing on its own, so
they are made safe to repeat:

* ``refund`` creates the refund through ``RefundService.create`` with the key
  ``return-<id>`` and then marks the return refunded. A crash in between
  leaves a received return whose refund exists; running ``refund`` again finds
  that refund by its key and completes.
* ``exchange`` places the replacement order through ``OrderService.place``
  (its note names the return, which is how a retry finds it), refunds a
  negative difference with the key ``exchange-<id>``, then marks the return
  exchanged — and, when the credit covers the whole replacement, settles the
  new order's zero balance — in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session
from sqlmodel import col

from pulse_tui.domain import refunds as rules
from pulse_tui.domain import returns as rr
from pulse_tui.domain.money import format_money
from pulse_tui.domain.permissions import Permission
from pulse_tui.domain.refunds import (
    RETURN_STEPS,
    Condition,
    LinePick,
    Quote,
    RefundError,
    RefundReason,
    RefundStatus,
    ReturnStatus,
)
from pulse_tui.domain.status import PAID_STATES, OrderStatus
from pulse_tui.domain.totals import LineInput, TotalsError, order_totals
from pulse_tui.storage import queries
from pulse_tui.storage.db import read_session
from pulse_tui.storage.models import Order, OrderEvent, OrderLine, Product, Refund, Return

from .audit import order_snapshot, record_audit, record_event
from .context import Context
from .errors import Conflict, InvalidInput, NotFound, RuleViolation, ServiceError
from .orders import AddressInput, LineRequest, OrderService, _clean
from .refunds import RefundRequest, RefundService, _order_id

# A zero balance left by an exchange credit is settled as a payment from this
# "gateway": nothing is captured, the order just moves on to processing.
CREDIT_GATEWAY = "exchange"
CREDIT_METHOD = "credit"

# -- what the screens and the CLI get ---------------------------------------------


@dataclass(frozen=True)
class ReturnPick:
    sku: str
    quantity: int


@dataclass(frozen=True)
class ReceivedItem:
    sku: str
    quantity: int
    condition: str  # domain.refunds.Condition value: resellable | damaged


@dataclass(frozen=True)
class ReturnLineOption:
    line_id: int
    sku: str
    name: str
    shipped: int
    returnable: int  # shipped units not in an open or finished return
    quantity: int = 0  # units ordered
    physical: bool = True


@dataclass(frozen=True)
class ReturnOptions:
    order_id: int
    number: str
    currency: str
    lines: list[ReturnLineOption]
    version: int = 0
    status: str = ""
    reasons: tuple[RefundReason, ...] = rules.OPERATOR_REASONS
    problem: str | None = None  # why no return can be asked now (None: it can)


@dataclass(frozen=True)
class ReturnRow:
    id: int
    order_id: int
    order_number: str
    status: str
    reason: str
    note: str | None
    # [{line_id, sku, quantity, received, condition, resellable, damaged}]
    lines: list[dict[str, Any]]
    created_by: str
    created_at: datetime
    updated_at: datetime
    decided_by: str | None
    decision_note: str | None
    received_by: str | None
    refund_id: int | None
    exchange_order_number: str | None
    exchange_order_id: int | None = None
    currency: str = ""


@dataclass(frozen=True)
class ExchangeResult:
    ret: ReturnRow
    order_number: str
    difference: int  # > 0: the customer owes it; < 0: refunded on the original order
    refund_id: int | None
    credit: int = 0
    order_total: int = 0
    currency: str = ""


# -- helpers -------------------------------------------------------------------------


def _snap(ret: Return) -> dict[str, Any]:
    return {
        "order_id": ret.order_id,
        "status": ret.status,
        "reason": ret.reason,
        "lines": [dict(ln) for ln in ret.lines or []],
        "decided_by": ret.decided_by,
        "decision_note": ret.decision_note,
        "received_by": ret.received_by,
        "refund_id": ret.refund_id,
        "exchange_order_id": ret.exchange_order_id,
    }


def _row(ret: Return, order: Order, exchange_number: str | None) -> ReturnRow:
    return ReturnRow(
        id=int(ret.id or 0),
        order_id=ret.order_id,
        order_number=order.number,
        status=ret.status,
        reason=ret.reason,
        note=ret.note,
        lines=[dict(ln) for ln in ret.lines or []],
        created_by=ret.created_by,
        created_at=ret.created_at,
        updated_at=ret.updated_at,
        decided_by=ret.decided_by,
        decision_note=ret.decision_note,
        received_by=ret.received_by,
        refund_id=ret.refund_id,
        exchange_order_number=exchange_number,
        exchange_order_id=ret.exchange_order_id,
        currency=order.currency,
    )


def _lines(s: Session, order_id: int) -> list[OrderLine]:
    return list(
        s.execute(
            select(OrderLine).where(col(OrderLine.order_id) == order_id).order_by(col(OrderLine.id))
        ).scalars()
    )


def _held(s: Session, order_id: int) -> dict[int, int]:
    """line id → units the order's returns account for (rejected ones: none)."""
    held: dict[int, int] = {}
    for ret in s.execute(select(Return).where(col(Return.order_id) == order_id)).scalars():
        for ln in ret.lines or []:
            n = rr.units_held(ret.status, int(ln["quantity"]), int(ln.get("received") or 0))
            held[int(ln["line_id"])] = held.get(int(ln["line_id"]), 0) + n
    return held


def _units(lines: Sequence[dict[str, Any]], key: str) -> str:
    return ", ".join(f"{ln[key]} × {ln['sku']}" for ln in lines if ln.get(key))


def _address(d: dict[str, Any]) -> AddressInput:
    return AddressInput(
        name=str(d.get("name") or ""),
        line1=str(d.get("line1") or ""),
        city=str(d.get("city") or ""),
        country=str(d.get("country") or ""),
        postal_code=d.get("postal_code"),
        region=d.get("region"),
        line2=d.get("line2"),
    )


def _marker(ret_id: int, number: str) -> str:
    """The note the replacement order is placed with: how a retry finds it."""
    return f"Exchange for return #{ret_id} of {number}"


class ReturnService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def _orders(self) -> OrderService:
        return OrderService(self.ctx)

    def _bad(self, exc: rr.ReturnError, number: str) -> ServiceError:
        if isinstance(exc, rr.ReturnLimitError):
            return RuleViolation(f"{number}: {exc}")
        return InvalidInput(f"{number}: {exc}")

    # -- reads ------------------------------------------------------------------

    def options(self, order_ref: str | int) -> ReturnOptions:
        """Everyone who may read orders: the lines of an order and how many of
        each can still be asked back."""
        self.ctx.actor.require(Permission.READ, "read orders")
        with read_session(self.ctx.engine) as s:
            order = queries.find_order(s, order_ref)
            if order is None:
                raise NotFound(f"no order {order_ref}")
            oid = int(order.id or 0)
            held = _held(s, oid)
            return ReturnOptions(
                order_id=oid,
                number=order.number,
                currency=order.currency,
                lines=[
                    ReturnLineOption(
                        line_id=int(ln.id or 0),
                        sku=ln.sku,
                        name=ln.name,
                        shipped=ln.qty_fulfilled,
                        returnable=rules.returnable_quantity(
                            ln.qty_fulfilled, held.get(int(ln.id or 0), 0)
                        ),
                        quantity=ln.quantity,
                        physical=ln.kind == "physical",
                    )
                    for ln in _lines(s, oid)
                ],
                version=order.version,
                status=order.status,
                problem=rr.order_return_problem(order.status),
            )

    def get(self, return_id: int) -> ReturnRow:
        """Everyone who may read orders."""
        rows = self._select(ids=[return_id])
        if not rows:
            raise NotFound(f"no return #{return_id}")
        return rows[0]

    def list_returns(
        self,
        status: str | None = None,
        order_ref: str | int | None = None,
        limit: int = 200,
        offset: int = 0,
    ) -> list[ReturnRow]:
        """Everyone who may read orders: returns still in progress first
        (requested, authorised, received), then newest first."""
        if status is not None and status not in {st.value for st in ReturnStatus}:
            allowed = ", ".join(st.value for st in ReturnStatus)
            raise InvalidInput(f"unknown return status {status!r} (one of: {allowed})")
        return self._select(status=status, order_ref=order_ref, limit=limit, offset=offset)

    def counts(self) -> dict[str, int]:
        """Returns per status."""
        self.ctx.actor.require(Permission.READ, "read returns")
        with read_session(self.ctx.engine) as s:
            got = queries.count_by_status(s, Return)
        return {st.value: int(got.get(st.value, 0)) for st in ReturnStatus}

    def _select(
        self,
        *,
        status: str | None = None,
        order_ref: str | int | None = None,
        ids: Sequence[int] = (),
        limit: int = 200,
        offset: int = 0,
    ) -> list[ReturnRow]:
        self.ctx.actor.require(Permission.READ, "read returns")
        with read_session(self.ctx.engine) as s:
            rows = queries.return_rows(
                s,
                first=[[st.value for st in (*rr.OPEN, ReturnStatus.RECEIVED)]],
                status=status,
                order_id=_order_id(s, order_ref),
                ids=ids,
                limit=limit,
                offset=offset,
            )
        return [_row(ret, order, number) for ret, order, number in rows]

    # -- request, authorize, reject ---------------------------------------------------

    def request(
        self,
        order_ref: str | int,
        lines: Sequence[ReturnPick],
        reason: str,
        note: str | None = None,
        expected_version: int | None = None,
    ) -> ReturnRow:
        """Agents and admins: ask goods back — shipped units not already in a
        return. Changes nothing on the goods or money yet."""
        self.ctx.actor.require(Permission.REFUND, "request returns")
        try:
            why = rr.parse_return_reason(reason)
        except rr.ReturnError as exc:
            raise InvalidInput(str(exc)) from None
        note_c = _clean(note, "note", 500) if note else None
        with self._orders()._locked(order_ref, expected_version, "return.request") as (s, order, _):
            problem = rr.order_return_problem(order.status)
            if problem:
                raise RuleViolation(f"{order.number}: {problem}")
            oid = int(order.id or 0)
            order_lines = _lines(s, oid)
            held = _held(s, oid)
            returnable = {
                ln.sku: rules.returnable_quantity(ln.qty_fulfilled, held.get(int(ln.id or 0), 0))
                for ln in order_lines
            }
            try:
                wanted = rr.plan_request(returnable, [(p.sku, p.quantity) for p in lines])
            except rr.ReturnError as exc:
                raise self._bad(exc, order.number) from None
            now = self.ctx.now()
            ret = Return(
                order_id=oid,
                status=ReturnStatus.REQUESTED.value,
                reason=why.value,
                note=note_c,
                lines=[
                    {
                        "line_id": int(ln.id or 0),
                        "sku": ln.sku,
                        "quantity": wanted[ln.sku],
                        "received": 0,
                        "condition": None,
                    }
                    for ln in order_lines
                    if ln.sku in wanted
                ],
                created_by=self.ctx.actor.label,
                created_at=now,
                updated_at=now,
            )
            s.add(ret)
            s.flush()
            record_event(
                s,
                self.ctx,
                order,
                "return_requested",
                f"Return #{ret.id} requested: {_units(ret.lines, 'quantity')} — "
                f"{why.value.replace('_', ' ')}" + (f" — {note_c}" if note_c else ""),
                {"return": ret.id, "lines": [dict(ln) for ln in ret.lines]},
            )
            record_audit(
                s, self.ctx, "return.request", "return", int(ret.id or 0), None, _snap(ret)
            )
            return _row(ret, order, None)

    @contextmanager
    def _step(
        self, return_id: int, step: str, expected_version: int | None
    ) -> Iterator[tuple[Session, Order, Return]]:
        """One return step in its order's transaction: checks the return's
        status, moves it, and writes the return's audit entry after the body."""
        with read_session(self.ctx.engine) as s:
            found = s.get(Return, return_id)
            if found is None:
                raise NotFound(f"no return #{return_id}")
            order_id = found.order_id
        with self._orders()._locked(order_id, expected_version, f"return.{step}") as (
            s,
            order,
            _,
        ):
            ret = s.get(Return, return_id)
            assert ret is not None
            problem = rules.return_step_problem(ret.status, step)
            if problem:
                raise RuleViolation(f"return #{return_id} ({order.number}): {problem}")
            before = _snap(ret)
            ret.status = RETURN_STEPS[step][1].value
            ret.updated_at = self.ctx.now()
            yield s, order, ret
            s.flush()
            record_audit(s, self.ctx, f"return.{step}", "return", return_id, before, _snap(ret))

    def authorize(
        self, return_id: int, note: str | None = None, *, expected_version: int | None = None
    ) -> ReturnRow:
        """Agents and admins: the customer may send the goods back."""
        self.ctx.actor.require(Permission.REFUND, "authorise returns")
        note_c = _clean(note, "note", 500) if note else None
        with self._step(return_id, "authorize", expected_version) as (s, order, ret):
            ret.decided_by, ret.decision_note = self.ctx.actor.label, note_c
            record_event(
                s,
                self.ctx,
                order,
                "return_authorized",
                f"Return #{return_id} authorised" + (f": {note_c}" if note_c else ""),
                {"return": return_id},
            )
            return _row(ret, order, None)

    def reject(
        self, return_id: int, note: str, *, expected_version: int | None = None
    ) -> ReturnRow:
        """Agents and admins: refuse a requested return, saying why (a note is
        required). Its units may be asked back again later."""
        self.ctx.actor.require(Permission.REFUND, "reject returns")
        note_c = _clean(note, "rejection note", 500)
        with self._step(return_id, "reject", expected_version) as (s, order, ret):
            ret.decided_by, ret.decision_note = self.ctx.actor.label, note_c
            record_event(
                s,
                self.ctx,
                order,
                "return_rejected",
                f"Return #{return_id} rejected: {note_c}",
                {"return": return_id},
            )
            return _row(ret, order, None)

    # -- receive -------------------------------------------------------------------

    def receive(
        self,
        return_id: int,
        items: Sequence[ReceivedItem],
        *,
        expected_version: int | None = None,
    ) -> ReturnRow:
        """Warehouse, agents, admins: the goods came back. Per sku a quantity
        (at most what was authorised) and a condition; resellable units of
        physical lines go back to stock, damaged ones do not. The order's lines
        count the returned units and its goods status follows."""
        self.ctx.actor.require(Permission.FULFIL, "receive returns")
        with self._step(return_id, "receive", expected_version) as (s, order, ret):
            authorised = {str(ln["sku"]): int(ln["quantity"]) for ln in ret.lines or []}
            try:
                got = rr.plan_receipt(authorised, [(i.sku, i.quantity, i.condition) for i in items])
            except rr.ReturnError as exc:
                raise self._bad(exc, f"return #{return_id}") from None
            order_lines = {int(ln.id or 0): ln for ln in _lines(s, int(order.id or 0))}
            updated: list[dict[str, Any]] = []
            for entry in ret.lines or []:
                per = got.get(str(entry["sku"]), {})
                good = per.get(Condition.RESELLABLE, 0)
                bad = per.get(Condition.DAMAGED, 0)
                updated.append(
                    {
                        **entry,
                        "received": good + bad,
                        "resellable": good,
                        "damaged": bad,
                        "condition": rr.condition_label(per),
                    }
                )
                line = order_lines.get(int(entry["line_id"]))
                if line is None or good + bad == 0:
                    continue
                line.qty_returned += good + bad
                if good and line.kind == "physical":
                    product = s.get(Product, line.product_id)
                    if product is not None:
                        product.stock_on_hand += good
            ret.lines = updated
            ret.received_by = self.ctx.actor.label
            goods = rr.fulfillment_after_return(
                [(ln.qty_fulfilled, ln.qty_returned) for ln in order_lines.values()]
            )
            if goods is not None:
                order.fulfillment_status = goods.value
            good_txt, bad_txt = _units(updated, "resellable"), _units(updated, "damaged")
            parts = ([f"{good_txt} resellable"] if good_txt else []) + (
                [f"{bad_txt} damaged"] if bad_txt else []
            )
            restocked = [
                f"{ln['resellable']} × {ln['sku']}"
                for ln in updated
                if ln["resellable"]
                and order_lines.get(int(ln["line_id"]))
                and order_lines[int(ln["line_id"])].kind == "physical"
            ]
            record_event(
                s,
                self.ctx,
                order,
                "return_received",
                f"Return #{return_id} received: {'; '.join(parts)}"
                + (f"; back in stock: {', '.join(restocked)}" if restocked else ""),
                {"return": return_id, "lines": updated},
            )
            return _row(ret, order, None)

    # -- refund ----------------------------------------------------------------------

    def refund(
        self,
        return_id: int,
        *,
        include_shipping: bool = False,
        payment_id: int | None = None,
        approve: bool = False,
    ) -> Refund:
        """Agents and admins (``approve``: admins): a refund of the received
        units (reason "return", linked to the return), created through
        RefundService — approved within the limit, else waiting for an admin;
        the door sends it with ``execute``. Stock was settled at receive, so
        the refund restocks nothing. Safe to repeat after a crash."""
        self.ctx.actor.require(Permission.REFUND, "refund returns")
        if approve:
            self.ctx.actor.require(Permission.REFUND_ANY, "approve refunds")
        with read_session(self.ctx.engine) as s:
            ret = s.get(Return, return_id)
            if ret is None:
                raise NotFound(f"no return #{return_id}")
            order = s.get(Order, ret.order_id)
            assert order is not None
            problem = rules.return_step_problem(ret.status, "refund")
            if problem:
                raise RuleViolation(f"return #{return_id} ({order.number}): {problem}")
            picks = [
                LinePick(int(ln["line_id"]), int(ln["received"]), restock=False)
                for ln in ret.lines or []
                if int(ln.get("received") or 0) > 0
            ]
            key = self._refund_key(s, return_id)
            order_id = ret.order_id
        refund = RefundService(self.ctx).create(
            order_id,
            RefundRequest(
                reason=RefundReason.RETURN.value,
                lines=picks,
                include_shipping=include_shipping,
                payment_id=payment_id,
                note=f"Return #{return_id}",
            ),
            approve=approve,
            idempotency_key=key,
            return_id=return_id,
        )
        # The refund is committed. The return follows in its own transaction;
        # a crash here leaves it received, and a retry finds the refund by key.
        refund_id = int(refund.id or 0)
        try:
            with self._step(return_id, "refund", None) as (s, order, ret):
                ret.refund_id = refund_id
                record_event(
                    s,
                    self.ctx,
                    order,
                    "return_refunded",
                    f"Return #{return_id} refunded: refund #{refund_id} of "
                    f"{format_money(refund.amount, refund.currency)} ({refund.status})",
                    {"return": return_id, "refund": refund_id},
                )
        except RuleViolation:
            if self._refund_of(return_id) != refund_id:
                raise
            # someone else completed it with the same refund: nothing more to do
        return refund

    def _refund_key(self, s: Session, return_id: int) -> str:
        """``return-<id>``; a fresh one per earlier refund of this return that
        was cancelled (its key cannot be used again)."""
        base = f"return-{return_id}"
        gone = s.execute(
            select(func.count())
            .select_from(Refund)
            .where(
                col(Refund.return_id) == return_id,
                col(Refund.status) == RefundStatus.CANCELLED.value,
                (col(Refund.idempotency_key) == base)
                | col(Refund.idempotency_key).like(f"{base}-%"),
            )
        ).scalar_one()
        return base if not gone else f"{base}-{int(gone) + 1}"

    def _refund_of(self, return_id: int) -> int | None:
        with read_session(self.ctx.engine) as s:
            ret = s.get(Return, return_id)
            if ret is None or ret.status != ReturnStatus.REFUNDED:
                return None
            return ret.refund_id

    # -- exchange --------------------------------------------------------------------

    def exchange(
        self,
        return_id: int,
        replacement: Sequence[tuple[str, int]],
        *,
        payment_id: int | None = None,
        expected_version: int | None = None,
    ) -> ExchangeResult:
        """Agents and admins: a new order for the customer with the
        ``replacement`` lines (sku, quantity), shipped to the original address
        at no shipping cost, with the returned units' value as credit (a
        discount up to its price). Difference > 0: the new order waits for that
        payment; < 0: that much is refunded on the original order (through
        RefundService, key ``exchange-<id>``); 0 balance: the new order moves
        on to processing. Safe to repeat after a crash (the placed order is
        found again by its note)."""
        self.ctx.actor.require(Permission.REFUND, "exchange returns")
        wanted = self._replacement(replacement)
        with read_session(self.ctx.engine) as s:
            ret = s.get(Return, return_id)
            if ret is None:
                raise NotFound(f"no return #{return_id}")
            order = s.get(Order, ret.order_id)
            assert order is not None
            problem = rules.return_step_problem(ret.status, "exchange")
            if problem:
                raise RuleViolation(f"return #{return_id} ({order.number}): {problem}")
            if expected_version is not None and order.version != expected_version:
                raise Conflict(
                    f"{order.number} was changed by someone else (you saw version "
                    f"{expected_version}, it is now {order.version}); reload and retry"
                )
            credit = self._credit(s, order, ret)
            marker = _marker(return_id, order.number)
            found = self._placed(s, order, marker)
            subtotal = found.subtotal if found is not None else self._subtotal(s, order, wanted)
        difference = rules.exchange_difference(credit.amount, subtotal)
        refunds = RefundService(self.ctx)
        request = RefundRequest(
            reason=RefundReason.RETURN.value,
            amount=-difference,
            payment_id=payment_id,
            note=f"Exchange of return #{return_id}",
        )
        placed_now = found is None
        if difference < 0 and placed_now:
            refunds.preview(order.id or 0, request)  # refused now, before anything is placed
        if found is None:
            found = self._orders().place(
                customer_id=order.customer_id,
                lines=[LineRequest(sku, qty) for sku, qty in wanted.items()],
                currency=order.currency,
                shipping_address=_address(order.shipping_address),
                billing_address=_address(order.billing_address or order.shipping_address),
                shipping=0,
                discount=rr.exchange_discount(credit.amount, subtotal),
                tax_inclusive=order.tax_inclusive,
                note=marker,
            )
        new_id, new_number = int(found.id or 0), found.number
        try:
            refund_id: int | None = None
            if difference < 0:
                refund = refunds.create(
                    order.id or 0,
                    request,
                    idempotency_key=f"exchange-{return_id}",
                    return_id=return_id,
                )
                refund_id = int(refund.id or 0)
            row = self._mark_exchanged(return_id, new_id, credit, difference, refund_id)
        except ServiceError:
            if placed_now:  # leave no orphan order (stock reserved, nothing owed)
                self._withdraw(new_id, return_id)
            raise
        with read_session(self.ctx.engine) as s:
            new = s.get(Order, new_id)
            assert new is not None
            total = new.total
        return ExchangeResult(
            ret=row,
            order_number=new_number,
            difference=difference,
            refund_id=refund_id,
            credit=credit.amount,
            order_total=total,
            currency=order.currency,
        )

    @staticmethod
    def _replacement(replacement: Sequence[tuple[str, int]]) -> dict[str, int]:
        if not replacement:
            raise InvalidInput("an exchange needs at least one replacement line (sku, quantity)")
        wanted: dict[str, int] = {}
        for item in replacement:
            try:
                raw, qty = item
            except (TypeError, ValueError):
                raise InvalidInput(f"a replacement line is (sku, quantity), got {item!r}") from None
            sku = str(raw).strip().upper()
            if not sku:
                raise InvalidInput("a replacement line needs a sku")
            if isinstance(qty, bool) or not isinstance(qty, int) or qty < 1:
                raise InvalidInput(f"{sku}: quantity must be a whole number of at least 1")
            wanted[sku] = wanted.get(sku, 0) + qty
        return wanted

    def _credit(self, s: Session, order: Order, ret: Return) -> Quote:
        """The returned units' value, by the refund rules (cumulative
        allocation, discount share, tax share) — what a refund of them would
        give back. The exchange's own difference refund (a retry after a crash)
        does not count against it."""
        from .refunds import _active_refunds, _line_states, _order_refundable
        from .refunds import _lines as refund_lines

        oid = int(order.id or 0)
        key = f"exchange-{ret.id}"
        active = [r for r in _active_refunds(s, oid) if r.idempotency_key != key]
        picks = [
            LinePick(int(ln["line_id"]), int(ln["received"]))
            for ln in ret.lines or []
            if int(ln.get("received") or 0) > 0
        ]
        try:
            return rules.quote(
                _line_states(order, refund_lines(s, oid), active),
                picks,
                shipping=order.shipping,
                shipping_committed=0,
                include_shipping=False,
                amount=None,
                refundable=_order_refundable(order, active),
                currency=order.currency,
            )
        except RefundError as exc:
            raise RuleViolation(f"{order.number}: no credit for return #{ret.id}: {exc}") from None

    @staticmethod
    def _subtotal(s: Session, order: Order, wanted: dict[str, int]) -> int:
        """What the replacement lines cost (place checks stock, currency, activity)."""
        products = {
            p.sku: p
            for p in s.execute(select(Product).where(col(Product.sku).in_(list(wanted)))).scalars()
        }
        for sku in wanted:
            if sku not in products:
                raise NotFound(f"no product {sku}")
        try:
            return order_totals(
                [
                    LineInput(products[sku].unit_price, qty, products[sku].tax_rate_bp)
                    for sku, qty in wanted.items()
                ],
                tax_inclusive=order.tax_inclusive,
            ).subtotal
        except TotalsError as exc:
            raise InvalidInput(str(exc)) from None

    @staticmethod
    def _placed(s: Session, order: Order, marker: str) -> Order | None:
        """A replacement order an earlier, interrupted exchange placed (not cancelled)."""
        return s.execute(
            select(Order)
            .join(OrderEvent, col(OrderEvent.order_id) == col(Order.id))
            .where(
                col(Order.customer_id) == order.customer_id,
                col(Order.id) > (order.id or 0),
                col(Order.status) != OrderStatus.CANCELLED.value,
                col(OrderEvent.kind) == "note",
                col(OrderEvent.message) == marker,
            )
            .order_by(col(Order.id))
            .limit(1)
        ).scalar_one_or_none()

    def _mark_exchanged(
        self, return_id: int, new_id: int, credit: Quote, difference: int, refund_id: int | None
    ) -> ReturnRow:
        """The return → exchanged, events on both orders, and a zero balance on
        the new order settled — one transaction."""
        with self._step(return_id, "exchange", None) as (s, order, ret):
            new = self._lock_other(s, new_id)
            new_before = order_snapshot(new)
            cur = order.currency
            ret.exchange_order_id = new_id
            ret.refund_id = refund_id
            per_line = {q.line_id: q.amount for q in credit.lines}
            ret.lines = [
                {**ln, "credit": per_line.get(int(ln["line_id"]), 0)} for ln in ret.lines or []
            ]
            if difference > 0:
                owed = f"; {format_money(difference, cur)} due on {new.number}"
            elif difference < 0:
                owed = f"; {format_money(-difference, cur)} refunded (refund #{refund_id})"
            else:
                owed = ""
            data = {
                "return": return_id,
                "exchange_order": new.number,
                "credit": credit.amount,
                "difference": difference,
                "refund": refund_id,
            }
            record_event(
                s,
                self.ctx,
                order,
                "return_exchanged",
                f"Return #{return_id} exchanged for {new.number}: credit "
                f"{format_money(credit.amount, cur)}{owed}",
                data,
            )
            record_event(
                s,
                self.ctx,
                new,
                "return_exchanged",
                f"Replacement for return #{return_id} of {order.number}: credit "
                f"{format_money(credit.amount, cur)} taken off"
                + (f"; {format_money(difference, cur)} to pay" if difference > 0 else ""),
                {**data, "original_order": order.number},
            )
            if new.total == 0 and new.payment_status not in PAID_STATES:
                self._orders()._take_payment(
                    s,
                    new,
                    gateway=CREDIT_GATEWAY,
                    method=CREDIT_METHOD,
                    reference=f"return #{return_id} of {order.number}",
                )
            s.flush()
            record_audit(
                s,
                self.ctx,
                "return.exchange",
                "order",
                new.number,
                new_before,
                order_snapshot(new),
            )
            return _row(ret, order, new.number)

    def _lock_other(self, s: Session, order_id: int) -> Order:
        """Bump the version of a second order inside this transaction (so a
        screen showing it sees it changed)."""
        res = cast(
            "CursorResult[Any]",
            s.execute(
                update(Order)
                .where(col(Order.id) == order_id)
                .values(version=col(Order.version) + 1, updated_at=self.ctx.now())
                .execution_options(synchronize_session=False)
            ),
        )
        if res.rowcount != 1:
            raise NotFound(f"no order #{order_id}")
        new = s.get(Order, order_id)
        assert new is not None
        s.refresh(new)
        return new

    def _withdraw(self, order_id: int, return_id: int) -> None:
        """Cancel a replacement order this call placed but could not link."""
        with suppress(ServiceError):  # best effort: a retry finds the order by its note
            self._orders().cancel(
                order_id,
                reason="other",
                note=f"exchange for return #{return_id} not completed",
            )


__all__ = [
    "CREDIT_GATEWAY",
    "CREDIT_METHOD",
    "ExchangeResult",
    "ReceivedItem",
    "ReturnLineOption",
    "ReturnOptions",
    "ReturnPick",
    "ReturnRow",
    "ReturnService",
]
