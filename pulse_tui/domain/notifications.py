"""Customer notifications as rules: which event sends which email, when to try
again, which failures are final, where a parcel can be tracked.

Pure: no database, no SMTP, no templates. Services and the mail backends ask
these functions so every door and every backend agrees.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from functools import lru_cache
from urllib.parse import quote

from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import (
    CASE_INSENSITIVE_MAILBOX_NAMES,
    DOT_ATOM_TEXT,
    EMAIL_MAX_LENGTH,
)

from .status import OrderState, OrderStatus, PaymentStatus


class NotificationStatus(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"


# The timeline event a service writes → the template it sends. The single source
# of "which events notify" (config ``[notifications] events`` picks a subset).
EVENT_TEMPLATES: dict[str, str] = {
    "placed": "order_confirmation",
    "payment_confirmed": "payment_received",
    "shipped": "shipped",
    "delivered": "delivered",
    "cancelled": "cancelled",
    "refund_succeeded": "refund_issued",
    "return_authorized": "return_authorized",
}

FREE_MESSAGE = "free_message"

# Every template the package ships, with the name operators see.
TEMPLATE_TITLES: dict[str, str] = {
    "order_confirmation": "Order confirmation",
    "payment_received": "Payment received",
    "shipped": "Shipped",
    "delivered": "Delivered",
    "cancelled": "Cancelled",
    "refund_issued": "Refund issued",
    "return_authorized": "Return authorised",
    FREE_MESSAGE: "Message",
}
TEMPLATES: tuple[str, ...] = tuple(TEMPLATE_TITLES)

# Timeline event kinds the notification code writes itself (never notify).
EVENT_SENT = "notification_sent"
EVENT_FAILED = "notification_failed"
EVENT_SKIPPED = "notification_skipped"
EVENT_QUEUED = "notification_queued"
EVENT_MESSAGE = "message_queued"

OPTED_OUT = "customer opted out of transactional email"
NO_ADDRESS = "no email address"


def template_for(event_kind: str, enabled: frozenset[str] | None = None) -> str | None:
    """The template an event sends, or None (not a notifying event, or turned off)."""
    t = EVENT_TEMPLATES.get(event_kind)
    if t is None or (enabled is not None and event_kind not in enabled):
        return None
    return t


def title(template: str) -> str:
    return TEMPLATE_TITLES.get(template, template.replace("_", " ").capitalize())


def skipped_message(reason: str) -> str:
    """The timeline line for a notification that is not sent."""
    return f"Email skipped: {reason}"


# -- addresses ------------------------------------------------------------------


class AddressError(ValueError):
    """Not a usable email address (the message says why)."""


@lru_cache(maxsize=4096)
def normalize_email(address: str) -> str:
    """The address as it should be stored and used, or AddressError.

    Syntax only (no DNS lookup: the desk must work offline and in tests).
    email-validator's answer, reached faster for the common shape (a plain
    ASCII dot-atom before the @, an ASCII domain): the domain half, which is
    most of the library's work and repeats across customers, is checked once
    per domain. tests/domain hold the two paths equal.
    """
    text = (address or "").strip()
    if not text:
        raise AddressError(NO_ADDRESS)
    local, at, domain = text.rpartition("@")
    if (
        at
        and domain.isascii()
        and DOT_ATOM_TEXT.match(local)
        and local.lower() not in CASE_INSENSITIVE_MAILBOX_NAMES
    ):
        host = _ascii_domain(domain)
        if host is not None and max(len(text), len(local) + 1 + len(host)) <= EMAIL_MAX_LENGTH:
            return f"{local}@{host}"
    return _validated(text)


def _validated(text: str) -> str:
    try:
        return str(validate_email(text, check_deliverability=False).normalized)
    except EmailNotValidError as exc:
        raise AddressError(f"invalid email address {text!r}: {exc}") from None


@lru_cache(maxsize=4096)
def _ascii_domain(domain: str) -> str | None:
    """email-validator's normal form of an ASCII domain (None: not valid, or
    not ASCII once normalised; the caller then asks for the whole address)."""
    try:
        checked = validate_email(f"a@{domain}", check_deliverability=False)
    except EmailNotValidError:
        return None
    return str(checked.domain) if checked.domain == checked.ascii_domain else None


def address_problem(address: str | None) -> str | None:
    """Why ``address`` cannot receive email (None: it can)."""
    try:
        normalize_email(address or "")
    except AddressError as exc:
        return str(exc)
    return None


# -- retries --------------------------------------------------------------------

BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=1)


def backoff(attempts: int) -> timedelta:
    """How long to wait after the ``attempts``-th failed try: 30 s, 1, 2, 4, 8,
    16, 32 min, then every hour. Deterministic (one sender per database row,
    so there is no herd to spread with jitter)."""
    n = max(1, attempts)
    if n > 12:  # 30 s × 2^11 is far past the cap already
        return BACKOFF_CAP
    return min(BACKOFF_BASE * (2 ** (n - 1)), BACKOFF_CAP)


def should_give_up(attempts: int, max_attempts: int) -> bool:
    """After a temporary failure: is this the last try? (then: failed)"""
    return attempts >= max_attempts


# -- failures -------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    message: str
    permanent: bool


def smtp_code_is_permanent(code: int) -> bool:
    """RFC 5321: 5yz is a permanent negative reply (never retry the same
    message), 4yz a transient one; anything else is treated as transient."""
    return 500 <= code <= 599


def classify_smtp(code: int, text: str) -> Failure:
    reply = f"{code} {text}".strip()
    if code in (530, 534, 535, 538):
        # Authentication trouble is our configuration, not the recipient: keep
        # the email and try again once an operator fixes the credentials.
        return Failure(f"SMTP authentication failed: {reply}", permanent=False)
    return Failure(reply, permanent=smtp_code_is_permanent(code))


# -- carriers -------------------------------------------------------------------

_TRACKING_URLS: dict[str, str] = {
    "dhl": "https://www.dhl.com/en/express/tracking.html?AWB={n}",
    "ups": "https://www.ups.com/track?tracknum={n}",
    "fedex": "https://www.fedex.com/fedextrack/?trknbr={n}",
    "usps": "https://tools.usps.com/go/TrackConfirmAction?tLabels={n}",
    "royal mail": "https://www.royalmail.com/track-your-item#/tracking-results/{n}",
    "postnl": "https://postnl.nl/tracktrace/?B={n}",
    "japan post": "https://trackings.post.japanpost.jp/services/srv/search/?requestNo1={n}",
    "dpd": "https://tracking.dpd.de/status/en_US/parcel/{n}",
    "gls": "https://gls-group.com/track/{n}",
    "la poste": "https://www.laposte.fr/outils/suivre-vos-envois?code={n}",
    "colissimo": "https://www.laposte.fr/outils/suivre-vos-envois?code={n}",
    "hermes": "https://www.myhermes.de/empfangen/sendungsverfolgung/?trackingNumber={n}",
}


def tracking_url(carrier: str | None, number: str | None) -> str | None:
    """The carrier's public tracking page for ``number`` (None: unknown carrier)."""
    if not carrier or not number:
        return None
    pattern = _TRACKING_URLS.get(" ".join(carrier.lower().split()))
    if pattern is None:
        return None
    return pattern.format(n=quote(number.strip(), safe=""))


