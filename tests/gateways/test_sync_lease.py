"""Two `pulse sync --once` processes at the same moment against one SQLite file.

Both processes import everything, wait at a barrier (a file), then start
together. They reach localstripe through a gated proxy that holds every
request until the test opens the gate, so whichever took the lease is still
inside its run when the other asks: the other must report that it was skipped
(exit 4, naming the holder) and no payment result may be applied twice.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from sqlalchemy import Engine, select

from pulse_tui.cli import exit_codes
from pulse_tui.services import payments as pay
from pulse_tui.services.context import Context
from pulse_tui.storage.db import make_engine, read_session
from pulse_tui.storage.models import Order, OrderEvent
from tests import factories
from tests.gateways.conftest import DECLINED_CARD, ROOT, SECRET, Customer, free_port

pytestmark = pytest.mark.anyio

LAUNCHER = """
import sys, time
from pathlib import Path
from pulse_tui.cli.main import run  # imported before the barrier: both start together
ready, go, url = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
ready.touch()
deadline = time.monotonic() + 30
while not go.exists() and time.monotonic() < deadline:
    time.sleep(0.002)
sys.argv = ["pulse", "--db", url, "sync", "--once"]
run()
"""


class GatedProxy:
    """Forwards to ``upstream`` once ``gate`` is open; counts what it held."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.gate = threading.Event()
        self.held = 0
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> GatedProxy:
        self._thread.start()
        assert self._started.wait(10), "proxy did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self.gate.set()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._started.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(runner.cleanup())
            self._loop.close()

    async def _handle(self, request: web.Request) -> web.Response:
        self.held += 1
        await asyncio.to_thread(self.gate.wait, 30)
        keep = ("authorization", "content-type", "idempotency-key")
        headers = {k: v for k, v in request.headers.items() if k.lower() in keep}
        async with httpx.AsyncClient(timeout=10) as client:
            r = await client.request(
                request.method,
                self.upstream + request.path_qs,
                content=await request.read(),
                headers=headers,
            )
        return web.Response(
            status=r.status_code,
            body=r.content,
            content_type="application/json",
        )


def events_per_order(engine: Engine) -> dict[str, list[str]]:
    with read_session(engine) as s:
        rows = s.execute(
            select(Order.number, OrderEvent.kind)
            .join(OrderEvent, OrderEvent.order_id == Order.id)
            .order_by(OrderEvent.id)
        ).all()
    out: dict[str, list[str]] = {}
    for number, kind in rows:
        out.setdefault(number, []).append(kind)
    return out


async def test_two_sync_processes_one_lease_no_double_apply(
    tmp_path: Path, customer: Customer, localstripe_url: str
) -> None:
    db = tmp_path / "pulse.sqlite"
    engine = factories.new_engine(db)
    factories.add_operators(engine)
    factories.add_catalog(engine)
    d = factories.desk(engine)
    svc = pay.PaymentService(Context(engine, factories.ADMIN))
    paid = [factories.place(d) for _ in range(3)]
    failed = factories.place(d, lines=(("TEE-M", 1),))
    waiting = factories.place(d, lines=(("EBOOK-PY", 1),))
    for o, card, confirm in [
        *((o, None, True) for o in paid),
        (failed, DECLINED_CARD, True),
        (waiting, None, False),
    ]:
        pi = await customer.intent(o.total, o.currency, **({"number": card} if card else {}))
        svc.attach(o.number, gateway="stripe", reference=pi)
        if confirm:
            await customer.confirm(pi)
    before = events_per_order(engine)
    engine.dispose()

    url = f"sqlite:///{db}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")}
    go = tmp_path / "go"
    with GatedProxy(localstripe_url) as proxy:
        env |= {
            "PULSE_CONFIG": str(tmp_path / "config.toml"),
            "PULSE_STRIPE_SECRET_KEY": SECRET,
            "PULSE_STRIPE_BASE_URL": proxy.url,
            "PYTHONUNBUFFERED": "1",
        }
        ready = [tmp_path / f"ready-{i}" for i in range(2)]
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", LAUNCHER, str(r), str(go), url],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for r in ready
        ]
        try:
            deadline = time.monotonic() + 30
            while not all(r.exists() for r in ready):
                assert time.monotonic() < deadline, "sync processes did not start"
                assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
                await asyncio.sleep(0.01)
            go.touch()  # the barrier: both start now

            # The lease holder is stuck at the gate; the other one must give up.
            deadline = time.monotonic() + 30
            while all(p.poll() is None for p in procs):
                assert time.monotonic() < deadline, "neither process finished: both inside?"
                await asyncio.sleep(0.01)
            loser = next(p for p in procs if p.poll() is not None)
            winner = next(p for p in procs if p is not loser)
            assert proxy.held >= 1 and winner.poll() is None  # overlap: winner mid-run
            proxy.gate.set()
            w_out, w_err = winner.communicate(timeout=60)
            l_out, l_err = loser.communicate(timeout=10)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.communicate()

    assert loser.returncode == exit_codes.CONFLICT, (l_out, l_err)
    assert "sync skipped: another sync is running" in l_err
    assert f":{winner.pid}:" in l_err  # the holder it names is the other process
    assert l_out == ""
    assert winner.returncode == exit_codes.OK, (w_out, w_err)
    updated = {line.split("\t")[0] for line in w_out.splitlines()}
    assert updated == {o.number for o in paid} | {failed.number}

    engine = make_engine(url)
    after = events_per_order(engine)
    for o in paid:
        added = after[o.number][len(before[o.number]) :]
        assert added == ["payment_confirmed", "status"], (o.number, added)
    assert after[failed.number][len(before[failed.number]) :] == ["payment_failed", "held"]
    assert after[waiting.number] == before[waiting.number]
    with read_session(engine) as s:
        states = dict(s.execute(select(Order.number, Order.status)).all())
    assert {states[o.number] for o in paid} == {"processing"}
    assert pay.lease_holder(Context(engine, factories.ADMIN)) == (None, None)  # released
    engine.dispose()
