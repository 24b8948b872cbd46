"""Configuration: the schema with its defaults, YAML loading and ``--set`` overrides.

The schema below is the single place every config key is defined. Its default
values are the best settings we measured; ``configs/default.yaml`` spells the
same values out, and a test keeps the two equal.
"""

from __future__ import annotations

import copy
import os
import re
import reprlib
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from .errors import ConfigError

GB = 1_000_000_000
MAX_CONFIG_BYTES = 1_000_000  # a config file is a few hundred bytes; anything this large is a mistake
MAX_WEIGHTS = 2**28  # the network's weights: 1 GiB as float32, which training holds about four times over


@dataclass(frozen=True)
class Range:
    """The numbers a key takes: ``low`` to ``high``, each end included unless marked open."""

    low: float
    high: float
    open_low: bool = False
    open_high: bool = False

    def __contains__(self, value) -> bool:
        above = value > self.low if self.open_low else value >= self.low
        below = value < self.high if self.open_high else value <= self.high
        return bool(above and below)  # NaN compares false either way: never in range

    def __str__(self) -> str:
        return f"{'(' if self.open_low else '['}{_number(self.low)}, {_number(self.high)}{')' if self.open_high else ']'}"


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class Text:
    """A string key naming a file or folder: 1 to ``max_chars`` characters, no NUL."""

    max_chars: int = 4096


class Key(NamedTuple):
    """One config key: the types it accepts (``None`` in types: nullable), its default, and what it allows:
    a Range of numbers, a tuple of choices, Text for a path, or None for a bool; for a list, the Range of its length, and
    ``each`` that of its items."""

    types: tuple
    default: Any
    allowed: Range | tuple | Text | None
    each: Range | None = None


_NULL = type(None)
_FRACTION_OPEN = Range(0.0, 1.0, open_low=True, open_high=True)

# Every config key, with its type, default and allowed values. The caps on sizes keep a config (or a
# bundle's config.json) from making spamclf allocate without bound.
_SCHEMA: dict[str, dict[str, Key]] = {
    "extract": {
        "headers": Key((bool,), True, None),
        "max_bytes": Key((int,), 10_000_000, Range(1, GB)),
        "max_parts": Key((int,), 256, Range(1, 100_000)),
        "max_depth": Key((int,), 16, Range(1, 100)),  # MIME parsing recurses once per level
        "max_chars": Key((int,), 200_000, Range(1, 10_000_000)),
    },
    "features": {
        "max_features": Key((int, _NULL), 20_000, Range(1, 1_000_000)),
        "ngram_max": Key((int,), 1, Range(1, 5)),  # each message yields ngram_max times its words as terms
        "min_df": Key((int,), 2, Range(1, GB)),
        "max_df": Key((float,), 1.0, Range(0.0, 1.0, open_low=True)),
        "sublinear_tf": Key((bool,), True, None),
        "lowercase": Key((bool,), True, None),
        "header_weight": Key((float, _NULL), 0.5, _FRACTION_OPEN),
    },
    "model": {
        "units": Key((list,), [512, 256], Range(1, 16), each=Range(1, 65_536)),
        "dropout": Key((float,), 0.0, Range(0.0, 1.0, open_high=True)),
        "l2": Key((float,), 0.0, Range(0.0, 1.0)),
    },
    "train": {
        "seed": Key((int,), 42, Range(0, 2**32 - 1)),  # what NumPy's seeding takes
        "epochs": Key((int,), 5, Range(1, 10_000)),
        "batch_size": Key((int,), 256, Range(1, 1_000_000)),
        "min_steps_per_epoch": Key((int,), 10, Range(1, 1_000_000)),
        "learning_rate": Key((float,), 0.001, Range(0.0, 1.0, open_low=True)),
        "validation_split": Key((float,), 0.2, _FRACTION_OPEN),
        "early_stopping": Key((bool,), True, None),
        "patience": Key((int,), 2, Range(0, 10_000)),
        "class_weight": Key((str,), "none", ("none", "balanced")),
        "target_fpr": Key((float, _NULL), 0.005, Range(0.0, 1.0, open_high=True)),
        "min_threshold": Key((float,), 0.5, Range(0.0, 1.0)),
        "tensorboard_dir": Key((str, _NULL), None, Text()),  # a Keras TensorBoard callback writes here
        "csv_log": Key((str, _NULL), None, Text()),  # a Keras CSVLogger writes each epoch's metrics here
    },
    # Online learning (``learn``, ``clf.learn``): see docs/learning.md
    "learn": {
        "steps": Key((int,), 1, Range(1, 100)),  # gradient steps per learn call
        "replay": Key((int,), 32, Range(0, 4096)),  # stored examples replayed in each step, half of each class
        "margin": Key((float,), 0.05, Range(0.0, 1.0)),  # no step for a message already scored this close to its label
        "learning_rate": Key((float,), 0.001, Range(0.0, 1.0, open_low=True)),  # Adam's, for online steps
        "first_refit": Key((int,), 64, Range(4, GB)),  # learned messages at the first refit from the store
        "refit_growth": Key((float,), 2.0, Range(1.0, 100.0, open_low=True)),  # refit when the store grew by this factor
        "headroom": Key((float,), 0.2, Range(0.0, 1.0, open_high=True)),  # share of vocabulary rows a refit leaves free
        # seconds ``spamclf serve`` waits for a /v1/learn or /v1/forget to be saved; then 503 (it may still be)
    },
}


