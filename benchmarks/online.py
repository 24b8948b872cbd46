"""Online filtering as the TREC Spam Track defines it (issue 19): every filter on the same stream.

For each message of the stream the filter gives its score and verdict, then learns the message's
true label (immediate feedback, train on everything). Two starts: an empty filter, and a filter
trained on the first 10% of the stream (figures over the other 90%). The batch baseline trains on
the first 20% and scores the rest without learning. Two orders: chronological by the Date header,
and one seeded random order. Usage::

    python -m benchmarks.online [--corpus DIR] [--limit N] [--orders date,random] [--starts empty,first10,batch]
                                [--filters spamclf,bogofilter,spamprobe,spamprobe-all] [--cli-repeats 7]

prints one table per order and start on stdout (progress on stderr), writes
benchmarks/results/online-<time>.json (and online-latest.json).

The figures: (1-ROCA)% = 100 (1 - ROC AUC) of the scores given before each learn; lam%, TREC's
logistic average misclassification at the filter's own verdict; FPR and FNR at that verdict (an
Unsure verdict is not filed as spam: it counts as ham); milliseconds per message, score plus learn.
"""

from __future__ import annotations

import argparse
import datetime as dt
import email.parser
import email.utils
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .common import RESULTS, SEED, corpus_dir, labelled_files, machine, materialize, spamclf_cmd, table, write_results

ORDERS = ("date", "random")
STARTS = {"empty": 0.0, "first10": 0.1, "batch": 0.2}  # share of the stream learned before scoring
TIME_RATIO_LIMIT = 3.0  # the issue's target: spamclf's online time at most 3x bogofilter's


# -- the metrics ---------------------------------------------------------------------------------


def roc_auc(y, scores) -> float:
    """ROC AUC as the Mann-Whitney rank statistic: the chance that a random spam scores above a random
    ham, ties counted half (each score gets the average of the ranks it spans). NaN with one class."""
    y = np.asarray(y, dtype=bool)
    scores = np.asarray(scores, dtype=float)
    n_spam, n_ham = int(y.sum()), int((~y).sum())
    if not n_spam or not n_ham:
        return float("nan")
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    last = np.cumsum(counts)  # 1-based rank of each distinct score's last occurrence
    ranks = ((last - counts + 1 + last) / 2.0)[inverse]
    return float((ranks[y].sum() - n_spam * (n_spam + 1) / 2.0) / (n_spam * n_ham))


def _logit(p: float) -> float:
    return math.inf if p >= 1.0 else math.log(p / (1.0 - p))  # every message of a class wrong: p is 1


def lam(y, is_spam) -> float:
    """TREC's logistic average misclassification (a fraction; lam% is 100 times it).

    ``logit^-1((logit(hm) + logit(sm)) / 2)`` of the ham and spam misclassification rates, each
    taken as ``(errors + 0.5) / (messages + 0.5)`` as in the TREC/CEAS evaluation, so that a rate of
    zero still has a logit. It is the geometric mean of the two error odds, as a rate.
    """
    y = np.asarray(y, dtype=bool)
    is_spam = np.asarray(is_spam, dtype=bool)
    n_ham, n_spam = int((~y).sum()), int(y.sum())
    if not n_ham or not n_spam:
        return float("nan")
    hm = (int((is_spam & ~y).sum()) + 0.5) / (n_ham + 0.5)
    sm = (int((~is_spam & y).sum()) + 0.5) / (n_spam + 0.5)
    mean = (_logit(hm) + _logit(sm)) / 2.0
    return 1.0 if mean == math.inf else 1.0 / (1.0 + math.exp(-mean))


