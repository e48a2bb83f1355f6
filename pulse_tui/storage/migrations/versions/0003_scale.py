"""scale: daily revenue totals and a trigram index over customers

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 20:00:00.000000

On SQLite only (elsewhere the queries keep their plain GROUP BY / LIKE paths):

* ``order_day_totals(day, currency, orders, revenue)``: per UTC day and
  currency, the count and summed total of the orders that are not cancelled,
  kept by triggers on orders (insert, delete, and updates of status, total,
  currency or placed_at), so any writer keeps it right. Revenue per day for
  90 days reads ~90 × currencies rows instead of every order of the window.
* ``customer_search``: an FTS5 trigram index (external content, rowid =
  customer id) over customer name and email, kept by triggers on customers:
  substring search (``customer:`` filters, mid-address email fragments) in
  milliseconds instead of a LIKE scan of every customer.

Both are backfilled from the rows already there.
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_DAY_TRIGGERS = ("orders_day_ins", "orders_day_del", "orders_day_upd")
_CUSTOMER_TRIGGERS = ("customers_search_ins", "customers_search_del", "customers_search_upd")


def _add(row: str) -> str:
    """Add one order (``NEW`` or ``OLD``) to its day, when it is not cancelled."""
    return f"""
          INSERT INTO order_day_totals(day, currency, orders, revenue)
          SELECT date({row}.placed_at), {row}.currency, 1, {row}.total
          WHERE {row}.status != 'cancelled'
          ON CONFLICT(day, currency) DO UPDATE
            SET orders = orders + 1, revenue = revenue + excluded.revenue;"""


def _sub(row: str) -> str:
    return f"""
          UPDATE order_day_totals SET orders = orders - 1, revenue = revenue - {row}.total
          WHERE day = date({row}.placed_at) AND currency = {row}.currency
            AND {row}.status != 'cancelled';"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("""
        CREATE TABLE order_day_totals (
          day VARCHAR NOT NULL,
          currency VARCHAR NOT NULL,
          orders INTEGER NOT NULL DEFAULT 0,
          revenue INTEGER NOT NULL DEFAULT 0,
          PRIMARY KEY (day, currency)
        )""")
    op.execute("""
        INSERT INTO order_day_totals(day, currency, orders, revenue)
        SELECT date(placed_at), currency, count(*), sum(total) FROM orders
        WHERE status != 'cancelled' GROUP BY 1, 2""")
    op.execute(f"CREATE TRIGGER orders_day_ins AFTER INSERT ON orders BEGIN{_add('NEW')}\n END")
    op.execute(f"CREATE TRIGGER orders_day_del AFTER DELETE ON orders BEGIN{_sub('OLD')}\n END")
    op.execute(f"""
        CREATE TRIGGER orders_day_upd AFTER UPDATE OF status, total, currency, placed_at
        ON orders
        WHEN OLD.status IS NOT NEW.status OR OLD.total IS NOT NEW.total
          OR OLD.currency IS NOT NEW.currency OR OLD.placed_at IS NOT NEW.placed_at
        BEGIN{_sub("OLD")}{_add("NEW")}
        END""")

    op.execute(
        "CREATE VIRTUAL TABLE customer_search USING fts5("
        "name, email, content='customers', content_rowid='id', tokenize='trigram')"
    )
    op.execute("INSERT INTO customer_search(customer_search) VALUES ('rebuild')")
    op.execute("""
        CREATE TRIGGER customers_search_ins AFTER INSERT ON customers BEGIN
          INSERT INTO customer_search(rowid, name, email) VALUES (NEW.id, NEW.name, NEW.email);
        END""")
    op.execute("""
        CREATE TRIGGER customers_search_del AFTER DELETE ON customers BEGIN
          INSERT INTO customer_search(customer_search, rowid, name, email)
          VALUES ('delete', OLD.id, OLD.name, OLD.email);
        END""")
    op.execute("""
        CREATE TRIGGER customers_search_upd AFTER UPDATE OF name, email ON customers BEGIN
          INSERT INTO customer_search(customer_search, rowid, name, email)
          VALUES ('delete', OLD.id, OLD.name, OLD.email);
          INSERT INTO customer_search(rowid, name, email) VALUES (NEW.id, NEW.name, NEW.email);
        END""")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for trig in (*_DAY_TRIGGERS, *_CUSTOMER_TRIGGERS):
        op.execute(f"DROP TRIGGER IF EXISTS {trig}")
    op.execute("DROP TABLE IF EXISTS customer_search")
    op.execute("DROP TABLE IF EXISTS order_day_totals")
