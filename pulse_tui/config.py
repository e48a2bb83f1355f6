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
class Settings:
    database_url: str
    operator: str | None = None
    theme: str = "pulse-dark"
    refund_limit_minor: int = 50_000  # agents may refund up to this without approval
    raw: dict[str, Any] = field(default_factory=dict)


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
    )


def save_setting(key: str, value: Any, path: Path | None = None) -> None:
    """Persist one key (e.g. the chosen theme) without touching the others."""
    p = path or config_path()
    data = load_file(p)
    data[key] = value
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(tomli_w.dumps(data).encode())
