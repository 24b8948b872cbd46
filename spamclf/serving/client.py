"""The daemon's client: filter mode and learning through a running ``spamclf serve``.

An MTA starts ``spamclf predict --server URL -`` once per message, so the process's start-up is
its cost. This module uses the standard library alone (http.client, socket, signal) and the two
base modules that do too (``errors``, ``printable``); ``spamclf/__main__.py`` hands it such command
lines (``fast_path``) before Click, NumPy or any model code is imported. The Click commands call
the same functions, so both ways behave alike.

The server is named by a URL: ``http://HOST:PORT`` (a path after it is kept as a prefix) or
``unix:PATH``, a daemon listening on a Unix socket (``spamclf serve --socket PATH``).

Never eat mail: whatever goes wrong in filter mode -- nothing listening, a refused connection, no
whole answer within ``--timeout`` seconds, an error answer, an answer that is not the message with
a verdict -- the message is written out unchanged, one ``Error: ...`` line goes to stderr, and the
exit status is 3, as in filter mode with a local model (``spamclf.commands.filter``).
"""

from __future__ import annotations

import sys

from ..errors import EXIT_BY_LABEL, EXIT_ERROR
from ..printable import printable

DEFAULT_TIMEOUT = 10.0  # seconds for a whole exchange with the daemon, connecting included
CONTENT_TYPE = "message/rfc822"  # what the client sends: one raw message
FILTER_PATH, LEARN_PATH, FORGET_PATH = "/v1/filter", "/v1/learn", "/v1/forget"
LABEL_HEADER = "X-Spamclf-Label"  # the daemon's verdict on /v1/filter
# learn's statuses: the CLI's own (0 ok, 1 bad input or a refusal, 3 unreadable input or no daemon)
LEARN_OK, LEARN_REFUSED, LEARN_UNREACHABLE = 0, 1, 3
# The answers that refuse this message or this client, for good (exit 1); any other (408 a slow upload,
# 409 the models directory busy, 5xx, none at all) is a daemon that may take it later (exit 3).
_REFUSALS = {400, 401, 403, 404, 405, 413, 415, 422}


class ServerError(Exception):
    """The daemon could not be used; ``str()`` is one line saying why. ``status`` is the HTTP status of
    an error answer (None when there was none); ``unanswered``: the request may have reached the daemon,
    which gave no whole answer (a timeout, a cut connection), so it may have been carried out."""

    def __init__(self, text: str, status: int | None = None, unanswered: bool = False):
        super().__init__(text)
        self.status = status
        self.unanswered = unanswered


# ---------------------------------------------------------------------------- URLs and connections


def parse_url(url: str) -> tuple[str, str, int | None, str]:
    """``http://HOST[:PORT][/PREFIX]`` -> ``("http", HOST, PORT, PREFIX)``; ``unix:PATH`` ->
    ``("unix", PATH, None, "")``. Raises ServerError for anything else."""
    if url.startswith("unix:"):
        path = url[len("unix:") :]
        if path.startswith("//"):  # unix:///run/x.sock, as some tools write it
            path = path[2:]
        if not path:
            raise ServerError(f"--server {url!r} names no socket: write unix:/PATH/TO.sock")
        return "unix", path, None, ""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ServerError(f"--server {url!r} is not a URL: {exc}") from None
    if parts.scheme != "http" or not parts.hostname or parts.query or parts.fragment:
        raise ServerError(f"--server {url!r} is not http://HOST:PORT or unix:PATH")
    return "http", parts.hostname, port or 80, parts.path.rstrip("/")


def _connection(url: str, timeout: float):
    """An http.client connection to ``url`` (not yet connected) and the path prefix for requests."""
    import http.client
    import socket

    kind, host, port, prefix = parse_url(url)
    if kind == "http":
        return http.client.HTTPConnection(host, port, timeout=timeout), prefix

    class UnixConnection(http.client.HTTPConnection):
        def connect(self):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(self.timeout)
                sock.connect(host)
            except BaseException:
                sock.close()
                raise
            self.sock = sock

    return UnixConnection("localhost", timeout=timeout), prefix


