"""The portable encoding of feedback records: a JSON tree plus one ``.npz`` archive, no pickle.

``encode_record`` turns any record of ``FEEDBACK_RECORDS`` into ``(json, npz_bytes)`` and
``decode_record`` rebuilds it; ``rlhf_gym.feedback.store`` keeps the two in a row of its ``feedback``
table. Arrays are read back with ``allow_pickle=False``, so a record received from someone
else is safe to decode.

The ``record`` JSON is a tree of nodes. Plain JSON strings, ints, bools and ``null`` stand for
themselves, and a finite float is a JSON number. Every other node is an object tagged by its
first key:

- ``{"dataclass": "Segment", "fields": {"obs": <node>, ...}}``: a dataclass, by class name;
- ``{"array": "a0"}``: the array stored under the name ``a0`` in the ``.npz`` blob (dtype
  and shape exactly as saved; an array used twice in one record is stored once);
- ``{"float": "nan"}``: a non-finite float (``"nan"``, ``"inf"`` or ``"-inf"``);
- ``{"tuple": [<node>, ...]}``, ``{"list": [<node>, ...]}``, ``{"dict": {"key": <node>}}``.

The root is the record itself, e.g. a ``Comparison``::

    {"dataclass": "Comparison", "fields": {
        "query": {"dataclass": "Query", "fields": {
            "first": {"dataclass": "Segment", "fields": {"obs": {"array": "a0"}, ...}},
            "second": ...}},
        "label": 1.0, "probability": {"float": "nan"}, "teacher": "alice"}}

Decoding finds the classes among the record types of ``FEEDBACK_RECORDS`` and the dataclasses
named in their field types, so a new record type needs no change here. Numpy scalars are
stored as Python scalars.

Decoding is safe with a blob from a stranger (``load_npz``): no pickle, and every array's npy
header (shape and dtype) is checked against ``MAX_ARRAY_BYTES`` and ``MAX_RECORD_BYTES`` before
any of its data is read, so a small file that claims or expands into a huge array is an error, not
an allocation. A JSON tree deeper than ``MAX_DEPTH`` is an error too. ``content_hash`` names a
stored row by its content, which makes an import idempotent (``rlhf_gym.feedback.formats``).

Example:
    >>> import numpy as np
    >>> from rlhf_gym.types import Comparison, Query, Segment
    >>> seg = Segment(np.zeros((2, 1)), np.zeros(2, int), np.ones(2), np.zeros(2, bool))
    >>> text, blob = encode_record(Comparison(Query(seg, seg), 1.0, teacher="ada"))
    >>> text[:42]
    '{"dataclass":"Comparison","fields":{"query'
    >>> back = decode_record("comparison", text, blob)
    >>> back.label, back.teacher, back.query.first.obs.shape
    (1.0, 'ada', (2, 1))
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import typing
import zipfile
import zlib
from functools import cache
from typing import Any

import numpy as np

from rlhf_gym.types import FEEDBACK_RECORDS, Feedback

MAX_ARRAY_BYTES = 256 * 2**20
"""The most bytes one decoded array may hold, 256 MiB: 2,500 Atari frames (84x84x4 bytes), far more
than any segment or episode of a preset task. Issue 19: a 2 MB file expanded into a 1.6 GB array."""

MAX_RECORD_BYTES = 512 * 2**20
"""The most bytes all the arrays of one record (or pending item) may hold together, 512 MiB."""

MAX_EXPANSION = 100
"""The arrays of a blob may hold at most this many times its size, plus 64 KiB: ``numpy.savez``
stores arrays uncompressed, so only a zip bomb expands more (many records of one file may each
stay under ``MAX_RECORD_BYTES``)."""

MAX_ARRAYS = 65_536
"""The most arrays one blob may hold (a demonstration of a 1,000-step episode cut into 1-step
segments holds about 8,000)."""

MAX_DEPTH = 64
"""The deepest a record's JSON tree may nest (records nest about 5 deep)."""

_NPY_ERRORS = (
    ValueError,
    TypeError,
    SyntaxError,
    RecursionError,
    MemoryError,
    RuntimeError,
    NotImplementedError,
    OSError,
    EOFError,
    zipfile.BadZipFile,
    zlib.error,
)


def encode_record(record: Feedback) -> tuple[str, bytes]:
    """The record as ``(json, npz_bytes)``, in the portable encoding of the module docstring."""
    arrays: dict[str, np.ndarray] = {}
    seen: dict[int, str] = {}
    tree = _encode(record, arrays, seen, type(record).__name__)
    buf = io.BytesIO()
    np.savez(buf, allow_pickle=False, **arrays)
    return json.dumps(tree, allow_nan=False, separators=(",", ":")), buf.getvalue()