def defaults() -> dict[str, dict[str, Any]]:
    """A fresh copy of the default configuration."""
    return {sec: {k: copy.deepcopy(spec.default) for k, spec in keys.items()} for sec, keys in _SCHEMA.items()}


_EXPONENT_FLOAT = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+")
_SHOWN = reprlib.Repr()  # values in messages kept short: a YAML alias bomb's repr would never end
_SHOWN.maxlevel, _SHOWN.maxlist, _SHOWN.maxdict, _SHOWN.maxstring, _SHOWN.maxother = 2, 4, 4, 40, 40


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check(section: str, key: str, value: Any) -> Any:
    """``value`` checked against the schema for ``section.key`` (an int made a float where the key
    is a float); ConfigError naming the key and what it allows otherwise."""
    name = f"{section}.{key}"
    if section not in _SCHEMA:
        raise ConfigError(f"unknown config section '{section}' (in key '{name}'); known: {', '.join(_SCHEMA)}")
    if key not in _SCHEMA[section]:
        known = ", ".join(f"{section}.{k}" for k in _SCHEMA[section])
        raise ConfigError(f"unknown config key '{name}'; known keys in '{section}': {known}")
    types, _, allowed, each = _SCHEMA[section][key]
    # YAML reads 1 as int; a float key accepts it. bool is an int in Python, but never a number here.
    if float in types and _is_int(value):
        value = float(value)
    # YAML 1.1 (PyYAML) reads 1e-5 as a string: its floats need a dot (1.0e-5). Take the number.
    if float in types and isinstance(value, str) and _EXPONENT_FLOAT.fullmatch(value.strip()):
        value = float(value)
    ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
    if not ok:
        wanted = " or ".join("null" if t is _NULL else t.__name__ for t in types)
        raise ConfigError(f"config key '{name}' must be {wanted}, got {_SHOWN.repr(value)}")
    if value is None:
        return value
    null = " or null" if _NULL in types else ""
    if isinstance(allowed, Text) and not (0 < len(value) <= allowed.max_chars and "\0" not in value):
        raise ConfigError(f"config key '{name}' must be a path of 1 to {allowed.max_chars} characters{null}, got {_SHOWN.repr(value)}")
    if isinstance(allowed, tuple) and value not in allowed:
        raise ConfigError(f"config key '{name}' must be one of {', '.join(allowed)}, got {_SHOWN.repr(value)}")
    if each is not None and not (len(value) in allowed and all(_is_int(v) and v in each for v in value)):
        raise ConfigError(
            f"config key '{name}' must be a list of {allowed.low} to {allowed.high} integers, each in {each}, got {_SHOWN.repr(value)}"
        )
    if isinstance(allowed, Range) and each is None and value not in allowed:
        kind = "an integer" if int in types else "a number"
        raise ConfigError(f"config key '{name}' must be {kind} in {allowed}{null}, got {_SHOWN.repr(value)}")
    return value


