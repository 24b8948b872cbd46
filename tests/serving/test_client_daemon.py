"""The client against a real ``spamclf serve`` (a real process on an ephemeral port and on a real Unix
socket): what it writes and the status it exits with are those of local filter mode, byte for byte;
when the daemon goes away the mail still goes through."""

from __future__ import annotations

import http.client
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import SAMPLE
from spamclf.commands.filter import filter_message
from spamclf.commands.predict import Classifier
from test_client import CRLF, one_error_line, spamclf

MESSAGES = [*sorted((SAMPLE / "spam").iterdir())[:4], *sorted((SAMPLE / "ham").iterdir())[:4]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(connect, proc, deadline_s: float = 90) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode(errors="replace")
        try:
            conn = connect()
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
        finally:
            conn.close()
    raise AssertionError("the daemon did not answer /healthz")


def start(models: Path, *where: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "spamclf", "serve", "--models", str(models), "--workers", "1", *where],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def daemon(smoke_models):
    port = free_port()
    proc = start(smoke_models, "--listen", f"127.0.0.1:{port}")
    wait_healthy(lambda: http.client.HTTPConnection("127.0.0.1", port, timeout=5), proc)
    yield f"http://127.0.0.1:{port}"
    stop(proc)


@pytest.fixture(scope="module")
def clf(smoke_models) -> Classifier:
    return Classifier.load(smoke_models)


def local(clf, raw: bytes):
    result = filter_message(clf, raw)
    return result.exit_code, result.output


@pytest.mark.parametrize("path", MESSAGES, ids=lambda p: p.parent.name + "-" + p.name[:12])
def test_through_the_daemon_is_byte_for_byte_local_filter_mode(daemon, clf, path):
    raw = path.read_bytes()
    proc = spamclf("predict", "--server", daemon, "-", stdin=raw)
    assert (proc.returncode, proc.stdout) == local(clf, raw) and proc.stderr == b""


def test_odd_messages_too(daemon, clf):
    forged = b"X-Spam-Flag: NO\r\nSubject: free money\r\n\r\nbody\r\n"
    for raw in (CRLF, forged, b"no header block at all", b"Subject: cr\rFrom: a@b\r\rbody\r"):  # CRLF holds a NUL byte
        proc = spamclf("predict", "--server", daemon, "-", stdin=raw)
        assert (proc.returncode, proc.stdout) == local(clf, raw)


def test_a_body_the_daemon_refuses_passes_through(daemon):
    # The daemon takes no empty body (400): the client passes it on as it came, with exit 3.
    proc = spamclf("predict", "--server", daemon, "-", stdin=b"")
    assert proc.returncode == 3 and proc.stdout == b""
    one_error_line(proc.stderr, "answered 400")


def test_a_unix_socket(smoke_models, clf, tmp_path):
    path = tmp_path / "spamclf.sock"

    class UnixConnection(http.client.HTTPConnection):
        def connect(self):
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.connect(str(path))

    proc = start(smoke_models, "--socket", str(path))
    try:
        wait_healthy(lambda: UnixConnection("localhost", timeout=5), proc)
        raw = MESSAGES[0].read_bytes()
        client = spamclf("predict", "--server", f"unix:{path}", "-", stdin=raw)
        assert (client.returncode, client.stdout) == local(clf, raw)
    finally:
        stop(proc)
    client = spamclf("predict", "--server", f"unix:{path}", "-", stdin=raw)  # the daemon gone: mail still goes through
    assert client.returncode == 3 and client.stdout == raw


def test_a_daemon_that_stopped_passes_mail_through(smoke_models):
    port = free_port()
    proc = start(smoke_models, "--listen", f"127.0.0.1:{port}")
    wait_healthy(lambda: http.client.HTTPConnection("127.0.0.1", port, timeout=5), proc)
    raw = MESSAGES[0].read_bytes()
    assert spamclf("predict", "--server", f"http://127.0.0.1:{port}", "-", stdin=raw).returncode in (0, 1, 2)
    stop(proc)
    assert proc.returncode == 0
    after = spamclf("predict", "--server", f"http://127.0.0.1:{port}", "-", stdin=raw)
    assert after.returncode == 3 and after.stdout == raw
    one_error_line(after.stderr, "nothing listening")


def test_a_message_over_the_daemons_limit_passes_through(daemon):
    raw = b"Subject: big\n\n" + b"x" * 11_000_000  # over extract.max_bytes, the daemon's default body limit
    proc = spamclf("predict", "--server", daemon, "-", stdin=raw)
    assert proc.returncode == 3 and proc.stdout == raw
    one_error_line(proc.stderr, "answered 413")


# ---------------------------------------------------------------------------- mail pipelines through the daemon

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # where this environment's `spamclf` script lives


def test_the_postfix_script_goes_through_the_daemon(daemon, clf, tmp_path):
    fake = tmp_path / "sendmail"
    fake.write_text('#!/bin/sh\ncat > "$OUT"\n')
    fake.chmod(0o755)
    out = tmp_path / "sent"
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "SPAMCLF": str(BIN / "spamclf"), "SENDMAIL": str(fake), "OUT": str(out)}
    raw = MESSAGES[0].read_bytes()
    for server, expected in ((daemon, local(clf, raw)[1]), (f"http://127.0.0.1:{free_port()}", raw)):
        env["SPAMCLF_SERVER"] = server
        env["SPAMCLF_MODELS"] = str(tmp_path / "no-models")  # unused: the daemon holds the model
        proc = subprocess.run([str(ROOT / "configs" / "mail" / "spamclf-postfix-filter"), "--", "b@example.org"], input=raw, env=env, capture_output=True)
        assert proc.returncode == 0 and out.read_bytes() == expected  # the daemon away: delivered as it came