def _encode(value: Any, arrays: dict[str, np.ndarray], seen: dict[int, str], where: str) -> Any:
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise ValueError(
                f"{where}: cannot store an array of dtype {value.dtype} without pickle; "
                "expected a numeric, bool or string array"
            )
        if id(value) not in seen:
            seen[id(value)] = name = f"a{len(arrays)}"
            arrays[name] = value
        return {"array": seen[id(value)]}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {
            f.name: _encode(getattr(value, f.name), arrays, seen, f"{where}.{f.name}")
            for f in dataclasses.fields(value)
            if f.init
        }
        return {"dataclass": type(value).__name__, "fields": fields}
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.generic) and not isinstance(value, np.ndarray):
        value = value.item()
    if isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"float": repr(value)}
    if isinstance(value, (tuple, list)):
        items = [_encode(v, arrays, seen, f"{where}[{i}]") for i, v in enumerate(value)]
        return {"tuple" if isinstance(value, tuple) else "list": items}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"dict": {k: _encode(v, arrays, seen, f"{where}[{k!r}]") for k, v in value.items()}}
    raise TypeError(
        f"{where}: cannot store a value of type {type(value).__name__}; expected a numpy array, "
        "dataclass, str, int, float, bool, None, or a tuple, list or str-keyed dict of these"
    )


def decode_record(kind: str, record_json: str, blob: bytes) -> Feedback:
    """Rebuild a record from ``encode_record``'s output; raises ``ValueError`` if malformed."""
    cls = FEEDBACK_RECORDS.get(kind)
    if cls is None:
        raise ValueError(f"unknown record kind {kind!r}; expected one of {sorted(FEEDBACK_RECORDS)}")
    arrays = load_npz(blob)
    record = _decode(json.loads(record_json), arrays, kind)
    if type(record) is not cls:
        raise ValueError(f"a {kind!r} row holds a {type(record).__name__}; expected {cls.__name__}")
    return typing.cast(Feedback, record)


def _decode(node: Any, arrays: dict[str, np.ndarray], where: str, depth: int = 0) -> Any:
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if not isinstance(node, dict) or not node:
        shown = repr(node)
        raise ValueError(f"{where}: unexpected JSON node {shown if len(shown) <= 60 else shown[:57] + '...'}")
    if depth > MAX_DEPTH:
        raise ValueError(f"{where}: the record nests more than {MAX_DEPTH} deep; expected a record tree")
    depth += 1
    tag = next(iter(node))
    if tag == "array":
        if node["array"] not in arrays:
            raise ValueError(f"{where}: array {node['array']!r} is missing from the arrays blob")
        return arrays[node["array"]]
    if tag == "dataclass":
        cls = _dataclasses(tuple(FEEDBACK_RECORDS.values())).get(node["dataclass"])
        if cls is None:
            raise ValueError(f"{where}: unknown dataclass {node['dataclass']!r}")
        fields = node["fields"]
        return cls(**{k: _decode(v, arrays, f"{where}.{k}", depth) for k, v in fields.items()})
    if tag == "float":
        if node["float"] not in ("nan", "inf", "-inf"):
            raise ValueError(f"{where}: bad float {node['float']!r}; expected 'nan', 'inf' or '-inf'")
        return float(node["float"])
    if tag in ("tuple", "list"):
        items = [_decode(v, arrays, f"{where}[{i}]", depth) for i, v in enumerate(node[tag])]
        return tuple(items) if tag == "tuple" else items
    if tag == "dict":
        return {k: _decode(v, arrays, f"{where}[{k!r}]", depth) for k, v in node["dict"].items()}
    raise ValueError(f"{where}: unknown node tag {tag!r}")


