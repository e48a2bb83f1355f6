"""The schema: SQLModel tables for ARCHITECTURE.md's data model.

No business rules live here. Money columns are integer minor units with the
currency beside them; statuses are stored as their string values.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class Operator(SQLModel, table=True):
    __tablename__ = "operators"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(unique=True, index=True)
    display_name: str
    role: str  # domain.permissions.Role value
    unix_user: str | None = Field(default=None, unique=True)
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)


class Customer(SQLModel, table=True):
    __tablename__ = "customers"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True)
    email: str = Field(index=True)
    phone: str | None = None
    company: str | None = None
    locale: str = "en_US"
    created_at: datetime = Field(default_factory=utcnow)
    no_transactional_email: bool = False  # notifications are skipped, with a timeline note


class Address(SQLModel, table=True):
    __tablename__ = "addresses"

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customers.id", index=True)
    kind: str  # billing | shipping
    name: str
    line1: str
    line2: str | None = None
    city: str
    postal_code: str | None = None
    region: str | None = None
    country: str  # ISO 3166-1 alpha-2


class Product(SQLModel, table=True):
    __tablename__ = "products"

    id: int | None = Field(default=None, primary_key=True)
    sku: str = Field(unique=True, index=True)
    name: str
    kind: str = "physical"  # physical | digital
    unit_price: int  # minor units
    currency: str
    tax_rate_bp: int = 0
    stock_on_hand: int = 0
    stock_reserved: int = 0
    active: bool = True


class Order(SQLModel, table=True):
    __tablename__ = "orders"
    __table_args__ = (
        # ids ascend with placed_at, so "newest first" is id order: every list
        # index ends in id for keyset pagination.
        Index("ix_orders_placed", "placed_at", "id"),
        Index("ix_orders_status", "status", "id"),
        Index("ix_orders_payment", "payment_status", "id"),
        Index("ix_orders_fulfillment", "fulfillment_status", "id"),
        Index("ix_orders_customer", "customer_id", "id"),
        Index("ix_orders_country", "country", "id"),
        Index("ix_orders_total", "total", "id"),
        Index("ix_orders_hold", "on_hold", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(unique=True)
    customer_id: int = Field(foreign_key="customers.id")
    status: str
    payment_status: str
    fulfillment_status: str
    currency: str
    tax_inclusive: bool = False
    subtotal: int = 0
    discount: int = 0
    shipping: int = 0
    tax: int = 0
    total: int = 0
    paid: int = 0
    refunded: int = 0
    placed_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    country: str  # shipping country, ISO 3166-1 alpha-2 (filterable)
    billing_address: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    shipping_address: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    on_hold: bool = False
    hold_reason: str | None = None
    cancel_reason: str | None = None
    has_physical: bool = True
    item_count: int = 0  # units, for the list's items summary
    version: int = 1  # optimistic locking: every write bumps it


class OrderTag(SQLModel, table=True):
    __tablename__ = "order_tags"
    __table_args__ = (Index("ix_order_tags_tag", "tag", "order_id"),)

    order_id: int = Field(foreign_key="orders.id", primary_key=True)
    tag: str = Field(primary_key=True)


class OrderLine(SQLModel, table=True):
    __tablename__ = "order_lines"
    __table_args__ = (Index("ix_order_lines_sku", "sku", "order_id"),)

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="orders.id", index=True)
    product_id: int = Field(foreign_key="products.id")
    sku: str
    name: str
    kind: str = "physical"
    quantity: int
    unit_price: int
    tax_rate_bp: int = 0
    discount: int = 0
    tax: int = 0
    line_total: int = 0
    qty_fulfilled: int = 0
    qty_returned: int = 0
    qty_refunded: int = 0


class Payment(SQLModel, table=True):
    __tablename__ = "payments"

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="orders.id", index=True)
    gateway: str  # stripe | paypal | bank_transfer | crypto | manual
    method: str  # card | wallet | bank_transfer | crypto
    gateway_ref: str | None = Field(default=None, index=True)
    status: str  # domain PaymentStatus value
    currency: str
    amount: int
    captured: int = 0
    refunded: int = 0
    card_brand: str | None = None
    card_last4: str | None = None
    wallet: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    last_synced_at: datetime | None = None


class Refund(SQLModel, table=True):
    __tablename__ = "refunds"
    __table_args__ = (Index("ix_refunds_status", "status", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="orders.id", index=True)
    payment_id: int | None = Field(default=None, foreign_key="payments.id")
    amount: int
    currency: str
    reason: str
    status: str  # requested | approved | pending | succeeded | failed | cancelled
    idempotency_key: str = Field(unique=True)
    gateway_ref: str | None = None
    # [{line_id, sku, quantity, amount, tax, restock}] — what the refund covers
    lines: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    failure_reason: str | None = None
    created_by: str
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    shipping: int = 0  # shipping included in amount
    tax: int = 0  # tax share included in amount
    note: str | None = None
    return_id: int | None = Field(default=None, foreign_key="returns.id")
    approved_by: str | None = None
    approved_at: datetime | None = None
    # Sending: status goes approved -> pending with sent_at set, in one guarded
    # UPDATE, before the gateway is called; attempt grows only after the
    # gateway said "failed" (a new attempt may use a new idempotency key).
    attempt: int = 1
    sent_at: datetime | None = None


class Return(SQLModel, table=True):
    """A return authorisation (RMA): goods asked back, then received, then
    refunded or exchanged. ``lines``: [{line_id, sku, quantity, received,
    condition}]."""

    __tablename__ = "returns"

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="orders.id", index=True)
    status: str = Field(index=True)  # domain.refunds.ReturnStatus
    reason: str
    note: str | None = None
    lines: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    created_by: str
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    decided_by: str | None = None
    decision_note: str | None = None
    received_by: str | None = None
    refund_id: int | None = None
    exchange_order_id: int | None = Field(default=None, foreign_key="orders.id")


class Shipment(SQLModel, table=True):
    __tablename__ = "shipments"

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="orders.id", index=True)
    carrier: str
    tracking_number: str = Field(index=True)
    status: str = "shipped"  # shipped | delivered
    shipped_at: datetime = Field(default_factory=utcnow)
    delivered_at: datetime | None = None
    lines: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))


class OrderEvent(SQLModel, table=True):
    __tablename__ = "order_events"
    __table_args__ = (Index("ix_order_events_order", "order_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="orders.id")
    at: datetime = Field(default_factory=utcnow)
    kind: str
    actor: str
    message: str
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_entity", "entity", "entity_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow)
    actor: str
    action: str
    entity: str
    entity_id: str
    before: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    after: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


class OrderCount(SQLModel, table=True):
    """Per-status order counts maintained by SQLite triggers (see migration).

    Keys: every OrderStatus value, "all" and "on_hold". A naive GROUP BY over a
    million orders costs ~50 ms; reading this table costs microseconds.
    """

    __tablename__ = "order_counts"
    __table_args__ = (UniqueConstraint("key"),)

    key: str = Field(primary_key=True)
    n: int = 0


class SyncLease(SQLModel, table=True):
    """Who runs the payment sync now: one row per lease name, held until expiry.

    A process takes the lease when the row is free or expired, renews it while
    it works, and clears it when done; so one sync runs at a time across
    processes (TUI workers and `pulse sync` alike).
    """

    __tablename__ = "sync_leases"

    name: str = Field(primary_key=True)
    holder: str | None = None
    acquired_at: datetime | None = None
    expires_at: datetime | None = None


class GatewaySyncState(SQLModel, table=True):
    """Per gateway: the incremental cursor and how the last sync went."""

    __tablename__ = "gateway_sync_state"

    gateway: str = Field(primary_key=True)
    cursor: str | None = None
    last_run_at: datetime | None = None
    last_success_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    error_count: int = 0  # errors in the last run


class Notification(SQLModel, table=True):
    """One email to a customer: the outbox row and its delivery state.

    Written in the transaction of the change that triggers it (services.audit's
    hook), then delivered by services.notifications.MailSender: queued →
    sending (claimed, ``claimed_at``) → sent | failed, or back to queued with
    ``next_attempt_at`` after a temporary failure; ``skipped`` when the customer
    opted out or has no usable address. ``message_id`` is chosen when queued
    and never changes, so every copy of this email carries the same one.
    Templates render at send time from the order as it is then plus
    ``context`` (what the triggering event knew: carrier, tracking, refund...);
    ``subject``/``body_text`` are stored for free messages (and the subject
    once rendered).
    """

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_due", "status", "next_attempt_at"),
        Index("ix_notifications_order", "order_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    # CASCADE: an email about an order that no longer exists has nothing to say.
    order_id: int | None = Field(default=None, foreign_key="orders.id", ondelete="CASCADE")
    customer_id: int = Field(foreign_key="customers.id")
    kind: str  # what queued it: an event kind (placed, shipped...), "message", "bulk", "resend"
    template: str
    to_addr: str
    subject: str | None = None
    body_text: str | None = None
    context: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    status: str = "queued"  # queued | sending | sent | failed | skipped
    attempts: int = 0
    next_attempt_at: datetime | None = None
    claimed_at: datetime | None = None
    claimed_by: str | None = None
    last_error: str | None = None
    message_id: str = Field(unique=True)
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
    created_by: str