@pytest.mark.skipif(shutil.which("procmail") is None, reason="procmail is not installed")
def test_the_procmail_recipe_of_the_docs(daemon, clf, tmp_path):
    doc = (ROOT / "docs" / "serve-client.md").read_text()
    recipe = re.search(r"\*\*procmail\*\*.*?\n```\n(.*?)```", doc, re.S).group(1)
    rc = tmp_path / "procmailrc"
    env = {"HOME": str(tmp_path), "PATH": f"{BIN}:/usr/bin:/bin"}
    spam = next(raw for raw in (p.read_bytes() for p in MESSAGES) if local(clf, raw)[0] == 0)
    ham = next(raw for raw in (p.read_bytes() for p in MESSAGES) if local(clf, raw)[0] == 1)

    def write_rc(server: str) -> None:
        # procmail takes HOME from the password file and sets its own PATH: spell them out
        text = recipe.replace("$HOME", str(tmp_path)).replace("unix:/run/spamclf/spamclf.sock", server)
        rc.write_text(f"SHELL=/bin/sh\nPATH={BIN}:/usr/bin:/bin\nDEFAULT={tmp_path}/Maildir/\n" + text)

    (tmp_path / "Mail").mkdir()
    write_rc(daemon)
    for raw, folder in ((spam, tmp_path / "Mail" / "spam"), (ham, tmp_path / "Maildir")):
        proc = subprocess.run(["procmail", "-m", str(rc)], input=raw, env=env, capture_output=True, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        filtered = local(clf, raw)[1]
        if filtered.startswith(b"From "):  # procmail's Maildir file drops the mbox From line
            filtered = filtered.split(b"\n", 1)[1]
        assert [p.read_bytes() for p in (folder / "new").iterdir()] == [filtered]
    write_rc(f"http://127.0.0.1:{free_port()}")  # the daemon away: procmail defers, the MTA keeps the message and retries
    proc = subprocess.run(["procmail", "-m", str(rc)], input=ham, env=env, capture_output=True, cwd=tmp_path)
    assert proc.returncode == 75 and len(list((tmp_path / "Maildir" / "new").iterdir())) == 1


def test_learning_through_the_daemon(smoke_models, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(smoke_models, models)
    token = tmp_path / "token"
    token.write_text("a-long-random-token\n")
    token.chmod(0o600)
    port = free_port()
    proc = start(models, "--listen", f"127.0.0.1:{port}", "--token-file", str(token))
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(lambda: http.client.HTTPConnection("127.0.0.1", port, timeout=5), proc)
        # messages the bundle was not trained on ('train' keeps its examples): a sample ham with a new body line
        raw = MESSAGES[-1].read_bytes() + b"\nnot in the training data\n"
        learn = ("learn", "--server", url, "--token-file", str(token), "--timeout", "120")
        first = spamclf(*learn, "--spam", "-", stdin=raw, timeout=180)
        assert first.returncode == 0 and first.stderr == b"", first.stderr
        answer = json.loads(first.stdout)
        assert answer["learned"] == 1 and answer["bundle_id"] != Classifier.load(smoke_models).bundle.bundle_id
        again = spamclf(*learn, "--spam", "-", stdin=raw, timeout=180)
        assert again.returncode == 0 and json.loads(again.stdout)["unchanged"] == 1
        other = spamclf(*learn, "--ham", "-", stdin=MESSAGES[-2].read_bytes() + b"\nnot in the training data\n", timeout=180)  # so that one stays after the forget
        assert other.returncode == 0 and json.loads(other.stdout)["learned"] == 1
        forgot = spamclf(*learn, "--forget", "-", stdin=raw, timeout=180)
        assert forgot.returncode == 0 and json.loads(forgot.stdout)["forgotten"] == 1
        wrong = tmp_path / "wrong"
        wrong.write_text("guess")
        refused = spamclf("learn", "--server", url, "--token-file", str(wrong), "--spam", "-", stdin=raw)
        assert refused.returncode == 1 and refused.stdout == b""
        one_error_line(refused.stderr, "answered 401")
    finally:
        stop(proc)
    away = spamclf(*learn, "--spam", "-", stdin=raw)
    assert away.returncode == 3
    one_error_line(away.stderr, "nothing listening")
