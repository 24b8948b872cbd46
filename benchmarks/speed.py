"""Speed benchmark (issue 5): spamclf next to bogofilter and scikit-learn, measured in the same run.

Every number is a whole process -- start, read, extract, vectorise, fit or score, save or write
rows -- timed from outside with its peak memory (``os.wait4``). Usage::

    python -m benchmarks.speed [--corpus DIR] [--quick]

prints a table, writes benchmarks/results/speed-<time>.json (and speed-latest.json).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from .common import (
    RESULTS,
    ROOT,
    bogofilter,
    corpus_dir,
    labelled_files,
    machine,
    materialize,
    measure,
    median_of,
    median_run,
    spamclf_cmd,
    split,
    table,
    write_results,
)

HERE = Path(__file__).resolve().parent
BOGO_OK = (0, 1, 2)  # bogofilter's exit status is its verdict (spam, ham, unsure); 3 is an error


def _bogo_train(folder: Path, db: Path) -> str:
    return (
        f"rm -rf {db} && mkdir -p {db} && find {folder}/spam -type f | bogofilter -d {db} -s -b"
        f" && find {folder}/ham -type f | bogofilter -d {db} -n -b"
    )


def _sk(*args) -> list[str]:
    return [sys.executable, str(HERE / "baseline_sklearn.py"), *map(str, args)]


def _interleaved(commands: dict, rounds: int) -> dict:
    """Each tool's run with the median wall time of ``rounds`` rounds of one run per tool.

    A single run of a few seconds moves by a third with what else this machine does (the CPU
    time of one and the same training run varied by as much), and interleaving gives every
    tool the same conditions.
    """
    runs: dict = {tool: [] for tool in commands}
    for _ in range(rounds):
        for tool, command in commands.items():
            runs[tool].append(command())
    return {tool: median_run(done) for tool, done in runs.items()}


def _train_all(folder: Path, work: Path, tag: str, bogo: str | None, extra: list[str], rounds: int = 1) -> dict:
    commands = {"spamclf": lambda: measure(spamclf_cmd("train", "--data", str(folder), "--models", str(work / f"models-{tag}"), "--force", "-q", *extra))}
    if bogo:
        commands["bogofilter"] = lambda: measure(_bogo_train(folder, work / f"bogo-{tag}"))
    commands["sklearn"] = lambda: measure(_sk("train", folder, work / f"sk-{tag}"))
    return _interleaved(commands, rounds)


def run(corpus: Path, quick: bool, extra: list[str]) -> dict:
    work = RESULTS / "work"
    work.mkdir(parents=True, exist_ok=True)
    bogo = bogofilter()
    paths, labels = labelled_files(corpus)
    train_idx, _ = split(labels)
    train_paths, train_labels = [paths[i] for i in train_idx], labels[train_idx]
    n_classify = 2000 if quick else 10_000
    n_scale = 1000 if quick else 5000
    log = lambda msg: print(f"[bench] {msg}", file=sys.stderr, flush=True)  # noqa: E731

    log(f"preparing folders under {work}")
    train_dir = materialize(train_paths, train_labels, work / "train")
    classify_dir = materialize(paths, labels, work / "classify", n_classify)
    one = next((classify_dir / "spam").iterdir())
    doc: dict = {"machine": machine(), "corpus": str(corpus), "bogofilter": bogo, "messages": {}}
    doc["messages"] = {"train": len(train_paths), "classify": n_classify, "scale_1x": n_scale, "scale_4x": 4 * n_scale}

    rounds = 1 if quick else 5  # the main training and classification runs: the median of 5 rounds
    log(f"training on {len(train_paths)} messages" + (f", {rounds} rounds" if rounds > 1 else ""))
    doc["train"] = _train_all(train_dir, work, "main", bogo, extra, rounds)

    log(f"classifying {n_classify} messages")
    models = work / "models-main"
    commands = {"spamclf": lambda: measure(spamclf_cmd("predict", "--models", str(models), "--format", "csv", str(classify_dir)), stdout_path=work / "rows-spamclf.csv")}
    if bogo:
        listing = work / "classify-files.txt"
        listing.write_text("".join(f"{p}\n" for p in sorted(classify_dir.rglob("*.eml"))))
        commands["bogofilter"] = lambda: measure(f"bogofilter -d {work / 'bogo-main'} -b -T", stdin_path=listing, stdout_path=work / "rows-bogofilter.txt", ok=BOGO_OK)
    commands["sklearn"] = lambda: measure(_sk("classify", work / "sk-main", classify_dir), stdout_path=work / "rows-sklearn.csv")
    cls = _interleaved(commands, rounds)
    for r in cls.values():
        r["messages_per_s"] = n_classify / r["wall_s"]
    doc["classify"] = cls

    log("cold single-message runs")
    n = 3 if quick else 7
    cold = {
        "python -c 'import numpy, scipy.sparse'": median_of(n, lambda: measure([sys.executable, "-c", "import numpy, scipy.sparse"])),
        "spamclf": median_of(n, lambda: measure(spamclf_cmd("predict", "--models", str(models), str(one)))),
    }
    if bogo:
        cold["bogofilter"] = median_of(n, lambda: measure(["bogofilter", "-d", str(work / "bogo-main"), "-T"], stdin_path=one, ok=BOGO_OK))
    cold["sklearn"] = median_of(n, lambda: measure(_sk("classify", work / "sk-main", one)))
    doc["cold"] = cold
    doc["cold_heavy_imports"] = heavy_imports(models, one)

    log(f"scaling: {n_scale} and {4 * n_scale} training messages")
    scale = {}
    for factor in (1, 4):
        folder = materialize(train_paths, train_labels, work / f"scale-{factor}x", factor * n_scale)
        scale[f"{factor}x"] = _train_all(folder, work, f"{factor}x", bogo, extra)
        shutil.rmtree(folder)
    doc["scale"] = scale

    # in a child process, last: importing TensorFlow here would grow this process, and a child's
    # peak RSS counts the parent's pages it was forked with
    log("NumPy scorer against keras.Model.predict")
    code = (
        "import json, sys\nfrom pathlib import Path\nfrom benchmarks.speed import scorer_agreement\n"
        "print(json.dumps(scorer_agreement(Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]])))"
    )
    files = [str(p) for p in sorted(classify_dir.rglob("*.eml"))[:2000]]
    out = subprocess.run([sys.executable, "-c", code, str(models), *files], capture_output=True, text=True, cwd=ROOT, check=True)
    doc["scorer_agreement"] = json.loads(out.stdout.strip().splitlines()[-1])
    doc["targets"] = targets(doc)
    return doc


def scorer_agreement(models: Path, files: list[Path]) -> dict:
    """Largest difference between the bundle's NumPy scores and Keras' own predict on real messages."""
    import numpy as np

    from spamclf.model.bundle import MODEL_FILE
    from spamclf.model.network import keras_predict, load_model
    from spamclf.commands.predict import Classifier

    clf = Classifier.load(models)
    from spamclf.mail.extract import extract

    x = clf.features.transform([extract(p.read_bytes(), clf.options) for p in files])
    from spamclf.model.scorer import forward

    ours = forward(x, clf.bundle.layers)
    theirs = keras_predict(load_model(models / MODEL_FILE), x)
    return {"messages": len(files), "max_abs_difference": float(np.max(np.abs(ours - theirs)))}


def heavy_imports(models: Path, message: Path) -> list[str]:
    """Which of TensorFlow, Keras, scikit-learn and pandas the predict command imported (should be none)."""
    code = (
        "import sys, runpy\n"
        f"sys.argv = ['spamclf', 'predict', '--models', {str(models)!r}, {str(message)!r}]\n"
        "try:\n    runpy.run_module('spamclf', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "print('heavy:' + ','.join(m for m in ('tensorflow', 'keras', 'sklearn', 'pandas') if m in sys.modules), file=sys.stderr)\n"
    )
    err = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stderr
    line = next((x for x in err.splitlines() if x.startswith("heavy:")), None)
    if line is None:
        raise RuntimeError(f"could not check predict's imports:\n{err[-2000:]}")
    return [m for m in line[len("heavy:") :].split(",") if m]


def targets(doc: dict) -> list[dict]:
    """Issue 5's targets, each as measured ratio against its limit."""
    out = []
    tr, cls, cold, scale = doc["train"], doc["classify"], doc["cold"], doc["scale"]
    if "bogofilter" in tr:
        ratio = tr["spamclf"]["wall_s"] / tr["bogofilter"]["wall_s"]
        out.append({"target": "training time <= 5x bogofilter", "measured": f"{ratio:.1f}x", "met": ratio <= 5})
    if "bogofilter" in cls:
        ratio = cls["spamclf"]["messages_per_s"] / cls["bogofilter"]["messages_per_s"]
        out.append({"target": "classification msgs/s >= bogofilter", "measured": f"{ratio:.2f}x", "met": ratio >= 1})
    base = cold["python -c 'import numpy, scipy.sparse'"]["wall_s"]
    ratio = cold["spamclf"]["wall_s"] / base
    out.append({"target": "cold predict <= 4x import numpy, scipy.sparse", "measured": f"{ratio:.1f}x", "met": ratio <= 4})
    heavy = doc["cold_heavy_imports"]
    out.append({"target": "predict imports no TensorFlow, sklearn, pandas", "measured": ",".join(heavy) or "none", "met": not heavy})
    ratio = scale["4x"]["spamclf"]["wall_s"] / scale["1x"]["spamclf"]["wall_s"]
    out.append({"target": "4x data costs <= 5x time", "measured": f"{ratio:.1f}x", "met": ratio <= 5})
    diff = doc["scorer_agreement"]["max_abs_difference"]
    out.append({"target": "NumPy scorer within 1e-5 of keras predict", "measured": f"{diff:.1e}", "met": diff <= 1e-5})
    peak = scale["4x"]["spamclf"]["peak_rss_mib"]
    n4 = doc["messages"]["scale_4x"]
    out.append({"target": f"peak memory training on {n4} msgs < 2 GiB", "measured": f"{peak:.0f} MiB", "met": peak < 2048})
    return out


