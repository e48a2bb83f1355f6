"""Bank transfer reconciliation: statement lines matched to orders awaiting a transfer.

A customer paying by bank transfer quotes the order number (``PB-100042``) as
the transfer's reference. ``Reconciler.run`` reads a bank statement (CSV),
finds the order number in each line's reference/description text, and when
the amount and currency are exactly what the order still owes, marks it paid
through ``OrderService.confirm_payment`` (gateway and method
``bank_transfer``, reference = the statement line id), which moves a pending
order to processing with its timeline event and audit entry.

Everything else is reported and left alone for an operator:

- unmatched: no order number in the text, no such order, or an order that is
  not awaiting payment (cancelled, already paid some other way);
- ambiguous: two different order numbers in one line;
- duplicate: the same order referenced by more than one line of the statement
  (none of those lines is applied);
- overpaid / underpaid / wrong currency: the money differs from what is due;
- refused: the line holds what looks like a full card number (never stored,
  and withheld from the report).

Re-running the same statement changes nothing more: an order paid earlier by
the very same statement line is reported as "already paid" and needs no
attention. Debits and zero lines are ignored.

Statement format (liberal): the first row is a header; names are matched
case-insensitively (``Date``/``Booking date``, ``Amount``/``Credit``,
``Currency``/``CCY``, any of ``Reference``/``Description``/``Details``/
``Memo``/``Remittance information`` — all of them are searched — and an
optional ``Id``/``Transaction id``). The delimiter may be ``,``, ``;`` or a
tab. Amounts are decimal text in major units (``1234.50``, ``1,234.50``,
``1.234,50``, ``+12.50``). A row that cannot be read makes the whole
statement invalid (InvalidInput) and nothing changes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from pulse_tui.domain.money import Money, MoneyError, format_money, plain_amount
from pulse_tui.domain.numbers import PREFIX
from pulse_tui.domain.payments import PaymentMethod
from pulse_tui.domain.permissions import Permission
from pulse_tui.domain.status import (
    PAID_STATES,
    OrderState,
    OrderStatus,
    PaymentStatus,
    awaiting_payment,
)
from pulse_tui.domain.text import contains_card_number
from pulse_tui.storage.db import read_session
from pulse_tui.storage.models import Order, Payment

from .context import Context
from .errors import Conflict, InvalidInput, NotFound, RuleViolation, ServiceError
from .orders import OrderService

GATEWAY = "bank_transfer"
METHOD = PaymentMethod.BANK_TRANSFER.value
MAX_STATEMENT_BYTES = 50 * 1024 * 1024
MAX_ID_LEN = 120
WITHHELD = "(withheld: looks like a card number)"

# The prefix without its dash, then an optional dash/space, then the sequence:
# "PB-100042", "pb 100042", "PB100042" — never digits cut out of a longer run.
_PREFIX = PREFIX.rstrip("-")
_REF_RE = re.compile(rf"(?<![A-Za-z0-9]){_PREFIX}[-\s]?(\d{{6,}})(?!\d)", re.IGNORECASE)

_HEADERS: dict[str, tuple[str, ...]] = {
    "date": ("date", "booking_date", "value_date", "transaction_date", "posting_date", "posted"),
    "amount": ("amount", "credit", "amount_received", "value"),
    "currency": ("currency", "ccy", "cur", "currency_code"),
    "id": ("id", "line_id", "transaction_id", "txn_id", "entry_id", "statement_id"),
    "text": (
        "reference",
        "description",
        "details",
        "memo",
        "narrative",
        "remittance_information",
        "remittance",
        "purpose",
        "payment_reference",
        "text",
    ),
}


class LineOutcome(StrEnum):
    MATCHED = "matched"  # marked paid now (or would be, in a dry run)
    ALREADY_PAID = "already_paid"
    UNMATCHED = "unmatched"
    AMBIGUOUS = "ambiguous"
    DUPLICATE = "duplicate"
    OVERPAID = "overpaid"
    UNDERPAID = "underpaid"
    WRONG_CURRENCY = "wrong_currency"
    REFUSED = "refused"
    IGNORED = "ignored"  # debits and zero lines: not payments to us
    FAILED = "failed"  # the order changed while we applied; re-run


@dataclass(frozen=True)
class StatementLine:
    line: int  # physical line in the file (the header is line 1)
    id: str  # the bank's id, or one derived from the line's content
    date: str
    amount: int  # minor units of ``currency``; negative for debits
    currency: str
    text: str  # every reference/description column, joined

    @property
    def has_card_number(self) -> bool:
        return contains_card_number(self.text) or contains_card_number(self.id)

    @property
    def shown_text(self) -> str:
        return WITHHELD if self.has_card_number else self.text

    @property
    def references(self) -> tuple[str, ...]:
        """Distinct order numbers quoted in the text, in order of appearance."""
        seen: dict[str, None] = {}
        for m in _REF_RE.finditer(self.text):
            seen[f"{PREFIX}{m.group(1)}"] = None
        return tuple(seen)


@dataclass(frozen=True)
class LineResult:
    line: int
    id: str
    date: str
    amount: int
    currency: str
    text: str
    outcome: LineOutcome
    order: str | None = None
    references: tuple[str, ...] = ()
    due: int | None = None  # what the order still owes, in the order's currency
    due_currency: str | None = None
    message: str = ""
    attention: bool = True

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["outcome"] = self.outcome.value
        d["references"] = list(self.references)
        d["amount_text"] = plain_amount(self.amount, self.currency)
        return d


@dataclass
class ReconcileReport:
    dry_run: bool
    lines: list[LineResult] = field(default_factory=list)

    @property
    def attention(self) -> list[LineResult]:
        return [r for r in self.lines if r.attention]

    @property
    def ok(self) -> bool:
        """True when no line needs an operator."""
        return not self.attention

    @property
    def matched(self) -> list[LineResult]:
        return [r for r in self.lines if r.outcome == LineOutcome.MATCHED]

    def counts(self) -> dict[str, int]:
        c = Counter(r.outcome.value for r in self.lines)
        return {o.value: c[o.value] for o in LineOutcome if c[o.value]}

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "ok": self.ok,
            "counts": self.counts(),
            "needs_attention": len(self.attention),
            "lines": [r.as_dict() for r in self.lines],
        }


# -- reading a statement ---------------------------------------------------------


def load_statement(path: str | Path) -> list[StatementLine]:
    """Read and parse a statement file; InvalidInput when it cannot be read."""
    p = Path(path)
    try:
        if p.stat().st_size > MAX_STATEMENT_BYTES:
            raise InvalidInput(f"{p}: statement larger than {MAX_STATEMENT_BYTES} bytes")
        raw = p.read_bytes()
    except FileNotFoundError:
        raise InvalidInput(f"{p}: no such file") from None
    except IsADirectoryError:
        raise InvalidInput(f"{p}: is a directory, not a statement file") from None
    except OSError as exc:
        raise InvalidInput(f"{p}: cannot read statement: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(f"{p}: statement is not UTF-8 text") from None
    return parse_statement(text)


def parse_statement(text: str) -> list[StatementLine]:
    """Statement lines from CSV text (see the module docstring for the format)."""
    if "\x00" in text:
        raise InvalidInput("statement is not a text CSV file")
    if not text.strip():
        raise InvalidInput("statement is empty")
    try:
        dialect: Any = csv.Sniffer().sniff(text[:8192], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    try:
        header = next(reader)
        roles = _header_roles(header)
        out: list[StatementLine] = []
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            out.append(_parse_row(row, roles, reader.line_num))
    except csv.Error as exc:
        raise InvalidInput(f"bad CSV at line {reader.line_num}: {exc}") from None
    return out


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


def _header_roles(header: Sequence[str]) -> dict[str, list[int]]:
    names = [_norm(h) for h in header]
    roles: dict[str, list[int]] = {}
    for role, synonyms in _HEADERS.items():
        idx = [i for i, n in enumerate(names) if n in synonyms]
        if role != "text":
            idx = idx[:1]
        if idx:
            roles[role] = idx
    missing = [r for r in ("date", "amount", "currency", "text") if r not in roles]
    if missing:
        want = ", ".join("reference/description" if m == "text" else m for m in missing)
        got = ", ".join(h.strip() for h in header) or "(nothing)"
        raise InvalidInput(f"statement header lacks {want} (found: {got})")
    return roles


def _cell(row: Sequence[str], i: int) -> str:
    return row[i].strip() if i < len(row) else ""


def _parse_row(row: Sequence[str], roles: dict[str, list[int]], line: int) -> StatementLine:
    date = _cell(row, roles["date"][0])
    amount_text = _cell(row, roles["amount"][0])
    currency = _cell(row, roles["currency"][0])
    text = " ".join(t for t in (_cell(row, i) for i in roles["text"]) if t)
    if not amount_text:
        raise InvalidInput(f"line {line}: no amount")
    if not currency:
        raise InvalidInput(f"line {line}: no currency")
    try:
        money = Money.parse(_plain_decimal(amount_text), currency)
    except MoneyError as exc:
        raise InvalidInput(f"line {line}: {exc}") from None
    given_id = _cell(row, roles["id"][0]) if "id" in roles else ""
    if len(given_id) > MAX_ID_LEN:
        raise InvalidInput(f"line {line}: id longer than {MAX_ID_LEN} characters")
    line_id = given_id or _derived_id(date, amount_text, money.currency, text)
    return StatementLine(line, line_id, date, money.amount, money.currency, text)


def _plain_decimal(text: str) -> str:
    """'1,234.50', '1.234,50', '+12.50', '12,50' → plain decimal text for Money.parse."""
    t = text.replace(" ", "").replace("\u00a0", "").replace("'", "")
    t = t.removeprefix("+")
    if "," in t and "." in t:
        if t.rfind(",") > t.rfind("."):  # 1.234,50
            t = t.replace(".", "").replace(",", ".")
        else:  # 1,234.50
            t = t.replace(",", "")
    elif "," in t:
        # One comma not followed by exactly three digits is a decimal comma
        # (12,50); otherwise it groups thousands (1,234 / 1,234,567).
        if t.count(",") == 1 and not re.fullmatch(r"-?\d{1,3},\d{3}", t):
            t = t.replace(",", ".")
        else:
            t = t.replace(",", "")
    return t


def _derived_id(date: str, amount: str, currency: str, text: str) -> str:
    """A stable id for banks that give none: the same line gives the same id on
    every run (and in an overlapping export), so a re-run is recognised."""
    digest = hashlib.sha256(f"{date}|{amount}|{currency}|{text}".encode()).hexdigest()[:12]
    return f"stmt-{digest}"


# -- matching --------------------------------------------------------------------


@dataclass(frozen=True)
class _OrderView:
    number: str
    status: str
    payment_status: str
    currency: str
    due: int
    version: int
    paid_by_line: frozenset[str]  # bank-transfer line ids recorded on this order
    other_payment: str | None  # how it was paid otherwise, for the message


class Reconciler:
    """Bank statement reconciliation (agents and admins; viewers may dry-run)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def run(self, lines: Sequence[StatementLine], *, dry_run: bool = False) -> ReconcileReport:
        """Match ``lines`` to orders awaiting a transfer and, unless ``dry_run``,
        mark every cleanly matched order paid (each in its own transaction,
        through OrderService.confirm_payment). Lines needing attention change
        nothing. Agents and admins; a dry run needs only payment read access."""
        if dry_run:
            self.ctx.actor.require(Permission.READ_PAYMENTS, "reconcile bank statements")
        else:
            self.ctx.actor.require(Permission.HOLD, "confirm bank transfers")
        report = ReconcileReport(dry_run=dry_run)
        planned = self._plan(lines)
        svc = OrderService(self.ctx)
        for ln, res, view in planned:
            if res.outcome == LineOutcome.MATCHED and not dry_run:
                assert view is not None
                res = self._apply(svc, ln, res, view)
            report.lines.append(res)
        return report

    def _plan(
        self, lines: Sequence[StatementLine]
    ) -> list[tuple[StatementLine, LineResult, _OrderView | None]]:
        refs_per_line = {ln.line: ln.references for ln in lines}
        single = [r[0] for r in refs_per_line.values() if len(r) == 1]
        times_referenced = Counter(single)
        views = self._orders(set(single))
        out = []
        for ln in lines:
            refs = refs_per_line[ln.line]
            view = views.get(refs[0]) if len(refs) == 1 else None
            res = self._classify(ln, refs, view, times_referenced)
            out.append((ln, res, view))
        return out

    def _classify(
        self,
        ln: StatementLine,
        refs: tuple[str, ...],
        view: _OrderView | None,
        times_referenced: Counter[str],
    ) -> LineResult:
        def result(outcome: LineOutcome, message: str, *, attention: bool = True) -> LineResult:
            return LineResult(
                line=ln.line,
                id=WITHHELD if contains_card_number(ln.id) else ln.id,
                date=ln.date,
                amount=ln.amount,
                currency=ln.currency,
                text=ln.shown_text,
                outcome=outcome,
                order=view.number if view else (refs[0] if len(refs) == 1 else None),
                references=refs,
                due=view.due if view else None,
                due_currency=view.currency if view else None,
                message=message,
                attention=attention,
            )

        if ln.amount <= 0:
            return result(LineOutcome.IGNORED, "not a credit", attention=False)
        if ln.has_card_number:
            return result(
                LineOutcome.REFUSED,
                "the line holds what looks like a card number; card data is never stored",
            )
        if not refs:
            return result(LineOutcome.UNMATCHED, "no order number in the reference")
        if len(refs) > 1:
            return result(LineOutcome.AMBIGUOUS, "more than one order number: " + ", ".join(refs))
        if times_referenced[refs[0]] > 1:
            n = times_referenced[refs[0]]
            return result(LineOutcome.DUPLICATE, f"{refs[0]} is referenced by {n} lines")
        if view is None:
            return result(LineOutcome.UNMATCHED, f"no order {refs[0]}")
        if ln.id in view.paid_by_line:
            return result(
                LineOutcome.ALREADY_PAID, "already paid by this statement line", attention=False
            )
        if view.payment_status in PAID_STATES:
            how = f" ({view.other_payment})" if view.other_payment else ""
            return result(
                LineOutcome.ALREADY_PAID,
                f"{view.number} is already paid{how}: possible double payment",
            )
        state = OrderState(OrderStatus(view.status), PaymentStatus(view.payment_status))
        if not awaiting_payment(state):
            return result(
                LineOutcome.UNMATCHED,
                f"{view.number} is not awaiting payment ({view.status}, {view.payment_status})",
            )
        if ln.currency != view.currency:
            return result(
                LineOutcome.WRONG_CURRENCY,
                f"paid in {ln.currency}, {view.number} is in {view.currency}",
            )
        due = format_money(view.due, view.currency)
        got = format_money(ln.amount, ln.currency)
        if ln.amount > view.due:
            return result(LineOutcome.OVERPAID, f"received {got}, {due} due")
        if ln.amount < view.due:
            return result(LineOutcome.UNDERPAID, f"received {got}, {due} due")
        return result(LineOutcome.MATCHED, f"{got} for {view.number}", attention=False)

    def _orders(self, numbers: Iterable[str]) -> dict[str, _OrderView]:
        wanted = sorted(numbers)
        views: dict[str, _OrderView] = {}
        with read_session(self.ctx.engine) as s:
            for i in range(0, len(wanted), 500):
                chunk = wanted[i : i + 500]
                orders = list(
                    s.execute(select(Order).where(col(Order.number).in_(chunk))).scalars()
                )
                ids = [o.id for o in orders]
                pays: dict[int, list[Payment]] = {}
                for p in s.execute(
                    select(Payment).where(col(Payment.order_id).in_(ids)).order_by(col(Payment.id))
                ).scalars():
                    pays.setdefault(p.order_id, []).append(p)
                for o in orders:
                    assert o.id is not None
                    ps = pays.get(o.id, [])
                    by_line = frozenset(
                        p.gateway_ref for p in ps if p.gateway == GATEWAY and p.gateway_ref
                    )
                    paid = [p for p in ps if p.status in PAID_STATES]
                    other = (
                        f"{paid[-1].gateway} {paid[-1].gateway_ref or ''}".strip() if paid else None
                    )
                    views[o.number] = _OrderView(
                        o.number,
                        o.status,
                        o.payment_status,
                        o.currency,
                        o.total - o.paid,
                        o.version,
                        by_line,
                        other,
                    )
        return views

    def _apply(
        self, svc: OrderService, ln: StatementLine, res: LineResult, view: _OrderView
    ) -> LineResult:
        try:
            svc.confirm_payment(
                view.number,
                expected_version=view.version,
                gateway=GATEWAY,
                method=METHOD,
                reference=ln.id,
            )
        except (Conflict, RuleViolation, NotFound) as exc:
            return _replace(res, LineOutcome.FAILED, f"{exc.message}; re-run to retry")
        except ServiceError:
            raise
        return res


def _replace(res: LineResult, outcome: LineOutcome, message: str) -> LineResult:
    return replace(res, outcome=outcome, message=message, attention=True)


__all__ = [
    "LineOutcome",
    "LineResult",
    "ReconcileReport",
    "Reconciler",
    "StatementLine",
    "load_statement",
    "parse_statement",
]