def figures(y, scores, verdicts: list[str], seconds: list[float]) -> dict:
    """The table's figures for one run: ``verdicts`` are ``spam``, ``ham`` or ``unsure``."""
    y = np.asarray(y, dtype=bool)
    is_spam = np.array([v == "spam" for v in verdicts], dtype=bool)
    auc = roc_auc(y, scores)
    n_ham, n_spam = int((~y).sum()), int(y.sum())
    return {
        "messages": len(y),
        "spam": n_spam,
        "roc_auc": auc,
        "one_minus_roca_pct": 100.0 * (1.0 - auc),
        "lam_pct": 100.0 * lam(y, is_spam),
        "lam_pct_at_half": 100.0 * lam(y, np.asarray(scores, dtype=float) >= 0.5),  # beside bogofilter's 0.99 cutoff
        "false_positives": int((is_spam & ~y).sum()),
        "false_negatives": int((~is_spam & y).sum()),
        "fpr": float((is_spam & ~y).sum() / n_ham) if n_ham else float("nan"),
        "fnr": float((~is_spam & y).sum() / n_spam) if n_spam else float("nan"),
        "unsure": sum(v == "unsure" for v in verdicts),
        "total_s": float(sum(seconds)),
        "ms_per_message": 1000.0 * float(sum(seconds)) / max(1, len(seconds)),
    }


# -- the stream ----------------------------------------------------------------------------------

_HEADERS = email.parser.BytesHeaderParser()
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def message_date(raw: bytes) -> dt.datetime | None:
    """The Date header as an aware datetime (no zone, or ``-0000``, is read as UTC), or None when it
    is missing, does not parse, or is before 1970 (``Thu, 22 Aug 0102``: a mailer's year-2000 bug)."""
    value = _HEADERS.parsebytes(raw).get("Date")
    if value is None:
        return None
    try:
        when = email.utils.parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when if when >= _EPOCH else None


def chronological(paths: list[Path]) -> tuple[list[int], dict]:
    """Indices of ``paths`` in order of their Date headers (ties by path), and counts of what was placed how.

    A message with no usable date takes the date of the message before it in its folder's file-name
    order (the corpus numbers its files in the order they were collected), or of the one after it when
    none comes before; a folder with no usable date at all goes last, by path.
    """
    dates = [message_date(p.read_bytes()) for p in paths]
    placed = list(dates)
    folders: dict[Path, list[int]] = {}
    for i in sorted(range(len(paths)), key=lambda i: str(paths[i])):
        folders.setdefault(paths[i].parent, []).append(i)
    for members in folders.values():
        for sweep in (members, members[::-1]):  # the one before, then for a folder's first ones the one after
            known = None
            for i in sweep:
                if placed[i] is None:
                    placed[i] = known
                else:
                    known = placed[i]
    never = dt.datetime.max.replace(tzinfo=dt.timezone.utc)
    order = sorted(range(len(paths)), key=lambda i: (placed[i] or never, str(paths[i])))
    years: dict[int, int] = {}
    for d in dates:
        if d is not None:
            years[d.year] = years.get(d.year, 0) + 1
    notes = {
        "undated_or_unparseable": sum(d is None for d in dates),
        "placed_last": sum(d is None for d in placed),
        "messages_per_year": dict(sorted(years.items())),  # forged or broken clocks show up here
    }
    return order, notes


def stream(paths: list[Path], labels: np.ndarray, order: str, seed: int = SEED) -> tuple[list[Path], np.ndarray, dict]:
    """The corpus as a stream: ``date`` (chronological) or ``random`` (a seeded permutation)."""
    if order == "date":
        idx, notes = chronological(paths)
    elif order == "random":
        idx, notes = list(np.random.default_rng(seed).permutation(len(paths))), {"seed": seed}
    else:
        raise ValueError(f"unknown order {order!r}")
    return [paths[i] for i in idx], np.asarray(labels)[idx], notes


# -- the filters ---------------------------------------------------------------------------------
#
# Each one: start(work, paths, labels) makes a fresh filter that has learned those messages (none for
# an empty start); score(path) -> (spamminess, "spam" | "ham" | "unsure"); learn(path, label); close().


def _run(argv: list, stdin_path: Path | None = None, ok: tuple = (0,)) -> subprocess.CompletedProcess:
    with open(stdin_path, "rb") if stdin_path else open(Path("/dev/null"), "rb") as stdin:
        proc = subprocess.run([str(a) for a in argv], stdin=stdin, capture_output=True)
    if proc.returncode not in ok:
        raise RuntimeError(f"{' '.join(map(str, argv))} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[-500:]}")
    return proc


