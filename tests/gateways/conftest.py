"""A real localstripe server for the session, and helpers to drive it.

The server is a subprocess on 127.0.0.1 and a free port, started once per
session with no on-disk state (see localstripe_server.py). Tests isolate from
each other by creating their own PaymentIntents, never by counting globals.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
SECRET = "sk_test_pulse_0123456789abcdef"
DECLINED_CARD = "4000000000000341"  # attaches fine, declined when charged
GOOD_CARD = "4242424242424242"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def localstripe_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("localstripe") / "server.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.gateways.localstripe_server", str(port)],
            cwd=ROOT,
            stdout=fh,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                pytest.fail(f"localstripe exited early:\n{log.read_text()}")
            try:
                r = httpx.get(
                    f"{url}/v1/events",
                    auth=None,
                    headers={"Authorization": f"Bearer {SECRET}"},
                    timeout=1,
                )
                if r.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"localstripe did not answer on {url}:\n{log.read_text()}")
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Customer:
    """Plays the customer's side against localstripe (creates and confirms intents)."""

    client: httpx.AsyncClient

    async def post(self, path: str, data: dict[str, str]) -> httpx.Response:
        return await self.client.post(path, data=data)

    async def card(self, number: str = GOOD_CARD) -> str:
        r = await self.post(
            "/v1/payment_methods",
            {
                "type": "card",
                "card[number]": number,
                "card[exp_month]": "12",
                "card[exp_year]": "2030",
                "card[cvc]": "123",
            },
        )
        r.raise_for_status()
        return str(r.json()["id"])

    async def intent(
        self, amount: int, currency: str, order: str | None = None, number: str = GOOD_CARD
    ) -> str:
        """A PaymentIntent awaiting confirmation. The server is shared by the
        session, so only a test that means to exercise it names our order."""
        pm = await self.card(number)
        data = {"amount": str(amount), "currency": currency.lower(), "payment_method": pm}
        if order:
            data["metadata[pulse_order]"] = order
        r = await self.post("/v1/payment_intents", data)
        r.raise_for_status()
        return str(r.json()["id"])

    async def confirm(self, pi: str) -> httpx.Response:
        return await self.post(f"/v1/payment_intents/{pi}/confirm", {})


@pytest.fixture
async def customer(localstripe_url: str) -> AsyncIterator[Customer]:
    async with httpx.AsyncClient(
        base_url=localstripe_url, headers={"Authorization": f"Bearer {SECRET}"}, timeout=5
    ) as client:
        yield Customer(client)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
