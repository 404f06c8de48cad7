from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import nats.js.errors
from nats.js import JetStreamContext

from ._publish import publish_bytes

__all__ = [
    "DLQ_STREAM_PREFIX",
    "DeadLetter",
    "ReplayResult",
    "dead_letter_counts",
    "list_dead_letters",
    "replay_dead_letters",
]

log = logging.getLogger("payplane.events.deadletters")

# Consumer.ensure() names the streams capturing dead letters DLQ_<stream>[_<durable>].
DLQ_STREAM_PREFIX = "DLQ_"
REPLAYED_FROM_HEADER = "Payplane-Replayed-From"
_DLQ_ONLY = ("Payplane-Dlq-", "Payplane-Original-Msg-Id")


@dataclass(frozen=True)
class DeadLetter:
    """One message in a dead-letter stream, as the Consumer left it."""

    seq: int  # in the dead-letter stream
    subject: str  # where it was first published (and where a replay sends it)
    msg_id: str  # its original Nats-Msg-Id
    consumer: str
    error: str
    deliveries: int
    dead_lettered_at: datetime | None


@dataclass(frozen=True)
class ReplayResult:
    replayed: int  # republished to their original subject and removed from the DLQ
    skipped: int  # not a Consumer's dead letter (no original subject): left in place


async def dead_letter_counts(
    js: JetStreamContext, prefix: str = DLQ_STREAM_PREFIX
) -> dict[str, int]:
    """Messages waiting in each dead-letter stream (by stream name): anything above zero
    wants an operator. Cheap (stream info only); meant for health, metrics and alerts."""
    counts: dict[str, int] = {}
    for info in await js.streams_info():
        name = info.config.name or ""
        if name.startswith(prefix):
            counts[name] = int(info.state.messages)
    return counts


def _dead_letter(seq: int, headers: dict[str, str], time: datetime | None) -> DeadLetter | None:
    subject = headers.get("Payplane-Dlq-Subject")
    if not subject:
        return None
    try:
        deliveries = int(headers.get("Payplane-Dlq-Deliveries", "0"))
    except ValueError:
        deliveries = 0
    return DeadLetter(
        seq=seq,
        subject=subject,
        msg_id=headers.get("Payplane-Original-Msg-Id", ""),
        consumer=headers.get("Payplane-Dlq-Consumer", ""),
        error=headers.get("Payplane-Dlq-Error", ""),
        deliveries=deliveries,
        dead_lettered_at=time,
    )


async def _messages(
    js: JetStreamContext, stream: str
) -> list[tuple[int, dict[str, str], bytes, datetime | None]]:
    info = await js.stream_info(stream)
    out: list[tuple[int, dict[str, str], bytes, datetime | None]] = []
    if info.state.messages == 0:
        return out
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        try:
            raw = await js.get_msg(stream, seq)
        except nats.js.errors.NotFoundError:
            continue  # deleted (replayed) in the middle of the stream
        headers = {str(k): str(v) for k, v in (raw.headers or {}).items()}
        out.append((seq, headers, raw.data or b"", raw.time))
    return out


async def list_dead_letters(
    js: JetStreamContext, dlq_stream: str, *, limit: int = 100
) -> list[DeadLetter]:
    """The oldest `limit` dead letters of a stream, for an operator to look at."""
    letters = []
    for seq, headers, _data, time in await _messages(js, dlq_stream):
        letter = _dead_letter(seq, headers, time)
        if letter is not None:
            letters.append(letter)
            if len(letters) >= limit:
                break
    return letters


async def replay_dead_letters(
    js: JetStreamContext,
    dlq_stream: str,
    *,
    consumer: str | None = None,
    seqs: set[int] | None = None,
    limit: int | None = None,
) -> ReplayResult:
    """Send dead letters back to their original subject (all, one consumer's, or the given
    DLQ sequence numbers), oldest first, and remove each from the DLQ once JetStream took it.

    Republished with the original headers and the original `Nats-Msg-Id`. If the stream
    still remembers that id (dead-lettered within its duplicate window) it would drop the
    copy; then the id `<original>:replay:<dlq stream>:<dlq seq>` is used instead, so each
    dead letter gets through once and a second replay of it (after a crash before the
    removal) is dropped. Consumers apply it once through their inbox, keyed by the
    envelope's event id. Every consumer of that subject sees it again; those that had
    applied it skip it the same way.
    """
    replayed = skipped = 0
    for seq, headers, data, _time in await _messages(js, dlq_stream):
        if seqs is not None and seq not in seqs:
            continue
        if consumer is not None and headers.get("Payplane-Dlq-Consumer") != consumer:
            continue
        if limit is not None and replayed >= limit:
            break
        letter = _dead_letter(seq, headers, None)
        if letter is None:
            skipped += 1
            continue
        out = {k: v for k, v in headers.items() if not k.startswith(_DLQ_ONLY)}
        out[REPLAYED_FROM_HEADER] = f"{dlq_stream}:{seq}"
        msg_id = letter.msg_id or f"{dlq_stream}:{seq}"
        ack = await publish_bytes(js, letter.subject, data, msg_id=msg_id, headers=out)
        if ack.duplicate:
            await publish_bytes(
                js, letter.subject, data, msg_id=f"{msg_id}:replay:{dlq_stream}:{seq}", headers=out
            )
        await js.delete_msg(dlq_stream, seq)
        replayed += 1
        log.info("replayed dead letter %s:%d (%s) to %s", dlq_stream, seq, msg_id, letter.subject)
    return ReplayResult(replayed=replayed, skipped=skipped)