class Bogofilter:
    """One ``bogofilter`` process per score (``-TT``: the spamicity; the exit status is its verdict,
    0 spam, 1 ham, 2 unsure) and per learn (``-s`` / ``-n``), on a fresh database directory."""

    name = "bogofilter"
    VERDICT = {0: "spam", 1: "ham", 2: "unsure"}

    def start(self, work: Path, paths: list[Path], labels: np.ndarray) -> None:
        self.db = work / self.name
        shutil.rmtree(self.db, ignore_errors=True)
        self.db.mkdir(parents=True)
        _run(["bogoutil", "-l", self.db / "wordlist.db"])  # an empty word list: scoring needs one to exist
        for flag, label in (("-s", 1), ("-n", 0)):
            listing = self.db.parent / f"{self.name}-{label}.txt"
            listing.write_text("".join(f"{p}\n" for p, y in zip(paths, labels) if y == label))
            _run(["bogofilter", "-d", self.db, flag, "-b"], listing)

    def score(self, path: Path) -> tuple[float, str]:
        proc = _run(["bogofilter", "-d", self.db, "-TT"], path, ok=(0, 1, 2))
        return float(proc.stdout.split()[-1]), self.VERDICT[proc.returncode]

    def learn(self, path: Path, label: int) -> None:
        _run(["bogofilter", "-d", self.db, "-s" if label else "-n"], path)

    def close(self) -> None:
        pass


class Spamprobe:
    """``spamprobe score`` then ``train-spam`` / ``train-good``, which update the database only for a
    message it got wrong or found hard to call; a start learns every message (``spam`` / ``good``).
    ``-M``: each file is one message (the corpus's files begin with an mbox ``From`` line)."""

    name = "spamprobe"
    LEARN = ("train-good", "train-spam")

    def start(self, work: Path, paths: list[Path], labels: np.ndarray) -> None:
        self.db = work / self.name
        shutil.rmtree(self.db, ignore_errors=True)
        self.db.parent.mkdir(parents=True, exist_ok=True)  # -c makes the last folder only
        _run(["spamprobe", "-c", "-d", self.db, "create-db"])
        for command, label in (("spam", 1), ("good", 0)):
            files = [p for p, y in zip(paths, labels) if y == label]
            for i in range(0, len(files), 500):  # within the command line's limit
                _run(["spamprobe", "-M", "-d", self.db, command, *files[i : i + 500]])

    def score(self, path: Path) -> tuple[float, str]:
        verdict, spamminess, *_ = _run(["spamprobe", "-M", "-d", self.db, "score", path]).stdout.split()
        return float(spamminess), "spam" if verdict == b"SPAM" else "ham"

    def learn(self, path: Path, label: int) -> None:
        _run(["spamprobe", "-M", "-d", self.db, self.LEARN[label], path])

    def close(self) -> None:
        pass


class SpamprobeAll(Spamprobe):
    """spamprobe learning every message (``spam`` / ``good``), as the protocol's train-on-everything."""

    name = "spamprobe-all"
    LEARN = ("good", "spam")


class Spamclf:
    """spamclf through its Python API, in this process: ``clf.score_messages`` then ``clf.learn``.
    A start with messages trains on them with ``spamclf.train`` (the default config), then loads that."""

    name = "spamclf"

    def start(self, work: Path, paths: list[Path], labels: np.ndarray) -> None:
        import spamclf

        self.models = work / self.name
        shutil.rmtree(self.models, ignore_errors=True)
        if len(paths):
            corpus = materialize(paths, np.asarray(labels), work / f"{self.name}-start")
            spamclf.train([str(corpus)], self.models, progress=False)
            shutil.rmtree(corpus)
        self.clf = spamclf.load(self.models, create=True)

    def score(self, path: Path) -> tuple[float, str]:
        score = float(self.clf.score_messages([path.read_bytes()])[0])
        return score, self.clf.label(score)

    def learn(self, path: Path, label: int) -> None:
        self.clf.learn([path.read_bytes()], ["spam" if label else "ham"])

    def close(self) -> None:
        self.clf.save()


FILTERS = {f.name: f for f in (Spamclf, Bogofilter, Spamprobe, SpamprobeAll)}
NEEDS = {"bogofilter": "bogofilter", "spamprobe": "spamprobe", "spamprobe-all": "spamprobe"}


def available(name: str) -> bool:
    return name not in NEEDS or shutil.which(NEEDS[name]) is not None


# -- the runs ------------------------------------------------------------------------------------


def _log(msg: str) -> None:
    print(f"[online] {msg}", file=sys.stderr, flush=True)


def run_all(flts: list, work: Path, paths: list[Path], labels: np.ndarray, start: str, tag: str) -> dict:
    """The filters over one stream from one start, taking turns message by message (so that a change in
    what else the machine does lands on all of them alike): the figures over the messages after the
    start, per filter name. A filter that fails is dropped with its error; the others go on."""
    n_start = int(len(paths) * STARTS[start])
    learning = start != "batch"
    runs: dict = {}
    for flt in flts:
        _log(f"{tag} {flt.name}: starting")
        t0 = time.perf_counter()
        try:
            flt.start(work, paths[:n_start], labels[:n_start])
        except Exception as exc:
            runs[flt.name] = {"error": _error(exc)}
            continue
        runs[flt.name] = {"flt": flt, "start_s": time.perf_counter() - t0, "scores": [], "verdicts": [], "seconds": []}
    live = [r for r in runs.values() if "flt" in r]
    rest = range(n_start, len(paths))
    for k, i in enumerate(rest, 1):
        for r in list(live):
            t0 = time.perf_counter()
            try:
                score, verdict = r["flt"].score(paths[i])
                if learning:
                    r["flt"].learn(paths[i], int(labels[i]))
            except Exception as exc:
                r["error"] = _error(exc)
                live.remove(r)
                continue
            r["seconds"].append(time.perf_counter() - t0)
            r["scores"].append(score)
            r["verdicts"].append(verdict)
        if k % 1000 == 0:
            _log(f"{tag}: {k}/{len(rest)}, ms/message " + ", ".join(f"{r['flt'].name} {1000 * sum(r['seconds']) / k:.1f}" for r in live))
    out = {}
    for name, r in runs.items():
        if "error" in r:
            _log(f"{tag} {name} failed: {r['error']}")
            out[name] = {"error": r["error"]}
            continue
        t0 = time.perf_counter()
        r["flt"].close()
        out[name] = figures(labels[n_start:], r["scores"], r["verdicts"], r["seconds"])
        out[name].update(start_messages=n_start, start_s=r["start_s"], close_s=time.perf_counter() - t0,
                         first_message_s=r["seconds"][0] if r["seconds"] else None)  # fmt: skip
        m = out[name]
        _log(f"{tag} {name}: (1-ROCA)% {m['one_minus_roca_pct']:.4f}, lam% {m['lam_pct']:.3f}, FPR {m['fpr']:.4f}, "
             f"FNR {m['fnr']:.4f}, {m['ms_per_message']:.2f} ms/message")  # fmt: skip
    return out


def _error(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:300]


def single_learn_cli(work: Path, paths: list[Path], labels: np.ndarray, repeats: int) -> dict:
    """One ``spamclf learn --spam MSG`` from the command line onto an existing bundle, beside
    ``sa-learn --dbpath DIR --spam MSG`` onto an initialised database, each repeat a message neither has
    learned, the two tools taking turns."""
    out: dict = {"repeats": repeats}
    n_start = max(20, int(len(paths) * STARTS["first10"]))
    start_paths, start_labels = paths[:n_start], labels[:n_start]
    timed = [p for p, y in zip(paths[n_start:], labels[n_start:]) if y][:repeats]
    commands: dict = {}
    help_run = subprocess.run(spamclf_cmd("learn", "--help"), capture_output=True)
    if help_run.returncode != 0:
        out["spamclf"] = {"pending": "spamclf has no learn command yet"}
    else:
        import spamclf

        models = work / "cli-spamclf"
        shutil.rmtree(models, ignore_errors=True)
        corpus = materialize(start_paths, start_labels, work / "cli-start")
        spamclf.train([str(corpus)], models, progress=False)
        shutil.rmtree(corpus)
        commands["spamclf"] = lambda p: spamclf_cmd("learn", "--models", str(models), "--spam", str(p))
    if shutil.which("sa-learn"):
        db = work / "cli-sa" / "bayes"
        shutil.rmtree(db.parent, ignore_errors=True)
        db.parent.mkdir(parents=True)
        for flag, label in (("--spam", 1), ("--ham", 0)):  # a steady-state database, as a user's would be
            _run(["sa-learn", "--dbpath", db, flag, *[p for p, y in zip(start_paths[:200], start_labels[:200]) if y == label]])
        commands["sa-learn"] = lambda p: ["sa-learn", "--dbpath", str(db), "--spam", str(p)]
    runs: dict = {tool: [] for tool in commands}
    for path in timed:
        for tool, command in commands.items():
            t0 = time.perf_counter()
            _run(command(path))
            runs[tool].append(time.perf_counter() - t0)
    for tool, walls in runs.items():
        out[tool] = {"median_s": statistics.median(walls), "min_s": min(walls), "max_s": max(walls), "runs_s": [round(w, 4) for w in walls]}
    return out


