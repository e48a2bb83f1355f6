"""order_search: the email column without digits

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 03:00:00.000000

On SQLite only. ``order_search`` (0001) indexed each order's customer email
as it is, so an address such as ``ann.smith1042@example.net`` gave the
term ``smith1042``: one term per customer. FTS5 answers a prefix query
(``"smith"*``) by merging the doclists of every term with that prefix, which
for the commonest surname at a million orders was ~940 email terms and about
half the work of the search (issue 8), even with the email column filtered
out. The column now holds the address with each ASCII digit made a space
(``storage.search.email_words``): ``ann smith    @example net``.

The table is dropped and built again (a DELETE of every row costs more than
the build), then optimized: about a minute and a half at a million orders.
The SQL is written out here, not imported, so this migration keeps doing
what it did when storage.search changes.
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_DIGITS = "0123456789"


def _digits_to_spaces(column: str) -> str:
    expr = column
    for d in _DIGITS:
        expr = f"replace({expr}, '{d}', ' ')"
    return expr


def _rebuild(email: str) -> None:
    op.execute("DROP TABLE IF EXISTS order_search")
    op.execute(
        "CREATE VIRTUAL TABLE order_search USING fts5("
        "number, customer, email, skus, tracking, "
        "tokenize='unicode61', prefix='2 3')"
    )
    op.execute(f"""
        INSERT INTO order_search(rowid, number, customer, email, skus, tracking)
        SELECT o.id, o.number, c.name, {email},
               (SELECT group_concat(l.sku, ' ') FROM order_lines l WHERE l.order_id = o.id),
               (SELECT group_concat(s.tracking_number, ' ') FROM shipments s
                WHERE s.order_id = o.id)
        FROM orders o JOIN customers c ON c.id = o.customer_id""")
    op.execute("INSERT INTO order_search(order_search) VALUES ('optimize')")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild(_digits_to_spaces("c.email"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild("c.email")
