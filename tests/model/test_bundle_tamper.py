"""A models directory that was changed in any way is refused: exit 3, one line naming the problem, nothing loaded.

Most cases change a copy of the real smoke bundle. Where the manifest alone would
catch the change, some cases also rewrite the manifest (as an attacker with write
access could) so that the check behind it -- pickle, Lambda, truncation, shapes -- is
the one that must refuse the bundle.
"""

from __future__ import annotations

import io
import json
import pickle
import shutil
import subprocess
import struct
import sys
import textwrap
import zipfile
import zlib
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
    """Spy on the readers: a changed file stops loading before any of them runs on it.

    Only config.json, whose own SHA-256 matched, is parsed first: it bounds how much of the
    other files is read at all.
    """
    from spamclf.model import features
    from spamclf.model import bundle_checks as keras_safety

    calls = []
    spied = [
        (np, "load"), (features.TfidfFeatures, "fitted"), (keras_safety, "check_keras_bytes"),
        (bundle_mod, "check_keras_bytes"), (bundle_mod, "check_npz_bytes"), (bundle_mod, "check_json_bytes"),
    ]
    for module, name in spied:
        real = getattr(module, name)

        def spy(*a, _real=real, _name=name, **k):
            calls.append((_name, a[1] if len(a) > 1 and isinstance(a[1], str) else None))
            return _real(*a, **k)

        monkeypatch.setattr(module, name, spy)
    load_bundle(copy)
    assert calls, "the spies must see a normal load (else this test proves nothing)"
    calls.clear()
    vocab = copy / "vocabulary.json"
    good = vocab.read_bytes()
    vocab.write_bytes(good.replace(b'"', b"'", 1))
    with pytest.raises(BundleError, match="vocabulary.json does not match its SHA-256"):
        load_bundle(copy)
    assert calls == [("check_json_bytes", "config.json")]
    calls.clear()
    vocab.write_bytes(good)
    config = copy / "config.json"
    config.write_bytes(config.read_bytes().replace(b"{", b"{ ", 1))
    with pytest.raises(BundleError, match="config.json does not match its SHA-256"):
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


def _rewrite_keras(copy: Path, change, compression=zipfile.ZIP_STORED) -> None:
    with zipfile.ZipFile(copy / MODEL_FILE) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    change(members)
    with zipfile.ZipFile(copy / MODEL_FILE, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    rewrite_manifest(copy)


def test_a_compressed_keras_member_is_refused(copy, message):
    _rewrite_keras(copy, lambda members: None, compression=zipfile.ZIP_DEFLATED)
    assert "model.keras: member" in refused(copy, message) and "is compressed" in refused(copy, message)


def test_keras_weights_that_declare_more_than_they_hold_are_refused_before_keras_reads_them(copy, keras):
    """HDF5 can declare a dataset over chunks never written: a few KB standing for 256 MiB of weights."""
    import h5py

    def sparse(members):
        out = io.BytesIO()
        with h5py.File(io.BytesIO(members["model.weights.h5"]), "r") as src, h5py.File(out, "w") as dst:
            for key in src:
                src.copy(src[key], dst, name=key)
            del dst["layers/dense/vars/0"]
            dst.create_dataset("layers/dense/vars/0", shape=(2**26,), dtype="f4", chunks=(4096,))
        members["model.weights.h5"] = out.getvalue()

    _rewrite_keras(copy, sparse)
    with pytest.raises(BundleError, match="model.weights.h5 declares .* bytes of weights in a file of"):
        bundle_mod.load_keras_model(copy)
    load_bundle(copy)  # scoring does not read model.keras's weights: it still loads


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


# --- a bundle is data, never a weapon: bounded and inert for any bytes that pass the hashes -----------


def _rewrite_npz(path: Path, change) -> None:
    with np.load(path) as npz:
        arrays = dict(npz)
    change(arrays)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


@pytest.mark.parametrize("name, key, value", [("idf.npz", "idf", np.nan), ("weights.npz", "kernel_1", np.inf), ("weights.npz", "bias_2", -np.inf)])
def test_weights_or_idf_that_are_not_finite_are_refused(copy, message, name, key, value):
    def poison(arrays):
        arrays[key].flat[0] = value

    _rewrite_npz(copy / name, poison)
    rewrite_manifest(copy)
    assert f"{name} holds a weight that is not a finite number" in refused(copy, message)


def test_a_compressed_array_is_refused_before_it_is_inflated(copy, message):
    """A deflated member can declare gigabytes in a few bytes: spamclf's arrays are stored as written."""
    with np.load(copy / "weights.npz") as npz:
        arrays = dict(npz)
    with open(copy / "weights.npz", "wb") as fh:
        np.savez_compressed(fh, **arrays)
    rewrite_manifest(copy)
    assert "weights.npz: member kernel_0.npy is compressed" in refused(copy, message)


def test_an_array_header_that_declares_more_than_its_member_holds_is_refused(copy, message):
    path = copy / "idf.npz"
    with np.load(path) as npz:
        idf = npz["idf"]
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, {"descr": "<f4", "fortran_order": False, "shape": (len(idf) * 1000,)})
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("idf.npy", head.getvalue() + idf.astype("<f4").tobytes())
    rewrite_manifest(copy)
    assert f"array 'idf' declares shape ({len(idf) * 1000},)" in refused(copy, message)


