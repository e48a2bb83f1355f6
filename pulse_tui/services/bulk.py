"""Bulk actions: one change applied to every order of a selection.

Who may call: admins (Permission.BULK). A selection is a query (the list's
filter, or a list of ids), never a list of loaded rows, so it works for
500,000 matches. ``preview`` says how many orders would change and why the
others would not (the domain's own messages, grouped); ``apply`` commits in
chunks: each chunk is one write transaction over its orders (change,
OrderEvent, AuditEntry, optimistic version guard), so a cancel or a crash
leaves every order fully changed or untouched, and running the same request
again changes nothing more.

NOTIFY queues one email of a template per order (``text`` = the template
name; ``subject``/``body`` for ``free_message``) through the notifications
service's batch writer, in the chunk's transaction: the outbox row, a
timeline event and an audit entry per order; order versions do not change.
Skipped: orders the template does not fit (e.g. "not shipped"), customers
opted out of transactional email or without a usable address, and orders that
already have that template queued or sent (by any door, automatic or bulk), so
running the same request again queues nothing more; a failed one does not
count, so a re-run tries those orders again.
"""

from __future__ import annotations

import bisect
import csv
import io
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, func, literal, select, true
from sqlalchemy.orm import Session

from pulse_tui.domain import notifications as notify_rules
from pulse_tui.domain import status as sm
from pulse_tui.domain.filters import OrderFilter
from pulse_tui.domain.numbers import parse_order_number
from pulse_tui.domain.permissions import Permission
from pulse_tui.domain.status import (
    CancelReason,
    FulfillmentStatus,
    OrderState,
    OrderStatus,
    PaymentStatus,
)
from pulse_tui.storage.db import read_session, write_session
from pulse_tui.storage.models import Customer, Notification, Order, OrderEvent, OrderTag, Return
from pulse_tui.storage.queries import filter_clauses
from pulse_tui.storage.sql import id_in

from .audit import record_audit, table_of
from .context import Context
from .errors import Conflict, InvalidInput, NotFound
from .notifications import NOTIFY_PERMISSION, NotificationService
from .orders import (
    BatchOutcome,
    OrderService,
    OrderTarget,
    clean_carrier,
    clean_hold_reason,
    clean_note,
    clean_tracking,
    fetch_targets,
    load_targets,
    normalize_tags,
    parse_cancel_reason,
    select_targets,
    transition_target,
)


class BulkKind(StrEnum):
    TRANSITION = "transition"
    SHIP = "ship"
    HOLD = "hold"
    RELEASE = "release"
    TAG = "tag"
    NOTE = "note"
    CANCEL = "cancel"
    NOTIFY = "notify"


@dataclass(frozen=True)
class Selection:
    """Which orders: every order matching ``filter`` (the query language / the list's
    current filter incl. its status tab), or, when ``ids`` is non-empty, exactly those ids."""

    filter: OrderFilter | None = None
    ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class BulkRequest:
    kind: BulkKind
    selection: Selection
    target: str | None = None  # TRANSITION: status value
    reason: str | None = None  # HOLD reason text; CANCEL reason code (CancelReason)
    text: str | None = None  # NOTE text; TAG: the tag; NOTIFY: the template name
    remove: bool = False  # TAG: remove instead of add
    carrier: str | None = None  # SHIP
    tracking: Mapping[str, str] | None = None  # SHIP: order number -> tracking number
    subject: str | None = None  # NOTIFY free_message: the subject
    body: str | None = None  # NOTIFY free_message: the message text


@dataclass(frozen=True)
class Preview:
    matched: int  # orders in the selection
    eligible: int  # would change
    skipped: dict[str, int]  # reason -> count, e.g. {"already shipped": 312, "on hold": 4}


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    changed: int
    skipped: int


@dataclass
class BulkResult:
    run_id: str
    kind: BulkKind
    matched: int
    changed: int
    skipped: dict[str, int]  # reason -> count
    changed_sample: list[str]  # order numbers, first 200
    skipped_sample: list[tuple[str, str]]  # (order number, reason), first 200
    cancelled: bool = False


_STATE_COLUMNS = ("status", "payment_status", "fulfillment_status", "on_hold", "has_physical")
NO_TRACKING = "no tracking number in the CSV"
SAME_NOTE = "already has this note"
GONE = "no longer in the selection"
SAMPLE = 200
ID_CHUNK = 500
CONFLICT_RETRIES = 3

