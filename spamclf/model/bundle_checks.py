"""What a ``.keras`` file and an ``.npz`` file may hold, checked from their bytes before anything is deserialised.

Keras' own ``safe_mode`` refuses Lambda layers, but it still imports and builds
whatever classes a config names. We check first, with ``zipfile`` and ``json``
only: the archive holds exactly ``config.json``, ``metadata.json`` and
``model.weights.h5``, and every object the config names is one of the few
classes our network is made of. NPZ members are checked from their ``.npy``
headers: plain float arrays, never object arrays (which would need pickle).
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

KERAS_MEMBERS = frozenset({"config.json", "metadata.json", "model.weights.h5"})
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_CONFIG_BYTES = 4 << 20
MAX_UNPACKED_BYTES = 8 << 30  # a zip bomb is refused before a byte of it is inflated

# Every (module, class) the config of our Sequential Dense network may name. Anything else --
# Lambda, a custom layer, a registered function, an unknown initializer -- is refused.
ALLOWED_CLASSES = {
    "keras": {"Sequential", "DTypePolicy"},
    "keras.models": {"Sequential"},
    "keras.layers": {"InputLayer", "Dense", "Dropout"},
    "keras.initializers": {"GlorotUniform", "Zeros"},
    "keras.regularizers": {"L2"},
    "keras.optimizers": {"Adam"},
}
ALLOWED_ACTIVATIONS = {"relu", "sigmoid", "linear", None}


class UnsafeFile(ValueError):
    """A file that does not have the shape a bundle file must have; the message names what is wrong."""


@dataclass(frozen=True)
class KerasFacts:
    """What the checked config says about the network: its input width and Dense widths."""

    n_inputs: int | None
    dense_units: tuple[int, ...]


def _open_zip(path: Path, what: str) -> zipfile.ZipFile:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UnsafeFile(f"{path.name} is not a complete {what} archive (truncated or corrupt: {exc})") from None
    size = path.stat().st_size
    total = 0
    for info in archive.infolist():
        # A truncated or spliced archive can keep a valid central directory that points outside the
        # file (zipfile shifts offsets by the bytes it thinks were prepended, so they go negative).
        if info.header_offset < 0 or info.header_offset + info.compress_size > size:
            archive.close()
            raise UnsafeFile(f"{path.name} is truncated: member {info.filename} runs past the end of the file")
        total += info.file_size
    if total > MAX_UNPACKED_BYTES:
        archive.close()
        raise UnsafeFile(f"{path.name} would unpack to {total} bytes; refusing it")
    return archive


def _check_config_node(node, where: str, facts: dict) -> None:
    if isinstance(node, list):
        for item in node:
            _check_config_node(item, where, facts)
        return
    if not isinstance(node, dict):
        return
    if "class_name" in node:
        module, name = node.get("module"), node.get("class_name")
        if name == "Lambda":
            raise UnsafeFile(f"{where} contains a Lambda layer (arbitrary code); refusing it")
        if name not in ALLOWED_CLASSES.get(module, ()):
            raise UnsafeFile(f"{where} names class {name!r} from module {module!r}, which is not part of a spamclf network")
        if node.get("registered_name") not in (None, name):
            raise UnsafeFile(f"{where} names a custom registered object {node.get('registered_name')!r}")
        config = node.get("config")
        if name == "InputLayer" and isinstance(config, dict):
            shape = config.get("batch_shape") or config.get("batch_input_shape")
            if isinstance(shape, list) and len(shape) == 2 and isinstance(shape[1], int):
                facts["n_inputs"] = shape[1]
        if name == "Dense" and isinstance(config, dict):
            if config.get("activation") not in ALLOWED_ACTIVATIONS:
                raise UnsafeFile(f"{where} has a Dense layer with activation {config.get('activation')!r}")
            facts["units"].append(config.get("units"))
    for key, value in node.items():
        if key == "activation" and not isinstance(value, (str, type(None))):
            raise UnsafeFile(f"{where} has a serialised activation function; refusing it")
        _check_config_node(value, where, facts)


def check_keras_file(path: str | Path) -> KerasFacts:
    """Refuse a ``.keras`` file that is truncated, holds extra members, or names anything but our layers."""
    path = Path(path)
    with _open_zip(path, "Keras") as archive:
        names = [info.filename for info in archive.infolist()]
        extra = sorted(set(names) - KERAS_MEMBERS)
        if extra:
            raise UnsafeFile(f"{path.name} holds unexpected member {extra[0]!r}; a spamclf model holds only {', '.join(sorted(KERAS_MEMBERS))}")
        missing = sorted(KERAS_MEMBERS - set(names))
        if missing:
            raise UnsafeFile(f"{path.name} is missing member {missing[0]!r}")
        if len(names) != len(set(names)):
            raise UnsafeFile(f"{path.name} holds a member twice")
        if archive.getinfo("config.json").file_size > MAX_CONFIG_BYTES:
            raise UnsafeFile(f"{path.name}: config.json is too large for a spamclf network")
        try:
            config = json.loads(archive.read("config.json"))
            json.loads(archive.read("metadata.json"))
            with archive.open("model.weights.h5") as fh:
                head = fh.read(len(HDF5_SIGNATURE))
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise UnsafeFile(f"{path.name} is corrupt ({exc.__class__.__name__}: {exc})") from None
    if head != HDF5_SIGNATURE:
        raise UnsafeFile(f"{path.name}: model.weights.h5 is not an HDF5 file")
    if not isinstance(config, dict) or config.get("class_name") != "Sequential":
        raise UnsafeFile(f"{path.name} does not hold a Sequential model")
    facts: dict = {"n_inputs": None, "units": []}
    _check_config_node(config, f"{path.name}", facts)
    return KerasFacts(facts["n_inputs"], tuple(facts["units"]))


def check_npz_file(path: str | Path, allowed_names=None) -> dict[str, tuple[int, ...]]:
    """Shapes of the arrays in an ``.npz``, read from their headers; refuse object arrays and unknown members.

    ``allowed_names``: a predicate on member names (without ``.npy``); None allows any name.
    """
    path = Path(path)
    shapes: dict[str, tuple[int, ...]] = {}
    with _open_zip(path, "NPZ") as archive:
        for info in archive.infolist():
            name = info.filename
            if not name.endswith(".npy"):
                raise UnsafeFile(f"{path.name} holds {name!r}, which is not an array")
            key = name[: -len(".npy")]
            if allowed_names is not None and not allowed_names(key):
                raise UnsafeFile(f"{path.name} holds unexpected array {key!r}")
            try:
                with archive.open(info) as fh:
                    version = np.lib.format.read_magic(fh)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
                    elif version == (2, 0):
                        shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
                    else:
                        raise ValueError(f"unsupported .npy format {version}")
            except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
                raise UnsafeFile(f"{path.name}: array {key!r} has no valid header ({exc})") from None
            if dtype.hasobject:
                raise UnsafeFile(f"{path.name}: array {key!r} holds Python objects (pickle); refusing it")
            if dtype.kind != "f":
                raise UnsafeFile(f"{path.name}: array {key!r} has dtype {dtype}, not floating point")
            shapes[key] = tuple(shape)
    return shapes


def check_json_file(path: str | Path) -> dict:
    """The JSON object in ``path``; anything that is not a JSON object is refused."""
    path = Path(path)
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise UnsafeFile(f"{path.name} is not JSON ({exc.__class__.__name__})") from None
    if not isinstance(doc, dict):
        raise UnsafeFile(f"{path.name} does not hold a JSON object")
    return doc


def check_png_file(path: str | Path) -> None:
    path = Path(path)
    with open(path, "rb") as fh:
        if fh.read(len(PNG_SIGNATURE)) != PNG_SIGNATURE:
            raise UnsafeFile(f"{path.name} is not a PNG image")
