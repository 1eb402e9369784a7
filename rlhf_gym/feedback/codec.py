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
import io
import json
import math
import typing
from functools import cache
from typing import Any

import numpy as np

from rlhf_gym.types import FEEDBACK_RECORDS, Feedback


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
    loaded = np.load(io.BytesIO(blob), allow_pickle=False)
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise ValueError("the arrays blob is not an .npz archive")
    with loaded:
        arrays = {name: loaded[name] for name in loaded.files}
    record = _decode(json.loads(record_json), arrays, kind)
    if type(record) is not cls:
        raise ValueError(f"a {kind!r} row holds a {type(record).__name__}; expected {cls.__name__}")
    return typing.cast(Feedback, record)


def _decode(node: Any, arrays: dict[str, np.ndarray], where: str) -> Any:
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if not isinstance(node, dict) or not node:
        raise ValueError(f"{where}: unexpected JSON node {node!r}")
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
        return cls(**{k: _decode(v, arrays, f"{where}.{k}") for k, v in fields.items()})
    if tag == "float":
        if node["float"] not in ("nan", "inf", "-inf"):
            raise ValueError(f"{where}: bad float {node['float']!r}; expected 'nan', 'inf' or '-inf'")
        return float(node["float"])
    if tag in ("tuple", "list"):
        items = [_decode(v, arrays, f"{where}[{i}]") for i, v in enumerate(node[tag])]
        return tuple(items) if tag == "tuple" else items
    if tag == "dict":
        return {k: _decode(v, arrays, f"{where}[{k!r}]") for k, v in node["dict"].items()}
    raise ValueError(f"{where}: unknown node tag {tag!r}")


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
