"""What one `pulse` invocation works with: settings, one engine, one Desk.

Built lazily by the commands that need them (``pulse config-path`` opens no
database; ``pulse db upgrade`` needs no operator), never at import time.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field

import typer
from sqlalchemy import Engine
from sqlalchemy.exc import ArgumentError, OperationalError

from pulse_tui.config import Settings, SettingsError, config_path, load_settings
from pulse_tui.services.context import SYSTEM, Actor
from pulse_tui.services.desk import Desk
from pulse_tui.services.errors import InvalidInput, ServiceError
from pulse_tui.services.operators import resolve_actor
from pulse_tui.storage.db import ensure_schema, make_engine

from .output import message


@dataclass
class CliState:
    db_url: str | None = None
    operator: str | None = None
    _settings: Settings | None = field(default=None, repr=False)
    _engine: Engine | None = field(default=None, repr=False)
    _desk: Desk | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = load_settings(self.db_url, self.operator)
            except tomllib.TOMLDecodeError as exc:
                raise InvalidInput(f"bad config file {config_path()}: {exc}") from None
            except SettingsError as exc:
                raise InvalidInput(f"bad configuration: {exc}") from None
        return self._settings

    def engine(self, *, migrate: bool = True) -> Engine:
        """The invocation's engine; the schema is migrated on first use."""
        if self._engine is None:
            url = self.settings.database_url
            try:
                engine = make_engine(url)
            except (ArgumentError, ValueError) as exc:
                raise InvalidInput(f"bad database URL {url!r}: {exc}") from None
            self._engine = engine
            if migrate:
                self.migrate()
        return self._engine

    def migrate(self, *, announce: bool = True) -> bool:
        engine = self.engine(migrate=False)
        try:
            did = ensure_schema(engine)
        except OperationalError as exc:
            raise ServiceError(f"cannot open database {self.safe_url}: {exc.orig}") from None
        if did and announce:
            message(f"pulse: database schema created/upgraded at {self.safe_url}")
        return did

    @property
    def safe_url(self) -> str:
        if self._engine is not None:
            return self._engine.url.render_as_string(hide_password=True)
        return self.settings.database_url

    def actor(self) -> Actor:
        return resolve_actor(self.engine(), self.settings.operator)

    def desk(self) -> Desk:
        """The Desk acting as the resolved operator (refuses when there is none)."""
        if self._desk is None:
            self._desk = Desk(self.engine(), self.actor(), self.settings)
        return self._desk

    def system_desk(self) -> Desk:
        """For bootstrap steps that need no operator (first operator, demo seed)."""
        return Desk(self.engine(), SYSTEM, self.settings)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
            self._desk = None


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_root().obj
    if not isinstance(obj, CliState):  # a sub-app invoked on its own (tests)
        obj = CliState()
        ctx.find_root().obj = obj
        ctx.find_root().call_on_close(obj.close)
    return obj
