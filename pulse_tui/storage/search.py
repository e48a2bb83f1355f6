"""The free-text index: FTS5 on SQLite (rowid = order id), LIKE elsewhere.

Services call ``reindex_orders`` for the orders a use case touched, in the
same transaction; the demo seeder calls ``rebuild_search`` once after a bulk
load. The trigram indexes of customers' names and emails (``customer_search``,
``order_customer_search``) are kept by triggers. ``text_plan`` says what free
text means. No business rules here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

# order_search's email column holds the address with each ASCII digit made a
# space (``email_words``): addresses carry per-customer numbers
# (``ann.smith1042@example.net``), and one index term per customer
# (``smith1042``) made every prefix query such as ``"smith"*`` merge hundreds
# of doclists (~940 for the commonest surname at 1M orders, half the cost of
# that search). Digits in an address are still found as a substring
# (``order_customer_search``). Migration 0007 rebuilt the column this way.
_DIGITS = "0123456789"
_DIGITS_TO_SPACE = str.maketrans(_DIGITS, " " * len(_DIGITS))


def email_words(email: str) -> str:
    """What order_search indexes of an email: its digits as spaces."""
    return email.translate(_DIGITS_TO_SPACE)


def email_words_sql(column: str) -> str:
    """``email_words`` as an SQLite expression over ``column``."""
    expr = column
    for d in _DIGITS:
        expr = f"replace({expr}, '{d}', ' ')"
    return expr


_DOC_SQL = f"""
SELECT o.id, o.number, c.name, {email_words_sql("c.email")},
       (SELECT group_concat(l.sku, ' ') FROM order_lines l WHERE l.order_id = o.id),
       (SELECT group_concat(s.tracking_number, ' ') FROM shipments s WHERE s.order_id = o.id)
FROM orders o JOIN customers c ON c.id = o.customer_id
"""


def has_fts(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def reindex_orders(session: Session, order_ids: Iterable[int]) -> None:
    ids = sorted(set(order_ids))
    if not ids or not has_fts(session):
        return
    for chunk_start in range(0, len(ids), 500):
        chunk = ids[chunk_start : chunk_start + 500]
        marks = ",".join(str(int(i)) for i in chunk)
        session.execute(text(f"DELETE FROM order_search WHERE rowid IN ({marks})"))
        session.execute(
            text(
                "INSERT INTO order_search(rowid, number, customer, email, skus, tracking) "
                + _DOC_SQL
                + f" WHERE o.id IN ({marks})"
            )
        )


def rebuild_search(session: Session) -> None:
    if not has_fts(session):
        return
    session.execute(text("DELETE FROM order_search"))
    session.execute(
        text("INSERT INTO order_search(rowid, number, customer, email, skus, tracking) " + _DOC_SQL)
    )


_TOKEN_RE = re.compile(r"[\w]+", re.UNICODE)


def fts_query(user_text: str) -> str | None:
    """Turn what an operator typed into a safe FTS5 MATCH expression.

    Every word becomes a quoted prefix term, ANDed: ``ada lovel`` →
    ``"ada"* "lovel"*``; ``PB-100042`` → ``"pb"* "100042"*`` which matches
    the number's two tokens. Punctuation never reaches FTS5's syntax.
    """
    words = _TOKEN_RE.findall(user_text.lower())
    if not words:
        return None
    return " ".join(f'"{w}"*' for w in words)


# -- customers: trigram substring indexes (SQLite, migrations 0003 and 0006) ----

TRIGRAM_MIN = 3  # a trigram index cannot answer fragments shorter than this

# order_customer_search (0006): FTS5 trigram, rowid = order id, over the
# order's customer name and email; kept by triggers on orders and customers.
ORDER_CUSTOMER_INDEX = "order_customer_search"


def trigram_query(fragment: str) -> str | None:
    """A MATCH expression for a trigram index finding ``fragment`` anywhere
    in a customer's name or email (any case), or None when the fragment is too
    short for trigrams (callers keep LIKE then). The whole fragment is one
    quoted string, so nothing the operator types reaches FTS5's syntax."""
    frag = fragment.strip()
    if len(frag) < TRIGRAM_MIN:
        return None
    return _quoted(frag)


def _quoted(frag: str) -> str:
    return '"' + frag.replace('"', '""') + '"'