def run(corpus: Path, orders: list[str], starts: list[str], filters: list[str], limit: int | None, cli_repeats: int, work: Path) -> dict:
    paths, labels = labelled_files(corpus)
    doc: dict = {"machine": machine(), "corpus": str(corpus), "limit": limit, "streams": {}, "runs": {}}
    for name in ("bogofilter", "spamprobe", "sa-learn"):
        doc[f"{name}_version"] = _version(name)
    for order in orders:
        s_paths, s_labels, notes = stream(paths, labels, order)
        if limit:
            s_paths, s_labels = s_paths[:limit], s_labels[:limit]
        doc["streams"][order] = {**notes, "messages": len(s_paths), "spam": int(s_labels.sum())}
        _log(f"stream {order}: {len(s_paths)} messages ({int(s_labels.sum())} spam); {notes}")
        for start in starts:
            tag = f"{order}/{start}"
            doc["runs"][tag] = run_all([FILTERS[name]() for name in filters], work / order / start, s_paths, s_labels, start, tag)
    if cli_repeats:
        _log(f"single-message learn from the command line, {cli_repeats} repeats")
        s_paths, s_labels, _ = stream(paths, labels, orders[0] if orders else "date")
        doc["cli"] = single_learn_cli(work, s_paths, s_labels, cli_repeats)
    doc["targets"] = targets(doc)
    return doc


def _version(tool: str) -> str | None:
    if not shutil.which(tool):
        return None
    flag = {"spamprobe": "-V"}.get(tool, "--version")
    proc = subprocess.run([tool, flag], capture_output=True, text=True)
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    return lines[0] if lines else None


def targets(doc: dict) -> list[dict]:
    """Issue 19's targets per order and online start: spamclf's (1-ROCA)% and lam% below every peer's,
    its online time at most 3x bogofilter's."""
    out = []
    for tag, results in doc["runs"].items():
        ours = results.get("spamclf", {})
        if tag.endswith("/batch") or "error" in ours or not ours:
            continue
        peers = {n: r for n, r in results.items() if n != "spamclf" and "error" not in r}
        for key, label in (("one_minus_roca_pct", "(1-ROCA)%"), ("lam_pct", "lam%")):
            if peers:
                best = min(peers, key=lambda n: peers[n][key])
                out.append({"target": f"{tag}: spamclf's {label} below every peer's", "measured": f"{ours[key]:.4f} vs {best} {peers[best][key]:.4f}",
                            "met": all(ours[key] < r[key] for r in peers.values())})  # fmt: skip
        if "bogofilter" in peers:
            ratio = ours["total_s"] / peers["bogofilter"]["total_s"]
            out.append({"target": f"{tag}: online time <= {TIME_RATIO_LIMIT:g}x bogofilter", "measured": f"{ratio:.2f}x", "met": ratio <= TIME_RATIO_LIMIT})
    return out


