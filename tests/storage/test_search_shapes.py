"""The SQLite search paths of storage.queries (FTS5 streams, trigram substrings,
the INTERSECT with a narrow status) against a plain-Python oracle of the
documented meaning of free text (``search.text_plan``) and ``customer:``.

The oracle tokenizes like FTS5's unicode61 (letters and digits, accents and
case folded) and finds substrings like the trigram tokenizer (case folded,
accents kept); every query shape (one stream, merged streams, INTERSECT, the
LIKE fallback for short ``customer:``) must list exactly its orders, newest
first, in keyset pages both ways, and count them the same.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, select, text

from pulse_tui.domain.filters import OrderFilter, Sort
from pulse_tui.domain.status import OrderStatus
from pulse_tui.storage import queries, search
from pulse_tui.storage.db import alembic_config, read_session, upgrade, write_session
from pulse_tui.storage.models import Customer, Order, OrderLine, Shipment
from tests import factories
from tests.factories import ADMIN

# name, email: punctuation, accents, non-Latin case, an accented address
EXTRA_CUSTOMERS = [
    ("Jane Junken", "jane.junken106496@example.net"),
    ("Janet Smith", "jsmith@example.net"),
    ("John Smithson", "john.smithson@example.com"),
    ("Mary-Jane O'Brien", "mj_obrien@example.ie"),
    ("Ada Świech", "ada.swiech@example.pl"),
    ("Łukasz Nowak", "lukasz@łódź.example"),
    ("Zoë Goldsmith", "zoe.goldsmith@example.co.uk"),
    ("Bob Jones", "bob+shop@example.net"),
    ("José Núñez", "josé.nunez@example.es"),
    ("ANNA ØSTBY", "Anna.Ostby@Example.NO"),
    ("Pat Lee", "pat@café.example"),  # an accent only in the address
]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    eng = factories.build_small_db(tmp_path_factory.mktemp("s") / "search.sqlite")
    with write_session(eng) as s:
        for name, email in EXTRA_CUSTOMERS:
            s.add(Customer(name=name, email=email))
    with read_session(eng) as s:
        ids = [c.id for c in s.execute(select(Customer).order_by(Customer.id)).scalars()]
    d = factories.desk(eng, ADMIN)
    for n, cid in enumerate(ids[5:] * 2):
        o = factories.place(
            d, cid, (("MUG-BLUE", 1), ("TEE-M", 1)) if n % 3 else (("EBOOK-PY", 1),)
        )
        if n % 4 == 1:
            d.orders.confirm_payment(o.number)
        if n % 5 == 2:
            d.orders.hold(o.number, reason="address check")
    yield eng
    eng.dispose()


# -- the oracle -------------------------------------------------------------------


@dataclass(frozen=True)
class Doc:
    id: int
    status: str
    on_hold: bool
    name: str
    email: str
    columns: dict[str, str]  # order_search's columns as text


def load(engine: Engine) -> list[Doc]:
    with read_session(engine) as s:
        cust = {c.id: c for c in s.execute(select(Customer)).scalars()}
        skus: dict[int, list[str]] = {}
        for oid, sku in s.execute(select(OrderLine.order_id, OrderLine.sku)):
            skus.setdefault(oid, []).append(sku)
        tracking: dict[int, list[str]] = {}
        for oid, tn in s.execute(select(Shipment.order_id, Shipment.tracking_number)):
            tracking.setdefault(oid, []).append(tn or "")
        out = []
        for o in s.execute(select(Order)).scalars():
            c = cust[o.customer_id]
            assert o.id is not None
            cols = {
                "number": o.number,
                "customer": c.name,
                # the address's words, its ASCII digits made spaces (0007)
                "email": re.sub(r"[0-9]", " ", c.email),
                "skus": " ".join(skus.get(o.id, [])),
                "tracking": " ".join(tracking.get(o.id, [])),
            }
            out.append(Doc(o.id, o.status, o.on_hold, c.name, c.email, cols))
    return out


def fold(s: str) -> str:
    """unicode61 with remove_diacritics=1: case folded, combining marks dropped."""
    return "".join(
        ch for ch in unicodedata.normalize("NFKD", s.lower()) if not unicodedata.combining(ch)
    )


def tokens(s: str) -> list[str]:
    return re.findall(r"[^\W_]+", fold(s))


def word_matches(doc: Doc, word: str, columns: tuple[str, ...]) -> bool:
    """One quoted prefix term: its tokens adjacent in one column, the last a prefix."""
    q = tokens(word)
    for colname in columns:
        t = tokens(doc.columns[colname])
        for i in range(len(t) - len(q) + 1):
            if t[i : i + len(q) - 1] == q[:-1] and t[i + len(q) - 1].startswith(q[-1]):
                return True
    return False


ALL_COLUMNS = ("number", "customer", "email", "skus", "tracking")


def words_match(doc: Doc, text_: str, columns: tuple[str, ...] = ALL_COLUMNS) -> bool:
    words = re.findall(r"\w+", text_.lower())
    return bool(words) and all(word_matches(doc, w, columns) for w in words)


def contains(doc: Doc, fragment: str) -> bool:
    frag = fragment.strip().lower()
    return len(frag) >= 3 and (frag in doc.name.lower() or frag in doc.email.lower())


def text_oracle(doc: Doc, text_: str) -> bool:
    chunks = text_.split()
    pieces = [c for c in chunks if len(c) >= 3 and ("@" in c or "." in c)]
    if pieces:
        rest = " ".join(c for c in chunks if c not in pieces)
        words_ok = words_match(doc, rest) if re.search(r"\w", rest) else True
        return words_ok and all(contains(doc, p) for p in pieces)
    single_ascii_word = (
        len(chunks) == 1 and chunks[0].isascii() and re.fullmatch(r"[^\W_]+", chunks[0])
    )
    cols = ALL_COLUMNS
    if single_ascii_word and len(chunks[0]) >= 3:
        cols = tuple(c for c in ALL_COLUMNS if c != "email")
    return words_match(doc, text_, cols) or contains(doc, text_)


def oracle(doc: Doc, f: OrderFilter) -> bool:
    if f.statuses and doc.status not in f.statuses:
        return False
    if f.on_hold is not None and doc.on_hold != f.on_hold:
        return False
    if f.customer and not (
        f.customer.lower() in doc.name.lower() or f.customer.lower() in doc.email.lower()
    ):
        return False
    return not (f.text is not None and not text_oracle(doc, f.text))


# -- the cases -------------------------------------------------------------------

TEXTS = [
    # address pieces: substrings only
    "jane.j",
    "ne.j",
    "@example.net",
    "EXAMPLE.NET",
    "e.j",
    "a.b",
    "bob+shop@",
    "mj_obrien@",
    "anna.ostby@example.no",
    "łódź.ex",
    "@łódź",
    "jane.j example",  # a piece and a word: both
    "ne.j example.net",  # two pieces: both
    "ne.j nobody",
    # too short for trigrams: word prefixes only
    "j.",
    "ja",
    "e",
    "..",
    "@@",
    # single plain words: prefixes (email left out) or substrings
    "smith",
    "Smith",
    "SMI",
    "mith",
    "jane",
    "junken",
    "unken10",
    "106496",
    "example",
    "swiech",
    "Świech",
    "ŚWIECH",
    "zoe",
    "zoë",
    "jose",
    "josé",
    "nunez",
    "Núñez",
    "østby",
    "ostby",
    "lukasz",
    "cafe",  # the word side folds "café", but leaves the email out for one ASCII word
    "café",
    "mug",
    "cap",
    "100003",
    "jd00000000",
    # punctuation inside words, several words
    "o'brien",
    "O'Bri",
    "mary-jane",
    "mary jane",
    "jane_doe",
    "mj_ob",
    "PB-1000",
    "pb-100003",
    "MUG-BLUE",
    "smith example",
    "jane smith",
    "janet jsmith",  # a name word and an email word
    "jane junken1",  # digits of an address are not words: substring side only
    "jane 106496",
    "grace yuki",
    # nothing sensible
    "zzz",
    "***",
    '"',
    "AND",
    "NOT grace",
    "col:x",
    "a*b",
]

BASES = {
    "text": OrderFilter(),
    "pending": OrderFilter(statuses=(OrderStatus.PENDING,)),
    "paid-ish": OrderFilter(statuses=(OrderStatus.PROCESSING, OrderStatus.DELIVERED)),
    "held": OrderFilter(on_hold=True),
    "not-held": OrderFilter(on_hold=False),
    "customer:smi": OrderFilter(customer="smi"),
    "customer:ex (LIKE)": OrderFilter(customer="ex"),
    "customer:example.n + pending": OrderFilter(
        customer="example.n", statuses=(OrderStatus.PENDING,)
    ),
}


def pages(engine: Engine, f: OrderFilter, limit: int) -> tuple[list[int], list[int]]:
    """Every id forward in pages of ``limit``, then backward from the last page."""
    with read_session(engine) as s:
        page = queries.list_orders(s, f, limit=limit)
        got = [r.id for r in page.rows]
        last = page
        while page.next_cursor is not None:
            page = queries.list_orders(s, f, limit=limit, after=page.next_cursor)
            assert page.rows, "a next cursor never leads to an empty page"
            got += [r.id for r in page.rows]
            last = page
            assert len(got) <= 1000, "pages never end"

        back = [r.id for r in last.rows]
        page = last
        while page.prev_cursor is not None:
            page = queries.list_orders(s, f, limit=limit, before=page.prev_cursor)
            back = [r.id for r in page.rows] + back
            assert len(back) <= 1000, "pages never end"
    return got, back


@pytest.mark.parametrize("substrings", ["order index", "few customers"])
@pytest.mark.parametrize("narrow", ["intersect", "lookup"])
@pytest.mark.parametrize("base", list(BASES), ids=list(BASES))
def test_search_shapes_list_and_count_exactly_the_oracle(
    db: Engine, base: str, narrow: str, substrings: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On the small db every status is "narrow" by the counters and every
    # substring is in "few" customers: force each shape.
    monkeypatch.setattr(queries, "_NARROW_FACTOR", 10**9 if narrow == "intersect" else 0)
    monkeypatch.setattr(queries, "_FEW_CUSTOMERS", 0 if substrings == "order index" else 10)
    docs = load(db)
    found_any = 0
    for t in TEXTS:
        f = BASES[base].with_(text=t)
        want = sorted((d.id for d in docs if oracle(d, f)), reverse=True)
        found_any += bool(want)
        got, back = pages(db, f, limit=3)
        assert got == want, t
        assert back == want, t
        with read_session(db) as s:
            assert queries.count_orders(s, f) == len(want), t
            counts = queries.status_counts(s, f)
        by_status = Counter(d.status for d in docs if oracle(d, f))
        assert counts["all"] == len(want), t
        assert all(counts[st.value] == by_status.get(st.value, 0) for st in OrderStatus), t
        assert counts["on_hold"] == sum(1 for d in docs if oracle(d, f) and d.on_hold), t
    assert found_any >= len(TEXTS) // 4  # not vacuous


def test_the_oracle_is_not_vacuous(db: Engine) -> None:
    """The cases above tell the meanings apart: pieces are not word prefixes, a
    single ASCII word finds substrings, accents fold only on the word side."""
    docs = load(db)

    def ids(t: str) -> set[int]:
        return {d.id for d in docs if text_oracle(d, t)}

    def cust(frag: str) -> set[int]:
        return {d.id for d in docs if frag in d.name.lower() or frag in d.email.lower()}

    assert ids("ne.j") == cust("ne.j") and ids("ne.j")
    assert {d.id for d in docs if words_match(d, "ne.j")} - ids("ne.j")  # words would add noise
    assert ids("mith") == cust("mith") and len({d.name for d in docs if d.id in ids("mith")}) == 3
    assert ids("swiech") == ids("Świech") and ids("swiech")  # folded on the word side
    assert ids("@łódź") and not ids("@lodz")  # the substring side keeps accents
    assert ids("j.") == {d.id for d in docs if words_match(d, "j.")}
    assert not ids("cafe") and ids("café")  # the documented edge of a single ASCII word
    assert not ids("zzz") and not ids("***")


def test_text_plan() -> None:
    p = search.text_plan("ne.j")
    assert (p.words, p.substring, p.combine) == (None, '"ne.j"', "and")
    p = search.text_plan("jane.j smith")
    assert (p.words, p.substring, p.combine) == ('"smith"*', '"jane.j"', "and")
    p = search.text_plan("a@b.c d.e")
    assert (p.words, p.substring) == (None, '"a@b.c" "d.e"')
    p = search.text_plan("Smith")
    assert (p.words, p.substring, p.combine) == (
        '{number customer skus tracking}: "smith"*',
        '"Smith"',
        "or",
    )
    assert search.text_plan("Świech").words == '"świech"*'  # non-ASCII: every column
    assert search.text_plan("PB-100003").words == '"pb"* "100003"*'  # several tokens
    assert search.text_plan("ab").substring is None and search.text_plan("ab").words == '"ab"*'
    assert search.text_plan("j.").words == '"j"*'  # too short for a piece
    assert search.text_plan('say "hi".').substring == '"""hi""."'
    assert search.text_plan("!!").empty and not search.text_plan("***").empty


