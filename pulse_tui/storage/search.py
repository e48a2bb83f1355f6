"""The free-text index: FTS5 on SQLite (rowid = order id), LIKE elsewhere.

Services call ``reindex_orders`` for the orders a use case touched, in the
same transaction; the demo seeder calls ``rebuild_search`` once after a bulk
load. No business rules here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.orm import Session

_DOC_SQL = """
SELECT o.id, o.number, c.name, c.email,
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


# -- customers: trigram substring index (SQLite, migration 0003) ---------------

TRIGRAM_MIN = 3  # a trigram index cannot answer fragments shorter than this


def trigram_query(fragment: str) -> str | None:
    """A MATCH expression for ``customer_search`` finding ``fragment`` anywhere
    in a customer's name or email (any case), or None when the fragment is too
    short for trigrams (callers keep LIKE then). The whole fragment is one
    quoted string, so nothing the operator types reaches FTS5's syntax."""
    frag = fragment.strip()
    if len(frag) < TRIGRAM_MIN:
        return None
    return '"' + frag.replace('"', '""') + '"'


def rebuild_customer_search(session: Session) -> None:
    """Rebuild the trigram index from the customers table (after a bulk load)."""
    if not has_fts(session):
        return
    session.execute(text("INSERT INTO customer_search(customer_search) VALUES ('rebuild')"))
