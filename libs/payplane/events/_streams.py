from __future__ import annotations

from collections.abc import Sequence

import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, ConsumerInfo, StorageType, StreamConfig, StreamInfo

__all__ = ["ensure_consumer", "ensure_stream"]


async def ensure_stream(
    js: JetStreamContext,
    name: str,
    subjects: Sequence[str],
    duplicate_window_s: float = 120,
    max_age_s: float = 7 * 24 * 3600,
    *,
    storage: StorageType = StorageType.FILE,
    num_replicas: int = 1,
) -> StreamInfo:
    """Create the stream, or update it to this configuration; safe to call at every start.

    The duplicate window is how long a `Nats-Msg-Id` is remembered: a relay that crashed
    between publish and mark must come back within it (2 minutes by default).
    """
    config = StreamConfig(
        name=name,
        subjects=list(subjects),
        storage=storage,
        num_replicas=num_replicas,
        duplicate_window=duplicate_window_s,
        max_age=max_age_s,
    )
    try:
        await js.stream_info(name)
    except nats.js.errors.NotFoundError:
        try:
            return await js.add_stream(config)
        except nats.js.errors.BadRequestError:
            # Lost a creation race with another process: fall through to update.
            pass
    return await js.update_stream(config)


async def ensure_consumer(
    js: JetStreamContext, stream: str, config: ConsumerConfig
) -> ConsumerInfo:
    """Create the durable consumer or update it to `config` (JetStream's create is an upsert
    for the editable fields; changing e.g. the filter of a durable is rejected)."""
    if not config.durable_name:
        raise ValueError("ensure_consumer needs a durable consumer (config.durable_name)")
    config.name = config.durable_name
    return await js.add_consumer(stream, config)
