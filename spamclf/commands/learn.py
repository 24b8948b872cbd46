"""``spamclf learn``: learn messages as spam or ham (or forget them) in a models directory, in one locked step.

``learn_inputs`` is the whole command: take the directory's lock (``models_lock``), load the bundle
(or start an empty one where there is none), learn or forget every message of the inputs through
``Classifier.learn`` / ``forget`` -- the Python API's own code path --, save atomically when anything
changed, release the lock. Two runs at once never lose an update: the second waits for the first.

An unreadable input does not stop the others: the readable messages are learned and saved, and each
unreadable one is an error row in the result (``spamclf learn`` then exits 3). Learning is idempotent,
so running the same command again after mending the input learns only what is new.
"""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Iterable

from ..config import load_config
from ..errors import UsageError
from ..mail.sources import SkipLog, iter_inputs, stdin_once
from ..model.bundle import NO_BUNDLE
from ..model.online import models_lock, parse_label
from ..progress import counting
from .predict import load

BATCH = 256  # messages per Classifier.learn call: bounds the memory a large mailbox takes (a multiple of learning.CHUNK)

LEARN_COUNTS = ("learned", "relabelled", "unchanged")
FORGET_COUNTS = ("forgotten", "unknown")


def learn_inputs(
    models_dir: str | Path,
    inputs: Iterable[str | Path],
    label=None,
    forget: bool = False,
    wait: float | None = None,
    config: str | Path | dict | None = None,
    overrides: Iterable[str] = (),
    progress: bool = False,
    skips: SkipLog | None = None,
) -> dict:
    """Learn every message of ``inputs`` (paths as ``predict`` reads them; ``-``: one message on stdin)
    as ``label`` ("spam"/"ham", 1/0, True/False), or with ``forget`` remove what was learned from them.

    ``wait``: seconds to wait for another writer's lock (None: as long as it takes); BundleError when it
    runs out. ``config``/``overrides``: the config of a models directory created here (where there is
    no bundle yet); an existing bundle keeps its own, and a different one given is noted in ``notes``.

    Returns the counts (``learned``, ``relabelled``, ``unchanged``; or ``forgotten``, ``unknown``),
    ``failed`` and ``errors`` (path, error) for the unreadable inputs, ``skipped`` (files passed over in
    folders), ``created``, ``saved`` and the ``bundle_id`` now at ``models_dir`` (None: still no bundle).
    """
    if forget == (label is not None):
        raise UsageError("give a label to learn (spam or ham), or forget, not both" if forget else "give a label: spam or ham (or forget)")
    wanted = None if forget else parse_label(label)
    inputs = stdin_once(inputs)  # before the lock: a wrong call changes nothing and waits for nothing
    if not inputs:
        raise UsageError("give at least one input: a message, folder, mailbox, or - for one message on stdin")
    cfg = load_config(config, list(overrides)) if (config is not None or overrides) else None
    skips = SkipLog() if skips is None else skips
    names = FORGET_COUNTS if forget else LEARN_COUNTS
    summary: dict = {name: 0 for name in names}
    summary.update(failed=0, errors=[], notes=[])
    with models_lock(models_dir, wait):
        clf = load(models_dir) if forget else load(models_dir, create=True, config=cfg)
        created = clf._disk_id == NO_BUNDLE
        if cfg is not None and not created and cfg != clf.bundle.config:
            summary["notes"].append(f"{models_dir} keeps the config it was created with; --config and --set were not used")
        items = counting(iter_inputs(inputs, clf.options.max_bytes, skips), "forgetting" if forget else "learning", progress)
        for batch in iter(lambda: list(islice(items, BATCH)), []):
            result = clf.forget(batch) if forget else clf.learn(batch, wanted)
            for name in names:
                summary[name] += result[name]
            summary["errors"] += result["errors"]
        changed = summary["forgotten"] if forget else summary["learned"] + summary["relabelled"]
        bundle_id = clf.save() if changed else (None if created else clf._disk_id)
    summary.update(
        failed=len(summary["errors"]), skipped=len(skips.skipped), created=created and bool(changed), saved=bool(changed),
        models=str(models_dir), bundle_id=bundle_id,
    )
    return summary


def format_summary(summary: dict) -> str:
    """``12 learned, 1 relabelled, 3 unchanged, 0 failed`` (or ``2 forgotten, 0 unknown, 0 failed``)."""
    names = FORGET_COUNTS if "forgotten" in summary else LEARN_COUNTS
    return ", ".join(f"{summary[name]} {name}" for name in (*names, "failed"))
