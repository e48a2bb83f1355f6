"""The PayPal adapter against an httpx MockTransport fake speaking PayPal's
documented payloads (Orders v2, captures, refunds, OAuth, error shapes)."""

from __future__ import annotations

import json

import httpx
import pytest

from pulse_tui.domain.status import PaymentStatus
from pulse_tui.gateways.base import GatewayError
from pulse_tui.gateways.paypal import PayPalAdapter

pytestmark = pytest.mark.anyio
BASE = "https://api-m.sandbox.paypal.test"


def order_body(order_id: str, status: str, capture: str | None, refunds=()) -> dict:
    payments: dict = {}
    if capture:
        payments["captures"] = [
            {"id": "CAP1", "status": capture, "amount": {"currency_code": "EUR", "value": "29.90"}}
        ]
    if refunds:
        payments["refunds"] = list(refunds)
    return {
        "id": order_id,
        "status": status,
        "payment_source": {"paypal": {"email_address": "buyer@example.com"}},
        "purchase_units": [
            {
                "reference_id": "default",
                "invoice_id": "PB-100001",
                "amount": {"currency_code": "EUR", "value": "29.90"},
                "payments": payments,
            }
        ],
    }


class FakePayPal:
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.tokens = 0
        self.expire_next = False
        self.orders = {
            "O-PAID": order_body("O-PAID", "COMPLETED", "COMPLETED"),
            "O-NEW": order_body("O-NEW", "APPROVED", None),
            "O-DECL": order_body("O-DECL", "COMPLETED", "DECLINED"),
        }
        self.refunds: dict[str, dict] = {}

    def __call__(self, req: httpx.Request) -> httpx.Response:
        self.requests.append(req)
        path = req.url.path
        if path == "/v1/oauth2/token":
            assert req.headers["Authorization"].startswith("Basic ")
            if b"grant_type=client_credentials" not in req.content:
                return httpx.Response(400, json={"error": "unsupported_grant_type"})
            self.tokens += 1
            return httpx.Response(
                200,
                json={
                    "access_token": f"A21.{self.tokens}",
                    "token_type": "Bearer",
                    "expires_in": 32400,
                },
            )
        if self.expire_next:
            self.expire_next = False
            return httpx.Response(
                401,
                json={
                    "error": "invalid_token",
                    "error_description": "Token signature verification failed",
                },
            )
        assert req.headers["Authorization"].startswith("Bearer A21.")
        if path.startswith("/v2/checkout/orders/"):
            oid = path.rsplit("/", 1)[-1]
            if oid not in self.orders:
                return httpx.Response(
                    404,
                    json={
                        "name": "RESOURCE_NOT_FOUND",
                        "details": [
                            {
                                "issue": "INVALID_RESOURCE_ID",
                                "description": "Specified resource ID does not exist.",
                            }
                        ],
                        "message": "The specified resource does not exist.",
                        "debug_id": "90957fca61718",
                    },
                )
            return httpx.Response(200, json=self.orders[oid])
        if path.startswith("/v2/payments/captures/") and path.endswith("/refund"):
            body = json.loads(req.content)
            rid = req.headers["PayPal-Request-Id"]
            if rid in self.refunds:  # PayPal replays the first answer for a repeated id
                return httpx.Response(200, json=self.refunds[rid])
            if body["amount"]["value"] == "999.00":
                return httpx.Response(
                    422,
                    json={
                        "name": "UNPROCESSABLE_ENTITY",
                        "details": [
                            {
                                "issue": "REFUND_AMOUNT_EXCEEDED",
                                "description": (
                                    "The refund amount must be less than or equal to the "
                                    "capture amount that has not yet been refunded."
                                ),
                            }
                        ],
                        "message": "The requested action could not be performed.",
                        "debug_id": "b1d1f06c7246c",
                    },
                )
            refund = {
                "id": f"RF{len(self.refunds) + 1}",
                "status": "COMPLETED",
                "amount": body["amount"],
                "custom_id": body.get("custom_id"),
                "links": [
                    {"rel": "up", "method": "GET", "href": f"{BASE}/v2/payments/captures/CAP1"}
                ],
            }
            self.refunds[rid] = refund
            for unit in self.orders["O-PAID"]["purchase_units"]:
                unit["payments"].setdefault("refunds", []).append(refund)
            return httpx.Response(201, json=refund)
        if path.startswith("/v2/payments/refunds/"):
            rid = path.rsplit("/", 1)[-1]
            for r in self.refunds.values():
                if r["id"] == rid:
                    return httpx.Response(200, json=r)
            return httpx.Response(404, json={"name": "RESOURCE_NOT_FOUND", "message": "no"})
        if path == "/v2/busy":
            return httpx.Response(
                503,
                headers={"Retry-After": "7"},
                json={"name": "SERVICE_UNAVAILABLE", "message": "busy"},
            )
        return httpx.Response(500, text="<html>oops</html>")


