"""The daemon benchmark (issue 20): ``spamclf serve`` and its client beside bogofilter and spamc -> spamd.

All in one run, on the same messages:

- latency, sequential, the same 100 messages: one ``POST /v1/filter`` round trip on a kept-alive
  connection (the daemon's own cost), and as fresh processes, interleaved message by message,
  ``spamclf predict --server URL -`` (the console script), ``bogofilter -p``, ``spamc`` -> ``spamd``
  and a bare ``python -c "import http.client"``;
- throughput: 16 concurrent clients posting every corpus message to /v1/filter, against batch
  ``spamclf predict --format csv`` over the same files;
- a reload under load: ``spamclf train --force`` of a second model into the served models directory
  while 16 clients post to /v1/score; every answer must be a 200 naming a bundle whose own score it
  carries;
- 1,000 hostile requests (the cases of tests/mail/test_hostile_inputs.py, and malformed HTTP)
  leave the daemon serving, its memory flat.

Usage::

    python -m benchmarks.serve [--corpus DIR] [--models DIR] [--workers N]

prints the table with ratios and PASS/MISS against each target, writes benchmarks/results/serve-<time>.json.
"""

from __future__ import annotations

import argparse
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .common import RESULTS, ROOT, SEED, bogofilter, corpus_dir, labelled_files, machine, materialize, measure, split, table, write_results
from .speed import BOGO_OK, _bogo_train

N_LATENCY = 100
CLIENTS = 16
N_HOSTILE = 1000
SPAMC_OK = (0,)


def log(msg: str) -> None:
    print(f"[bench-serve] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spamclf_script(work: Path) -> tuple[list[str], str]:
    """The ``spamclf`` console script as an MTA runs it. One installed before the fast start
    (``spamclf.__main__:main``) still calls ``spamclf.cli:entry_point``: then a script with the
    new target, as ``pip install`` writes it, stands in, and the note says so."""
    installed = Path(sys.executable).parent / "spamclf"
    if installed.is_file() and "spamclf.__main__" in installed.read_text(errors="replace"):
        return [str(installed)], str(installed)
    script = work / "spamclf"
    script.write_text(f"#!{sys.executable}\nimport sys\nfrom spamclf.__main__ import main\nif __name__ == '__main__':\n    sys.exit(main())\n")
    script.chmod(0o755)
    return [str(script)], f"{script} (the installed script predates the fast start: reinstall to use it)"


# ---------------------------------------------------------------------------- the daemons


class Daemon:
    """``spamclf serve`` on a free port, its stderr in a log file."""

    def __init__(self, models: Path, work: Path, workers: int):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(work / "serve.log", "ab")
        cmd = [sys.executable, "-m", "spamclf", "serve", "--models", str(models), "--listen", f"127.0.0.1:{self.port}", "--workers", str(workers)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log, cwd=ROOT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"spamclf serve exited {self.proc.returncode}: see {self.log.name}")
            try:
                if self.get("/healthz")[0] == 200:
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("spamclf serve did not answer /healthz within 120 s")

    def get(self, path: str) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path)
            answer = conn.getresponse()
            return answer.status, answer.read()
        finally:
            conn.close()

    def tree(self) -> list[int]:
        """The daemon's pid, then every process under it (its scoring workers, the learner)."""
        pids = [self.proc.pid]
        parents = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    parents[int(entry)] = int(open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
        for pid in pids:  # grows while it is walked: breadth first
            pids.extend(child for child, parent in parents.items() if parent == pid)
        return pids

    def rss_mib(self) -> dict:
        """Resident memory of the daemon and of the processes under it, MiB."""
        sizes = []
        for pid in self.tree():
            try:
                sizes.append(next(int(line.split()[1]) for line in open(f"/proc/{pid}/status") if line.startswith("VmRSS:")) / 1024)
            except (OSError, StopIteration):
                pass
        return {"total": sum(sizes), "daemon": sizes[0] if sizes else 0.0, "workers": sizes[1:]}

    def cpu_s(self) -> dict:
        """CPU seconds so far of the daemon's own process and of the processes under it."""
        tick = os.sysconf("SC_CLK_TCK")
        used = []
        for pid in self.tree():
            try:
                fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
                used.append((int(fields[11]) + int(fields[12])) / tick)
            except (OSError, IndexError, ValueError):
                pass
        return {"daemon": used[0] if used else 0.0, "workers": sum(used[1:])}

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.log.close()
        return code


class Spamd:
    """SpamAssassin's spamd on a free port: local tests only (no network), no user config."""

    def __init__(self, work: Path):
        self.port = free_port()
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        cmd = ["spamd", "-L", "-x", "-i", "127.0.0.1", "-p", str(self.port), "-m", "2", "--min-spare=1", "--max-spare=2", "-s", "stderr", *user]
        self.log = open(work / "spamd.log", "ab")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if subprocess.run(["spamc", "-p", str(self.port), "-K"], capture_output=True).returncode == 0:
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"spamd exited {self.proc.returncode}: see {self.log.name}")
            time.sleep(0.5)
        raise RuntimeError("spamd did not answer within 120 s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


# ---------------------------------------------------------------------------- the measurements


def post(conn: http.client.HTTPConnection, path: str, body: bytes) -> tuple[int, dict, bytes]:
    conn.request("POST", path, body=body, headers={"Content-Type": "message/rfc822"})
    answer = conn.getresponse()
    return answer.status, dict(answer.headers), answer.read()


def round_trips(daemon: Daemon, messages: list[bytes], rounds: int = 5) -> dict:
    """Each message posted to /v1/filter on one kept-alive connection, ``rounds`` times after one warm-up pass."""
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=30)
    times = []
    for r in range(rounds + 1):
        for raw in messages:
            start = time.perf_counter()
            status, headers, _ = post(conn, "/v1/filter", raw)
            took = time.perf_counter() - start
            if status != 200:
                raise RuntimeError(f"/v1/filter answered {status}")
            if r:
                times.append(took)
    conn.close()
    return summary(times)


