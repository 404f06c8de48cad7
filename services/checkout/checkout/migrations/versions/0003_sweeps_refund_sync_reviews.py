"""Sweeping pending payments and refunds, refunds kept in step with Stripe, a review per case.

- payments.recheck_at, refunds.recheck_at: when the sweeper may next look at a row still
  pending; a replica claims a row by moving it forward (one conditional UPDATE wins). Rows
  without one (older, or written by a replica still on 0002 during a rolling deploy) are due
  once they have not moved for the sweep age.
- refunds.failure_reason: why Stripe failed or canceled a refund.
- reviews.payment_id is no longer unique: a payment whose review was decided can be held for
  review again (an early fraud warning after an approval).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from payplane.idempotency import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# SQLite keeps 0002's inline UNIQUE unnamed: batch mode names it through this convention so
# it can be dropped while the table is rebuilt.
_SQLITE_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def upgrade() -> None:
    op.add_column("payments", sa.Column("recheck_at", UTCDateTime))
    op.create_index("ix_payments_status_recheck", "payments", ["status", "recheck_at"])
    op.add_column("refunds", sa.Column("recheck_at", UTCDateTime))
    op.add_column("refunds", sa.Column("failure_reason", sa.String(64)))
    op.create_index("ix_refunds_status_recheck", "refunds", ["status", "recheck_at"])

    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        with op.batch_alter_table(
            "reviews", recreate="always", naming_convention=_SQLITE_NAMES
        ) as batch:
            batch.drop_constraint("uq_reviews_payment_id", type_="unique")
    else:
        for uc in sa.inspect(bind).get_unique_constraints("reviews"):
            if uc["column_names"] == ["payment_id"] and uc["name"]:
                op.drop_constraint(uc["name"], "reviews", type_="unique")
    op.create_index("ix_reviews_payment_opened", "reviews", ["payment_id", "opened_at"])


def downgrade() -> None:
    op.drop_index("ix_reviews_payment_opened", "reviews")
    with op.batch_alter_table("reviews") as batch:
        batch.create_unique_constraint("uq_reviews_payment_id", ["payment_id"])
    op.drop_index("ix_refunds_status_recheck", "refunds")
    op.drop_index("ix_payments_status_recheck", "payments")
    with op.batch_alter_table("refunds") as batch:
        batch.drop_column("failure_reason")
        batch.drop_column("recheck_at")
    with op.batch_alter_table("payments") as batch:
        batch.drop_column("recheck_at")