# -- free text: what a text means ----------------------------------------------

_ADDRESS_MARKS = ("@", ".")
_PLAIN_WORD_RE = re.compile(r"[^\W_]+")
# order_search columns but the email: see TextPlan.words
_NO_EMAIL = "{number customer skus tracking}: "


@dataclass(frozen=True)
class TextPlan:
    """What free text matches, as MATCH expressions (SQLite).

    ``words`` is for ``order_search`` (word prefixes: number, name, email, SKUs,
    tracking), ``substring`` for ``order_customer_search`` (inside the
    customer's name or email). ``combine`` says how they join: ``"or"`` (either
    finds the order), ``"and"`` (both must). Both None: the text matches nothing.
    """

    words: str | None
    substring: str | None
    combine: str  # "or" | "and"

    @property
    def empty(self) -> bool:
        return self.words is None and self.substring is None


def address_piece(chunk: str) -> bool:
    """A chunk the operator typed that is a piece of an email address: it
    holds '@' or '.', and is long enough for the trigram index."""
    return len(chunk) >= TRIGRAM_MIN and any(m in chunk for m in _ADDRESS_MARKS)


def text_plan(user_text: str) -> TextPlan:
    """The meaning of free text (the "trigram free-text decision").

    * A chunk (whitespace-separated) holding '@' or '.' is a piece of an
      address: it matches orders whose customer's name or email *contains* it
      (``jane.j``, ``ne.j``, ``@example.net``, ``j.smith``). Word prefixes would
      split it into tiny words (``"ne"* "j"*``) that match unrelated orders and
      walk huge doclists. Several chunks must all match (AND).
    * Any other text matches as before: every word is a word prefix somewhere
      in the order (number, name, email, SKU, tracking), **or** (3+ characters)
      the whole text is inside the customer's name or email. The email's
      words leave its digits out (``email_words``): ``jane junken1`` does not
      find ``jane.junken106496@…`` as words, ``junken1`` does as a substring.
    * A single plain ASCII word of 3+ letters/digits leaves the email column
      out of the word-prefix side: "an email word starts with w" implies "the
      email contains w" (case-insensitively), which the substring side already
      finds; the email column's per-customer tokens (``smith106496``) made
      ``"smith"*`` merge hundreds of doclists. The one difference: an address
      with accented letters (``pat@café.example``) is found by ``café``, not
      by ``cafe`` (unicode61 folds accents, the trigram index does not); the
      name column keeps folding (``muller`` finds Müller). Non-ASCII text keeps
      every column.
    """
    chunks = user_text.split()
    pieces = [c for c in chunks if address_piece(c)]
    if pieces:
        rest = [c for c in chunks if not address_piece(c)]
        words = fts_query(" ".join(rest)) if rest else None
        return TextPlan(words, " ".join(_quoted(p) for p in pieces), "and")
    words = fts_query(user_text)
    substring = trigram_query(user_text)
    if (
        words is not None
        and substring is not None
        and len(chunks) == 1
        and chunks[0].isascii()
        and _PLAIN_WORD_RE.fullmatch(chunks[0])
    ):
        words = _NO_EMAIL + words
    return TextPlan(words, substring, "or")


def rebuild_customer_search(session: Session) -> None:
    """Rebuild the trigram index from the customers table (after a bulk load)."""
    if not has_fts(session):
        return
    session.execute(text("INSERT INTO customer_search(customer_search) VALUES ('rebuild')"))


def rebuild_order_customer_search(session: Session) -> None:
    """Refill ``order_customer_search`` from orders joined to customers.

    For a bulk load that bypassed the triggers. It is contentless (the
    triggers hand it the values), so it is emptied with 'delete-all' and
    filled with one INSERT ... SELECT."""
    if not has_fts(session):
        return
    session.execute(
        text(f"INSERT INTO {ORDER_CUSTOMER_INDEX}({ORDER_CUSTOMER_INDEX}) VALUES ('delete-all')")
    )
    session.execute(text(ORDER_CUSTOMER_FILL))


ORDER_CUSTOMER_FILL = (
    f"INSERT INTO {ORDER_CUSTOMER_INDEX}(rowid, name, email) "
    "SELECT o.id, c.name, c.email FROM orders o JOIN customers c ON c.id = o.customer_id"
)
