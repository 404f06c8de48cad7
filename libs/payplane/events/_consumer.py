from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
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

from ._encoding import inflate_body
from ._envelope import decode_envelope
from ._errors import EnvelopeError, PublishError
from ._publish import MSG_ID_HEADER, publish_bytes
from ._retry import RetryPolicy, is_retryable, retry_delay
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


@dataclass
class _Held:
    """A message held for a retry; `msg` is its newest delivery (the one to answer)."""

    msg: Msg
    meta: MessageMeta
    task: asyncio.Task[None] | None = None


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

# Deliveries beyond `max_deliver` a message may get without its handler ever answering (the
# process died or was stopped while holding it) before it is dead-lettered unhandled: room
# for restarts during an outage, a bound for a message that kills the process every time.
_UNANSWERED_DELIVERIES = 5
# Deliveries the server may still make after that, spent only on getting the message into
# the dead-letter stream (that publish can fail too).
_DEAD_LETTER_ATTEMPTS = 5
# Consecutive fetch errors (not timeouts) after which the consumer is ensured and bound again:
# the server lost it, or the stream was recreated.
_REBIND_AFTER_ERRORS = 3


class Consumer:
    """A durable pull consumer with explicit ack, bounded redelivery and a dead-letter subject.

    For each message: the W3C context in its headers becomes the parent of a CONSUMER span,
    inside which `handler(envelope, meta)` runs. Success acks. A failure is one of two kinds,
    as `retryable(exc)` says (default `is_retryable`: Stripe unreachable, breaker open, 429,
    5xx, the database or NATS away, `RetryableError`):

    - retryable: the message is held (kept with in-progress acks, so its delivery count does
      not grow) and retried in the background with exponential back-off and jitter, from
      `retry_backoff_s` up to `retry_max_backoff_s`, until it succeeds or fails otherwise,
      however long the outage; still failing `retry_horizon_s` after its first failure it is
      dead-lettered (None: never). Other messages keep flowing; at most `max_held` are held
      (fetching waits for a free slot).
    - anything else counts: a nak with the delay `backoff_s[delivery - 1]` (the last value
      repeats), and at the `max_deliver`-th delivery the message is dead-lettered.

    A dead-lettered message is published to `dead_letter_subject` (original headers plus
    `Payplane-Dlq-*` headers), terminated and logged at ERROR; `dead_letter_counts` counts
    them and `replay_dead_letters` sends them back. A message that does not decode as an
    Envelope goes to the dead letters at once.

    Redelivery without a nak (the process died, or hung) happens after the ack wait, which
    JetStream takes from `backoff_s` per delivery (`ack_wait_s` when backoff is empty); a
    running or held message is kept with in-progress acks. A message delivered more than
    `max_deliver + 5` times without its handler answering (it kills the process) is
    dead-lettered unhandled, and the server keeps a few deliveries beyond that for the
    dead-letter publish, so nothing ends nowhere. `run()` outlives NATS outages: it waits for
    the consumer to be created, and binds again when fetching keeps failing.
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
        retryable: RetryPolicy = is_retryable,
        retry_backoff_s: float = 1.0,
        retry_max_backoff_s: float = 60.0,
        retry_horizon_s: float | None = 24 * 3600.0,
        max_held: int = 100,
    ) -> None:
        if max_deliver < 1:
            raise ValueError("max_deliver must be >= 1")
        if retry_backoff_s <= 0 or retry_max_backoff_s < retry_backoff_s or max_held < 1:
            raise ValueError("need 0 < retry_backoff_s <= retry_max_backoff_s and max_held >= 1")
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
        self.dead_letter_stream: str | None = None  # known once ensure() ran
        self._batch = batch
        self._fetch_timeout_s = fetch_timeout_s
        self._max_ack_pending = max_ack_pending
        self._deliver_policy = deliver_policy
        self._tracer = trace.get_tracer("payplane.events", tracer_provider=tracer_provider)
        self._retryable = retryable
        self._retry_backoff_s = retry_backoff_s
        self._retry_max_backoff_s = retry_max_backoff_s
        self._retry_horizon_s = retry_horizon_s
        self._max_held = max_held
        self._held: dict[int, _Held] = {}  # by stream sequence
        self._slot_freed = asyncio.Event()
        self._rng = random.Random()
        self._stopping = asyncio.Event()

    @property
    def held(self) -> int:
        """Messages held for a retry after a retryable failure (a gauge for health/metrics)."""
        return len(self._held)

    # -- setup --------------------------------------------------------------------------------

    def consumer_config(self) -> ConsumerConfig:
        server_max_deliver = self.max_deliver + _UNANSWERED_DELIVERIES + _DEAD_LETTER_ATTEMPTS
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
            self.dead_letter_stream = await self._js.find_stream_name_by_subject(
                self.dead_letter_subject
            )
        except nats.js.errors.NotFoundError:
            if self._default_dlq:
                name, subjects = f"DLQ_{self.stream}", [f"dlq.{self.stream}.>"]
            else:
                name, subjects = f"DLQ_{self.stream}_{self.durable}", [self.dead_letter_subject]
            await ensure_stream(self._js, name, subjects, max_age_s=30 * 24 * 3600)
            self.dead_letter_stream = name

    # -- loop ---------------------------------------------------------------------------------

    async def run(self) -> None:
        """Fetch and handle messages until `stop()`; unacked messages are redelivered later.

        NATS being away delays it, never ends it: creating and binding the consumer is
        retried with back-off, and repeated fetch errors bind it again.
        """
        self._stopping.clear()
        attempt = 0
        try:
            while not self._stopping.is_set():
                try:
                    await self.ensure()
                    sub = await self._js.pull_subscribe_bind(
                        durable=self.durable, stream=self.stream
                    )
                except Exception as exc:
                    attempt += 1
                    delay = retry_delay(attempt, 0.5, 10.0, self._rng)
                    log.warning(
                        "consumer %s/%s not ready: %r; retrying in %.1fs",
                        self.stream, self.durable, exc, delay,
                    )  # fmt: skip
                    await self._sleep(delay)
                    continue
                attempt = 0
                try:
                    await self._consume(sub)
                finally:
                    with contextlib.suppress(Exception):
                        await sub.unsubscribe()
        finally:
            await self._release_held()

    def stop(self) -> None:
        """Ask `run()` to return after the message in hand (a pending fetch is abandoned;
        held messages are handed back to JetStream for redelivery)."""
        self._stopping.set()

    async def _consume(self, sub: JetStreamContext.PullSubscription) -> None:
        errors = 0
        while not self._stopping.is_set():
            if not await self._wait_for_slot():
                return
            room = min(self._batch, self._max_held - len(self._held))
            msgs, failed = await self._fetch(sub, room)
            errors = errors + 1 if failed else 0
            if errors >= _REBIND_AFTER_ERRORS:
                log.warning("consumer %s/%s: fetch keeps failing; binding again",
                            self.stream, self.durable)  # fmt: skip
                return
            for msg in msgs:
                await self._process(msg)

    async def _wait_for_slot(self) -> bool:
        while len(self._held) >= self._max_held:
            self._slot_freed.clear()
            stop = asyncio.ensure_future(self._stopping.wait())
            freed = asyncio.ensure_future(self._slot_freed.wait())
            try:
                await asyncio.wait({stop, freed}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stop.cancel()
                freed.cancel()
            if self._stopping.is_set():
                return False
        return True

    async def _fetch(
        self, sub: JetStreamContext.PullSubscription, count: int
    ) -> tuple[list[Msg], bool]:
        """Messages fetched (maybe none), and whether the fetch failed."""
        fetch = asyncio.ensure_future(sub.fetch(count, timeout=self._fetch_timeout_s))
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
            return [], False
        try:
            return fetch.result(), False
        except nats.errors.TimeoutError:
            return [], False  # nothing to do right now (or NATS away: the client reconnects)
        except (nats.errors.Error, nats.js.errors.Error, OSError) as exc:
            log.warning("fetch from %s/%s failed: %r", self.stream, self.durable, exc)
            await self._sleep(self._fetch_timeout_s)
            return [], True

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

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
        held = self._held.get(meta.stream_seq)
        if held is not None:
            # Redelivered while we hold it (an in-progress ack came too late): answer for
            # the newest delivery from now on rather than running the handler twice here.
            held.msg, held.meta = msg, meta
            return
        if meta.num_delivered > self.max_deliver + _UNANSWERED_DELIVERIES:
            # The handler had its attempts and more (they died without answering, or the
            # dead-letter publish failed): only dead-lettering is left to do.
            await self._dead_letter(msg, meta, "max deliveries reached without an answer")
            return
        try:
            envelope = decode_envelope(inflate_body(msg.data, headers))
        except EnvelopeError as exc:
            await self._dead_letter(msg, meta, _describe(exc))
            return
        error = await self._attempt(msg, envelope, meta)
        if error is None:
            await _settle(msg.ack(), "ack")
        elif self._retryable(error):
            log.warning(
                "handler %s failed on %s (retryable, held for a retry): %r",
                self.durable, envelope.event_id, error,
            )  # fmt: skip
            held = _Held(msg, meta)
            self._held[meta.stream_seq] = held
            held.task = asyncio.create_task(self._hold(held, envelope))
            held.task.add_done_callback(lambda _t: self._on_held_done(held))
        else:
            await self._count_failure(msg, envelope, meta, error)

    async def _attempt(
        self, msg: Msg, envelope: Envelope, meta: MessageMeta, *, keep_alive: bool = True
    ) -> Exception | None:
        """Run the handler once inside a CONSUMER span; the exception it raised, or None."""
        parent = propagate.extract(dict(meta.headers))
        with self._tracer.start_as_current_span(
            f"{meta.subject} process",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "nats",
                "messaging.operation.type": "process",
                "messaging.destination.name": meta.subject,
                "messaging.consumer.group.name": self.durable,
                "messaging.message.id": meta.msg_id or "",
                "messaging.nats.stream": meta.stream,
                "messaging.nats.stream_sequence": meta.stream_seq,
                "messaging.nats.delivery_count": meta.num_delivered,
                "payplane.event.type": envelope.type,
                "payplane.event.id": envelope.event_id,
            },
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            alive = asyncio.create_task(self._keep_alive(lambda: msg, meta.num_delivered))
            if not keep_alive:
                alive.cancel()
            try:
                await self._handler(envelope, meta)
            except Exception as exc:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                return exc
            finally:
                alive.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await alive
        return None

    async def _count_failure(
        self, msg: Msg, envelope: Envelope, meta: MessageMeta, error: Exception
    ) -> None:
        if meta.num_delivered >= self.max_deliver:
            await self._dead_letter(msg, meta, _describe(error))
            return
        log.warning(
            "handler %s failed on %s (delivery %d/%d): %r",
            self.durable, envelope.event_id, meta.num_delivered, self.max_deliver, error,
        )  # fmt: skip
        await _settle(msg.nak(delay=self._delay_for(meta.num_delivered)), "nak")

    async def _hold(self, held: _Held, envelope: Envelope) -> None:
        """Retry a message whose handler failed retryably, keeping it from redelivery."""
        alive = asyncio.create_task(self._keep_alive(lambda: held.msg, held.meta.num_delivered))
        since = time.monotonic()
        retries = 0
        try:
            while True:
                retries += 1
                await self._sleep(
                    retry_delay(
                        retries, self._retry_backoff_s, self._retry_max_backoff_s, self._rng
                    )
                )
                if self._stopping.is_set():
                    await _settle(held.msg.nak(), "nak")  # another replica, or the next start
                    return
                failing_s = time.monotonic() - since
                if self._retry_horizon_s is not None and failing_s > self._retry_horizon_s:
                    await self._dead_letter(
                        held.msg, held.meta, f"still failing retryably after {failing_s:.0f}s"
                    )
                    return
                error = await self._attempt(held.msg, envelope, held.meta, keep_alive=False)
                if error is None:
                    log.info("handler %s applied %s after %d retries",
                             self.durable, envelope.event_id, retries)  # fmt: skip
                    await _settle(held.msg.ack(), "ack")
                    return
                if not self._retryable(error):
                    await self._count_failure(held.msg, envelope, held.meta, error)
                    return
                # Loud now and then, not on every retry of every held message of an outage.
                log.log(
                    logging.ERROR if retries % 10 == 0 else logging.DEBUG,
                    "handler %s still failing on %s (retry %d, retryable): %r",
                    self.durable, envelope.event_id, retries, error,
                )  # fmt: skip
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(held.msg.nak(), timeout=1.0)
            raise
        finally:
            alive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await alive

    def _on_held_done(self, held: _Held) -> None:
        if self._held.get(held.meta.stream_seq) is held:
            del self._held[held.meta.stream_seq]
        self._slot_freed.set()
        task = held.task
        if task is not None and not task.cancelled() and task.exception() is not None:
            log.error("held message task of %s failed", self.durable, exc_info=task.exception())

    async def _release_held(self) -> None:
        tasks = [h.task for h in self._held.values() if h.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _keep_alive(self, current: Callable[[], Msg], delivery: int) -> None:
        """While the handler runs (or the message is held), tell JetStream we still hold it,
        three times per ack wait so one late tick does not cause a redelivery."""
        interval = max(self._delay_for(delivery) / 3, 0.01)
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(nats.errors.Error):
                await current().in_progress()

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
            await _settle(msg.nak(delay=self._delay_for(meta.num_delivered)), "nak")
            return
        log.error(
            "dead-lettered %s seq %d after %d deliveries to %s: %s",
            meta.stream,
            meta.stream_seq,
            meta.num_delivered,
            self.dead_letter_subject,
            error,
        )
        await _settle(msg.term(), "term")


async def _settle(answer: Awaitable[None], what: str) -> None:
    """Send an ack/nak/term; if NATS is away the message comes back after its ack wait."""
    try:
        await answer
    except (nats.errors.Error, OSError) as exc:
        log.warning("could not %s a message (it will be redelivered): %r", what, exc)


def _describe(exc: BaseException) -> str:
    # NATS headers are single-line and bounded.
    text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())[:512]
