"""Export orders to CSV, JSON Lines or XLSX, streamed (admins: Permission.EXPORT)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path

from .bulk import Selection
from .context import Context


class ExportFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"
    XLSX = "xlsx"


EXPORT_COLUMNS: tuple[str, ...] = (
    "number",
    "placed_at",
    "status",
    "payment_status",
    "fulfillment_status",
    "on_hold",
    "hold_reason",
    "customer_name",
    "customer_email",
    "country",
    "currency",
    "subtotal",
    "discount",
    "shipping",
    "tax",
    "total",
    "total_minor",
    "paid",
    "refunded",
    "item_count",
    "items",
    "tags",
    "updated_at",
)
DEFAULT_COLUMNS: tuple[str, ...] = (
    "number",
    "placed_at",
    "status",
    "payment_status",
    "fulfillment_status",
    "customer_name",
    "customer_email",
    "country",
    "currency",
    "total",
    "total_minor",
    "items",
    "tags",
)


def export_orders(
    ctx: Context,
    selection: Selection,
    fmt: ExportFormat,
    path: Path,
    *,
    columns: Sequence[str] | None = None,
    force: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> int:
    """Admins. Write the selection's orders to ``path``; returns rows written."""
    raise NotImplementedError
