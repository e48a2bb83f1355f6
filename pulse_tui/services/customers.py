"""Customers: who the desk writes to.

Who may call: anyone who may read orders reads customers (Permission.READ);
agents and admins create them and change their email preference
(Permission.EDIT). Email addresses are checked with email-validator when a
customer is created and stored in its normalised form (lower-case domain,
Unicode NFC); deliverability (DNS) is not checked: the desk may run offline.
A customer marked "no transactional email" gets no notifications: the
notifications service skips them with a timeline note.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from babel import Locale, UnknownLocaleError
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from pulse_tui.domain import notifications as notify_rules
from pulse_tui.domain.geo import normalize_country
from pulse_tui.domain.permissions import Permission
from pulse_tui.domain.text import clean_free_text
from pulse_tui.storage import queries
from pulse_tui.storage.db import read_session, write_session
from pulse_tui.storage.models import Address, Customer, Order

from .audit import record_audit
from .context import Context
from .errors import Conflict, InvalidInput, NotFound
from .orders import AddressInput

MAX_NAME = 200
MAX_PHONE = 40
MAX_LIST = 5000


def normalize_email(text: str) -> str:
    """The address in email-validator's normalised form, or InvalidInput with
    its reason ("invalid email address 'x': An email address must have an @-sign.").
    The same rule the outbox applies (domain.notifications)."""
    raw = (text or "").strip()
    if not raw:
        raise InvalidInput("an email address is required")
    try:
        return notify_rules.normalize_email(raw)
    except notify_rules.AddressError as exc:
        raise InvalidInput(str(exc)) from None


def normalize_locale(text: str) -> str:
    """``de-DE`` / ``de_de`` / ``de_DE`` → ``de_DE`` (a CLDR locale), or InvalidInput."""
    raw = (text or "").strip()
    try:
        return str(Locale.parse(raw.replace("-", "_")))
    except (UnknownLocaleError, ValueError, TypeError):
        raise InvalidInput(f"unknown locale {text!r} (expected e.g. en_US, de_DE)") from None


def _clean(text: str | None, what: str, max_len: int) -> str | None:
    if text is None or not text.strip():
        return None
    try:
        return clean_free_text(text, what, max_len=max_len)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


@dataclass(frozen=True)
class CustomerRow:
    """A customer as lists show it."""

    id: int
    name: str
    email: str
    phone: str | None
    company: str | None
    locale: str
    transactional_email: bool  # False: marked "no transactional email"
    created_at: datetime
    orders: int


def _row(c: Customer, orders: int = 0) -> CustomerRow:
    assert c.id is not None
    return CustomerRow(
        id=c.id,
        name=c.name,
        email=c.email,
        phone=c.phone,
        company=c.company,
        locale=c.locale,
        transactional_email=not c.no_transactional_email,
        created_at=c.created_at,
        orders=orders,
    )


def _snapshot(c: Customer) -> dict[str, Any]:
    return {
        "name": c.name,
        "email": c.email,
        "phone": c.phone,
        "company": c.company,
        "locale": c.locale,
        "no_transactional_email": c.no_transactional_email,
    }


class CustomerService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    # -- write -------------------------------------------------------------------

    def create(
        self,
        name: str,
        email: str,
        *,
        phone: str | None = None,
        company: str | None = None,
        locale: str = "en_US",
        transactional_email: bool = True,
        shipping_address: AddressInput | None = None,
        billing_address: AddressInput | None = None,
    ) -> CustomerRow:
        """Agents and admins. A new customer (and its addresses), with an audit
        entry. The email is validated and stored normalised; an address
        another customer already has (any case) is a Conflict."""
        self.ctx.actor.require(Permission.EDIT, "add customers")
        clean_name = _clean(name, "name", MAX_NAME)
        if clean_name is None:
            raise InvalidInput("a customer needs a name")
        addr = normalize_email(email)
        clean_phone = _clean(phone, "phone", MAX_PHONE)
        clean_company = _clean(company, "company", MAX_NAME)
        clean_locale = normalize_locale(locale)
        addresses = [
            (kind, _address(a))
            for kind, a in (("billing", billing_address), ("shipping", shipping_address))
            if a is not None
        ]
        with write_session(self.ctx.engine) as s:
            other = s.execute(
                select(col(Customer.id), col(Customer.name))
                .where(func.lower(col(Customer.email)) == addr.lower())
                .limit(1)
            ).first()
            if other is not None:
                raise Conflict(f"customer #{other[0]} ({other[1]}) already has the address {addr}")
            c = Customer(
                name=clean_name,
                email=addr,
                phone=clean_phone,
                company=clean_company,
                locale=clean_locale,
                no_transactional_email=not transactional_email,
                created_at=self.ctx.now(),
            )
            s.add(c)
            s.flush()
            assert c.id is not None
            for kind, a in addresses:
                s.add(Address(customer_id=c.id, kind=kind, **a))
            record_audit(
                s,
                self.ctx,
                "customer.create",
                "customer",
                c.id,
                None,
                {**_snapshot(c), "addresses": [k for k, _ in addresses]},
            )
            s.flush()
            return _row(c)

    def set_transactional_email(self, customer_id: int, allowed: bool) -> CustomerRow:
        """Agents and admins. Allow or block transactional email (order
        confirmations, shipping news, ...) to this customer. A change writes an
        audit entry; asking for what is already so changes nothing."""
        self.ctx.actor.require(Permission.EDIT, "change a customer's email preference")
        with write_session(self.ctx.engine) as s:
            c = self._load(s, customer_id)
            before = _snapshot(c)
            if c.no_transactional_email != (not allowed):
                c.no_transactional_email = not allowed
                s.add(c)
                record_audit(
                    s,
                    self.ctx,
                    "customer.transactional_email",
                    "customer",
                    customer_id,
                    {"no_transactional_email": before["no_transactional_email"]},
                    {"no_transactional_email": c.no_transactional_email},
                )
                s.flush()
            return _row(c, self._order_count(s, customer_id))

    # -- read --------------------------------------------------------------------

    def get(self, customer_id: int) -> CustomerRow:
        """Anyone who may read orders. NotFound for an unknown id."""
        self.ctx.actor.require(Permission.READ, "read customers")
        with read_session(self.ctx.engine) as s:
            c = self._load(s, customer_id)
            return _row(c, self._order_count(s, customer_id))

    def list(
        self, search: str | None = None, *, limit: int = 50, after_id: int = 0
    ) -> tuple[list[CustomerRow], bool]:
        """Anyone who may read orders. Customers by id (oldest first), after
        ``after_id``; ``search`` matches a fragment of the name or email (any
        case), or ``#ID``. Returns (rows, more_exist)."""
        self.ctx.actor.require(Permission.READ, "read customers")
        if isinstance(limit, bool) or not 1 <= limit <= MAX_LIST:
            raise InvalidInput(f"limit must be between 1 and {MAX_LIST}")
        text = (search or "").strip()
        with read_session(self.ctx.engine) as s:
            stmt = select(Customer).where(col(Customer.id) > after_id)
            if text.startswith("#") and text[1:].isdigit():
                stmt = stmt.where(col(Customer.id) == int(text[1:]))
            elif text:
                stmt = stmt.where(col(Customer.id).in_(queries._customers_matching(s, text)))
            found = list(s.execute(stmt.order_by(col(Customer.id)).limit(limit + 1)).scalars())
            more = len(found) > limit
            found = found[:limit]
            counts = self._order_counts(s, [c.id for c in found if c.id is not None])
            return [_row(c, counts.get(c.id or 0, 0)) for c in found], more

    # -- helpers -----------------------------------------------------------------

    @staticmethod
    def _load(s: Session, customer_id: int) -> Customer:
        c = s.get(Customer, customer_id)
        if c is None:
            raise NotFound(f"no customer #{customer_id}")
        return c

    @staticmethod
    def _order_count(s: Session, customer_id: int) -> int:
        return CustomerService._order_counts(s, [customer_id]).get(customer_id, 0)

    @staticmethod
    def _order_counts(s: Session, ids: Sequence[int]) -> dict[int, int]:
        if not ids:
            return {}
        rows = s.execute(
            select(col(Order.customer_id), func.count())
            .where(col(Order.customer_id).in_(list(ids)))
            .group_by(col(Order.customer_id))
        )
        return {int(cid): int(n) for cid, n in rows}


def _address(a: AddressInput) -> dict[str, Any]:
    try:
        country = normalize_country(a.country)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    out: dict[str, Any] = {"country": country}
    for field_, max_len, required in (
        ("name", MAX_NAME, True),
        ("line1", MAX_NAME, True),
        ("line2", MAX_NAME, False),
        ("city", MAX_NAME, True),
        ("postal_code", MAX_PHONE, False),
        ("region", MAX_NAME, False),
    ):
        value = _clean(getattr(a, field_), f"address {field_.replace('_', ' ')}", max_len)
        if value is None and required:
            raise InvalidInput(f"an address needs a {field_}")
        out[field_] = value
    return out
