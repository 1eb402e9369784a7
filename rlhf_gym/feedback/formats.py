"""The portable form of feedback: a JSON Lines export of a store, and reading either form.

``export_store`` writes, and ``import_store`` reads, the export of a ``FeedbackStore``
(``rlhf_gym.feedback.store``); ``read_feedback`` and ``feedback_info`` read a store or an export alike.
Nothing is pickled, so an export received from someone else is safe to read.

Export format
-------------
``export_store`` writes, and ``import_store`` reads, a portable JSON Lines file: UTF-8, one JSON
object per line. Line 1 is the header::

    {"format": "rlhf-gym feedback export", "schema_version": 1, "meta": {...}, "records": N}

with the store's ``meta`` and the number of record lines that follow (so a truncated file is
detected). Then one line per record, in insertion order::

    {"id": 1, "kind": "comparison", "created": 1718000000.0, "teacher": "ada",
     "effort_seconds": 3.1, "info": {"round": 1}, "record": {"dataclass": "Comparison", ...},
     "arrays": "UEsDBBQAAAAAAA..."}

``record`` is the codec's JSON tree as an object and ``arrays`` the base64 of the ``.npz`` blob;
the other keys are the row's columns. Pending items are not exported. An import keeps the
order, ``created``, ``teacher``, ``effort_seconds`` and ``info``; ids are renumbered.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
from pathlib import Path
from typing import Any

from rlhf_gym.feedback.codec import decode_record
from rlhf_gym.feedback.store import FeedbackStore
from rlhf_gym.feedback.store_schema import CORRUPT, FORMAT, INSERT, json_object
from rlhf_gym.types import FEEDBACK_RECORDS, Feedback

EXPORT_FORMAT = "rlhf-gym feedback export"
EXPORT_KEYS = ("id", "kind", "created", "teacher", "effort_seconds", "info", "record", "arrays")
"""The keys of every record line of an export, in the order they are written."""


def read_feedback(path: str | Path) -> tuple[dict[str, Any], list[tuple[dict[str, Any], Feedback]]]:
    """The meta and every ``(row, record)`` of a feedback store or an export file, in recorded
    order; ``row`` is as in ``FeedbackStore.rows``. Never creates or changes a file.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: it is neither a valid store nor a valid export (the message says where).
    """
    path = Path(path)
    if _is_export(path):
        header, entries = _read_export(path)
        return dict(header["meta"]), [(row, record) for row, record, _, _ in entries]
    with _open_existing(path) as store:
        return store.meta, [(row, record) for row, record, _, _ in store._entries()]


def feedback_info(path: str | Path) -> dict[str, Any]:
    """``FeedbackStore.info()`` of a store, or the same summary of an export file, plus its
    ``format``. Never creates or changes a file."""
    path = Path(path)
    if not _is_export(path):
        with _open_existing(path) as store:
            return {"format": FORMAT, **store.info()}
    header, entries = _read_export(path)
    counts = dict.fromkeys(FEEDBACK_RECORDS, 0)
    for row, *_ in entries:
        counts[row["kind"]] += 1
    return {
        "format": EXPORT_FORMAT,
        "path": str(path),
        "schema_version": header["schema_version"],
        "meta": header["meta"],
        "counts": counts,
        "total": len(entries),
        "effort_seconds": float(sum(row["effort_seconds"] for row, *_ in entries)),
        "pending": [],
    }


def export_store(store_path: str | Path, out_path: str | Path) -> int:
    """Write every record of the store at ``store_path`` to a portable JSON Lines file (format:
    module docs); returns the number of records. Pending items are not exported.

    The file is written under a temporary name and renamed into place, so ``out_path`` is never
    a half-written export. Every record is decoded first, so a corrupt store gives no export.

    Example:
        >>> import pathlib, tempfile
        >>> import numpy as np
        >>> from rlhf_gym.feedback.store import FeedbackStore
        >>> from rlhf_gym.types import Rating, Segment
        >>> seg = Segment(np.zeros((2, 1)), np.zeros(2, int), np.ones(2), np.zeros(2, bool))
        >>> with tempfile.TemporaryDirectory() as d:
        ...     src, out, dst = (pathlib.Path(d) / name for name in ("a.db", "a.jsonl", "b.db"))
        ...     with FeedbackStore(src, meta={"task": "CartPole-v1"}) as store:
        ...         row = store.add(Rating(seg, 3, 5, teacher="ada"), effort_seconds=1.5)
        ...     print(export_store(src, out), import_store(out, dst))
        ...     meta, entries = read_feedback(dst)
        ...     print(meta, [(row["kind"], row["effort_seconds"], record.level) for row, record in entries])
        1 1
        {'task': 'CartPole-v1'} [('rating', 1.5, 3)]
    """
    store_path, out_path = Path(store_path), Path(out_path)
    with _open_existing(store_path) as store:
        if out_path.resolve() == store_path.resolve():
            raise ValueError(f"cannot export feedback store {store_path} onto itself; expected another path")
        meta, entries = store.meta, store._entries()
    if not out_path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {out_path}: folder {out_path.parent} does not exist")
    header = {"format": EXPORT_FORMAT, "schema_version": FeedbackStore.SCHEMA_VERSION, "meta": meta}
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            f.write(_json_line(header | {"records": len(entries)}))
            for row, _, record_json, blob in entries:
                arrays = base64.b64encode(blob).decode("ascii")
                f.write(_json_line(row | {"record": json.loads(record_json), "arrays": arrays}))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return len(entries)


def import_store(in_path: str | Path, store_path: str | Path, *, task: str | None = None) -> int:
    """Add every record of an export file (format: module docs) to the store at ``store_path``, in
    one transaction; returns the number of records.

    The whole file is checked, and every record decoded, before anything is written, so a
    corrupt or truncated file leaves the store unchanged. A missing store is created with the
    export's meta; an existing one must hold the export's task (the store checks it).

    Args:
        in_path: the export file.
        store_path: the target store.
        task: if given, the task the records must be for: the export's ``meta["task"]`` must
            match it (an export without one takes it).
    """
    in_path, store_path = Path(in_path), Path(store_path)
    header, entries = _read_export(in_path)
    meta = dict(header["meta"])
    if task is not None:
        if meta.setdefault("task", task) != task:
            raise ValueError(f"{in_path} holds feedback for task {meta['task']!r}, not {task!r}")
    new = not store_path.exists() or store_path.stat().st_size == 0
    store = FeedbackStore(store_path, meta=meta)
    try:
        with store._transaction() as conn:
            for row, _, record_json, blob in entries:
                info = json_object(row["info"], "info")
                columns = (row["kind"], row["created"], row["teacher"], row["effort_seconds"], info)
                conn.execute(INSERT, (*columns, record_json, blob))
    except BaseException:
        store.close()
        if new:  # leave no empty store behind
            for suffix in ("", "-wal", "-shm"):
                Path(f"{store_path}{suffix}").unlink(missing_ok=True)
        raise
    store.close()
    return len(entries)


def _json_line(value: dict[str, Any]) -> str:
    return json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":")) + "\n"


def _is_export(path: Path) -> bool:
    """An export is a ``.jsonl`` file or one that starts with ``{``; anything else is read as a store."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; expected a feedback store or a .jsonl export")
    with open(path, "rb") as f:
        start = f.read(64)
    return path.suffix.lower() == ".jsonl" or start.lstrip().startswith(b"{")


