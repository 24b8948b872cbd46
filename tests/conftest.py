"""Shared fixtures: the repository's paths and one real smoke model trained per test session."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sample"
SMOKE = ROOT / "configs" / "smoke.yaml"


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def sample() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def smoke_config() -> Path:
    return SMOKE


@pytest.fixture(scope="session")
def smoke_models(tmp_path_factory) -> Path:
    """A real Keras model (smoke config) trained on data/sample, shared by the tests that only read it."""
    import spamclf

    out = tmp_path_factory.mktemp("bundle") / "models"
    spamclf.train([str(SAMPLE)], out, config=SMOKE, progress=False)
    return out


@pytest.fixture(scope="session")
def smoke_summary(smoke_models) -> dict:
    return json.loads((smoke_models / "metadata.json").read_text())


def run_python(code: str) -> str:
    """Run ``code`` in a fresh interpreter (a clean ``sys.modules``) and return what it printed."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def sample_split(epochs: int):
    """The smoke config with ``epochs``, and the sample's TF-IDF rows split 80/20 for fitting and
    validation: ``(cfg, x_fit, y_fit, x_val, y_val)``, for tests that call the network's ``fit``."""
    from spamclf.config import load_config
    from spamclf.mail.extract import ExtractOptions
    from spamclf.mail.labelled import load_labelled, stratified_split
    from spamclf.model.features import TfidfFeatures

    cfg = load_config(SMOKE, [f"train.epochs={epochs}"])
    data = load_labelled([str(SAMPLE)], ExtractOptions.from_config(cfg), progress=False)
    x = TfidfFeatures.from_config(cfg).fit_transform(data.texts)
    fit_idx, val_idx = stratified_split(data.y, 0.2, 42)
    return cfg, x[fit_idx], data.y[fit_idx], x[val_idx], data.y[val_idx]


def make_format_1(folder: Path) -> Path:
    """Turn the bundle at ``folder`` into what a spamclf before learning wrote: format 1, no store files."""
    from spamclf.model.bundle import MANIFEST_FILE, STORE_FILE, STORE_INDEX_FILE, _bundle_id

    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    for name in (STORE_FILE, STORE_INDEX_FILE):
        (folder / name).unlink()
        del manifest["files"][name]
    manifest["format_version"] = 1
    manifest["bundle_id"] = _bundle_id(manifest)
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    return folder
