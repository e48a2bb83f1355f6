"""Output conventions: results on stdout (JSON only with --json), everything
else (messages, progress, errors) on stderr."""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn

import typer
from rich.console import Console

from pulse_tui.domain.money import format_money
from pulse_tui.services.errors import InvalidInput

from . import exit_codes

PIPE_WIDTH = 160


def out_console() -> Console:
    # Built per call: sys.stdout may be swapped (tests, pipes). Piped output has
    # no terminal to fit, so tables get room instead of Rich's 80 columns.
    width = None
    if not sys.stdout.isatty() and not os.environ.get("COLUMNS"):
        width = PIPE_WIDTH
    return Console(file=sys.stdout, highlight=False, soft_wrap=False, width=width)


def err_console() -> Console:
    return Console(file=sys.stderr, highlight=False)


def message(text: str) -> None:
    """An informational line for humans: stderr, so stdout stays parseable."""
    sys.stdout.flush()  # keep the order right when both go to one terminal
    sys.stderr.write(text.rstrip("\n") + "\n")
    sys.stderr.flush()


def result_line(text: str) -> None:
    sys.stdout.write(text.rstrip("\n") + "\n")


def fail(text: str, code: int = exit_codes.FAILED) -> NoReturn:
    """One readable line on stderr, then exit with ``code``."""
    first = " ".join(str(text).split()) or "failed"
    sys.stderr.write(f"error: {first}\n")
    sys.stderr.flush()
    raise typer.Exit(code)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def print_csv(rows: Iterable[Mapping[str, Any]], fields: Sequence[str]) -> None:
    w = csv.DictWriter(
        sys.stdout, fieldnames=list(fields), extrasaction="ignore", lineterminator="\n"
    )
    w.writeheader()
    for row in rows:
        w.writerow({k: _csv_value(row.get(k)) for k in fields})


def _csv_value(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, datetime):
        return iso(v)
    return v


def output_mode(as_json: bool, as_csv: bool = False) -> str:
    if as_json and as_csv:
        raise InvalidInput("choose one of --json or --csv")
    return "json" if as_json else "csv" if as_csv else "human"


def aware(dt: datetime) -> datetime:
    # SQLite hands back naive UTC; everything we store is UTC.
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def iso(dt: datetime | None) -> str | None:
    return aware(dt).astimezone(UTC).isoformat() if dt is not None else None


def short_time(dt: datetime | None) -> str:
    return aware(dt).astimezone(UTC).strftime("%Y-%m-%d %H:%M") if dt is not None else ""


def money(amount: int, currency: str) -> str:
    return format_money(amount, currency)
