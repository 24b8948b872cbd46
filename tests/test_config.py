"""Config: defaults, YAML files, --set overrides and their errors."""

from __future__ import annotations

import pytest
import yaml

from spamclf.config import defaults, load_config, parse_override
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
        ("model.units=[0]", "list of positive integers"),
        ("train.class_weight=heavy", "must be one of none, balanced"),
        ("epochs=3", "must look like section.key"),
        ("train.epochs", "must look like section.key=value"),
        ("train.validation_split=1.5", "'train.validation_split' must be between 0 and 1"),
    ],
)
def test_bad_override_names_the_key(override, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace(".", r"\.")):
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
