"""A durable SQLite store of feedback records: every label a person gives survives a crash.

``FeedbackStore`` keeps each record in a row of its own, committed in its own transaction
before ``add`` returns. Nothing is pickled, so a store received from someone else is safe
to open. The portable form of a store (a JSON Lines export, format documented there), and
reading a store or an export alike, are in ``rlhf_gym.feedback.formats``.
Its file format is documented in ``rlhf_gym.feedback.store_schema``. A store on a read-only
filesystem is opened read-only and reads as any other; a SQLite failure (disk full, a lock held
too long) is one ``OSError`` line that names the store.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from rlhf_gym.feedback import store_schema as schema
from rlhf_gym.feedback.codec import decode_record, encode_record, load_npz
from rlhf_gym.types import FEEDBACK_RECORDS, Feedback


class FeedbackStore:
    """A durable SQLite store of feedback records (schema: ``rlhf_gym.feedback.store_schema``).

    Opens the store at ``path``, or creates it if the file is missing or empty. Each ``add`` is
    committed in its own transaction (WAL, ``synchronous=FULL``) before it returns, so a crash
    or SIGKILL loses no acknowledged label. One connection is shared by all threads and guarded
    by a lock, so a UI thread may add while another thread reads.

    Args:
        path: the store's file.
        meta: JSON-able facts about the run, e.g. ``{"task": "CartPole-v1", "seed": 0}``. Saved
            when the store is created. For an existing store only its ``"task"`` is checked
            against the stored one; the stored meta is kept as is.

    A store whose file or folder is not writable (a read-only filesystem, someone else's folder)
    is opened read-only (``read_only``): it reads as any other, and each write raises
    ``PermissionError``. A SQLite failure (disk full, store locked by another process) raises one
    ``OSError`` line that names the store, and changes nothing.

    Attributes:
        read_only: whether the store was opened read-only.

    Raises:
        ValueError: ``path`` is a directory, is not a SQLite file, is a SQLite file but not a
            feedback store, is a store of another schema version, or holds another task. Such a
            file is never modified.
        FileNotFoundError: ``path`` is missing and so is its folder.
        OSError: SQLite cannot open it (e.g. it is locked); ``PermissionError`` if it is missing
            and its folder is read-only.

    Example:
        >>> import pathlib, tempfile
        >>> import numpy as np
        >>> from rlhf_gym.types import Comparison, Query, Segment
        >>> seg = Segment(np.zeros((2, 1)), np.zeros(2, int), np.ones(2), np.zeros(2, bool))
        >>> with tempfile.TemporaryDirectory() as d:
        ...     with FeedbackStore(pathlib.Path(d) / "feedback.db", meta={"task": "CartPole-v1"}) as store:
        ...         row = store.add(Comparison(Query(seg, seg), 0.5, teacher="ada"), effort_seconds=2.0)
        ...         back = store.records()[0]
        ...         print(len(store), back.label, back.teacher, store.info()["effort_seconds"])
        1 0.5 ada 2.0
    """

    SCHEMA_VERSION = schema.SCHEMA_VERSION

    def __init__(self, path: str | Path, *, meta: dict[str, Any] | None = None):
        self.path = Path(path)
        self._lock = threading.RLock()
        meta_text = None if meta is None else schema.json_object(meta, "meta")
        schema.check_path(self.path, create=True)
        conn = None
        try:
            conn, self.read_only = schema.connect(self.path)
            self._meta = schema.open_store(conn, self.path, meta, meta_text, self.read_only)
        except sqlite3.Error as e:
            if conn is not None:
                conn.close()
            raise schema.store_error(self.path, e, "open") from e
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        self._conn: sqlite3.Connection | None = conn

    @property
    def meta(self) -> dict[str, Any]:
        """The meta dict saved when the store was created (a copy)."""
        return dict(self._meta)

    def add(
        self,
        record: Feedback,
        *,
        effort_seconds: float = 0.0,
        info: dict[str, Any] | None = None,
        resolves: str | None = None,
    ) -> int:
        """Store ``record`` and commit it before returning; returns its row id.

        Args:
            record: any record of ``FEEDBACK_RECORDS``.
            effort_seconds: how long the label took the person (0 for a synthetic teacher).
            info: JSON-able extras saved with the row.
            resolves: a pending key (``set_pending``) this record answers: its pending item, if
                any, is deleted in the same transaction, so after a crash either both happened
                or neither did.
        """
        if resolves is not None:
            schema.check_key(resolves)
        cls = FEEDBACK_RECORDS.get(getattr(record, "kind", None))  # type: ignore[arg-type]
        if cls is None or not isinstance(record, cls):
            raise TypeError(
                f"cannot store a {type(record).__name__}; expected a feedback record, one of "
                f"{sorted(c.__name__ for c in FEEDBACK_RECORDS.values())}"
            )
        effort = float(effort_seconds)
        if not (math.isfinite(effort) and effort >= 0):
            raise ValueError(f"effort_seconds must be a finite number >= 0; got {effort_seconds!r}")
        info_text = schema.json_object({} if info is None else info, "info")
        record_json, blob = encode_record(record)
        teacher = str(getattr(record, "teacher", ""))
        with self._transaction() as conn:
            cursor = conn.execute(
                schema.INSERT, (record.kind, time.time(), teacher, effort, info_text, record_json, blob)
            )
            if resolves is not None and schema.has_pending(conn):
                conn.execute("DELETE FROM pending WHERE key = ?", (resolves,))
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def set_pending(
        self, key: str, value: dict[str, Any], arrays: dict[str, np.ndarray] | None = None
    ) -> None:
        """Save the item a person is being shown under ``key`` (replacing any previous one), and
        commit it before returning, so that a resumed session can show it again.

        Args:
            key: the item's name, e.g. ``"query"``.
            value: JSON-able facts about it (seeds, UI state, ...).
            arrays: numeric numpy arrays, e.g. the segments shown; saved in one ``.npz`` archive.

        Example:
            >>> import pathlib, tempfile
            >>> import numpy as np
            >>> with tempfile.TemporaryDirectory() as d:
            ...     with FeedbackStore(pathlib.Path(d) / "feedback.db") as store:
            ...         store.set_pending("query", {"seed": 3}, {"obs": np.zeros((2, 4))})
            ...         value, arrays = store.pending("query")
            ...         store.clear_pending("query")
            ...         print(value, arrays["obs"].shape, store.pending("query"))
            {'seed': 3} (2, 4) None
        """
        schema.check_key(key)
        value_text = schema.json_object(value, "pending value")
        blob = schema.npz({} if arrays is None else arrays, f"pending item {key!r}")
        with self._transaction() as conn:
            conn.execute(schema.PENDING_SCHEMA)
            conn.execute(
                "INSERT OR REPLACE INTO pending (key, value, arrays) VALUES (?, ?, ?)",
                (key, value_text, blob),
            )

    def pending(self, key: str) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
        """The ``(value, arrays)`` saved under ``key`` by ``set_pending``, or ``None``. Reads only."""
        schema.check_key(key)
        rows = (
            self._read("SELECT value, arrays FROM pending WHERE key = ?", (key,))
            if self._has_pending()
            else []
        )
        if not rows:
            return None
        try:
            value = json.loads(rows[0][0])
            if not isinstance(value, dict):
                raise ValueError(f"its value is a JSON {type(value).__name__}, not an object")
            return value, load_npz(rows[0][1])
        except schema.CORRUPT as e:
            raise ValueError(
                f"pending item {key!r} of feedback store {self.path} is corrupt: {e}; expected an item "
                "written by FeedbackStore.set_pending"
            ) from e

    def clear_pending(self, key: str) -> None:
        """Delete the pending item of ``key`` (nothing happens if there is none)."""
        schema.check_key(key)
        with self._transaction() as conn:
            if schema.has_pending(conn):
                conn.execute("DELETE FROM pending WHERE key = ?", (key,))

    def records(self, kind: str | None = None) -> list[Feedback]:
        """Every record (or every record of ``kind``), in insertion order."""
        query = "SELECT id, kind, record, arrays FROM feedback"
        params: tuple[str, ...] = ()
        if kind is not None:
            if kind not in FEEDBACK_RECORDS:
                raise ValueError(f"unknown record kind {kind!r}; expected one of {sorted(FEEDBACK_RECORDS)}")
            query, params = query + " WHERE kind = ?", (kind,)
        rows = self._read(query + " ORDER BY id", params)
        return [self._decode_row(*row) for row in rows]

    def rows(self) -> list[dict[str, Any]]:
        """One dict per record without its arrays: id, kind, created, teacher, effort_seconds, info."""
        query = "SELECT id, kind, created, teacher, effort_seconds, info FROM feedback ORDER BY id"
        return [self._row(*columns) for columns in self._read(query)]

    def _row(self, row_id: int, kind: str, created: float, teacher: str, effort: float, info: str) -> dict:
        try:
            info_dict = json.loads(info)
        except (TypeError, ValueError, RecursionError) as e:
            raise ValueError(f"row {row_id} of feedback store {self.path} has corrupt info: {e}") from e
        return {
            "id": row_id,
            "kind": kind,
            "created": created,
            "teacher": teacher,
            "effort_seconds": effort,
            "info": info_dict,
        }

    def _entries(self) -> list[tuple[dict[str, Any], Feedback, str, bytes]]:
        """Every ``(row, record, record_json, arrays_blob)``, in insertion order, read in one
        statement (a consistent snapshot) and each decoded, so a corrupt row is named."""
        query = "SELECT id, kind, created, teacher, effort_seconds, info, record, arrays FROM feedback"
        out = []
        for *columns, record_json, blob in self._read(query + " ORDER BY id"):
            row = self._row(*columns)
            out.append((row, self._decode_row(row["id"], row["kind"], record_json, blob), record_json, blob))
        return out

    def remove_last(self) -> Feedback | None:
        """Delete the newest record and return it ("undo"), or return ``None`` if the store is empty."""
        return self._remove("ORDER BY id DESC LIMIT 1", ())

    def remove(self, row_id: int) -> Feedback | None:
        """Delete the record of row ``row_id`` and return it, or ``None`` if there is no such row."""
        return self._remove("WHERE id = ?", (int(row_id),))

    def _remove(self, where: str, params: tuple) -> Feedback | None:
        with self._transaction() as conn:
            row = conn.execute(f"SELECT id, kind, record, arrays FROM feedback {where}", params).fetchone()
            if row is None:
                return None
            record = self._decode_row(*row)
            conn.execute("DELETE FROM feedback WHERE id = ?", (row[0],))
        return record

    def info(self) -> dict[str, Any]:
        """A summary: path, schema_version, meta, counts per kind, total, effort_seconds and the
        keys of the pending items (``pending``)."""
        counts = dict.fromkeys(FEEDBACK_RECORDS, 0)
        counts.update(self._read("SELECT kind, COUNT(*) FROM feedback GROUP BY kind"))
        effort = self._read("SELECT COALESCE(SUM(effort_seconds), 0.0) FROM feedback")[0][0]
        pending = (
            [key for (key,) in self._read("SELECT key FROM pending ORDER BY key")]
            if self._has_pending()
            else []
        )
        return {
            "path": str(self.path),
            "schema_version": self.SCHEMA_VERSION,
            "meta": self.meta,
            "counts": counts,
            "total": sum(counts.values()),
            "effort_seconds": float(effort),
            "pending": pending,
        }

    def __len__(self) -> int:
        return int(self._read("SELECT COUNT(*) FROM feedback")[0][0])

    def marker(self) -> tuple[int, int]:
        """``(records, newest row id)``: it changes whenever a record is added or removed (ids
        are never reused), so a reader can poll for changes without reading the records."""
        count, newest = self._read("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM feedback")[0]
        return int(count), int(newest)

    def __repr__(self) -> str:
        return f"FeedbackStore({str(self.path)!r})"

    def close(self) -> None:
        """Close the connection; closing twice is harmless."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> FeedbackStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ValueError(f"feedback store {self.path} is closed")
        return self._conn

    def _read(self, query: str, params: tuple = ()) -> list[tuple]:
        with self._lock:
            conn = self._connection()
            try:
                return conn.execute(query, params).fetchall()
            except sqlite3.Error as e:
                raise schema.store_error(self.path, e, "read") from e

    def _has_pending(self) -> bool:
        with self._lock:
            try:
                return schema.has_pending(self._connection())
            except sqlite3.Error as e:
                raise schema.store_error(self.path, e, "read") from e

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; a SQLite error in it rolls it back and raises ``store_error``."""
        with self._lock:
            conn = self._connection()
            if self.read_only:
                raise PermissionError(
                    f"feedback store {self.path} is read-only (its file or its folder is not writable): it "
                    "can be read, not changed; expected a writable store, or a copy in a writable folder"
                )
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as e:
                raise schema.store_error(self.path, e, "write") from e

    def _decode_row(self, row_id: int, kind: str, record_json: str, blob: bytes) -> Feedback:
        try:
            return decode_record(kind, record_json, blob)
        except schema.CORRUPT as e:
            raise ValueError(
                f"row {row_id} of feedback store {self.path} is corrupt: {e}; expected a record "
                "written by FeedbackStore.add"
            ) from e
