"""Payment lifecycle, fraud decisions, declines, disputes, early fraud warnings, reviews.

Revision ID: 0002
Revises: 0001
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

from payplane.idempotency import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_PAYMENT_COLUMNS: list[sa.Column[Any]] = [
    sa.Column("amount_captured", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("cancellation_reason", sa.String(32)),
    sa.Column("authorized_at", UTCDateTime),
    sa.Column("card_fingerprint", sa.String(64)),
    sa.Column("card_country", sa.String(2)),
    sa.Column("ip_address", sa.String(64)),
    sa.Column("ip_country", sa.String(2)),
    sa.Column("email", sa.String(320)),
    sa.Column("shipping_country", sa.String(2)),
    sa.Column("customer_created_at", UTCDateTime),
    sa.Column("fraud_decision", sa.String(16)),
    sa.Column("fraud_final_decision", sa.String(16)),
    sa.Column("radar", sa.JSON),
    sa.Column("radar_risk_score", sa.Integer),
    sa.Column("radar_risk_level", sa.String(16)),
    sa.Column("review_id", sa.String(40)),
    sa.Column("confirm_later", sa.Boolean, nullable=False, server_default=sa.false()),
]
_PAYMENT_INDEXES = {
    "ix_payments_card_created": ["card_fingerprint", "created_at"],
    "ix_payments_ip_created": ["ip_address", "created_at"],
    "ix_payments_email_created": ["email", "created_at"],
    "ix_payments_status_authorized": ["status", "authorized_at"],
}


def upgrade() -> None:
    for column in _PAYMENT_COLUMNS:
        op.add_column("payments", column)
    op.execute("UPDATE payments SET amount_captured = amount WHERE status = 'succeeded'")
    for name, columns in _PAYMENT_INDEXES.items():
        op.create_index(name, "payments", columns)

    op.create_table(
        "fraud_decisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("payment_id", sa.String(40), nullable=False),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("stage", sa.String(12), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("score_decision", sa.String(16), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("logit", sa.Float, nullable=False),
        sa.Column("bias", sa.Float, nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("features", sa.JSON, nullable=False),
        sa.Column("rules_fired", sa.JSON, nullable=False),
        sa.Column("signals", sa.JSON, nullable=False),
        sa.Column("radar", sa.JSON),
        sa.Column("decided_at", UTCDateTime, nullable=False),
    )
    op.create_index(
        "ix_fraud_decisions_payment", "fraud_decisions", ["payment_id", "mode", "stage"]
    )
    op.create_index(
        "ix_fraud_decisions_decided", "fraud_decisions", ["mode", "stage", "decided_at"]
    )

    op.create_table(
        "declines",
        sa.Column("payment_id", sa.String(40), primary_key=True),
        sa.Column("customer_ref", sa.String(255), nullable=False),
        sa.Column("card_fingerprint", sa.String(64)),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("decline_code", sa.String(64), nullable=False),
        sa.Column("advice", sa.String(32), nullable=False),
        sa.Column("occurred_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_declines_customer", "declines", ["customer_ref", "occurred_at"])
    op.create_index("ix_declines_card", "declines", ["card_fingerprint", "occurred_at"])

    op.create_table(
        "disputes",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("payment_id", sa.String(40)),
        sa.Column("stripe_charge_id", sa.String(64), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("evidence_due_by", UTCDateTime),
        sa.Column("funds_withdrawn", sa.Boolean, nullable=False),
        sa.Column("funds_reinstated", sa.Boolean, nullable=False),
        sa.Column("opened_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_disputes_payment", "disputes", ["payment_id"])

    op.create_table(
        "early_fraud_warnings",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("payment_id", sa.String(40)),
        sa.Column("stripe_charge_id", sa.String(64), nullable=False),
        sa.Column("fraud_type", sa.String(64), nullable=False),
        sa.Column("actionable", sa.Boolean, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )

    op.create_table(
        "reviews",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("payment_id", sa.String(40), nullable=False, unique=True),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("stripe_review_id", sa.String(64)),
        sa.Column("opened_at", UTCDateTime, nullable=False),
        sa.Column("closed_at", UTCDateTime),
        sa.Column("decided_by", sa.String(64)),
        sa.Column("decision_reason", sa.Text),
        sa.Column("auto_resolved", sa.Boolean, nullable=False),
    )
    op.create_index("ix_reviews_status_opened", "reviews", ["status", "opened_at", "id"])

    op.create_table(
        "review_audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("review_id", sa.String(40), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_review_audit_review_id", "review_audit", ["review_id"])


def downgrade() -> None:
    for table in (
        "review_audit", "reviews", "early_fraud_warnings", "disputes", "declines",
        "fraud_decisions",
    ):  # fmt: skip
        op.drop_table(table)
    for name in _PAYMENT_INDEXES:
        op.drop_index(name, "payments")
    with op.batch_alter_table("payments") as batch:
        for column in _PAYMENT_COLUMNS:
            batch.drop_column(column.name)