def load_npz(blob: bytes) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` archive by name, read without pickle and within the limits above.

    Each member's npy header is read first and its shape and dtype checked, so no memory is
    allocated for an array that is too large, whatever the header or the compression claims.

    Raises:
        ValueError: not an ``.npz`` archive of plain arrays (bool, numbers or strings), or over a
            limit; the message names the array and the limit.
    """
    try:
        return _load_npz(blob)
    except ValueError:
        raise
    except _NPY_ERRORS as e:
        raise ValueError(
            f"the arrays blob is not a readable .npz archive ({type(e).__name__}: {e})"
        ) from None


def _load_npz(blob: bytes) -> dict[str, np.ndarray]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(blob))
    except zipfile.BadZipFile as e:
        raise ValueError(f"the arrays blob is not an .npz archive ({e})") from None
    budget = min(MAX_RECORD_BYTES, MAX_EXPANSION * len(blob) + 2**16)
    arrays: dict[str, np.ndarray] = {}
    total = 0
    with archive:
        members = archive.infolist()
        if len(members) > MAX_ARRAYS:
            raise ValueError(f"the arrays blob holds {len(members)} arrays; the limit is {MAX_ARRAYS}")
        for member in members:
            name = member.filename[:-4]
            if not member.filename.endswith(".npy") or not name or name in arrays:
                raise ValueError(
                    f"the arrays blob has a member {member.filename!r}; expected distinct NAME.npy arrays"
                )
            with archive.open(member) as f:
                shape, fortran, dtype = _npy_header(f, name)
                count = math.prod(shape)
                nbytes = count * max(dtype.itemsize, 1)
                if nbytes > MAX_ARRAY_BYTES:
                    raise ValueError(
                        f"array {name!r} claims shape {shape} of {dtype} ({_size(nbytes)}); the limit is "
                        f"{_size(MAX_ARRAY_BYTES)} per array"
                    )
                total += nbytes
                if total > budget:
                    raise ValueError(
                        f"the arrays of a {_size(len(blob))} blob claim {_size(total)} or more; the limit is "
                        f"{_size(budget)} ({MAX_EXPANSION}x the blob, at most {_size(MAX_RECORD_BYTES)})"
                    )
                array = np.empty(count, dtype)
                view = array.view(np.uint8) if array.nbytes else np.empty(0, np.uint8)
                got = 0
                while got < array.nbytes and (chunk := f.read(min(array.nbytes - got, 2**20))):
                    view[got : got + len(chunk)] = np.frombuffer(chunk, np.uint8)
                    got += len(chunk)
            if got != array.nbytes:
                raise ValueError(
                    f"array {name!r} holds {got} bytes of data; its header claims {array.nbytes}"
                )
            arrays[name] = array.reshape(shape, order="F" if fortran else "C")
    return arrays


def _npy_header(f: Any, name: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """``(shape, fortran_order, dtype)`` of an npy stream, read from its header alone."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(f)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"npy format version {version}; expected 1.0 or 2.0")
        read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, fortran, dtype = read(f)
    except _NPY_ERRORS as e:
        raise ValueError(f"array {name!r} is not an npy array ({type(e).__name__}: {e})") from None
    if dtype.hasobject or dtype.kind not in "biufcSU" or dtype.names is not None or dtype.subdtype:
        raise ValueError(
            f"array {name!r} has dtype {dtype}; expected bool, numbers or strings (never objects, which "
            "need pickle)"
        )
    if not all(isinstance(n, int) and n >= 0 for n in shape):
        raise ValueError(f"array {name!r} claims shape {shape}; expected sizes >= 0")
    return tuple(shape), bool(fortran), dtype


def _size(n: float) -> str:
    if n < 1024:
        return f"{n:.0f} bytes"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        n /= 1024
        if n < 1024 or unit == "TiB":
            break
    return f"{n:.1f} {unit}"


def content_hash(row: dict[str, Any], record_json: str, blob: bytes) -> str:
    """The sha256 (hex) of a stored row's content: its ``kind``, ``created``, ``teacher``,
    ``effort_seconds`` and ``info``, the record's JSON tree, and the name, dtype, shape and values
    of each of its arrays (not the bytes of the archive, which hold zip timestamps).

    Two rows have the same hash when they hold the same label given at the same time, e.g. one
    imported twice; the same answer given again later differs in ``created``.
    """
    head = [row["kind"], row["created"], row["teacher"], row["effort_seconds"], row["info"]]
    text = json.dumps(
        [*head, json.loads(record_json)], sort_keys=True, allow_nan=False, separators=(",", ":")
    )
    digest = hashlib.sha256(text.encode("utf-8"))
    for name, array in sorted(load_npz(blob).items()):
        digest.update(json.dumps([name, array.dtype.str, list(array.shape)]).encode("utf-8"))
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


@cache
def _dataclasses(records: tuple[type, ...]) -> dict[str, type]:
    """The record classes and every dataclass reachable through their field types, by name."""
    found: dict[str, type] = {}

    def visit(tp: Any) -> None:
        for arg in typing.get_args(tp):
            visit(arg)
        if isinstance(tp, type) and dataclasses.is_dataclass(tp) and tp.__name__ not in found:
            found[tp.__name__] = tp
            for hint in typing.get_type_hints(tp).values():
                visit(hint)

    for cls in records:
        visit(cls)
    return found
