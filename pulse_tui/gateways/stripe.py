"""Stripe over plain httpx: PaymentIntents, Refunds and Events.

Requests are form-encoded with Stripe's bracket syntax (``metadata[key]=v``,
``expand[]=x``) and authenticated with a Bearer secret key. Lists page with
``starting_after``/``has_more``; real Stripe lists newest first, localstripe
oldest first, so nothing here depends on list order.

Changes since a cursor come from the Events API: the cursor is the newest
event time seen (unix seconds). We ask again from that same second
(``created[gte]``), because events of one second may arrive after we looked;
seeing an event twice is harmless since applying a result is idempotent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from pulse_tui.domain.status import PaymentStatus

from .base import (
    ORDER_METADATA_KEY,
    REFUND_METADATA_KEY,
    ChangePage,
    GatewayError,
    PaymentInfo,
    RefundInfo,
    json_body,
    retry_after_seconds,
)

NAME = "stripe"
DEFAULT_BASE_URL = "https://api.stripe.com"
PAGE_LIMIT = 100
# Event types that change what we know about a PaymentIntent. Asked one type
# per query: real Stripe also takes ``types[]``, localstripe only ``type``.
EVENT_TYPES = (
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.canceled",
    "payment_intent.amount_capturable_updated",
    "payment_intent.processing",
)
REFUND_STATUS = {
    "succeeded": "succeeded",
    "pending": "pending",
    "requires_action": "pending",
    "failed": "failed",
    "canceled": "cancelled",
}


def form_encode(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Stripe's form encoding: nested dicts as ``a[b]``, scalar lists as ``a[]``,
    lists of dicts as ``a[0][b]``; booleans as ``true``/``false``; None left out."""
    out: list[tuple[str, str]] = []
    for key, value in data.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if value is None:
            continue
        if isinstance(value, Mapping):
            out.extend(form_encode(value, name))
        elif isinstance(value, list | tuple):
            for i, item in enumerate(value):
                if isinstance(item, Mapping):
                    out.extend(form_encode(item, f"{name}[{i}]"))
                else:
                    out.append((f"{name}[]", _scalar(item)))
        else:
            out.append((name, _scalar(value)))
    return out


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class StripeAdapter:
    """A Stripe account. ``client`` is shared (the sync worker owns its pool)."""

    name = NAME

    def __init__(
        self, client: httpx.AsyncClient, secret_key: str, base_url: str = DEFAULT_BASE_URL
    ) -> None:
        self._client = client
        self._key = secret_key
        self.base_url = base_url.rstrip("/")

    def __repr__(self) -> str:  # never the key
        return f"StripeAdapter(base_url={self.base_url!r})"

    # -- HTTP ----------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        if not self._key:
            raise GatewayError("no secret key configured", gateway=NAME, code="config")
        headers = {"Authorization": f"Bearer {self._key}"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        try:
            resp = await self._client.request(
                method,
                self.base_url + path,
                params=list(form_encode(params)) if params else None,  # type: ignore[arg-type]
                data=dict(form_encode(data)) if data else None,
                headers=headers,
            )
        except httpx.TimeoutException as exc:
            raise GatewayError(
                f"timed out: {type(exc).__name__}", gateway=NAME, retryable=True
            ) from None
        except httpx.TransportError as exc:
            raise GatewayError(
                f"connection failed: {type(exc).__name__}", gateway=NAME, retryable=True
            ) from None
        if resp.status_code >= 400:
            raise _error(resp)
        body = json_body(NAME, resp)
        if not isinstance(body, dict):
            raise GatewayError("unexpected response shape", gateway=NAME, retryable=True)
        return body

    async def _list(self, path: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Every item of a Stripe list, page by page."""
        items: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            q = {**params, "limit": PAGE_LIMIT}
            if after:
                q["starting_after"] = after
            page = await self._request("GET", path, params=q)
            data = page.get("data")
            if not isinstance(data, list):
                raise GatewayError("list without data", gateway=NAME, retryable=True)
            items.extend(data)
            if not page.get("has_more") or not data:
                return items
            after = str(data[-1]["id"])

    # -- payments ------------------------------------------------------------

    async def fetch_payment(self, payment_ref: str) -> PaymentInfo:
        body = await self._request(
            "GET", f"/v1/payment_intents/{payment_ref}", params={"expand": ["latest_charge"]}
        )
        return payment_from_intent(body)

    async def list_changes(self, since_cursor: str | None) -> ChangePage:
        since = int(since_cursor) if since_cursor else None
        newest: dict[str, tuple[int, int, PaymentInfo]] = {}
        cursor = since or 0
        for rank, etype in enumerate(EVENT_TYPES):
            params: dict[str, Any] = {"type": etype}
            if since is not None:
                params["created"] = {"gte": since}
            for ev in await self._list("/v1/events", params):
                obj = (ev.get("data") or {}).get("object")
                if not isinstance(obj, dict) or obj.get("object") != "payment_intent":
                    continue
                created = int(ev.get("created") or 0)
                cursor = max(cursor, created)
                info = payment_from_intent(obj, updated=created)
                # One PaymentIntent may have several events: keep the latest,
                # and within one second the most final (succeeded ranks first).
                key = (created, -rank)
                if info.ref not in newest or key > newest[info.ref][:2]:
                    newest[info.ref] = (created, -rank, info)
        items = sorted((v[2] for v in newest.values()), key=lambda i: (i.updated, i.ref))
        return ChangePage(items=items, cursor=str(cursor) if cursor else since_cursor)

    # -- refunds -------------------------------------------------------------

    async def create_refund(
        self,
        payment_ref: str,
        amount: int,
        currency: str,
        *,
        idempotency_key: str,
        refund_id: str,
        metadata: dict[str, str] | None = None,
    ) -> RefundInfo:
        # Stripe takes the currency from the charge; ``currency`` is checked by
        # the caller against the payment, not sent.
        body = await self._request(
            "POST",
            "/v1/refunds",
            data={
                "payment_intent": payment_ref,
                "amount": amount,
                "metadata": {**(metadata or {}), REFUND_METADATA_KEY: refund_id},
            },
            idempotency_key=idempotency_key,
        )
        return refund_from_stripe(body, payment_ref)

    async def fetch_refund(self, refund_ref: str) -> RefundInfo:
        return refund_from_stripe(await self._request("GET", f"/v1/refunds/{refund_ref}"))

    async def list_refunds(self, payment_ref: str) -> list[RefundInfo]:
        items = await self._list("/v1/refunds", {"payment_intent": payment_ref})
        return [refund_from_stripe(r, payment_ref) for r in items]

    async def find_refund_by_metadata(self, payment_ref: str, refund_id: str) -> RefundInfo | None:
        for r in await self.list_refunds(payment_ref):
            if r.refund_id == refund_id:
                return r
        return None


# -- payload mapping ---------------------------------------------------------


def intent_status(pi: Mapping[str, Any]) -> PaymentStatus:
    st = pi.get("status")
    if st == "succeeded":
        return PaymentStatus.PAID
    if st == "requires_capture":
        return PaymentStatus.AUTHORIZED
    if st == "canceled":
        return PaymentStatus.FAILED
    if st == "requires_payment_method" and pi.get("last_payment_error"):
        return PaymentStatus.FAILED
    # requires_payment_method (fresh), requires_confirmation, requires_action, processing
    return PaymentStatus.UNPAID


def payment_from_intent(pi: Mapping[str, Any], *, updated: int | None = None) -> PaymentInfo:
    status = intent_status(pi)
    charge = pi.get("latest_charge")
    brand = last4 = None
    refunded = 0
    charge_id: str | None = None
    if isinstance(charge, Mapping):  # expanded (or localstripe's inline object)
        charge_id = charge.get("id")
        refunded = int(charge.get("amount_refunded") or 0)
        card = (charge.get("payment_method_details") or {}).get("card") or {}
        brand, last4 = card.get("brand"), card.get("last4")
    elif isinstance(charge, str):
        charge_id = charge
    failure = None
    if status == PaymentStatus.FAILED:
        err = pi.get("last_payment_error") or {}
        failure = (
            err.get("message")
            or err.get("code")
            or (f"canceled: {pi['cancellation_reason']}" if pi.get("cancellation_reason") else None)
            or str(pi.get("status"))
        )
    metadata = pi.get("metadata") or {}
    amount = int(pi.get("amount") or 0)
    return PaymentInfo(
        gateway=NAME,
        ref=str(pi["id"]),
        status=status,
        gateway_status=str(pi.get("status")),
        amount=amount,
        currency=str(pi.get("currency") or "").upper(),
        captured=int(pi.get("amount_received") or (amount if status == PaymentStatus.PAID else 0)),
        refunded=refunded,
        method="card",
        card_brand=str(brand) if brand else None,
        card_last4=str(last4) if last4 else None,
        failure_reason=failure,
        order_ref=metadata.get(ORDER_METADATA_KEY) if isinstance(metadata, Mapping) else None,
        updated=updated if updated is not None else int(pi.get("created") or 0),
        capture_ref=charge_id,
    )


def refund_from_stripe(r: Mapping[str, Any], payment_ref: str | None = None) -> RefundInfo:
    metadata = r.get("metadata") or {}
    return RefundInfo(
        gateway=NAME,
        ref=str(r["id"]),
        payment_ref=str(r.get("payment_intent") or payment_ref or ""),
        status=REFUND_STATUS.get(str(r.get("status")), "pending"),
        amount=int(r.get("amount") or 0),
        currency=str(r.get("currency") or "").upper(),
        refund_id=metadata.get(REFUND_METADATA_KEY) if isinstance(metadata, Mapping) else None,
        failure_reason=r.get("failure_reason"),
    )


def _error(resp: httpx.Response) -> GatewayError:
    """Stripe's ``{"error": {"type", "code", "message"}}`` as a GatewayError."""
    status = resp.status_code
    message, code = f"HTTP {status}", None
    try:
        err = resp.json().get("error") or {}
        message = err.get("message") or message
        code = err.get("code") or err.get("type")
    except (ValueError, AttributeError):
        pass
    retryable = status == 429 or status >= 500 or status == 409
    return GatewayError(
        message,
        gateway=NAME,
        status=status,
        code=code,
        retryable=retryable,
        retry_after=retry_after_seconds(resp.headers.get("Retry-After")),
    )