class _Deadline:
    """``seconds`` for the whole exchange, not for each read alone: a daemon that trickles its answer
    cannot hold a mail delivery longer. SIGALRM in the main thread; elsewhere the socket timeout alone."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.armed = False
        self.previous = None

    def __enter__(self):
        import signal

        def expired(signum, frame):
            raise TimeoutError("deadline")

        try:
            self.previous = signal.signal(signal.SIGALRM, expired)
        except ValueError:  # not the main thread
            return self
        self.armed = True
        signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc):
        if self.armed:
            import signal

            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous if self.previous is not None else signal.SIG_DFL)
        return False


def exchange(url: str, path: str, body: bytes, timeout: float = DEFAULT_TIMEOUT, headers: dict | None = None):
    """POST ``body`` to ``url`` + ``path``; return ``(headers, body)`` of a 200 answer, read whole.

    Raises ServerError, one line, for every other outcome: no daemon, a refusal, a timeout, a cut
    answer, an error status (with the daemon's own ``{"error": ...}`` message when it gave one).
    """
    import http.client

    sent = {"Content-Type": CONTENT_TYPE, **(headers or {})}
    conn, prefix = _connection(url, timeout)
    try:
        with _Deadline(timeout):
            try:
                conn.request("POST", prefix + path, body=body, headers=sent)
                answer = conn.getresponse()
                data = answer.read()
            finally:
                conn.close()
    except TimeoutError:
        raise ServerError(f"no answer from the daemon at {url} within {timeout:g} s", unanswered=True) from None
    except ConnectionRefusedError:
        raise ServerError(f"nothing listening at {url}: is spamclf serve running?") from None
    except FileNotFoundError:
        raise ServerError(f"no socket at {url}: is spamclf serve running?") from None
    except OSError as exc:
        raise ServerError(f"cannot talk to the daemon at {url}: {exc.strerror or exc}", unanswered=True) from None
    except http.client.HTTPException as exc:
        raise ServerError(f"a broken answer from the daemon at {url}: {exc.__class__.__name__} {exc}".strip(), unanswered=True) from None
    if answer.status != 200:
        raise ServerError(f"the daemon at {url} answered {answer.status}: {_error_text(answer, data)}", answer.status)
    return answer.headers, data


def _error_text(answer, data: bytes) -> str:
    """The daemon's ``{"error": ...}`` message, else the status's reason phrase."""
    import json

    try:
        text = json.loads(data)["error"]
    except (ValueError, TypeError, KeyError):
        text = None
    return " ".join(str(text).split()) if text else (answer.reason or "no reason given")


# ---------------------------------------------------------------------------- filter mode


def read_message(stdin, purpose: str) -> tuple[bytes, str | None]:
    """All of the message on ``stdin`` (binary; None when the process started with it closed), or
    what kept it from being read: ``(message, None)`` or ``(b"", error)``."""
    if stdin is None:
        return b"", f"no message to {purpose}: stdin is closed"
    try:
        return stdin.read(), None
    except OSError as exc:
        return b"", f"cannot read the message: {exc.strerror or exc}"


def filter_message(url: str, raw: bytes, timeout: float = DEFAULT_TIMEOUT) -> tuple[bytes, str]:
    """``raw`` filtered by the daemon: ``(message with headers added, label)``. Raises ServerError."""
    headers, body = exchange(url, FILTER_PATH, raw, timeout)
    label = headers.get(LABEL_HEADER)
    if label not in EXIT_BY_LABEL:
        raise ServerError(f"the daemon at {url} answered without a verdict ({LABEL_HEADER}: {label})")
    if len(body) < len(raw):  # headers are only ever added: a shorter answer has lost part of the mail
        raise ServerError(f"the daemon at {url} answered with {len(body)} bytes for a message of {len(raw)}")
    return body, label


def filter_stream(url: str, stdin, stdout, timeout: float = DEFAULT_TIMEOUT, exit_zero: bool = False) -> tuple[int, str | None]:
    """Filter mode through the daemon, end to end: read all of ``stdin`` (binary), have it filtered,
    write the result to ``stdout``. Returns ``(exit status, error or None)``; never raises.

    On any failure of the daemon the message is written out unchanged and the status is 3.
    A stream that is None (the process started with it closed) is an error, as in local filter mode.
    """
    if stdin is not None and stdout is None:
        return EXIT_ERROR, "cannot deliver the message: stdout is closed"
    raw, error = read_message(stdin, "filter")
    if error:
        return EXIT_ERROR, error
    try:
        output, label = filter_message(url, raw, timeout)
        code, error = (0 if exit_zero else EXIT_BY_LABEL[label]), None
    except ServerError as exc:
        output, code, error = raw, EXIT_ERROR, str(exc)
    try:
        stdout.write(output)
        stdout.flush()
    except OSError as exc:
        return EXIT_ERROR, f"cannot write the message: {exc.strerror or exc}"
    return code, error


# ---------------------------------------------------------------------------- learning


def read_token(token_file: str) -> str:
    """The bearer token in ``token_file`` (its first line, stripped). Raises ServerError.
    The daemon reads its own ``--token-file`` with this too (``server.read_token``)."""
    try:
        with open(token_file, encoding="utf-8") as f:
            token = f.readline().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ServerError(f"cannot read the token file {token_file}: {getattr(exc, 'strerror', None) or exc}") from None
    if not token:
        raise ServerError(f"the token file {token_file} is empty")
    return token


def learn_stream(
    url: str, label: str | None, stdin, stdout, token_file: str | None = None, timeout: float = DEFAULT_TIMEOUT
) -> tuple[int, str | None]:
    """``learn --server URL --spam|--ham -`` (``label`` "spam" or "ham") or ``--forget`` (``label`` None):
    post the message on ``stdin`` to the daemon and write its JSON answer to ``stdout``, one line.

    Returns ``(exit status, error or None)``, never raises: 0 learned; 1 a refusal (a bad token,
    a message the daemon rejects: ``_REFUSALS``) or an unusable token file; 3 no message (stdin
    closed or unreadable) or no daemon to take it now (nothing listening, a timeout, 408, 409, 5xx).
    A learn without a whole answer (a timeout, a cut connection) may still have been done, and its
    error says so; the daemon's own 503 past its ``--learn-timeout`` says so too. Learning again is
    safe (it is idempotent).
    """
    raw, error = read_message(stdin, "learn")
    if error:
        return LEARN_UNREACHABLE, error
    try:
        headers = {"Authorization": f"Bearer {read_token(token_file)}"} if token_file else {}
    except ServerError as exc:
        return LEARN_REFUSED, str(exc)
    path = f"{LEARN_PATH}?label={label}" if label else FORGET_PATH
    try:
        _, body = exchange(url, path, raw, timeout, headers)
    except ServerError as exc:
        if exc.unanswered:  # never an error for a change that may have been saved without saying so
            return LEARN_UNREACHABLE, f"{exc}; the {'learn' if label else 'forget'} may still have been done: sending it again is safe"
        return (LEARN_REFUSED if exc.status in _REFUSALS else LEARN_UNREACHABLE), str(exc)
    if stdout is not None:
        try:
            stdout.write(body.rstrip(b"\n") + b"\n")
            stdout.flush()
        except OSError:
            pass  # learned all the same; the answer had nowhere to go
    return LEARN_OK, None


# ---------------------------------------------------------------------------- the fast start


def fast_path(argv: list[str]) -> int | None:
    """Run ``argv`` (the words after ``spamclf``) here if it is one of the client's command lines,
    in the simple form an MTA writes, and return its exit status; None for every other command line.

    ``predict --server URL [--timeout S] [--exit-zero] -`` and
    ``learn --server URL (--spam | --ham | --forget) [--token-file FILE] [--timeout S] -``.

    Anything else -- another option, an option twice, a value that does not parse, ``--help`` --
    goes to the Click command, which has the same options, calls the same functions, and says
    what is wrong with the line.
    """
    if not argv or argv[0] not in ("predict", "learn"):
        return None
    if argv[0] == "predict":
        words = _words(argv[1:], flags={"--exit-zero"}, valued={"--server", "--timeout"})
    else:
        words = _words(argv[1:], flags={"--spam", "--ham", "--forget"}, valued={"--server", "--timeout", "--token-file"})
    if words is None or "--server" not in words:
        return None
    timeout = _seconds(words.get("--timeout", DEFAULT_TIMEOUT))
    if timeout is None:
        return None
    stdin, stdout = _binary(sys.stdin), _binary(sys.stdout)
    if argv[0] == "predict":
        code, error = filter_stream(words["--server"], stdin, stdout, timeout, exit_zero="--exit-zero" in words)
    else:
        labels = [w for w in ("--spam", "--ham", "--forget") if w in words]
        if len(labels) != 1:
            return None
        label = None if labels[0] == "--forget" else labels[0][2:]
        code, error = learn_stream(words["--server"], label, stdin, stdout, words.get("--token-file"), timeout)
    if error:
        print(f"Error: {printable(error)}", file=sys.stderr, flush=True)
    return code


def _words(args: list[str], flags: set[str], valued: set[str]) -> dict | None:
    """``args`` as ``{option: value or True}`` when they are these options, each at most once, and
    the input ``-`` exactly once; None otherwise."""
    found: dict = {}
    dash = 0
    rest = iter(args)
    for word in rest:
        name, eq, value = word.partition("=")
        if word == "-":
            dash += 1
            continue
        if name in valued:
            if not eq:
                value = next(rest, None)
                if value is None:
                    return None
        elif word not in flags:
            return None
        else:
            value = True
        if name in found:
            return None
        found[name] = value
    return found if dash == 1 else None


def _seconds(value) -> float | None:
    """A positive, finite number of seconds, or None."""
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if 0 < seconds < float("inf") else None


def _binary(stream):
    """The binary buffer of ``sys.stdin`` or ``sys.stdout``; None when the process started with it closed."""
    return getattr(stream, "buffer", None)

