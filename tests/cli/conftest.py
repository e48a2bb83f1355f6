"""CLI fixtures: a copy of the small factory database per test, env pointing at it."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner, Result

from pulse_tui.cli.main import app
from pulse_tui.storage.db import make_engine, read_session
from pulse_tui.storage.models import (
    AuditEntry,
    Operator,
    Order,
    OrderEvent,
    OrderLine,
    OrderTag,
    Payment,
    Product,
    Refund,
    Return,
    Shipment,
)
from tests import factories


@pytest.fixture(scope="session")
def small_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once through the services; each test copies the file."""
    path = tmp_path_factory.mktemp("cli-template") / "small.sqlite"
    engine = factories.build_small_db(path)
    d = factories.desk(engine)
    for number in ("PB-100002", "PB-100007"):  # the small db carries no tags itself
        d.orders.tag(number, ["vip"])
    d.orders.tag("PB-100007", ["gift"])
    engine.dispose()  # checkpoints WAL into the main file
    return path


@dataclass
class Cli:
    url: str
    path: Path
    runner: CliRunner

    def __call__(self, *args: str, operator: str | None = "ada") -> Result:
        argv = [*(["--as", operator] if operator else []), *args]
        return self.runner.invoke(app, argv)

    def fingerprint(self) -> dict[str, object]:
        """Row counts and every order's version/status: "unchanged" means equal."""
        engine = make_engine(self.url)
        try:
            with read_session(engine) as s:
                counts = {
                    m.__tablename__: s.execute(select(func.count()).select_from(m)).scalar_one()
                    for m in (
                        Order,
                        OrderLine,
                        OrderEvent,
                        AuditEntry,
                        Payment,
                        Shipment,
                        OrderTag,
                        Operator,
                        Refund,
                        Return,
                    )
                }
                orders = s.execute(
                    select(Order.number, Order.version, Order.status, Order.on_hold)
                ).all()
                stock = s.execute(
                    select(Product.sku, Product.stock_on_hand, Product.stock_reserved)
                ).all()
                ops = s.execute(select(Operator.username, Operator.active)).all()
            return {
                "counts": counts,
                "orders": sorted(map(tuple, orders)),
                "stock": sorted(map(tuple, stock)),
                "operators": sorted(map(tuple, ops)),
            }
        finally:
            engine.dispose()


@pytest.fixture
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PULSE_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.delenv("PULSE_OPERATOR", raising=False)
    monkeypatch.delenv("PULSE_DATABASE_URL", raising=False)
    # No OS user maps to an operator unless a test says so.
    monkeypatch.setattr("pulse_tui.services.operators.os_user", lambda: "nobody-here")
    return tmp_path


@pytest.fixture
def cli(small_template: Path, isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    path = isolated_env / "pulse.sqlite"
    shutil.copyfile(small_template, path)
    for suffix in ("-wal", "-shm"):  # normally checkpointed away on dispose
        extra = small_template.with_name(small_template.name + suffix)
        if extra.exists():
            shutil.copyfile(extra, path.with_name(path.name + suffix))
    url = f"sqlite:///{path}"
    monkeypatch.setenv("PULSE_DATABASE_URL", url)
    return Cli(url, path, CliRunner())


@pytest.fixture
def empty_cli(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """A database file that does not exist yet (first run)."""
    path = isolated_env / "fresh" / "pulse.sqlite"
    url = f"sqlite:///{path}"
    monkeypatch.setenv("PULSE_DATABASE_URL", url)
    return Cli(url, path, CliRunner())