_ORDERS = table_of(Order)
_TAGS = table_of(OrderTag)
_EVENTS = table_of(OrderEvent)
_CUSTOMERS = table_of(Customer)
_NOTIFICATIONS = table_of(Notification)
_RETURNS = table_of(Return)
INVALID_ADDRESS = "invalid email address"
NO_RETURN = "no authorised return"

_Group = tuple[tuple[Any, ...], tuple[Any, ...]]  # (state columns, extra columns)
_Run = Callable[[Session, list[OrderTarget], str], BatchOutcome]


@dataclass
class _Op:
    """One bulk request made ready: inputs checked, the rule and the use case."""

    rule: Callable[[OrderState, tuple[Any, ...]], str | None]
    run: _Run
    extras: list[ColumnElement[Any]] = field(default_factory=list)
    tracking: dict[str, str] | None = None  # SHIP: number -> cleaned tracking


def _state(row: Sequence[Any]) -> OrderState:
    status, pay, fulfil, hold, physical = row
    return OrderState(
        OrderStatus(status),
        PaymentStatus(pay),
        FulfillmentStatus(fulfil),
        bool(hold),
        bool(physical),
    )


def _chunks(items: Sequence[int], size: int) -> Iterator[list[int]]:
    for i in range(0, len(items), size):
        yield list(items[i : i + size])


def _permission(request: BulkRequest) -> tuple[Permission, str]:
    k = request.kind
    if k == BulkKind.TRANSITION:
        target = (request.target or "").strip().lower()
        if target == OrderStatus.CANCELLED:
            return Permission.CANCEL, "cancel orders"
        if target == OrderStatus.DELIVERED:
            return Permission.FULFIL, "mark orders delivered"
        return Permission.HOLD, "start processing"
    return {
        BulkKind.SHIP: (Permission.FULFIL, "ship orders"),
        BulkKind.HOLD: (Permission.HOLD, "put orders on hold"),
        BulkKind.RELEASE: (Permission.HOLD, "release holds"),
        BulkKind.TAG: (Permission.EDIT, "tag orders"),
        BulkKind.NOTE: (Permission.NOTE, "add notes"),
        BulkKind.CANCEL: (Permission.CANCEL, "cancel orders"),
        BulkKind.NOTIFY: NOTIFY_PERMISSION,
    }[k]