# -- order_customer_search, kept by triggers (migration 0006) ---------------------


def index_vs_rows(engine: Engine) -> None:
    """Every 3- and 5-character fragment of every name and email finds exactly
    the orders whose customer's name or email contains it."""
    with engine.connect() as c:
        rows = c.execute(
            text(
                "SELECT o.id, c.name, c.email FROM orders o "
                "JOIN customers c ON c.id = o.customer_id"
            )
        ).all()
        frags = {
            s[i : i + k].strip()
            for _, n, e in rows
            for s in (n, e)
            for k in (3, 5)
            for i in range(len(s))
        }
        for frag in sorted(f for f in frags if len(f) >= 3):
            want = {i for i, n, e in rows if frag.lower() in n.lower() or frag.lower() in e.lower()}
            got = {
                r[0]
                for r in c.execute(
                    text(
                        "SELECT rowid FROM order_customer_search "
                        "WHERE order_customer_search MATCH :q"
                    ),
                    {"q": search.trigram_query(frag)},
                )
            }
            assert got == want, frag


def test_order_customer_index_follows_every_write(tmp_path: Path) -> None:
    eng = factories.build_small_db(tmp_path / "ocs.sqlite")
    d = factories.desk(eng, ADMIN)
    index_vs_rows(eng)
    with write_session(eng) as s:  # rename, new address, an unrelated column
        s.execute(text("UPDATE customers SET name = 'Zelda Quaxley' WHERE id = 1"))
        s.execute(text("UPDATE customers SET email = 'yt@tanaka.example' WHERE id = 3"))
        s.execute(text("UPDATE customers SET locale = 'en_GB' WHERE id = 2"))
    index_vs_rows(eng)
    o = factories.place(d, 4)  # through the services
    with write_session(eng) as s:  # an order moved to another customer, one deleted
        s.execute(text("UPDATE orders SET customer_id = 5 WHERE id = :i"), {"i": o.id})
        for t in ("order_lines", "order_events", "payments", "shipments", "order_tags"):
            s.execute(text(f"DELETE FROM {t} WHERE order_id = 6"))
        s.execute(text("DELETE FROM orders WHERE id = 6"))
    index_vs_rows(eng)
    with read_session(eng) as s:
        got = [r.id for r in queries.list_orders(s, OrderFilter(customer="quaxl")).rows]
    assert got and got == sorted(got, reverse=True)
    eng.dispose()


