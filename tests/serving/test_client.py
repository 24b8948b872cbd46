"""The daemon's client (``spamclf predict --server URL -``, ``spamclf learn --server URL ...``) in real
processes: it never eats mail when the daemon is down, slow or failing, it gives filter mode's exit
statuses, and its fast start loads neither Click nor NumPy nor any model code.

Faults come from real servers in this process: a port with nothing listening, a socket that accepts and
never answers, one that trickles, and http.server answering 500 or 503. The tests against the real
daemon are in test_client_daemon.py.
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import SAMPLE
from spamclf.cli import main
from spamclf.serving.client import DEFAULT_TIMEOUT, ServerError, fast_path, parse_url

RAW = sorted((SAMPLE / "spam").iterdir())[0].read_bytes()
CRLF = b"From: a@example.org\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\n\r\nbody\x00\xff\r\nno final line ending"


def spamclf(*args: str, stdin: bytes | None = RAW, timeout: float = 60) -> subprocess.CompletedProcess:
    """``spamclf ARGS`` as a fresh process, as an MTA starts it (``python -m spamclf`` runs the console
    script's function, ``spamclf.__main__.main``)."""
    return subprocess.run([sys.executable, "-m", "spamclf", *args], input=stdin, capture_output=True, timeout=timeout)


def one_error_line(stderr: bytes, said: str) -> None:
    text = stderr.decode()
    assert text.startswith("Error: ") and text.count("\n") == 1 and said in text, text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def silent_server():
    """A TCP socket that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


class Canned(http.server.BaseHTTPRequestHandler):
    """Answers every POST with the server's ``answer(body, handler) -> (status, headers, body)``."""

    def do_POST(self):  # noqa: N802 -- http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.seen.append((self.path, dict(self.headers), body))
        status, headers, out = self.server.answer(body, self)
        self.send_response(status)
        for name, value in {"Content-Length": str(len(out)), **headers}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


@pytest.fixture
def canned():
    """``start(answer)`` -> the URL of a real HTTP server answering with ``answer``; ``server.seen`` holds the requests."""
    servers = []

    def start(answer):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Canned)
        server.answer, server.seen = answer, []
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}", server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def error(status: int, text: str):
    return lambda body, handler: (status, {"Content-Type": "application/json"}, json.dumps({"error": text}).encode())


def verdict(label: str, added: bytes = b"X-Spam-Flag: YES\n"):
    """A daemon stand-in that adds a header line at the top and gives ``label``."""
    return lambda body, handler: (200, {"X-Spamclf-Label": label, "X-Spamclf-Bundle": "b1"}, added + body)


# ---------------------------------------------------------------------------- the daemon down, slow or failing


@pytest.mark.parametrize("raw", [RAW, CRLF, b""], ids=["sample-spam", "crlf-binary-no-final-eol", "empty"])
def test_nothing_listening_passes_the_message_through_byte_exact(raw):
    proc = spamclf("predict", "--server", f"http://127.0.0.1:{free_port()}", "-", stdin=raw)
    assert proc.returncode == 3 and proc.stdout == raw
    one_error_line(proc.stderr, "nothing listening at http://127.0.0.1:")


def test_no_socket_file_passes_the_message_through(tmp_path):
    proc = spamclf("predict", "--server", f"unix:{tmp_path / 'spamclf.sock'}", "-")
    assert proc.returncode == 3 and proc.stdout == RAW
    one_error_line(proc.stderr, "no socket at unix:")


def test_a_socket_file_nobody_listens_on_passes_the_message_through(tmp_path):
    path = tmp_path / "dead.sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))  # bound, then closed: the file stays, nothing listens
    proc = spamclf("predict", "--server", f"unix:{path}", "-")
    assert proc.returncode == 3 and proc.stdout == RAW
    one_error_line(proc.stderr, "nothing listening at unix:")


def test_a_daemon_that_never_answers_is_given_up_after_the_timeout(silent_server):
    start = time.monotonic()
    proc = spamclf("predict", "--server", silent_server, "--timeout", "0.5", "-")
    took = time.monotonic() - start
    assert proc.returncode == 3 and proc.stdout == RAW
    one_error_line(proc.stderr, "no answer from the daemon at http://127.0.0.1:")
    assert "within 0.5 s" in proc.stderr.decode() and took < 5


