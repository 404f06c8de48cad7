from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode, TracerProvider

from payplane.events.v1.envelope_pb2 import Envelope

from ._envelope import decode_envelope
from ._errors import EnvelopeError, PublishError
from ._publish import MSG_ID_HEADER, publish_bytes
from ._streams import ensure_consumer, ensure_stream

__all__ = ["DLQ_HEADERS", "Consumer", "Handler", "MessageMeta"]

log = logging.getLogger("payplane.events.consumer")


@dataclass(frozen=True)
class MessageMeta:
    """Delivery facts a handler may want (it must not ack: the Consumer does)."""

    subject: str
    stream: str
    consumer: str
    stream_seq: int
    num_delivered: int
    msg_id: str | None
    headers: Mapping[str, str]


Handler = Callable[[Envelope, MessageMeta], Awaitable[None]]

# Headers added to a dead-lettered message, beside the original ones.
DLQ_HEADERS = (
    "Payplane-Dlq-Error",
    "Payplane-Dlq-Stream",
    "Payplane-Dlq-Consumer",
    "Payplane-Dlq-Subject",
    "Payplane-Dlq-Stream-Seq",
    "Payplane-Dlq-Deliveries",
    "Payplane-Original-Msg-Id",
)

# Deliveries the server may still make after the handler's last attempt, spent only on
# getting the message into the dead-letter stream (that publish can fail too).
_DEAD_LETTER_ATTEMPTS = 10