def _open_existing(path: Path) -> FeedbackStore:
    """Open a store that must exist already (``FeedbackStore`` would create a missing one)."""
    if not path.is_file():
        raise FileNotFoundError(f"feedback store {path} does not exist")
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is an empty file, not an rlhf-gym feedback store")
    return FeedbackStore(path)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _read_export(path: Path) -> tuple[dict[str, Any], list[tuple[dict[str, Any], Feedback, str, bytes]]]:
    """The header and every ``(row, record, record_json, arrays_blob)`` of an export file, each
    line checked and each record decoded; a ``ValueError`` names the line and what was expected."""
    if not path.is_file():
        raise FileNotFoundError(f"feedback export {path} does not exist")
    header: dict[str, Any] | None = None
    entries: list[tuple[dict[str, Any], Feedback, str, bytes]] = []
    lineno = 0
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            where = f"{path}, line {lineno}"
            try:
                value = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
            except ValueError as e:  # UnicodeDecodeError included
                cut = "" if raw.endswith(b"\n") else " (the file may be truncated)"
                expected = "the header" if header is None else "a record"
                raise ValueError(
                    f"{where}: not a line of UTF-8 JSON ({e}){cut}; expected {expected}"
                ) from None
            if header is None:
                header = _check_header(value, where)
            elif len(entries) == header["records"]:
                raise ValueError(
                    f"{where}: the header announces {header['records']} records; expected the end"
                )
            else:
                entries.append(_check_entry(value, where))
    if header is None:
        raise ValueError(f"{path} is empty; expected a header line with format {EXPORT_FORMAT!r}")
    if len(entries) < header["records"]:
        raise ValueError(
            f"{path}, line {lineno + 1}: the file ends after {len(entries)} of the header's "
            f"{header['records']} records; the export is truncated"
        )
    return header, entries