def test_the_timeout_is_for_the_whole_answer_not_each_read(canned):
    # A daemon that sends a byte every 0.1 s never lets a read wait long: a timeout per read alone would
    # hold the delivery for as long as the answer lasts (about 30 s here).
    def trickle(body, handler):
        handler.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 300\r\nX-Spamclf-Label: ham\r\n\r\n")
        for _ in range(300):
            handler.wfile.write(b"x")
            handler.wfile.flush()
            time.sleep(0.1)
        raise ConnectionAbortedError  # nothing more to send

    url, _ = canned(trickle)
    start = time.monotonic()
    proc = spamclf("predict", "--server", url, "--timeout", "1", "-")
    took = time.monotonic() - start
    assert proc.returncode == 3 and proc.stdout == RAW and took < 5, took
    one_error_line(proc.stderr, "within 1 s")


@pytest.mark.parametrize("status, text", [(500, "scoring failed: ValueError"), (503, "queue full"), (413, "message over 10000000 bytes")])
def test_an_error_answer_passes_the_message_through_with_the_daemons_reason(canned, status, text):
    url, _ = canned(error(status, text))
    proc = spamclf("predict", "--server", url, "-")
    assert proc.returncode == 3 and proc.stdout == RAW
    one_error_line(proc.stderr, f"answered {status}: {text}")


def test_an_error_answer_without_json_names_the_status(canned):
    url, _ = canned(lambda body, handler: (503, {}, b"<html>busy</html>"))
    proc = spamclf("predict", "--server", url, "-")
    assert proc.returncode == 3 and proc.stdout == RAW
    one_error_line(proc.stderr, "answered 503: Service Unavailable")


@pytest.mark.parametrize(
    "answer, said",
    [
        (lambda body, handler: (200, {}, body), "without a verdict"),
        (lambda body, handler: (200, {"X-Spamclf-Label": "maybe"}, body), "without a verdict"),
        (lambda body, handler: (200, {"X-Spamclf-Label": "spam"}, body[:-10]), "answered with"),
    ],
    ids=["no-label", "unknown-label", "cut-message"],
)
def test_an_answer_that_is_not_a_filtered_message_passes_the_original_through(canned, answer, said):
    url, _ = canned(answer)
    proc = spamclf("predict", "--server", url, "-")
    assert proc.returncode == 3 and proc.stdout == RAW
    one_error_line(proc.stderr, said)


def test_an_answer_cut_off_mid_body_passes_the_message_through(canned):
    def cut(body, handler):
        handler.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nX-Spamclf-Label: spam\r\n\r\npartial")
        handler.wfile.flush()
        handler.close_connection = True
        raise ConnectionAbortedError

    url, _ = canned(cut)
    proc = spamclf("predict", "--server", url, "-")
    assert proc.returncode == 3 and proc.stdout == RAW
    one_error_line(proc.stderr, "broken answer")


# ---------------------------------------------------------------------------- verdicts and what is sent


@pytest.mark.parametrize("label, code", [("spam", 0), ("ham", 1), ("unsure", 2)])
def test_the_verdict_is_the_exit_status_and_the_answer_is_written_as_it_came(canned, label, code):
    url, server = canned(verdict(label))
    proc = spamclf("predict", "--server", url, "-", stdin=CRLF)
    assert proc.returncode == code and proc.stdout == b"X-Spam-Flag: YES\n" + CRLF and proc.stderr == b""
    path, headers, body = server.seen[0]
    assert path == "/v1/filter" and body == CRLF and headers["Content-Type"] == "message/rfc822"
    assert spamclf("predict", "--server", url, "--exit-zero", "-").returncode == 0


def test_a_path_prefix_in_the_url_is_kept(canned):
    url, server = canned(verdict("ham"))
    assert spamclf("predict", "--server", url + "/spamclf/", "-").returncode == 1
    assert server.seen[0][0] == "/spamclf/v1/filter"


