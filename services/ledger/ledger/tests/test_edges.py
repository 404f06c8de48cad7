"""The ledger's query edges (issue 8, defect 8): cursors parsed strictly, and a run stored with
a window out of range (accepted before it was checked) still reads back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ledger.entrypoints.grpc_api import run_to_proto
from ledger.service.handlers import sequence_cursor
from payplane.grpckit.errors import InvalidArgument


@pytest.mark.parametrize("cursor", ["", "1", "42", str(2**63 - 1)])
def test_a_sequence_cursor_this_service_wrote(cursor: str) -> None:
    assert sequence_cursor(cursor) == (int(cursor) if cursor else 0)


@pytest.mark.parametrize(
    "cursor", ["0", "-1", str(2**63), "9" * 30, "1e9", " 1", "1:500", "٣", "0x10", "1.0"]
)
def test_anything_else_is_refused(cursor: str) -> None:
    with pytest.raises(InvalidArgument, match="page_token"):
        sequence_cursor(cursor)


def _run(**overrides: Any) -> dict[str, Any]:
    run: dict[str, Any] = {
        "id": "rr_1",
        "status": "failed",
        "mode": "batch",
        "since": 10**13,
        "until": None,
        "started_at": datetime(2025, 1, 1, tzinfo=UTC),
        "finished_at": None,
        "summary": None,
        "error": "boom",
    }
    run.update(overrides)
    return run


def test_a_run_stored_with_an_impossible_window_still_reads() -> None:
    shown = run_to_proto(_run())
    assert shown.id == "rr_1" and not shown.HasField("since")
    assert run_to_proto(_run(since=-(2**62), until=2**62)).HasField("until") is False
    assert run_to_proto(_run(since=1_700_000_000)).since.seconds == 1_700_000_000
