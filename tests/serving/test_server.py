"""``spamclf serve`` as a mail server meets it: real daemons in subprocesses, on ephemeral ports and Unix
sockets, spoken to with http.client; a real Keras bundle (the session's smoke model) scores."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import SAMPLE
from mail.test_hostile_inputs import HOSTILE
from serving.daemons import SLOW_MESSAGE, Daemon, copy_bundle, slow_models, stop_after  # noqa: F401 -- fixtures


MESSAGES = sorted(p for p in SAMPLE.rglob("*") if p.is_file())[:12]


@pytest.fixture(scope="module")
def daemon(smoke_models):
    d = Daemon(smoke_models, "--workers", "2")
    yield d
    assert d.stop() == 0
    # Whatever the tests sent, the log is one JSON object a line, never a traceback.
    assert d.lines and all(isinstance(json.loads(line), dict) for line in d.lines)
    assert not [line for line in d.lines if "Traceback" in line]


@pytest.fixture(scope="module")
def local(smoke_models):
    import spamclf

    return spamclf.load(smoke_models)


# --- the endpoints ------------------------------------------------------------------------------


def test_score_answers_what_the_bundle_says(daemon, local):
    for path in MESSAGES[:6]:
        raw = path.read_bytes()
        status, body = daemon.json("POST", "/v1/score", raw)
        assert status == 200
        assert set(body) == {"score", "label", "threshold", "bundle_id"}
        assert body["bundle_id"] == local.bundle.bundle_id
        assert body["threshold"] == pytest.approx(local.threshold)
        assert body["score"] == pytest.approx(float(local.score_messages([raw])[0]), abs=1e-6)
        assert body["label"] == local.label(body["score"])


def test_score_explains_on_request(daemon):
    status, body = daemon.json("POST", "/v1/score?explain=3", MESSAGES[0].read_bytes())
    assert status == 200
    assert set(body["explain"]) == {"spam", "ham"}
    assert 0 < len(body["explain"]["spam"]) + len(body["explain"]["ham"]) <= 6
    assert daemon.json("POST", "/v1/score?explain=lots", MESSAGES[0].read_bytes())[0] == 400


def test_filter_gives_filter_modes_bytes_and_the_verdict_in_headers(daemon, local):
    from spamclf.commands.filter import filter_message

    conn = daemon.connection()  # one kept-alive connection for every message, as a client would
    for path in MESSAGES:
        raw = path.read_bytes()
        status, headers, body = daemon.request("POST", "/v1/filter", raw, conn=conn)
        expected = filter_message(local, raw)
        assert status == 200
        assert body == expected.output
        assert headers["X-Spamclf-Label"] == expected.label
        assert float(headers["X-Spamclf-Score"]) == pytest.approx(expected.score, abs=1e-6)
        assert headers["X-Spamclf-Bundle"] == local.bundle.bundle_id
    conn.close()


def test_a_message_with_nul_bytes_is_filtered_as_filter_mode_filters_it(daemon, local):
    """A NUL byte (a UTF-16 body, a broken mailer, or a spammer's trick) must not get a message past the
    daemon: refused, it went through its client unfiltered."""
    from spamclf.commands.filter import filter_message

    spam = sorted((SAMPLE / "spam").iterdir())[0].read_bytes()
    cut = spam.index(b"\n\n") + 2
    for raw in (spam[:cut] + b"\x00" + spam[cut:], b"Subject: hi\nContent-Type: text/plain; charset=utf-16\n\n" + "caf\u00e9 offer".encode("utf-16")):
        status, headers, body = daemon.request("POST", "/v1/filter", raw)
        expected = filter_message(local, raw)
        assert status == 200 and body == expected.output
        assert headers["X-Spamclf-Label"] == expected.label


def test_healthz_and_metrics(daemon, local):
    status, body = daemon.json("GET", "/healthz")
    assert status == 200 and body["status"] == "ok" and body["bundle_id"] == local.bundle.bundle_id
    daemon.request("POST", "/v1/score", MESSAGES[0].read_bytes())
    daemon.request("POST", "/v1/score", b"")
    status, headers, text = daemon.request("GET", "/metrics")
    text = text.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert f'spamclf_bundle_info{{bundle_id="{local.bundle.bundle_id}"}} 1' in text
    assert 'spamclf_requests_total{endpoint="score",status="200"}' in text
    assert 'spamclf_errors_total{endpoint="score",kind="empty"}' in text
    assert 'spamclf_request_duration_seconds_bucket{endpoint="score",le="+Inf"}' in text
    assert "spamclf_verdicts_total{label=" in text
    for line in text.splitlines():  # every sample line is NAME{labels} VALUE
        if not line.startswith("#"):
            float(line.rsplit(" ", 1)[1])


# --- what a client may send wrong -----------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path, body, headers, status",
    [
        ("POST", "/v1/score", b"", {}, 400),
        ("POST", "/v1/filter", b"", {}, 400),
        ("POST", "/v1/score", b"a=b&c=d", {"Content-Type": "application/x-www-form-urlencoded"}, 415),
        ("POST", "/v1/filter", b'{"message": "hi"}', {"Content-Type": "application/json"}, 415),
        ("GET", "/v1/score", None, {}, 405),
        ("POST", "/v2/score", b"Subject: x\n\nhi", {}, 404),
        ("POST", "/v1/score?explain=1000", b"Subject: x\n\nhi", {}, 400),
    ],
)
def test_bad_requests_get_a_json_error(daemon, method, path, body, headers, status):
    got, answer = daemon.json(method, path, body, headers)
    assert got == status
    assert isinstance(answer["error"], str) and "\n" not in answer["error"] and "Traceback" not in answer["error"]


@pytest.mark.parametrize(
    "data",
    [
        b"NOT HTTP AT ALL\r\n\r\n",
        b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Length: banana\r\n\r\n",
        b"POST /v1/score HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\nxx\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(64)),  # a TLS hello
    ],
)
def test_malformed_http_gets_a_4xx_and_the_daemon_serves_on(daemon, data):
    host, port = daemon.url[len("http://") :].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 4"), answer[:200]
    assert b"Traceback" not in answer
    assert daemon.json("GET", "/healthz")[0] == 200
    assert "Invalid HTTP request" in daemon.wait_for("http")["message"]  # logged as one line


def test_hostile_bodies_leave_the_daemon_serving(daemon):
    conn = daemon.connection()
    for name, raw in sorted(HOSTILE.items()):
        status, answer = daemon.json("POST", "/v1/score", raw, conn=conn)
        assert status in (200, 400, 413), (name, status, answer)
        assert ("score" in answer) if status == 200 else ("error" in answer), name
    conn.close()
    assert daemon.proc.poll() is None
    assert daemon.json("GET", "/healthz")[0] == 200
    assert not [e for e in daemon.events if e.get("level") == "error"]


def test_over_the_body_limit_is_413(smoke_models, stop_after):
    d = Daemon(smoke_models, "--max-bytes", "1000")
    stop_after.append(d)
    assert d.json("POST", "/v1/score", b"Subject: x\n\n" + b"a" * 900)[0] == 200
    status, answer = d.json("POST", "/v1/score", b"Subject: x\n\n" + b"a" * 2000)  # told by Content-Length
    assert status == 413 and "1000" in answer["error"]
    conn = d.connection()  # no length told: counted as it streams in
    conn.request("POST", "/v1/filter", body=iter([b"Subject: x\n\n"] + [b"a" * 100] * 30), encode_chunked=True,
                 headers={"Content-Type": "message/rfc822", "Transfer-Encoding": "chunked"})
    answer = conn.getresponse()
    assert answer.status == 413 and "error" in json.loads(answer.read())
    assert d.json("GET", "/healthz")[0] == 200


# --- bounded work ---------------------------------------------------------------------------------


def test_time_limit_full_queue_and_slow_clients(slow_models, stop_after):
    d = Daemon(slow_models, "--workers", "1", "--queue", "0", "--timeout", "0.3")
    stop_after.append(d)
    small = MESSAGES[0].read_bytes()
    # A client that sends half its body and stalls gets 408 at the time limit, and holds no worker meanwhile.
    host, port = d.url[len("http://") :].rsplit(":", 1)
    stalled = socket.create_connection((host, int(port)), timeout=10)
    stalled.sendall(b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: message/rfc822\r\nContent-Length: 1000\r\n\r\nSubject: half")
    assert d.json("POST", "/v1/score", small)[0] == 200
    assert stalled.recv(65536).startswith(b"HTTP/1.1 408")
    stalled.close()
    # Nor can one that never finishes its headers (slowloris), or sends nothing: closed at the limit.
    for data in (b"", b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Ty"):
        started = time.monotonic()
        with socket.create_connection((host, int(port)), timeout=10) as trickle:
            trickle.sendall(data)
            assert trickle.recv(65536) == b""
        assert time.monotonic() - started < 5
    # A message that takes longer than the limit: 503 at the limit, though its worker runs on...
    started = time.monotonic()
    status, answer = d.json("POST", "/v1/score", SLOW_MESSAGE)
    assert status == 503 and "time limit" in answer["error"]
    assert time.monotonic() - started < 1.0
    # ... and while it does, the one worker is busy and no queue is allowed: 503 at once, never queued.
    status, headers, body = d.request("POST", "/v1/score", small)
    assert status == 503 and "busy" in json.loads(body)["error"] and headers["Retry-After"] == "1"
    # Once the worker is done, scoring goes on.
    deadline = time.monotonic() + 30
    while d.request("POST", "/v1/score", small)[0] != 200:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    metrics = d.request("GET", "/metrics")[2].decode()
    for kind in ("timeout", "busy", "slow_client"):
        assert f'kind="{kind}"' in metrics


# --- learning: the credential ---------------------------------------------------------------------


def test_learning_over_tcp_needs_a_token_file(daemon):
    for path in ("/v1/learn?label=spam", "/v1/forget"):
        status, answer = daemon.json("POST", path, MESSAGES[0].read_bytes())
        assert status == 403 and "--token-file" in answer["error"]


def test_learning_needs_the_token(smoke_models, tmp_path, stop_after):
    token = tmp_path / "token"
    token.write_text("s3cret-token\n")
    token.chmod(0o600)
    d = Daemon(smoke_models, "--token-file", token)
    stop_after.append(d)
    raw = MESSAGES[0].read_bytes()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret-token"}):
        status, got, body = d.request("POST", "/v1/learn?label=spam", raw, headers)
        assert status == 401 and got["WWW-Authenticate"] == "Bearer" and "token" in json.loads(body)["error"]
        assert d.request("POST", "/v1/forget", raw, headers)[0] == 401
    # With the token the request gets past the credential: a bad label is the next thing said.
    status, answer = d.json("POST", "/v1/learn?label=maybe", raw, {"Authorization": "Bearer s3cret-token"})
    assert status == 400 and "label" in answer["error"]


def test_unix_socket_its_permissions_are_the_credential(smoke_models, tmp_path, stop_after):
    path = tmp_path / "spamclf.sock"
    d = Daemon(smoke_models, "--socket", path)
    stop_after.append(d)
    assert stat.S_ISSOCK(path.stat().st_mode) and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert d.json("POST", "/v1/score", MESSAGES[0].read_bytes())[0] == 200
    status, headers, body = d.request("POST", "/v1/filter", MESSAGES[1].read_bytes())
    assert status == 200 and headers["X-Spamclf-Label"] in ("spam", "ham")
    status, answer = d.json("POST", "/v1/learn?label=maybe", MESSAGES[0].read_bytes())
    assert status == 400 and "label" in answer["error"]  # past the credential: no token asked for
    assert d.stop() == 0
    assert not path.exists()


# --- reload ---------------------------------------------------------------------------------------


def test_reload_under_load_loses_nothing_and_mixes_nothing(smoke_models, slow_models, tmp_path, stop_after):
    import spamclf

    served = tmp_path / "models"
    copy_bundle(smoke_models, served)
    a, b = spamclf.load(smoke_models), spamclf.load(slow_models)
    assert a.bundle.bundle_id != b.bundle.bundle_id
    raws = [p.read_bytes() for p in MESSAGES]
    expected = {clf.bundle.bundle_id: [float(s) for s in clf.score_messages(raws)] for clf in (a, b)}
    d = Daemon(served, "--workers", "2")
    stop_after.append(d)
    d_poll_interval = 2.0
    stop = threading.Event()

    def client(k: int) -> list:
        seen, conn = [], d.connection()
        i = k
        while not stop.is_set():
            status, answer = d.json("POST", "/v1/score", raws[i % len(raws)], conn=conn)
            seen.append((status, answer.get("bundle_id"), i % len(raws), answer.get("score")))
            i += 1
        conn.close()
        return seen

    host, port = d.url[len("http://") :].rsplit(":", 1)
    kept = socket.create_connection((host, int(port)), timeout=5)  # open while the new workers are forked
    kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    first = b""
    while not first.endswith(b"}"):  # the whole JSON answer, headers and body
        first += kept.recv(65536)
    assert first.startswith(b"HTTP/1.1 200")
    with ThreadPoolExecutor(6) as pool:
        clients = [pool.submit(client, k) for k in range(6)]
        time.sleep(0.5)
        copy_bundle(slow_models, served, force=True)  # what train --force does
        d.wait_for("reload", d_poll_interval * 5)
        time.sleep(0.5)
        stop.set()
        results = [row for c in clients for row in c.result()]
    assert all(status == 200 for status, *_ in results), [r for r in results if r[0] != 200][:3]
    ids = [bundle for _, bundle, _, _ in results]
    assert set(ids) == {a.bundle.bundle_id, b.bundle.bundle_id}
    for _, bundle, i, score in results:  # every score is exactly the one its named bundle gives
        assert score == pytest.approx(expected[bundle][i], abs=1e-6)
    assert d.json("GET", "/healthz")[1]["bundle_id"] == b.bundle.bundle_id
    # A connection the daemon closes is closed (no forked worker holds it open): the client sees the end.
    kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    answer = b""
    while chunk := kept.recv(65536):  # a timeout here: the connection never ends
        answer += chunk
    assert answer.startswith(b"HTTP/1.1 200")
    kept.close()

    # A tampered bundle is refused and logged; the daemon serves on with the last good one.
    weights = served / "weights.npz"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    refused = d.wait_for("reload_refused", d_poll_interval * 5)
    assert "weights.npz" in refused["message"] and b.bundle.bundle_id in refused["message"]
    status, answer = d.json("POST", "/v1/score", raws[0])
    assert status == 200 and answer["bundle_id"] == b.bundle.bundle_id
    assert answer["score"] == pytest.approx(expected[b.bundle.bundle_id][0], abs=1e-6)
    # A half-written one (no manifest) too.
    (served / "manifest.json").unlink()
    deadline = time.monotonic() + d_poll_interval * 5
    while len([e for e in d.events if e.get("event") == "reload_refused"]) < 2:
        assert time.monotonic() < deadline, d.lines
        time.sleep(0.1)
    assert d.json("POST", "/v1/score", raws[0])[1]["bundle_id"] == b.bundle.bundle_id
    assert 'spamclf_reloads_total{result="refused"} 2' in d.request("GET", "/metrics")[2].decode()


def test_a_dead_worker_is_replaced(smoke_models, stop_after):
    d = Daemon(smoke_models, "--workers", "1")
    stop_after.append(d)
    raw = MESSAGES[0].read_bytes()
    assert d.json("POST", "/v1/score", raw)[0] == 200
    (worker,) = [int(p) for p in Path(f"/proc/{d.pid}/task/{d.pid}/children").read_text().split()]
    os.kill(worker, signal.SIGKILL)  # the kernel's OOM killer, say
    statuses = [d.json("POST", "/v1/score", raw)[0] for _ in range(3)]
    assert statuses[-1] == 200 and set(statuses) <= {200, 500}
    assert d.wait_for("worker_died")
    assert worker not in [int(p) for p in Path(f"/proc/{d.pid}/task/{d.pid}/children").read_text().split()]
    assert d.json("GET", "/healthz")[1]["in_flight"] == 0  # the messages the dead worker had count no more


# --- shutdown -------------------------------------------------------------------------------------


def test_sigterm_drains_requests_in_flight_and_exits_0(slow_models, stop_after):
    d = Daemon(slow_models, "--workers", "1", "--timeout", "60")
    stop_after.append(d)
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(d.json, "POST", "/v1/score", SLOW_MESSAGE)
        deadline = time.monotonic() + 20
        while "spamclf_in_flight 1" not in d.request("GET", "/metrics")[2].decode():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        d.proc.send_signal(signal.SIGTERM)
        status, answer = slow.result(60)
    assert status == 200 and answer["label"] in ("spam", "ham")
    assert d.stop() == 0
    assert d.events[-1]["event"] == "stop"
    assert not [line for line in d.lines if "Traceback" in line]


def _proc_file(pid: int, name: str) -> str:
    """/proc/PID/NAME, or "" once the process is gone."""
    try:
        return Path(f"/proc/{pid}/{name}").read_text()
    except OSError:
        return ""


# --- durability of learning -----------------------------------------------------------------------


def test_learn_forget_and_sigkill_after_learn_keeps_the_update(smoke_models, tmp_path, stop_after):
    import spamclf

    served = tmp_path / "models"
    copy_bundle(smoke_models, served)
    token = tmp_path / "token"
    token.write_text("t0ken\n")
    token.chmod(0o600)
    d = Daemon(served, "--token-file", token)
    stop_after.append(d)
    auth = {"Authorization": "Bearer t0ken"}
    before = spamclf.load(served).bundle.bundle_id
    # Messages the bundle was not trained on (it keeps its training examples: those would be "unchanged").
    new = [b"Message-ID: <serve-%d@example.org>\nSubject: note %d\n\nlunch at noon, room %d, bring the slides\n" % (i, i, i) for i in range(4)]

    status, learned = d.json("POST", "/v1/learn?label=spam", new[0], auth)
    assert status == 200, learned
    assert learned["learned"] == 1 and learned["bundle_id"] != before
    # Answered once the daemon scores with the bundle that learned: no stale verdict after a 200.
    assert d.json("GET", "/healthz")[1]["bundle_id"] == learned["bundle_id"]
    assert d.json("POST", "/v1/score", new[0])[1]["bundle_id"] == learned["bundle_id"]
    status, again = d.json("POST", "/v1/learn?label=spam", new[0], auth)
    assert status == 200 and again["unchanged"] == 1 and again["bundle_id"] == learned["bundle_id"]
    status, moved = d.json("POST", "/v1/learn?label=ham", new[0], auth)
    assert status == 200 and moved["relabelled"] == 1 and moved["bundle_id"] != learned["bundle_id"]
    status, learned = d.json("POST", "/v1/learn?label=ham", new[1], auth)
    assert status == 200 and learned["learned"] == 1
    status, forgot = d.json("POST", "/v1/forget", new[1], auth)
    assert status == 200, forgot
    assert forgot["forgotten"] == 1 and forgot["bundle_id"] != learned["bundle_id"]
    status, unknown = d.json("POST", "/v1/forget", new[1], auth)
    assert status == 200 and unknown["unknown"] == 1 and unknown["bundle_id"] == forgot["bundle_id"]
    status, learned = d.json("POST", "/v1/learn?label=spam", new[2], auth)
    assert status == 200 and learned["learned"] == 1
    # Learning ran in the learner process: neither the daemon nor its scoring worker loaded TensorFlow.
    children = [int(p) for p in Path(f"/proc/{d.pid}/task/{d.pid}/children").read_text().split()]
    with_tf = {p for p in [d.pid, *children] if "tensorflow" in _proc_file(p, "maps")}
    assert d.pid not in with_tf and len(with_tf) == 1 and len(children) >= 2, (children, with_tf)

    # A learner that dies (out of memory, killed) is replaced by the next change.
    (dead,) = with_tf
    os.kill(dead, signal.SIGKILL)
    while "State:\tZ" not in (_proc_file(dead, "status") or "State:\tZ"):
        time.sleep(0.05)
    for _ in range(2):  # the first may meet the dead one (500), never a second
        status, learned = d.json("POST", "/v1/learn?label=spam", new[3], auth)
        if status == 200:
            break
    assert status == 200 and learned["learned"] == 1, learned
    children = [int(p) for p in Path(f"/proc/{d.pid}/task/{d.pid}/children").read_text().split()]

    d.stop(signal.SIGKILL)  # right after the 200: the update is on disk already
    deadline = time.monotonic() + 15
    while living := [p for p in children if _proc_file(p, "status") and "State:\tZ" not in _proc_file(p, "status")]:
        assert time.monotonic() < deadline, f"the daemon's children {living} outlived it"
        time.sleep(0.05)
    assert spamclf.load(served).bundle.bundle_id == learned["bundle_id"]
    d2 = Daemon(served)
    stop_after.append(d2)
    assert d2.json("GET", "/healthz")[1]["bundle_id"] == learned["bundle_id"]


# --- the learner's work -----------------------------------------------------------------------------


def _learning_daemon(models: Path, tmp_path: Path, stop_after, *options) -> tuple[Daemon, dict]:
    token = tmp_path / "token"
    token.write_text("t0ken\n")
    token.chmod(0o600)
    d = Daemon(models, "--token-file", token, *options)
    stop_after.append(d)
    return d, {"Authorization": "Bearer t0ken"}


def _new_message(i: int) -> bytes:
    """A message no sample bundle was trained on (it keeps its examples: those would be "unchanged")."""
    return b"Message-ID: <learner-%d@example.org>\nSubject: minutes %d\n\nthe budget review moved to room %d\n" % (i, i, i)


def _read_bytes(pid: int) -> int:
    """Bytes the process has read so far, files and sockets (``rchar`` of /proc/PID/io, all its threads)."""
    return int(next(line for line in _proc_file(pid, "io").splitlines() if line.startswith("rchar:")).split()[1])


def test_the_learner_keeps_its_bundle_and_loads_one_another_process_installed(smoke_models, tmp_path, stop_after):
    import spamclf

    served = tmp_path / "models"
    copy_bundle(smoke_models, served)
    original = spamclf.load(served).bundle.bundle_id
    d, auth = _learning_daemon(served, tmp_path, stop_after)

    def loads() -> list[str]:
        return [e["bundle_id"] for e in d.events if e.get("event") == "learner_load"]

    ids = []
    for path, raw in [("/v1/learn?label=spam", _new_message(0)), ("/v1/learn?label=ham", _new_message(1)), ("/v1/forget", _new_message(1))]:
        status, answer = d.json("POST", path, raw, auth)
        assert status == 200, answer
        ids.append(answer["bundle_id"])
    assert len(set(ids)) == 3 and original not in ids  # three changes, three bundles saved
    assert loads() == [original]  # read from disk once; the next changes built on what the learner held

    copy_bundle(smoke_models, served, force=True)  # another process installs a bundle meanwhile
    status, answer = d.json("POST", "/v1/learn?label=spam", _new_message(0), auth)
    assert status == 200 and answer["learned"] == 1, answer  # learned anew: the installed bundle never had it
    assert loads() == [original, original]
    assert spamclf.load(served).bundle.bundle_id == answer["bundle_id"] == d.json("GET", "/healthz")[1]["bundle_id"]


def test_a_change_that_changes_nothing_reloads_nothing(smoke_models, tmp_path, stop_after):
    served = tmp_path / "models"
    copy_bundle(smoke_models, served)
    size = sum(f.stat().st_size for f in served.iterdir())
    d, auth = _learning_daemon(served, tmp_path, stop_after)
    status, learned = d.json("POST", "/v1/learn?label=spam", _new_message(0), auth)
    assert status == 200 and learned["learned"] == 1, learned
    # A change saved: the daemon reads and verifies the new bundle before it answers.
    before = _read_bytes(d.pid)
    status, moved = d.json("POST", "/v1/learn?label=ham", _new_message(0), auth)
    assert status == 200 and moved["relabelled"] == 1
    assert _read_bytes(d.pid) - before >= size * 0.9
    # Nothing changed: the bundle on disk is the one it serves, and it reads none of it again.
    for path, raw, said in [("/v1/learn?label=ham", _new_message(0), "unchanged"), ("/v1/forget", _new_message(9), "unknown")]:
        before = _read_bytes(d.pid)
        status, answer = d.json("POST", path, raw, auth)
        assert status == 200 and answer[said] == 1 and answer["bundle_id"] == moved["bundle_id"], answer
        assert _read_bytes(d.pid) - before < size / 10, (path, _read_bytes(d.pid) - before, size)
    assert d.json("GET", "/healthz")[1]["bundle_id"] == moved["bundle_id"]


def test_a_learn_past_the_limit_is_503_saying_it_may_still_be_applied(smoke_models, tmp_path, stop_after):
    import spamclf
    from spamclf.model.online import models_lock

    served = tmp_path / "models"
    copy_bundle(smoke_models, served)
    d, auth = _learning_daemon(served, tmp_path, stop_after, "--learn-timeout", "2")
    status, answer = d.json("POST", "/v1/learn?label=spam", _new_message(0), auth)
    if status == 503:  # the learner's start (TensorFlow) alone can outlast 2 s on a busy machine
        d.wait_for("learn_late", 120)
    token = tmp_path / "token"

    def late() -> list[dict]:
        return [e for e in d.events if e.get("event") == "learn_late"]

    seen = len(late())

    with models_lock(served, 0):  # another writer holds the models directory: the learner waits for it
        on_disk = spamclf.load(served).bundle.bundle_id
        start = time.monotonic()
        conn = d.connection(timeout=15)
        status, answer = d.json("POST", "/v1/learn?label=spam", _new_message(1), auth, conn=conn)
        took = time.monotonic() - start
        conn.close()
        assert status == 503 and 1.9 <= took < 10, (status, answer, took)
        assert "limit of 2 s (--learn-timeout): it may still be applied; sending it again is safe" in answer["error"]
        # The client that gives up first says the same of its own timeout.
        proc = subprocess.run(
            [sys.executable, "-m", "spamclf", "learn", "--server", d.url, "--spam", "--token-file", str(token), "--timeout", "1", "-"],
            input=_new_message(2), capture_output=True, timeout=60,
        )
        assert proc.returncode == 3 and b"may still have been done" in proc.stderr, proc.stderr
        assert spamclf.load(served).bundle.bundle_id == on_disk  # nothing saved while the lock is held
    # Once the lock is free, the learner goes on: the change answered 503 is saved, and the log says so.
    end = time.monotonic() + 60
    while len(late()) <= seen:
        assert time.monotonic() < end, "\n".join(d.lines)
        time.sleep(0.1)
    assert "learn saved after its client was answered" in late()[seen]["message"], late()
    # Both changes are on disk (the learner takes changes in turn: these come after them).
    for i in (1, 2):
        status, answer = d.json("POST", "/v1/learn?label=spam", _new_message(i), auth)
        assert status == 200 and answer["unchanged"] == 1, answer


# --- what an admin may get wrong -------------------------------------------------------------------


def test_start_up_errors_are_one_line_with_an_exit_status(smoke_models, tmp_path):
    import subprocess
    import sys

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    not_a_socket = tmp_path / "file"
    not_a_socket.write_text("mine\n")
    cases = [
        (["--models", tmp_path / "none"], 3, "does not exist"),
        (["--models", smoke_models, "--token-file", tmp_path / "none"], 1, "token file"),
        (["--models", smoke_models, "--listen", f"127.0.0.1:{busy.getsockname()[1]}"], 1, "cannot listen"),
        (["--models", smoke_models, "--listen", "nonsense"], 1, "HOST:PORT"),
        (["--models", smoke_models, "--socket", not_a_socket], 1, "not a socket"),
        (["--models", smoke_models, "--listen", "127.0.0.1:0", "--socket", tmp_path / "s"], 2, "not both"),
    ]
    for args, code, text in cases:
        done = subprocess.run([sys.executable, "-m", "spamclf", "serve", *map(str, args)], capture_output=True, text=True, timeout=60)
        assert done.returncode == code, (args, done.stderr)
        assert text in done.stderr and "Traceback" not in done.stderr, done.stderr
    busy.close()
    assert not_a_socket.read_text() == "mine\n"


def test_serve_without_the_serve_extra_is_one_line(smoke_models):
    # Starlette and uvicorn are the 'serve' extra: without them, serve says so in one line.
    code = (
        "import sys\nsys.modules['uvicorn'] = None  # as if not installed\n"
        "from spamclf.cli import main\n"
        f"main(['serve', '--models', {str(smoke_models)!r}, '--listen', '127.0.0.1:0'])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == ["Error: spamclf serve runs on Starlette and uvicorn, which are not installed: pip install 'spamclf[serve]'"]
