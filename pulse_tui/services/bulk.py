"""Bulk actions: one change applied to every order of a selection.

Who may call: admins (Permission.BULK). A selection is a query (the list's
filter, or a list of ids), never a list of loaded rows, so it works for
500,000 matches. ``preview`` says how many orders would change and why the
others would not (the domain's own messages, grouped); ``apply`` commits in
chunks: each chunk is one write transaction over its orders (change,
OrderEvent, AuditEntry, optimistic version guard), so a cancel or a crash
leaves every order fully changed or untouched, and running the same request
again changes nothing more.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from pulse_tui.domain.filters import OrderFilter

from .context import Context


class BulkKind(StrEnum):
    TRANSITION = "transition"
    SHIP = "ship"
    HOLD = "hold"
    RELEASE = "release"
    TAG = "tag"
    NOTE = "note"
    CANCEL = "cancel"


@dataclass(frozen=True)
class Selection:
    """Which orders: every order matching ``filter`` (the query language / the list's
    current filter incl. its status tab), or, when ``ids`` is non-empty, exactly those ids."""

    filter: OrderFilter | None = None
    ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class BulkRequest:
    kind: BulkKind
    selection: Selection
    target: str | None = None  # TRANSITION: status value
    reason: str | None = None  # HOLD reason text; CANCEL reason code (CancelReason)
    text: str | None = None  # NOTE text; TAG: the tag
    remove: bool = False  # TAG: remove instead of add
    carrier: str | None = None  # SHIP
    tracking: Mapping[str, str] | None = None  # SHIP: order number -> tracking number


@dataclass(frozen=True)
class Preview:
    matched: int  # orders in the selection
    eligible: int  # would change
    skipped: dict[str, int]  # reason -> count, e.g. {"already shipped": 312, "on hold": 4}


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    changed: int
    skipped: int


@dataclass
class BulkResult:
    run_id: str
    kind: BulkKind
    matched: int
    changed: int
    skipped: dict[str, int]  # reason -> count
    changed_sample: list[str]  # order numbers, first 200
    skipped_sample: list[tuple[str, str]]  # (order number, reason), first 200
    cancelled: bool = False


class BulkService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def allowed_kinds(self) -> list[BulkKind]:
        """The bulk actions this actor may run (empty for non-admins)."""
        raise NotImplementedError

    def preview(self, request: BulkRequest) -> Preview:
        """Admins. How many orders the request would change and, grouped by
        the domain's reason, how many it would skip. Reads only."""
        raise NotImplementedError

    def apply(
        self,
        request: BulkRequest,
        *,
        chunk_size: int = 500,
        on_progress: Callable[[Progress], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> BulkResult:
        """Admins. Apply the request chunk by chunk (one transaction each);
        ``on_progress`` after every chunk, stop between chunks when
        ``should_cancel()`` is true (``result.cancelled``)."""
        raise NotImplementedError


def read_tracking_csv(text: str) -> dict[str, str]:
    """``order,tracking`` rows (an optional header) → {order number: tracking}.
    Raises InvalidInput naming the first bad row."""
    raise NotImplementedError
