from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TypeVar

from google.protobuf.message import DecodeError, Message
from google.protobuf.timestamp_pb2 import Timestamp

from payplane.events.v1.envelope_pb2 import Envelope

from ._errors import EnvelopeError

__all__ = ["decode_envelope", "new_envelope", "unpack_payload"]

M = TypeVar("M", bound=Message)


def new_envelope(
    type: str,
    source: str,
    subject_id: str,
    payload: Message,
    *,
    event_id: str | None = None,
    time: datetime | None = None,
) -> Envelope:
    """Wrap a service message; a fresh UUID event id and the current time unless given."""
    ts = Timestamp()
    ts.FromDatetime(time or datetime.now(UTC))
    return Envelope(
        event_id=event_id or str(uuid.uuid4()),
        type=type,
        source=source,
        time=ts,
        subject_id=subject_id,
        payload_type=payload.DESCRIPTOR.full_name,
        payload=payload.SerializeToString(),
    )


def unpack_payload(envelope: Envelope, cls: type[M]) -> M:
    """The payload as `cls`; EnvelopeError when the envelope says it holds something else."""
    if envelope.payload_type != cls.DESCRIPTOR.full_name:
        raise EnvelopeError(
            f"payload is {envelope.payload_type!r}, not {cls.DESCRIPTOR.full_name!r}"
        )
    msg = cls()
    try:
        msg.ParseFromString(envelope.payload)
    except DecodeError as exc:
        raise EnvelopeError(f"undecodable {envelope.payload_type} payload") from exc
    return msg


def decode_envelope(data: bytes) -> Envelope:
    env = Envelope()
    try:
        env.ParseFromString(data)
    except DecodeError as exc:
        raise EnvelopeError("message body is not an Envelope") from exc
    if not env.event_id:
        raise EnvelopeError("envelope without event_id")
    return env
