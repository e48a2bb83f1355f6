"""Demo data: a realistic, deterministic order desk in seconds.

``seed`` fills an empty database with operators, customers in many countries
(Faker, one seeded generator per locale), ~40 physical and digital products in
six currencies, and orders in every status whose money, goods, payments,
refunds, shipments and timelines agree with the rules the services enforce.

Each order gets a *fate* (delivered, cancelled, refunded, held, ...) and a
timeline of steps; the steps that happened before ``now`` make its current
state, so recent orders are naturally still pending, processing or shipped.

Speed: rows are plain tuples written with DB-API ``executemany`` in one
transaction (storage.bulk), never through the ORM; Faker runs only to fill
small per-locale pools that are then combined; line totals come from
domain.totals once per (product, quantity). Same ``seed`` and ``now`` → the
same database, byte for byte in every row.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import random
import re
import subprocess
import sys
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from faker import Faker
from sqlalchemy import Engine

from pulse_tui.domain.geo import normalize_country
from pulse_tui.domain.money import exponent, format_money
from pulse_tui.domain.numbers import order_number
from pulse_tui.domain.permissions import Role
from pulse_tui.domain.status import CancelReason
from pulse_tui.domain.totals import LineInput, line_totals
from pulse_tui.storage.bulk import (
    US_PER_DAY,
    US_PER_SECOND,
    BulkLoader,
    bulk_load,
    timestamp_text,
    to_us,
)
from pulse_tui.storage.db import ensure_schema
from pulse_tui.storage.search import email_words

from .errors import InvalidInput
from .operators import DEMO_OPERATOR

MAX_ORDERS = 10_000_000
MAX_CUSTOMERS = 200_000
CHUNK = 20_000  # orders per executemany batch (and per progress call)
PARALLEL_FROM = 50_000  # from this many orders, rows are generated in a child process
SPAN_DAYS = 3 * 365

_MIN = 60 * US_PER_SECOND
_HOUR = 60 * _MIN


@dataclass(frozen=True)
class SeedSummary:
    orders: int
    customers: int
    products: int
    lines: int
    seconds: float


# -- the catalogue -----------------------------------------------------------


@dataclass(frozen=True)
class _Locale:
    faker: str
    locale: str  # customer.locale
    country: str
    currency: str
    weight: int


LOCALES: tuple[_Locale, ...] = (
    _Locale("en_US", "en_US", "US", "USD", 22),
    _Locale("en_GB", "en_GB", "GB", "GBP", 10),
    _Locale("de_DE", "de_DE", "DE", "EUR", 12),
    _Locale("fr_FR", "fr_FR", "FR", "EUR", 8),
    _Locale("es_ES", "es_ES", "ES", "EUR", 5),
    _Locale("it_IT", "it_IT", "IT", "EUR", 5),
    _Locale("nl_NL", "nl_NL", "NL", "EUR", 5),
    _Locale("pl_PL", "pl_PL", "PL", "EUR", 3),
    _Locale("sv_SE", "sv_SE", "SE", "SEK", 4),
    _Locale("ja_JP", "ja_JP", "JP", "JPY", 6),
    _Locale("pt_BR", "pt_BR", "BR", "USD", 3),
    _Locale("en_AU", "en_AU", "AU", "USD", 3),
    _Locale("en_CA", "en_CA", "CA", "USD", 4),
    _Locale("en_IE", "en_IE", "IE", "EUR", 2),
    _Locale("ar_AA", "ar_KW", "KW", "KWD", 2),
)

# Prices tax-inclusive where shops quote gross prices (VAT countries).
TAX_INCLUSIVE = {"EUR": True, "GBP": True, "SEK": True, "JPY": True, "USD": False, "KWD": False}
# (flat fee, free from) for orders with physical goods, minor units.
SHIPPING = {
    "EUR": (495, 5000),
    "USD": (799, 7500),
    "GBP": (399, 4000),
    "JPY": (800, 8000),
    "SEK": (4900, 50000),
    "KWD": (1500, 20000),
}

# sku, name, kind, unit price (minor units), currency, tax bp
PRODUCTS: tuple[tuple[str, str, str, int, str, int], ...] = (
    ("MUG-CLASSIC", "Classic mug", "physical", 1250, "EUR", 1900),
    ("TEE-ORG-M", "Organic T-shirt M", "physical", 2900, "EUR", 1900),
    ("HOODIE-L", "Hoodie L", "physical", 5900, "EUR", 1900),
    ("BOTTLE-STEEL", "Steel bottle 750 ml", "physical", 2400, "EUR", 1900),
    ("NOTEBOOK-A5", "A5 dotted notebook", "physical", 990, "EUR", 700),
    ("LAMP-DESK", "Desk lamp", "physical", 4990, "EUR", 1900),
    ("BACKPACK-20", "Backpack 20 L", "physical", 7900, "EUR", 1900),
    ("SOCKS-3P", "Socks, 3 pack", "physical", 1490, "EUR", 1900),
    ("EBOOK-PY-EU", "Python ebook", "digital", 1999, "EUR", 700),
    ("COURSE-SQL", "SQL video course", "digital", 4900, "EUR", 1900),
    ("LIC-PRO-EU", "Pro license, 1 year", "digital", 9900, "EUR", 1900),
    ("GIFT-25-EU", "Gift card 25", "digital", 2500, "EUR", 0),
    ("CAP-RED", "Red cap", "physical", 1800, "USD", 0),
    ("TEE-M-US", "T-shirt M", "physical", 2500, "USD", 725),
    ("MUG-US", "Diner mug", "physical", 1400, "USD", 725),
    ("KEYBOARD-MX", "Mechanical keyboard", "physical", 12900, "USD", 875),
    ("CABLE-USBC", "USB-C cable 2 m", "physical", 1299, "USD", 875),
    ("CHAIR-ERGO", "Ergonomic chair", "physical", 34900, "USD", 725),
    ("EBOOK-PY-US", "Python ebook", "digital", 2499, "USD", 0),
    ("LIC-PRO-US", "Pro license, 1 year", "digital", 11900, "USD", 0),
    ("FONT-PACK", "Font pack", "digital", 3900, "USD", 0),
    ("TEA-TIN", "Breakfast tea tin", "physical", 850, "GBP", 0),
    ("MUG-GB", "Bone china mug", "physical", 1100, "GBP", 2000),
    ("SCARF-WOOL", "Wool scarf", "physical", 3500, "GBP", 2000),
    ("UMBRELLA", "Compact umbrella", "physical", 2200, "GBP", 2000),
    ("EBOOK-GB", "Python ebook", "digital", 1699, "GBP", 2000),
    ("LIC-PRO-GB", "Pro license, 1 year", "digital", 8900, "GBP", 2000),
    ("TEA-SET", "Tea set", "physical", 4800, "JPY", 1000),
    ("CHOPSTICKS", "Lacquered chopsticks", "physical", 1200, "JPY", 1000),
    ("FURO-TOWEL", "Bath towel", "physical", 2200, "JPY", 1000),
    ("MATCHA-100", "Matcha 100 g", "physical", 3200, "JPY", 800),
    ("LIC-PRO-JP", "Pro license, 1 year", "digital", 13000, "JPY", 1000),
    ("CANDLE-SV", "Scented candle", "physical", 14900, "SEK", 2500),
    ("MITTENS", "Knitted mittens", "physical", 29900, "SEK", 2500),
    ("COFFEE-500", "Coffee beans 500 g", "physical", 8900, "SEK", 1200),
    ("DISHCLOTH", "Dishcloth set", "physical", 4900, "SEK", 2500),
    ("EBOOK-SV", "Python ebook", "digital", 19900, "SEK", 600),
    ("DATES-1KG", "Dates 1 kg", "physical", 4500, "KWD", 0),
    ("OUD-50ML", "Oud perfume 50 ml", "physical", 35000, "KWD", 0),
    ("COFFEE-KW", "Arabic coffee 500 g", "physical", 6750, "KWD", 0),
    ("PRAYER-MAT", "Prayer mat", "physical", 12000, "KWD", 0),
    ("LIC-PRO-KW", "Pro license, 1 year", "digital", 30000, "KWD", 0),
)
FRAGILE = frozenset({"MUG-CLASSIC", "MUG-US", "MUG-GB", "LAMP-DESK", "TEA-SET", "CANDLE-SV"})

OPERATORS: tuple[tuple[str, str, Role], ...] = (
    (DEMO_OPERATOR, "Demo Admin", Role.ADMIN),
    ("amara", "Amara Okafor", Role.AGENT),
    ("bruno", "Bruno Costa", Role.AGENT),
    ("chen", "Chen Wei", Role.AGENT),
    ("dara", "Dara Kelly", Role.WAREHOUSE),
    ("emil", "Emil Lindqvist", Role.WAREHOUSE),
    ("farah", "Farah Haddad", Role.VIEWER),
)
_AGENTS = ("amara", "bruno", "chen", DEMO_OPERATOR)
_WAREHOUSE = ("dara", "emil", "dara", "emil", DEMO_OPERATOR)

_CARRIERS = {
    "US": ("UPS", "FedEx"),
    "CA": ("UPS", "FedEx"),
    "GB": ("Royal Mail", "Royal Mail", "DHL"),
    "NL": ("PostNL", "PostNL", "DHL"),
    "JP": ("Japan Post",),
}
_DEFAULT_CARRIERS = ("DHL", "DHL", "UPS", "FedEx")

_HOLD_REASONS = (
    "address check",
    "address check",
    "fraud review",
    "awaiting stock",
    "customer asked to wait",
)
_NOTES = (
    "Customer asked for gift wrap",
    "Called customer to confirm the delivery address",
    "Customer asked when the parcel will arrive",
    "Leave the parcel with a neighbour if nobody is home",
    "Invoice sent again by email",
    "Customer wants the invoice in the company's name",
    "Packed in a double box",
)
_CANCEL_UNPAID = (
    CancelReason.CUSTOMER_REQUEST,
    CancelReason.CUSTOMER_REQUEST,
    CancelReason.CUSTOMER_REQUEST,
    CancelReason.PAYMENT_FAILED,
    CancelReason.PAYMENT_FAILED,
    CancelReason.DUPLICATE,
    CancelReason.FRAUD,
    CancelReason.ADDRESS_INVALID,
)
_CANCEL_PAID = (
    CancelReason.CUSTOMER_REQUEST,
    CancelReason.CUSTOMER_REQUEST,
    CancelReason.OUT_OF_STOCK,
    CancelReason.OUT_OF_STOCK,
    CancelReason.ADDRESS_INVALID,
    CancelReason.FRAUD,
    CancelReason.OTHER,
)
_REFUND_REASONS = ("returned", "damaged in transit", "wrong size", "not as described")

# Weighted tables: index with int(random() * len(table)).
_LINES_TABLE = (1,) * 30 + (2,) * 25 + (3,) * 20 + (4,) * 15 + (5,) * 10  # mean 2.5
_QTY_TABLE = (1,) * 75 + (2,) * 17 + (3,) * 5 + (4,) * 2 + (5,)
_GATEWAYS = ("stripe",) * 12 + ("paypal",) * 5 + ("bank_transfer",) * 3
_BRANDS = ("visa",) * 11 + ("mastercard",) * 7 + ("amex",) * 2
# fate: what eventually happens to an order (per mille)
_FATES = (
    ("complete", 827),
    ("awaiting_capture", 6),  # card authorised, never captured: stays pending
    ("partial_refund", 30),
    ("refund", 50),
    ("cancel_unpaid", 40),
    ("cancel_paid", 20),
    ("payment_failed", 10),
    ("held", 12),
    ("lost", 5),
)
_FATE_TABLE = tuple(f for f, w in _FATES for _ in range(w))

# Names for e-mail addresses where the locale's names are not in Latin script.
_KW_EMAIL_FIRST = ("ahmad", "mohammed", "fatima", "noura", "khaled", "abdullah", "sara", "yousef")
_KW_EMAIL_LAST = ("alsabah", "alenezi", "alajmi", "alrashidi", "almutairi", "alkandari")
_KW_CITIES = (
    ("Kuwait City", "Al Asimah"),
    ("Hawalli", "Hawalli"),
    ("Salmiya", "Hawalli"),
    ("Jahra", "Al Jahra"),
    ("Farwaniya", "Al Farwaniyah"),
    ("Fahaheel", "Al Ahmadi"),
)
_EMAIL_DOMAINS = ("example.com", "example.org", "example.net")


# -- money text without babel per row ----------------------------------------


@lru_cache(maxsize=64)
def _money_pattern(currency: str) -> tuple[str, str, int]:
    """(prefix, suffix, exponent) of format_money's en_US rendering."""
    exp = exponent(currency)
    sample = format_money(0, currency)
    digits = re.search(r"[0-9][0-9.,]*", sample)
    assert digits is not None
    return sample[: digits.start()], sample[digits.end() :], exp


