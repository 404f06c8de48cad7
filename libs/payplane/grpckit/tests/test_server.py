"""The server machinery over real grpc.aio channels on 127.0.0.1 (no mocks of grpc)."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from payplane.grpckit import (
    INTERCEPTOR_ORDER,
    CallerAuth,
    ConfigurationError,
    channel,
    create_server,
    drain,
    errors,
    idempotency_metadata,
)
from payplane.grpckit.testing import (
    ECHO,
    ECHO_SERVICE,
    MUTATE,
    Behaviour,
    EchoClient,
    EchoServicer,
    echo_auth,
    echo_service,
    health_status,
    reflected_services,
)
from payplane.idempotency.testing import InMemoryIdempotencyStore


@asynccontextmanager
async def running(**overrides: Any) -> AsyncIterator[tuple[int, EchoServicer]]:
    servicer = overrides.pop("servicer", None) or EchoServicer()
    kwargs: dict[str, Any] = {
        "services": [echo_service(servicer)],
        "service_names": [ECHO_SERVICE],
        "auth": echo_auth(),
        "idempotency": InMemoryIdempotencyStore(),
        "mutating_methods": {MUTATE},
    }
    kwargs.update(overrides)
    server, port = await create_server(**kwargs)
    try:
        yield port, servicer
    finally:
        await server.stop(None)


@asynccontextmanager
async def client(port: int, token: str = "tok-storefront", **kw: Any) -> AsyncIterator[EchoClient]:
    async with channel(f"127.0.0.1:{port}", token, **kw) as ch:
        yield EchoClient(ch)


async def _code(awaitable: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await awaitable
    return err.value.code(), err.value.details() or ""


async def test_health_reports_serving_without_a_token() -> None:
    async with running() as (port, _), grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        assert await health_status(ch, ECHO_SERVICE) == health_pb2.HealthCheckResponse.SERVING
        assert await health_status(ch) == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_the_services_without_a_token() -> None:
    async with running() as (port, _), grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        services = await reflected_services(ch)
    assert ECHO_SERVICE in services and "grpc.health.v1.Health" in services


async def test_a_call_without_credentials_is_unauthenticated() -> None:
    async with running() as (port, servicer), grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        code, _ = await _code(EchoClient(ch).echo("hi"))
    assert code == grpc.StatusCode.UNAUTHENTICATED and servicer.calls == 0


@pytest.mark.parametrize("token", ["tok-nobody", ""])
async def test_an_unknown_token_is_unauthenticated(token: str) -> None:
    async with running() as (port, servicer), client(port, token) as c:
        code, _ = await _code(c.echo("hi"))
    assert code == grpc.StatusCode.UNAUTHENTICATED and servicer.calls == 0


async def test_a_known_caller_gets_through_and_is_named() -> None:
    async with running() as (port, servicer), client(port, "tok-saas") as c:
        assert (await c.echo("hi")).message == "hi"
    assert servicer.callers == ["saas"]


async def test_a_caller_without_permission_is_denied() -> None:
    async with running() as (port, servicer), client(port, "tok-saas") as c:
        code, details = await _code(c.mutate("acct", 100, metadata=idempotency_metadata("k")))
    assert code == grpc.StatusCode.PERMISSION_DENIED and "saas" in details
    assert servicer.calls == 0


async def test_a_method_missing_from_the_permissions_table_is_denied() -> None:
    auth = CallerAuth({"tok-storefront": "storefront"}, {MUTATE: {"storefront"}})
    async with running(auth=auth) as (port, servicer), client(port) as c:
        code, _ = await _code(c.echo("hi"))
    assert code == grpc.StatusCode.PERMISSION_DENIED and servicer.calls == 0


async def test_service_wildcards_grant_every_method() -> None:
    auth = CallerAuth({"tok-storefront": "storefront"}, {f"/{ECHO_SERVICE}/*": {"storefront"}})
    async with running(auth=auth) as (port, _), client(port) as c:
        assert (await c.echo("hi")).message == "hi"


async def test_authentication_runs_before_idempotency() -> None:
    # No token and no idempotency key: the caller is told about the token first.
    async with running() as (port, _), grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        code, _ = await _code(EchoClient(ch).mutate("acct", 100))
    assert code == grpc.StatusCode.UNAUTHENTICATED


async def test_a_deadline_too_short_to_work_is_refused_early() -> None:
    async with running(deadline_floor_s=30.0) as (port, servicer), client(port) as c:
        code, details = await _code(c.echo("hi", timeout=10))
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED and "too short" in details
    assert servicer.calls == 0


async def test_a_call_without_a_deadline_gets_the_default() -> None:
    async with running(default_deadline_s=0.2) as (port, servicer), client(port) as c:
        code, details = await _code(c.echo(Behaviour.WAIT, timeout=None))
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED and "server deadline" in details
    assert servicer.calls == 1


@pytest.mark.parametrize(
    ("behaviour", "code", "message"),
    [
        (Behaviour.INVALID, grpc.StatusCode.INVALID_ARGUMENT, "amount_minor must be positive"),
        (Behaviour.UNKNOWN_ACCOUNT, grpc.StatusCode.NOT_FOUND, "account 'acct' not found"),
        (
            Behaviour.DECLINE_AFTER_CHARGE,
            grpc.StatusCode.FAILED_PRECONDITION,
            "card declined after authorisation",
        ),
    ],
)
async def test_domain_errors_map_to_their_code_with_the_message(
    behaviour: str, code: grpc.StatusCode, message: str
) -> None:
    async with running() as (port, _), client(port) as c:
        got = await _code(c.mutate("acct", 100, behaviour, metadata=idempotency_metadata("k")))
    assert got == (code, message)


async def test_every_domain_error_has_a_code() -> None:
    for cls in errors.DomainError.__subclasses__():
        assert errors.status_for(cls("x")) is not None, cls


async def test_an_unexpected_exception_is_internal_with_an_error_id_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="payplane.grpckit")
    async with running() as (port, _), client(port) as c:
        code, details = await _code(
            c.mutate("acct", 100, Behaviour.BOOM, metadata=idempotency_metadata("k"))
        )
    assert code == grpc.StatusCode.INTERNAL
    match = re.fullmatch(r"internal error \(error id ([0-9a-f]{32})\)", details)
    assert match is not None, details
    assert "hunter2" not in details and "Traceback" not in details
    logged = [r for r in caplog.records if match.group(1) in r.getMessage()]
    assert logged and logged[0].exc_info is not None
    assert "hunter2" in str(logged[0].exc_info[1])


async def test_the_error_table_can_be_extended() -> None:
    class Throttled(Exception):
        pass

    class ThrottlingServicer(EchoServicer):
        async def Echo(self, request: Any, context: Any) -> Any:
            raise Throttled("slow down")

    table = {Throttled: grpc.StatusCode.RESOURCE_EXHAUSTED}
    async with running(servicer=ThrottlingServicer(), error_table=table) as (port, _):
        async with client(port) as c:
            assert await _code(c.echo("hi")) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "slow down")


async def test_a_handler_calling_abort_keeps_its_status() -> None:
    class AbortingServicer(EchoServicer):
        async def Echo(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            await context.abort(grpc.StatusCode.OUT_OF_RANGE, "page past the end")

    async with running(servicer=AbortingServicer()) as (port, _), client(port) as c:
        assert await _code(c.echo("hi")) == (grpc.StatusCode.OUT_OF_RANGE, "page past the end")


async def test_the_server_span_joins_the_client_trace() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    async with running(tracer_provider=provider) as (port, _):
        async with client(port, tracer_provider=provider) as c:
            await c.echo("hi")
    spans = {span.kind: span for span in exporter.get_finished_spans()}
    server, client_span = spans[SpanKind.SERVER], spans[SpanKind.CLIENT]
    assert server.name == ECHO.lstrip("/")
    assert server.context is not None and client_span.context is not None
    assert server.context.trace_id == client_span.context.trace_id
    assert server.parent is not None and server.parent.span_id == client_span.context.span_id
    assert server.attributes is not None and server.attributes["rpc.grpc.status_code"] == 0


async def test_mutating_methods_need_a_store() -> None:
    with pytest.raises(ConfigurationError):
        await create_server(
            services=[],
            service_names=[],
            auth=echo_auth(),
            idempotency=None,
            mutating_methods={MUTATE},
        )


def test_the_chain_order_is_declared_once() -> None:
    assert INTERCEPTOR_ORDER == (
        "tracing",
        "authentication",
        "authorisation",
        "deadline",
        "idempotency",
        "errors",
    )


async def test_drain_reports_not_serving_and_lets_the_in_flight_call_finish() -> None:
    servicer = EchoServicer()
    server, port = await create_server(
        services=[echo_service(servicer)], service_names=[ECHO_SERVICE], auth=echo_auth()
    )
    try:
        async with client(port) as c, grpc.aio.insecure_channel(f"127.0.0.1:{port}") as probe:
            import asyncio

            in_flight = asyncio.ensure_future(c.echo(Behaviour.WAIT))
            await servicer.started.wait()
            draining = asyncio.ensure_future(drain(server, grace_s=30))
            status = await _poll(lambda: health_status(probe, ECHO_SERVICE))
            assert status != health_pb2.HealthCheckResponse.SERVING
            servicer.release.set()
            assert (await in_flight).message == Behaviour.WAIT
            await draining
    finally:
        await server.stop(None)


async def _poll(check: Callable[[], Any]) -> Any:
    """Ask until the server stops answering SERVING (or stops answering at all)."""
    import asyncio

    for _ in range(500):
        try:
            status = await check()
        except grpc.aio.AioRpcError as exc:
            return exc.code()
        if status != health_pb2.HealthCheckResponse.SERVING:
            return status
        await asyncio.sleep(0.01)
    return health_pb2.HealthCheckResponse.SERVING


STREAM_METHOD = "/payplane.testing.v1.Counter/Count"


def _counter_service() -> tuple[Any, object]:
    from payplane.testing.v1 import echo_pb2

    async def count(request: echo_pb2.EchoRequest, context: Any) -> AsyncIterator[Any]:
        for i in range(3):
            yield echo_pb2.EchoReply(message=f"{request.message}{i}")

    handler = grpc.method_handlers_generic_handler(
        "payplane.testing.v1.Counter",
        {
            "Count": grpc.unary_stream_rpc_method_handler(
                count,
                request_deserializer=echo_pb2.EchoRequest.FromString,
                response_serializer=echo_pb2.EchoReply.SerializeToString,
            )
        },
    )

    def add(_servicer: object, server: grpc.aio.Server) -> None:
        server.add_generic_rpc_handlers((handler,))

    return add, None


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (None, grpc.StatusCode.UNAUTHENTICATED),
        ("tok-saas", grpc.StatusCode.PERMISSION_DENIED),
        ("tok-storefront", grpc.StatusCode.OK),
    ],
)
async def test_streaming_methods_still_check_the_caller(
    token: str | None, expected: grpc.StatusCode
) -> None:
    from payplane.testing.v1 import echo_pb2

    auth = CallerAuth(
        {"tok-storefront": "storefront", "tok-saas": "saas"}, {STREAM_METHOD: {"storefront"}}
    )
    async with running(services=[_counter_service()], auth=auth) as (port, _):
        target = f"127.0.0.1:{port}"
        ch = channel(target, token) if token else grpc.aio.insecure_channel(target)
        async with ch:
            call = ch.unary_stream(
                STREAM_METHOD,
                request_serializer=echo_pb2.EchoRequest.SerializeToString,
                response_deserializer=echo_pb2.EchoReply.FromString,
            )(echo_pb2.EchoRequest(message="n"), timeout=10)
            messages: list[str] = []
            try:
                async for reply in call:
                    messages.append(reply.message)
            except grpc.aio.AioRpcError as exc:
                assert exc.code() == expected
            else:
                assert expected == grpc.StatusCode.OK and messages == ["n0", "n1", "n2"]
            assert await call.code() == expected


async def test_a_timed_out_idempotent_call_frees_its_key_for_the_retry() -> None:
    store = InMemoryIdempotencyStore(lease_s=300)
    async with running(idempotency=store, default_deadline_s=0.2) as (port, servicer):
        async with client(port) as c:
            key = idempotency_metadata("k")
            code, _ = await _code(c.mutate("acct", 100, Behaviour.WAIT, metadata=key, timeout=None))
            assert code == grpc.StatusCode.DEADLINE_EXCEEDED
            servicer.release.set()
            # Without the release on cancellation the lease would hold for 300 s: ABORTED.
            reply = await c.mutate("acct", 100, Behaviour.WAIT, metadata=key, timeout=None)
    assert reply.balance_minor == 100 and servicer.charges == [("acct", 100)]
