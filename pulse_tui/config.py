"""Settings: database URL, acting operator, theme — from env, flags and a TOML file.

Precedence: command-line flag > environment variable > config file > default.
The config file lives in the user config directory (``pulse config-path``
prints it) or wherever ``PULSE_CONFIG`` points.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs
import tomli_w

APP_NAME = "pulse"


def config_path() -> Path:
    env = os.environ.get("PULSE_CONFIG")
    if env:
        return Path(env)
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def default_database_url() -> str:
    data = Path(platformdirs.user_data_dir(APP_NAME))
    return f"sqlite:///{data / 'pulse.sqlite'}"


@dataclass
class GatewayConfig:
    """One payment gateway's endpoint and credentials (secrets never in repr)."""

    name: str
    base_url: str
    secret_key: str | None = field(default=None, repr=False)
    client_id: str | None = None  # PayPal's OAuth client id (not a secret)
    enabled: bool = True

    @property
    def configured(self) -> bool:
        return self.enabled and bool(self.secret_key)

    def masked(self) -> dict[str, Any]:
        """What may be shown or printed: the secret only as its last four characters."""
        from pulse_tui.gateways.base import mask_secret

        return {
            "name": self.name,
            "base_url": self.base_url,
            "client_id": self.client_id,
            "secret_key": mask_secret(self.secret_key),
            "enabled": self.enabled,
        }


MAIL_BACKENDS = ("file", "smtp")
MAIL_SECURITY = ("none", "starttls", "ssl")
DEFAULT_FROM = "Pulse <orders@pulse.local>"
# Every event that may notify (domain.notifications.EVENT_TEMPLATES's keys).
NOTIFY_EVENTS = (
    "placed",
    "payment_confirmed",
    "shipped",
    "delivered",
    "cancelled",
    "refund_succeeded",
    "return_authorized",
)


@dataclass
class MailSettings:
    """``[mail]``: how emails leave. The file backend (default) writes one
    ``<message-id>.eml`` per email into ``dir``; smtp talks to ``host:port``."""

    backend: str = "file"  # file | smtp
    dir: Path | None = None  # None: "outbox" next to the SQLite database (Settings.mail_dir)
    host: str = "localhost"
    port: int | None = None  # None: 465 for ssl, 587 for starttls, 25 otherwise
    security: str = "none"  # none | starttls | ssl
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    from_addr: str = DEFAULT_FROM
    timeout_s: float = 10.0
    templates_dir: Path | None = None  # None: <config dir>/templates/email

    @property
    def smtp_port(self) -> int:
        if self.port is not None:
            return self.port
        return {"ssl": 465, "starttls": 587}.get(self.security, 25)

    def masked(self) -> dict[str, Any]:
        from pulse_tui.gateways.base import mask_secret

        return {
            "backend": self.backend,
            "dir": str(self.dir) if self.dir else None,
            "host": self.host,
            "port": self.smtp_port,
            "security": self.security,
            "username": self.username,
            "password": mask_secret(self.password),
            "from_addr": self.from_addr,
        }


@dataclass
class NotificationSettings:
    """``[notifications]``: which events email the customer, and the retry policy."""

    enabled: bool = True
    events: tuple[str, ...] = NOTIFY_EVENTS
    max_attempts: int = 8  # temporary failures before a notification is failed
    lease_s: float = 600.0  # a "sending" claim older than this is sent again


GATEWAY_DEFAULT_URLS = {
    "stripe": "https://api.stripe.com",
    "paypal": "https://api-m.sandbox.paypal.com",
}


