"""The HTTP side of payment sync: the shared client, the adapters, retries.

Every HTTP call of a sync goes through ``call_with_retries``: exponential
backoff with jitter, honouring ``Retry-After`` on 429/5xx, retrying timeouts
and connection errors. The sleep and the random source are injected, so tests
never wait. Nothing here touches the database: services.payment_sync runs the
sync and applies what the gateways report through services.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from pulse_tui.config import Settings

from .base import GatewayAdapter, GatewayError

T = TypeVar("T")

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
DEFAULT_LIMITS = httpx.Limits(max_connections=10, max_keepalive_connections=5)


def make_client(
    *,
    timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
    limits: httpx.Limits = DEFAULT_LIMITS,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """The one AsyncClient (and connection pool) every adapter of a run shares."""
    return httpx.AsyncClient(timeout=timeout, limits=limits, transport=transport)


def build_adapters(settings: Settings, client: httpx.AsyncClient) -> dict[str, GatewayAdapter]:
    """Adapters for every gateway configured with credentials."""
    from .paypal import PayPalAdapter
    from .stripe import StripeAdapter

    out: dict[str, GatewayAdapter] = {}
    stripe = settings.gateways.get("stripe")
    if stripe is not None and stripe.configured:
        assert stripe.secret_key is not None
        out["stripe"] = StripeAdapter(client, stripe.secret_key, stripe.base_url)
    paypal = settings.gateways.get("paypal")
    if paypal is not None and paypal.configured and paypal.client_id:
        assert paypal.secret_key is not None
        out["paypal"] = PayPalAdapter(client, paypal.client_id, paypal.secret_key, paypal.base_url)
    return out


# -- retries -------------------------------------------------------------------


@dataclass
class RetryPolicy:
    attempts: int = 5
    base: float = 0.5  # seconds before the first retry
    cap: float = 30.0  # longest single wait (Retry-After is honoured up to this)
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep
    rand: Callable[[], float] = random.random

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Full-jitter backoff for ``attempt`` (0-based), or the server's own hint."""
        if retry_after is not None:
            return min(self.cap, retry_after)
        return min(self.cap, self.base * (2**attempt)) * (0.5 + self.rand() / 2)


async def call_with_retries(
    fn: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    on_retry: Callable[[GatewayError, float], None] | None = None,
) -> T:
    """``fn()`` until it succeeds, a non-retryable GatewayError, or attempts run out."""
    for attempt in range(policy.attempts):
        try:
            return await fn()
        except GatewayError as exc:
            if not exc.retryable or attempt == policy.attempts - 1:
                raise
            wait = policy.delay(attempt, exc.retry_after)
            if on_retry is not None:
                on_retry(exc, wait)
            await policy.sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover
