"""A models directory that was changed in any way is refused: exit 3, one line naming the problem, nothing loaded.

Most cases change a copy of the real smoke bundle. Where the manifest alone would
catch the change, some cases also rewrite the manifest (as an attacker with write
access could) so that the check behind it -- pickle, Lambda, truncation, shapes -- is
the one that must refuse the bundle.
"""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from spamclf.model import bundle as bundle_mod
from spamclf.model.bundle import BUNDLE_FILES, MANIFEST_FILE, MODEL_FILE, load_bundle
from spamclf.cli import main
from spamclf.errors import BundleError

ALL_FILES = (*BUNDLE_FILES, MANIFEST_FILE)


@pytest.fixture
def copy(smoke_models, tmp_path) -> Path:
    dst = tmp_path / "models"
    shutil.copytree(smoke_models, dst)
    return dst


@pytest.fixture(scope="module")
def message(sample) -> Path:
    return sorted((sample / "spam").iterdir())[0]


def rewrite_manifest(folder: Path) -> None:
    """What someone who can write the folder can do: make the manifest match the changed files."""
    bundle_mod._write_manifest(folder)


def refused(folder: Path, message: Path) -> str:
    """Run ``predict`` on the bundle; assert it is refused properly; return the one error line."""
    result = CliRunner().invoke(main, ["predict", "--models", str(folder), str(message)])
    assert result.exit_code == 3, result.output
    assert isinstance(result.exception, SystemExit)  # no exception escaped: no traceback
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    with pytest.raises(BundleError):
        load_bundle(folder)
    return lines[0]


def test_the_untouched_copy_loads(copy, message):
    result = CliRunner().invoke(main, ["predict", "--models", str(copy), str(message)])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("name", ALL_FILES)
def test_one_flipped_byte_in_any_file_is_refused(copy, message, name):
    path = copy / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    line = refused(copy, message)
    if name != MANIFEST_FILE:
        assert f"{name} does not match its SHA-256" in line
    else:
        assert MANIFEST_FILE in line or "SHA-256" in line


def test_the_writers_check_skips_only_the_hashes(copy):
    """``write_bundle`` checks a bundle whose manifest it has just hashed without hashing it again."""
    path = copy / "history.json"
    path.write_bytes(path.read_bytes().replace(b"{", b"{ ", 1))  # still valid JSON, another hash
    with pytest.raises(BundleError, match="SHA-256"):
        bundle_mod.check_bundle(copy)
    bundle_mod.check_bundle(copy, verify_hashes=False)
    (copy / "weights.npz").unlink()
    with pytest.raises(BundleError, match="weights.npz is missing"):
        bundle_mod.check_bundle(copy, verify_hashes=False)


@pytest.mark.parametrize("name", ALL_FILES)
def test_a_deleted_file_is_refused(copy, message, name):
    (copy / name).unlink()
    line = refused(copy, message)
    assert name in line and "missing" in line


def test_an_added_pickle_file_is_refused(copy, message):
    (copy / "extra.pkl").write_bytes(pickle.dumps({"threshold": 0.0}))
    assert "unexpected file extra.pkl" in refused(copy, message)


def test_an_added_pickle_file_listed_in_the_manifest_is_refused(copy, message):
    (copy / "extra.pkl").write_bytes(pickle.dumps({"threshold": 0.0}))
    manifest = json.loads((copy / MANIFEST_FILE).read_text())
    manifest["files"]["extra.pkl"] = bundle_mod.sha256_file(copy / "extra.pkl")
    (copy / MANIFEST_FILE).write_text(json.dumps(manifest))
    assert "lists extra.pkl, which is not a bundle file" in refused(copy, message)


def test_an_object_array_in_the_weights_is_refused_even_with_a_matching_manifest(copy, message):
    with np.load(copy / "weights.npz") as npz:
        arrays = dict(npz)
    arrays["bias_0"] = np.array([print] * arrays["bias_0"].shape[0], dtype=object)  # pickled on save
    with open(copy / "weights.npz", "wb") as fh:
        np.savez(fh, **arrays)
    rewrite_manifest(copy)
    assert "holds Python objects (pickle)" in refused(copy, message)


def test_a_pickle_in_place_of_a_json_file_is_refused(copy, message):
    (copy / "history.json").write_bytes(pickle.dumps({"loss": [1.0]}))
    rewrite_manifest(copy)
    assert "history.json is not JSON" in refused(copy, message)


def test_a_pickle_inside_the_keras_archive_is_refused(copy, message):
    with zipfile.ZipFile(copy / MODEL_FILE, "a") as archive:
        archive.writestr("assets/payload.pkl", pickle.dumps([1, 2, 3]))
    rewrite_manifest(copy)
    assert "unexpected member 'assets/payload.pkl'" in refused(copy, message)


@pytest.mark.parametrize("rewrite", [False, True], ids=["manifest-as-was", "manifest-rewritten"])
def test_a_truncated_keras_zip_is_refused(copy, message, rewrite):
    path = copy / MODEL_FILE
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    if rewrite:
        rewrite_manifest(copy)
        assert "model.keras is not a complete Keras archive (truncated" in refused(copy, message)
    else:
        assert "model.keras does not match its SHA-256" in refused(copy, message)


def test_a_keras_zip_cut_inside_a_member_is_refused(copy, message):
    """The central directory kept at the end, but a member's data cut short."""
    path = copy / MODEL_FILE
    data = path.read_bytes()
    with zipfile.ZipFile(path) as archive:
        h5 = archive.getinfo("model.weights.h5")
    cut = h5.header_offset + 100
    path.write_bytes(data[:cut] + data[-2000:])  # the tail holds the (small) central directory
    rewrite_manifest(copy)
    assert "model.keras is truncated: member" in refused(copy, message)


def test_an_incompatible_bundle_format_is_refused(copy, message):
    manifest = json.loads((copy / MANIFEST_FILE).read_text())
    manifest["format_version"] = 99
    manifest["spamclf_version"] = "9.0.0"
    (copy / MANIFEST_FILE).write_text(json.dumps(manifest))
    line = refused(copy, message)
    assert "bundle format 99 by spamclf 9.0.0" in line and "retrain" in line


def test_a_vocabulary_that_does_not_fit_the_model_input_is_refused(copy, message):
    vocab = json.loads((copy / "vocabulary.json").read_text())
    vocab["vocabulary"] = vocab["vocabulary"][:-1]
    (copy / "vocabulary.json").write_text(json.dumps(vocab))
    with np.load(copy / "idf.npz") as npz:
        idf = npz["idf"][:-1]
    with open(copy / "idf.npz", "wb") as fh:
        np.savez(fh, idf=idf)
    rewrite_manifest(copy)
    line = refused(copy, message)
    assert f"has {len(idf)} terms but the model takes {len(idf) + 1} inputs" in line


def test_a_vocabulary_longer_than_its_idf_is_refused(copy, message):
    vocab = json.loads((copy / "vocabulary.json").read_text())
    vocab["vocabulary"].append("zzzextra")
    (copy / "vocabulary.json").write_text(json.dumps(vocab))
    rewrite_manifest(copy)
    assert "vocabulary has" in refused(copy, message)


def test_nothing_is_deserialised_before_the_manifest_check(copy, monkeypatch):
    """Spy on the readers: a changed file stops loading before any of them runs."""
    from spamclf.model import features
    from spamclf.model import bundle_checks as keras_safety

    calls = []
    for module, name in [(np, "load"), (features.TfidfFeatures, "load"), (keras_safety, "check_keras_file"), (bundle_mod, "check_keras_file")]:
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _real=real, _name=name, **k: (calls.append(_name), _real(*a, **k))[1])
    load_bundle(copy)
    assert calls, "the spies must see a normal load (else this test proves nothing)"
    calls.clear()
    vocab = copy / "vocabulary.json"
    vocab.write_bytes(vocab.read_bytes().replace(b'"', b"'", 1))
    with pytest.raises(BundleError, match="vocabulary.json does not match its SHA-256"):
        load_bundle(copy)
    assert calls == []


def test_a_bundle_is_refused_without_a_traceback_in_a_real_process(copy, message):
    (copy / "weights.npz").write_bytes(b"\x80\x04K\x01.")  # a pickle of 1
    proc = subprocess.run(
        [sys.executable, "-m", "spamclf", "predict", "--models", str(copy), str(message)], capture_output=True, text=True
    )
    assert proc.returncode == 3
    assert proc.stderr.strip() == f"Error: {copy}/weights.npz does not match its SHA-256 in the manifest; the bundle was changed"
    assert "Traceback" not in proc.stderr


# --- Keras: Lambda and custom layers are refused before Keras builds anything -----------------------


def _save_into(copy: Path, model) -> None:
    model.save(copy / MODEL_FILE)
    rewrite_manifest(copy)


def _n_inputs(copy: Path) -> int:
    with np.load(copy / "idf.npz") as npz:
        return len(npz["idf"])


@pytest.fixture(scope="module")
def keras():
    from spamclf.model.network import import_keras

    return import_keras()[0]


def test_a_lambda_layer_is_refused(copy, message, keras):
    n = _n_inputs(copy)
    model = keras.Sequential(
        [
            keras.Input(shape=(n,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Lambda(lambda x: x * 2.0),  # would run arbitrary code on load without safe mode
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    _save_into(copy, model)
    assert "model.keras contains a Lambda layer" in refused(copy, message)
    with pytest.raises(BundleError, match="Lambda"):
        bundle_mod.load_keras_model(copy)


def test_a_custom_layer_is_refused(copy, message, keras):
    @keras.saving.register_keras_serializable(package="evil")
    class Sneaky(keras.layers.Layer):
        def call(self, x):
            return x

    n = _n_inputs(copy)
    model = keras.Sequential(
        [keras.Input(shape=(n,)), keras.layers.Dense(32, activation="relu"), Sneaky(), keras.layers.Dense(16), keras.layers.Dense(1)]
    )
    _save_into(copy, model)
    line = refused(copy, message)
    assert "Sneaky" in line and "not part of a spamclf network" in line


def test_a_keras_model_that_does_not_match_the_weights_is_refused(copy, message, keras):
    n = _n_inputs(copy)
    model = keras.Sequential([keras.Input(shape=(n,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1, activation="sigmoid")])
    _save_into(copy, model)
    assert "does not match weights.npz" in refused(copy, message)


def test_the_real_keras_model_loads_in_safe_mode(copy, smoke_models):
    from spamclf.model.network import dense_weights

    model = bundle_mod.load_keras_model(copy)
    kept = load_bundle(smoke_models).layers
    for (k1, b1), (k2, b2) in zip(dense_weights(model), kept):
        np.testing.assert_array_equal(k1, k2)
        np.testing.assert_array_equal(b1, b2)


def test_a_config_that_breaks_the_schema_is_refused(copy, message):
    config = json.loads((copy / "config.json").read_text())
    config["extract"]["run_this"] = "rm -rf /"
    (copy / "config.json").write_text(json.dumps(config))
    rewrite_manifest(copy)
    assert "unknown config key 'extract.run_this'" in refused(copy, message)


def test_a_file_replaced_by_a_symbolic_link_is_refused(copy, message):
    target = copy.parent / "elsewhere.json"
    shutil.copyfile(copy / "history.json", target)
    (copy / "history.json").unlink()
    (copy / "history.json").symlink_to(target)
    assert "history.json is a symbolic link" in refused(copy, message)
