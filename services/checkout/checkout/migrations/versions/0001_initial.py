"""checkout's first schema: payments, refunds, and the shared libs' tables.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from payplane.events import inbox_table, outbox_table
from payplane.idempotency import UTCDateTime, idempotency_table

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payments",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("caller", sa.String(64), nullable=False),
        sa.Column("customer_ref", sa.String(255), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount_refunded", sa.BigInteger, nullable=False),
        sa.Column("payment_method", sa.String(255), nullable=False),
        sa.Column("capture_method", sa.String(16), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("stripe_payment_intent_id", sa.String(64), unique=True),
        sa.Column("stripe_charge_id", sa.String(64)),
        sa.Column("next_action", sa.JSON),
        sa.Column("decline", sa.JSON),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_index(
        "ix_payments_customer_created", "payments", ["customer_ref", "created_at", "id"]
    )
    op.create_index("ix_payments_status_created", "payments", ["status", "created_at", "id"])
    op.create_index("ix_payments_created", "payments", ["created_at", "id"])
    op.create_table(
        "refunds",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("payment_id", sa.String(40), sa.ForeignKey("payments.id"), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("stripe_refund_id", sa.String(64), unique=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_refunds_payment_id", "refunds", ["payment_id"])
    # The shared libs' tables as their packages define them at this revision.
    libs = sa.MetaData()
    outbox_table(libs)
    inbox_table(libs)
    idempotency_table(libs)
    libs.create_all(op.get_bind())


def downgrade() -> None:
    for name in ("idempotency_keys", "inbox", "outbox", "refunds", "payments"):
        op.drop_table(name)
