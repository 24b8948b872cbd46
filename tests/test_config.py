"""Config: defaults, YAML files, --set overrides and their errors."""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys

import pytest
import yaml

from spamclf.config import _SCHEMA, MAX_CONFIG_BYTES, Range, Text, check_section, defaults, load_config, parse_override
from spamclf.errors import ConfigError


def test_default_yaml_spells_out_the_built_in_defaults(root):
    assert yaml.safe_load((root / "configs" / "default.yaml").read_text()) == defaults()


def test_seed_config_is_the_founding_article(root):
    cfg = load_config(root / "configs" / "seed.yaml")
    assert cfg["model"]["units"] == [512, 256]
    assert cfg["train"]["epochs"] == 10
    assert cfg["train"]["batch_size"] == 32
    assert cfg["train"]["validation_split"] == 0.2
    assert cfg["train"]["learning_rate"] == 0.001
    assert cfg["train"]["early_stopping"] is False
    assert cfg["train"]["target_fpr"] is None and cfg["train"]["min_threshold"] == 0.5


def test_default_network_is_the_articles_shape():
    assert defaults()["model"]["units"] == [512, 256]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("train.epochs=3", ("train", "epochs", 3)),
        ("train.learning_rate=0.01", ("train", "learning_rate", 0.01)),
        ("extract.headers=false", ("extract", "headers", False)),
        ("model.units=[64, 32]", ("model", "units", [64, 32])),
        ("train.target_fpr=null", ("train", "target_fpr", None)),
        ("train.class_weight=balanced", ("train", "class_weight", "balanced")),
    ],
)
def test_parse_override(text, expected):
    assert parse_override(text) == expected


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.epoch=3", "unknown config key 'train.epoch'"),
        ("trainer.epochs=3", "unknown config section 'trainer'"),
        ("train.epochs=three", "'train.epochs' must be int"),
        ("train.epochs=2.5", "'train.epochs' must be int"),
        ("extract.headers=3", "'extract.headers' must be bool"),
        ("train.learning_rate=true", "'train.learning_rate' must be float"),
        ("model.units=[0]", "'model.units' must be a list of 1 to 16 integers, each in [1, 65536]"),
        ("train.class_weight=heavy", "must be one of none, balanced"),
        ("epochs=3", "must look like section.key"),
        ("train.epochs", "must look like section.key=value"),
        ("train.validation_split=1.5", "'train.validation_split' must be a number in (0, 1)"),
    ],
)
def test_bad_override_names_the_key(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(None, [override])


def test_int_is_accepted_for_a_float_key():
    assert load_config(None, ["train.learning_rate=1"])["train"]["learning_rate"] == 1.0


def test_exponent_notation_is_a_float_in_overrides_and_files(tmp_path):
    # PyYAML reads 1e-5 (no dot) as a string; an ML engineer writes it that way all the same
    assert load_config(None, ["model.l2=1e-5"])["model"]["l2"] == 1e-5
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  learning_rate: 5E-4\n")
    assert load_config(path)["train"]["learning_rate"] == 5e-4
    with pytest.raises(ConfigError, match="train.seed"):
        load_config(None, ["train.seed=1e3"])  # an int key takes no float spelling


def test_file_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  epochs: 4\n  batch_size: 8\n")
    cfg = load_config(path, ["train.epochs=6"])
    assert cfg["train"]["epochs"] == 6 and cfg["train"]["batch_size"] == 8
    assert cfg["features"] == defaults()["features"]


def test_an_empty_file_is_the_defaults(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("# nothing set yet\n")
    assert load_config(path) == defaults()


def test_unknown_key_in_file_is_named(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  layers: 3\n")
    with pytest.raises(ConfigError, match="unknown config key 'model.layers'"):
        load_config(path)


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(scalar)


# --- every value is range-checked where it is read: files, --set, dicts and bundles alike ------


@pytest.mark.parametrize(
    "override, message",
    [
        ("extract.max_bytes=0", "config key 'extract.max_bytes' must be an integer in [1, 1000000000], got 0"),
        ("extract.max_bytes=-1", "config key 'extract.max_bytes' must be an integer in [1, 1000000000], got -1"),
        ("train.min_threshold=7", "config key 'train.min_threshold' must be a number in [0, 1], got 7.0"),
        ("train.learning_rate=-1", "config key 'train.learning_rate' must be a number in (0, 1], got -1.0"),
        ("train.learning_rate=1e30", "config key 'train.learning_rate' must be a number in (0, 1], got 1e+30"),
        ("features.max_df=-3", "config key 'features.max_df' must be a number in (0, 1], got -3.0"),
        ("model.units=[1000000000]", "config key 'model.units' must be a list of 1 to 16 integers, each in [1, 65536], got [1000000000]"),
        ("model.units=[]", "config key 'model.units' must be a list of 1 to 16 integers, each in [1, 65536], got []"),
        ("model.dropout=5", "config key 'model.dropout' must be a number in [0, 1), got 5.0"),
        ("model.l2=.nan", "config key 'model.l2' must be a number in [0, 1], got nan"),
        ("train.target_fpr=.inf", "config key 'train.target_fpr' must be a number in [0, 1) or null, got inf"),
        ("features.ngram_max=1000000", "config key 'features.ngram_max' must be an integer in [1, 5], got 1000000"),
        ("train.seed=-1", "config key 'train.seed' must be an integer in [0, 4294967295], got -1"),
    ],
)
def test_out_of_range_values_are_refused_naming_the_key_and_the_range(override, message):
    with pytest.raises(ConfigError) as caught:
        load_config(None, [override])
    assert str(caught.value) == message


def _outside(key) -> list:
    """Values just outside a key's range, on each side."""
    rng = key.each or key.allowed
    below = rng.low if rng.open_low else rng.low - (1 if isinstance(rng.low, int) else 1e-9)
    above = rng.high if rng.open_high else rng.high + (1 if isinstance(rng.high, int) else 1e-9)
    return [[below], [above]] if key.each else [below, above]


NUMERIC_KEYS = [(s, k) for s, keys in _SCHEMA.items() for k, spec in keys.items() if isinstance(spec.allowed, Range)]


def test_every_key_has_a_range_or_choices_or_is_a_bool():
    for section, keys in _SCHEMA.items():
        for key, spec in keys.items():
            assert isinstance(spec.allowed, (Range, tuple, Text)) or spec.types == (bool,), f"{section}.{key} has no range"
            if isinstance(spec.allowed, Range):  # the default is in it
                assert load_config({section: {key: spec.default}})[section][key] == spec.default


@pytest.mark.parametrize("section, key", NUMERIC_KEYS, ids=[f"{s}.{k}" for s, k in NUMERIC_KEYS])
def test_each_numeric_key_refuses_values_just_outside_its_range(section, key):
    for value in _outside(_SCHEMA[section][key]):
        with pytest.raises(ConfigError, match=rf"config key '{section}\.{key}' must be .* in [\[(]"):
            load_config({section: {key: value}})


def test_a_file_and_a_dict_are_checked_like_overrides_and_name_where_the_value_came_from(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  dropout: 5\n")
    with pytest.raises(ConfigError, match=rf"^{tmp_path}/c\.yaml: config key 'model\.dropout' must be a number in \[0, 1\)"):
        load_config(path)
    with pytest.raises(ConfigError, match=r"^config: config key 'extract\.max_bytes' must be an integer"):
        load_config({"extract": {"max_bytes": 0}})


def test_the_api_checks_a_config_dict_before_reading_any_mail(tmp_path, sample):
    import spamclf

    with pytest.raises(ConfigError, match="model.units"):
        spamclf.train([str(sample)], tmp_path / "m", config={"model": {"units": [10**9]}}, progress=False)
    assert not (tmp_path / "m").exists()


def test_a_network_too_large_for_memory_is_refused_at_load():
    with pytest.raises(ConfigError, match=r"features\.max_features \(1000000\) and model\.units \(\[512, 256\]\) make a network of \d+ weights; at most 268435456"):
        load_config(None, ["features.max_features=1000000"])
    with pytest.raises(ConfigError, match="at most 268435456"):
        load_config(None, ["model.units=[65536, 65536]"])
    assert load_config(None, ["features.max_features=100000", "model.units=[1024, 256]"])  # large but sane


def test_one_section_can_be_checked_on_its_own():
    # what a bundle's vocabulary settings are checked with
    assert check_section("features", {"ngram_max": 2, "max_df": 1}, "v.json") == {"ngram_max": 2, "max_df": 1.0}
    with pytest.raises(ConfigError, match=r"^v\.json: config key 'features\.ngram_max' must be an integer in \[1, 5\], got 1000000$"):
        check_section("features", {"ngram_max": 1000000}, "v.json")
    with pytest.raises(ConfigError, match="unknown config key 'features.run'"):
        check_section("features", {"run": 1}, "v.json")


def test_a_bundle_whose_config_holds_an_out_of_range_value_is_refused(smoke_models, tmp_path, sample):
    from click.testing import CliRunner

    from spamclf.model import bundle as bundle_mod
    from spamclf.cli import main

    copy = tmp_path / "models"
    shutil.copytree(smoke_models, copy)
    config = json.loads((copy / "config.json").read_text())
    config["extract"]["max_bytes"] = 0
    (copy / "config.json").write_text(json.dumps(config))
    bundle_mod._write_manifest(copy)  # as someone who can write the folder can: the hashes match again
    result = CliRunner().invoke(main, ["predict", "--models", str(copy), str(sample / "spam")])
    assert result.exit_code == 3 and result.stdout == ""
    assert result.stderr == f"Error: {copy}/config.json: config key 'extract.max_bytes' must be an integer in [1, 1000000000], got 0\n"


# --- reading a config file: bounded, one line for anything that is not a small UTF-8 YAML file ----


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))  # a config that eats memory fails here, not the machine


def _train_with_config(config, tmp_path, root) -> subprocess.CompletedProcess:
    """``spamclf train --config CONFIG`` in a real process: bounded in time and memory."""
    command = [sys.executable, "-m", "spamclf", "train", "--data", str(root / "data" / "sample"), "--models", str(tmp_path / "m"), "--config", str(config)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, preexec_fn=_limit_memory, cwd=root)


def _alias_bomb() -> str:
    """367 bytes of YAML whose aliases make a list of 9**10 items when printed."""
    lines = ["model:", "  units:", "  - &a [1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for previous, name in zip("abcdefghi", "bcdefghij"):
        lines.append(f"  - &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "kind, message",
    [
        ("latin-1", "is not UTF-8 text (byte 0xe9 at offset 5)"),
        ("/dev/zero", "is not a regular file"),
        ("fifo", "is not a regular file"),
        ("huge", f"is larger than {MAX_CONFIG_BYTES} bytes"),
        ("deep", "is not a config: nested too deeply"),
        ("alias bomb", "config key 'model.units' must be a list of 1 to 16 integers"),
    ],
)
def test_a_config_that_is_not_a_small_utf8_yaml_file_is_one_line(kind, message, tmp_path, root):
    path = tmp_path / "c.yaml"
    if kind == "latin-1":
        path.write_bytes("# caf\u00e9\ntrain:\n  epochs: 3\n".encode("latin-1"))
    elif kind == "/dev/zero":
        path = "/dev/zero"
    elif kind == "fifo":
        os.mkfifo(path)  # no writer: opening it to read would wait forever
    elif kind == "huge":
        path.write_text("# " + "x" * MAX_CONFIG_BYTES + "\n")
    elif kind == "deep":
        path.write_text("[" * 100_000)
    else:
        path.write_text(_alias_bomb())
    proc = _train_with_config(path, tmp_path, root)
    assert proc.returncode == 1, proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith("Error: ") and message in proc.stderr, proc.stderr
    assert not (tmp_path / "m").exists()


def test_a_directory_as_config_is_one_line_in_the_api(tmp_path):
    with pytest.raises(ConfigError, match=f"cannot read config file {tmp_path}: Is a directory"):
        load_config(tmp_path)


def test_yaml_errors_are_one_line_with_their_place():
    with pytest.raises(ConfigError) as caught:
        load_config(None, ["model.units=[1, 2"])
    assert "\n" not in str(caught.value) and "not valid YAML at line 1, column" in str(caught.value)


def test_the_schema_is_the_one_home_of_every_default():
    # TfidfFeatures() once gave 50,000 features and no header weight, against the config's 20,000 and 0.5.
    from spamclf.mail.extract import ExtractOptions
    from spamclf.model.features import TfidfFeatures

    assert ExtractOptions().__dict__ == defaults()["extract"]
    assert TfidfFeatures().settings() == defaults()["features"]


@pytest.mark.parametrize("value", ["", "a\0b", "x" * 5000])
def test_a_log_path_key_refuses_what_is_no_path(value):
    with pytest.raises(ConfigError, match="train.csv_log' must be a path of 1 to 4096 characters or null"):
        load_config({"train": {"csv_log": value}})
