"""The HTTP layer: one aiohttp handler running Stripe's request pipeline.

    route -> auth -> Stripe-Account scope -> rate limits -> body -> idempotency
          -> injected faults -> object lock -> handler -> store idempotent result -> answer

Handlers are synchronous; everything that waits happens here, around them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import uuid
from typing import Any

import orjson
from aiohttp import web

from . import router
from .config import Config
from .errors import (
    ApiError,
    AuthenticationError,
    Conflict,
    InvalidRequest,
    NotFound,
    PermissionError_,
    RateLimited,
    StripeError,
)
from .expand import expand
from .faults import Faults
from .forms import parse_form
from .idempotency import MAX_KEY_LENGTH, IdempotencyStore, KeyInUse, Mismatch, fingerprint
from .params import ParamError, Params
from .ratelimit import RateLimiter
from .requestlog import RequestLog
from .state import Ctx, Emulator

__all__ = ["EmulatorApp"]

log = logging.getLogger("stripe_emulator")
API_VERSION = "2025-04-30.basil"
_JSON = "application/json"


class _Abort(Exception):
    """Drop the connection without an answer (injected reset).

    `stage` is "before" (nothing happened) or "after" (the request took effect and its
    result, `status`, was stored against its idempotency key)."""

    def __init__(self, stage: str, status: int = 0) -> None:
        super().__init__(stage)
        self.stage = stage
        self.status = status


class EmulatorApp:
    def __init__(self, config: Config | None = None, store_path: str | None = None) -> None:
        from . import resources  # noqa: F401  (registers every route)

        self.em = Emulator(config, store_path)
        self.config = self.em.config
        self.idem = IdempotencyStore()
        self.limiter = RateLimiter()
        self.faults = Faults()
        self.requests = RequestLog(self.config.request_log_size)
        self._locks: dict[str, asyncio.Event] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.services: dict[str, Any] = {}  # background parts (webhook delivery) by name
        self.em.reset_hooks.append(self._on_reset)

    def _on_reset(self, _em: Emulator) -> None:
        self.idem.clear()
        self.limiter.clear()
        self.requests.clear()
        self.faults = Faults()

    # -- aiohttp wiring -----------------------------------------------------------------------
    def build(self) -> web.Application:
        app = web.Application(client_max_size=self.config.max_body_bytes)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        app.on_startup.append(self._startup)
        app.on_cleanup.append(self._cleanup)
        return app

    async def _startup(self, _app: web.Application) -> None:
        from .webhooks import WebhookDispatcher

        dispatcher = WebhookDispatcher(self)
        self.services["webhooks"] = dispatcher
        await dispatcher.start()
        self._tasks.append(asyncio.create_task(self._ticker()))

    async def _cleanup(self, _app: web.Application) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        dispatcher = self.services.pop("webhooks", None)
        if dispatcher is not None:
            await dispatcher.stop()
        self.em.store.close()

    async def _ticker(self) -> None:
        """Let real time move the emulator too: settle funds, progress payouts, flush."""
        busy = False
        while True:
            # Background jobs (a test clock advancing) run in slices between requests.
            await asyncio.sleep(0 if busy else 0.05)
            try:
                self.em.run_due()
                busy = self.em.run_jobs()
                self.em.store.flush()
            except Exception:  # a timer bug must not stop the clock
                busy = False
                log.exception("emulator timer failed")

    # -- the pipeline -------------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path.startswith("/_emulator"):
            return await self._control(request)
        request_id = "req_" + uuid.uuid4().hex[:14]
        headers = {"Request-Id": request_id, "Stripe-Version": API_VERSION}
        entry: dict[str, Any] = {
            "request_id": request_id,
            "method": request.method,
            "path": path,
            "idempotency_key": request.headers.get("Idempotency-Key"),
            "account": None,
            "status": 0,
            "replayed": False,
            "created": self.em.now(),
        }
        try:
            status, body, extra = await self._pipeline(request, request_id, entry)
        except _Abort as abort:
            # The log keeps what really happened: `executed_status` is the answer the
            # client never saw when the reset came after the request took effect.
            entry["status"] = 0
            entry["reset"] = abort.stage
            if abort.stage == "after":
                entry["executed_status"] = abort.status
            self.requests.add(entry)
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError() from None
        except StripeError as exc:
            status, body, extra = exc.status, orjson.dumps(exc.body(request_id)), exc.headers
            entry["error"] = exc.code or exc.type
        headers.update(extra)
        entry["status"] = status
        if entry["idempotency_key"] and request.method == "POST":
            headers["Idempotency-Key"] = entry["idempotency_key"]
        if request.path.startswith("/v1/"):
            self.requests.add(entry)
        return web.Response(status=status, body=body, headers=headers, content_type=_JSON)

    async def _pipeline(
        self, request: web.Request, request_id: str, entry: dict[str, Any]
    ) -> tuple[int, bytes, dict[str, str]]:
        method = request.method
        found = router.match(method, request.path)
        if found is None:
            raise NotFound(
                f"Unrecognized request URL ({method}: {request.path}). Please see "
                "https://stripe.com/docs or we can help at https://support.stripe.com/.",
                type="invalid_request_error",
            )
        route, args = found
        key = self._authenticate(request)
        self._authorize(key, route)
        account = self._scope(request, key)
        entry["account"] = account
        faults = self.faults
        faulty = faults.active() and faults.applies(method, request.path)

        reason = self.limiter.check(
            account,
            route.endpoint,
            self.config.global_rate,
            self.config.endpoint_rate,
            self.config.max_concurrent,
        )
        if reason is None and faulty and self.em.rng.random() < faults.rate_limit_rate:
            reason = "global-rate"
        if reason is not None:
            raise RateLimited(
                "Request rate limit exceeded. Learn more about rate limits here "
                "https://stripe.com/docs/rate-limits.",
                code="rate_limit",
                headers={"Stripe-Rate-Limited-Reason": reason},
            )
        self.limiter.in_flight[account] = self.limiter.in_flight.get(account, 0) + 1
        try:
            return await self._execute(request, request_id, entry, route, args, account, faulty)
        finally:
            self.limiter.in_flight[account] -= 1

    async def _execute(
        self,
        request: web.Request,
        request_id: str,
        entry: dict[str, Any],
        route: router.Route,
        args: dict[str, str],
        account: str,
        faulty: bool,
    ) -> tuple[int, bytes, dict[str, str]]:
        method = request.method
        params = await self._read_params(request)
        expand_paths = self._expand_paths(params)
        idem_key = entry["idempotency_key"] if method == "POST" else None
        scope: tuple[str, str, str] | None = None
        if idem_key is not None:
            if len(idem_key) > MAX_KEY_LENGTH:
                raise InvalidRequest(
                    f"Invalid idempotency key: it must be at most {MAX_KEY_LENGTH} characters "
                    f"long (received {len(idem_key)}).",
                    param="Idempotency-Key",
                )
            scope = (self.config.platform_account, account, idem_key)
            fp = fingerprint(
                method, request.path, orjson.dumps(params, option=orjson.OPT_SORT_KEYS)
            )
            try:
                replay = self.idem.begin(scope, fp, self.em.now_f(), self.config.idempotency_ttl_s)
            except KeyInUse:
                raise Conflict(
                    "There is currently another in-progress request using this Idempotent Key "
                    "(that probably means you submitted twice, and the other request is still "
                    "going through): " + idem_key + ". Please try again later.",
                    code="idempotency_key_in_use",
                    type="invalid_request_error",
                    headers={"Stripe-Should-Retry": "true"},
                ) from None
            except Mismatch:
                raise InvalidRequest(
                    "Keys for idempotent requests can only be used with the same parameters they "
                    f"were first used with. Try using a key other than '{idem_key}' if you meant "
                    "to execute a different request.",
                    type="idempotency_error",
                ) from None
            if replay is not None:
                entry["replayed"] = True
                return replay.status, replay.body, {"Idempotent-Replayed": "true"}
        started = False
        lock_id = args.get(route.lock) if route.lock else None
        try:
            if faulty:
                await self._inject_before(request)
            if lock_id is not None:
                await self._acquire(lock_id)
            try:
                if faulty and (self.faults.latency_ms or self.faults.jitter_ms):
                    await asyncio.sleep(self.faults.latency_s(self.em.rng))
                ctx = Ctx(self.em, account, request_id, idem_key, expand_paths)
                started = True
                status, body, headers = self._run(ctx, route, params, args)
            finally:
                if lock_id is not None:
                    self._release(lock_id)
        except ParamError:
            raise  # validation failures store nothing (scope abandoned below)
        except StripeError as exc:
            if not started:
                raise
            status, body, headers = exc.status, orjson.dumps(exc.body(request_id)), exc.headers
            entry["error"] = exc.code or exc.type
        finally:
            if scope is not None and not started:
                self.idem.abandon(scope)
        if scope is not None:
            self.idem.finish(scope, status, body, route.endpoint)
        if faulty and self.em.rng.random() < self.faults.reset_after_rate:
            raise _Abort("after", status)
        return status, body, headers

    def _run(
        self, ctx: Ctx, route: router.Route, params: dict[str, Any], args: dict[str, str]
    ) -> tuple[int, bytes, dict[str, str]]:
        p = Params(params)
        try:
            try:
                result = router.call(route, ctx, p, args)
            finally:
                self.em.store.seal()  # the events this request emitted, deflated together
        except ParamError:
            if ctx.idempotency_key:
                self.idem.abandon((self.config.platform_account, ctx.account, ctx.idempotency_key))
            raise
        except StripeError:
            raise
        except Exception:
            error_id = uuid.uuid4().hex[:12]
            log.exception("emulator bug (error id %s) in %s", error_id, route.endpoint)
            raise ApiError(
                f"An unknown error occurred in the emulator (error id {error_id}).", code=None
            ) from None
        if ctx.expand:
            result = expand(ctx, result, ctx.expand)
        return 200, orjson.dumps(result), {}

    async def _inject_before(self, request: web.Request) -> None:
        rng = self.em.rng
        if rng.random() < self.faults.reset_before_rate:
            raise _Abort("before")
        if rng.random() < self.faults.error_rate:
            raise ApiError(
                "An unknown error occurred (injected by the emulator).",
                headers={"Stripe-Should-Retry": "true"},
            )

    async def _acquire(self, obj_id: str) -> None:
        deadline = asyncio.get_running_loop().time() + self.config.lock_wait_s
        while obj_id in self._locks:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise RateLimited(
                    "This object cannot be accessed right now because another API request or "
                    "Stripe process is currently accessing it. If you see this error "
                    "intermittently, retry the request. If you see this error frequently and "
                    "are making multiple concurrent requests to a single object, make your "
                    "requests serially or at a lower rate.",
                    code="lock_timeout",
                    headers={"Stripe-Should-Retry": "true"},
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._locks[obj_id].wait(), remaining)
        self._locks[obj_id] = asyncio.Event()

    def _release(self, obj_id: str) -> None:
        event = self._locks.pop(obj_id, None)
        if event is not None:
            event.set()

    async def _read_params(self, request: web.Request) -> dict[str, Any]:
        if request.method in ("GET", "DELETE"):
            return parse_form(request.query_string)
        if (
            request.content_length is not None
            and request.content_length > self.config.max_body_bytes
        ):
            raise _too_large(self.config.max_body_bytes)
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise _too_large(self.config.max_body_bytes) from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidRequest("Invalid request body: it is not valid UTF-8.") from None
        params = parse_form(text)
        if request.query_string:
            params.update(parse_form(request.query_string))
        return params

    @staticmethod
    def _expand_paths(params: dict[str, Any]) -> list[str]:
        value = params.pop("expand", None)
        if value is None:
            return []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ParamError("Invalid array: expand must be an array of strings.", param="expand")
        return value

    # -- auth ---------------------------------------------------------------------------------
    def _authenticate(self, request: web.Request) -> str:
        header = request.headers.get("Authorization", "")
        key = ""
        if header.startswith("Bearer "):
            key = header[7:].strip()
        elif header.startswith("Basic "):
            with contextlib.suppress(ValueError, UnicodeDecodeError):
                key = base64.b64decode(header[6:]).decode().split(":", 1)[0]
        if not key:
            raise AuthenticationError(
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                "YOUR_SECRET_KEY').",
                type="invalid_request_error",
            )
        if key.startswith("rk_test_") and key in self.config.restricted_keys:
            return key
        if key.startswith("sk_test_") and (not self.config.api_keys or key in self.config.api_keys):
            return key
        raise AuthenticationError(
            f"Invalid API Key provided: {_redact(key)}",
            type="invalid_request_error",
            code="api_key_expired" if key.startswith("sk_live_") else None,
        )

    def _authorize(self, key: str, route: router.Route) -> None:
        if not key.startswith("rk_") or route.perm is None:
            return
        perms = self.config.restricted_keys.get(key, {})
        granted = perms.get(route.perm)
        needed = "read" if route.method == "GET" else "write"
        if granted == "write" or granted == needed:
            return
        raise PermissionError_(
            f"The provided key '{_redact(key)}' does not have the required permissions for "
            f"this endpoint on account '{self.config.platform_account}'. Having the "
            f"'rak_{route.perm.rstrip('s')}_{needed}' permission would allow this request to "
            "continue.",
            type="invalid_request_error",
        )

    def _scope(self, request: web.Request, key: str) -> str:
        acct = request.headers.get("Stripe-Account")
        platform = self.config.platform_account
        if not acct or acct == platform:
            return platform
        if self.em.store.get(acct, platform, "account") is None:
            raise PermissionError_(
                f"The provided key '{_redact(key)}' does not have access to account '{acct}' "
                "(or that account does not exist). Application access may have been revoked.",
                type="invalid_request_error",
                code="account_invalid",
            )
        return acct

    # -- emulator-only control API ------------------------------------------------------------
    async def _control(self, request: web.Request) -> web.StreamResponse:
        from . import control  # noqa: F401  (registers the built-in control calls)

        found = router.match_control(request.method, request.path)
        if found is None:
            return _json(
                404,
                {
                    "error": {
                        "type": "invalid_request_error",
                        "message": f"Unknown emulator call {request.path}",
                    }
                },
            )
        fn, args = found
        body: Any = {}
        if request.can_read_body:
            raw = await request.read()
            if raw:
                try:
                    body = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    body = parse_form(raw.decode("utf-8", "replace"))
        if request.query_string:
            body = {**parse_form(request.query_string), **(body if isinstance(body, dict) else {})}
        if not isinstance(body, dict):
            return _json(
                400,
                {
                    "error": {
                        "type": "invalid_request_error",
                        "message": "Body must be a JSON object.",
                    }
                },
            )
        try:
            result = fn(self, body, **args)
            if asyncio.iscoroutine(result):
                result = await result
        except StripeError as exc:
            return _json(exc.status, exc.body())
        except (KeyError, ValueError, TypeError) as exc:
            return _json(400, {"error": {"type": "invalid_request_error", "message": str(exc)}})
        return _json(200, result)


def _json(status: int, body: Any) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type=_JSON)


def _redact(key: str) -> str:
    return key[:8] + "*" * max(0, len(key) - 12) + key[-4:] if len(key) > 12 else "****"


def _too_large(limit: int) -> StripeError:
    exc = InvalidRequest(f"Request body too large: the limit is {limit} bytes.")
    exc.status = 413
    return exc
