"""A reader never sees a mix of two bundles while a writer swaps them, and never calls a swap tampering.

Two real bundles that score differently (another seed, another vocabulary); a child process swaps
them at the models directory's path as fast as it can, the way ``train --force`` installs a bundle,
while this process loads the path and scores the same messages over and over. Every score must be
exactly the score of the bundle whose manifest was loaded with it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from spamclf.model.bundle import load_bundle
from spamclf.errors import BundleError
from spamclf.model.scorer import forward

SWAPPER = textwrap.dedent(
    """
    import os, shutil, sys, time
    from pathlib import Path
    from spamclf.model import bundle

    mode, target, other, first, second = sys.argv[1], *map(Path, sys.argv[2:6])
    deadline = time.monotonic() + float(sys.argv[6])
    swaps = 0
    print("ready", flush=True)
    while time.monotonic() < deadline:
        if mode == "exchange":  # the two folders trade places in one step
            bundle._renameat2(target, other, bundle._RENAME_EXCHANGE)
        else:  # train --force: a new copy goes in, the old one is deleted file by file
            work = target.parent / f".{target.name}.tmp-{os.getpid()}-{swaps}"
            shutil.copytree((first, second)[swaps % 2], work)
            bundle._install(work, target)
        swaps += 1
    print(swaps, flush=True)
    """
)


@pytest.fixture(scope="module")
def other_models(sample, smoke_config, tmp_path_factory) -> Path:
    """A second real bundle: another seed and case-sensitive terms, so another vocabulary and other scores."""
    import spamclf

    out = tmp_path_factory.mktemp("other") / "models"
    spamclf.train([str(sample)], out, config=smoke_config, overrides=["train.seed=7", "features.lowercase=false"], progress=False)
    return out


@pytest.fixture(scope="module")
def texts(sample) -> list[str]:
    paths = sorted((sample / "spam").iterdir())[:3] + sorted((sample / "ham").iterdir())[:3]
    return [p.read_text(encoding="utf-8", errors="replace") for p in paths]


def scores(bundle, texts) -> np.ndarray:
    return forward(bundle.features.transform(texts), bundle.layers)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="renameat2 is Linux")
@pytest.mark.parametrize("mode", ["exchange", "install"])
def test_loading_while_bundles_are_swapped_gives_one_whole_bundle_every_time(smoke_models, other_models, texts, tmp_path, mode):
    import shutil

    target, other = tmp_path / "models", tmp_path / "other"
    shutil.copytree(smoke_models, target)
    shutil.copytree(other_models, other)
    expected = {b.bundle_id: scores(b, texts) for b in (load_bundle(smoke_models), load_bundle(other_models))}
    assert len(expected) == 2
    (a_scores, b_scores) = expected.values()
    assert np.abs(a_scores - b_scores).max() > 0.01  # a mix would show

    proc = subprocess.Popen(
        [sys.executable, "-c", SWAPPER, mode, str(target), str(other), str(smoke_models), str(other_models), "3"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        seen: Counter = Counter()
        errors = []
        while proc.poll() is None:
            try:
                bundle = load_bundle(target)
            except BundleError as exc:
                errors.append(str(exc))
                continue
            got = scores(bundle, texts)
            seen[bundle.bundle_id if np.array_equal(got, expected[bundle.bundle_id]) else "mixed"] += 1
        swaps = int(proc.stdout.read())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    loads = len(errors) + sum(seen.values())
    assert (errors, seen["mixed"]) == ([], 0), (
        f"of {loads} loads, {len(errors)} failed (e.g. {errors[:1]}) and {seen['mixed']} mixed two bundles"
    )
    assert len(seen) == 2 and swaps > len(seen), f"the test must see both bundles while swapping: {seen}, {swaps} swaps"