def check_section(section: str, values: Any, origin: str) -> dict:
    """The keys of one config section (some or all of them) checked against the schema, as a new dict.

    For settings stored apart from a config, such as a bundle's vocabulary settings; ``origin`` (a file
    name) starts every error message.
    """
    if section not in _SCHEMA:
        raise ConfigError(f"{origin}: unknown config section '{section}'; known: {', '.join(_SCHEMA)}")
    if not isinstance(values, dict):
        raise ConfigError(f"{origin}: config section '{section}' must be a mapping")
    try:
        return {key: _check(section, key, value) for key, value in values.items()}
    except ConfigError as exc:
        raise ConfigError(f"{origin}: {exc}") from None


def _merge(base: dict, overrides: Any, origin: str) -> dict:
    if not isinstance(overrides, dict):
        raise ConfigError(f"{origin}: a config must be a mapping of sections, got {type(overrides).__name__}")
    for section, keys in overrides.items():
        checked = check_section(section, keys, origin)
        base[section].update(checked)
    return base


def parse_override(text: str) -> tuple[str, str, Any]:
    """Split ``section.key=value`` into its parts; the value is read as YAML (``3``, ``0.1``, ``true``, ``[64]``)."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like section.key=value")
    dotted, raw = text.split("=", 1)
    parts = dotted.strip().split(".")
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"override key '{dotted.strip()}' must look like section.key")
    value = _yaml_value(raw, f"the value of override '{text}'") if raw.strip() else None
    return parts[0], parts[1], value


def load_config(config: str | Path | dict | None = None, overrides: list[str] | tuple[str, ...] = ()) -> dict:
    """The resolved configuration: defaults, then the YAML file (or a dict of sections), then each
    ``section.key=value``, every value checked against the schema."""
    resolved = defaults()
    if isinstance(config, dict):
        _merge(resolved, copy.deepcopy(config), "config")
    elif config is not None:
        _merge(resolved, _read_yaml(Path(config)) or {}, str(config))  # an empty file: the defaults
    for text in overrides:
        section, key, value = parse_override(text)
        resolved[section][key] = _check(section, key, value)
    validate(resolved)
    return resolved


def _read_yaml(path: Path) -> Any:
    """A config file's YAML, read with a size bound; anything but a regular file is refused, never waited on."""
    try:
        # O_NONBLOCK: opening a FIFO does not wait for a writer; a regular file reads as usual.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with open(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise ConfigError(f"config file {path} is not a regular file")
            data = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"config file {path} is larger than {MAX_CONFIG_BYTES} bytes; a config is a few lines")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start})") from None
    return _yaml_value(text, f"config file {path}")


def _yaml_value(text: str, what: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or exc.__class__.__name__
        raise ConfigError(f"{what} is not valid YAML{where}: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{what} is not a config: nested too deeply") from None


def validate(config: dict) -> None:
    """Checks across keys; each key's own range is in the schema."""
    ft = config["features"]
    if ft["max_features"] is not None:
        check_network_size(ft["max_features"], config["model"]["units"], "features.max_features")


def network_weights(n_inputs: int, units: list[int]) -> int:
    """How many weights (kernels and biases) the network has for ``n_inputs`` features and hidden ``units``."""
    widths = [n_inputs, *units, 1]
    return sum((a + 1) * b for a, b in zip(widths, widths[1:]))


def check_network_size(n_inputs: int, units: list[int], inputs_from: str) -> None:
    """Refuse a network over MAX_WEIGHTS weights: ``inputs_from`` names where ``n_inputs`` came from."""
    n = network_weights(n_inputs, units)
    if n > MAX_WEIGHTS:
        raise ConfigError(
            f"{inputs_from} ({n_inputs}) and model.units ({_SHOWN.repr(units)}) make a network of {n} weights; "
            f"at most {MAX_WEIGHTS} (1 GiB as float32): lower one of them"
        )
