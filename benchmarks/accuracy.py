"""Accuracy benchmark (issue 4): the 80/20 split and stratified 5-fold CV of the full corpus.

Each config is trained by the same code as ``spamclf train`` (``training.train_dataset``), its
bundle saved and loaded back, and the held-out messages scored at the bundle's saved
threshold. bogofilter (when on PATH) and scikit-learn's TF-IDF + logistic regression are
measured on the same split and folds. Usage::

    python -m benchmarks.accuracy [--corpus DIR] [--configs default,seed] [--folds 5] [--cv-configs default,seed] [--seeds 42,1,2]

``--seeds`` trains each spamclf config once per seed (``train.seed``) and summarises the spread:
the seed moves these metrics about as much as many settings do, so compare settings over seeds.

prints a table, writes benchmarks/results/accuracy-<time>.json (and accuracy-latest.json).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .common import ROOT, bogofilter, corpus_dir, folds, machine, split, table, write_results

CONFIGS = {"default": None, "seed": ROOT / "configs" / "seed.yaml"}
KEYS = ("accuracy", "roc_auc", "false_positive_rate", "false_negative_rate")


def _spamclf(data, train_idx, test_idx, cfg: dict) -> dict:
    from spamclf.reports.metrics import classification_metrics
    from spamclf.commands.predict import Classifier
    from spamclf.commands.train import train_dataset

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        summary = train_dataset(data.subset(train_idx), Path(tmp) / "models", cfg, progress=False)
        seconds = time.perf_counter() - start
        clf = Classifier.load(Path(tmp) / "models")
        scores = clf.score_texts([data.texts[i] for i in test_idx])
    m = classification_metrics(data.y[test_idx], scores, clf.threshold)
    m.update(train_s=seconds, epochs_run=summary["epochs_run"], n_features=summary["n_features"])
    m["errors"] = [
        {"path": data.paths[i], "label": int(data.y[i]), "score": float(s)}
        for i, s in zip(test_idx, scores)
        if (s >= clf.threshold) != bool(data.y[i])
    ]
    return m


def _bogofilter(data, train_idx, test_idx) -> dict:
    from spamclf.reports.metrics import classification_metrics

    with tempfile.TemporaryDirectory() as db:
        start = time.perf_counter()
        for flag, label in (("-s", 1), ("-n", 0)):
            listing = "".join(f"{data.paths[i]}\n" for i in train_idx if data.y[i] == label)
            subprocess.run(["bogofilter", "-d", db, flag, "-b"], input=listing.encode(), check=True)
        seconds = time.perf_counter() - start
        listing = "".join(f"{data.paths[i]}\n" for i in test_idx)
        out = subprocess.run(["bogofilter", "-d", db, "-b", "-T"], input=listing.encode(), capture_output=True).stdout.decode()
    verdict, spamicity = {}, {}
    for line in out.splitlines():
        path, letter, score = line.rsplit(" ", 2)
        verdict[path], spamicity[path] = letter, float(score)
    y = data.y[test_idx]
    paths = [data.paths[i] for i in test_idx]
    # spam at spamicity >= 0.5, a two-way decision like ours; bogofilter's own verdict (spam at its
    # spam_cutoff 0.99, the unsure band counted as not spam) is kept beside it
    scores = np.array([spamicity[p] for p in paths])
    m = classification_metrics(y, scores, 0.5)
    own = classification_metrics(y, np.array([verdict[p] == "S" for p in paths], float), 0.5)
    m.update(train_s=seconds, own_verdict={k: own[k] for k in KEYS if k != "roc_auc"})
    return m


def _sklearn(data, train_idx, test_idx) -> dict:
    from spamclf.reports.metrics import classification_metrics

    from .baseline_sklearn import _text, fit, scores

    texts = [_text(Path(p).read_bytes()) for p in data.paths]
    start = time.perf_counter()
    vectorizer, model = fit([texts[i] for i in train_idx], data.y[train_idx])
    seconds = time.perf_counter() - start
    m = classification_metrics(data.y[test_idx], scores(vectorizer, model, [texts[i] for i in test_idx]), 0.5)
    m.update(train_s=seconds)
    return m


def spamclf_systems(configs: list[str], overrides: list[str] = (), seeds: list[int] = ()) -> list[tuple[str, str, dict]]:
    """``(system name, config name, resolved config)``: each config as it is, or once per seed in ``seeds``."""
    from spamclf.config import load_config

    if not seeds:
        return [(name, name, load_config(CONFIGS[name], overrides)) for name in configs]
    return [(f"{name} seed={seed}", name, load_config(CONFIGS[name], [*overrides, f"train.seed={seed}"])) for name in configs for seed in seeds]


def evaluate_all(
    corpus: Path, configs: list[str], cv_configs: list[str], n_folds: int, repeat: bool, overrides: list[str] = (), baselines: bool = True,
    seeds: list[int] = (),
) -> dict:
    from spamclf.config import load_config
    from spamclf.mail.labelled import load_labelled
    from spamclf.mail.extract import ExtractOptions

    log = lambda msg: print(f"[accuracy] {msg}", file=sys.stderr, flush=True)  # noqa: E731
    results: dict = {"machine": machine(), "corpus": str(corpus), "folds": n_folds, "systems": {}}
    loaded: dict = {}
    base_of = {}
    systems = []
    for name, base, cfg in spamclf_systems(configs, overrides, seeds):
        systems.append((name, cfg))
        base_of[name] = base
    if baselines and bogofilter():
        systems.append(("bogofilter", None))
    if baselines:
        systems.append(("sklearn", None))
    for name, cfg in systems:
        extract_cfg = cfg["extract"] if cfg else load_config(None)["extract"]
        key = repr(sorted(extract_cfg.items()))
        if key not in loaded:
            log("reading and extracting the corpus")
            loaded[key] = load_labelled([str(corpus)], ExtractOptions.from_config({"extract": extract_cfg}), progress=False)
        data = loaded[key]
        run = (lambda tr, te, cfg=cfg: _spamclf(data, tr, te, cfg)) if cfg else (
            (lambda tr, te: _bogofilter(data, tr, te)) if name == "bogofilter" else (lambda tr, te: _sklearn(data, tr, te))
        )
        inner = run

        def run(tr, te, inner=inner, name=name):
            m = inner(tr, te)
            log(f"{name}: accuracy {m['accuracy']:.4f}, ROC AUC {m['roc_auc']:.5f}, FPR {m['false_positive_rate']:.4f}, "
                f"FNR {m['false_negative_rate']:.4f} at threshold {m['threshold']:.4f} ({m['train_s']:.1f} s)")  # fmt: skip
            return m

        entry: dict = {"messages": len(data)}
        if cfg:
            entry.update(config=base_of[name], seed=cfg["train"]["seed"])
        train_idx, test_idx = split(data.y)
        log(f"{name}: 80/20 split")
        entry["split"] = run(train_idx, test_idx)
        if repeat and cfg:
            log(f"{name}: 80/20 split again (reproducibility)")
            again = run(train_idx, test_idx)
            entry["split_repeat_equal_4dp"] = all(round(again[k], 4) == round(entry["split"][k], 4) for k in KEYS)
        if cfg is None or base_of[name] in cv_configs:
            entry["cv"] = []
            for f, (tr, te) in enumerate(folds(data.y, n_folds)):
                log(f"{name}: fold {f + 1}/{n_folds}")
                entry["cv"].append(run(tr, te))
            entry["cv_summary"] = {
                k: {"mean": float(np.mean([r[k] for r in entry["cv"]])), "std": float(np.std([r[k] for r in entry["cv"]])),
                    "min": float(np.min([r[k] for r in entry["cv"]])), "max": float(np.max([r[k] for r in entry["cv"]]))}
                for k in (*KEYS, "train_s")
            }  # fmt: skip
        results["systems"][name] = entry
    if seeds:
        results["over_seeds"] = seed_summary(results["systems"])
    return results


def seed_summary(systems: dict) -> dict:
    """Per config trained with several seeds: mean, min and max over the seeds of the split's
    accuracy and FPR and of the k-fold means of accuracy and FPR."""
    out: dict = {}
    for config in dict.fromkeys(e["config"] for e in systems.values() if "config" in e):
        runs = [e for e in systems.values() if e.get("config") == config]
        values = {"split_accuracy": [e["split"]["accuracy"] for e in runs], "split_fpr": [e["split"]["false_positive_rate"] for e in runs]}
        if all("cv_summary" in e for e in runs):
            values["cv_accuracy"] = [e["cv_summary"]["accuracy"]["mean"] for e in runs]
            values["cv_fpr"] = [e["cv_summary"]["false_positive_rate"]["mean"] for e in runs]
        out[config] = {"seeds": [e["seed"] for e in runs]}
        out[config].update({k: {"mean": float(np.mean(v)), "min": float(np.min(v)), "max": float(np.max(v))} for k, v in values.items()})
        if all("cv" in e for e in runs):
            out[config]["cv_errors"] = _errors_over_seeds(runs)
    return out


def _errors_over_seeds(runs: list[dict]) -> dict:
    """Which messages the k-fold runs misclassify, over the seeds: in k-fold CV each message is in
    one test fold per seed, so a message wrong under every seed is one no seed gets right.

    ``every_seed`` lists those (path, label, mean score); ``ceiling_accuracy`` is the k-fold accuracy
    if they were the only errors -- what taking the seed's luck out (an ideal average over seeds)
    could reach at best without a better model.
    """
    wrong = [{e["path"]: e for fold in run["cv"] for e in fold["errors"]} for run in runs]
    every = sorted(set(wrong[0]).intersection(*wrong[1:]))
    some = set().union(*wrong)
    n_messages = runs[0]["messages"]
    return {
        "some_seed": len(some),
        "every_seed_count": {label: sum(wrong[0][p]["label"] == code for p in every) for label, code in (("ham", 0), ("spam", 1))},
        "ceiling_accuracy": 1.0 - len(every) / n_messages,
        "every_seed": [{"path": p, "label": wrong[0][p]["label"], "mean_score": float(np.mean([w[p]["score"] for w in wrong]))} for p in every],
    }


def render(doc: dict) -> str:
    rows = []
    for name, e in doc["systems"].items():
        s = e["split"]
        row = [name, f"{s['accuracy']:.4f}", f"{s['roc_auc']:.5f}", f"{s['false_positive_rate']:.4f}", f"{s['false_negative_rate']:.4f}", f"{s['threshold']:.4f}", f"{s['train_s']:.1f}"]
        if "cv_summary" in e:
            c = e["cv_summary"]
            row += [f"{c[k]['mean']:.4f} ± {c[k]['std']:.4f}" for k in ("accuracy", "roc_auc", "false_positive_rate")]
        else:
            row += ["", "", ""]
        rows.append(row)
    header = ["system", "split acc", "split AUC", "split FPR", "split FNR", "threshold", "train s",
              f"{doc['folds']}-fold acc (mean ± sd)", "CV AUC", "CV FPR"]  # fmt: skip
    out = [table(rows, header)]
    own = doc["systems"].get("bogofilter", {}).get("split", {}).get("own_verdict")
    if own:
        out.append(
            f"bogofilter at spamicity 0.5 above; with its own verdict (spam_cutoff 0.99, unsure counted as ham) on the split: "
            f"accuracy {own['accuracy']:.4f}, FPR {own['false_positive_rate']:.4f}, FNR {own['false_negative_rate']:.4f}"
        )
    for name, e in doc["systems"].items():
        if "split_repeat_equal_4dp" in e:
            out.append(f"{name}: a second training on the same split gives the same metrics to 4 decimals: {e['split_repeat_equal_4dp']}")
    for config, summary in doc.get("over_seeds", {}).items():
        parts = [f"{label} {summary[k]['mean']:.4f} ({summary[k]['min']:.4f}-{summary[k]['max']:.4f})"
                 for k, label in (("split_accuracy", "split accuracy"), ("split_fpr", "split FPR"), ("cv_accuracy", "k-fold accuracy"), ("cv_fpr", "k-fold FPR"))
                 if k in summary]  # fmt: skip
        out.append(f"{config} over seeds {','.join(map(str, summary['seeds']))}, mean (min-max): " + ", ".join(parts))
        errors = summary.get("cv_errors")
        if errors:
            every = errors["every_seed_count"]
            out.append(
                f"{config} k-fold errors: {errors['some_seed']} messages misclassified under some seed, "
                f"{every['ham'] + every['spam']} under every seed ({every['ham']} ham, {every['spam']} spam); "
                f"with only those wrong, k-fold accuracy would be {errors['ceiling_accuracy']:.4f}"
            )
    mc = doc["machine"]
    out.append(f"machine: {mc['cpu']}, {mc['cores']} cores; messages after dropping exact duplicates: "
               + ", ".join(f"{n} {e['messages']}" for n, e in doc["systems"].items()))  # fmt: skip
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", help="labelled corpus with spam/ and ham/ (default $SPAMCLF_CORPUS or data/spamassassin)")
    ap.add_argument("--configs", default="default,seed", help="spamclf configs to measure (default, seed)")
    ap.add_argument("--cv-configs", default="default,seed", help="of those, which also get k-fold CV")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--repeat", action="store_true", help="train each config twice on the split to check reproducibility")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override for the spamclf configs (tuning)")
    ap.add_argument("--no-baselines", action="store_true", help="spamclf configs only, no bogofilter or scikit-learn")
    ap.add_argument("--seeds", default="", help="comma-separated train.seed values: each spamclf config trained once per seed, with the spread summarised")
    args = ap.parse_args(argv)
    try:
        seeds = list(dict.fromkeys(int(s) for s in args.seeds.split(",") if s.strip()))  # each seed once
    except ValueError:
        sys.exit(f"--seeds takes whole numbers separated by commas, not {args.seeds!r}")
    configs = [c for c in args.configs.split(",") if c]
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        sys.exit(f"unknown config {unknown[0]}; known: {', '.join(CONFIGS)}")
    doc = evaluate_all(
        corpus_dir(args.corpus), configs, args.cv_configs.split(","), args.folds, args.repeat, args.overrides, not args.no_baselines, seeds
    )
    doc["overrides"] = args.overrides
    print(render(doc))
    print(f"\nresults: {write_results('accuracy', doc)}")


if __name__ == "__main__":
    main()
