"""Customer notifications: the outbox, its delivery, and the desk's hands on it.

**Outbox.** services.audit's ``record_event`` / ``record_events`` call
``enqueue_for_event`` / ``enqueue_for_rows`` for the events that notify
(domain.notifications.EVENT_TEMPLATES, narrowed by ``[notifications]``), so the
notification row is written in the transaction of the change itself: a change
that rolls back leaves no email behind, and a committed change always has its
email queued. A customer marked ``no_transactional_email`` or without a usable
address gets a ``skipped`` row and a timeline note instead.

**Rendering** happens at send time, from the order as it is then plus the
row's ``context`` (what the triggering event knew: carrier and tracking, the
refund, the return). Free messages store their subject and body when queued.

**Delivery guarantee (MailSender): at least once, normally exactly once.** A
row is claimed with one guarded UPDATE (queued → sending, ``claimed_at``,
``claimed_by``), so two senders never take the same row; it is sent; then
sent/failed is committed. A crash between the send and that commit leaves the
row ``sending``: once the lease (``notifications.lease_s``, 10 min) has passed
it is claimed and sent again, so the customer may get one extra copy carrying
the same Message-ID (chosen when the row was queued), which receivers may use
to deduplicate; the file backend names files by Message-ID, so it never writes
a second file. Nothing else sends twice: a temporary failure (connection
refused, timeout, SMTP 4xx) means the server did not take the email.

**Permissions.** Reading needs ``Permission.READ``. Retry, resend, compose and
bulk notify need ``Permission.EDIT`` (agents and admins): writing to a
customer speaks for the shop about the order, the same trust as placing or
editing an order, and unlike NOTE it is not a warehouse task. The sender runs
as SYSTEM.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Any, cast

from sqlalchemy import Connection, CursorResult, Engine, and_, func, or_, select
from sqlalchemy.orm import Session
from sqlmodel import col

from pulse_tui.config import NOTIFY_EVENTS, Settings
from pulse_tui.domain import notifications as rules
from pulse_tui.domain.notifications import (
    EVENT_TEMPLATES,
    FREE_MESSAGE,
    NotificationStatus,
)
from pulse_tui.domain.permissions import Permission
from pulse_tui.domain.text import clean_free_text
from pulse_tui.mail import (
    MailBackend,
    MailError,
    TemplateProblem,
    Templates,
    backend_from_settings,
    build_message,
)
from pulse_tui.mail.templates import blank_context
from pulse_tui.storage.db import read_session, write_session
from pulse_tui.storage.models import (
    Customer,
    Notification,
    Order,
    OrderEvent,
    OrderLine,
    Refund,
    Return,
    Shipment,
)
from pulse_tui.storage.sql import id_in

from .audit import (
    AuditRow,
    EventRow,
    executemany,
    order_snapshot,
    record_audit,
    record_audits,
    record_events,
    table_of,
)
from .context import SYSTEM, Context, utcnow
from .errors import Conflict, InvalidInput, NotFound, RuleViolation
from .orders import BatchOutcome, OrderTarget, load_targets

# Who may act on notifications (see the module docstring).
READ_PERMISSION = Permission.READ
WRITE_PERMISSION = Permission.EDIT
# For the bulk service's NOTIFY kind: (permission, what) like its _permission().
NOTIFY_PERMISSION = (WRITE_PERMISSION, "email customers")

SHOP_NAME = "Pulse"
MAX_SUBJECT = 200
MAX_BODY = 10_000
_IN_CHUNK = 900  # ids per IN (...) list: well under SQLite's variable limit

_N = table_of(Notification)
_EVENTS = table_of(OrderEvent)
_ORDERS = table_of(Order)
_CUSTOMERS = table_of(Customer)


# -- which events notify ------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    enabled: bool = True
    events: frozenset[str] = frozenset(NOTIFY_EVENTS)
    domain: str = "pulse.local"  # of Message-IDs


DEFAULT_POLICY = Policy()


def policy_of(settings: Settings | None) -> Policy:
    if settings is None:
        return DEFAULT_POLICY
    n = settings.notifications
    return Policy(n.enabled, frozenset(n.events), rules.message_id_domain(settings.mail.from_addr))


def _policy(ctx: Context | None) -> Policy:
    return policy_of(ctx.settings) if ctx is not None else DEFAULT_POLICY


def new_message_id(domain: str) -> str:
    return rules.message_id(uuid.uuid4().hex, domain)


def message_ids(domain: str) -> Iterator[str]:
    """Unique Message-IDs for a batch: one random token, numbered (a uuid4
    per email cost a system call each)."""
    token = uuid.uuid4().hex
    return (rules.message_id(f"{token}.{i}", domain) for i in itertools.count(1))


def _recipient(email: str | None, opted_out: bool) -> tuple[str, str | None]:
    """(address to use, why not to send or None)."""
    if opted_out:
        return (email or "").strip(), rules.OPTED_OUT
    try:
        return rules.normalize_email(email or ""), None
    except rules.AddressError as exc:
        return (email or "").strip(), str(exc)


_CONTEXT_KEYS = ("carrier", "tracking", "refund", "return", "reason", "bulk_run", "reference")


def _event_context(kind: str, data: dict[str, Any] | None) -> dict[str, Any]:
    """What of the triggering event's data the email needs later (plain JSON)."""
    out: dict[str, Any] = {"event": kind}
    for k in _CONTEXT_KEYS:
        v = (data or {}).get(k)
        if v is not None:
            out[k] = v if isinstance(v, str | int | float | bool) else str(v)
    return out


