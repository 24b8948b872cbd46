"""``spamclf inspect``: what a models directory is, and whether it can be trusted.

A bundle that fails verification is described only by what is safe to show: its
manifest and the state of each file. Metadata and config are shown only once every
check has passed, so nothing read from a changed file is presented as fact. Every
string in the text output goes through ``display.printable``: a bundle's strings
(a date, a source path, a version, a file name) cannot move the cursor or clear a
terminal, whoever wrote them.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..model.bundle import examine
from ..printable import printable


def inspect_bundle(models_dir: str | Path) -> dict:
    """A description of ``models_dir``: ``verified`` and ``problem`` always; the rest as far as it is safe.

    Never raises for a bad bundle: the problem is in the result, so it can be printed with the rest.
    """
    folder = Path(models_dir)
    out: dict = {"models_dir": str(folder), "verified": False, "problem": None}
    examined = examine(folder)  # the folder read once: what is shown is what was checked
    bundle = examined.bundle
    if bundle is None:
        out["problem"] = examined.problem
        if examined.manifest is not None:
            out["manifest"] = examined.manifest
            out["files"] = examined.files
        return out
    meta = bundle.metadata
    out.update(
        verified=True,
        bundle_id=bundle.bundle_id,
        format_version=bundle.manifest.get("format_version"),
        spamclf_version=bundle.manifest.get("spamclf_version"),
        created=meta.get("created"),
        threshold=bundle.threshold,
        n_features=bundle.features.n_features,
        layers=[int(kernel.shape[1]) for kernel, _ in bundle.layers],
        epochs_run=meta.get("epochs_run"),
        data=meta.get("data"),
        validation_metrics=meta.get("validation_metrics"),
        versions=meta.get("versions"),
        learned=meta.get("learned"),
        config=bundle.config,
        manifest=bundle.manifest,
        files={name: "ok" for name in bundle.manifest["files"]},
    )
    return out


def format_inspection(info: dict) -> str:
    """The description as aligned text lines, for people."""
    rows = [("models directory", info["models_dir"])]
    if info["verified"]:
        rows.append(("manifest", f"verified (bundle {info['bundle_id']}, format {info['format_version']})"))
    else:
        rows.append(("manifest", f"NOT VERIFIED: {info['problem']}"))
    if not info["verified"]:
        manifest = info.get("manifest")
        if manifest:
            rows.append(("written by", f"spamclf {manifest.get('spamclf_version', '?')}, format {manifest.get('format_version', '?')}"))
        for name, state in (info.get("files") or {}).items():
            rows.append((f"  {name}", state))
        return _lines(rows)
    rows += [
        ("spamclf version", info["spamclf_version"]),
        ("created", info["created"]),
        ("threshold", f"{info['threshold']:.6f}"),
        ("network", f"{info['n_features']} TF-IDF inputs -> " + " -> ".join(map(str, info["layers"]))),
    ]
    if info.get("data") is not None:  # made by train (a bundle that learned from nothing has no training data)
        data = _mapping(info.get("data"))
        per_label = _mapping(data.get("per_label"))
        sources = data.get("sources") if isinstance(data.get("sources"), list) else []
        rows += [
            ("epochs run", info["epochs_run"]),
            ("data fingerprint", data.get("fingerprint")),
            ("data", f"{data.get('messages')} messages ({', '.join(f'{v} {k}' for k, v in sorted(per_label.items()))})"
             f" from {', '.join(map(str, sources))}"),
        ]
        metrics = _mapping(info.get("validation_metrics"))
        shown = ("accuracy", "precision", "recall", "f1", "roc_auc", "false_positive_rate")
        rows.append(("validation", ", ".join(f"{k} {metrics[k]:.4f}" for k in shown if isinstance(metrics.get(k), (int, float)))))
        versions = _mapping(info.get("versions"))
        rows.append(("trained with", ", ".join(f"{k} {v}" for k, v in sorted(versions.items()))))
    if info.get("learned") is not None:  # saved by learn
        learned = _mapping(info.get("learned"))
        rows.append(("learned", f"{learned.get('messages')} messages ({learned.get('ham')} ham, {learned.get('spam')} spam),"
                                f" {learned.get('refits')} refits"))
    text = _lines(rows)
    return text + "\nconfig\n" + json.dumps(info["config"], indent=2, sort_keys=True)  # JSON escapes control characters


def _lines(rows) -> str:
    """``key value`` lines, aligned, with every string made printable (see the module's docstring)."""
    return "\n".join(f"{printable(str(k)):<22} {printable(str(v))}" for k, v in rows)


def _mapping(value) -> dict:
    """``value`` if it is a JSON object, else an empty one: metadata is shown as far as it has the usual shape."""
    return value if isinstance(value, dict) else {}