@pytest.fixture
async def paypal():
    fake = FakePayPal()
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as client:
        yield PayPalAdapter(client, "client-id", "client-secret-abcdef", BASE), fake


async def test_order_statuses(paypal) -> None:
    ad, fake = paypal
    paid = await ad.fetch_payment("O-PAID")
    assert (
        paid.status,
        paid.amount,
        paid.currency,
        paid.captured,
        paid.wallet,
        paid.order_ref,
    ) == (PaymentStatus.PAID, 2990, "EUR", 2990, "paypal", "PB-100001")
    assert paid.capture_ref == "CAP1" and paid.method == "wallet"
    new = await ad.fetch_payment("O-NEW")
    assert new.status == PaymentStatus.UNPAID and new.pending
    declined = await ad.fetch_payment("O-DECL")
    assert declined.status == PaymentStatus.FAILED and declined.failure_reason
    assert fake.tokens == 1  # the token is cached across calls


async def test_token_refreshed_once_on_401(paypal) -> None:
    ad, fake = paypal
    await ad.fetch_payment("O-NEW")
    fake.expire_next = True
    assert (await ad.fetch_payment("O-NEW")).ref == "O-NEW"
    assert fake.tokens == 2


async def test_refund_idempotent_and_found_by_metadata(paypal) -> None:
    ad, fake = paypal
    r1 = await ad.create_refund("O-PAID", 500, "EUR", idempotency_key="key-1", refund_id="77")
    r2 = await ad.create_refund("O-PAID", 500, "EUR", idempotency_key="key-1", refund_id="77")
    assert r1 == r2 and (r1.status, r1.amount, r1.currency, r1.refund_id) == (
        "succeeded",
        500,
        "EUR",
        "77",
    )
    sent = [r for r in fake.requests if r.url.path.endswith("/refund")]
    assert {r.headers["PayPal-Request-Id"] for r in sent} == {"key-1"}
    assert json.loads(sent[0].content)["amount"] == {"value": "5.00", "currency_code": "EUR"}
    assert (await ad.find_refund_by_metadata("O-PAID", "77")).ref == r1.ref
    assert await ad.find_refund_by_metadata("O-PAID", "78") is None
    fetched = await ad.fetch_refund(r1.ref)
    assert fetched.payment_ref == "CAP1" and fetched.status == "succeeded"
    assert (await ad.fetch_payment("O-PAID")).refunded == 500


async def test_error_shapes(paypal) -> None:
    ad, _ = paypal
    with pytest.raises(GatewayError) as nf:
        await ad.fetch_payment("O-MISSING")
    assert nf.value.status == 404 and nf.value.code == "INVALID_RESOURCE_ID"
    assert "debug_id 90957fca61718" in nf.value.message and not nf.value.retryable
    with pytest.raises(GatewayError) as unp:
        await ad.create_refund("O-PAID", 99900, "EUR", idempotency_key="k2", refund_id="1")
    assert unp.value.status == 422 and unp.value.code == "REFUND_AMOUNT_EXCEEDED"
    with pytest.raises(GatewayError) as busy:
        await ad._request("GET", "/v2/busy")
    assert busy.value.retryable and busy.value.retry_after == 7
    with pytest.raises(GatewayError) as nocap:
        await ad.create_refund("O-NEW", 100, "EUR", idempotency_key="k3", refund_id="2")
    assert nocap.value.code == "NO_CAPTURE"


async def test_no_change_feed(paypal) -> None:
    ad, _ = paypal
    page = await ad.list_changes("c1")
    assert page.items == [] and page.cursor == "c1" and not page.has_more


def test_repr_hides_secret() -> None:
    ad = PayPalAdapter(httpx.AsyncClient(), "cid", "super-secret-value", BASE)
    assert "super-secret" not in repr(ad)