@dataclass
class Settings:
    database_url: str
    operator: str | None = None
    theme: str = "pulse-dark"
    refund_limit_minor: int = 50_000  # agents may refund up to this without approval
    # per currency, minor units (from [refund_limits], major units in the file);
    # a currency not listed uses refund_limit_minor
    refund_limits: dict[str, int] = field(default_factory=dict)
    # repr=False: the raw file may hold gateway secrets.
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    gateways: dict[str, GatewayConfig] = field(default_factory=dict)
    sync_interval_s: float = 30.0
    mail: MailSettings = field(default_factory=MailSettings)
    notifications: NotificationSettings = field(default_factory=NotificationSettings)
    notify_interval_s: float = 15.0

    def refund_limit(self, currency: str) -> int:
        """The most an agent may refund at once in ``currency``, in its minor
        units; above it a refund waits for an admin's approval."""
        return self.refund_limits.get(currency.upper(), self.refund_limit_minor)

    def mail_dir(self) -> Path:
        """Where the file backend writes: ``mail.dir``, else ``outbox`` beside
        the SQLite database file (the user data directory by default; the
        demo's own directory for ``make demo``), else the user data dir."""
        if self.mail.dir is not None:
            return Path(self.mail.dir).expanduser()
        from sqlalchemy.engine import make_url

        try:
            u = make_url(self.database_url)
        except Exception:  # noqa: BLE001 - an odd URL just uses the default place
            u = None
        if u is not None and u.get_backend_name() == "sqlite":
            db = u.database
            if db and db != ":memory:" and not db.startswith("file:"):
                return Path(db).expanduser().resolve().parent / "outbox"
        return Path(platformdirs.user_data_dir(APP_NAME)) / "outbox"

    def templates_dir(self) -> Path:
        """Overrides of the shipped email templates: ``mail.templates_dir``,
        else ``<config dir>/templates/email``."""
        if self.mail.templates_dir is not None:
            return Path(self.mail.templates_dir).expanduser()
        return config_path().parent / "templates" / "email"


def load_file(path: Path | None = None) -> dict[str, Any]:
    p = path or config_path()
    if not p.exists():
        return {}
    with p.open("rb") as fh:
        return tomllib.load(fh)


def load_settings(database_url: str | None = None, operator: str | None = None) -> Settings:
    data = load_file()
    return Settings(
        database_url=database_url
        or os.environ.get("PULSE_DATABASE_URL")
        or data.get("database_url")
        or default_database_url(),
        operator=operator or os.environ.get("PULSE_OPERATOR") or data.get("operator"),
        theme=str(data.get("theme", "pulse-dark")),
        refund_limit_minor=load_refund_limit(data),
        refund_limits=load_refund_limits(data),
        raw=data,
        gateways=load_gateways(data),
        sync_interval_s=float(
            os.environ.get("PULSE_SYNC_INTERVAL") or data.get("sync_interval_s", 30.0)
        ),
        mail=load_mail(data),
        notifications=load_notifications(data),
        notify_interval_s=float(
            os.environ.get("PULSE_NOTIFY_INTERVAL") or data.get("notify_interval_s", 15.0)
        ),
    )


class SettingsError(ValueError):
    """A setting that cannot work (unknown mail backend, bad port...)."""


def load_refund_limit(data: dict[str, Any]) -> int:
    """``refund_limit_minor``: minor units of any currency not in [refund_limits]."""
    value = data.get("refund_limit_minor", 50_000)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SettingsError(
            f"refund_limit_minor must be a whole number of minor units, 0 or more: {value!r}"
        )
    return value


def load_refund_limits(data: dict[str, Any]) -> dict[str, int]:
    """``[refund_limits]``: a currency's own limit in its major units
    (``JPY = 50000``, ``KWD = "150.000"``, ``EUR = 500``), as minor units."""
    from pulse_tui.domain.money import Money, MoneyError

    table = data.get("refund_limits") or {}
    if not isinstance(table, dict):
        raise SettingsError("refund_limits must be a table of currency = amount, e.g. JPY = 50000")
    limits: dict[str, int] = {}
    for code, value in table.items():
        try:
            money = Money.parse(value, str(code))
        except MoneyError as exc:
            raise SettingsError(f"refund_limits.{code}: {exc}") from None
        if money.amount < 0:
            raise SettingsError(f"refund_limits.{code} must be 0 or more: {value!r}")
        limits[money.currency] = money.amount
    return limits


