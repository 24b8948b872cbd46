"""``spamclf serve``: the daemon's start, its socket, its logs and its shutdown (uvicorn runs the HTTP).

``serve(ServeOptions(...))`` loads and verifies the bundle, forks the scoring workers, binds the
socket and serves until SIGTERM or SIGINT; then it stops taking connections, lets the requests in
flight finish (up to the time limit), stops the workers and returns: exit status 0.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import SpamclfError
from .client import ServerError, read_token as read_token_file

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7830  # spamd's 783, and a 0
MAX_CONNECTIONS = 512  # open connections at most; uvicorn answers 503 past it
KEEP_ALIVE = 5.0  # seconds an idle kept-alive connection stays open
LOCK_TIMEOUT = 30.0  # seconds a learn waits for another writer of the models directory
LOG_FORMATS = ("text", "json")


@dataclass
class ServeOptions:
    models_dir: str
    listen: str | None = None  # HOST:PORT; None: DEFAULT_HOST:DEFAULT_PORT unless ``socket``
    socket: str | None = None  # a Unix socket path, instead of TCP
    socket_mode: int = 0o600  # its permissions: who may connect (and, without a token, learn)
    workers: int = 1  # scoring processes
    queue: int = 64  # messages waiting for a worker at most; 503 past it
    timeout: float = 5.0  # seconds a request may take: reading its body and scoring it
    learn_timeout: float = 20.0  # seconds /v1/learn and /v1/forget wait for their change to be saved; 503 past it
    max_bytes: int | None = None  # the largest body; None: the bundle's extract.max_bytes
    token_file: str | None = None
    log_format: str = "text"
    poll: float = 2.0  # seconds between looks at the models directory for a new bundle


class Log:
    """One line per event on stderr: ``TIME LEVEL EVENT: message`` or, as JSON, one object a line."""

    def __init__(self, fmt: str = "text", stream=None) -> None:
        self.json = fmt == "json"
        self.stream = stream or sys.stderr

    def __call__(self, level: str, event: str, message: str, **fields) -> None:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if self.json:
            line = json.dumps({"time": now, "level": level, "event": event, "message": message, **fields}, ensure_ascii=False)
        else:
            line = f"{now} {level} {event}: " + " ".join(message.split())
        try:
            self.stream.write(line + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass  # stderr gone: the daemon keeps serving


def _route_uvicorn_logs(log: Log) -> None:
    """uvicorn's own warnings and errors (a malformed request, a protocol error) as our one-line
    events, a traceback shortened to its last line."""
    import logging

    class Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            text = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                exc = record.exc_info[1]
                text += f": {exc.__class__.__name__}: {' '.join(str(exc).split())}"
            log(record.levelname.lower(), "http", text)

    uvicorn_log = logging.getLogger("uvicorn")
    uvicorn_log.handlers[:] = [Handler(logging.WARNING)]
    uvicorn_log.setLevel(logging.WARNING)
    uvicorn_log.propagate = False


def header_deadline_protocol(seconds: float):
    """uvicorn's h11 protocol, closing a connection whose request line and headers are not all in
    within ``seconds``: uvicorn has no such limit (its keep-alive timer stops at the first byte),
    so a client trickling headers (slowloris) would hold its connection for ever. Once the headers
    are in, the app's own time limit covers the body. Hooks uvicorn's H11Protocol (``cycle``,
    ``on_response_complete``, ``timeout_keep_alive_handler``, which closes the connection)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderDeadline(H11Protocol):
        _header_timer = None

        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(seconds, self.timeout_keep_alive_handler)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm()

        def handle_events(self) -> None:
            super().handle_events()
            if self.cycle is not None and not self.cycle.response_complete:
                self._disarm()  # a request is in: its headers arrived in time

        def on_response_complete(self) -> None:
            self._arm()  # the next request's headers get the same time (a pipelined one disarms it at once)
            super().on_response_complete()

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

    return HeaderDeadline


def read_token(path: str, log: Log) -> str:
    """The token in ``path`` (read as the client reads it), with a warning when others may read the file."""
    try:
        token = read_token_file(path)
    except ServerError as exc:
        raise SpamclfError(str(exc)) from None
    try:
        open_to_others = os.stat(path).st_mode & (stat.S_IRWXG | stat.S_IRWXO)
    except OSError:  # gone since it was read: the token is read, nothing to warn about
        open_to_others = 0
    if open_to_others:
        log("warning", "token_file", f"the token file {path} can be read by others than its owner: chmod 600 it")
    return token


def parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise SpamclfError(f"--listen {listen!r} is not HOST:PORT")
    return (host.strip("[]") or DEFAULT_HOST), int(port)


def bind(options: ServeOptions) -> tuple[socket.socket, str]:
    """The listening socket, and the URL a client reaches it at."""
    if options.socket:
        return _bind_unix(Path(options.socket), options.socket_mode), f"unix:{options.socket}"
    host, port = parse_listen(options.listen or f"{DEFAULT_HOST}:{DEFAULT_PORT}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, not 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say TCP, and
    # with Nagle on, an answer sent as headers then body waits for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(MAX_CONNECTIONS)
    except OSError as exc:
        sock.close()
        raise SpamclfError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    host, port = sock.getsockname()[:2]
    return sock, f"http://[{host}]:{port}" if family == socket.AF_INET6 else f"http://{host}:{port}"


def _bind_unix(path: Path, mode: int) -> socket.socket:
    if path.is_symlink() or path.exists():
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise SpamclfError(f"--socket {path} exists and is not a socket; refusing to replace it")
        probe = socket.socket(socket.AF_UNIX)
        try:
            probe.connect(str(path))
            raise SpamclfError(f"--socket {path}: another daemon is listening on it")
        except OSError:
            path.unlink()  # a socket nobody listens on: left by a daemon that was killed
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o777 & ~mode)  # created with its final permissions: never open to all for a moment
    try:
        sock.bind(str(path))
    except OSError as exc:
        sock.close()
        raise SpamclfError(f"cannot listen on {path}: {exc.strerror or exc}") from None
    finally:
        os.umask(old)
    os.chmod(path, mode)
    sock.listen(MAX_CONNECTIONS)
    return sock


def serve(options: ServeOptions) -> None:
    """Run the daemon until SIGTERM or SIGINT; return once it has drained. SpamclfError for a bad option,
    BundleError (exit 3) for a models directory that cannot be served."""
    import asyncio

    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError:
        raise SpamclfError("spamclf serve runs on Starlette and uvicorn, which are not installed: pip install 'spamclf[serve]'") from None

    from .app import Settings, create_app
    from .engine import Engine
    from .learner import Learner

    if options.log_format not in LOG_FORMATS:
        raise SpamclfError(f"--log-format {options.log_format!r}: use text or json")
    log = Log(options.log_format)
    token = read_token(options.token_file, log) if options.token_file else None
    engine = Engine(options.models_dir, options.workers, options.queue, log)
    try:
        sock, url = bind(options)
    except BaseException:
        engine.close()
        raise
    max_bytes = options.max_bytes or engine.current.clf.options.max_bytes
    learner = Learner(options.models_dir, LOCK_TIMEOUT, options.queue, log)
    settings = Settings(max_bytes, options.timeout, options.learn_timeout, options.poll, token, bool(options.socket), learner)
    _route_uvicorn_logs(log)
    config = uvicorn.Config(
        create_app(engine, settings, log),
        http=header_deadline_protocol(options.timeout),
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_keep_alive=KEEP_ALIVE,
        timeout_graceful_shutdown=max(options.timeout * 2, 5.0),
        limit_concurrency=MAX_CONNECTIONS,
        server_header=False,
    )
    server = uvicorn.Server(config)
    # uvicorn re-raises the signal that stopped it, under the handler there was before: a no-op one
    # makes a drained SIGTERM an exit with status 0, as a service manager expects.
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGTERM, signal.SIGINT)}
    learning = "on" if token or options.socket else "off"
    log(
        "info",
        "start",
        f"serving bundle {engine.current.bundle_id} from {options.models_dir} on {url}: {options.workers} workers, "
        f"{options.timeout:g} s limit, {max_bytes} bytes max, learning {learning}",
        url=url,
        bundle_id=engine.current.bundle_id,
        pid=os.getpid(),
    )
    try:
        asyncio.run(server.serve(sockets=[sock]))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
        if options.socket:
            try:
                os.unlink(options.socket)
            except OSError:
                pass
        engine.close()
        learner.close()
        log("info", "stop", "stopped")
