"""`pulse sync`: options, status output with masked secrets, lease conflicts."""

from __future__ import annotations

import json
from datetime import timedelta

from pulse_tui.services import payments as pay
from pulse_tui.services.context import SYSTEM, Context
from pulse_tui.storage.db import make_engine
from tests.cli.helpers import assert_clean_failure


def test_needs_once_or_watch(cli) -> None:
    assert_clean_failure(cli("sync"), 2, "--once or --watch")
    assert_clean_failure(cli("sync", "--once", "--watch"), 2, "--once or --watch")


def test_no_gateway_configured(cli, monkeypatch) -> None:
    monkeypatch.delenv("PULSE_STRIPE_SECRET_KEY", raising=False)
    assert_clean_failure(cli("sync", "--once"), 2, "no payment gateway configured")


def test_status_masks_secrets(cli, monkeypatch) -> None:
    monkeypatch.setenv("PULSE_STRIPE_SECRET_KEY", "sk_test_verysecretvalue_7788")
    res = cli("sync", "status", "--json")
    assert res.exit_code == 0, res.stderr
    assert "verysecret" not in res.stdout + res.stderr
    data = json.loads(res.stdout)
    stripe = next(g for g in data["gateways"] if g["name"] == "stripe")
    assert (stripe["secret_key"], stripe["configured"], data["running"]) == ("****7788", True, None)
    human = cli("sync", "status")
    assert "****7788" in human.stdout and "verysecret" not in human.stdout


def test_lease_held_elsewhere_exits_conflict(cli, monkeypatch) -> None:
    monkeypatch.setenv("PULSE_STRIPE_SECRET_KEY", "sk_test_verysecretvalue_7788")
    monkeypatch.setenv("PULSE_STRIPE_BASE_URL", "http://127.0.0.1:9")
    engine = make_engine(cli.url)
    try:
        pay.acquire_lease(Context(engine, SYSTEM), "other-host:1", timedelta(minutes=5))
    finally:
        engine.dispose()
    before = cli.fingerprint()
    res = cli("sync", "--once")
    assert res.exit_code == 4, (res.stdout, res.stderr)
    assert "other-host:1" in res.stderr and cli.fingerprint() == before
    assert json.loads(cli("sync", "status", "--json").stdout)["running"] == "other-host:1"