def summary(times: list[float]) -> dict:
    ms = np.asarray(times) * 1000
    return {
        "n": len(ms),
        "median_ms": float(np.median(ms)),
        "p99_ms": float(np.percentile(ms, 99)),
        "min_ms": float(ms.min()),
        "max_ms": float(ms.max()),
        "p25_ms": float(np.percentile(ms, 25)),
        "p75_ms": float(np.percentile(ms, 75)),
    }


def fresh_processes(files: list[Path], commands: dict, work: Path) -> dict:
    """Each command as a fresh process per message, interleaved message by message (the same
    conditions for every tool), its stdout to a file. Wall seconds from outside."""
    times: dict = {name: [] for name in commands}
    out = work / "fresh-out.eml"
    for path in files:
        for name, (cmd, ok) in commands.items():
            times[name].append(measure(cmd, stdin_path=path, stdout_path=out, ok=ok)["wall_s"])
    return {name: summary(t) for name, t in times.items()}


def concurrent(daemon: Daemon, bodies: list[bytes], path: str, clients: int = CLIENTS, keep=None) -> dict:
    """``bodies`` posted by ``clients`` threads, each on its own kept-alive connection, the next
    body to whichever is free. Returns wall seconds, messages/s, and the answers that were not 200."""
    lock = threading.Lock()
    order = iter(range(len(bodies)))
    failures: list = []
    answers: list = [None] * len(bodies)

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=60)
        while True:
            with lock:
                i = next(order, None)
            if i is None:
                break
            try:
                status, headers, body = post(conn, path, bodies[i])
            except (OSError, http.client.HTTPException) as exc:
                failures.append((i, repr(exc)))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=60)
                continue
            if status != 200:
                failures.append((i, status, body[:200].decode(errors="replace")))
            elif keep:
                answers[i] = keep(headers, body)
        conn.close()

    cpu_before, own_before = daemon.cpu_s(), time.process_time()
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for _ in range(clients):
            pool.submit(client)
    wall = time.perf_counter() - start
    cpu_after = daemon.cpu_s()
    cpu = {"clients": time.process_time() - own_before, **{k: cpu_after[k] - cpu_before[k] for k in cpu_after}}
    return {"wall_s": wall, "messages": len(bodies), "messages_per_s": len(bodies) / wall, "cpu_s": cpu, "failures": failures, "answers": answers}


