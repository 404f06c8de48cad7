"""The outbox relay's claims, attempts and parking (payplane.events.Relay).

- outbox.claim_token, outbox.claimed_until: a relay's lease on rows it is publishing, so it
  can release the database connection while it waits for NATS;
- outbox.attempts, outbox.last_error, outbox.parked_at: a row JetStream keeps refusing, or
  one over NATS's max payload, is set aside (parked) instead of blocking the rows behind it.

Idempotent: a database created at 0001 after this change already has the columns.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

from payplane.events import upgrade_outbox_table

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    upgrade_outbox_table("outbox")


def downgrade() -> None:
    op.drop_index("ix_outbox_parked_at", table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        for name in ("parked_at", "last_error", "attempts", "claimed_until", "claim_token"):
            batch.drop_column(name)