def _check_header(value: Any, where: str) -> dict[str, Any]:
    keys = {"format", "schema_version", "meta", "records"}
    if not isinstance(value, dict) or value.get("format") != EXPORT_FORMAT:
        raise ValueError(
            f"{where}: not an rlhf-gym feedback export header; expected an object with format "
            f"{EXPORT_FORMAT!r}, schema_version, meta and records"
        )
    if set(value) != keys:
        raise ValueError(f"{where}: header keys {sorted(value)}; expected exactly {sorted(keys)}")
    version = value["schema_version"]
    if version != FeedbackStore.SCHEMA_VERSION or isinstance(version, bool):
        raise ValueError(
            f"{where}: an export of schema version {version!r}; this rlhf-gym reads schema version "
            f"{FeedbackStore.SCHEMA_VERSION} only"
        )
    json_object(value["meta"], f"{where}: meta")
    n = value["records"]
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"{where}: records must be a count >= 0; got {n!r}")
    return value


def _check_entry(value: Any, where: str) -> tuple[dict[str, Any], Feedback, str, bytes]:
    if not isinstance(value, dict) or set(value) != set(EXPORT_KEYS):
        found = sorted(value) if isinstance(value, dict) else type(value).__name__
        raise ValueError(f"{where}: a record line with keys {found}; expected exactly {list(EXPORT_KEYS)}")

    def check(key: str, ok: bool, expected: str) -> None:
        if not ok:
            shown = repr(value[key])
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            raise ValueError(f"{where}: {key} is {shown}; expected {expected}")

    def number(x: Any) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)

    check("id", isinstance(value["id"], int) and not isinstance(value["id"], bool), "an int")
    check(
        "kind",
        isinstance(value["kind"], str) and value["kind"] in FEEDBACK_RECORDS,
        f"one of {sorted(FEEDBACK_RECORDS)}",
    )
    check("created", number(value["created"]), "a unix time")
    check("teacher", isinstance(value["teacher"], str), "a str")
    check("effort_seconds", number(value["effort_seconds"]) and value["effort_seconds"] >= 0, "a number >= 0")
    check("info", isinstance(value["info"], dict), "a JSON object")
    json_object(value["info"], f"{where}: info")
    check("record", isinstance(value["record"], dict), "the codec's JSON tree, an object")
    check("arrays", isinstance(value["arrays"], str), "the base64 of an .npz archive")
    try:
        blob = base64.b64decode(value["arrays"], validate=True)
    except (binascii.Error, ValueError) as e:
        raise ValueError(
            f"{where}: arrays is not valid base64 ({e}); expected the base64 of an .npz archive"
        ) from None
    if not blob.startswith(b"PK"):
        raise ValueError(f"{where}: arrays is {len(blob)} bytes of base64 but not an .npz (zip) archive")
    record_json = json.dumps(value["record"], allow_nan=False, separators=(",", ":"))
    try:
        record = decode_record(value["kind"], record_json, blob)
    except CORRUPT as e:
        raise ValueError(
            f"{where}: the {value['kind']} record does not decode ({e}); expected a record written by "
            "export_store"
        ) from None
    own = getattr(record, "teacher", "")
    check("teacher", value["teacher"] == own, f"the record's own teacher {own!r}")
    row = {key: value[key] for key in EXPORT_KEYS[:6]}
    row["created"], row["effort_seconds"] = float(row["created"]), float(row["effort_seconds"])
    return row, record, record_json, blob
