"""Real daemons for the serving tests (import the fixtures from here): ``spamclf serve`` in a subprocess, on an ephemeral TCP port or a
Unix socket, its JSON log lines collected as they come."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import SAMPLE, SMOKE

START_TIMEOUT = 60.0


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 30.0):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


class Daemon:
    """``spamclf serve --models MODELS ARGS...`` (``--listen 127.0.0.1:0`` unless ``--socket`` is given)."""

    def __init__(self, models, *args: str):
        args = [str(a) for a in args]
        cmd = [sys.executable, "-m", "spamclf", "serve", "--models", str(models), "--log-format", "json", *args]
        if "--socket" not in args and "--listen" not in args:
            cmd += ["--listen", "127.0.0.1:0"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        start = self.wait_for("start", START_TIMEOUT)
        self.url = start["url"]
        self.pid = self.proc.pid

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append(line.decode("utf-8", "replace").rstrip("\n"))

    @property
    def events(self) -> list[dict]:
        out = []
        for line in list(self.lines):
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"event": "not_json", "message": line})
        return out

    def wait_for(self, event: str, timeout: float = 30.0) -> dict:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for found in self.events:
                if found.get("event") == event:
                    return found
            if self.proc.poll() is not None and not self._reader.is_alive():
                raise AssertionError(f"daemon exited {self.proc.returncode} before {event!r}:\n" + "\n".join(self.lines))
            time.sleep(0.05)
        raise AssertionError(f"no {event!r} event within {timeout} s:\n" + "\n".join(self.lines))

    def connection(self, timeout: float = 30.0) -> http.client.HTTPConnection:
        if self.url.startswith("unix:"):
            return UnixConnection(self.url[len("unix:") :], timeout)
        host, port = self.url[len("http://") :].rsplit(":", 1)
        return http.client.HTTPConnection(host, int(port), timeout=timeout)

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None, conn=None):
        """(status, headers, body) of one request, on ``conn`` or a fresh connection."""
        own = conn is None
        conn = conn or self.connection()
        try:
            sent = {"Content-Type": "message/rfc822"} if body is not None else {}
            conn.request(method, path, body=body, headers={**sent, **(headers or {})})
            answer = conn.getresponse()
            return answer.status, answer.headers, answer.read()
        finally:
            if own:
                conn.close()

    def json(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None, conn=None):
        status, head, data = self.request(method, path, body, headers, conn)
        return status, json.loads(data)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        self._reader.join(5)
        return code


@pytest.fixture(scope="session")
def slow_models(tmp_path_factory) -> Path:
    """A real bundle whose extraction reads up to 10 MB of text and counts 1- to 3-word terms: a
    10 MB message takes it a second or more, long enough to fill the queue or outlast a time limit."""
    import spamclf

    out = tmp_path_factory.mktemp("slow") / "models"
    spamclf.train([str(SAMPLE)], out, config=SMOKE, overrides=["extract.max_chars=10000000", "features.ngram_max=3"], progress=False)
    return out


# About 9.6 MB of words: a second or more for slow_models, under the default 10 MB body limit.
SLOW_MESSAGE = b"Subject: slow\n\n" + b"word spam money " * 600_000


def copy_bundle(source: Path, target: Path, force: bool = False) -> None:
    """Install ``source``'s files at ``target`` the way ``train --force`` does: atomically (write_bundle)."""
    from spamclf.model.bundle import BUNDLE_FILES, write_bundle

    def fill(folder: Path) -> None:
        for name in BUNDLE_FILES:
            shutil.copyfile(source / name, folder / name)

    write_bundle(target, fill, force=force)


@pytest.fixture
def stop_after():
    """Daemons a test starts, stopped after it whatever happened."""
    started: list[Daemon] = []
    yield started
    for daemon in started:
        if daemon.proc.poll() is None:
            os.kill(daemon.proc.pid, signal.SIGKILL)
            daemon.proc.wait(10)