def test_a_unix_socket_url(tmp_path):
    path = tmp_path / "d.sock"

    class UnixServer(http.server.ThreadingHTTPServer):
        address_family = socket.AF_UNIX

        def server_bind(self):
            self.socket.bind(self.server_address)
            self.server_name, self.server_port = "localhost", 0

    server = UnixServer(str(path), Canned)
    server.answer, server.seen = verdict("spam"), []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for url in (f"unix:{path}", f"unix://{path}"):
            proc = spamclf("predict", "--server", url, "-")
            assert proc.returncode == 0 and proc.stdout == b"X-Spam-Flag: YES\n" + RAW, proc.stderr
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("url", ["https://127.0.0.1:1", "127.0.0.1:8025", "http://", "unix:", "http://host:99999"])
def test_a_url_that_is_not_one_passes_the_message_through(url):
    proc = spamclf("predict", "--server", url, "-")
    assert proc.returncode == 3 and proc.stdout == RAW
    one_error_line(proc.stderr, "--server")


def test_parse_url():
    assert parse_url("http://127.0.0.1:8025") == ("http", "127.0.0.1", 8025, "")
    assert parse_url("http://localhost/spamclf/") == ("http", "localhost", 80, "/spamclf")
    assert parse_url("http://[::1]:8025") == ("http", "::1", 8025, "")
    assert parse_url("unix:/run/spamclf.sock") == ("unix", "/run/spamclf.sock", None, "")
    assert parse_url("unix:relative.sock") == ("unix", "relative.sock", None, "")
    with pytest.raises(ServerError):
        parse_url("ftp://x")


# ---------------------------------------------------------------------------- closed stdin and stdout


