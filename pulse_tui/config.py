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
    # repr=False: the raw file may hold gateway secrets.
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    gateways: dict[str, GatewayConfig] = field(default_factory=dict)
    sync_interval_s: float = 30.0


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
        refund_limit_minor=int(data.get("refund_limit_minor", 50_000)),
        raw=data,
        gateways=load_gateways(data),
        sync_interval_s=float(
            os.environ.get("PULSE_SYNC_INTERVAL") or data.get("sync_interval_s", 30.0)
        ),
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