def enqueue_for_event(session: Session, ctx: Context, order: Order, ev: OrderEvent) -> None:
    """The outbox row for one event (``record_event``'s hook), in its session:
    the batch path with a batch of one. The event is flushed first, so a
    "skipped" note lands after it on the timeline."""
    if order.id is None:
        return
    session.flush()
    row = EventRow(order.id, ev.at, ev.kind, ev.actor, ev.message, dict(ev.data or {}))
    enqueue_for_rows(session, [row], ctx)


def _customers_of(conn: Connection, order_ids: Sequence[int]) -> dict[int, tuple[int, str, bool]]:
    """order id → (customer id, email, opted out of transactional email)."""
    stmt = (
        select(
            _ORDERS.c.id,
            _CUSTOMERS.c.id,
            _CUSTOMERS.c.email,
            _CUSTOMERS.c.no_transactional_email,
        )
        .join(_CUSTOMERS, _CUSTOMERS.c.id == _ORDERS.c.customer_id)
        .where(id_in(conn, _ORDERS.c.id, order_ids))
    )
    return {oid: (cid, email, bool(out)) for oid, cid, email, out in conn.execute(stmt).all()}


def enqueue_for_rows(
    session: Session, rows: Sequence[EventRow], ctx: Context | None = None
) -> None:
    """The outbox rows for a batch of events (``record_events``' hook): one
    query for the customers, one executemany for the rows, one for skip notes."""
    pol = _policy(ctx)
    if not pol.enabled:
        return
    wanted = [r for r in rows if rules.template_for(r.kind, pol.events) is not None]
    if not wanted:
        return
    conn = session.connection()
    ids = sorted({r.order_id for r in wanted})
    who: dict[int, tuple[int, str, bool]] = {}
    for i in range(0, len(ids), _IN_CHUNK):
        who.update(_customers_of(conn, ids[i : i + _IN_CHUNK]))
    notes: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []
    ids_ = message_ids(pol.domain)
    for r in wanted:
        if r.order_id not in who:
            continue
        cid, email, opted_out = who[r.order_id]
        to, skip = _recipient(email, opted_out)
        template = EVENT_TEMPLATES[r.kind]
        out.append(
            _row(
                order_id=r.order_id,
                customer_id=cid,
                kind=r.kind,
                template=template,
                to_addr=to,
                context=_event_context(r.kind, r.data),
                status=NotificationStatus.SKIPPED if skip else NotificationStatus.QUEUED,
                last_error=skip,
                next_attempt_at=None if skip else r.at,
                message_id=next(ids_),
                created_at=r.at,
                created_by=r.actor,
            )
        )
        if skip:
            notes.append(
                {
                    "order_id": r.order_id,
                    "at": r.at,
                    "kind": rules.EVENT_SKIPPED,
                    "actor": r.actor,
                    "message": rules.skipped_message(skip),
                    "data": {"template": template},
                }
            )
    if out:
        executemany(conn, _N.insert(), out)
    if notes:
        executemany(conn, _EVENTS.insert(), notes)


def _row(**values: Any) -> dict[str, Any]:
    """A full notifications row for Core inserts (every column named)."""
    base: dict[str, Any] = {
        "order_id": None,
        "customer_id": None,
        "kind": "",
        "template": "",
        "to_addr": "",
        "subject": None,
        "body_text": None,
        "context": {},
        "status": NotificationStatus.QUEUED.value,
        "attempts": 0,
        "next_attempt_at": None,
        "claimed_at": None,
        "claimed_by": None,
        "last_error": None,
        "message_id": "",
        "created_at": None,
        "sent_at": None,
        "created_by": "",
    }
    base.update(values)
    base["status"] = str(base["status"])
    return base


# -- rows the doors show ------------------------------------------------------------


