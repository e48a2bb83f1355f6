"""PayPal REST over plain httpx: Orders v2, captures and refunds.

Our payment reference is the PayPal order id. Money arrives as decimal
strings in major units (``{"currency_code": "EUR", "value": "12.50"}``) and
is converted to minor units with the currency's ISO exponent.

Authentication is OAuth2 client credentials (``POST /v1/oauth2/token``); the
token is cached until shortly before it expires and fetched again once when
PayPal answers 401. Refunds carry ``PayPal-Request-Id`` (PayPal's idempotency
header) and our refund id as ``custom_id``.

PayPal has no feed of changed orders in Orders v2, so ``list_changes``
returns nothing and the sync relies on refreshing pending payments.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import httpx

from pulse_tui.domain.money import Money, MoneyError, plain_amount
from pulse_tui.domain.status import PaymentStatus

from .base import ChangePage, GatewayError, PaymentInfo, RefundInfo, json_body, retry_after_seconds

NAME = "paypal"
DEFAULT_BASE_URL = "https://api-m.sandbox.paypal.com"
REFUND_STATUS = {
    "COMPLETED": "succeeded",
    "PENDING": "pending",
    "FAILED": "failed",
    "CANCELLED": "cancelled",
}


class PayPalAdapter:
    name = NAME

    def __init__(
        self,
        client: httpx.AsyncClient,
        client_id: str,
        secret: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._client_id = client_id
        self._secret = secret
        self.base_url = base_url.rstrip("/")
        self._clock = clock
        self._token: str | None = None
        self._token_expires = 0.0

    def __repr__(self) -> str:  # never the secret
        return f"PayPalAdapter(base_url={self.base_url!r}, client_id={self._client_id!r})"

    # -- HTTP ----------------------------------------------------------------

    async def _send(self, method: str, url: str, **kw: Any) -> httpx.Response:
        try:
            return await self._client.request(method, url, **kw)
        except httpx.TimeoutException as exc:
            raise GatewayError(
                f"timed out: {type(exc).__name__}", gateway=NAME, retryable=True
            ) from None
        except httpx.TransportError as exc:
            raise GatewayError(
                f"connection failed: {type(exc).__name__}", gateway=NAME, retryable=True
            ) from None

    async def _access_token(self, *, fresh: bool = False) -> str:
        if not fresh and self._token and self._clock() < self._token_expires:
            return self._token
        resp = await self._send(
            "POST",
            self.base_url + "/v1/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=(self._client_id, self._secret),
            headers={"Accept": "application/json"},
        )
        if resp.status_code >= 400:
            raise _error(resp)
        body = json_body(NAME, resp)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not token:
            raise GatewayError("token response without access_token", gateway=NAME, retryable=True)
        self._token = str(token)
        # Renew a minute early so a token never expires mid-request.
        self._token_expires = self._clock() + max(0, int(body.get("expires_in", 0)) - 60)
        return self._token

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        request_id: str | None = None,
    ) -> dict[str, Any]:
        for attempt in (0, 1):
            token = await self._access_token(fresh=attempt == 1)
            headers = {
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "Prefer": "return=representation",
            }
            if request_id:
                headers["PayPal-Request-Id"] = request_id
            resp = await self._send(method, self.base_url + path, json=json, headers=headers)
            if resp.status_code == 401 and attempt == 0:
                continue  # token expired early or was revoked: get a new one once
            if resp.status_code >= 400:
                raise _error(resp)
            body = json_body(NAME, resp)
            if not isinstance(body, dict):
                raise GatewayError("unexpected response shape", gateway=NAME, retryable=True)
            return body
        raise AssertionError("unreachable")  # pragma: no cover

    # -- payments ------------------------------------------------------------

    async def fetch_payment(self, payment_ref: str) -> PaymentInfo:
        return payment_from_order(await self._request("GET", f"/v2/checkout/orders/{payment_ref}"))

    async def list_changes(self, since_cursor: str | None) -> ChangePage:
        return ChangePage(items=[], cursor=since_cursor, has_more=False)

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
        order = await self._request("GET", f"/v2/checkout/orders/{payment_ref}")
        capture = next(
            (c for c in _captures(order) if c.get("status") in ("COMPLETED", "PARTIALLY_REFUNDED")),
            None,
        )
        if capture is None:
            raise GatewayError(
                f"order {payment_ref} has no completed capture to refund",
                gateway=NAME,
                code="NO_CAPTURE",
            )
        body: dict[str, Any] = {
            "amount": {"value": plain_amount(amount, currency), "currency_code": currency.upper()},
            "custom_id": refund_id,
        }
        if metadata and metadata.get("note"):
            body["note_to_payer"] = metadata["note"][:255]
        r = await self._request(
            "POST",
            f"/v2/payments/captures/{capture['id']}/refund",
            json=body,
            request_id=idempotency_key,
        )
        return refund_from_paypal(r, payment_ref, fallback_amount=(amount, currency.upper()))

    async def fetch_refund(self, refund_ref: str) -> RefundInfo:
        return refund_from_paypal(await self._request("GET", f"/v2/payments/refunds/{refund_ref}"))

    async def list_refunds(self, payment_ref: str) -> list[RefundInfo]:
        order = await self._request("GET", f"/v2/checkout/orders/{payment_ref}")
        out = []
        for unit in order.get("purchase_units") or []:
            for r in ((unit.get("payments") or {}).get("refunds")) or []:
                out.append(refund_from_paypal(r, payment_ref))
        return out

    async def find_refund_by_metadata(self, payment_ref: str, refund_id: str) -> RefundInfo | None:
        for r in await self.list_refunds(payment_ref):
            if r.refund_id == refund_id:
                return r
        return None


# -- payload mapping ---------------------------------------------------------


def to_minor(amount: Mapping[str, Any] | None) -> tuple[int, str]:
    if not amount:
        return 0, ""
    cur = str(amount.get("currency_code") or "").upper()
    try:
        return Money.parse(Decimal(str(amount.get("value"))), cur).amount, cur
    except (MoneyError, ArithmeticError, ValueError):
        raise GatewayError(f"bad amount {amount!r}", gateway=NAME) from None


def _captures(order: Mapping[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for unit in order.get("purchase_units") or []:
        out.extend(((unit.get("payments") or {}).get("captures")) or [])
    return out


def _authorizations(order: Mapping[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for unit in order.get("purchase_units") or []:
        out.extend(((unit.get("payments") or {}).get("authorizations")) or [])
    return out


def payment_from_order(order: Mapping[str, Any]) -> PaymentInfo:
    units = order.get("purchase_units") or [{}]
    unit = units[0]
    amount, currency = to_minor(unit.get("amount"))
    captures = _captures(order)
    cap_states = {c.get("status") for c in captures}
    status = PaymentStatus.UNPAID
    failure = None
    captured = sum(to_minor(c.get("amount"))[0] for c in captures if c.get("status") != "DECLINED")
    if cap_states & {"COMPLETED", "PARTIALLY_REFUNDED", "REFUNDED"}:
        status = PaymentStatus.PAID
    elif cap_states & {"DECLINED", "FAILED"}:
        status = PaymentStatus.FAILED
        failure = "capture declined"
    elif order.get("status") == "VOIDED":
        status, failure = PaymentStatus.FAILED, "order voided"
    elif any(a.get("status") in ("CREATED", "CAPTURED") for a in _authorizations(order)):
        status = PaymentStatus.AUTHORIZED
    if status != PaymentStatus.PAID:
        captured = 0
    refunded = 0
    for u in units:
        for r in ((u.get("payments") or {}).get("refunds")) or []:
            if r.get("status") == "COMPLETED":
                refunded += to_minor(r.get("amount"))[0]
    source = order.get("payment_source") or {}
    method, wallet, brand, last4 = "wallet", None, None, None
    if "card" in source:
        method = "card"
        brand = (source["card"].get("brand") or "").lower() or None
        last4 = source["card"].get("last_digits")
    elif "apple_pay" in source:
        wallet = "apple_pay"
    elif "google_pay" in source:
        wallet = "google_pay"
    else:
        wallet = "paypal"
    return PaymentInfo(
        gateway=NAME,
        ref=str(order["id"]),
        status=status,
        gateway_status=str(order.get("status")),
        amount=amount,
        currency=currency,
        captured=captured,
        refunded=refunded,
        method=method,
        card_brand=brand,
        card_last4=last4,
        wallet=wallet,
        failure_reason=failure,
        order_ref=unit.get("invoice_id") or unit.get("reference_id"),
        capture_ref=str(captures[0]["id"]) if captures else None,
    )


def refund_from_paypal(
    r: Mapping[str, Any],
    payment_ref: str | None = None,
    *,
    fallback_amount: tuple[int, str] | None = None,
) -> RefundInfo:
    amount, currency = (
        to_minor(r.get("amount")) if r.get("amount") else (fallback_amount or (0, ""))
    )
    if not payment_ref:  # the "up" link points at the capture
        for link in r.get("links") or []:
            if link.get("rel") == "up":
                payment_ref = str(link.get("href", "")).rstrip("/").rsplit("/", 1)[-1]
    details = r.get("status_details") or {}
    return RefundInfo(
        gateway=NAME,
        ref=str(r["id"]),
        payment_ref=payment_ref or "",
        status=REFUND_STATUS.get(str(r.get("status")), "pending"),
        amount=amount,
        currency=currency,
        refund_id=r.get("custom_id"),
        failure_reason=details.get("reason"),
    )


def _error(resp: httpx.Response) -> GatewayError:
    """PayPal's ``{"name", "message", "debug_id", "details": [{"issue"}]}`` (REST)
    or ``{"error", "error_description"}`` (OAuth) as a GatewayError."""
    status = resp.status_code
    message, code = f"HTTP {status}", None
    try:
        body = resp.json()
        if "error" in body and isinstance(body["error"], str):
            code, message = body["error"], body.get("error_description") or body["error"]
        else:
            code = body.get("name")
            message = body.get("message") or message
            details = body.get("details") or []
            if details and isinstance(details[0], dict) and details[0].get("issue"):
                code = details[0]["issue"]
                message = f"{message} ({details[0].get('description') or code})"
            if body.get("debug_id"):
                message = f"{message} [debug_id {body['debug_id']}]"
    except (ValueError, AttributeError, TypeError):
        pass
    return GatewayError(
        message,
        gateway=NAME,
        status=status,
        code=code,
        retryable=status == 429 or status >= 500,
        retry_after=retry_after_seconds(resp.headers.get("Retry-After")),
    )