class BulkService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.orders = OrderService(ctx)

    def require(self) -> None:
        """Denied unless this actor may run bulk actions (doors ask before reading)."""
        self.ctx.actor.require(Permission.BULK, "run bulk actions")

    def allowed_kinds(self) -> list[BulkKind]:
        """The bulk actions this actor may run (empty for non-admins)."""
        if not self.ctx.actor.can(Permission.BULK):
            return []
        return [
            k
            for k in BulkKind
            if self.ctx.actor.can(_permission(BulkRequest(k, Selection(), target="processing"))[0])
        ]

    # -- preview ---------------------------------------------------------------

    def preview(self, request: BulkRequest) -> Preview:
        """Admins. How many orders the request would change and, grouped by
        the domain's reason, how many it would skip. Reads only; no ORM object
        per order: the selection is grouped by the state the rule needs and the
        rule runs once per group."""
        op = self._prepare(request)
        eligible, skipped = 0, Counter[str]()
        matched = 0
        for (state_row, extra), n in self._groups(op, request.selection).items():
            matched += n
            problem = op.rule(_state(state_row), extra)
            if problem:
                skipped[problem] += n
            else:
                eligible += n
        return Preview(matched, eligible, dict(skipped.most_common()))

    def _where(self, s: Session, selection: Selection) -> Iterator[list[ColumnElement[bool]]]:
        """The selection as WHERE clause lists (one for a filter, one per id chunk)."""
        if selection.ids:
            for chunk in _chunks(sorted(set(selection.ids)), ID_CHUNK):
                yield [id_in(s, _ORDERS.c.id, chunk)]
        else:
            yield filter_clauses(s, selection.filter or OrderFilter())

    def _groups(self, op: _Op, selection: Selection) -> Counter[_Group]:
        state_cols = [_ORDERS.c[n] for n in _STATE_COLUMNS]
        groups: Counter[_Group] = Counter()
        with read_session(self.ctx.engine) as s:
            conn = s.connection()
            for where in self._where(s, selection):
                stmt = (
                    select(*state_cols, *op.extras, func.count())
                    .where(and_(true(), *where))
                    .group_by(*state_cols, *op.extras)
                )
                for row in conn.execute(stmt):
                    k = len(state_cols)
                    groups[(tuple(row[:k]), tuple(row[k:-1]))] += row[-1]
            if op.tracking is not None:
                groups = self._split_by_tracking(s, selection, groups, op.tracking)
        return groups

    def _split_by_tracking(
        self, s: Session, selection: Selection, groups: Counter[_Group], tracking: dict[str, str]
    ) -> Counter[_Group]:
        """SHIP: split each state group into orders with / without a CSV row."""
        in_csv: Counter[tuple[Any, ...]] = Counter()
        ids = set(selection.ids)
        base = [] if ids else filter_clauses(s, selection.filter or OrderFilter())
        state_cols = [_ORDERS.c[n] for n in _STATE_COLUMNS]
        numbers = sorted(tracking)
        for i in range(0, len(numbers), ID_CHUNK):
            stmt = select(_ORDERS.c.id, *state_cols).where(
                _ORDERS.c.number.in_(numbers[i : i + ID_CHUNK]), *base
            )
            for row in s.connection().execute(stmt):
                if not ids or row[0] in ids:
                    in_csv[tuple(row[1:])] += 1
        out: Counter[_Group] = Counter()
        for (state_row, _), n in groups.items():
            has = min(in_csv[state_row], n)
            out[(state_row, (True,))] += has
            out[(state_row, (False,))] += n - has
        return +out

    # -- apply -----------------------------------------------------------------

    def apply(
        self,
        request: BulkRequest,
        *,
        chunk_size: int = 500,
        on_progress: Callable[[Progress], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> BulkResult:
        """Admins. Apply the request chunk by chunk: each chunk is one write
        transaction in which every order's rule is checked again (its state may
        have changed since the preview) and each changed order gets its change,
        OrderEvent and AuditEntry. ``on_progress`` after every chunk; stops
        between chunks when ``should_cancel()`` is true (``result.cancelled``).
        Finally one AuditEntry ``bulk.<kind>`` on entity ``bulk_run`` records the
        request and the counts."""
        op = self._prepare(request)
        if isinstance(chunk_size, bool) or chunk_size < 1:
            raise InvalidInput("chunk size must be at least 1")
        run_id = uuid.uuid4().hex[:12]
        total = self.count(request.selection)
        result = BulkResult(run_id, request.kind, total, 0, {}, [], [])
        skipped: Counter[str] = Counter()
        after_id, done = 0, 0
        ids = sorted(set(request.selection.ids))
        while True:
            if should_cancel is not None and should_cancel():
                result.cancelled = True
                break
            chunk = self._run_chunk(op, request.selection, ids, after_id, chunk_size, run_id)
            if chunk is None:
                break
            last_id, seen, outcome = chunk
            after_id = last_id
            done += seen
            result.changed += len(outcome.changed)
            for t in outcome.changed:
                if len(result.changed_sample) < SAMPLE:
                    result.changed_sample.append(t.number)
            for t, why in outcome.skipped:
                skipped[why] += 1
                if len(result.skipped_sample) < SAMPLE:
                    result.skipped_sample.append((t.number, why))
            if on_progress is not None:
                on_progress(Progress(done, max(total, done), result.changed, sum(skipped.values())))
        if not result.cancelled and done < total:
            skipped[GONE] += total - done  # changed by others so they no longer match
        result.matched = max(total, done)
        result.skipped = dict(skipped.most_common())
        self._record_run(request, result)
        return result

    def count(self, selection: Selection) -> int:
        """How many orders the selection holds now (admins)."""
        self.ctx.actor.require(Permission.BULK, "run bulk actions")
        n = 0
        with read_session(self.ctx.engine) as s:
            for where in self._where(s, selection):
                inner = select(_ORDERS.c.id).where(and_(true(), *where))
                n += int(s.execute(select(func.count()).select_from(inner.subquery())).scalar_one())
        return n

    def _run_chunk(
        self,
        op: _Op,
        selection: Selection,
        ids: list[int],
        after_id: int,
        size: int,
        run_id: str,
    ) -> tuple[int, int, BatchOutcome] | None:
        """One chunk in one write transaction: (last id, orders seen, outcome),
        or None when the selection is exhausted. A version conflict (another
        writer between our read and our guarded UPDATE, possible on PostgreSQL)
        rolls the chunk back and reads it again."""
        for attempt in range(CONFLICT_RETRIES):
            try:
                with write_session(self.ctx.engine) as s:
                    if selection.ids:
                        start = bisect.bisect_right(ids, after_id)
                        chunk_ids = ids[start : start + size]
                        if not chunk_ids:
                            return None
                        targets = load_targets(s, chunk_ids)  # some may be gone
                        last = chunk_ids[-1]
                    else:
                        f = selection.filter or OrderFilter()
                        targets = fetch_targets(
                            s,
                            select_targets()
                            .where(and_(true(), *filter_clauses(s, f)), _ORDERS.c.id > after_id)
                            .limit(size),
                        )
                        if not targets:
                            return None
                        last = targets[-1].id
                    outcome = op.run(s, targets, run_id)
                    return last, len(targets), outcome
            except Conflict:
                if attempt == CONFLICT_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

    def _record_run(self, request: BulkRequest, result: BulkResult) -> None:
        sel = request.selection
        req: dict[str, Any] = {
            "kind": request.kind.value,
            "filter": None if sel.ids else (sel.filter or OrderFilter()).describe(),
            "ids": len(sel.ids),
            "target": request.target,
            "reason": request.reason,
            "text": request.text,
            "remove": request.remove,
            "carrier": request.carrier,
            "tracking_rows": len(request.tracking) if request.tracking is not None else None,
            "subject": request.subject,
        }
        counts = {
            "matched": result.matched,
            "changed": result.changed,
            "skipped": result.skipped,
            "cancelled": result.cancelled,
        }
        with write_session(self.ctx.engine) as s:
            record_audit(
                s,
                self.ctx,
                f"bulk.{request.kind.value}",
                "bulk_run",
                result.run_id,
                {"request": {k: v for k, v in req.items() if v is not None}},
                counts,
            )

    # -- requests ----------------------------------------------------------------

    def _prepare(self, request: BulkRequest) -> _Op:
        """Permission first (before anything is read), then the request's inputs."""
        self.ctx.actor.require(Permission.BULK, "run bulk actions")
        try:
            kind = BulkKind(request.kind)
        except ValueError:
            raise InvalidInput(f"unknown bulk action {request.kind!r}") from None
        self.ctx.actor.require(*_permission(request))
        sel = request.selection
        if sel.ids and sel.filter is not None:
            raise InvalidInput("a selection is a filter or a list of orders, not both")
        svc = self.orders
        if kind == BulkKind.TRANSITION:
            return self._transition_op(request)
        if kind == BulkKind.SHIP:
            return self._ship_op(request)
        if kind in (BulkKind.HOLD, BulkKind.RELEASE):
            hold = kind == BulkKind.HOLD
            if hold:
                if not (request.reason or "").strip():
                    raise InvalidInput("a hold needs a reason")
                reason = clean_hold_reason(request.reason or "")
                run: _Run = lambda s, ts, rid: svc.hold_in(s, ts, reason=reason, run_id=rid)  # noqa: E731
            else:
                note = clean_note(request.text) if request.text else None
                run = lambda s, ts, rid: svc.release_in(s, ts, note=note, run_id=rid)  # noqa: E731
            return _Op(lambda st, _x: sm.hold_problem(st, hold=hold), run)
        if kind == BulkKind.TAG:
            return self._tag_op(request)
        if kind == BulkKind.NOTE:
            return self._note_op(request)
        if kind == BulkKind.NOTIFY:
            return self._notify_op(request)
        code = parse_cancel_reason(request.reason or "")
        note = clean_note(request.text) if request.text else None
        return _Op(
            lambda st, _x: svc.transition_problem(st, OrderStatus.CANCELLED),
            lambda s, ts, rid: svc.cancel_in(s, ts, reason=code, note=note, run_id=rid),
        )

    def _transition_op(self, request: BulkRequest) -> _Op:
        if not (request.target or "").strip():
            raise InvalidInput("name the status to move the orders to")
        svc = self.orders
        to = transition_target(request.target or "")
        run: _Run
        if to == OrderStatus.PROCESSING:
            run = lambda s, ts, rid: svc.start_processing_in(s, ts, run_id=rid)  # noqa: E731
        elif to == OrderStatus.DELIVERED:
            run = lambda s, ts, rid: svc.deliver_in(s, ts, run_id=rid)  # noqa: E731
        else:
            code = parse_cancel_reason(request.reason or CancelReason.OTHER)
            run = lambda s, ts, rid: svc.cancel_in(s, ts, reason=code, run_id=rid)  # noqa: E731
        return _Op(lambda st, _x: svc.transition_problem(st, to), run)

    def _ship_op(self, request: BulkRequest) -> _Op:
        if not (request.carrier or "").strip():
            raise InvalidInput("shipping needs a carrier")
        carrier = clean_carrier(request.carrier or "")
        if not request.tracking:
            raise InvalidInput("shipping needs tracking numbers (order,tracking rows)")
        tracking: dict[str, str] = {}
        for number, code in request.tracking.items():
            try:
                key = parse_order_number(number)
            except ValueError as exc:
                raise InvalidInput(str(exc)) from None
            try:
                tracking[key] = clean_tracking(code)
            except InvalidInput as exc:
                raise InvalidInput(f"{key}: {exc.message}") from None
        svc = self.orders

        def rule(st: OrderState, extra: tuple[Any, ...]) -> str | None:
            problem = svc.transition_problem(st, OrderStatus.SHIPPED)
            if problem is None and not extra[0]:
                return NO_TRACKING
            return problem

        def run(s: Session, targets: list[OrderTarget], rid: str) -> BatchOutcome:
            pre = BatchOutcome()
            rest = []
            for t in targets:
                if t.number not in tracking and rule(t.state(), (True,)) is None:
                    pre.skipped.append((t, NO_TRACKING))
                else:
                    rest.append(t)
            by_id = {t.id: tracking[t.number] for t in rest if t.number in tracking}
            out = svc.ship_in(s, rest, carrier=carrier, tracking=by_id, run_id=rid)
            out.skipped += pre.skipped
            return out

        return _Op(rule, run, tracking=tracking)

    def _tag_op(self, request: BulkRequest) -> _Op:
        tags = normalize_tags([request.text or ""]) if (request.text or "").strip() else []
        if not tags:
            raise InvalidInput("name the tag to add or remove")
        tag = tags[0]
        svc = self.orders
        add, remove = ([], [tag]) if request.remove else ([tag], [])
        has = exists().where(_TAGS.c.order_id == _ORDERS.c.id, _TAGS.c.tag == tag)

        def rule(_st: OrderState, extra: tuple[Any, ...]) -> str | None:
            if bool(extra[0]) != bool(request.remove):
                return "tags already as asked: " + (
                    f"not tagged {tag}" if request.remove else f"already tagged {tag}"
                )
            return None

        return _Op(
            rule,
            lambda s, ts, rid: svc.tag_in(s, ts, add=add, remove=remove, run_id=rid),
            extras=[has.label("has_tag")],
        )

    def _note_op(self, request: BulkRequest) -> _Op:
        if not (request.text or "").strip():
            raise InvalidInput("a note needs text")
        text = clean_note(request.text or "")
        svc = self.orders
        ev = _EVENTS.c
        has = exists().where(ev.order_id == _ORDERS.c.id, ev.kind == "note", ev.message == text)

        def run(s: Session, targets: list[OrderTarget], rid: str) -> BatchOutcome:
            # The same note twice would say nothing new: re-running a bulk note
            # changes nothing more.
            noted = set(
                s.connection()
                .execute(
                    select(ev.order_id).where(
                        ev.order_id.in_([t.id for t in targets]),
                        ev.kind == "note",
                        ev.message == text,
                    )
                )
                .scalars()
            )
            out = svc.note_in(s, [t for t in targets if t.id not in noted], text=text, run_id=rid)
            out.skipped += [(t, SAME_NOTE) for t in targets if t.id in noted]
            return out

        return _Op(
            lambda _st, extra: SAME_NOTE if extra[0] else None,
            run,
            extras=[has.label("has_note")],
        )

    def _notify_op(self, request: BulkRequest) -> _Op:
        template = (request.text or "").strip()
        if not template:
            raise InvalidInput("name the template to send")
        notify = NotificationService(self.ctx)
        subject, body = notify.check_template_request(template, request.subject, request.body)
        # The preview's view of notify_in's checks, in SQL per group: the
        # customer (opted out / no address), the same email already queued or
        # sent, an authorised return. Malformed (non-empty) addresses show up
        # only when applying: they are validated in Python, order by order.
        cust = (
            select(
                case(
                    (_CUSTOMERS.c.no_transactional_email, 1),
                    (func.trim(func.coalesce(_CUSTOMERS.c.email, "")) == "", 2),
                    else_=0,
                )
            )
            .where(_CUSTOMERS.c.id == _ORDERS.c.customer_id)
            .scalar_subquery()
        )
        nc = _NOTIFICATIONS.c
        dup = exists().where(
            nc.order_id == _ORDERS.c.id,
            nc.template == template,
            nc.status.in_(
                [
                    notify_rules.NotificationStatus.QUEUED.value,
                    notify_rules.NotificationStatus.SENDING.value,
                    notify_rules.NotificationStatus.SENT.value,
                ]
            ),
            *([nc.subject == subject] if template == notify_rules.FREE_MESSAGE else []),
        )
        needs_return = template == "return_authorized"
        has_return: ColumnElement[Any] = (
            exists().where(_RETURNS.c.order_id == _ORDERS.c.id, _RETURNS.c.status == "authorized")
            if needs_return
            else literal(True)
        )
        already = f"{notify_rules.title(template).lower()} already queued or sent"

        def rule(st: OrderState, extra: tuple[Any, ...]) -> str | None:
            who, queued, returned = extra
            problem = notify_rules.template_problem(template, st)
            if problem is None and needs_return and not returned:
                problem = NO_RETURN
            if problem is None and queued:
                problem = already
            if problem is None and who:
                problem = notify_rules.OPTED_OUT if who == 1 else notify_rules.NO_ADDRESS
            return problem

        def run(s: Session, targets: list[OrderTarget], rid: str) -> BatchOutcome:
            out = notify.notify_in(
                s, targets, template=template, subject=subject, body=body, run_id=rid
            )
            # one group for every malformed address, not one per address
            out.skipped = [
                (t, INVALID_ADDRESS if why.startswith(INVALID_ADDRESS) else why)
                for t, why in out.skipped
            ]
            return out

        return _Op(
            rule,
            run,
            extras=[
                cust.label("recipient"),
                dup.label("already_queued"),
                has_return.label("has_return"),
            ],
        )

    # -- selections ----------------------------------------------------------------

    def resolve_orders(self, refs: Sequence[str]) -> tuple[int, ...]:
        """Order numbers (PB-100042, 100042) or ids (#42) → ids, for an
        ``ids`` selection. NotFound names the first unknown one (anyone who
        may read orders: exports use it too)."""
        self.ctx.actor.require(Permission.READ, "read orders")
        numbers: list[str] = []
        wanted_ids: list[int] = []
        for raw in refs:
            r = raw.strip()
            if not r:
                continue
            if r.startswith("#") and r[1:].isdigit():
                wanted_ids.append(int(r[1:]))
                continue
            try:
                numbers.append(parse_order_number(r))
            except ValueError as exc:
                raise InvalidInput(str(exc)) from None
        found: dict[str, int] = {}
        found_ids: set[int] = set()
        with read_session(self.ctx.engine) as s:
            conn = s.connection()
            uniq = sorted(set(numbers))
            for i in range(0, len(uniq), ID_CHUNK):
                stmt = select(_ORDERS.c.number, _ORDERS.c.id).where(
                    _ORDERS.c.number.in_(uniq[i : i + ID_CHUNK])
                )
                found.update({n: oid for n, oid in conn.execute(stmt)})
            for chunk in _chunks(sorted(set(wanted_ids)), ID_CHUNK):
                found_ids.update(
                    conn.execute(select(_ORDERS.c.id).where(_ORDERS.c.id.in_(chunk))).scalars()
                )
        missing = [n for n in numbers if n not in found] + [
            f"#{i}" for i in wanted_ids if i not in found_ids
        ]
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise NotFound(f"no order {missing[0]}{more}")
        return tuple(sorted(set(found.values()) | found_ids))


def read_tracking_csv(text: str) -> dict[str, str]:
    """``order,tracking`` rows (an optional header) → {order number: tracking}.
    Raises InvalidInput naming the first bad row."""
    out: dict[str, str] = {}
    for n, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [c.strip() for c in row]
        if not any(cells):
            continue
        if len(cells) < 2 or not cells[1]:
            raise InvalidInput(f"tracking CSV line {n}: expected order,tracking")
        try:
            number = parse_order_number(cells[0])
        except ValueError:
            if n == 1 and not out:  # a header row
                continue
            raise InvalidInput(
                f"tracking CSV line {n}: not an order number: {cells[0]!r}"
            ) from None
        try:
            code = clean_tracking(cells[1])
        except InvalidInput as exc:
            raise InvalidInput(f"tracking CSV line {n}: {exc.message}") from None
        if out.get(number, code) != code:
            raise InvalidInput(f"tracking CSV line {n}: {number} has two tracking numbers")
        out[number] = code
    if not out:
        raise InvalidInput("the tracking CSV has no order,tracking rows")
    return out