def money_text(amount: int, currency: str) -> str:
    """format_money(amount, currency) for non-negative amounts, ~20x faster."""
    prefix, suffix, exp = _money_pattern(currency)
    if exp:
        major, minor = divmod(amount, 10**exp)
        return f"{prefix}{major:,}.{minor:0{exp}d}{suffix}"
    return f"{prefix}{amount:,}{suffix}"


# -- Faker pools ---------------------------------------------------------------


@dataclass(frozen=True)
class _Pool:
    first: tuple[str, ...]
    last: tuple[str, ...]
    email_first: tuple[str, ...]  # same length as first: e-mail-safe spelling
    email_last: tuple[str, ...]
    streets: tuple[str, ...]
    places: tuple[tuple[str, str | None, str | None], ...]  # city, postal code, region
    phones: tuple[str, ...]
    companies: tuple[str, ...]


def _ascii_slug(text: str) -> str:
    norm = unicodedata.normalize("NFKD", text.replace("ß", "ss").replace("ł", "l"))
    return re.sub(r"[^a-z]", "", norm.encode("ascii", "ignore").decode().lower())


def _stable_providers(fake: Faker) -> None:
    """Make Faker's draws independent of the process's string hash seed.

    Some providers build their choice lists from a set (it_IT's cities), so
    the same seed gave different cities in another process. Sorting fixes
    the order; the seeded draws are then the same everywhere.
    """
    for factory in fake.factories:
        for provider in factory.providers:
            cities = getattr(provider, "cities", None)
            if isinstance(cities, list):
                provider.cities = sorted(cities)


