"""The hash chain over the journal: each entry stores sha256(prev_hash + canonical entry).

Changing, inserting or deleting any stored entry (or posting) changes its canonical form,
so its hash no longer matches, and every later entry's prev_hash no longer matches either.
The canonical form is versioned so it can evolve without rewriting history.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from .entries import JournalEntry

__all__ = ["GENESIS", "ChainBreak", "canonical", "entry_hash", "verify_chain"]

GENESIS = "0" * 64
VERSION = 1


def canonical(entry: JournalEntry, *, seq: int, entry_id: str, created_at: datetime) -> bytes:
    link = entry.link
    doc = {
        "v": VERSION,
        "seq": seq,
        "id": entry_id,
        "source_event_id": entry.source_event_id,
        "source_type": entry.source_type,
        "source_id": entry.source_id,
        "description": entry.description,
        "refs": dict(sorted(entry.refs.items())),
        "postings": [[p.account, p.currency, p.amount] for p in entry.postings],
        "link": None
        if link is None
        else [link.balance_transaction_id, link.role, link.gross, link.fee, link.settled],
        "created_at": created_at.isoformat(timespec="microseconds"),
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(prev_hash: str, body: bytes) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + body).hexdigest()


@dataclass(frozen=True)
class ChainBreak:
    seq: int
    reason: str


def verify_chain(
    rows: Iterable[tuple[int, str, str, bytes]], start_hash: str = GENESIS, start_seq: int = 0
) -> list[ChainBreak]:
    """Check (seq, prev_hash, hash, canonical body) rows in seq order; every break found."""
    breaks: list[ChainBreak] = []
    expected_prev, expected_seq = start_hash, start_seq + 1
    for seq, prev_hash, stored, body in rows:
        if seq != expected_seq:
            breaks.append(ChainBreak(seq, f"sequence gap: expected {expected_seq}"))
        if prev_hash != expected_prev:
            breaks.append(ChainBreak(seq, "prev_hash does not match the previous entry's hash"))
        if entry_hash(prev_hash, body) != stored:
            breaks.append(ChainBreak(seq, "hash does not match the entry's content"))
        expected_prev, expected_seq = stored, seq + 1
    return breaks