def render(doc: dict) -> str:
    tools = ["spamclf", "bogofilter", "sklearn"]
    m = doc["messages"]

    def cell(section: dict, tool: str, key: str, fmt: str) -> str | None:
        return fmt.format(section[tool][key]) if tool in section else "n/a"

    rows = [
        [f"train {m['train']} msgs: wall s (median)", *(cell(doc["train"], t, "wall_s", "{:.2f}") for t in tools)],
        [f"train {m['train']} msgs: peak MiB", *(cell(doc["train"], t, "peak_rss_mib", "{:.0f}") for t in tools)],
        [f"classify {m['classify']} msgs: msgs/s (median)", *(cell(doc["classify"], t, "messages_per_s", "{:.0f}") for t in tools)],
        [f"classify {m['classify']} msgs: peak MiB", *(cell(doc["classify"], t, "peak_rss_mib", "{:.0f}") for t in tools)],
        ["one message, cold: wall s (median)", *(cell(doc["cold"], t, "wall_s", "{:.3f}") for t in tools)],
        [f"train {m['scale_1x']} msgs (1x): wall s", *(cell(doc["scale"]["1x"], t, "wall_s", "{:.2f}") for t in tools)],
        [f"train {m['scale_4x']} msgs (4x): wall s", *(cell(doc["scale"]["4x"], t, "wall_s", "{:.2f}") for t in tools)],
        [f"train {m['scale_4x']} msgs (4x): peak MiB", *(cell(doc["scale"]["4x"], t, "peak_rss_mib", "{:.0f}") for t in tools)],
    ]
    base = doc["cold"]["python -c 'import numpy, scipy.sparse'"]["wall_s"]
    out = [table(rows, ["", *tools]), f"\npython -c 'import numpy, scipy.sparse': {base:.3f} s (median, cold-start reference)\n"]
    out.append(table([[t["target"], t["measured"], "yes" if t["met"] else "NO"] for t in doc["targets"]], ["target", "measured", "met"]))
    mc = doc["machine"]
    out.append(f"\nmachine: {mc['cpu']}, {mc['cores']} cores, Python {mc['python']}, load average at start {mc['load_average_1min_at_start']}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", help="labelled corpus with spam/ and ham/ (default $SPAMCLF_CORPUS or data/spamassassin)")
    ap.add_argument("--quick", action="store_true", help="smaller runs (2,000 to classify, 1,000/4,000 to scale): a smoke test")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="config override for spamclf train")
    args = ap.parse_args(argv)
    extra = [x for o in args.overrides for x in ("--set", o)]
    doc = run(corpus_dir(args.corpus), args.quick, extra)
    doc["overrides"] = args.overrides
    print(render(doc))
    print(f"\nresults: {write_results('speed', doc)}")


if __name__ == "__main__":
    main()
