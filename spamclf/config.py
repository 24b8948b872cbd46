"""Configuration: the schema with its defaults, YAML loading and ``--set`` overrides.

The schema below is the single place every config key is defined. Its default
values are the best settings we measured; ``configs/default.yaml`` spells the
same values out, and a test keeps the two equal.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

from .errors import ConfigError

# key -> (types accepted, default, allowed values or None). ``None`` in types means nullable.
_SCHEMA: dict[str, dict[str, tuple[tuple, Any, tuple | None]]] = {
    "extract": {
        "headers": ((bool,), True, None),
        "max_bytes": ((int,), 10_000_000, None),
        "max_parts": ((int,), 256, None),
        "max_depth": ((int,), 16, None),
        "max_chars": ((int,), 200_000, None),
    },
    "features": {
        "max_features": ((int, type(None)), 20_000, None),
        "ngram_max": ((int,), 1, None),
        "min_df": ((int,), 2, None),
        "max_df": ((float,), 1.0, None),
        "sublinear_tf": ((bool,), True, None),
        "lowercase": ((bool,), True, None),
        "header_weight": ((float, type(None)), 0.5, None),
    },
    "model": {
        "units": ((list,), [512, 256], None),
        "dropout": ((float,), 0.0, None),
        "l2": ((float,), 0.0, None),
    },
    "train": {
        "seed": ((int,), 42, None),
        "epochs": ((int,), 5, None),
        "batch_size": ((int,), 256, None),
        "min_steps_per_epoch": ((int,), 10, None),
        "learning_rate": ((float,), 0.001, None),
        "validation_split": ((float,), 0.2, None),
        "early_stopping": ((bool,), True, None),
        "patience": ((int,), 2, None),
        "class_weight": ((str,), "none", ("none", "balanced")),
        "target_fpr": ((float, type(None)), 0.005, None),
        "min_threshold": ((float,), 0.5, None),
        "tensorboard_dir": ((str, type(None)), None, None),
        "csv_log": ((str, type(None)), None, None),
    },
}


def defaults() -> dict[str, dict[str, Any]]:
    """A fresh copy of the default configuration."""
    return {sec: {k: copy.deepcopy(spec[1]) for k, spec in keys.items()} for sec, keys in _SCHEMA.items()}


_EXPONENT_FLOAT = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _check(section: str, key: str, value: Any) -> Any:
    name = f"{section}.{key}"
    if section not in _SCHEMA:
        raise ConfigError(f"unknown config section '{section}' (in key '{name}'); known: {', '.join(_SCHEMA)}")
    if key not in _SCHEMA[section]:
        known = ", ".join(f"{section}.{k}" for k in _SCHEMA[section])
        raise ConfigError(f"unknown config key '{name}'; known keys in '{section}': {known}")
    types, _, choices = _SCHEMA[section][key]
    # YAML reads 1 as int; a float key accepts it. bool is an int in Python, but never a number here.
    if float in types and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    # YAML 1.1 (PyYAML) reads 1e-5 as a string: its floats need a dot (1.0e-5). Take the number.
    if float in types and isinstance(value, str) and _EXPONENT_FLOAT.fullmatch(value.strip()):
        value = float(value)
    ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
    if not ok:
        wanted = " or ".join("null" if t is type(None) else t.__name__ for t in types)
        raise ConfigError(f"config key '{name}' must be {wanted}, got {value!r}")
    if choices and value not in choices:
        raise ConfigError(f"config key '{name}' must be one of {', '.join(choices)}, got {value!r}")
    if isinstance(value, list) and not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
        raise ConfigError(f"config key '{name}' must be a list of positive integers, got {value!r}")
    return value


def _merge(base: dict, overrides: dict, origin: str) -> dict:
    if not isinstance(overrides, dict):
        raise ConfigError(f"{origin}: a config must be a mapping of sections, got {type(overrides).__name__}")
    for section, keys in overrides.items():
        if section not in _SCHEMA:
            raise ConfigError(f"{origin}: unknown config section '{section}'; known: {', '.join(_SCHEMA)}")
        if not isinstance(keys, dict):
            raise ConfigError(f"{origin}: config section '{section}' must be a mapping")
        for key, value in keys.items():
            base[section][key] = _check(section, key, value)
    return base


def parse_override(text: str) -> tuple[str, str, Any]:
    """Split ``section.key=value`` into its parts; the value is read as YAML (``3``, ``0.1``, ``true``, ``[64]``)."""
    import yaml

    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like section.key=value")
    dotted, raw = text.split("=", 1)
    parts = dotted.strip().split(".")
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"override key '{dotted.strip()}' must look like section.key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"override '{text}': value is not valid YAML ({exc.__class__.__name__})") from None
    return parts[0], parts[1], value


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> dict:
    """The resolved configuration: defaults, then the YAML file, then each ``section.key=value``."""
    import yaml

    config = defaults()
    if path is not None:
        path = Path(path)
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
        _merge(config, loaded or {}, str(path))
    for text in overrides:
        section, key, value = parse_override(text)
        config[section][key] = _check(section, key, value)
    validate(config)
    return config


def validate(config: dict) -> None:
    """Range checks that types alone cannot express."""
    tr, ft = config["train"], config["features"]
    if not 0.0 < tr["validation_split"] < 1.0:
        raise ConfigError("config key 'train.validation_split' must be between 0 and 1 (exclusive)")
    if tr["epochs"] < 1 or tr["batch_size"] < 1 or tr["min_steps_per_epoch"] < 1:
        raise ConfigError("config keys 'train.epochs', 'train.batch_size' and 'train.min_steps_per_epoch' must be at least 1")
    if tr["target_fpr"] is not None and not 0.0 <= tr["target_fpr"] < 1.0:
        raise ConfigError("config key 'train.target_fpr' must be in [0, 1) or null")
    if ft["ngram_max"] < 1 or ft["min_df"] < 1:
        raise ConfigError("config keys 'features.ngram_max' and 'features.min_df' must be at least 1")
    if ft["max_features"] is not None and ft["max_features"] < 1:
        raise ConfigError("config key 'features.max_features' must be a positive integer or null")
    if ft["header_weight"] is not None and not 0.0 < ft["header_weight"] < 1.0:
        raise ConfigError("config key 'features.header_weight' must be between 0 and 1 (exclusive) or null")
    if not config["model"]["units"]:
        raise ConfigError("config key 'model.units' must name at least one hidden layer")
