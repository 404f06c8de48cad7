"""parts reference widgets

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "parts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("widget_id", sa.Integer, sa.ForeignKey("widgets.id"), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("parts")
