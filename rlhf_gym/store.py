"""A durable SQLite store of feedback records: every label a person gives survives a crash.

``FeedbackStore`` keeps each record in a row of its own, committed in its own transaction
before ``add`` returns. Nothing is pickled, so a store received from someone else is safe
to open.

Schema (version 1)
------------------
The file is a SQLite database in WAL mode with ``PRAGMA application_id = 0x524C4846``
("RLHF" in ASCII) and ``PRAGMA user_version = 1`` (the schema version). Two tables:

``meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)``; each value is JSON:
    - ``format``: the string ``"rlhf-gym feedback store"``;
    - ``schema_version``: ``1``;
    - ``created``: unix time the store was created;
    - ``meta``: the user's dict given at creation, e.g. ``{"task": "CartPole-v1", "seed": 0}``.

``feedback``, one row per record, in insertion order:
    - ``id INTEGER PRIMARY KEY AUTOINCREMENT``: never reused, even after an undo;
    - ``kind TEXT``: the record's ``kind`` (``"comparison"``, ``"rating"``, ...);
    - ``created REAL``: unix time of the ``add``;
    - ``teacher TEXT``: the record's ``teacher`` (``""`` if it has none);
    - ``effort_seconds REAL``: how long the label took the person;
    - ``info TEXT``: a JSON object of free-form extras (seed, UI state, ...);
    - ``record TEXT``: the record's structure as JSON, in the portable encoding of
      ``rlhf_gym.codec`` (``encode_record`` / ``decode_record``);
    - ``arrays BLOB``: every numpy array of the record, in one ``.npz`` archive
      (``numpy.savez``; read with ``allow_pickle=False``).
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rlhf_gym.codec import decode_record, encode_record
from rlhf_gym.types import FEEDBACK_RECORDS, Feedback

APPLICATION_ID = 0x524C4846
"""``PRAGMA application_id`` of every feedback store: "RLHF" in ASCII."""
FORMAT = "rlhf-gym feedback store"

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    created REAL NOT NULL,
    teacher TEXT NOT NULL,
    effort_seconds REAL NOT NULL,
    info TEXT NOT NULL,
    record TEXT NOT NULL,
    arrays BLOB NOT NULL
);
CREATE INDEX feedback_kind ON feedback (kind, id);
"""

# Errors that mean a stored row cannot be decoded.
_CORRUPT = (ValueError, TypeError, KeyError, IndexError, OSError, EOFError, zipfile.BadZipFile)


# ---------------------------------------------------------------------------------------------
# Helpers


def _json_object(value: Any, what: str) -> str:
    """``value`` as JSON text, checked to be a dict that survives the round trip."""
    try:
        text = json.dumps(value, allow_nan=False, sort_keys=True)
        ok = isinstance(value, dict) and json.loads(text) == value
    except (TypeError, ValueError) as e:
        text, ok = str(e), False
    if not ok:
        raise ValueError(
            f"{what} must be a dict with str keys and JSON values (str, finite numbers, bools, None, "
            f"lists, dicts); got {value!r}"
        )
    return text


# ---------------------------------------------------------------------------------------------
# The store