@dataclass(frozen=True)
class NotificationRow:
    id: int
    order_id: int | None
    order_number: str | None
    customer_id: int
    customer_name: str
    kind: str  # what queued it: event kind (placed, shipped, ...), "message", "bulk", "resend"
    template: str
    title: str  # the template's human name ("Order confirmation")
    to_addr: str
    subject: str | None
    status: str  # queued | sending | sent | failed | skipped
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    message_id: str
    created_at: datetime
    sent_at: datetime | None
    created_by: str
    body_text: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able fields (times as ISO 8601) for ``--json``."""
        out: dict[str, Any] = {}
        for k, v in self.__dict__.items():
            out[k] = v.isoformat() if isinstance(v, datetime) else v
        return out


def _as_row(n: Notification, number: str | None, customer_name: str) -> NotificationRow:
    assert n.id is not None
    return NotificationRow(
        id=n.id,
        order_id=n.order_id,
        order_number=number,
        customer_id=n.customer_id,
        customer_name=customer_name,
        kind=n.kind,
        template=n.template,
        title=rules.title(n.template),
        to_addr=n.to_addr,
        subject=n.subject,
        status=n.status,
        attempts=n.attempts,
        next_attempt_at=n.next_attempt_at,
        last_error=n.last_error,
        message_id=n.message_id,
        created_at=n.created_at,
        sent_at=n.sent_at,
        created_by=n.created_by,
        body_text=n.body_text,
    )


def _select_rows() -> Any:
    return (
        select(Notification, col(Order.number), col(Customer.name))
        .join(Customer, col(Customer.id) == col(Notification.customer_id))
        .outerjoin(Order, col(Order.id) == col(Notification.order_id))
    )


@dataclass
class DeliveryReport:
    sent: int = 0
    failed: int = 0
    retried: int = 0  # temporary failure: queued again for later
    skipped: int = 0  # opted out at send time
    errors: list[str] = field(default_factory=list)  # one line per failed or retried email
    # orders whose timeline got an email event (sent, failed, skipped) in this run
    orders: set[int] = field(default_factory=set)

    @property
    def total(self) -> int:
        return self.sent + self.failed + self.retried + self.skipped


# -- the desk's use cases --------------------------------------------------------------


def _clean(text: str | None, what: str, max_len: int) -> str:
    try:
        return clean_free_text(text or "", what, max_len=max_len)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def clean_subject(text: str | None) -> str:
    s = _clean(text, "subject", MAX_SUBJECT)
    if "\n" in s or "\r" in s:
        raise InvalidInput("subject must be one line")
    return s


def clean_body(text: str | None) -> str:
    return _clean((text or "").replace("\r\n", "\n"), "message", MAX_BODY)


def _find_order(s: Session, ref: str | int) -> Order:
    """An order by id (int) or number (``PB-100042``, ``pb-100042``, ``100042``)."""
    from pulse_tui.domain.numbers import parse_order_number

    if isinstance(ref, str):
        try:
            ref = parse_order_number(ref)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
    order = (
        s.get(Order, ref)
        if isinstance(ref, int)
        else s.execute(select(Order).where(col(Order.number) == ref)).scalar_one_or_none()
    )
    if order is None:
        raise NotFound(f"no order {ref}")
    return order


class NotificationService:
    """``desk.notifications``: list, retry, resend and compose customer emails.
    Reading needs READ; every change needs EDIT (agents, admins)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    @property
    def settings(self) -> Settings:
        return self.ctx.settings or Settings(database_url=str(self.ctx.engine.url))

    def templates(self) -> Templates:
        return Templates(self.settings.templates_dir())

    # -- reads ----------------------------------------------------------------------

    def list_notifications(
        self,
        status: str | None = None,
        order_ref: str | int | None = None,
        limit: int = 200,
        offset: int = 0,
    ) -> list[NotificationRow]:
        """Anyone who may read orders. Failed first, then newest first."""
        self.ctx.actor.require(READ_PERMISSION, "read notifications")
        if isinstance(limit, bool) or limit < 1 or offset < 0:
            raise InvalidInput("limit must be at least 1 and offset not negative")
        st = _parse_status(status) if status else None
        with read_session(self.ctx.engine) as s:
            stmt = _select_rows()
            if st is not None:
                stmt = stmt.where(col(Notification.status) == st.value)
            if order_ref is not None:
                order = _find_order(s, order_ref)
                stmt = stmt.where(col(Notification.order_id) == order.id)
            stmt = (
                stmt.order_by(
                    (col(Notification.status) != NotificationStatus.FAILED.value),
                    col(Notification.id).desc(),
                )
                .limit(limit)
                .offset(offset)
            )
            return [_as_row(n, num, name) for n, num, name in s.execute(stmt)]

    def counts(self) -> dict[str, int]:
        """Anyone who may read orders: how many notifications are in each status."""
        self.ctx.actor.require(READ_PERMISSION, "read notifications")
        out = {st.value: 0 for st in NotificationStatus}
        with read_session(self.ctx.engine) as s:
            for st, n in s.execute(
                select(col(Notification.status), func.count()).group_by(col(Notification.status))
            ):
                out[st] = int(n)
        return out

    def get(self, notification_id: int) -> NotificationRow:
        """Anyone who may read orders."""
        self.ctx.actor.require(READ_PERMISSION, "read notifications")
        with read_session(self.ctx.engine) as s:
            got = s.execute(_select_rows().where(col(Notification.id) == notification_id)).first()
            if got is None:
                raise NotFound(f"no notification #{notification_id}")
            return _as_row(*got)

    # -- changes --------------------------------------------------------------------

    def retry(self, notification_id: int) -> NotificationRow:
        """Agents and admins: a failed (or skipped) notification goes back to the
        queue, due now, with a fresh count of attempts. Its Message-ID stays."""
        self.ctx.actor.require(WRITE_PERMISSION, "retry notifications")
        now = self.ctx.now()
        with write_session(self.ctx.engine) as s:
            n = s.get(Notification, notification_id)
            if n is None:
                raise NotFound(f"no notification #{notification_id}")
            if n.status not in (NotificationStatus.FAILED, NotificationStatus.SKIPPED):
                raise RuleViolation(
                    f"notification #{notification_id} is {n.status}; only failed or skipped "
                    "ones can be retried (resend makes a new copy)"
                )
            self._sendable(s, n.customer_id, n.template)
            before = _snap(n)
            n.status = NotificationStatus.QUEUED.value
            n.attempts = 0
            n.next_attempt_at = now
            n.last_error = None
            n.claimed_at = n.claimed_by = None
            self._note(s, n, rules.EVENT_QUEUED, f"Email queued again: {rules.title(n.template)}")
            record_audit(
                s, self.ctx, "notification.retry", "notification", n.id or 0, before, _snap(n)
            )
        return self.get(notification_id)

    def resend(self, notification_id: int) -> NotificationRow:
        """Agents and admins: a new queued copy of a sent, failed or skipped
        notification (same template and facts, a new Message-ID, to the
        customer's current address)."""
        self.ctx.actor.require(WRITE_PERMISSION, "resend notifications")
        now = self.ctx.now()
        with write_session(self.ctx.engine) as s:
            src = s.get(Notification, notification_id)
            if src is None:
                raise NotFound(f"no notification #{notification_id}")
            if src.status in (NotificationStatus.QUEUED, NotificationStatus.SENDING):
                raise RuleViolation(
                    f"notification #{notification_id} is {src.status}: it is about to be sent"
                )
            to = self._sendable(s, src.customer_id, src.template)
            n = Notification(
                order_id=src.order_id,
                customer_id=src.customer_id,
                kind="resend",
                template=src.template,
                to_addr=to,
                subject=src.subject if src.template == FREE_MESSAGE else None,
                body_text=src.body_text,
                context={**(src.context or {}), "resend_of": src.id},
                status=NotificationStatus.QUEUED.value,
                next_attempt_at=now,
                message_id=new_message_id(policy_of(self.ctx.settings).domain),
                created_at=now,
                created_by=self.ctx.actor.label,
            )
            s.add(n)
            s.flush()
            self._note(
                s,
                n,
                rules.EVENT_QUEUED,
                f"Email queued: {rules.title(n.template)} (resend of #{src.id})",
            )
            record_audit(
                s, self.ctx, "notification.resend", "notification", n.id or 0, None, _snap(n)
            )
            new_id = n.id or 0
        return self.get(new_id)

    def compose(
        self, order_ref: str | int, subject: str, body: str, *, expected_version: int | None = None
    ) -> NotificationRow:
        """Agents and admins: queue a free message to the order's customer
        (subject + body as written, followed by the order summary). With
        ``expected_version`` it is refused (Conflict) when the order changed
        since the writer read it. The order's version does not change."""
        self.ctx.actor.require(WRITE_PERMISSION, "write to customers")
        subject_c, body_c = clean_subject(subject), clean_body(body)
        now = self.ctx.now()
        with write_session(self.ctx.engine) as s:
            order = _find_order(s, order_ref)
            if expected_version is not None and expected_version != order.version:
                raise Conflict(
                    f"{order.number} was changed by someone else (you saw version "
                    f"{expected_version}, it is now {order.version}); reload and retry"
                )
            to = self._sendable(s, order.customer_id, FREE_MESSAGE)
            n = Notification(
                order_id=order.id,
                customer_id=order.customer_id,
                kind="message",
                template=FREE_MESSAGE,
                to_addr=to,
                subject=subject_c,
                body_text=body_c,
                context={"event": "message"},
                status=NotificationStatus.QUEUED.value,
                next_attempt_at=now,
                message_id=new_message_id(policy_of(self.ctx.settings).domain),
                created_at=now,
                created_by=self.ctx.actor.label,
            )
            s.add(n)
            s.flush()
            self._note(s, n, rules.EVENT_MESSAGE, f"Message queued to {to}: {subject_c}")
            record_audit(
                s, self.ctx, "notification.compose", "notification", n.id or 0, None, _snap(n)
            )
            new_id = n.id or 0
        return self.get(new_id)

    def compose_draft(self, order_ref: str | int) -> tuple[str, str]:
        """Agents and admins: the subject and body the compose dialog starts
        from (template ``free_message``'s draft blocks, with the order's details)."""
        self.ctx.actor.require(WRITE_PERMISSION, "write to customers")
        with read_session(self.ctx.engine) as s:
            order = _find_order(s, order_ref)
            ctx = render_context(s, order, {"event": "message"}, self.settings)
        t = self.templates()
        try:
            subject = t.render_block(FREE_MESSAGE, "draft_subject", ctx)
            body = t.render_block(FREE_MESSAGE, "draft_body", ctx)
        except TemplateProblem as exc:
            raise RuleViolation(f"template problem: {exc}") from None
        return " ".join(subject.split()), body + "\n"

    # -- by hand, for many orders (bulk NOTIFY) -----------------------------------------

    def notify_orders(
        self,
        order_ids: Sequence[int],
        template: str,
        *,
        subject: str | None = None,
        body: str | None = None,
    ) -> BatchOutcome:
        """Agents and admins: queue ``template`` for these orders in one
        transaction (see ``notify_in``)."""
        self.ctx.actor.require(WRITE_PERMISSION, "email customers")
        subject_c, body_c = self.check_template_request(template, subject, body)
        with write_session(self.ctx.engine) as s:
            targets = load_targets(s, list(order_ids))
            return self.notify_in(s, targets, template=template, subject=subject_c, body=body_c)

    def check_template_request(
        self, template: str, subject: str | None, body: str | None
    ) -> tuple[str | None, str | None]:
        """InvalidInput unless ``template`` can be sent by hand; the cleaned
        subject and body (required for free_message, refused otherwise)."""
        if template not in rules.TEMPLATE_TITLES:
            raise InvalidInput(
                f"unknown template {template!r} (one of: {', '.join(rules.TEMPLATES)})"
            )
        if template == FREE_MESSAGE:
            return clean_subject(subject), clean_body(body)
        if subject or body:
            raise InvalidInput("a subject and body go only with the free_message template")
        return None, None

    def notify_in(
        self,
        s: Session,
        targets: Sequence[OrderTarget],
        *,
        template: str,
        subject: str | None = None,
        body: str | None = None,
        run_id: str | None = None,
    ) -> BatchOutcome:
        """Queue ``template`` for each of ``targets`` inside the caller's
        transaction (bulk NOTIFY; inputs checked by ``check_template_request``).
        Skips, with the reason: orders the template does not fit
        (domain ``template_problem``), customers opted out or without a usable
        address, and orders that already have this template queued or sent
        (same subject, for free messages), so running it again changes nothing
        more. Writes the rows, a timeline event and an audit entry per order;
        order versions do not change."""
        out = BatchOutcome()
        if not targets:
            return out
        conn = s.connection()
        ids = [t.id for t in targets]
        who: dict[int, tuple[int, str, bool]] = {}
        have: set[int] = set()
        returns: set[int] = set()
        n_c = _N.c
        for i in range(0, len(ids), _IN_CHUNK):
            chunk = ids[i : i + _IN_CHUNK]
            who.update(_customers_of(conn, chunk))
            dup = select(n_c.order_id).where(
                n_c.order_id.in_(chunk),
                n_c.template == template,
                n_c.status.in_(
                    [
                        NotificationStatus.QUEUED.value,
                        NotificationStatus.SENDING.value,
                        NotificationStatus.SENT.value,
                    ]
                ),
            )
            if template == FREE_MESSAGE:
                dup = dup.where(n_c.subject == subject)
            have.update(conn.execute(dup).scalars())
            if template == "return_authorized":
                r = table_of(Return)
                returns.update(
                    conn.execute(
                        select(r.c.order_id).where(
                            r.c.order_id.in_(chunk), r.c.status == "authorized"
                        )
                    ).scalars()
                )
        now = self.ctx.now()
        actor = self.ctx.actor.label
        new_ids = message_ids(policy_of(self.ctx.settings).domain)
        rows: list[dict[str, Any]] = []
        events: list[EventRow] = []
        audits: list[AuditRow] = []
        for t in targets:
            problem = rules.template_problem(template, t.state())
            if problem is None and template == "return_authorized" and t.id not in returns:
                problem = "no authorised return"
            if problem is None and t.id in have:
                problem = f"{rules.title(template).lower()} already queued or sent"
            cid, email, opted_out = who.get(t.id, (0, "", False))
            to, skip = _recipient(email, opted_out)
            problem = problem or skip
            if problem:
                out.skipped.append((t, problem))
                continue
            context: dict[str, Any] = {"event": "bulk" if run_id else "manual"}
            if run_id:
                context["bulk_run"] = run_id
            row = _row(
                order_id=t.id,
                customer_id=cid,
                kind="bulk" if run_id else "manual",
                template=template,
                to_addr=to,
                subject=subject,
                body_text=body,
                context=context,
                next_attempt_at=now,
                message_id=next(new_ids),
                created_at=now,
                created_by=actor,
            )
            rows.append(row)
            data: dict[str, Any] = {"template": template, "message_id": row["message_id"]}
            if run_id:
                data["bulk_run"] = run_id
            events.append(
                EventRow(
                    t.id,
                    now,
                    rules.EVENT_QUEUED,
                    actor,
                    f"Email queued: {rules.title(template)}",
                    data,
                )
            )
            audits.append(
                AuditRow(
                    now,
                    actor,
                    "notification.queue",
                    "order",
                    t.number,
                    None,
                    {"template": template, "to": to, **({"bulk_run": run_id} if run_id else {})},
                )
            )
            out.changed.append(t)
        if rows:
            executemany(conn, _N.insert(), rows)
            record_events(s, events)
            record_audits(s, audits)
        return out

    # -- start-up check -----------------------------------------------------------------

    def check(self) -> list[str]:
        """Anyone: render every template (package + overrides) with sample data;
        one line per problem, empty when all is well. Also checks the mail settings."""
        problems = self.templates().check()
        m = self.settings.mail
        if m.backend == "smtp" and not m.host:
            problems.append("mail: backend smtp needs mail.host")
        _name, addr = parseaddr(m.from_addr)
        local, _, dom = addr.partition("@")
        if not local or not dom or " " in addr:
            problems.append(f"mail: from_addr {m.from_addr!r} is not an email address")
        return problems

    # -- helpers -------------------------------------------------------------------------

    def _sendable(self, s: Session, customer_id: int, template: str) -> str:
        """The customer's address for a hand-made email, or RuleViolation saying why not."""
        c = s.get(Customer, customer_id)
        if c is None:
            raise NotFound(f"no customer #{customer_id}")
        to, skip = _recipient(c.email, c.no_transactional_email)
        if skip:
            raise RuleViolation(f"cannot email {c.name}: {skip}")
        return to

    def _note(self, s: Session, n: Notification, kind: str, message: str) -> None:
        if n.order_id is None:
            return
        record_events(
            s,
            [
                EventRow(
                    n.order_id,
                    self.ctx.now(),
                    kind,
                    self.ctx.actor.label,
                    message,
                    {"notification": n.id, "template": n.template},
                )
            ],
        )