def pools_digest(seed: int, size: int) -> str:
    """A digest of the Faker pools (tests compare it across processes)."""
    import hashlib

    return hashlib.sha256(repr(_pools(seed, size)).encode()).hexdigest()


@lru_cache(maxsize=8)
def _pools(seed: int, size: int) -> tuple[_Pool, ...]:
    """Per-locale pools of names and addresses; Faker seeded per locale."""
    out = []
    for i, loc in enumerate(LOCALES):
        fake = Faker(loc.faker)
        _stable_providers(fake)
        fake.seed_instance(seed * 1000 + i)
        first, last, efirst, elast = [], [], [], []
        for _ in range(size):
            if loc.faker == "ja_JP":
                f_k, _, f_r = fake.first_name_pair()
                l_k, _, l_r = fake.last_name_pair()
                first.append(f_k)
                last.append(l_k)
                efirst.append(f_r.lower())
                elast.append(l_r.lower())
                continue
            f, la = fake.first_name(), fake.last_name()
            first.append(f)
            last.append(la)
            if loc.country == "KW":
                efirst.append(_KW_EMAIL_FIRST[len(first) % len(_KW_EMAIL_FIRST)])
                elast.append(_KW_EMAIL_LAST[len(first) * 7 % len(_KW_EMAIL_LAST)])
            else:
                efirst.append(_ascii_slug(f) or "customer")
                elast.append(_ascii_slug(la) or "shop")
        streets: list[str] = []
        places: list[tuple[str, str, str | None]] = []
        for _ in range(size):
            if loc.faker == "ja_JP":
                streets.append(f"{fake.town()}{fake.chome()}{fake.ban()}{fake.gou()}")
                places.append((fake.city(), fake.postcode(), fake.prefecture()))
            elif loc.country == "KW":
                r = fake.random
                streets.append(
                    f"Block {r.randint(1, 12)}, Street {r.randint(1, 140)}, "
                    f"House {r.randint(1, 60)}"
                )
                city, kw_region = _KW_CITIES[r.randrange(len(_KW_CITIES))]
                places.append((city, f"{r.randint(10, 99)}{r.randint(0, 999):03d}", kw_region))
            else:
                streets.append(fake.street_address().replace("\n", ", "))
                region = fake.administrative_unit() if loc.country in {"US", "CA", "AU"} else None
                places.append((fake.city(), fake.postcode(), region))
        phones = tuple(fake.phone_number() for _ in range(max(8, size // 4)))
        companies = tuple(fake.company() for _ in range(max(4, size // 8)))
        out.append(
            _Pool(
                tuple(first),
                tuple(last),
                tuple(efirst),
                tuple(elast),
                tuple(streets),
                tuple(places),
                phones,
                companies,
            )
        )
    return tuple(out)


# -- public entry point --------------------------------------------------------


def seed(
    engine: Engine,
    *,
    orders: int,
    seed: int = 42,
    now: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SeedSummary:
    """Fill an empty database with demo data (the CLI's `pulse demo seed`).

    Refuses (InvalidInput, nothing changed) when ``orders`` < 1 or the database
    already holds orders. Creates the ``demo`` admin and a few operators of
    each role, customers, products and ``orders`` orders, and one audit entry
    ``demo.seed``. Same ``seed`` and ``now`` → identical content.
    """
    if isinstance(orders, bool) or not isinstance(orders, int):
        raise InvalidInput(f"orders must be a whole number, got {orders!r}")
    if orders < 1:
        raise InvalidInput(f"orders must be at least 1, got {orders}")
    if orders > MAX_ORDERS:
        raise InvalidInput(f"orders must be at most {MAX_ORDERS:,}, got {orders:,}")
    if now is None:
        now = datetime.now(UTC)
    elif now.utcoffset() is None:
        raise InvalidInput("now must be a timezone-aware datetime")
    started = time.perf_counter()
    ensure_schema(engine)
    _refuse_if_seeded(engine)
    now_us = to_us(now)
    at = timestamp_text()(now_us)
    with bulk_load(engine) as db:
        _refuse_if_seeded_in(db)
        clash = sorted(
            {r[0] for r in db.execute("SELECT sku FROM products")} & {p[0] for p in PRODUCTS}
        )
        if clash:
            raise InvalidInput(f"the database already has demo products ({clash[0]}, ...)")
        first_ids = {
            t: int(db.execute(f"SELECT COALESCE(MAX(id), 0) FROM {t}")[0][0]) + 1
            for t in _ID_TABLES
        }
        _add_operators(db, at)
        db.drop_indexes(_BULK_TABLES)
        gen = _Generator(orders=orders, seed=seed, now_us=now_us, first_ids=first_ids)
        batches = _in_child(gen) if orders >= PARALLEL_FROM else gen.batches()
        lines = 0
        for batch in batches:
            for kind, table, columns, rows in batch:
                if kind == "insert":
                    if table != "order_search" or db.sqlite:
                        db.insert(table, columns, rows)
                elif kind == "update":
                    db.update(table, columns, rows)
                elif kind == "lines":
                    lines = rows
                elif kind == "progress" and progress is not None:
                    progress(rows, orders)
        db.insert(
            "audit_log",
            _AUDIT_COLS,
            [
                (
                    at,
                    DEMO_OPERATOR,
                    "demo.seed",
                    "demo",
                    str(seed),
                    None,
                    json.dumps(
                        {
                            "seed": seed,
                            "orders": orders,
                            "customers": gen.customer_count,
                            "products": len(PRODUCTS),
                            "lines": lines,
                        }
                    ),
                )
            ],
        )
    return SeedSummary(
        orders=orders,
        customers=gen.customer_count,
        products=len(PRODUCTS),
        lines=lines,
        seconds=round(time.perf_counter() - started, 3),
    )


_ID_TABLES = (
    "products",
    "customers",
    "addresses",
    "orders",
    "order_lines",
    "order_events",
    "payments",
    "refunds",
    "shipments",
)
# Tables whose secondary indexes are dropped for the load and rebuilt after it.
_BULK_TABLES = (
    "customers",
    "addresses",
    "orders",
    "order_lines",
    "order_events",
    "payments",
    "refunds",
    "shipments",
    "order_tags",
)
_AUDIT_COLS = ("at", "actor", "action", "entity", "entity_id", "before", "after")

# One message of a batch: (kind, table, columns, rows-or-value).
_Message = tuple[str, str, tuple[str, ...], Any]


def _add_operators(db: BulkLoader, at: str) -> None:
    """The demo admin (as OperatorService.ensure_demo_admin makes it) and a few colleagues."""
    have = {r[0] for r in db.execute("SELECT username FROM operators")}
    new = [(u, d, r) for u, d, r in OPERATORS if u not in have]
    db.insert(
        "operators",
        ("username", "display_name", "role", "unix_user", "active", "created_at"),
        [(u, d, r.value, None, True, at) for u, d, r in new],
    )
    db.insert(
        "audit_log",
        _AUDIT_COLS,
        [
            (
                at,
                "system",
                "operator.add",
                "operator",
                u,
                None,
                json.dumps({"role": r.value, "demo": True}),
            )
            for u, _d, r in new
        ],
    )


def _in_child(gen: _Generator) -> Iterator[list[_Message]]:
    """Run ``gen.batches()`` in a child Python process; this one only writes.

    Generation and SQLite inserts each take about half the time, so on two
    cores the load takes roughly the longer of the two instead of their sum.
    The child gets a pickled copy of ``gen`` (same Random state), so its
    batches are exactly those ``gen.batches()`` yields in-process. A plain
    subprocess (not multiprocessing) so the caller's ``__main__`` is never
    re-imported; batches come back as a stream of pickles on its stdout.
    """
    root = str(Path(__file__).resolve().parents[2])
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", "from pulse_tui.services.demo import _child_main; _child_main()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    try:
        pickle.dump(gen, proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
        proc.stdin.close()
        while True:
            try:
                batch = pickle.load(proc.stdout)
            except EOFError:
                err = proc.stderr.read().decode(errors="replace").strip()
                proc.wait()
                raise RuntimeError(f"demo data generator failed: {err[-2000:]}") from None
            if batch is None:
                break
            yield batch
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            stream.close()


def _child_main() -> None:
    """Entry point of the generator process (see _in_child)."""
    gen = pickle.load(sys.stdin.buffer)
    out = sys.stdout.buffer
    for batch in gen.batches():
        pickle.dump(batch, out, protocol=pickle.HIGHEST_PROTOCOL)
    pickle.dump(None, out)
    out.flush()


def _refuse_if_seeded(engine: Engine) -> None:
    with engine.connect() as conn:
        n = conn.exec_driver_sql("SELECT 1 FROM orders LIMIT 1").first()
    if n is not None:
        raise InvalidInput(
            "the database already holds orders: demo data goes into an empty database "
            "(use a new --db file)"
        )


def _refuse_if_seeded_in(db: BulkLoader) -> None:
    if db.execute("SELECT 1 FROM orders LIMIT 1"):
        raise InvalidInput("the database already holds orders: demo data needs an empty one")


# -- the generator -------------------------------------------------------------


class _Generator:
    """Builds every row as plain tuples, a batch at a time; touches no database.

    ``batches()`` yields lists of messages for the writer: products and
    customers first, then one batch of order rows per CHUNK orders, then the
    stock levels. Picklable, so it can run in a child process.
    """

    def __init__(self, *, orders: int, seed: int, now_us: int, first_ids: dict[str, int]) -> None:
        self.n_orders = orders
        self.seed = seed
        self.rng = random.Random(seed)
        self.now_us = now_us
        self.first_ids = first_ids
        self.customer_count = min(MAX_CUSTOMERS, max(20, orders // 5))
        self.line_count = 0
        self.out: list[_Message] = []

    def next_id(self, table: str) -> int:
        return self.first_ids[table]

    def insert(self, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        self.out.append(("insert", table, columns, rows))

    def _take(self) -> list[_Message]:
        out, self.out = self.out, []
        return out

    def batches(self) -> Iterator[list[_Message]]:
        self.now_text = timestamp_text()
        rand = self.rng.random

        def ri(a: int, b: int) -> int:  # randint without its Python-level overhead
            return a + int(rand() * (b - a + 1))

        self.ri = ri
        self._products()
        self._customers()
        yield self._take()
        yield from self._orders()
        self._stock()
        self.out.append(("lines", "", (), self.line_count))
        yield self._take()

    # -- operators, products, customers -------------------------------------

    def _products(self) -> None:
        first = self.next_id("products")
        self.product_ids = [first + i for i in range(len(PRODUCTS))]
        self.insert(
            "products",
            (
                "id",
                "sku",
                "name",
                "kind",
                "unit_price",
                "currency",
                "tax_rate_bp",
                "stock_on_hand",
                "stock_reserved",
                "active",
            ),
            [
                (pid, sku, name, kind, price, cur, tax, 0, 0, True)
                for pid, (sku, name, kind, price, cur, tax) in zip(
                    self.product_ids, PRODUCTS, strict=True
                )
            ],
        )
        self.by_currency: dict[str, list[int]] = {}
        for i, p in enumerate(PRODUCTS):
            self.by_currency.setdefault(p[4], []).append(i)
        # (product index, quantity) → (tax, line total), by domain.totals.
        self.line_cache: dict[tuple[int, int], tuple[int, int]] = {}
        self.reserved = [0] * len(PRODUCTS)

    def _line(self, p: int, qty: int) -> tuple[int, int]:
        hit = self.line_cache.get((p, qty))
        if hit is None:
            _sku, _name, _kind, price, cur, rate = PRODUCTS[p]
            lt = line_totals(LineInput(price, qty, rate), tax_inclusive=TAX_INCLUSIVE[cur])
            hit = self.line_cache[(p, qty)] = (lt.tax, lt.total)
        return hit

    def _customers(self) -> None:
        rng = self.rng
        n = self.customer_count
        size = max(40, min(250, n // 20))
        pools = _pools(self.seed, size)
        weights = [loc.weight for loc in LOCALES]
        table = tuple(i for i, w in enumerate(weights) for _ in range(w))
        for loc in LOCALES:
            normalize_country(loc.country)  # the demo's countries are real ISO codes
        first_id = self.next_id("customers")
        addr_id = self.next_id("addresses")
        start_us = self.now_us - SPAN_DAYS * US_PER_DAY
        join_from = start_us - 365 * US_PER_DAY
        join_span = self.now_us - join_from
        ts = self.now_text
        self.cust_ids: list[int] = []
        self.cust_name: list[str] = []
        self.cust_email: list[str] = []
        self.cust_join: list[int] = []
        self.cust_loc: list[int] = []
        self.cust_addr: list[tuple[str, str]] = []  # billing, shipping JSON
        self.cust_vip: list[bool] = []
        self.cust_company: list[bool] = []
        customers, addresses = [], []
        for k in range(n):
            cid = first_id + k
            li = table[int(rng.random() * len(table))]
            loc, pool = LOCALES[li], pools[li]
            fi = rng.randrange(len(pool.first))
            la = rng.randrange(len(pool.last))
            first, last = pool.first[fi], pool.last[la]
            name = f"{last} {first}" if loc.country == "JP" else f"{first} {last}"
            style = rng.random()
            ef, el = pool.email_first[fi], pool.email_last[la]
            if style < 0.5:
                local = f"{ef}.{el}{cid}"
            elif style < 0.8:
                local = f"{ef[:1]}{el}{cid}"
            else:
                local = f"{ef}{cid}"
            email = f"{local}@{_EMAIL_DOMAINS[cid % len(_EMAIL_DOMAINS)]}"
            company = (
                pool.companies[rng.randrange(len(pool.companies))] if rng.random() < 0.08 else None
            )
            phone = pool.phones[rng.randrange(len(pool.phones))]
            x = _inverse_cdf((k + rng.random()) / n, 1.0)
            join = join_from + int(x * join_span)
            customers.append((cid, name, email, phone, company, loc.locale, ts(join)))
            bill = self._address(rng, pool, name)
            ship = (
                bill
                if rng.random() < 0.85
                else self._address(rng, pool, _other_name(rng, pool, loc))
            )
            for kind, a in (("billing", bill), ("shipping", ship)):
                addresses.append(
                    (addr_id, cid, kind, a[0], a[1], a[2], a[3], a[4], a[5], loc.country)
                )
                addr_id += 1
            self.cust_ids.append(cid)
            self.cust_name.append(name)
            self.cust_email.append(email)
            self.cust_join.append(join)
            self.cust_loc.append(li)
            self.cust_addr.append(
                (_address_json(bill, loc.country), _address_json(ship, loc.country))
            )
            self.cust_vip.append(rng.random() < 0.03)
            self.cust_company.append(company is not None)
        self.insert(
            "customers",
            ("id", "name", "email", "phone", "company", "locale", "created_at"),
            customers,
        )
        self.insert(
            "addresses",
            (
                "id",
                "customer_id",
                "kind",
                "name",
                "line1",
                "line2",
                "city",
                "postal_code",
                "region",
                "country",
            ),
            addresses,
        )

    @staticmethod
    def _address(rng: random.Random, pool: _Pool, name: str) -> tuple[Any, ...]:
        street = pool.streets[rng.randrange(len(pool.streets))]
        city, postal, region = pool.places[rng.randrange(len(pool.places))]
        line2 = f"Apt {rng.randint(1, 40)}" if rng.random() < 0.1 else None
        return (name, street, line2, city, postal, region)

    # -- orders ----------------------------------------------------------------

    def _orders(self) -> Iterator[list[_Message]]:
        n = self.n_orders
        oid0 = self.next_id("orders")
        ids = {
            t: self.next_id(t)
            for t in ("order_lines", "order_events", "payments", "refunds", "shipments")
        }
        self.ids = ids
        start_us = self.now_us - SPAN_DAYS * US_PER_DAY
        span = SPAN_DAYS * US_PER_DAY
        rng = self.rng
        joined = 0
        prev = start_us - 1
        done = 0
        while done < n:
            todo = min(CHUNK, n - done)
            rows: dict[str, list[tuple[Any, ...]]] = {
                k: []
                for k in (
                    "search",
                    "orders",
                    "lines",
                    "events",
                    "payments",
                    "refunds",
                    "shipments",
                    "tags",
                )
            }
            for i in range(done, done + todo):
                t = start_us + int(_inverse_cdf((i + rng.random()) / n, 2.0) * span)
                t = min(max(t, prev + 1), self.now_us)
                prev = t
                while joined < len(self.cust_join) and self.cust_join[joined] <= t:
                    joined += 1
                c = int(rng.random() * joined)
                self._order(oid0 + i, t, c, rows)
            done += todo
            self.insert("orders", _ORDER_COLS, rows["orders"])
            self.insert("order_lines", _LINE_COLS, rows["lines"])
            self.insert("payments", _PAYMENT_COLS, rows["payments"])
            self.insert("refunds", _REFUND_COLS, rows["refunds"])
            self.insert("shipments", _SHIPMENT_COLS, rows["shipments"])
            self.insert("order_events", _EVENT_COLS, rows["events"])
            self.insert("order_tags", ("order_id", "tag"), rows["tags"])
            # The FTS5 document of each order, exactly as storage.search builds
            # it (the writer skips it where there is no FTS5).
            self.insert("order_search", _SEARCH_COLS, rows["search"])
            self.out.append(("progress", "", (), done))
            self.line_count += len(rows["lines"])
            yield self._take()

    def _order(self, oid: int, placed: int, c: int, rows: dict[str, list[tuple[Any, ...]]]) -> None:
        rng = self.rng
        rand = rng.random
        ri = self.ri
        ts = self.now_text
        now = self.now_us
        ids = self.ids
        li = self.cust_loc[c]
        loc = LOCALES[li]
        cur = loc.currency
        country = loc.country

        # -- lines and money -------------------------------------------------
        candidates = self.by_currency[cur]
        n_lines = _LINES_TABLE[int(rand() * len(_LINES_TABLE))]
        k = min(n_lines, len(candidates))
        chosen = list(candidates)
        for j in range(k):  # partial Fisher-Yates: k distinct products
            x = j + int(rand() * (len(chosen) - j))
            chosen[j], chosen[x] = chosen[x], chosen[j]
        del chosen[k:]
        wholesale = self.cust_company[c] and rand() < 0.4
        lines = []  # (product index, qty, tax, total)
        subtotal = tax = items = 0
        physical = False
        for p in chosen:
            q = _QTY_TABLE[int(rand() * len(_QTY_TABLE))]
            if wholesale:
                q *= 5
            lt_tax, lt_total = self._line(p, q)
            lines.append((p, q, lt_tax, lt_total))
            subtotal += lt_total
            tax += lt_tax
            items += q
            if PRODUCTS[p][2] == "physical":
                physical = True
        fee, free_from = SHIPPING[cur]
        shipping = fee if physical and subtotal < free_from else 0
        discount = subtotal // 10 if rand() < 0.07 else 0
        total = subtotal + shipping - discount
        money = money_text

        # -- fate and timeline -------------------------------------------------
        fate = _FATE_TABLE[int(rand() * len(_FATE_TABLE))]
        if not physical and fate == "lost":
            fate = "complete"
        gw = _GATEWAYS[int(rand() * len(_GATEWAYS))]
        if fate in ("payment_failed", "awaiting_capture"):
            gw = "stripe"
        agent = _AGENTS[int(rand() * len(_AGENTS))]
        keeper = _WAREHOUSE[int(rand() * len(_WAREHOUSE))]
        events: list[tuple[int, str, str, str, str]] = []  # at, kind, actor, message, data
        ev = events.append
        ev(
            (
                placed,
                "placed",
                "system",
                f"Order placed: {items} item(s), {money(total, cur)}",
                "{}",
            )
        )
        tags = []
        if self.cust_vip[c]:
            tags.append("vip")
        if wholesale:
            tags.append("wholesale")
        if rand() < 0.04:
            tags.append("gift")
        if physical and rand() < 0.5 and any(PRODUCTS[p][0] in FRAGILE for p, *_ in lines):
            tags.append("fragile")
        if tags:
            tags.sort()
            ev(
                (
                    placed,
                    "tagged",
                    "system",
                    "Tags " + " ".join("+" + t for t in tags),
                    '{"added": [' + ", ".join(f'"{t}"' for t in tags) + '], "removed": []}',
                )
            )

        status = "pending"
        pay_status = "unpaid"
        ful_status = "unfulfilled"
        paid = refunded = 0
        on_hold = False
        hold_reason = cancel_reason = None
        shipped_lines = returned_lines = False
        partial_line = -1
        pay_row: list[Any] | None = None
        gw_actor = f"gateway:{gw}" if gw != "bank_transfer" else agent
        method = {"stripe": "card", "paypal": "wallet", "bank_transfer": "bank_transfer"}[gw]
        ref = _gateway_ref(rng, gw, oid)
        brand = last4 = wallet = None
        if gw == "stripe":
            brand = _BRANDS[int(rand() * len(_BRANDS))]
            last4 = f"{int(rand() * 10000):04d}"
        elif gw == "paypal":
            wallet = "paypal"

        # when money arrives
        if gw == "stripe":
            auth_t = placed + ri(2, 20) * US_PER_SECOND
            pay_t = placed + ri(60, 6 * 3600) * US_PER_SECOND
            if fate == "awaiting_capture":
                pay_t = now + 1
        elif gw == "paypal":
            auth_t = None
            pay_t = placed + ri(30, 1200) * US_PER_SECOND
        else:
            auth_t = None
            pay_t = placed + ri(86_400, 5 * 86_400) * US_PER_SECOND
        data_ref = f'{{"reference": "{ref}"}}'

        def payment(status_: str, created: int, captured: int, refunded_: int, synced: int | None):
            return [
                ids["payments"],
                oid,
                gw,
                method,
                ref,
                status_,
                cur,
                total,
                captured,
                refunded_,
                brand,
                last4,
                wallet,
                ts(created),
                ts(synced) if synced is not None and gw != "bank_transfer" else None,
            ]

        tracking: str | None = None
        refunds: list[tuple[int, int, str, str, list[Any]]] = []  # at, amount, reason, by, lines

        if fate in ("cancel_unpaid", "payment_failed"):
            reason = _CANCEL_UNPAID[int(rand() * len(_CANCEL_UNPAID))]
            failed = fate == "payment_failed" or reason == CancelReason.PAYMENT_FAILED
            if failed:
                gw, method, gw_actor = "stripe", "card", "gateway:stripe"
                brand = brand or "visa"
                last4 = last4 or f"{int(rand() * 10000):04d}"
                wallet = None
                ref = _gateway_ref(rng, "stripe", oid)
                data_ref = f'{{"reference": "{ref}"}}'
                fail_t = placed + ri(5, 60) * US_PER_SECOND
                if fail_t <= now:
                    pay_status = "failed"
                    pay_row = payment("failed", fail_t, 0, 0, fail_t)
                    ev(
                        (
                            fail_t,
                            "payment_failed",
                            gw_actor,
                            f"Payment of {money(total, cur)} failed: card declined",
                            data_ref,
                        )
                    )
                    on_hold, hold_reason = True, "payment failed"
                    ev(
                        (
                            fail_t + US_PER_SECOND,
                            "held",
                            gw_actor,
                            "On hold: payment failed",
                            '{"reason": "payment failed"}',
                        )
                    )
            if fate == "cancel_unpaid":
                cancel_t = placed + ri(3600, 3 * 86_400) * US_PER_SECOND
                if cancel_t <= now and (pay_status == "failed" or not failed):
                    status = "cancelled"
                    cancel_reason = reason.value
                    on_hold, hold_reason = False, None
                    ev(
                        (
                            cancel_t,
                            "cancelled",
                            agent,
                            f"Cancelled: {reason.value.replace('_', ' ')}",
                            f'{{"reason": "{reason.value}"}}',
                        )
                    )
        else:
            # Card payments are authorised at checkout and captured later.
            if auth_t is not None and auth_t <= now and pay_t > now:
                pay_status = "authorized"
                pay_row = payment("authorized", auth_t, 0, 0, auth_t)
                ev(
                    (
                        auth_t,
                        "payment_authorized",
                        gw_actor,
                        f"Payment of {money(total, cur)} authorized ({gw}, {method})",
                        data_ref,
                    )
                )
            if pay_t <= now:
                status, pay_status, paid = "processing", "paid", total
                pay_row = payment("paid", pay_t, total, 0, pay_t)
                ev(
                    (
                        pay_t,
                        "payment_confirmed",
                        gw_actor,
                        f"Payment of {money(total, cur)} received ({gw}, {method})",
                        data_ref,
                    )
                )
                ev((pay_t + US_PER_SECOND, "status", gw_actor, "pending → processing", "{}"))
                proc_t = pay_t + US_PER_SECOND
                step = proc_t
                if fate == "held":
                    hold_t = proc_t + ri(600, 86_400) * US_PER_SECOND
                    if hold_t <= now:
                        on_hold = True
                        hold_reason = _HOLD_REASONS[int(rand() * len(_HOLD_REASONS))]
                        ev(
                            (
                                hold_t,
                                "held",
                                agent,
                                f"On hold: {hold_reason}",
                                json.dumps({"reason": hold_reason}),
                            )
                        )
                elif fate == "cancel_paid":
                    cancel_t = proc_t + ri(3600, 2 * 86_400) * US_PER_SECOND
                    if cancel_t <= now:
                        reason = _CANCEL_PAID[int(rand() * len(_CANCEL_PAID))]
                        status, cancel_reason = "cancelled", reason.value
                        ev(
                            (
                                cancel_t,
                                "cancelled",
                                agent,
                                f"Cancelled: {reason.value.replace('_', ' ')}",
                                f'{{"reason": "{reason.value}"}}',
                            )
                        )
                        refunds.append((cancel_t, total, "cancelled", agent, []))
                elif fate == "refund" and (not physical or rand() < 0.3):
                    refund_t = proc_t + ri(3600, 86_400) * US_PER_SECOND
                    if refund_t <= now:
                        refunds.append((refund_t, total, "customer_request", agent, []))
                        status = "refunded"
                else:
                    # goods go out
                    if physical:
                        ship_t = proc_t + ri(3 * 3600, 4 * 86_400) * US_PER_SECOND
                        if ship_t <= now:
                            carriers = _CARRIERS.get(country, _DEFAULT_CARRIERS)
                            carrier = carriers[int(rand() * len(carriers))]
                            tracking = _tracking(rng, carrier, oid)
                            status, ful_status, shipped_lines = "shipped", "fulfilled", True
                            sh_lines = _lines_json(lines)
                            ev(
                                (
                                    ship_t,
                                    "shipped",
                                    keeper,
                                    f"Shipped with {carrier}, tracking {tracking}",
                                    f'{{"carrier": "{carrier}", "tracking": "{tracking}", '
                                    f'"lines": {sh_lines}}}',
                                )
                            )
                            step = ship_t
                            deliver_t = ship_t + ri(86_400, 8 * 86_400) * US_PER_SECOND
                            if fate == "lost":
                                deliver_t = now + 1
                                note_t = ship_t + 10 * US_PER_DAY
                                if note_t <= now:
                                    ev(
                                        (
                                            note_t,
                                            "note",
                                            agent,
                                            "Carrier investigating: no scan since dispatch",
                                            "{}",
                                        )
                                    )
                            delivered = deliver_t <= now
                            rows["shipments"].append(
                                (
                                    ids["shipments"],
                                    oid,
                                    carrier,
                                    tracking,
                                    "delivered" if delivered else "shipped",
                                    ts(ship_t),
                                    ts(deliver_t) if delivered else None,
                                    sh_lines,
                                )
                            )
                            ids["shipments"] += 1
                            if delivered:
                                status = "delivered"
                                ev((deliver_t, "delivered", keeper, "Delivered", "{}"))
                                step = deliver_t
                    else:
                        deliver_t = proc_t + ri(60, 1800) * US_PER_SECOND
                        if deliver_t <= now:
                            status, ful_status, shipped_lines = "delivered", "fulfilled", True
                            ev((deliver_t, "delivered", agent, "Delivered", "{}"))
                            step = deliver_t
                    if status == "delivered" and fate in ("refund", "partial_refund"):
                        refund_t = step + ri(2 * 86_400, 20 * 86_400) * US_PER_SECOND
                        if refund_t <= now:
                            why = _REFUND_REASONS[int(rand() * len(_REFUND_REASONS))]
                            if fate == "refund":
                                returned_lines = physical
                                back = [
                                    {"sku": PRODUCTS[p][0], "quantity": q} for p, q, _, _ in lines
                                ]
                                refunds.append((refund_t, total, why, agent, back))
                                status = "refunded"
                            elif len(lines) > 1:
                                partial_line = int(rand() * len(lines))
                                p, q, _, lt_total = lines[partial_line]
                                back = [{"sku": PRODUCTS[p][0], "quantity": q}]
                                refunds.append((refund_t, lt_total, why, agent, back))
                            else:
                                amount = max(1, total * 15 // 100)
                                refunds.append(
                                    (refund_t, amount, "goodwill: late delivery", agent, [])
                                )

        # -- refunds (money back through the payment) ---------------------------
        for r_t, amount, why, by, back in refunds:
            parts = [amount]
            if amount == total and amount >= 2 and rand() < 0.25:
                first_part = amount // 2
                parts = [first_part, amount - first_part]
            if why == "cancelled":
                ev(
                    (
                        r_t,
                        "refund_requested",
                        by,
                        f"Refund of {money(amount, cur)} requested on cancel",
                        "{}",
                    )
                )
            else:
                ev(
                    (
                        r_t,
                        "refund_requested",
                        by,
                        f"Refund of {money(amount, cur)} requested: {why}",
                        json.dumps({"reason": why, "lines": back}),
                    )
                )
            done_t = r_t + ri(30, 1800) * US_PER_SECOND
            for k, part in enumerate(parts):
                rid = ids["refunds"]
                ids["refunds"] += 1
                at = done_t + k * _MIN
                rows["refunds"].append(
                    (
                        rid,
                        oid,
                        ids["payments"],
                        part,
                        cur,
                        why,
                        "succeeded",
                        f"demo-{self.seed}-{rid}",
                        _refund_ref(rng, gw, rid),
                        json.dumps(back if k == 0 else []),
                        None,
                        by,
                        ts(r_t),
                        ts(at),
                    )
                )
                ev(
                    (
                        at,
                        "refund_succeeded",
                        f"gateway:{gw}" if gw != "bank_transfer" else by,
                        f"Refund of {money(part, cur)} succeeded ({gw})",
                        f'{{"refund_id": {rid}}}',
                    )
                )
            refunded += amount
        if refunds:
            last_t = events[-1][0]
            if refunded >= paid:
                pay_status = "refunded"
                if status == "refunded":
                    prev_status = "delivered" if shipped_lines else "processing"
                    ev((last_t, "status", events[-1][2], f"{prev_status} → refunded", "{}"))
                if returned_lines:
                    ful_status = "returned"
            else:
                pay_status = "partially_refunded"
                if partial_line >= 0 and PRODUCTS[lines[partial_line][0]][2] == "physical":
                    ful_status = "partially_returned"
            assert pay_row is not None
            pay_row[5] = pay_status
            pay_row[9] = refunded
            if gw != "bank_transfer":
                pay_row[14] = ts(last_t)

        # -- notes -------------------------------------------------------------
        if rand() < 0.08:
            note_t = events[-1][0] + ri(60, 86_400) * US_PER_SECOND
            if note_t <= now:
                author = agent if rand() < 0.7 else keeper
                ev((note_t, "note", author, _NOTES[int(rand() * len(_NOTES))], "{}"))

        # -- rows -----------------------------------------------------------------
        if pay_row is not None:
            rows["payments"].append(tuple(pay_row))
            ids["payments"] += 1
        open_goods = status in ("pending", "processing")
        line_rows = rows["lines"]
        lid = ids["order_lines"]
        for j, (p, q, lt_tax, lt_total) in enumerate(lines):
            sku, pname, kind, price, _cur, rate = PRODUCTS[p]
            back_q = q if (returned_lines or status == "refunded" or j == partial_line) else 0
            line_rows.append(
                (
                    lid,
                    oid,
                    self.product_ids[p],
                    sku,
                    pname,
                    kind,
                    q,
                    price,
                    rate,
                    0,
                    lt_tax,
                    lt_total,
                    q if shipped_lines else 0,
                    back_q if kind == "physical" and shipped_lines else 0,
                    back_q if refunds else 0,
                )
            )
            lid += 1
            if open_goods and kind == "physical":
                self.reserved[p] += q
        ids["order_lines"] = lid
        for t in tags:
            rows["tags"].append((oid, t))
        eid = ids["order_events"]
        ev_rows = rows["events"]
        for at, kind, actor, message, data in events:
            ev_rows.append((eid, oid, ts(at), kind, actor, message, data))
            eid += 1
        ids["order_events"] = eid
        bill, ship = self.cust_addr[c]
        number = order_number(oid)
        rows["search"].append(
            (
                oid,
                number,
                self.cust_name[c],
                email_words(self.cust_email[c]),
                " ".join(PRODUCTS[p][0] for p, *_ in lines),
                tracking,
            )
        )
        rows["orders"].append(
            (
                oid,
                number,
                self.cust_ids[c],
                status,
                pay_status,
                ful_status,
                cur,
                TAX_INCLUSIVE[cur],
                subtotal,
                discount,
                shipping,
                tax,
                total,
                paid,
                refunded,
                ts(placed),
                ts(events[-1][0]),
                country,
                bill,
                ship,
                on_hold,
                hold_reason,
                cancel_reason,
                physical,
                items,
                len(events),
            )
        )

    def _stock(self) -> None:
        rng = random.Random(self.seed + 1)
        rows = []
        for i, (_sku, _n, kind, *_rest) in enumerate(PRODUCTS):
            if kind != "physical":
                continue
            spare = 0 if rng.random() < 0.1 else rng.randint(5, 400)
            rows.append((self.reserved[i] + spare, self.reserved[i], self.product_ids[i]))
        self.out.append(("update", "products", ("stock_on_hand", "stock_reserved"), rows))


_ORDER_COLS = (
    "id",
    "number",
    "customer_id",
    "status",
    "payment_status",
    "fulfillment_status",
    "currency",
    "tax_inclusive",
    "subtotal",
    "discount",
    "shipping",
    "tax",
    "total",
    "paid",
    "refunded",
    "placed_at",
    "updated_at",
    "country",
    "billing_address",
    "shipping_address",
    "on_hold",
    "hold_reason",
    "cancel_reason",
    "has_physical",
    "item_count",
    "version",
)
_LINE_COLS = (
    "id",
    "order_id",
    "product_id",
    "sku",
    "name",
    "kind",
    "quantity",
    "unit_price",
    "tax_rate_bp",
    "discount",
    "tax",
    "line_total",
    "qty_fulfilled",
    "qty_returned",
    "qty_refunded",
)
_PAYMENT_COLS = (
    "id",
    "order_id",
    "gateway",
    "method",
    "gateway_ref",
    "status",
    "currency",
    "amount",
    "captured",
    "refunded",
    "card_brand",
    "card_last4",
    "wallet",
    "created_at",
    "last_synced_at",
)
_REFUND_COLS = (
    "id",
    "order_id",
    "payment_id",
    "amount",
    "currency",
    "reason",
    "status",
    "idempotency_key",
    "gateway_ref",
    "lines",
    "failure_reason",
    "created_by",
    "created_at",
    "updated_at",
)
_SHIPMENT_COLS = (
    "id",
    "order_id",
    "carrier",
    "tracking_number",
    "status",
    "shipped_at",
    "delivered_at",
    "lines",
)
_SEARCH_COLS = ("rowid", "number", "customer", "email", "skus", "tracking")
_EVENT_COLS = ("id", "order_id", "at", "kind", "actor", "message", "data")


# -- small helpers ---------------------------------------------------------------


def _inverse_cdf(q: float, a: float) -> float:
    """x in [0, 1] for quantile q of the density ∝ 1 + a·x (later = denser)."""
    return (math.sqrt(1.0 + 2.0 * a * q * (1.0 + a / 2.0)) - 1.0) / a


def _other_name(rng: random.Random, pool: _Pool, loc: _Locale) -> str:
    first = pool.first[rng.randrange(len(pool.first))]
    last = pool.last[rng.randrange(len(pool.last))]
    return f"{last} {first}" if loc.country == "JP" else f"{first} {last}"


def _address_json(a: Sequence[Any], country: str) -> str:
    name, line1, line2, city, postal, region = a
    d: dict[str, Any] = {"name": name, "line1": line1, "city": city, "country": country}
    if postal is not None:
        d["postal_code"] = postal
    if region is not None:
        d["region"] = region
    if line2 is not None:
        d["line2"] = line2
    return json.dumps(d)


def _gateway_ref(rng: random.Random, gw: str, oid: int) -> str:
    if gw == "stripe":
        return f"pi_3{rng.getrandbits(92):023x}"
    if gw == "paypal":
        return f"PAYID-{rng.getrandbits(80):020X}"
    return f"BT-{oid:09d}"


def _refund_ref(rng: random.Random, gw: str, rid: int) -> str:
    if gw == "stripe":
        return f"re_3{rng.getrandbits(92):023x}"
    if gw == "paypal":
        return f"RF-{rng.getrandbits(64):016X}"
    return f"BTR-{rid:09d}"


def _tracking(rng: random.Random, carrier: str, oid: int) -> str:
    """Carrier-shaped tracking numbers; the order id keeps them unique."""
    r = rng.getrandbits(24)
    if carrier == "DHL":
        return f"JD{oid:012d}{r % 1_000_000:06d}"
    if carrier == "UPS":
        return f"1Z{r:06X}{oid:010d}"
    if carrier == "FedEx":
        return f"{7 + r % 3}{oid:011d}"
    if carrier == "PostNL":
        return f"3S{'ABCDEFGHJKLMNPRSTUVWXYZ'[r % 23]}PNL{oid:010d}"
    if carrier == "Royal Mail":
        return f"RX{oid:09d}GB"
    return f"EJ{oid:09d}JP"  # Japan Post


def _lines_json(lines: Sequence[tuple[int, int, int, int]]) -> str:
    """JSON text of [{"sku", "quantity"}, ...] as json.dumps writes it (SKUs are plain ASCII)."""
    return (
        "["
        + ", ".join(f'{{"sku": "{PRODUCTS[p][0]}", "quantity": {q}}}' for p, q, _, _ in lines)
        + "]"
    )
