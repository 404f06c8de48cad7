from __future__ import annotations

from sqlalchemy import inspect

from ._tables import relay_state_columns

__all__ = ["upgrade_outbox_table"]


def upgrade_outbox_table(name: str = "outbox") -> None:
    """Inside an alembic migration: add the relay's claim, attempt and parking columns to an
    outbox table made before they existed. Idempotent, because a service's first migration
    builds its outbox from the current `outbox_table()` and so may already have them."""
    from alembic import op  # only importable while alembic runs a migration

    bind = op.get_bind()
    inspector = inspect(bind)
    present = {c["name"] for c in inspector.get_columns(name)}
    for column in relay_state_columns(indexed=False):
        if column.name not in present:
            op.add_column(name, column)
    index = f"ix_{name}_parked_at"
    if index not in {i["name"] for i in inspect(bind).get_indexes(name)}:
        op.create_index(index, name, ["parked_at"])