class Consumer:
    """A durable pull consumer with explicit ack, bounded redelivery and a dead-letter subject.

    For each message: the W3C context in its headers becomes the parent of a CONSUMER span,
    inside which `handler(envelope, meta)` runs. Success acks. An exception naks with the
    delay `backoff_s[delivery - 1]` (the last value repeats). After `max_deliver` handler
    attempts the message is published to `dead_letter_subject` (original headers plus
    `Payplane-Dlq-*` error headers) and terminated. A message that does not decode as an
    Envelope goes to the dead letters at once.

    Redelivery without a nak (the process died, or hung) happens after the ack wait, which
    JetStream takes from `backoff_s` per delivery (`ack_wait_s` when backoff is empty); a
    running handler keeps its message with in-progress acks. The server-side `max_deliver`
    leaves a few deliveries beyond the handler's attempts so a crash on the last attempt, or
    a failed dead-letter publish, still ends in the dead-letter stream rather than nowhere.
    """

    def __init__(
        self,
        js: JetStreamContext,
        stream: str,
        durable: str,
        filter_subject: str,
        handler: Handler,
        *,
        max_deliver: int = 5,
        backoff_s: Sequence[float] = (1.0, 5.0, 30.0, 120.0),
        ack_wait_s: float = 30.0,
        dead_letter_subject: str | None = None,
        batch: int = 10,
        fetch_timeout_s: float = 1.0,
        max_ack_pending: int = 1000,
        deliver_policy: DeliverPolicy = DeliverPolicy.ALL,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        if max_deliver < 1:
            raise ValueError("max_deliver must be >= 1")
        self._js = js
        self.stream = stream
        self.durable = durable
        self.filter_subject = filter_subject
        self._handler = handler
        self.max_deliver = max_deliver
        self._backoff_s = [float(b) for b in backoff_s]
        self._ack_wait_s = ack_wait_s
        self.dead_letter_subject = dead_letter_subject or f"dlq.{stream}.{durable}"
        self._default_dlq = dead_letter_subject is None
        self._batch = batch
        self._fetch_timeout_s = fetch_timeout_s
        self._max_ack_pending = max_ack_pending
        self._deliver_policy = deliver_policy
        self._tracer = trace.get_tracer("payplane.events", tracer_provider=tracer_provider)
        self._stopping = asyncio.Event()

    # -- setup --------------------------------------------------------------------------------

    def consumer_config(self) -> ConsumerConfig:
        server_max_deliver = self.max_deliver + _DEAD_LETTER_ATTEMPTS
        return ConsumerConfig(
            durable_name=self.durable,
            name=self.durable,
            filter_subject=self.filter_subject,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self._ack_wait_s,
            max_deliver=server_max_deliver,
            # JetStream requires max_deliver > len(backoff).
            backoff=self._backoff_s[: server_max_deliver - 1] or None,
            max_ack_pending=self._max_ack_pending,
            deliver_policy=self._deliver_policy,
        )

    async def ensure(self) -> None:
        """Create/update the durable consumer and make sure a stream captures the dead letters."""
        await ensure_consumer(self._js, self.stream, self.consumer_config())
        try:
            await self._js.find_stream_name_by_subject(self.dead_letter_subject)
        except nats.js.errors.NotFoundError:
            if self._default_dlq:
                name, subjects = f"DLQ_{self.stream}", [f"dlq.{self.stream}.>"]
            else:
                name, subjects = f"DLQ_{self.stream}_{self.durable}", [self.dead_letter_subject]
            await ensure_stream(self._js, name, subjects, max_age_s=30 * 24 * 3600)

    # -- loop ---------------------------------------------------------------------------------

    async def run(self) -> None:
        """Fetch and handle messages until `stop()`; unacked messages are redelivered later."""
        self._stopping.clear()
        await self.ensure()
        sub = await self._js.pull_subscribe_bind(durable=self.durable, stream=self.stream)
        try:
            while not self._stopping.is_set():
                msgs = await self._fetch(sub)
                for msg in msgs:
                    await self._process(msg)
        finally:
            with contextlib.suppress(nats.errors.Error):
                await sub.unsubscribe()

    def stop(self) -> None:
        """Ask `run()` to return after the message in hand (a pending fetch is abandoned)."""
        self._stopping.set()

    async def _fetch(self, sub: JetStreamContext.PullSubscription) -> list[Msg]:
        fetch = asyncio.ensure_future(sub.fetch(self._batch, timeout=self._fetch_timeout_s))
        stop = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({fetch, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            if not fetch.done():
                fetch.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await fetch
        if fetch.cancelled():
            return []
        try:
            return fetch.result()
        except nats.errors.TimeoutError:
            return []  # nothing to do right now
        except (nats.errors.Error, OSError) as exc:
            log.warning("fetch from %s/%s failed: %r", self.stream, self.durable, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self._fetch_timeout_s)
            return []

    # -- one message --------------------------------------------------------------------------

    def _delay_for(self, delivery: int) -> float:
        if not self._backoff_s:
            return self._ack_wait_s
        return self._backoff_s[min(delivery, len(self._backoff_s)) - 1]

    async def _process(self, msg: Msg) -> None:
        md = msg.metadata
        headers = dict(msg.headers or {})
        meta = MessageMeta(
            subject=msg.subject,
            stream=md.stream,
            consumer=md.consumer,
            stream_seq=md.sequence.stream,
            num_delivered=md.num_delivered,
            msg_id=headers.get(MSG_ID_HEADER),
            headers=headers,
        )
        parent = propagate.extract(headers)
        with self._tracer.start_as_current_span(
            f"{msg.subject} process",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "nats",
                "messaging.operation.type": "process",
                "messaging.destination.name": msg.subject,
                "messaging.consumer.group.name": self.durable,
                "messaging.message.id": meta.msg_id or "",
                "messaging.nats.stream": md.stream,
                "messaging.nats.stream_sequence": md.sequence.stream,
                "messaging.nats.delivery_count": md.num_delivered,
            },
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            if meta.num_delivered > self.max_deliver:
                # The handler had its attempts (the last one died without answering, or
                # the dead-letter publish failed): only dead-lettering is left to do.
                await self._dead_letter(msg, meta, "max deliveries reached without an ack")
                return
            try:
                envelope = decode_envelope(msg.data)
            except EnvelopeError as exc:
                span.set_status(Status(StatusCode.ERROR, "undecodable envelope"))
                await self._dead_letter(msg, meta, _describe(exc))
                return
            span.set_attribute("payplane.event.type", envelope.type)
            span.set_attribute("payplane.event.id", envelope.event_id)
            keep_alive = asyncio.create_task(self._keep_alive(msg, meta.num_delivered))
            try:
                await self._handler(envelope, meta)
            except Exception as exc:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                if meta.num_delivered >= self.max_deliver:
                    await self._dead_letter(msg, meta, _describe(exc))
                else:
                    log.warning(
                        "handler %s failed on %s (delivery %d/%d): %r",
                        self.durable,
                        envelope.event_id,
                        meta.num_delivered,
                        self.max_deliver,
                        exc,
                    )
                    await msg.nak(delay=self._delay_for(meta.num_delivered))
                return
            finally:
                keep_alive.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keep_alive
            await msg.ack()

    async def _keep_alive(self, msg: Msg, delivery: int) -> None:
        """While the handler runs, tell JetStream we still hold the message."""
        interval = max(self._delay_for(delivery) / 2, 0.05)
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(nats.errors.Error):
                await msg.in_progress()

    async def _dead_letter(self, msg: Msg, meta: MessageMeta, error: str) -> None:
        headers = dict(meta.headers)
        original_id = headers.pop(MSG_ID_HEADER, "")
        headers.update(
            {
                "Payplane-Dlq-Error": error,
                "Payplane-Dlq-Stream": meta.stream,
                "Payplane-Dlq-Consumer": self.durable,
                "Payplane-Dlq-Subject": meta.subject,
                "Payplane-Dlq-Stream-Seq": str(meta.stream_seq),
                "Payplane-Dlq-Deliveries": str(meta.num_delivered),
                "Payplane-Original-Msg-Id": original_id,
            }
        )
        try:
            await publish_bytes(
                self._js,
                self.dead_letter_subject,
                msg.data,
                # One dead letter per (stream message, consumer), however often we retry.
                msg_id=f"{meta.stream}:{meta.stream_seq}:{self.durable}",
                headers=headers,
            )
        except PublishError as exc:
            log.error("dead-letter publish for %s failed: %r", self.durable, exc)
            await msg.nak(delay=self._delay_for(meta.num_delivered))
            return
        log.error(
            "dead-lettered %s seq %d after %d deliveries to %s: %s",
            meta.stream,
            meta.stream_seq,
            meta.num_delivered,
            self.dead_letter_subject,
            error,
        )
        await msg.term()


def _describe(exc: BaseException) -> str:
    # NATS headers are single-line and bounded.
    text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())[:512]