# -- bulk notify ----------------------------------------------------------------


def template_problem(template: str, state: OrderState) -> str | None:
    """Why an order in ``state`` should not get ``template`` by hand (bulk
    notify, resend): its facts would not be true yet (None: it may)."""
    if template not in TEMPLATE_TITLES:
        return f"unknown template {template!r} (one of: {', '.join(TEMPLATES)})"
    s, p = state.status, state.payment_status
    if template == "payment_received" and p not in (
        PaymentStatus.PAID,
        PaymentStatus.PARTIALLY_REFUNDED,
        PaymentStatus.REFUNDED,
    ):
        return "not paid"
    if template == "shipped" and s not in (OrderStatus.SHIPPED, OrderStatus.DELIVERED):
        return "not shipped"
    if template == "delivered" and s != OrderStatus.DELIVERED:
        return "not delivered"
    if template == "cancelled" and s != OrderStatus.CANCELLED:
        return "not cancelled"
    if template == "refund_issued" and p not in (
        PaymentStatus.PARTIALLY_REFUNDED,
        PaymentStatus.REFUNDED,
    ):
        return "nothing refunded"
    return None


def message_id(token: str, domain: str) -> str:
    """A Message-ID (RFC 5322) from a unique token: ``<pulse.TOKEN@DOMAIN>``."""
    dom = domain.strip().strip("<>").lower() or "pulse.local"
    return f"<pulse.{token}@{dom}>"


def message_id_domain(from_addr: str) -> str:
    """The domain of the sender address (``Pulse <orders@shop.example>`` →
    ``shop.example``), for Message-IDs."""
    addr = from_addr.rsplit("<", 1)[-1].rstrip(">").strip()
    _, at, dom = addr.rpartition("@")
    return dom.strip() if at and dom.strip() else "pulse.local"
