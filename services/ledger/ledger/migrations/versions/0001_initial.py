"""ledger's first schema: journal entries, postings, balances, and the inbox.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from payplane.events import inbox_table
from payplane.idempotency import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "journal_entries",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(40), nullable=False, unique=True),
        sa.Column("source_event_id", sa.String(128), nullable=False, unique=True),
        sa.Column("source_type", sa.String(64), nullable=False),
        sa.Column("source_id", sa.String(64), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("refs", sa.JSON, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_journal_entries_source_id", "journal_entries", ["source_id"])
    op.create_table(
        "postings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("entry_seq", sa.Integer, sa.ForeignKey("journal_entries.seq"), nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_postings_account", "postings", ["account", "currency", "entry_seq"])
    op.create_index("ix_postings_entry", "postings", ["entry_seq"])
    op.create_table(
        "balances",
        sa.Column("account", sa.String(64), primary_key=True),
        sa.Column("currency", sa.String(3), primary_key=True),
        sa.Column("balance", sa.BigInteger, nullable=False),
        sa.Column("entry_count", sa.BigInteger, nullable=False),
    )
    libs = sa.MetaData()
    inbox_table(libs)
    libs.create_all(op.get_bind())


def downgrade() -> None:
    for name in ("inbox", "balances", "postings", "journal_entries"):
        op.drop_table(name)
