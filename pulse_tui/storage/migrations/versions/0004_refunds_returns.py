"""refunds: approval, sending and return columns; returns (RMA) table

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 21:30:00.000000
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "returns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("lines", sa.JSON(), nullable=True),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("decided_by", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("decision_note", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("received_by", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("refund_id", sa.Integer(), nullable=True),
        sa.Column("exchange_order_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"]),
        sa.ForeignKeyConstraint(["exchange_order_id"], ["orders.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_returns_order_id", "returns", ["order_id"])
    op.create_index("ix_returns_status", "returns", ["status"])
    with op.batch_alter_table("refunds") as batch:
        batch.add_column(sa.Column("shipping", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("tax", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("note", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch.add_column(sa.Column("return_id", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("approved_by", sqlmodel.sql.sqltypes.AutoString(), nullable=True)
        )
        batch.add_column(
            sa.Column("approved_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
        batch.add_column(sa.Column("attempt", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("sent_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch.create_foreign_key("fk_refunds_return_id", "returns", ["return_id"], ["id"])
    # The refunds screen: by status, newest first.
    op.create_index("ix_refunds_status", "refunds", ["status", "id"])


def downgrade() -> None:
    op.drop_index("ix_refunds_status", "refunds")
    with op.batch_alter_table("refunds") as batch:
        batch.drop_constraint("fk_refunds_return_id", type_="foreignkey")
        for name in (
            "sent_at",
            "attempt",
            "approved_at",
            "approved_by",
            "return_id",
            "note",
            "tax",
            "shipping",
        ):
            batch.drop_column(name)
    op.drop_index("ix_returns_status", "returns")
    op.drop_index("ix_returns_order_id", "returns")
    op.drop_table("returns")