def _parse_status(status: str) -> NotificationStatus:
    try:
        return NotificationStatus(status.strip().lower())
    except ValueError:
        allowed = ", ".join(st.value for st in NotificationStatus)
        raise InvalidInput(f"unknown notification status {status!r} (one of: {allowed})") from None


def _snap(n: Notification) -> dict[str, Any]:
    return {
        "order_id": n.order_id,
        "template": n.template,
        "to": n.to_addr,
        "status": n.status,
        "attempts": n.attempts,
        "message_id": n.message_id,
        "subject": n.subject,
    }


# -- what a template sees ---------------------------------------------------------------


def render_context(
    s: Session, order: Order, context: dict[str, Any], settings: Settings
) -> dict[str, Any]:
    """The template context for ``order`` as it is now, plus what the
    notification's ``context`` recorded (see mail.templates.sample_context)."""
    customer = s.get(Customer, order.customer_id)
    assert customer is not None
    lines = list(
        s.execute(
            select(OrderLine).where(col(OrderLine.order_id) == order.id).order_by(col(OrderLine.id))
        ).scalars()
    )
    ctx = blank_context()
    ctx["event"] = dict(context)
    ctx["shop"] = {"name": SHOP_NAME, "from_addr": settings.mail.from_addr}
    ctx["locale"] = customer.locale or "en_US"
    ctx["customer"] = {"name": customer.name, "email": customer.email, "locale": customer.locale}
    ctx["order"] = {
        **order_snapshot(order),
        "number": order.number,
        "placed_at": order.placed_at,
        "currency": order.currency,
        "tax_inclusive": order.tax_inclusive,
        "subtotal": order.subtotal,
        "discount": order.discount,
        "shipping": order.shipping,
        "tax": order.tax,
        "item_count": order.item_count,
        "has_physical": order.has_physical,
        "shipping_address": dict(order.shipping_address or {}),
    }
    ctx["lines"] = [
        {
            "sku": ln.sku,
            "name": ln.name,
            "quantity": ln.quantity,
            "unit_price": ln.unit_price,
            "line_total": ln.line_total,
            "kind": ln.kind,
        }
        for ln in lines
    ]
    carrier, tracking = context.get("carrier"), context.get("tracking")
    if not (carrier and tracking):
        sh = s.execute(
            select(Shipment)
            .where(col(Shipment.order_id) == order.id)
            .order_by(col(Shipment.id).desc())
            .limit(1)
        ).scalar_one_or_none()
        if sh is not None:
            carrier, tracking = sh.carrier, sh.tracking_number
    if carrier and tracking:
        ctx["shipment"] = {
            "carrier": carrier,
            "tracking": tracking,
            "tracking_url": rules.tracking_url(carrier, tracking),
        }
    if isinstance(context.get("refund"), int):
        r = s.get(Refund, context["refund"])
        if r is not None:
            ctx["refund"] = {"id": r.id, "amount": r.amount, "reason": r.reason}
    ret = None
    if isinstance(context.get("return"), int):
        ret = s.get(Return, context["return"])
    elif context.get("event") in ("bulk", "manual"):
        ret = s.execute(
            select(Return)
            .where(col(Return.order_id) == order.id, col(Return.status) == "authorized")
            .order_by(col(Return.id).desc())
            .limit(1)
        ).scalar_one_or_none()
    if ret is not None:
        names = {ln.sku: ln.name for ln in lines}
        ctx["return"] = {
            "id": ret.id,
            "note": ret.decision_note,
            "lines": [
                {
                    "sku": item.get("sku"),
                    "name": names.get(str(item.get("sku")), item.get("sku")),
                    "quantity": item.get("quantity"),
                }
                for item in ret.lines or []
            ],
        }
    if order.cancel_reason:
        ctx["cancel_reason"] = order.cancel_reason.replace("_", " ")
    return ctx


