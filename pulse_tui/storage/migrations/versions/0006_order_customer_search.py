"""order_customer_search: a trigram index of each order's customer name and email

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 10:00:00.000000

On SQLite only (elsewhere the queries keep their LIKE paths).

``order_customer_search`` is an FTS5 ``tokenize='trigram'`` table whose rowid
is the **order** id and whose columns are that order's customer name and
email. ``customer_search`` (0003) answers "which customers contain x"; going
from those customers to their newest orders meant a seek per customer and a
sort (a common fragment: thousands of customers). Here FTS5 walks the order
ids newest first and stops at the page's LIMIT, like ``order_search``, and
merges with the (status, id) indexes in id order.

Contentless (``content=''``, the values live in customers) and without
per-column sizes (``columnsize=0``: nothing ranks). Contentless means a delete
must hand FTS5 the values that were indexed, so the triggers do:

* orders insert / delete / update of customer_id: index or unindex the order
  with its customer's current name and email;
* customers update of name or email: unindex every order of the customer
  with the old values, index it with the new ones.

A future migration that rebuilds ``orders`` or ``customers`` (batch ALTER)
drops these triggers with the table and must create them again.
Backfill: one INSERT ... SELECT, then 'optimize' (one segment: the fastest
doclist walks). About 30 s at a million orders.
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_T = "order_customer_search"
_TRIGGERS = ("orders_ocs_ins", "orders_ocs_del", "orders_ocs_upd", "customers_ocs_upd")


def _index(order: str, customer: str) -> str:
    """Index ``order`` (NEW/OLD) with the name and email of customer id ``customer``."""
    return f"""
          INSERT INTO {_T}(rowid, name, email)
          SELECT {order}.id, c.name, c.email FROM customers c WHERE c.id = {customer};"""


def _unindex(order: str, customer: str) -> str:
    return f"""
          INSERT INTO {_T}({_T}, rowid, name, email)
          SELECT 'delete', {order}.id, c.name, c.email FROM customers c WHERE c.id = {customer};"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute(
        f"CREATE VIRTUAL TABLE {_T} USING fts5("
        "name, email, content='', columnsize=0, tokenize='trigram')"
    )
    op.execute(
        f"INSERT INTO {_T}(rowid, name, email) "
        "SELECT o.id, c.name, c.email FROM orders o JOIN customers c ON c.id = o.customer_id"
    )
    op.execute(f"INSERT INTO {_T}({_T}) VALUES ('optimize')")
    op.execute(
        "CREATE TRIGGER orders_ocs_ins AFTER INSERT ON orders BEGIN"
        f"{_index('NEW', 'NEW.customer_id')}\n END"
    )
    op.execute(
        "CREATE TRIGGER orders_ocs_del AFTER DELETE ON orders BEGIN"
        f"{_unindex('OLD', 'OLD.customer_id')}\n END"
    )
    op.execute(
        "CREATE TRIGGER orders_ocs_upd AFTER UPDATE OF customer_id ON orders "
        "WHEN OLD.customer_id IS NOT NEW.customer_id BEGIN"
        f"{_unindex('OLD', 'OLD.customer_id')}{_index('NEW', 'NEW.customer_id')}\n END"
    )
    op.execute(f"""
        CREATE TRIGGER customers_ocs_upd AFTER UPDATE OF name, email ON customers
        WHEN OLD.name IS NOT NEW.name OR OLD.email IS NOT NEW.email BEGIN
          INSERT INTO {_T}({_T}, rowid, name, email)
          SELECT 'delete', o.id, OLD.name, OLD.email FROM orders o WHERE o.customer_id = OLD.id;
          INSERT INTO {_T}(rowid, name, email)
          SELECT o.id, NEW.name, NEW.email FROM orders o WHERE o.customer_id = NEW.id;
        END""")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for trig in _TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {trig}")
    op.execute(f"DROP TABLE IF EXISTS {_T}")
