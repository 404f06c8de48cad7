"""checkout's tables (SQLAlchemy Core), plus the shared libs' tables it hosts."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from payplane.events import inbox_table, outbox_table
from payplane.idempotency import UTCDateTime, idempotency_table

__all__ = [
    "declines",
    "disputes",
    "early_fraud_warnings",
    "fraud_decisions",
    "idempotency",
    "inbox",
    "metadata",
    "outbox",
    "payments",
    "refunds",
    "review_audit",
    "reviews",
]

metadata = MetaData()

payments = Table(
    "payments",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("caller", String(64), nullable=False),
    Column("customer_ref", String(255), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount_refunded", BigInteger, nullable=False, default=0),
    Column("payment_method", String(255), nullable=False),
    Column("capture_method", String(16), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("metadata", JSON, nullable=False),
    Column("status", String(32), nullable=False),
    Column("stripe_payment_intent_id", String(64), unique=True),
    Column("stripe_charge_id", String(64)),
    Column("next_action", JSON),
    Column("decline", JSON),
    Column("version", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # 0002: lifecycle, fraud signals and Radar's verdict
    Column("amount_captured", BigInteger, nullable=False, default=0),
    Column("cancellation_reason", String(32)),
    Column("authorized_at", UTCDateTime),  # Stripe's clock: the charge's `created`
    Column("card_fingerprint", String(64)),
    Column("card_country", String(2)),
    Column("ip_address", String(64)),
    Column("ip_country", String(2)),
    Column("email", String(320)),
    Column("shipping_country", String(2)),
    Column("customer_created_at", UTCDateTime),
    Column("fraud_decision", String(16)),
    Column("fraud_final_decision", String(16)),
    Column("radar", JSON),
    Column("radar_risk_score", Integer),
    Column("radar_risk_level", String(16)),
    Column("review_id", String(40)),
    Column("confirm_later", Boolean, nullable=False, default=False),
    # 0003: when the sweeper may next look at a pending payment (a claim moves it forward)
    Column("recheck_at", UTCDateTime),
    Index("ix_payments_customer_created", "customer_ref", "created_at", "id"),
    Index("ix_payments_status_created", "status", "created_at", "id"),
    Index("ix_payments_created", "created_at", "id"),
    Index("ix_payments_card_created", "card_fingerprint", "created_at"),
    Index("ix_payments_ip_created", "ip_address", "created_at"),
    Index("ix_payments_email_created", "email", "created_at"),
    Index("ix_payments_status_authorized", "status", "authorized_at"),
    Index("ix_payments_status_recheck", "status", "recheck_at"),
)

refunds = Table(
    "refunds",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("payment_id", String(40), ForeignKey("payments.id"), nullable=False, index=True),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("reason", String(32), nullable=False, default=""),
    Column("status", String(16), nullable=False),
    Column("stripe_refund_id", String(64), unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    # 0003
    Column("recheck_at", UTCDateTime),  # when the sweeper may next look at a pending refund
    Column("failure_reason", String(64)),  # Stripe's, when it failed or canceled the refund
    Index("ix_refunds_status_recheck", "status", "recheck_at"),
)

fraud_decisions = Table(
    "fraud_decisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("payment_id", String(40), nullable=False),
    Column("mode", String(8), nullable=False),  # live | shadow
    Column("stage", String(12), nullable=False),  # pre_auth | post_auth
    Column("decision", String(16), nullable=False),
    Column("score_decision", String(16), nullable=False),
    Column("score", Float, nullable=False),
    Column("logit", Float, nullable=False),
    Column("bias", Float, nullable=False),
    Column("model_version", String(64), nullable=False),
    Column("features", JSON, nullable=False),  # [{name, value, weight, contribution}]
    Column("rules_fired", JSON, nullable=False),
    Column("signals", JSON, nullable=False),  # what list rules matched on, for replays
    Column("radar", JSON),  # post_auth: Radar's outcome that joined in
    Column("decided_at", UTCDateTime, nullable=False),
    Index("ix_fraud_decisions_payment", "payment_id", "mode", "stage"),
    Index("ix_fraud_decisions_decided", "mode", "stage", "decided_at"),
)

declines = Table(
    "declines",
    metadata,
    Column("payment_id", String(40), primary_key=True),
    Column("customer_ref", String(255), nullable=False),
    Column("card_fingerprint", String(64)),
    Column("code", String(64), nullable=False),
    Column("decline_code", String(64), nullable=False),
    Column("advice", String(32), nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Index("ix_declines_customer", "customer_ref", "occurred_at"),
    Index("ix_declines_card", "card_fingerprint", "occurred_at"),
)

disputes = Table(
    "disputes",
    metadata,
    Column("id", String(64), primary_key=True),  # Stripe's dp_...
    Column("payment_id", String(40)),
    Column("stripe_charge_id", String(64), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("reason", String(64), nullable=False),
    Column("status", String(32), nullable=False),
    Column("evidence_due_by", UTCDateTime),
    Column("funds_withdrawn", Boolean, nullable=False, default=False),
    Column("funds_reinstated", Boolean, nullable=False, default=False),
    Column("opened_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_disputes_payment", "payment_id"),
)

early_fraud_warnings = Table(
    "early_fraud_warnings",
    metadata,
    Column("id", String(64), primary_key=True),  # Stripe's issfr_...
    Column("payment_id", String(40)),
    Column("stripe_charge_id", String(64), nullable=False),
    Column("fraud_type", String(64), nullable=False),
    Column("actionable", Boolean, nullable=False),
    Column("action", String(16), nullable=False),  # refunded | review | none
    Column("created_at", UTCDateTime, nullable=False),
)

reviews = Table(
    "reviews",
    metadata,
    Column("id", String(40), primary_key=True),
    # One payment may be held again after a decision (0003 dropped the uniqueness).
    Column("payment_id", String(40), nullable=False),
    Column("reason", String(32), nullable=False),
    Column("status", String(16), nullable=False),  # open | approved | rejected | closed
    Column("score", Float, nullable=False, default=0.0),
    Column("stripe_review_id", String(64)),
    Column("opened_at", UTCDateTime, nullable=False),
    Column("closed_at", UTCDateTime),
    Column("decided_by", String(64)),
    Column("decision_reason", Text),
    Column("auto_resolved", Boolean, nullable=False, default=False),
    Index("ix_reviews_status_opened", "status", "opened_at", "id"),
    Index("ix_reviews_payment_opened", "payment_id", "opened_at"),
)

review_audit = Table(
    "review_audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("review_id", String(40), nullable=False, index=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("action", String(32), nullable=False),
    Column("detail", Text, nullable=False, default=""),
)

outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
idempotency = idempotency_table(metadata)
