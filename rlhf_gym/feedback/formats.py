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

Importing a file from someone else
----------------------------------
``import_store`` checks the whole file before it writes anything, so one bad line leaves the store
unchanged and the error names the line. Each record must decode within the codec's size limits
(``rlhf_gym.feedback.codec``: no array over ``MAX_ARRAY_BYTES``, whatever its npy header or its
compression claims) and pass ``rlhf_gym.feedback.validate.check_record`` against the spaces of the
task (``--task``, else the export's ``meta["task"]``, else the store's). An import is idempotent:
a record whose ``content_hash`` (kind, created, teacher, effort, info, record and array values)
equals a stored row's, or an earlier line's, is skipped and counted, so importing a file twice
adds nothing the second time. The hashes of the stored rows are computed in the import's write
transaction, so the store's schema carries no hash column.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlhf_gym.feedback.codec import content_hash
from rlhf_gym.feedback.jsonl import EXPORT_FORMAT, EXPORT_KEYS, Entry, read_export
from rlhf_gym.feedback.lock import StoreLock
from rlhf_gym.feedback.store import FeedbackStore
from rlhf_gym.feedback.store_schema import CORRUPT, FORMAT, INSERT, check_path, check_task, json_object
from rlhf_gym.feedback.validate import check_record, task_spaces
from rlhf_gym.types import FEEDBACK_RECORDS, Feedback

__all__ = [
    "EXPORT_FORMAT",
    "EXPORT_KEYS",
    "Imported",
    "export_store",
    "feedback_info",
    "import_store",
    "read_feedback",
]

EXPECTED = "a feedback store or a .jsonl export"


@dataclass(frozen=True)
class Imported:
    """What ``import_store`` did.

    Args:
        added: records added to the store.
        duplicates: records skipped because the store, or an earlier line of the file, already
            held the same content.
    """

    added: int
    duplicates: int


def read_feedback(path: str | Path) -> tuple[dict[str, Any], list[tuple[dict[str, Any], Feedback]]]:
    """The meta and every ``(row, record)`` of a feedback store or an export file, in recorded
    order; ``row`` is as in ``FeedbackStore.rows``. Never creates or changes a file.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: it is neither a valid store nor a valid export (the message says where).
    """
    path = Path(path)
    if _is_export(path):
        header, entries = read_export(path)
        return dict(header["meta"]), [(row, record) for row, record, _, _ in entries if record is not None]
    with _open_existing(path) as store:
        return store.meta, [(row, record) for row, record, _, _ in store._entries()]