def reload_under_load(daemon: Daemon, live: Path, bodies: list[bytes], train_cmd: list[str]) -> dict:
    """16 clients post ``bodies`` to /v1/score, over and over, while ``train_cmd`` replaces the bundle
    in ``live``; they go on until the daemon has answered from the new bundle for a while
    (``check_bundles`` then holds each answer against its bundle's own score)."""
    seen: list = []
    stop = threading.Event()
    failures: list = []

    def client(k):
        conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=60)
        i = k
        while not stop.is_set():
            try:
                status, _, body = post(conn, "/v1/score", bodies[i % len(bodies)])
            except (OSError, http.client.HTTPException) as exc:
                failures.append(repr(exc))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=60)
                continue
            if status != 200:
                failures.append((status, body[:200].decode(errors="replace")))
            else:
                answer = json.loads(body)
                seen.append((i % len(bodies), answer["bundle_id"], answer["score"]))
            i += CLIENTS
        conn.close()

    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    time.sleep(2)
    first = {b for _, b, _ in seen}
    log(f"  training the second bundle into {live} under load")
    started = time.perf_counter()
    measure(train_cmd)
    trained = time.perf_counter() - started
    deadline = time.monotonic() + 60
    old_ids = set(first)
    while time.monotonic() < deadline and not ({b for _, b, _ in seen[-200:]} - old_ids):
        time.sleep(0.5)
    time.sleep(2)  # answers from the new bundle for a while
    stop.set()
    for t in threads:
        t.join()
    ids = sorted({b for _, b, _ in seen})
    return {"answers": len(seen), "failures": failures, "bundle_ids": ids, "first_ids": sorted(first), "train_s": trained, "seen": seen}


def check_bundles(seen: list, references: dict) -> dict:
    """Whether each answer's score is its named bundle's score of that message (to 1e-5)."""
    wrong, unknown = 0, 0
    worst = 0.0
    counts: dict = {}
    for i, bundle, score in seen:
        counts[bundle] = counts.get(bundle, 0) + 1
        if bundle not in references:
            unknown += 1
            continue
        diff = abs(references[bundle][i] - score)
        worst = max(worst, diff)
        wrong += diff > 1e-5
    return {"per_bundle": counts, "mismatched": wrong, "unknown_bundle": unknown, "max_abs_difference": worst}


def scores_of(models: Path, bodies: list[bytes]) -> tuple[str, list[float]]:
    """The bundle's id and its score of each body, as the daemon computes it (the Python API)."""
    from spamclf.commands.predict import Classifier

    clf = Classifier.load(models)
    cap = clf.options.max_bytes
    return clf.bundle.bundle_id, [float(s) for s in clf.score_messages([b[:cap] for b in bodies])]


def hostile_bodies() -> list[tuple[str, bytes, str]]:
    """(name, request bytes sent raw on the socket, kind): the hostile messages as /v1/filter posts,
    and malformed HTTP."""
    sys.path.insert(0, str(ROOT / "tests" / "mail"))
    from test_hostile_inputs import HOSTILE

    def request(body: bytes, ctype: bytes = b"message/rfc822", length: int | None = None) -> bytes:
        n = len(body) if length is None else length
        return b"POST /v1/filter HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % (ctype, n) + body

    cases = [(name, request(raw), "message") for name, raw in sorted(HOSTILE.items())]
    cases += [
        ("over_the_size_limit", request(b"Subject: big\n\n" + b"x" * 11_000_000), "http"),
        ("wrong_content_type", request(b"Subject: x\n\nhi", b"image/png"), "http"),
        ("garbage_request_line", b"\x00\xff GARBAGE \r\n\r\n", "http"),
        ("bad_content_length", b"POST /v1/filter HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", "http"),
        ("body_shorter_than_said", request(b"Subject: x\n\nhi", length=100_000), "http"),
        ("header_flood", b"POST /v1/filter HTTP/1.1\r\n" + b"X-A: b\r\n" * 20_000 + b"\r\n", "http"),
        ("unknown_path", b"POST /v1/nothing HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", "http"),
    ]
    return cases


