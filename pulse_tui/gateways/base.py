"""What every payment gateway adapter offers, as plain data.

Adapters speak HTTP to one provider and translate its payloads into the
dataclasses below. They never touch the database: the sync worker hands their
results to ``services.payments``, which applies them through the order rules.

Money is an int of minor units plus an upper-case ISO 4217 code, as everywhere
else; a provider that sends decimal strings (PayPal) is converted here.

Payment methods are ``domain.payments.PaymentMethod``: card (brand and last
four digits only), wallet (``Wallet``: PayPal, Apple Pay, Google Pay), bank
transfer (no adapter: reconciled from statements by services.reconcile) and
crypto.

Crypto is an adapter slot, not an adapter. A crypto provider (a payment
processor that quotes fiat amounts, e.g. an invoice API) plugs in like Stripe
and PayPal, with no change to services or the sync:

- implement every method of ``GatewayAdapter`` below with its own ``name``
  (the gateway column, e.g. ``"crypto_processor"``); the payment is the
  provider's invoice/charge id;
- ``fetch_payment`` / ``list_changes`` return ``PaymentInfo`` with
  ``method="crypto"``, ``amount``/``currency`` in the order's fiat currency
  (never a coin amount), ``status`` PAID only once the provider counts the
  payment as final (its confirmation threshold), UNPAID while unconfirmed,
  FAILED when the invoice expired or was underpaid, and ``order_ref`` from
  the invoice metadata;
- refunds are ``RefundInfo`` like any other; a provider that cannot refund
  raises ``GatewayError(retryable=False)`` from ``create_refund`` so the
  refund is handled by hand;
- every HTTP error becomes ``GatewayError`` with ``retryable`` set for 429,
  5xx, timeouts and garbled bodies (``json_body`` helps), and the adapter is
  registered in ``gateways.sync.build_adapters`` from its config section.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pulse_tui.domain.status import PaymentStatus

# Our refund id travels in the gateway's metadata under this key, so a retry
# can find a refund the gateway made before we heard back (exactly-once money).
REFUND_METADATA_KEY = "pulse_refund_id"
ORDER_METADATA_KEY = "pulse_order"


class GatewayError(Exception):
    """A gateway call failed.

    ``status`` is the HTTP status (None for timeouts and connection errors);
    ``retryable`` says whether the same call may succeed later (429, 5xx,
    network trouble, a garbled body); ``retry_after`` is the provider's own
    hint in seconds, when it gave one.
    """

    def __init__(
        self,
        message: str,
        *,
        gateway: str,
        status: int | None = None,
        code: str | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.gateway = gateway
        self.status = status
        self.code = code
        self.retryable = retryable
        self.retry_after = retry_after

    def __str__(self) -> str:
        where = f"{self.gateway} HTTP {self.status}" if self.status else self.gateway
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class PaymentInfo:
    """What a gateway knows about one payment (a Stripe PaymentIntent, a PayPal order)."""

    gateway: str
    ref: str  # the gateway's id (pi_..., a PayPal order id)
    status: PaymentStatus  # mapped to ours; UNPAID while still pending
    gateway_status: str  # the provider's own word, for the timeline
    amount: int
    currency: str
    captured: int = 0
    refunded: int = 0
    method: str = "card"  # a domain.payments.PaymentMethod value
    card_brand: str | None = None
    card_last4: str | None = None
    wallet: str | None = None
    failure_reason: str | None = None
    order_ref: str | None = None  # our order number, when the gateway carries it
    updated: int = 0  # provider timestamp (unix seconds), orders changes of one payment
    capture_ref: str | None = None  # PayPal capture id / Stripe charge id

    @property
    def pending(self) -> bool:
        return self.status in (PaymentStatus.UNPAID, PaymentStatus.AUTHORIZED)


@dataclass(frozen=True)
class RefundInfo:
    gateway: str
    ref: str
    payment_ref: str
    status: str  # pending | succeeded | failed | cancelled (our Refund.status words)
    amount: int
    currency: str
    refund_id: str | None = None  # ours, read back from the metadata
    failure_reason: str | None = None


@dataclass(frozen=True)
class ChangePage:
    """Payments that changed since a cursor, and the cursor to ask from next time.

    ``cursor`` is opaque to callers; they store it and hand it back. When
    ``has_more`` is true the caller asks again with ``cursor`` at once.
    """

    items: list[PaymentInfo] = field(default_factory=list)
    cursor: str | None = None
    has_more: bool = False


@runtime_checkable
class GatewayAdapter(Protocol):
    """One payment provider. Every method may raise GatewayError."""

    name: str

    async def fetch_payment(self, payment_ref: str) -> PaymentInfo: ...

    async def list_changes(self, since_cursor: str | None) -> ChangePage: ...

    async def create_refund(
        self,
        payment_ref: str,
        amount: int,
        currency: str,
        *,
        idempotency_key: str,
        refund_id: str,
        metadata: dict[str, str] | None = None,
    ) -> RefundInfo: ...

    async def fetch_refund(self, refund_ref: str) -> RefundInfo: ...

    async def list_refunds(self, payment_ref: str) -> list[RefundInfo]: ...

    async def find_refund_by_metadata(self, payment_ref: str, refund_id: str) -> RefundInfo | None:
        """The refund we asked for under ``refund_id``, if the gateway made it."""
        ...


def retry_after_seconds(value: str | None) -> float | None:
    """Parse a Retry-After header (delta seconds, or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from datetime import UTC, datetime
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def mask_secret(secret: str | None) -> str:
    """What may be shown of a credential: never more than its last four characters."""
    if not secret:
        return "(not set)"
    if len(secret) < 12:
        return "****"
    return "****" + secret[-4:]


def json_body(gateway: str, response: Any) -> Any:
    """The decoded JSON of an httpx response, or a retryable GatewayError when garbled."""
    try:
        return response.json()
    except ValueError:
        raise GatewayError(
            "malformed JSON in response",
            gateway=gateway,
            status=response.status_code,
            retryable=True,
        ) from None


__all__ = [
    "ChangePage",
    "GatewayAdapter",
    "GatewayError",
    "ORDER_METADATA_KEY",
    "PaymentInfo",
    "REFUND_METADATA_KEY",
    "RefundInfo",
    "json_body",
    "mask_secret",
    "retry_after_seconds",
]