def sh(redirect: str, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    words = " ".join(f"'{w}'" for w in [sys.executable, "-m", "spamclf", *args])
    return subprocess.run(["sh", "-c", f"exec {words} {redirect}"], input=stdin, capture_output=True, timeout=60)


def test_stdin_closed_is_one_error_line(canned):
    url, server = canned(verdict("ham"))
    proc = sh("<&-", "predict", "--server", url, "-")
    assert proc.returncode == 3 and proc.stdout == b"" and not server.seen
    one_error_line(proc.stderr, "no message to filter: stdin is closed")


def test_stdout_closed_is_one_error_line(canned):
    url, server = canned(verdict("ham"))
    proc = sh(">&-", "predict", "--server", url, "-", stdin=RAW)
    assert proc.returncode == 3 and not server.seen
    one_error_line(proc.stderr, "cannot deliver the message: stdout is closed")


# ---------------------------------------------------------------------------- the fast start and the Click command


def modules_after(*args: str, stdin: bytes = RAW) -> set[str]:
    """The modules a fresh ``spamclf ARGS`` process had loaded when it finished."""
    code = (
        "import sys, atexit\n"
        "out = sys.argv[1]\n"
        "atexit.register(lambda: open(out, 'w').write('\\n'.join(sys.modules)))\n"
        "sys.argv[1:] = sys.argv[2:]\n"
        "from spamclf.__main__ import main\n"
        "main()\n"
    )
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"modules-{os.getpid()}-{threading.get_ident()}"
    try:
        subprocess.run([sys.executable, "-c", code, str(out), *args], input=stdin, capture_output=True, timeout=60)
        return set(out.read_text().split("\n"))
    finally:
        out.unlink(missing_ok=True)


HEAVY = {"click", "numpy", "scipy", "yaml", "tensorflow", "keras", "spamclf.cli", "spamclf.commands", "spamclf.model", "spamclf.mail"}


def test_the_fast_start_loads_no_click_numpy_or_model_code(canned):
    url, _ = canned(verdict("spam"))
    for args in (["predict", "--server", url, "-"], ["predict", "--exit-zero", f"--server={url}", "--timeout", "3", "-"],
                 ["learn", "--server", url, "--spam", "-"]):
        loaded = modules_after(*args)
        assert "spamclf.serving.client" in loaded and "http.client" in loaded
        assert not HEAVY & loaded, sorted(HEAVY & loaded)
    # the slow way does load them: the check above can fail
    assert "click" in modules_after("predict", "--server", url, "--header-prefix", "X-Spam", "-")


def test_the_console_script_runs_the_fast_start():
    import tomllib

    scripts = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["spamclf"] == "spamclf.__main__:main"


@pytest.mark.parametrize(
    "argv",
    [
        ["predict", "--models", "m", "-"],
        ["predict", "--server", "u", "--models", "m", "-"],
        ["predict", "--server", "u", "--timeout", "abc", "-"],
        ["predict", "--server", "u", "--timeout", "0", "-"],
        ["predict", "--server", "u", "--timeout", "inf", "-"],
        ["predict", "--server", "u", "--server", "v", "-"],
        ["predict", "--server", "u"],
        ["predict", "--server", "u", "-", "-"],
        ["predict", "--server", "u", "msg.eml"],
        ["predict", "--server"],
        ["predict", "--server", "u", "--help", "-"],
        ["predict", "--server", "u", "--exit-zero=1", "-"],
        ["learn", "--server", "u", "-"],
        ["learn", "--server", "u", "--spam", "--ham", "-"],
        ["learn", "--models", "m", "--spam", "-"],
        ["evaluate", "--server", "u", "-"],
        [],
    ],
)
def test_every_other_command_line_goes_to_click(argv):
    assert fast_path(argv) is None


def test_a_wrong_server_command_line_is_clicks_usage_error_and_still_passes_mail(canned):
    url, server = canned(verdict("spam"))
    for args, said in [
        (["--server", url, "--timeout", "abc", "-"], "Invalid value for '--timeout'"),
        (["--server", url, "--models", "m", "-"], "not with --models"),
        (["--server", url, "--explain", "3", "-"], "not with --explain"),
    ]:
        proc = spamclf("predict", *args)
        assert proc.returncode == 3 and proc.stdout == RAW, (args, proc.stderr)
        one_error_line(proc.stderr, said)
    assert not server.seen
    for args in (["msg.eml"], ["--format", "csv", "-"]):  # not filter mode: a usage error, as without --server
        proc = spamclf("predict", "--server", url, *args)
        assert proc.returncode == 2 and b"Usage:" in proc.stderr and b"input '-' alone" in proc.stderr


def test_the_click_option_behaves_as_the_fast_start(canned):
    url, _ = canned(verdict("unsure"))
    result = CliRunner().invoke(main, ["predict", "--server", url, "-"], input=CRLF)
    assert result.exit_code == 2 and result.stdout_bytes == b"X-Spam-Flag: YES\n" + CRLF
    dead = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(main, ["predict", "--server", dead, "-"], input=CRLF)
    assert result.exit_code == 3 and result.stdout_bytes == CRLF and result.stderr.startswith("Error: nothing listening")


def test_predict_help_documents_server():
    result = CliRunner().invoke(main, ["predict", "--help"])
    assert "--server URL" in result.output and "--timeout S" in result.output and f"default: {DEFAULT_TIMEOUT}" in result.output


def test_without_server_models_is_still_required(sample):
    result = CliRunner().invoke(main, ["predict", str(sample)])
    assert result.exit_code == 2 and "Missing option '--models'" in result.stderr


# ---------------------------------------------------------------------------- learning through the daemon


def test_learn_posts_the_message_with_the_token_and_prints_the_answer(canned, tmp_path):
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    url, server = canned(lambda body, handler: (200, {"Content-Type": "application/json"}, b'{"learned": 1, "label": "spam"}'))
    proc = spamclf("learn", "--server", url, "--spam", "--token-file", str(token), "-", stdin=CRLF)
    assert proc.returncode == 0 and json.loads(proc.stdout) == {"learned": 1, "label": "spam"} and proc.stderr == b""
    path, headers, body = server.seen[0]
    assert path == "/v1/learn?label=spam" and headers["Authorization"] == "Bearer s3cret" and body == CRLF
    assert spamclf("learn", "--server", url, "--ham", "--token-file", str(token), "-").returncode == 0
    assert spamclf("learn", "--server", url, "--forget", "--token-file", str(token), "-").returncode == 0
    assert [seen[0] for seen in server.seen[1:]] == ["/v1/learn?label=ham", "/v1/forget"]


def test_learn_exit_statuses(canned, tmp_path):
    token = tmp_path / "token"
    token.write_text("wrong")
    refused, _ = canned(error(401, "a valid bearer token is needed"))
    proc = spamclf("learn", "--server", refused, "--spam", "--token-file", str(token), "-")
    assert proc.returncode == 1 and proc.stdout == b""
    one_error_line(proc.stderr, "answered 401: a valid bearer token is needed")
    proc = spamclf("learn", "--server", refused, "--spam", "--token-file", str(tmp_path / "none"), "-")
    assert proc.returncode == 1
    one_error_line(proc.stderr, "cannot read the token file")
    failing, _ = canned(error(503, "busy"))
    for url in (failing, f"http://127.0.0.1:{free_port()}"):
        proc = spamclf("learn", "--server", url, "--ham", "--token-file", str(token), "-")
        assert proc.returncode == 3 and proc.stdout == b""
    proc = sh("<&-", "learn", "--server", failing, "--ham", "-")
    assert proc.returncode == 3
    one_error_line(proc.stderr, "stdin is closed")


def test_a_learn_left_without_an_answer_says_it_may_have_been_done(silent_server, canned):
    # The daemon had the message and gave no answer: it may have saved the change, and the error says so.
    for label in ("--spam", "--forget"):
        proc = spamclf("learn", "--server", silent_server, label, "--timeout", "0.5", "-")
        assert proc.returncode == 3 and proc.stdout == b""
        one_error_line(proc.stderr, f"within 0.5 s; the {'learn' if label == '--spam' else 'forget'} may still have been done: sending it again is safe")
    # Nothing listening, or the daemon's own answer: it says what happened, nothing is added.
    busy, _ = canned(error(503, "busy: 2 changes to the model waiting; try again"))
    for url in (f"http://127.0.0.1:{free_port()}", busy):
        proc = spamclf("learn", "--server", url, "--spam", "-")
        assert proc.returncode == 3 and b"may still" not in proc.stderr


def test_the_click_learn_option_behaves_as_the_fast_start(canned, tmp_path):
    token = tmp_path / "token"
    token.write_text("s3cret")
    url, server = canned(lambda body, handler: (200, {}, b'{"learned": 1}'))
    for extra in ([], ["--json", "-q"]):  # options the fast start leaves to Click
        result = CliRunner().invoke(main, ["learn", "--server", url, "--ham", "--token-file", str(token), *extra, "-"], input=CRLF)
        assert result.exit_code == 0 and json.loads(result.stdout) == {"learned": 1}
    assert [seen[:1] + (seen[1]["Authorization"], seen[2]) for seen in server.seen] == [("/v1/learn?label=ham", "Bearer s3cret", CRLF)] * 2
    busy, _ = canned(error(409, "another process is changing the models directory"))
    result = CliRunner().invoke(main, ["learn", "--server", busy, "--spam", "-"], input=CRLF)
    assert result.exit_code == 3 and result.stderr.startswith("Error: the daemon at") and "answered 409" in result.stderr


@pytest.mark.parametrize(
    "args, said",
    [
        (["--server", "URL", "--spam", "--models", "m", "-"], "not with --models"),
        (["--server", "URL", "--spam", "--wait", "3", "-"], "not with --wait"),
        (["--server", "URL", "--spam", "msg.eml"], "input '-' alone"),
        (["--server", "URL", "-"], "give a label"),
        (["--models", "m", "--token-file", "t", "--spam", "-"], "--token-file is for --server"),
        (["--spam", "-"], "Missing option '--models'"),
    ],
)
def test_learn_command_lines_that_are_wrong(canned, args, said):
    url, server = canned(lambda body, handler: (200, {}, b"{}"))
    result = CliRunner().invoke(main, ["learn", *[url if a == "URL" else a for a in args]], input=RAW)
    assert result.exit_code == 2 and said in result.stderr and not server.seen
