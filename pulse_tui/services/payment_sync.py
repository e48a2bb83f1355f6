"""The payment sync worker: ask every gateway what changed, apply it through services.

One run (``PaymentSync.run_once``):

1. takes the database lease (one sync at a time across processes), or skips;
2. per gateway, walks ``list_changes`` from the stored cursor and applies each
   result; the cursor advances only after a page applied cleanly;
3. refreshes every payment (and refund) still pending at that gateway, with
   bounded concurrency, so nothing depends on the change feed alone;
4. recovers refunds a crash, timeout or closed screen left unsent or
   unanswered (``RefundService.recover``: look up first, send at most once);
5. records how it went per gateway and releases the lease.

HTTP goes through gateways.sync (shared client, retries); database work runs
in threads (``asyncio.to_thread``), so the sync never blocks an event loop it
shares with the TUI.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Engine

from pulse_tui.gateways.base import GatewayAdapter, GatewayError
from pulse_tui.gateways.sync import RetryPolicy, call_with_retries

from . import payments as pay
from .context import SYSTEM, Context, utcnow
from .refunds import RefundService

T = TypeVar("T")


# -- one run -----------------------------------------------------------------


@dataclass
class GatewayReport:
    gateway: str
    changes: int = 0  # results seen in the change feed
    refreshed: int = 0  # pending payments/refunds fetched one by one
    applied: list[pay.ApplyResult] = field(default_factory=list)
    refunds_updated: int = 0
    errors: list[str] = field(default_factory=list)  # what failed for good this run
    retried: list[str] = field(default_factory=list)  # transient errors that were retried
    # Payments we hold as pending that the gateway says it never had (404):
    # worth a look, but not a failed run — the next refresh asks again.
    unknown: list[str] = field(default_factory=list)
    cursor: str | None = None

    @property
    def changed(self) -> list[pay.ApplyResult]:
        return [r for r in self.applied if r.changed]


@dataclass
class SyncReport:
    started_at: datetime
    finished_at: datetime | None = None
    skipped_by: str | None = None  # the lease holder, when another sync ran
    gateways: list[GatewayReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.skipped_by is None and not any(g.errors for g in self.gateways)

    @property
    def errors(self) -> list[str]:
        return [e for g in self.gateways for e in g.errors]

    @property
    def changed(self) -> list[pay.ApplyResult]:
        return [r for g in self.gateways for r in g.changed]


def default_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class PaymentSync:
    def __init__(
        self,
        engine: Engine,
        adapters: Mapping[str, GatewayAdapter],
        *,
        clock: Callable[[], datetime] = utcnow,
        policy: RetryPolicy | None = None,
        concurrency: int = 4,
        holder: str | None = None,
        lease_ttl: timedelta = timedelta(minutes=5),
    ) -> None:
        self.ctx = Context(engine, SYSTEM, clock=clock)
        self.adapters = dict(adapters)
        self.policy = policy or RetryPolicy()
        self.concurrency = max(1, concurrency)
        self.holder = holder or default_holder()
        self.lease_ttl = lease_ttl
        self.service = pay.PaymentService(self.ctx)

    def _refunds(self, gateway: str) -> RefundService:
        """Refund work of a sync acts as the gateway (``gateway:<name>``)."""
        return RefundService(self.ctx.as_actor(pay.gateway_actor(gateway)))

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(fn, *args)

    async def run_once(self) -> SyncReport:
        report = SyncReport(started_at=self.ctx.now())
        got, holder = await self._db(pay.acquire_lease, self.ctx, self.holder, self.lease_ttl)
        if not got:
            report.skipped_by = holder or "another process"
            report.finished_at = self.ctx.now()
            return report
        try:
            for name, adapter in self.adapters.items():
                await self._db(pay.acquire_lease, self.ctx, self.holder, self.lease_ttl)  # renew
                report.gateways.append(await self._sync_gateway(name, adapter))
        finally:
            await self._db(pay.release_lease, self.ctx, self.holder)
        report.finished_at = self.ctx.now()
        return report

    async def watch(
        self,
        interval: float,
        *,
        stop: asyncio.Event,
        on_report: Callable[[SyncReport], None] | None = None,
        sleep: Callable[[float], Awaitable[Any]] | None = None,
    ) -> None:
        """Run until ``stop`` is set, one run every ``interval`` seconds."""
        while not stop.is_set():
            report = await self.run_once()
            if on_report is not None:
                on_report(report)
            if sleep is not None:
                await sleep(interval)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)

    async def _sync_gateway(self, name: str, adapter: GatewayAdapter) -> GatewayReport:
        rep = GatewayReport(name)

        def retried(exc: GatewayError, wait: float) -> None:
            rep.retried.append(f"{exc} (retrying in {wait:.1f}s)")

        async def retry(fn: Callable[[], Awaitable[T]]) -> T:
            return await call_with_retries(fn, self.policy, retried)

        # 1. the change feed, page by page
        cursor = await self._db(pay.get_cursor, self.ctx, name)
        try:
            while True:
                page = await retry(functools.partial(adapter.list_changes, cursor))
                rep.changes += len(page.items)
                clean = True
                for info in page.items:
                    clean &= await self._apply(rep, info)
                if clean and page.cursor != cursor:
                    cursor = page.cursor
                    await self._db(pay.save_cursor, self.ctx, name, cursor)
                if not page.has_more or not clean:
                    break
        except GatewayError as exc:
            rep.errors.append(f"{name}: list changes: {exc}")
        rep.cursor = cursor

        # 2. targeted refresh of whatever is still pending here
        sem = asyncio.Semaphore(self.concurrency)

        async def refresh(ref: str) -> None:
            async with sem:
                try:
                    info = await retry(lambda: adapter.fetch_payment(ref))
                except GatewayError as exc:
                    if exc.status == 404:
                        rep.unknown.append(ref)
                    else:
                        rep.errors.append(f"{name}: fetch {ref}: {exc}")
                    return
            rep.refreshed += 1
            await self._apply(rep, info)

        async def refresh_refund(ref: str) -> None:
            async with sem:
                try:
                    info = await retry(lambda: adapter.fetch_refund(ref))
                except GatewayError as exc:
                    rep.errors.append(f"{name}: fetch refund {ref}: {exc}")
                    return
            try:
                if await self._db(refunds.record, info):
                    rep.refunds_updated += 1
            except Exception as exc:  # noqa: BLE001 - reported, the run goes on
                rep.errors.append(f"{name}: refund {ref}: {exc}")

        refunds = self._refunds(name)
        pending = await self._db(self.service.pending_refs, name)
        pending_refunds = await self._db(refunds.pending_refs, name)
        await asyncio.gather(
            *(refresh(r) for r in pending), *(refresh_refund(r) for r in pending_refunds)
        )

        # 3. refunds left approved (never sent) or sent without an answer
        try:
            touched = await refunds.recover({name: _Retrying(adapter, retry)}, gateway=name)
            rep.refunds_updated += len(touched)
        except GatewayError as exc:
            rep.errors.append(f"{name}: refund recovery: {exc}")
        except Exception as exc:  # noqa: BLE001 - reported, the run goes on
            rep.errors.append(f"{name}: refund recovery: {exc}")
        await self._db(pay.record_run, self.ctx, name, rep.errors)
        return rep

    async def _apply(self, rep: GatewayReport, info: Any) -> bool:
        try:
            result = await self._db(self.service.apply, info)
        except Exception as exc:  # noqa: BLE001 - one bad result must not stop the run
            rep.errors.append(f"{rep.gateway}: apply {info.ref}: {exc}")
            return False
        rep.applied.append(result)
        if result.outcome == pay.Outcome.REFUSED:
            rep.errors.append(f"{rep.gateway}: {info.ref}: {result.message}")
        return True


class _Retrying:
    """An adapter whose lookups go through the sync's retry policy. Sending a
    refund is not retried here: RefundService decides when to send again."""

    def __init__(self, adapter: GatewayAdapter, retry: Callable[..., Awaitable[Any]]) -> None:
        self._adapter = adapter
        self._retry = retry
        self.name = adapter.name

    async def list_refunds(self, payment_ref: str) -> Any:
        return await self._retry(functools.partial(self._adapter.list_refunds, payment_ref))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._adapter, name)


__all__ = ["GatewayReport", "PaymentSync", "SyncReport", "default_holder"]
