"""The daemon's HTTP API, a Starlette application: the endpoints, their limits and their errors.

Every answer is JSON (``/v1/filter``: the message, with the verdict in headers; ``/metrics``: text),
every error ``{"error": "one line"}`` with a 4xx or 5xx status; nothing a client sends gets a
traceback back or into the log. docs/serve.md is the reference.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from concurrent.futures import BrokenExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ..errors import BundleError, DataError, UsageError
from . import engine as scoring
from .metrics import Metrics

# The body types taken as one raw message; none at all is taken too. A form or JSON body is refused:
# ``curl --data`` would send a form, so the examples say ``-H 'Content-Type: message/rfc822'``.
MESSAGE_TYPES = ("message/rfc822", "application/octet-stream", "text/plain")
MAX_EXPLAIN = 100
LABELS = ("spam", "ham")
# The verdict of /v1/filter, in response headers: spamclf.serving.client reads them by these names.
LABEL_HEADER, SCORE_HEADER, BUNDLE_HEADER = "X-Spamclf-Label", "X-Spamclf-Score", "X-Spamclf-Bundle"


class Refused(Exception):
    """A request answered with an error: its status, one line saying why, the metric's kind."""

    def __init__(self, status: int, message: str, kind: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.kind, self.headers = status, kind, headers


@dataclass
class Settings:
    max_bytes: int  # the largest body taken (413 above)
    timeout: float  # seconds a request may take, reading its body and scoring it
    learn_timeout: float  # seconds a learn or forget waits for its change to be saved
    poll: float  # seconds between looks at the models directory
    token: str | None  # the bearer token for /v1/learn and /v1/forget
    socket_is_credential: bool  # on a Unix socket without a token, its file permissions guard learning
    learner: object = None  # spamclf.serving.learner.Learner


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or exc.__class__.__name__


def create_app(engine: scoring.Engine, settings: Settings, log) -> Starlette:
    metrics = Metrics()
    reload_lock = asyncio.Lock()

    async def reload(only_if_changed: bool = False) -> None:
        async with reload_lock:  # the poller and a learn never load the same bundle twice at once
            await (engine.poll() if only_if_changed else engine.reload())

    async def poll_forever() -> None:
        while True:
            await asyncio.sleep(settings.poll)
            try:
                await reload(only_if_changed=True)
            except Exception as exc:  # noqa: BLE001 -- the poller keeps going whatever one look met
                log("error", "poll_failed", f"looking at {engine.models_dir} failed: {one_line(exc)}")

    @asynccontextmanager
    async def lifespan(app):
        poller = asyncio.create_task(poll_forever())
        try:
            yield
        finally:
            poller.cancel()

    def endpoint(name: str):
        """Time the handler, count its answer, and turn every failure into a JSON error."""

        def wrap(handler):
            async def run(request: Request) -> Response:
                start = time.perf_counter()
                try:
                    response = await handler(request, start + settings.timeout)
                except Refused as exc:
                    response = JSONResponse({"error": str(exc)}, exc.status, headers=exc.headers)
                    metrics.error(name, exc.kind)
                    if exc.status >= 500:
                        log("warning", exc.kind, f"{request.method} {request.url.path}: {exc}")
                except Exception as exc:  # noqa: BLE001 -- a bug answers 500 with one line, never a traceback
                    response = JSONResponse({"error": f"internal error: {exc.__class__.__name__}: {one_line(exc)}"}, 500)
                    metrics.error(name, "internal")
                    log("error", "internal", f"{request.method} {request.url.path}: {exc.__class__.__name__}: {one_line(exc)}")
                metrics.observe(name, response.status_code, time.perf_counter() - start)
                return response

            return run

        return wrap

    async def read_message(request: Request, deadline: float) -> bytes:
        ctype = request.headers.get("content-type")
        if ctype is not None and ctype.split(";")[0].strip().lower() not in MESSAGE_TYPES:
            raise Refused(415, f"a body of type {ctype.split(';')[0].strip()!r} is no mail message: send it raw, as message/rfc822", "content_type")
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                raise Refused(400, f"Content-Length {declared!r} is not a number", "bad_request")
            if int(declared) > settings.max_bytes:
                raise Refused(413, f"the message is {int(declared)} bytes, over this daemon's limit of {settings.max_bytes}", "too_large")
        chunks, total = [], 0
        try:
            async with asyncio.timeout(max(deadline - time.perf_counter(), 0.0)):
                async for chunk in request.stream():
                    total += len(chunk)
                    if total > settings.max_bytes:
                        raise Refused(413, f"the message is over this daemon's limit of {settings.max_bytes} bytes", "too_large")
                    chunks.append(chunk)
        except TimeoutError:
            raise Refused(408, f"the message did not arrive within {settings.timeout:g} s", "slow_client") from None
        except ClientDisconnect:
            raise Refused(400, "the client went away before the whole message arrived", "disconnect") from None
        raw = b"".join(chunks)
        if not raw:
            raise Refused(400, "the body is empty: send one raw mail message", "empty")
        return raw

    async def run_scoring(deadline: float, fn, *args):
        try:
            gen, future = engine.submit(fn, *args)
        except scoring.Busy as exc:
            raise Refused(503, str(exc), "busy", {"Retry-After": "1"}) from None
        try:
            async with asyncio.timeout(max(deadline - time.perf_counter(), 0.0)):
                return await asyncio.wrap_future(future)
        except TimeoutError:
            raise Refused(503, f"no answer within this daemon's time limit of {settings.timeout:g} s", "timeout") from None
        except BrokenExecutor:
            engine.broken(gen)
            raise Refused(500, "the scoring worker died on this message", "worker_died") from None
        except Exception as exc:  # noqa: BLE001 -- a failure in the worker (a model giving NaN): one line
            raise Refused(500, f"cannot score the message: {one_line(exc)}", "scoring") from None

    def query_int(request: Request, name: str, low: int, high: int) -> int:
        value = request.query_params.get(name, "0")
        if not value.isdigit() or not low <= int(value) <= high:
            raise Refused(400, f"{name}={value!r} must be a whole number from {low} to {high}", "bad_request")
        return int(value)

    @endpoint("score")
    async def score(request: Request, deadline: float) -> Response:
        explain = query_int(request, "explain", 0, MAX_EXPLAIN)
        raw = await read_message(request, deadline)
        result = await run_scoring(deadline, scoring._score, raw, explain)
        metrics.verdicts[result["label"]] += 1
        return JSONResponse(result, headers={BUNDLE_HEADER: result["bundle_id"]})

    @endpoint("filter")
    async def filter_(request: Request, deadline: float) -> Response:
        raw = await read_message(request, deadline)
        output, label, value, bundle_id = await run_scoring(deadline, scoring._filter, raw)
        metrics.verdicts[label] += 1
        headers = {LABEL_HEADER: label, SCORE_HEADER: f"{value:.6f}", BUNDLE_HEADER: bundle_id}
        return Response(output, media_type="message/rfc822", headers=headers)

    def authorize(request: Request) -> None:
        if settings.token is None:
            if settings.socket_is_credential:
                return
            raise Refused(403, "learning is off: start the daemon with --token-file, or on a --socket", "auth")
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), settings.token.encode()):
            raise Refused(401, "learning needs the daemon's token: Authorization: Bearer <token>", "auth", {"WWW-Authenticate": "Bearer"})

    def finished_late(what: str, task: asyncio.Task) -> None:
        """A change whose client was answered 503 before it was done: say in the log how it ended
        (the poller picks up a bundle it saved)."""
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            log("info", f"{what}_late", f"{what} saved after its client was answered: bundle {task.result()['bundle_id']}", bundle_id=task.result()["bundle_id"])
        else:
            log("warning", f"{what}_late", f"{what} whose client was answered failed, nothing saved: {one_line(exc)}")

    async def change(request: Request, deadline: float, what: str, label: str | None) -> Response:
        raw = await read_message(request, deadline)
        limit = settings.learn_timeout
        try:
            task = settings.learner.submit(what, raw, label)
        except scoring.Busy as exc:
            raise Refused(503, str(exc), "busy", {"Retry-After": "1"}) from None
        try:
            async with asyncio.timeout(limit):
                result = await asyncio.shield(task)  # the change goes on when its client is answered
        except TimeoutError:
            task.add_done_callback(lambda done: finished_late(what, done))
            raise Refused(
                503, f"the {what} was not saved within this daemon's limit of {limit:g} s (--learn-timeout): "
                f"it may still be applied; sending it again is safe", "timeout",
            ) from None
        except (DataError, UsageError) as exc:  # the message cannot be learned
            raise Refused(400, f"cannot {what} this message: {one_line(exc)}", what) from None
        except BundleError as exc:  # another writer holds the models directory, or replaced it meanwhile
            raise Refused(409, f"cannot {what} now: {one_line(exc)}", what) from None
        except Exception as exc:  # noqa: BLE001 -- anything else (a full disk): one line, nothing saved
            raise Refused(500, f"cannot {what}: {one_line(exc)}", what) from None
        if result["bundle_id"] != engine.current.bundle_id:
            await reload()  # answer once new requests are scored by the bundle that holds the change
        log("info", what, f"{what} {label or ''} -> bundle {result['bundle_id']}".replace("  ", " "), bundle_id=result["bundle_id"])
        return JSONResponse(result, headers={BUNDLE_HEADER: result["bundle_id"]})

    @endpoint("learn")
    async def learn(request: Request, deadline: float) -> Response:
        authorize(request)  # before anything else: no answer tells an outsider more than "no"
        label = request.query_params.get("label")
        if label not in LABELS:
            raise Refused(400, "learn needs ?label=spam or ?label=ham", "bad_request")
        return await change(request, deadline, "learn", label)

    @endpoint("forget")
    async def forget(request: Request, deadline: float) -> Response:
        authorize(request)
        return await change(request, deadline, "forget", None)

    @endpoint("healthz")
    async def healthz(request: Request, deadline: float) -> Response:
        gen = engine.current
        return JSONResponse(
            {"status": "ok", "bundle_id": gen.bundle_id, "threshold": gen.clf.threshold, "workers": engine.workers, "in_flight": engine.pending}
        )

    @endpoint("metrics")
    async def metrics_text(request: Request, deadline: float) -> Response:
        return PlainTextResponse(metrics.render(engine), media_type="text/plain; version=0.0.4")

    async def http_error(request: Request, exc: HTTPException) -> Response:
        metrics.error("other", f"http_{exc.status_code}")
        return JSONResponse({"error": f"{request.method} {request.url.path}: {exc.detail}"}, exc.status_code, headers=exc.headers)

    routes = [
        Route("/v1/score", score, methods=["POST"]),
        Route("/v1/filter", filter_, methods=["POST"]),
        Route("/v1/learn", learn, methods=["POST"]),
        Route("/v1/forget", forget, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics_text, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error})