def render(doc: dict) -> str:
    out = []
    for tag, results in doc["runs"].items():
        order, start = tag.split("/")
        info = doc["streams"][order]
        rows, errors = [], []
        bogo = results.get("bogofilter", {}).get("total_s")
        for name, r in results.items():
            if "error" in r:
                rows.append([name, "error", *[""] * 10])
                errors.append(f"{name}: {r['error']}")
                continue
            ratio = f"{r['total_s'] / bogo:.2f}" if bogo and start != "batch" else ""
            rows.append([
                name, f"{r['one_minus_roca_pct']:.4f}", f"{r['lam_pct']:.3f}", f"{r['lam_pct_at_half']:.3f}", f"{r['fpr']:.4f}", f"{r['fnr']:.4f}",
                f"{r['false_positives']}/{r['false_negatives']}", r["unsure"], f"{r['ms_per_message']:.2f}", f"{r['total_s']:.1f}", ratio,
                f"{r['start_s']:.1f}",
            ])  # fmt: skip
        what = {"empty": "online from an empty filter", "first10": "online after training on the first 10%",
                "batch": "batch baseline: trained on the first 20%, no learning"}[start]  # fmt: skip
        n = next((r["messages"] for r in results.values() if "messages" in r), 0)
        out.append(f"== {order} order ({info['messages']} messages), {what}; figures over {n} messages ==")
        out.append(table(rows, ["filter", "(1-ROCA)%", "lam%", "lam% @0.5", "FPR", "FNR", "FP/FN", "unsure", "ms/msg", "total s", "x bogofilter", "start s"]))
        out.extend(errors)
        out.append("")
    cli = doc.get("cli")
    if cli:
        out.append(f"== one message learned from the command line ({cli['repeats']} repeats, a new spam message each) ==")
        rows = []
        for tool in ("spamclf", "sa-learn"):
            r = cli.get(tool)
            if r is None:
                continue
            rows.append([tool, r["pending"], "", ""] if "pending" in r else [tool, f"{r['median_s']:.3f}", f"{r['min_s']:.3f}", f"{r['max_s']:.3f}"])
        out.append(table(rows, ["command", "median s", "min s", "max s"]))
        out.append("")
    for t in doc["targets"]:
        out.append(f"[{'met' if t['met'] else 'MISSED'}] {t['target']}: {t['measured']}")
    mc = doc["machine"]
    out.append(f"machine: {mc['cpu']}, {mc['cores']} cores, load {mc['load_average_1min_at_start']}; "
               f"{doc['bogofilter_version']}; {doc['spamprobe_version']}; {doc['sa-learn_version']}")  # fmt: skip
    for order, info in doc["streams"].items():
        if order == "date":
            out.append(f"date order: {info['undated_or_unparseable']} messages without a usable Date header placed beside the one before "
                       f"them in their folder ({info['placed_last']} placed last); messages per year of the Date header: "
                       + ", ".join(f"{y}: {n}" for y, n in info["messages_per_year"].items()))  # fmt: skip
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", help="labelled corpus with spam/ and ham/ (default $SPAMCLF_CORPUS or data/spamassassin)")
    ap.add_argument("--limit", type=int, help="only the first N messages of each stream (a quick run)")
    ap.add_argument("--orders", default=",".join(ORDERS), help="date (chronological by the Date header), random (seeded)")
    ap.add_argument("--starts", default=",".join(STARTS), help="empty, first10 (trained on the first 10%%), batch (first 20%%, no learning)")
    ap.add_argument("--filters", default=",".join(FILTERS), help=f"of {', '.join(FILTERS)} (peers not installed are left out)")
    ap.add_argument("--cli-repeats", type=int, default=7, help="single-message learns timed from the command line (0: none)")
    args = ap.parse_args(argv)
    chosen = {}
    for option, value, known in (("--orders", args.orders, ORDERS), ("--starts", args.starts, STARTS), ("--filters", args.filters, FILTERS)):
        chosen[option] = [v for v in value.split(",") if v]
        unknown = [v for v in chosen[option] if v not in known]
        if unknown:
            sys.exit(f"{option}: unknown {unknown[0]!r}; known: {', '.join(known)}")
    filters = [f for f in chosen["--filters"] if available(f)]
    for f in chosen["--filters"]:
        if f not in filters:
            _log(f"{f} is not installed: left out")
    corpus = corpus_dir(args.corpus)
    with tempfile.TemporaryDirectory(prefix="spamclf-online-") as tmp:
        doc = run(corpus, chosen["--orders"], chosen["--starts"], filters, args.limit, args.cli_repeats, Path(tmp))
    print(render(doc))
    print(f"\nresults: {write_results('online', doc)}")


if __name__ == "__main__":
    main()
