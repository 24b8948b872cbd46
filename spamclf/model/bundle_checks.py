"""What a ``.keras`` file and an ``.npz`` file may hold, checked from their bytes before anything is deserialised.

Keras' own ``safe_mode`` refuses Lambda layers, but it still imports and builds
whatever classes a config names. We check first, with ``zipfile`` and ``json``
only: the archive holds exactly ``config.json``, ``metadata.json`` and
``model.weights.h5``, and every object the config names is one of the few
classes our network is made of. NPZ members are checked from their ``.npy``
headers: plain float arrays, never object arrays (which would need pickle).

Nothing a check lets through can make loading allocate more than the file's own
bytes: every archive member must be stored, not compressed (as NumPy and Keras
write them), and an array's header must declare exactly the bytes its member holds.
"""

from __future__ import annotations

import io
import json
import math
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

KERAS_MEMBERS = frozenset({"config.json", "metadata.json", "model.weights.h5"})
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_CONFIG_BYTES = 4 << 20

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


@dataclass(frozen=True)
class ArrayFacts:
    """What an ``.npy`` header declares, and where in the ``.npz`` the array's bytes start."""

    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool
    offset: int


def _open_zip(data: bytes, name: str, what: str) -> zipfile.ZipFile:
    """The archive in ``data``, refused unless every member is stored whole inside it, uncompressed."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UnsafeFile(f"{name} is not a complete {what} archive (truncated or corrupt: {exc})") from None
    for info in archive.infolist():
        # A truncated or spliced archive can keep a valid central directory that points outside the
        # file (zipfile shifts offsets by the bytes it thinks were prepended, so they go negative).
        if info.header_offset < 0 or info.header_offset + info.compress_size > len(data):
            archive.close()
            raise UnsafeFile(f"{name} is truncated: member {info.filename} runs past the end of the file")
        # Compressed, a 1 MB member can inflate to gigabytes: NumPy and Keras store members as they are.
        if info.compress_type != zipfile.ZIP_STORED or info.compress_size != info.file_size:
            archive.close()
            raise UnsafeFile(f"{name}: member {info.filename} is compressed; a bundle's archives store their members as written")
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


def check_keras_bytes(data: bytes, name: str = "model.keras") -> KerasFacts:
    """Refuse a ``.keras`` archive that is truncated, compressed, holds extra members, or names anything but our layers."""
    with _open_zip(data, name, "Keras") as archive:
        names = [info.filename for info in archive.infolist()]
        extra = sorted(set(names) - KERAS_MEMBERS)
        if extra:
            raise UnsafeFile(f"{name} holds unexpected member {extra[0]!r}; a spamclf model holds only {', '.join(sorted(KERAS_MEMBERS))}")
        missing = sorted(KERAS_MEMBERS - set(names))
        if missing:
            raise UnsafeFile(f"{name} is missing member {missing[0]!r}")
        if len(names) != len(set(names)):
            raise UnsafeFile(f"{name} holds a member twice")
        if archive.getinfo("config.json").file_size > MAX_CONFIG_BYTES:
            raise UnsafeFile(f"{name}: config.json is too large for a spamclf network")
        try:
            config = json.loads(archive.read("config.json"))
            json.loads(archive.read("metadata.json"))
            with archive.open("model.weights.h5") as fh:
                head = fh.read(len(HDF5_SIGNATURE))
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise UnsafeFile(f"{name} is corrupt ({exc.__class__.__name__}: {exc})") from None
    if head != HDF5_SIGNATURE:
        raise UnsafeFile(f"{name}: model.weights.h5 is not an HDF5 file")
    if not isinstance(config, dict) or config.get("class_name") != "Sequential":
        raise UnsafeFile(f"{name} does not hold a Sequential model")
    facts: dict = {"n_inputs": None, "units": []}
    _check_config_node(config, name, facts)
    return KerasFacts(facts["n_inputs"], tuple(facts["units"]))


def check_keras_file(path: str | Path) -> KerasFacts:
    """``check_keras_bytes`` of the file at ``path``."""
    path = Path(path)
    return check_keras_bytes(path.read_bytes(), path.name)


def check_keras_weights(data: bytes, name: str = "model.keras") -> None:
    """Refuse a checked ``.keras`` archive whose HDF5 weights declare more bytes than they hold.

    HDF5 can declare a dataset of any size over chunks that were never written, or compressed
    ones: Keras would allocate all of it. Our model's datasets are plain numbers stored in full.
    (Imports h5py: for the paths that load Keras anyway.)
    """
    import h5py

    with _open_zip(data, name, "Keras") as archive:
        h5_bytes = archive.read("model.weights.h5")
    declared = 0
    problems: list[str] = []

    def visit(key, obj) -> None:
        nonlocal declared
        if isinstance(obj, h5py.Dataset):
            if obj.dtype.kind not in "fiub" or obj.shape is None:
                problems.append(f"dataset {key} holds {obj.dtype}, not numbers")
            else:
                declared += math.prod(obj.shape) * obj.dtype.itemsize

    try:
        with h5py.File(io.BytesIO(h5_bytes), "r") as h5:
            h5.visititems(visit)
    except (OSError, ValueError, RuntimeError) as exc:
        raise UnsafeFile(f"{name}: model.weights.h5 is not a readable HDF5 file ({exc.__class__.__name__})") from None
    if problems:
        raise UnsafeFile(f"{name}: model.weights.h5 {problems[0]}")
    if declared > len(h5_bytes):
        raise UnsafeFile(f"{name}: model.weights.h5 declares {declared} bytes of weights in a file of {len(h5_bytes)}; refusing it")


_LOCAL_HEADER = struct.Struct("<4s22xHH")  # a zip member's local header: signature ... name and extra lengths
_MAX_NPY_HEADER = 1 << 16  # NumPy itself refuses headers over 10,000 bytes


def _member_start(data: bytes, info: zipfile.ZipInfo, name: str) -> int:
    """Where the stored bytes of ``info`` start in ``data``, from its local header."""
    try:
        signature, name_len, extra_len = _LOCAL_HEADER.unpack_from(data, info.header_offset)
    except struct.error:
        signature = None
    start = info.header_offset + _LOCAL_HEADER.size + name_len + extra_len if signature == b"PK\x03\x04" else -1
    local_name = data[info.header_offset + _LOCAL_HEADER.size : info.header_offset + _LOCAL_HEADER.size + name_len] if start > 0 else b""
    if start < 0 or local_name.decode("utf-8", "replace") != info.filename or start + info.file_size > len(data):
        raise UnsafeFile(f"{name}: member {info.filename!r} has no valid local header or runs past the end of the file")
    return start


def _array_header(head: bytes) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    fh = io.BytesIO(head)
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(fh)
    elif version == (2, 0):
        shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(fh)
    else:
        raise ValueError(f"unsupported .npy format {version}")
    return tuple(shape), fortran_order, dtype, fh.tell()


def check_npz_bytes(data: bytes, name: str, allowed_names=None, kinds: str = "f") -> dict[str, ArrayFacts]:
    """The arrays in an ``.npz`` as their headers declare them; refuse object arrays, unknown members,
    and a header that declares more (or fewer) bytes than its member holds.

    ``allowed_names``: a predicate on member names (without ``.npy``); None allows any name.
    ``kinds``: the dtype kinds allowed (``f`` float, ``i`` signed integer), each at most 8 bytes.
    """
    arrays: dict[str, ArrayFacts] = {}
    with _open_zip(data, name, "NPZ") as archive:
        infos = archive.infolist()
    for info in infos:
        member = info.filename
        if not member.endswith(".npy"):
            raise UnsafeFile(f"{name} holds {member!r}, which is not an array")
        key = member[: -len(".npy")]
        if allowed_names is not None and not allowed_names(key):
            raise UnsafeFile(f"{name} holds unexpected array {key!r}")
        if key in arrays:
            raise UnsafeFile(f"{name} holds array {key!r} twice")
        start = _member_start(data, info, name)
        try:
            shape, fortran_order, dtype, header_bytes = _array_header(data[start : start + min(info.file_size, _MAX_NPY_HEADER)])
        except (ValueError, EOFError) as exc:
            raise UnsafeFile(f"{name}: array {key!r} has no valid header ({exc})") from None
        if dtype.hasobject:
            raise UnsafeFile(f"{name}: array {key!r} holds Python objects (pickle); refusing it")
        if dtype.kind not in kinds or dtype.itemsize > 8:
            wanted = "float16, float32 or float64" if kinds == "f" else "a number of at most 8 bytes"
            raise UnsafeFile(f"{name}: array {key!r} has dtype {dtype}, not {wanted}")
        declared = math.prod(shape) * dtype.itemsize
        if header_bytes + declared != info.file_size:
            raise UnsafeFile(
                f"{name}: array {key!r} declares shape {shape} ({declared} bytes) but holds {info.file_size - header_bytes} bytes"
            )
        arrays[key] = ArrayFacts(shape, dtype, fortran_order, start + header_bytes)
    return arrays


def npz_arrays(data: bytes, arrays: dict[str, ArrayFacts]) -> dict[str, np.ndarray]:
    """The arrays ``check_npz_bytes`` found in ``data``, as read-only views of those bytes: nothing is
    copied or allocated beyond what the file holds (the manifest's SHA-256 stands for zip's CRC)."""
    return {
        key: np.frombuffer(data, facts.dtype, math.prod(facts.shape), facts.offset).reshape(facts.shape, order="F" if facts.fortran_order else "C")
        for key, facts in arrays.items()
    }


def check_json_bytes(data: bytes, name: str) -> dict:
    """The JSON object in ``data``; anything that is not a JSON object is refused."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise UnsafeFile(f"{name} is not JSON ({exc.__class__.__name__})") from None
    if not isinstance(doc, dict):
        raise UnsafeFile(f"{name} does not hold a JSON object")
    return doc


def check_png_bytes(data: bytes, name: str) -> None:
    if not data.startswith(PNG_SIGNATURE):
        raise UnsafeFile(f"{name} is not a PNG image")