# -- delivery -------------------------------------------------------------------------------


def default_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class _Claim:
    id: int
    order_id: int | None
    template: str
    to_addr: str
    message_id: str
    attempts: int
    token: str


class MailSender:
    """Delivers due notifications (see the module docstring for the guarantee).

    ``deliver_due`` claims up to ``limit`` rows, sends each through the backend
    and commits its outcome; ``run_once`` does the same in a thread (for the
    TUI's worker), ``watch`` repeats it until ``stop`` is set.
    """

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        clock: Callable[[], datetime] = utcnow,
        *,
        backend: MailBackend | None = None,
        holder: str | None = None,
    ) -> None:
        self.ctx = Context(engine, SYSTEM, settings, clock)
        self.settings = settings
        self.backend = backend or backend_from_settings(settings)
        self.templates = Templates(settings.templates_dir())
        self.holder = holder or default_holder()
        self.lease = timedelta(seconds=settings.notifications.lease_s)
        self.max_attempts = settings.notifications.max_attempts

    @property
    def engine(self) -> Engine:
        return self.ctx.engine

    # -- one run ---------------------------------------------------------------------------

    def deliver_due(self, limit: int = 100) -> DeliveryReport:
        report = DeliveryReport()
        claims = self._claim(limit)
        try:
            for claim in claims:
                self._deliver(claim, report)
        finally:
            self.backend.close()
        return report

    async def run_once(self, limit: int = 100) -> DeliveryReport:
        """``deliver_due`` in a thread: database and SMTP never block the event loop."""
        return await asyncio.to_thread(self.deliver_due, limit)

    async def watch(
        self,
        interval: float,
        *,
        stop: asyncio.Event,
        on_report: Callable[[DeliveryReport], None] | None = None,
        sleep: Callable[[float], Awaitable[Any]] | None = None,
    ) -> None:
        """Run until ``stop`` is set, one run every ``interval`` seconds (at once
        again while a run finds a full batch)."""
        while not stop.is_set():
            report = await self.run_once()
            if on_report is not None:
                on_report(report)
            if report.total >= 100:
                continue
            if sleep is not None:
                await sleep(interval)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)

    def due_count(self) -> int:
        """How many notifications are due now (queued and due, or a lapsed claim)."""
        now = self.ctx.now()
        with read_session(self.engine) as s:
            return int(
                s.execute(select(func.count()).select_from(_N).where(self._due(now))).scalar_one()
            )

    # -- steps -----------------------------------------------------------------------------

    def _due(self, now: datetime) -> Any:
        c = _N.c
        return or_(
            and_(c.status == NotificationStatus.QUEUED.value, c.next_attempt_at <= now),
            and_(c.status == NotificationStatus.SENDING.value, c.claimed_at <= now - self.lease),
        )

    def _claim(self, limit: int) -> list[_Claim]:
        """Take up to ``limit`` due rows: one guarded UPDATE queued → sending
        (or a lapsed claim renewed), so no other sender takes them."""
        now = self.ctx.now()
        token = f"{self.holder}:{uuid.uuid4().hex[:8]}"
        c = _N.c
        with write_session(self.engine) as s:
            conn = s.connection()
            ids = list(
                conn.execute(
                    select(c.id)
                    .where(self._due(now))
                    .order_by(c.next_attempt_at, c.id)
                    .limit(limit)
                ).scalars()
            )
            if not ids:
                return []
            conn.execute(
                _N.update()
                .where(c.id.in_(ids), self._due(now))
                .values(
                    status=NotificationStatus.SENDING.value,
                    claimed_at=now,
                    claimed_by=token,
                    attempts=c.attempts + 1,
                )
            )
            rows = conn.execute(
                select(c.id, c.order_id, c.template, c.to_addr, c.message_id, c.attempts)
                .where(c.id.in_(ids), c.claimed_by == token)
                .order_by(c.id)
            ).all()
        return [_Claim(*r, token=token) for r in rows]

    def _deliver(self, claim: _Claim, report: DeliveryReport) -> None:
        try:
            built = self._build(claim)
        except TemplateProblem as exc:
            self._record_failed(claim, f"template error: {exc}", report)
            return
        except Exception as exc:  # noqa: BLE001 - one bad row must not stop the run
            self._record_retry(claim, f"could not build the email: {exc}", report)
            return
        if isinstance(built, str):
            self._record_skipped(claim, built, report)
            return
        problem = rules.address_problem(claim.to_addr)
        if problem:
            self._record_failed(claim, problem, report)
            return
        try:
            self.backend.send(built)
        except MailError as exc:
            if exc.permanent:
                self._record_failed(claim, exc.message, report)
            else:
                self._record_retry(claim, exc.message, report)
            return
        self._record_sent(claim, str(built["Subject"]), report)

    def _build(self, claim: _Claim) -> EmailMessage | str:
        """The email to send, or why it is skipped now (the customer opted out
        since it was queued)."""
        with read_session(self.engine) as s:
            n = s.get(Notification, claim.id)
            assert n is not None
            customer = s.get(Customer, n.customer_id)
            assert customer is not None
            if customer.no_transactional_email:
                return rules.OPTED_OUT
            order = s.get(Order, n.order_id) if n.order_id is not None else None
            if order is None:
                raise TemplateProblem(f"notification #{n.id} has no order to describe")
            ctx = render_context(s, order, dict(n.context or {}), self.settings)
            if n.template == FREE_MESSAGE:
                ctx["message"] = {"subject": n.subject or "", "body": n.body_text or ""}
            headers = {"X-Pulse-Order": order.number, "X-Pulse-Notification": str(n.id)}
            if n.template != FREE_MESSAGE:
                headers["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies
        rendered = self.templates.render(n.template, ctx)
        return build_message(
            rendered,
            from_addr=self.settings.mail.from_addr,
            to_addr=claim.to_addr,
            to_name=customer.name,
            message_id=claim.message_id,
            date=self.ctx.now(),
            headers=headers,
        )

    def _finish(
        self,
        s: Session,
        claim: _Claim,
        values: dict[str, Any],
    ) -> bool:
        """Commit an outcome if the claim is still ours (a lapsed claim taken by
        another sender is theirs to record)."""
        c = _N.c
        res = cast(
            "CursorResult[Any]",
            s.connection().execute(
                _N.update()
                .where(
                    c.id == claim.id,
                    c.status == NotificationStatus.SENDING.value,
                    c.claimed_by == claim.token,
                )
                .values(claimed_by=None, **values)
            ),
        )
        return res.rowcount == 1

    def _timeline(
        self,
        s: Session,
        claim: _Claim,
        report: DeliveryReport,
        kind: str,
        message: str,
        action: str,
        after: dict[str, Any],
    ) -> None:
        now = self.ctx.now()
        if claim.order_id is not None:
            report.orders.add(claim.order_id)
            record_events(
                s,
                [
                    EventRow(
                        claim.order_id,
                        now,
                        kind,
                        SYSTEM.label,
                        message,
                        {
                            "notification": claim.id,
                            "template": claim.template,
                            "message_id": claim.message_id,
                        },
                    )
                ],
            )
        record_audit(s, self.ctx, action, "notification", claim.id, None, after)

    def _record_sent(self, claim: _Claim, subject: str, report: DeliveryReport) -> None:
        now = self.ctx.now()
        with write_session(self.engine) as s:
            if self._finish(
                s,
                claim,
                {
                    "status": NotificationStatus.SENT.value,
                    "sent_at": now,
                    "subject": subject,
                    "last_error": None,
                },
            ):
                self._timeline(
                    s,
                    claim,
                    report,
                    rules.EVENT_SENT,
                    f"Email sent to {claim.to_addr}: {subject}",
                    "notification.sent",
                    {"status": "sent", "attempts": claim.attempts},
                )
        report.sent += 1

    def _record_failed(self, claim: _Claim, reason: str, report: DeliveryReport) -> None:
        with write_session(self.engine) as s:
            if self._finish(
                s, claim, {"status": NotificationStatus.FAILED.value, "last_error": reason[:1000]}
            ):
                self._timeline(
                    s,
                    claim,
                    report,
                    rules.EVENT_FAILED,
                    f"Email failed ({rules.title(claim.template)}) to {claim.to_addr}: {reason}",
                    "notification.failed",
                    {"status": "failed", "attempts": claim.attempts, "error": reason},
                )
        report.failed += 1
        report.errors.append(f"#{claim.id} to {claim.to_addr}: failed: {reason}")

    def _record_retry(self, claim: _Claim, reason: str, report: DeliveryReport) -> None:
        if rules.should_give_up(claim.attempts, self.max_attempts):
            self._record_failed(claim, f"gave up after {claim.attempts} attempts: {reason}", report)
            return
        wait = rules.backoff(claim.attempts)
        with write_session(self.engine) as s:
            self._finish(
                s,
                claim,
                {
                    "status": NotificationStatus.QUEUED.value,
                    "next_attempt_at": self.ctx.now() + wait,
                    "last_error": reason[:1000],
                },
            )
        report.retried += 1
        report.errors.append(
            f"#{claim.id} to {claim.to_addr}: {reason} (retrying in {int(wait.total_seconds())} s)"
        )

    def _record_skipped(self, claim: _Claim, reason: str, report: DeliveryReport) -> None:
        with write_session(self.engine) as s:
            if (
                self._finish(
                    s, claim, {"status": NotificationStatus.SKIPPED.value, "last_error": reason}
                )
                and claim.order_id is not None
            ):
                report.orders.add(claim.order_id)
                record_events(
                    s,
                    [
                        EventRow(
                            claim.order_id,
                            self.ctx.now(),
                            rules.EVENT_SKIPPED,
                            SYSTEM.label,
                            rules.skipped_message(reason),
                            {"notification": claim.id, "template": claim.template},
                        )
                    ],
                )
        report.skipped += 1


__all__ = [
    "DeliveryReport",
    "MailSender",
    "NOTIFY_PERMISSION",
    "NotificationRow",
    "NotificationService",
    "READ_PERMISSION",
    "WRITE_PERMISSION",
    "enqueue_for_event",
    "enqueue_for_rows",
    "render_context",
]
