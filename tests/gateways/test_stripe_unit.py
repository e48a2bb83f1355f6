"""Stripe adapter details a local server cannot show: encoding, headers,
real Stripe's shapes (latest_charge as an id), error and garbage handling."""

from __future__ import annotations

from urllib.parse import parse_qsl

import httpx
import pytest

from pulse_tui.domain.status import PaymentStatus
from pulse_tui.gateways.base import GatewayError, mask_secret, retry_after_seconds
from pulse_tui.gateways.stripe import StripeAdapter, form_encode, payment_from_intent
from pulse_tui.gateways.sync import RetryPolicy, call_with_retries

pytestmark = pytest.mark.anyio


def test_form_encode_nested() -> None:
    assert form_encode(
        {
            "amount": 5,
            "metadata": {"a": "1", "b": {"c": True}},
            "expand": ["x", "y"],
            "items": [{"price": "p1"}],
            "skip": None,
        }
    ) == [
        ("amount", "5"),
        ("metadata[a]", "1"),
        ("metadata[b][c]", "true"),
        ("expand[]", "x"),
        ("expand[]", "y"),
        ("items[0][price]", "p1"),
    ]


def test_latest_charge_as_id_or_object() -> None:
    base = {
        "id": "pi_1",
        "status": "succeeded",
        "amount": 100,
        "currency": "eur",
        "amount_received": 100,
    }
    as_id = payment_from_intent({**base, "latest_charge": "ch_1"})
    as_obj = payment_from_intent(
        {
            **base,
            "latest_charge": {
                "id": "ch_1",
                "amount_refunded": 30,
                "payment_method_details": {"card": {"brand": "visa", "last4": "4242"}},
            },
        }
    )
    assert as_id.capture_ref == as_obj.capture_ref == "ch_1"
    assert (as_obj.card_brand, as_obj.card_last4, as_obj.refunded) == ("visa", "4242", 30)
    assert payment_from_intent({**base, "status": "requires_capture"}).status == (
        PaymentStatus.AUTHORIZED
    )
    canceled = payment_from_intent(
        {**base, "status": "canceled", "cancellation_reason": "abandoned"}
    )
    assert canceled.status == PaymentStatus.FAILED and "abandoned" in canceled.failure_reason
    assert payment_from_intent({**base, "status": "processing"}).status == PaymentStatus.UNPAID


async def test_refund_request_headers_and_body() -> None:
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(
            200,
            json={
                "id": "re_1",
                "status": "pending",
                "amount": 250,
                "currency": "usd",
                "payment_intent": "pi_9",
                "metadata": {"pulse_refund_id": "12"},
            },
        )

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as c:
        ad = StripeAdapter(c, "sk_test_abcdefghijkl", "https://stripe.test")
        r = await ad.create_refund(
            "pi_9",
            250,
            "USD",
            idempotency_key="idem-9",
            refund_id="12",
            metadata={"reason_note": "late"},
        )
    req = seen[0]
    assert req.headers["Authorization"] == "Bearer sk_test_abcdefghijkl"
    assert req.headers["Idempotency-Key"] == "idem-9"
    assert dict(parse_qsl(req.content.decode())) == {
        "payment_intent": "pi_9",
        "amount": "250",
        "metadata[reason_note]": "late",
        "metadata[pulse_refund_id]": "12",
    }
    assert (r.status, r.refund_id, r.currency) == ("pending", "12", "USD")
    assert "sk_test" not in repr(ad)


@pytest.mark.parametrize(
    ("response", "status", "retryable", "retry_after"),
    [
        (
            httpx.Response(
                429,
                headers={"Retry-After": "3"},
                json={"error": {"type": "rate_limit_error", "message": "slow"}},
            ),
            429,
            True,
            3.0,
        ),
        (
            httpx.Response(500, json={"error": {"type": "api_error", "message": "x"}}),
            500,
            True,
            None,
        ),
        (
            httpx.Response(
                402,
                json={
                    "error": {"type": "card_error", "code": "card_declined", "message": "declined"}
                },
            ),
            402,
            False,
            None,
        ),
        (httpx.Response(200, text="{not json"), 200, True, None),
        (httpx.Response(502, text="<html>bad gateway</html>"), 502, True, None),
    ],
)
async def test_error_mapping(response, status, retryable, retry_after) -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: response)) as c:
        with pytest.raises(GatewayError) as exc:
            await StripeAdapter(c, "sk_test_x1", "https://s.test").fetch_payment("pi_1")
    assert (exc.value.status, exc.value.retryable, exc.value.retry_after) == (
        status,
        retryable,
        retry_after,
    )


@pytest.mark.parametrize("error", [httpx.ReadTimeout("t"), httpx.ConnectError("reset")])
async def test_network_errors_are_retryable(error) -> None:
    def boom(req: httpx.Request) -> httpx.Response:
        raise error

    async with httpx.AsyncClient(transport=httpx.MockTransport(boom)) as c:
        with pytest.raises(GatewayError) as exc:
            await StripeAdapter(c, "sk_test_x1", "https://s.test").fetch_payment("pi_1")
    assert exc.value.retryable and exc.value.status is None


async def test_retries_backoff_and_retry_after() -> None:
    waits: list[float] = []

    async def sleep(s: float) -> None:
        waits.append(s)

    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise GatewayError("busy", gateway="t", status=429, retryable=True, retry_after=4)
        if calls < 4:
            raise GatewayError("down", gateway="t", status=503, retryable=True)
        return "ok"

    policy = RetryPolicy(attempts=5, base=1, cap=30, sleep=sleep, rand=lambda: 1.0)
    assert await call_with_retries(flaky, policy) == "ok"
    assert waits == [4, 2.0, 4.0]  # Retry-After honoured, then base*2**attempt

    async def fatal() -> None:
        raise GatewayError("no", gateway="t", status=400)

    with pytest.raises(GatewayError):
        await call_with_retries(fatal, policy)
    assert len(waits) == 3  # a 4xx is not retried

    async def always() -> None:
        raise GatewayError("down", gateway="t", status=500, retryable=True)

    with pytest.raises(GatewayError):
        await call_with_retries(always, RetryPolicy(attempts=3, sleep=sleep, rand=lambda: 0.0))
    assert len(waits) == 5


def test_jitter_stays_in_band_and_capped() -> None:
    p = RetryPolicy(base=1, cap=10, rand=lambda: 0.0)
    assert p.delay(0, None) == 0.5 and p.delay(10, None) == 5.0
    assert RetryPolicy(cap=10).delay(0, 60) == 10


def test_masking_and_retry_after_parsing() -> None:
    assert mask_secret("sk_live_abcdefghijkl1234") == "****1234"
    assert mask_secret("short") == "****" and mask_secret(None) == "(not set)"
    assert retry_after_seconds("2") == 2.0 and retry_after_seconds("soon") is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