class FeedbackStore:
    """A durable SQLite store of feedback records (schema: module docs; encoding: ``rlhf_gym.codec``).

    Opens the store at ``path``, or creates it if the file is missing or empty. Each ``add`` is
    committed in its own transaction (WAL, ``synchronous=FULL``) before it returns, so a crash
    or SIGKILL loses no acknowledged label. One connection is shared by all threads and guarded
    by a lock, so a UI thread may add while another thread reads.

    Args:
        path: the store's file.
        meta: JSON-able facts about the run, e.g. ``{"task": "CartPole-v1", "seed": 0}``. Saved
            when the store is created. For an existing store only its ``"task"`` is checked
            against the stored one; the stored meta is kept as is.

    Raises:
        ValueError: ``path`` is not a SQLite file, is a SQLite file but not a feedback store,
            is a store of another schema version, or holds another task. Such a file is never
            modified.

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

    SCHEMA_VERSION = 1

    def __init__(self, path: str | Path, *, meta: dict[str, Any] | None = None):
        self.path = Path(path)
        self._lock = threading.RLock()
        meta_text = None if meta is None else _json_object(meta, "meta")
        try:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as e:
            raise ValueError(f"cannot open feedback store {self.path}: {e}") from e
        try:
            self._meta = self._open(conn, meta, meta_text)
        except BaseException:
            conn.close()
            raise
        self._conn: sqlite3.Connection | None = conn

    def _open(self, conn: sqlite3.Connection, meta: dict[str, Any] | None, meta_text: str | None) -> dict:
        """Create the schema in an empty file, or check an existing one; only reads until then."""
        try:
            app_id, version, tables = _header(conn)
            if app_id == 0 and version == 0 and not tables:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("BEGIN IMMEDIATE")
                try:
                    app_id, version, tables = _header(conn)  # another process may have won the race
                    if app_id == 0 and version == 0 and not tables:
                        self._create(conn, meta_text or "{}")
                        app_id, version, tables = APPLICATION_ID, self.SCHEMA_VERSION, {"meta", "feedback"}
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
        except sqlite3.DatabaseError as e:
            raise ValueError(
                f"{self.path} is not an rlhf-gym feedback store: cannot read it as SQLite ({e}); "
                "expected a file written by FeedbackStore, or a new path"
            ) from e
        if app_id != APPLICATION_ID or not {"meta", "feedback"} <= tables:
            raise ValueError(
                f"{self.path} is a SQLite database but not an rlhf-gym feedback store (application_id "
                f"{app_id:#x}, tables {sorted(tables)}); expected application_id {APPLICATION_ID:#x} "
                "with tables 'meta' and 'feedback'"
            )
        try:
            stored = {key: json.loads(value) for key, value in conn.execute("SELECT key, value FROM meta")}
        except (sqlite3.DatabaseError, ValueError) as e:
            raise ValueError(f"{self.path} has a corrupt meta table ({e}); expected JSON values") from e
        if version != self.SCHEMA_VERSION or stored.get("schema_version") != self.SCHEMA_VERSION:
            found = version if version != self.SCHEMA_VERSION else stored.get("schema_version")
            raise ValueError(
                f"{self.path} is a feedback store of schema version {found}; this rlhf-gym reads "
                f"schema version {self.SCHEMA_VERSION} only"
            )
        if stored.get("format") != FORMAT or not isinstance(stored.get("meta"), dict):
            raise ValueError(f"{self.path} has a malformed meta table; expected format {FORMAT!r}")
        if meta is not None and "task" in meta and meta["task"] != stored["meta"].get("task"):
            raise ValueError(
                f"{self.path} holds feedback for task {stored['meta'].get('task')!r}, not "
                f"{meta['task']!r}; expected the same task, or a new store path"
            )
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL syncs the WAL on every commit: an acknowledged human label must survive power loss.
        conn.execute("PRAGMA synchronous=FULL")
        return dict(stored["meta"])

    def _create(self, conn: sqlite3.Connection, meta_text: str) -> None:
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?)",
            [
                ("format", json.dumps(FORMAT)),
                ("schema_version", json.dumps(self.SCHEMA_VERSION)),
                ("created", json.dumps(time.time())),
                ("meta", meta_text),
            ],
        )
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version = {self.SCHEMA_VERSION}")

    @property
    def meta(self) -> dict[str, Any]:
        """The meta dict saved when the store was created (a copy)."""
        return dict(self._meta)

    def add(
        self, record: Feedback, *, effort_seconds: float = 0.0, info: dict[str, Any] | None = None
    ) -> int:
        """Store ``record`` and commit it before returning; returns its row id.

        Args:
            record: any record of ``FEEDBACK_RECORDS``.
            effort_seconds: how long the label took the person (0 for a synthetic teacher).
            info: JSON-able extras saved with the row.
        """
        cls = FEEDBACK_RECORDS.get(getattr(record, "kind", None))  # type: ignore[arg-type]
        if cls is None or not isinstance(record, cls):
            raise TypeError(
                f"cannot store a {type(record).__name__}; expected a feedback record, one of "
                f"{sorted(c.__name__ for c in FEEDBACK_RECORDS.values())}"
            )
        effort = float(effort_seconds)
        if not (math.isfinite(effort) and effort >= 0):
            raise ValueError(f"effort_seconds must be a finite number >= 0; got {effort_seconds!r}")
        info_text = _json_object({} if info is None else info, "info")
        record_json, blob = encode_record(record)
        teacher = str(getattr(record, "teacher", ""))
        with self._transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO feedback (kind, created, teacher, effort_seconds, info, record, arrays) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (record.kind, time.time(), teacher, effort, info_text, record_json, blob),
            )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

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
        out = []
        for row_id, kind, created, teacher, effort, info in self._read(
            "SELECT id, kind, created, teacher, effort_seconds, info FROM feedback ORDER BY id"
        ):
            try:
                info_dict = json.loads(info)
            except (TypeError, ValueError) as e:
                raise ValueError(f"row {row_id} of feedback store {self.path} has corrupt info: {e}") from e
            out.append(
                {
                    "id": row_id,
                    "kind": kind,
                    "created": created,
                    "teacher": teacher,
                    "effort_seconds": effort,
                    "info": info_dict,
                }
            )
        return out

    def remove_last(self) -> Feedback | None:
        """Delete the newest record and return it ("undo"), or return ``None`` if the store is empty."""
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT id, kind, record, arrays FROM feedback ORDER BY id DESC LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            record = self._decode_row(*row)
            conn.execute("DELETE FROM feedback WHERE id = ?", (row[0],))
        return record

    def info(self) -> dict[str, Any]:
        """A summary: path, schema_version, meta, counts per kind, total and effort_seconds."""
        counts = dict.fromkeys(FEEDBACK_RECORDS, 0)
        counts.update(self._read("SELECT kind, COUNT(*) FROM feedback GROUP BY kind"))
        effort = self._read("SELECT COALESCE(SUM(effort_seconds), 0.0) FROM feedback")[0][0]
        return {
            "path": str(self.path),
            "schema_version": self.SCHEMA_VERSION,
            "meta": self.meta,
            "counts": counts,
            "total": sum(counts.values()),
            "effort_seconds": float(effort),
        }

    def __len__(self) -> int:
        return int(self._read("SELECT COUNT(*) FROM feedback")[0][0])

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
            return self._connection().execute(query, params).fetchall()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _decode_row(self, row_id: int, kind: str, record_json: str, blob: bytes) -> Feedback:
        try:
            return decode_record(kind, record_json, blob)
        except _CORRUPT as e:
            raise ValueError(
                f"row {row_id} of feedback store {self.path} is corrupt: {e}; expected a record "
                "written by FeedbackStore.add"
            ) from e


def _header(conn: sqlite3.Connection) -> tuple[int, int, set[str]]:
    """``(application_id, user_version, schema object names)`` of an open database, by reading only."""
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    return app_id, version, tables
