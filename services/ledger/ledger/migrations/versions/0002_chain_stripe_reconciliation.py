"""Hash chain and Stripe links on entries; Stripe's imported view; reconciliation; idempotency.

Entries booked before this revision are chained here, in sequence order, from their stored
content (the same canonical form the journal uses for new entries).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from payplane.idempotency import UTCDateTime, idempotency_table

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for column in (
        sa.Column("prev_hash", sa.String(64), nullable=True),
        sa.Column("hash", sa.String(64), nullable=True),
        sa.Column("bt_id", sa.String(64), nullable=True),
        sa.Column("link_role", sa.String(16), nullable=True),
        sa.Column("bt_gross", sa.BigInteger, nullable=True),
        sa.Column("bt_fee", sa.BigInteger, nullable=True),
        sa.Column("bt_settled", sa.BigInteger, nullable=True),
    ):
        op.add_column("journal_entries", column)
    op.create_index("ix_journal_entries_bt_id", "journal_entries", ["bt_id"])
    op.create_index("ix_journal_entries_created_at", "journal_entries", ["created_at"])
    op.create_table(
        "chain_head",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_table(
        "bt_bookings",
        sa.Column("bt_id", sa.String(64), primary_key=True),
        sa.Column("entry_seq", sa.Integer, nullable=False),
    )
    op.create_table(
        "stripe_balance_transactions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("available_on", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("reporting_category", sa.String(48), nullable=False),
        sa.Column("source", sa.String(64), nullable=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("fee", sa.BigInteger, nullable=False),
        sa.Column("net", sa.BigInteger, nullable=False),
        sa.Column("exchange_rate", sa.String(32), nullable=True),
        sa.Column("source_amount", sa.BigInteger, nullable=True),
        sa.Column("source_currency", sa.String(3), nullable=True),
        sa.Column("international", sa.Boolean, nullable=True),
        sa.Column("fx_expected_amount", sa.BigInteger, nullable=True),
        sa.Column("payout_id", sa.String(64), nullable=True),
        sa.Column("raw", sa.JSON, nullable=True),
        sa.Column("imported_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_stripe_bts_created", "stripe_balance_transactions", ["created", "id"])
    op.create_index("ix_stripe_bts_source", "stripe_balance_transactions", ["source"])
    op.create_index("ix_stripe_bts_payout", "stripe_balance_transactions", ["payout_id"])
    op.create_table(
        "stripe_payouts",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("arrival_date", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("automatic", sa.Boolean, nullable=False),
        sa.Column("reconciliation_status", sa.String(24), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("balance_transaction", sa.String(64), nullable=True),
        sa.Column("failure_balance_transaction", sa.String(64), nullable=True),
        sa.Column("failure_code", sa.String(48), nullable=True),
        sa.Column("contents_imported", sa.Boolean, nullable=False),
        sa.Column("contents_count", sa.Integer, nullable=False),
        sa.Column("contents_net", sa.BigInteger, nullable=False),
        sa.Column("raw", sa.JSON, nullable=True),
        sa.Column("imported_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_stripe_payouts_created", "stripe_payouts", ["created", "id"])
    op.create_table(
        "stripe_payout_contents",
        sa.Column("payout_id", sa.String(64), primary_key=True),
        sa.Column("bt_id", sa.String(64), primary_key=True),
    )
    op.create_table(
        "import_cursors",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("last_id", sa.String(64), nullable=False),
        sa.Column("window_gte", sa.BigInteger, nullable=True),
        sa.Column("page_after", sa.String(64), nullable=True),
        sa.Column("window_max_created", sa.BigInteger, nullable=True),
        sa.Column("window_max_id", sa.String(64), nullable=True),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "reconciliation_runs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("since", sa.BigInteger, nullable=True),
        sa.Column("until", sa.BigInteger, nullable=True),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("finished_at", UTCDateTime, nullable=True),
        sa.Column("summary", sa.JSON, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
    )
    op.create_table(
        "discrepancies",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("key", sa.String(200), nullable=False, unique=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("evidence", sa.JSON, nullable=False),
        sa.Column("first_run_id", sa.String(40), nullable=False),
        sa.Column("last_run_id", sa.String(40), nullable=False),
        sa.Column("adjusting_entry_id", sa.String(40), nullable=True),
        sa.Column("resolved_by", sa.String(128), nullable=True),
        sa.Column("resolution_reason", sa.Text, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_discrepancies_status", "discrepancies", ["status", "kind"])
    op.create_table(
        "discrepancy_audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("discrepancy_id", sa.String(40), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
    )
    op.create_index("ix_discrepancy_audit_discrepancy_id", "discrepancy_audit", ["discrepancy_id"])
    libs = sa.MetaData()
    idempotency_table(libs)
    libs.create_all(op.get_bind())
    _chain_existing()


def _chain_existing() -> None:
    """Chain entries written before this revision, oldest first, and seed the head."""
    from ledger.domain.chain import GENESIS, canonical, entry_hash
    from ledger.domain.entries import JournalEntry, Posting

    bind = op.get_bind()
    meta = sa.MetaData()
    entries = sa.Table("journal_entries", meta, autoload_with=bind)
    postings = sa.Table("postings", meta, autoload_with=bind)
    prev, last_seq = GENESIS, 0
    legs: dict[int, list[Posting]] = {}
    for p in bind.execute(sa.select(postings).order_by(postings.c.id)):
        legs.setdefault(p.entry_seq, []).append(Posting(p.account, int(p.amount), p.currency))
    for row in bind.execute(sa.select(entries).order_by(entries.c.seq)):
        entry = JournalEntry(
            source_event_id=row.source_event_id,
            source_type=row.source_type,
            source_id=row.source_id,
            description=row.description,
            postings=tuple(legs.get(row.seq, [])),
            refs=dict(row.refs or {}),
        )
        created = UTCDateTime().process_result_value(row.created_at, bind.dialect)
        assert created is not None
        digest = entry_hash(
            prev, canonical(entry, seq=row.seq, entry_id=row.id, created_at=created)
        )
        bind.execute(
            entries.update().where(entries.c.seq == row.seq).values(prev_hash=prev, hash=digest)
        )
        prev, last_seq = digest, row.seq
    bind.execute(
        sa.text("INSERT INTO chain_head (id, seq, hash) VALUES (1, :s, :h)"),
        {"s": last_seq, "h": prev},
    )


def downgrade() -> None:
    for name in (
        "idempotency_keys",
        "discrepancy_audit",
        "discrepancies",
        "reconciliation_runs",
        "import_cursors",
        "stripe_payout_contents",
        "stripe_payouts",
        "stripe_balance_transactions",
        "bt_bookings",
        "chain_head",
    ):
        op.drop_table(name)
    op.drop_index("ix_journal_entries_created_at", "journal_entries")
    op.drop_index("ix_journal_entries_bt_id", "journal_entries")
    with op.batch_alter_table("journal_entries") as batch:
        for name in ("bt_settled", "bt_fee", "bt_gross", "link_role", "bt_id", "hash", "prev_hash"):
            batch.drop_column(name)
