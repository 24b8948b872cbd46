"""Ray scoring throughput (issue 7): ``spamclf predict --engine ray`` with 1 and 2 workers, and local.

Each run is a whole ``spamclf predict`` process over the same folder of raw messages. Two
figures per run: end to end (process start to exit: Ray start-up, actor start, reading,
scoring, writing Parquet) and the pipeline alone (the ``seconds`` the command reports:
from the files being listed to the rows written, Ray already up), which is what a long job
on a cluster approaches. Usage::

    python -m benchmarks.ray_throughput [--corpus DIR] [--models DIR] [--count N] [--workers 1,2]

prints a table, writes benchmarks/results/ray-throughput-<time>.json (and -latest.json).
Without --models it reuses benchmarks/results/work/models-main (``make bench``) or trains
the default config on the corpus's 80% split first.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from .common import RESULTS, corpus_dir, labelled_files, machine, materialize, measure, spamclf_cmd, split, table, write_results


def _models(given: str | None, corpus: Path, work: Path) -> Path:
    from spamclf.model.bundle import verify
    from spamclf.errors import BundleError

    if given:
        return Path(given)
    for candidate in (RESULTS / "work" / "models-main", work / "models"):
        try:
            verify(candidate)
            return candidate
        except BundleError:
            continue
    paths, labels = labelled_files(corpus)
    train_idx, _ = split(labels)
    folder = materialize([paths[i] for i in train_idx], labels[train_idx], work / "train")
    print(f"training the default config on {len(train_idx)} messages ...", file=sys.stderr)
    measure(spamclf_cmd("train", "--data", str(folder), "--models", str(work / "models"), "--force", "-q"))
    return work / "models"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=None)
    ap.add_argument("--models", default=None)
    ap.add_argument("--count", type=int, default=None, help="messages to score (default: the whole corpus)")
    ap.add_argument("--workers", default="1,2")
    args = ap.parse_args(argv)
    corpus = corpus_dir(args.corpus)
    work = RESULTS / "work" / "ray"
    work.mkdir(parents=True, exist_ok=True)
    models = _models(args.models, corpus, work)
    paths, labels = labelled_files(corpus)
    inputs = materialize(paths, labels, work / "inputs", args.count or len(paths))
    n = args.count or len(paths)

    runs = []
    local = measure(spamclf_cmd("predict", "--models", str(models), "--format", "csv", str(inputs)), stdout_path=work / "rows-local.csv")
    runs.append({"engine": "local", "workers": None, "messages": n, **local, "pipeline_s": None})
    for workers in [int(w) for w in args.workers.split(",")]:
        out = work / f"out-{workers}"
        shutil.rmtree(out, ignore_errors=True)
        summary_path = work / f"summary-{workers}.json"
        result = measure(
            spamclf_cmd("predict", "--models", str(models), "--engine", "ray", "--workers", str(workers), "--out", str(out), str(inputs)),
            stdout_path=summary_path,
        )
        summary = json.loads(summary_path.read_text())
        assert summary["rows"] == n, summary
        runs.append({"engine": "ray", "workers": workers, "messages": n, **result, "pipeline_s": summary["seconds"]})
    for run in runs:
        run["end_to_end_msgs_per_s"] = round(run["messages"] / run["wall_s"], 1)
        run["pipeline_msgs_per_s"] = round(run["messages"] / run["pipeline_s"], 1) if run["pipeline_s"] else None
    doc = {"machine": machine(), "models": str(models), "inputs": str(inputs), "runs": runs}
    path = write_results("ray-throughput", doc)
    rows = [
        [
            r["engine"],
            r["workers"] or "-",
            r["messages"],
            f"{r['wall_s']:.1f}",
            r["end_to_end_msgs_per_s"],
            "-" if r["pipeline_s"] is None else f"{r['pipeline_s']:.1f}",
            r["pipeline_msgs_per_s"] or "-",
            f"{r['peak_rss_mib']:.0f}",
        ]
        for r in runs
    ]
    print(table(rows, ["engine", "workers", "messages", "wall s", "msgs/s", "pipeline s", "pipeline msgs/s", "driver peak MiB"]))
    print(f"written to {path}", file=sys.stderr)
    return doc


if __name__ == "__main__":
    main()