@pytest.mark.parametrize("change, expected", [
    ({"model": {"units": [32, 8]}}, "not the [32, 8, 1] of model.units in config.json"),
    ({"features": {"max_features": 100}}, "not 1 to features.max_features (100)"),
])
def test_arrays_that_do_not_fit_the_config_are_refused(copy, message, change, expected):
    """The NumPy weights and the Keras config agree with each other here; the config says otherwise."""
    config = json.loads((copy / "config.json").read_text())
    vocab = json.loads((copy / "vocabulary.json").read_text())
    for section, keys in change.items():
        config[section].update(keys)
        if section == "features":
            vocab["settings"].update(keys)  # consistent settings: the shapes are what is wrong
    (copy / "config.json").write_text(json.dumps(config))
    (copy / "vocabulary.json").write_text(json.dumps(vocab))
    rewrite_manifest(copy)
    assert expected in refused(copy, message)


def test_vocabulary_settings_are_checked_as_config_and_against_the_config(copy, message):
    """``ngram_max=1000000`` in vocabulary.json alone grew one predict to 24 GB."""
    vocab = json.loads((copy / "vocabulary.json").read_text())
    vocab["settings"]["ngram_max"] = 2
    (copy / "vocabulary.json").write_text(json.dumps(vocab))
    rewrite_manifest(copy)
    assert "vocabulary.json was made with features.ngram_max 2, but config.json says 1" in refused(copy, message)

    vocab["settings"]["ngram_max"] = 1_000_000
    (copy / "vocabulary.json").write_text(json.dumps(vocab))
    config = json.loads((copy / "config.json").read_text())
    config["features"]["ngram_max"] = 1_000_000  # both agree: the range is what refuses it
    (copy / "config.json").write_text(json.dumps(config))
    rewrite_manifest(copy)
    assert "features.ngram_max" in refused(copy, message)

    vocab["settings"] = {**vocab["settings"], "ngram_max": 1, "run_this": "rm -rf /"}
    config["features"]["ngram_max"] = 1
    (copy / "config.json").write_text(json.dumps(config))
    (copy / "vocabulary.json").write_text(json.dumps(vocab))
    rewrite_manifest(copy)
    assert "unknown config key 'features.run_this'" in refused(copy, message)


@pytest.mark.parametrize("term", ["\x1b[2Jcleared", "two\nlines", "", "trailing "])
def test_a_vocabulary_term_that_is_not_a_word_is_refused(copy, message, term):
    vocab = json.loads((copy / "vocabulary.json").read_text())
    vocab["vocabulary"][0] = term
    (copy / "vocabulary.json").write_text(json.dumps(vocab))
    rewrite_manifest(copy)
    assert "vocabulary.json holds a term that is not a word" in refused(copy, message)


@pytest.mark.parametrize("bundle_id", ["abc\nX-Spam-Flag: NO", "\x1b[31mred", "0123456789ab", "", 7])
def test_a_bundle_id_the_writer_would_not_have_written_is_refused(copy, message, bundle_id):
    """The id goes into filter mode's X-Spam-Status header: a newline in it injected a header."""
    manifest = json.loads((copy / MANIFEST_FILE).read_text())
    manifest["bundle_id"] = bundle_id
    (copy / MANIFEST_FILE).write_text(json.dumps(manifest))
    assert "does not hold the bundle_id its writer derives from it" in refused(copy, message)
    raw = message.read_bytes()
    proc = subprocess.run([sys.executable, "-m", "spamclf", "predict", "--models", str(copy), "-"], input=raw, capture_output=True)
    assert proc.returncode == 3 and proc.stdout == raw  # filter mode passes the message through untouched
    assert b"X-Spam" not in proc.stdout


DECLARED = 2**28  # IDF weights: 1 GiB as float32


def _zip_of_zeros(member: str, head: bytes, n_zeros: int) -> bytes:
    """A zip whose one deflated member is ``head`` then ``n_zeros`` zero bytes, about 1 MB per GiB.

    Built from one compressed block repeated (a full flush resets the compressor), so the test
    does not spend seconds compressing a gigabyte.
    """
    chunk = 1 << 22
    assert n_zeros % chunk == 0
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    stream = [compressor.compress(head) + compressor.flush(zlib.Z_FULL_FLUSH)]
    block = compressor.compress(bytes(chunk)) + compressor.flush(zlib.Z_FULL_FLUSH)
    stream += [block] * (n_zeros // chunk) + [compressor.flush()]
    data = b"".join(stream)
    crc = zlib.crc32(head)
    zeros = bytes(chunk)
    for _ in range(n_zeros // chunk):
        crc = zlib.crc32(zeros, crc)
    name = member.encode()
    size = len(head) + n_zeros
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, len(data), size, len(name), 0) + name
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0x21, crc, len(data), size, len(name), 0, 0, 0, 0, 0, 0) + name
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), len(local) + len(data), 0)
    return local + data + central + end


def _declare_inputs(copy: Path, n: int) -> None:
    """Make every other file of the bundle agree that the model takes ``n`` inputs (headers only: no data)."""
    with zipfile.ZipFile(copy / "weights.npz") as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, {"descr": "<f4", "fortran_order": False, "shape": (n, 32)})
    members["kernel_0.npy"] = head.getvalue()
    with zipfile.ZipFile(copy / "weights.npz", "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with zipfile.ZipFile(copy / MODEL_FILE) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    config = json.loads(members["config.json"])
    config["config"]["layers"][0]["config"]["batch_shape"] = [None, n]
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(copy / MODEL_FILE, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    metadata = json.loads((copy / "metadata.json").read_text())
    metadata["n_features"] = n
    (copy / "metadata.json").write_text(json.dumps(metadata))


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak RSS from /proc")
def test_an_idf_that_declares_a_gigabyte_is_refused_before_anything_is_allocated(copy):
    """A 1 MB idf.npz declaring 1 GiB, with the weights, the Keras config and the metadata agreeing:
    loading it in a fresh process stays far below that gigabyte."""
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, {"descr": "<f4", "fortran_order": False, "shape": (DECLARED,)})
    (copy / "idf.npz").write_bytes(_zip_of_zeros("idf.npy", head.getvalue(), DECLARED * 4))
    assert (copy / "idf.npz").stat().st_size < 2 << 20
    _declare_inputs(copy, DECLARED)
    rewrite_manifest(copy)
    code = textwrap.dedent(
        """
        import re, sys
        from pathlib import Path
        from spamclf.model.bundle import load_bundle
        from spamclf.errors import BundleError
        try:
            load_bundle(sys.argv[1])
            print("loaded")
        except BaseException as exc:
            print(type(exc).__name__, str(exc).replace(chr(10), " "))
        # the peak RSS of this program (ru_maxrss would count the forking pytest process's too)
        print(re.search(r"VmHWM:\\s*(\\d+) kB", Path("/proc/self/status").read_text()).group(1))
        """
    )
    proc = subprocess.run([sys.executable, "-c", code, str(copy)], capture_output=True, text=True, timeout=120)
    outcome, peak_kib = proc.stdout.strip().splitlines()
    assert int(peak_kib) < 500 * 1024, f"peak RSS {int(peak_kib) // 1024} MiB; {outcome}"
    assert outcome.startswith("BundleError") and "idf.npz is too large" in outcome