def test_migration_0006_backfills_and_downgrades(tmp_path: Path) -> None:
    eng = factories.build_small_db(tmp_path / "up6.sqlite")
    command.downgrade(alembic_config(eng), "0005")
    with eng.connect() as c:
        names = {r[0] for r in c.execute(text("SELECT name FROM sqlite_master"))}
    assert not {n for n in names if n.startswith("order_customer_search") or "_ocs_" in n}
    assert "customer_search" in names and "orders_count_ins" in names  # older ones stay
    upgrade(eng)
    index_vs_rows(eng)
    eng.dispose()


def search_docs(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as c:
        return [tuple(r) for r in c.execute(text("SELECT rowid, * FROM order_search ORDER BY 1"))]


def test_migration_0007_rebuilds_the_email_words_and_downgrades(tmp_path: Path) -> None:
    eng = factories.build_small_db(tmp_path / "up7.sqlite")
    with write_session(eng) as s:  # an address with digits
        s.execute(text("UPDATE customers SET email = 'ann.lee1042@ex4mple.net' WHERE id = 1"))
        search.rebuild_search(s)
    current = search_docs(eng)
    assert any("ann.lee    @ex mple.net" in r for r in current)
    command.downgrade(alembic_config(eng), "0006")
    old = search_docs(eng)
    assert any("ann.lee1042@ex4mple.net" in r for r in old)
    assert len(old) == len(current)
    upgrade(eng)
    assert search_docs(eng) == current  # the migration builds what the services write
    eng.dispose()


@pytest.mark.parametrize(
    "email", ["ann.smith1042@example.net", "0@1.2", "no-digits@x.y", "ünï9côdé@例え.jp", ""]
)
def test_email_words_in_python_and_sql_agree(email: str) -> None:
    import sqlite3

    got = sqlite3.connect(":memory:").execute(f"SELECT {search.email_words_sql('?')}", (email,))
    assert got.fetchone()[0] == search.email_words(email) == re.sub(r"[0-9]", " ", email)


def test_rebuild_order_customer_search(tmp_path: Path) -> None:
    eng = factories.build_small_db(tmp_path / "rb.sqlite")
    with write_session(eng) as s:
        s.execute(
            text("INSERT INTO order_customer_search(order_customer_search) VALUES('delete-all')")
        )
    with read_session(eng) as s:
        q = text("SELECT count(*) FROM order_customer_search WHERE order_customer_search MATCH :q")
        assert s.execute(q, {"q": '"grace"'}).scalar_one() == 0
    with write_session(eng) as s:
        search.rebuild_order_customer_search(s)
    index_vs_rows(eng)
    eng.dispose()


def test_detail_loads_every_part(db: Engine) -> None:
    """order_detail skips the children the probe finds absent; with them present
    (tags, shipments, payments) or absent it returns what plain queries return."""
    with read_session(db) as s:
        for number in ("PB-100001", "PB-100003", "PB-100006", "PB-100030"):
            det = queries.order_detail(s, number)
            assert det is not None
            oid = det.order.id
            for attr, sql in (
                ("lines", "SELECT id FROM order_lines WHERE order_id = :o ORDER BY id"),
                ("payments", "SELECT id FROM payments WHERE order_id = :o ORDER BY id"),
                ("refunds", "SELECT id FROM refunds WHERE order_id = :o ORDER BY id"),
                ("shipments", "SELECT id FROM shipments WHERE order_id = :o ORDER BY id"),
                ("events", "SELECT id FROM order_events WHERE order_id = :o ORDER BY id DESC"),
            ):
                want = list(s.execute(text(sql), {"o": oid}).scalars())
                assert [x.id for x in getattr(det, attr)] == want, (number, attr)
            tags = s.execute(
                text("SELECT tag FROM order_tags WHERE order_id = :o ORDER BY tag"), {"o": oid}
            ).scalars()
            assert det.tags == list(tags)
            addresses = s.execute(
                text("SELECT id FROM addresses WHERE customer_id = :c ORDER BY id"),
                {"c": det.customer.id},
            ).scalars()
            assert [a.id for a in det.addresses] == list(addresses)
            assert det.customer.id == det.order.customer_id
            assert queries.order_detail(s, oid) is not None


def test_sorted_by_total_uses_the_same_meaning(db: Engine) -> None:
    """Other sorts filter with the same clauses (no FTS streams)."""
    docs = load(db)
    for t in ("ne.j", "smith", "jane.j example", "mary-jane", "j."):
        f = OrderFilter(text=t)
        with read_session(db) as s:
            rows = queries.list_orders(s, f, Sort("total"), limit=1000).rows
        assert {r.id for r in rows} == {d.id for d in docs if text_oracle(d, t)}, t