def feedback_info(path: str | Path) -> dict[str, Any]:
    """``FeedbackStore.info()`` of a store, or the same summary of an export file, plus its
    ``format``. Never creates or changes a file."""
    path = Path(path)
    if not _is_export(path):
        with _open_existing(path) as store:
            return {"format": FORMAT, **store.info()}
    header, entries = read_export(path, keep_records=False)
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
        >>> seg = Segment(np.zeros((2, 4)), np.zeros(2, int), np.ones(2), np.zeros(2, bool))
        >>> with tempfile.TemporaryDirectory() as d:
        ...     src, out, dst = (pathlib.Path(d) / name for name in ("a.db", "a.jsonl", "b.db"))
        ...     with FeedbackStore(src, meta={"task": "CartPole-v1"}) as store:
        ...         row = store.add(Rating(seg, 3, 5, teacher="ada"), effort_seconds=1.5)
        ...     print(export_store(src, out), import_store(out, dst), import_store(out, dst))
        ...     meta, entries = read_feedback(dst)
        ...     print(meta, [(r["kind"], r["effort_seconds"], record.level) for r, record in entries])
        1 Imported(added=1, duplicates=0) Imported(added=0, duplicates=1)
        {'task': 'CartPole-v1'} [('rating', 1.5, 3)]
    """
    store_path, out_path = Path(store_path), Path(out_path)
    with _open_existing(store_path) as store:
        if out_path.resolve() == store_path.resolve():
            raise ValueError(f"cannot export feedback store {store_path} onto itself; expected another path")
        meta, entries = store.meta, store._entries()
    if not out_path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {out_path}: folder {out_path.parent} does not exist")
    if out_path.is_dir():
        raise ValueError(
            f"cannot write the export to {out_path}: it is a directory; expected a .jsonl file path"
        )
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


def import_store(in_path: str | Path, store_path: str | Path, *, task: str | None = None) -> Imported:
    """Add the records of an export file (format: module docs) to the store at ``store_path``, in
    one transaction, skipping the ones it already holds.

    The whole file is read, and every record decoded and checked against the task's spaces and
    its kind's rules (module docs), before anything is written, so a bad or truncated file leaves
    the store unchanged and the error names its line. A missing store is created with the
    export's meta; an existing one must hold the export's task.

    Args:
        in_path: the export file.
        store_path: the target store.
        task: if given, the task the records must be for: the export's ``meta["task"]`` must
            match it (an export without one takes it).

    Returns:
        How many records were added, and how many were skipped as duplicates.

    Raises:
        ValueError: a bad line (named), a task mismatch, or no task to check the records against.
        PermissionError: the store is read-only.
    """
    in_path, store_path = Path(in_path), Path(store_path)
    check_path(store_path, create=True)
    if store_path.is_file() and store_path.stat().st_size:
        with FeedbackStore(store_path) as existing:  # (a read-only one can take no lock file either)
            if existing.read_only:
                raise PermissionError(f"cannot import into feedback store {store_path}: it is read-only")
    with StoreLock(store_path):  # no labelling session writes to it meanwhile
        return _import(in_path, store_path, task)


def _import(in_path: Path, store_path: Path, task: str | None) -> Imported:
    new = not store_path.exists() or store_path.stat().st_size == 0
    target = None if new else FeedbackStore(store_path)
    try:
        if target is not None and target.read_only:
            raise PermissionError(f"cannot import into feedback store {store_path}: it is read-only")
        meta: dict[str, Any] = {}
        hashes: list[str] = []

        def start(header: dict[str, Any]) -> Callable[[Entry, str], bool]:
            meta.update(header["meta"])
            if task is not None and meta.setdefault("task", task) != task:
                raise ValueError(f"{in_path} holds feedback for task {meta['task']!r}, not {task!r}")
            stored = {} if target is None else target.meta
            if target is not None and "task" in meta:
                check_task(store_path, stored, meta["task"])
            name = meta.get("task", stored.get("task"))
            if not isinstance(name, str):
                raise ValueError(
                    f"cannot check the records of {in_path}: neither it nor {store_path} names the task they "
                    "are for; expected --task (the task= argument)"
                )
            obs_space, act_space = task_spaces(name)
            seen: set[str] = set()

            def check(entry: Entry, where: str) -> bool:
                row, record, record_json, blob = entry
                assert record is not None
                check_record(record, obs_space, act_space, where)
                digest = content_hash(row, record_json, blob)
                if digest in seen:
                    return False
                seen.add(digest)
                hashes.append(digest)
                return True

            return check

        header, entries = read_export(in_path, start=start, keep_records=False)
        store = target if target is not None else FeedbackStore(store_path, meta=meta)
    except BaseException:
        if target is not None:
            target.close()
        raise
    try:
        with store._transaction() as conn:
            stored = _stored_hashes(store, conn)
            added = 0
            for (row, _, record_json, blob), digest in zip(entries, hashes, strict=True):
                if digest in stored:
                    continue
                info = json_object(row["info"], "info")
                columns = (row["kind"], row["created"], row["teacher"], row["effort_seconds"], info)
                conn.execute(INSERT, (*columns, record_json, blob))
                added += 1
    except BaseException:
        store.close()
        if new:  # leave no empty store behind
            for suffix in ("", "-wal", "-shm"):
                Path(f"{store_path}{suffix}").unlink(missing_ok=True)
        raise
    store.close()
    return Imported(added, duplicates=header["records"] - added)


def _stored_hashes(store: FeedbackStore, conn: sqlite3.Connection) -> set[str]:
    """The ``content_hash`` of every row of ``store``, read on ``conn`` (in the import's transaction)."""
    query = "SELECT id, kind, created, teacher, effort_seconds, info, record, arrays FROM feedback"
    hashes = set()
    for *columns, record_json, blob in conn.execute(query):
        try:
            hashes.add(content_hash(store._row(*columns), record_json, blob))
        except CORRUPT as e:
            raise ValueError(
                f"row {columns[0]} of feedback store {store.path} is corrupt: {e}; expected a record written "
                "by FeedbackStore.add"
            ) from e
    return hashes


def _json_line(value: dict[str, Any]) -> str:
    return json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":")) + "\n"


def _is_export(path: Path) -> bool:
    """An export is a ``.jsonl`` file or one that starts with ``{``; anything else is read as a store."""
    check_path(path, EXPECTED)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; expected {EXPECTED}")
    with open(path, "rb") as f:
        start = f.read(64)
    return path.suffix.lower() == ".jsonl" or start.lstrip().startswith(b"{")


def _open_existing(path: Path) -> FeedbackStore:
    """Open a store that must exist already (``FeedbackStore`` would create a missing one)."""
    check_path(path, EXPECTED)
    if not path.is_file():
        raise FileNotFoundError(f"feedback store {path} does not exist")
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is an empty file, not an rlhf-gym feedback store")
    return FeedbackStore(path)