def send_raw(port: int, data: bytes, timeout: float = 30) -> int | None:
    """``data`` on a fresh connection; the status of the answer, None for none (the connection closed
    without one). The request asks the daemon to close the connection after its answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except OSError:
            pass  # the daemon closed on us mid-send (the size limit): read what it said
        got = b""
        try:
            while b"\r\n" not in got:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        except OSError:
            pass
    head = got.split(b"\r\n", 1)[0].split()
    return int(head[1]) if len(head) > 1 and head[1].isdigit() else None


def hostile(daemon: Daemon, probe: bytes, expected_score: float, n: int = N_HOSTILE) -> dict:
    """Every hostile case once (a warm-up: each worker's allocator reaches the size these take), then ``n``
    hostile requests, 4 at a time; RSS at the start, after the warm-up and at the end; the daemon
    still answers /healthz and scores ``probe`` right."""
    cases = hostile_bodies()
    statuses: dict = {}
    lock = threading.Lock()

    def one(k):
        name, data, _ = cases[k % len(cases)]
        try:
            status = send_raw(daemon.port, data)
        except OSError as exc:
            status = f"error {exc.__class__.__name__}"
        with lock:
            statuses.setdefault(name, {}).setdefault(str(status), 0)
            statuses[name][str(status)] += 1

    cold = daemon.rss_mib()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, range(len(cases))))
    statuses.clear()
    before = daemon.rss_mib()
    checkpoints = []  # RSS after each quarter: flat is a plateau, not growth with every request
    start = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        for quarter in range(4):
            list(pool.map(one, range(quarter * n // 4, (quarter + 1) * n // 4)))
            checkpoints.append(daemon.rss_mib())
    wall = time.perf_counter() - start
    after = checkpoints[-1]
    health = daemon.get("/healthz")[0]
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=30)
    status, _, body = post(conn, "/v1/score", probe)
    conn.close()
    score_ok = status == 200 and abs(json.loads(body)["score"] - expected_score) <= 1e-5
    return {
        "requests": n,
        "wall_s": wall,
        "rss_cold_mib": cold,
        "rss_before_mib": before,
        "rss_after_mib": after,
        "rss_checkpoints_mib": checkpoints,
        "healthz_after": health,
        "scores_right_after": score_ok,
        "statuses": statuses,
    }


# ---------------------------------------------------------------------------- the run


def run(corpus: Path, models: Path | None, workers: int) -> dict:
    work = RESULTS / "work-serve"
    work.mkdir(parents=True, exist_ok=True)
    paths, labels = labelled_files(corpus)
    train_idx, _ = split(labels)
    train_dir = materialize([paths[i] for i in train_idx], labels[train_idx], work / "train")
    doc: dict = {"machine": machine(), "corpus": str(corpus), "messages": len(paths), "workers": workers}

    if models is None:
        models = work / "models-a"
        log(f"training the served bundle on {len(train_idx)} messages (the 80% split)")
        measure([sys.executable, "-m", "spamclf", "train", "--data", str(train_dir), "--models", str(models), "--force", "-q"])
    live = work / "models-live"
    shutil.rmtree(live, ignore_errors=True)
    shutil.copytree(models, live)

    order = np.random.default_rng(SEED).permutation(len(paths))
    latency_files = [paths[i] for i in order[:N_LATENCY]]
    latency_bodies = [p.read_bytes() for p in latency_files]
    all_bodies = [p.read_bytes() for p in paths]
    bogo = bogofilter()
    script, doc["client_script"] = spamclf_script(work)

    daemon = Daemon(live, work, workers)
    spamd = None
    try:
        log(f"daemon at {daemon.url}; round trips on a kept-alive connection")
        doc["round_trip"] = round_trips(daemon, latency_bodies)

        commands = {"python -c 'import http.client'": ([sys.executable, "-c", "import http.client"], (0,))}
        commands["spamclf predict --server"] = ([*script, "predict", "--server", daemon.url, "-"], (0, 1, 2))
        if bogo:
            log("training bogofilter on the same split")
            measure(_bogo_train(train_dir, work / "bogo"))
            commands["bogofilter -p"] = (["bogofilter", "-d", str(work / "bogo"), "-p"], BOGO_OK)
        if shutil.which("spamd") and shutil.which("spamc"):
            log("starting spamd")
            spamd = Spamd(work)
            commands["spamc -> spamd"] = (["spamc", "-p", str(spamd.port)], SPAMC_OK)
        log(f"fresh processes, {N_LATENCY} messages, interleaved")
        fresh_processes(latency_files[:5], commands, work)  # warm-up: the page cache, spamd's children
        doc["fresh"] = fresh_processes(latency_files, commands, work)
        if spamd:
            spamd.stop()
            spamd = None

        log(f"throughput: {CLIENTS} clients, {len(all_bodies)} messages, against batch predict")
        runs = []
        for _ in range(3):
            result = concurrent(daemon, all_bodies, "/v1/filter")
            runs.append({k: v for k, v in result.items() if k != "answers"})
        doc["throughput"] = sorted(runs, key=lambda r: r["messages_per_s"])[1]
        doc["throughput"]["runs_messages_per_s"] = [round(r["messages_per_s"], 1) for r in runs]
        batch = []
        for _ in range(3):
            batch.append(measure([sys.executable, "-m", "spamclf", "predict", "--models", str(live), "--format", "csv", str(corpus)], stdout_path=work / "rows.csv"))
        batch.sort(key=lambda r: r["wall_s"])
        doc["batch"] = {**batch[1], "messages_per_s": len(paths) / batch[1]["wall_s"], "runs_wall_s": [round(r["wall_s"], 2) for r in batch]}

        log("reload under load")
        bodies = all_bodies[:500]
        id_a, scores_a = scores_of(live, bodies)
        train_b = [sys.executable, "-m", "spamclf", "train", "--data", str(train_dir), "--models", str(live), "--force", "-q", "--config", str(ROOT / "configs" / "smoke.yaml")]
        reload = reload_under_load(daemon, live, bodies, train_b)
        id_b, scores_b = scores_of(live, bodies)
        checked = check_bundles(reload.pop("seen"), {id_a: scores_a, id_b: scores_b})
        doc["reload"] = {**reload, **checked, "bundle_a": id_a, "bundle_b": id_b}

        log(f"{N_HOSTILE} hostile requests")
        probe = latency_bodies[0]
        doc["hostile"] = hostile(daemon, probe, scores_of(live, [probe])[1][0])
    finally:
        if spamd:
            spamd.stop()
        doc["serve_exit_on_sigterm"] = daemon.stop()
    doc["targets"] = targets(doc)
    return doc


def targets(doc: dict) -> list[dict]:
    """Issue 20's targets: each the measured value, its limit, and PASS or MISS."""
    out = []

    def add(name, measured, met):
        out.append({"target": name, "measured": measured, "met": bool(met)})

    rt, fresh = doc["round_trip"], doc["fresh"]
    bogo = fresh.get("bogofilter -p")
    if bogo:
        ratio = rt["median_ms"] / bogo["median_ms"]
        add("round trip median <= a bogofilter -p process", f"{rt['median_ms']:.2f} ms vs {bogo['median_ms']:.2f} ms ({ratio:.2f}x)", ratio <= 1)
    ratio = rt["p99_ms"] / rt["median_ms"]
    add("round trip p99 <= 5x its median", f"{rt['p99_ms']:.2f} ms ({ratio:.1f}x)", ratio <= 5)
    base, client = fresh["python -c 'import http.client'"], fresh["spamclf predict --server"]
    ratio = client["median_ms"] / base["median_ms"]
    add("client process median <= 2x bare python", f"{client['median_ms']:.1f} ms vs {base['median_ms']:.1f} ms ({ratio:.2f}x)", ratio <= 2)
    spamc = fresh.get("spamc -> spamd")
    if spamc:
        ratio = client["median_ms"] / spamc["median_ms"]
        add("client process median < spamc -> spamd", f"{ratio:.2f}x", ratio < 1)
    tp, batch = doc["throughput"], doc["batch"]
    ratio = tp["messages_per_s"] / batch["messages_per_s"]
    add(f"{CLIENTS} clients' msgs/s >= 0.8x batch predict", f"{tp['messages_per_s']:.0f} vs {batch['messages_per_s']:.0f} ({ratio:.2f}x)", ratio >= 0.8 and not tp["failures"])
    rl = doc["reload"]
    both = rl["bundle_a"] in rl["per_bundle"] and rl["bundle_b"] in rl["per_bundle"]
    add(
        "reload under load: no request lost, no bundle mixed",
        f"{rl['answers']} answers, {len(rl['failures'])} failed, {rl['mismatched']} mismatched, {rl['unknown_bundle']} unknown id, both ids seen: {both}",
        both and not rl["failures"] and not rl["mismatched"] and not rl["unknown_bundle"],
    )
    h = doc["hostile"]
    before, after = h["rss_before_mib"]["total"], h["rss_after_mib"]["total"]
    halfway = h["rss_checkpoints_mib"][1]["total"]
    flat = after - halfway <= 0.05 * halfway  # the second 500 requests grow it by 5% at most
    add(
        f"{h['requests']} hostile requests: still serving, memory flat",
        f"healthz {h['healthz_after']}, scores right: {h['scores_right_after']}, RSS {before:.0f} -> {halfway:.0f} (500) -> {after:.0f} MiB (1000)",
        h["healthz_after"] == 200 and h["scores_right_after"] and flat,
    )
    add("SIGTERM: exit 0", str(doc["serve_exit_on_sigterm"]), doc["serve_exit_on_sigterm"] == 0)
    return out


def render(doc: dict) -> str:
    rows = []
    rt = doc["round_trip"]
    rows.append(["POST /v1/filter, kept-alive connection", f"{rt['median_ms']:.2f}", f"{rt['p99_ms']:.2f}", f"{rt['p25_ms']:.2f}-{rt['p75_ms']:.2f}", rt["n"]])
    base = doc["fresh"]["python -c 'import http.client'"]["median_ms"]
    for name, s in doc["fresh"].items():
        rows.append([f"{name} (fresh process)", f"{s['median_ms']:.2f}", f"{s['p99_ms']:.2f}", f"{s['p25_ms']:.2f}-{s['p75_ms']:.2f}", s["n"]])
    out = [table(rows, ["latency per message, sequential", "median ms", "p99 ms", "p25-p75 ms", "n"])]
    out.append(f"\n(fresh processes relative to the bare Python process: " + ", ".join(f"{n} {s['median_ms'] / base:.2f}x" for n, s in doc["fresh"].items()) + ")")
    tp, batch = doc["throughput"], doc["batch"]
    cpu = tp["cpu_s"]
    out.append(
        f"\nthroughput, {doc['messages']} messages: {CLIENTS} clients {tp['messages_per_s']:.0f} msgs/s (runs {tp['runs_messages_per_s']}), "
        f"batch predict {batch['messages_per_s']:.0f} msgs/s (runs {batch['runs_wall_s']} s), daemon --workers {doc['workers']}"
    )
    out.append(
        f"CPU seconds of the median throughput run ({tp['wall_s']:.1f} s wall): the {CLIENTS} client threads {cpu['clients']:.1f}, "
        f"the daemon's process {cpu['daemon']:.1f}, its workers {cpu['workers']:.1f}; batch predict {batch['cpu_s']:.1f}"
    )
    rl, h = doc["reload"], doc["hostile"]
    out.append(f"reload: answers per bundle {rl['per_bundle']}, second bundle trained in {rl['train_s']:.1f} s under load")
    rss = " -> ".join(f"{r['total']:.0f} (daemon {r['daemon']:.0f}, workers {', '.join(f'{w:.0f}' for w in r['workers'])})" for r in (h["rss_cold_mib"], h["rss_before_mib"], h["rss_after_mib"]))
    out.append(f"hostile: {h['requests']} requests in {h['wall_s']:.1f} s; RSS MiB cold -> after one of each case -> after all: {rss}")
    out.append("RSS MiB after each 250 hostile requests: " + ", ".join(f"{r['total']:.0f}" for r in h["rss_checkpoints_mib"]))
    codes: dict = {}
    for name, seen in h["statuses"].items():
        for code, count in seen.items():
            codes.setdefault(code, []).append(name)
    out.append("statuses: " + "; ".join(f"{code}: {', '.join(sorted(names))}" for code, names in sorted(codes.items())) + "\n")
    out.append(table([[t["target"], t["measured"], "PASS" if t["met"] else "MISS"] for t in doc["targets"]], ["target", "measured", ""]))
    mc = doc["machine"]
    out.append(f"\nclient script: {doc['client_script']}")
    out.append(f"machine: {mc['cpu']}, {mc['cores']} cores, Python {mc['python']}, load average at start {mc['load_average_1min_at_start']}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", help="labelled corpus with spam/ and ham/ (default $SPAMCLF_CORPUS or data/spamassassin)")
    ap.add_argument("--models", help="serve this bundle (default: train one on the corpus's 80%% split)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="spamclf serve --workers (default: one per CPU)")
    args = ap.parse_args(argv)
    doc = run(corpus_dir(args.corpus), Path(args.models) if args.models else None, args.workers)
    print(render(doc))
    print(f"\nresults: {write_results('serve', doc)}")


if __name__ == "__main__":
    main()