def load_mail(data: dict[str, Any]) -> MailSettings:
    """``[mail]`` overridden by ``PULSE_MAIL_BACKEND``, ``PULSE_MAIL_DIR``,
    ``PULSE_MAIL_FROM``, ``PULSE_SMTP_HOST``, ``PULSE_SMTP_PORT``,
    ``PULSE_SMTP_SECURITY``, ``PULSE_SMTP_USERNAME``, ``PULSE_SMTP_PASSWORD``
    and ``PULSE_MAIL_TEMPLATES``."""
    t = data.get("mail") or {}
    env = os.environ.get
    backend = str(env("PULSE_MAIL_BACKEND") or t.get("backend") or "file").strip().lower()
    if backend not in MAIL_BACKENDS:
        raise SettingsError(f"mail.backend must be one of {', '.join(MAIL_BACKENDS)}: {backend!r}")
    security = str(env("PULSE_SMTP_SECURITY") or t.get("security") or "none").strip().lower()
    if security not in MAIL_SECURITY:
        raise SettingsError(
            f"mail.security must be one of {', '.join(MAIL_SECURITY)}: {security!r}"
        )
    port_raw = env("PULSE_SMTP_PORT") or t.get("port")
    try:
        port = int(port_raw) if port_raw not in (None, "") else None
    except ValueError:
        raise SettingsError(f"mail.port must be a number: {port_raw!r}") from None
    if port is not None and not 0 < port < 65536:
        raise SettingsError(f"mail.port out of range: {port}")
    mail_dir = env("PULSE_MAIL_DIR") or t.get("dir")
    templates = env("PULSE_MAIL_TEMPLATES") or t.get("templates_dir")
    return MailSettings(
        backend=backend,
        dir=Path(mail_dir).expanduser() if mail_dir else None,
        host=str(env("PULSE_SMTP_HOST") or t.get("host") or "localhost"),
        port=port,
        security=security,
        username=env("PULSE_SMTP_USERNAME") or t.get("username"),
        password=env("PULSE_SMTP_PASSWORD") or t.get("password"),
        from_addr=str(env("PULSE_MAIL_FROM") or t.get("from_addr") or DEFAULT_FROM),
        timeout_s=float(t.get("timeout_s", 10.0)),
        templates_dir=Path(templates).expanduser() if templates else None,
    )


def load_notifications(data: dict[str, Any]) -> NotificationSettings:
    """``[notifications] enabled = true, events = [...]`` (``PULSE_NOTIFY=0``
    turns them off)."""
    t = data.get("notifications") or {}
    enabled = bool(t.get("enabled", True))
    env = os.environ.get("PULSE_NOTIFY")
    if env is not None:
        enabled = env.strip().lower() not in ("0", "false", "no", "off", "")
    events = t.get("events")
    if events is None:
        chosen = NOTIFY_EVENTS
    else:
        if isinstance(events, str) or not all(isinstance(e, str) for e in events):
            raise SettingsError("notifications.events must be a list of event names")
        unknown = [e for e in events if e not in NOTIFY_EVENTS]
        if unknown:
            raise SettingsError(
                f"notifications.events: unknown event {unknown[0]!r} "
                f"(one of: {', '.join(NOTIFY_EVENTS)})"
            )
        chosen = tuple(events)
    return NotificationSettings(
        enabled=enabled,
        events=chosen,
        max_attempts=max(1, int(t.get("max_attempts", 8))),
        lease_s=max(1.0, float(t.get("lease_s", 600.0))),
    )


def load_gateways(data: dict[str, Any]) -> dict[str, GatewayConfig]:
    """``[gateways.stripe]`` / ``[gateways.paypal]`` tables, overridden by
    ``PULSE_STRIPE_SECRET_KEY``, ``PULSE_STRIPE_BASE_URL``, ``PULSE_PAYPAL_CLIENT_ID``,
    ``PULSE_PAYPAL_SECRET`` and ``PULSE_PAYPAL_BASE_URL``."""
    tables = data.get("gateways") or {}
    out: dict[str, GatewayConfig] = {}
    for name, default_url in GATEWAY_DEFAULT_URLS.items():
        t = tables.get(name) or {}
        up = name.upper()
        secret_env = "PULSE_STRIPE_SECRET_KEY" if name == "stripe" else "PULSE_PAYPAL_SECRET"
        out[name] = GatewayConfig(
            name=name,
            base_url=os.environ.get(f"PULSE_{up}_BASE_URL") or t.get("base_url") or default_url,
            secret_key=os.environ.get(secret_env) or t.get("secret_key") or t.get("secret"),
            client_id=os.environ.get(f"PULSE_{up}_CLIENT_ID") or t.get("client_id"),
            enabled=bool(t.get("enabled", True)),
        )
    return out


def save_setting(key: str, value: Any, path: Path | None = None) -> None:
    """Persist one key (e.g. the chosen theme) without touching the others."""
    p = path or config_path()
    data = load_file(p)
    data[key] = value
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(tomli_w.dumps(data).encode())
