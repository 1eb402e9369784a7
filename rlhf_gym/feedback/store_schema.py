"""The feedback store's file format: a versioned SQLite schema, records as JSON, arrays as npz.

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
      ``rlhf_gym.feedback.codec`` (``encode_record`` / ``decode_record``);
    - ``arrays BLOB``: every numpy array of the record, in one ``.npz`` archive
      (``numpy.savez``; read with ``allow_pickle=False``).

``pending(key TEXT PRIMARY KEY, value TEXT NOT NULL, arrays BLOB NOT NULL)``, optional: created
by the first ``set_pending``, so a store without it is a valid version-1 store. One row per
item a labelling UI showed but has no answer for yet (so that it shows it again on resume):
    - ``key``: the caller's name for the item, e.g. ``"query"``;
    - ``value``: a JSON object (seeds, UI state, ...);
    - ``arrays``: the item's numpy arrays in one ``.npz`` archive (possibly empty; read with
      ``allow_pickle=False``).
``add(record, resolves=key)`` deletes the item in the transaction that inserts its answer.

There is no table or column beyond these: an import finds the duplicates it skips by hashing the
rows already stored (``rlhf_gym.feedback.codec.content_hash``), so version 1 needs no migration.

Opening
-------
``connect`` opens a store for reading and writing when the file and its folder are writable, and
read-only otherwise (a read-only filesystem, a shared folder): with SQLite's ``mode=ro`` if a
``-wal`` file is there, else with ``immutable=1``, which creates no ``-wal`` or ``-shm`` file.
``open_store`` creates the schema in an empty file, or checks an existing one by reading only.
``store_error`` turns a SQLite error (disk full, store locked, ...) into one ``OSError`` line.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import time
import urllib.parse
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

APPLICATION_ID = 0x524C4846
"""``PRAGMA application_id`` of every feedback store: "RLHF" in ASCII."""


FORMAT = "rlhf-gym feedback store"


SCHEMA_VERSION = 1
"""The version of the schema below (``PRAGMA user_version``)."""


SCHEMA = """
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


PENDING_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS pending (key TEXT PRIMARY KEY, value TEXT NOT NULL, arrays BLOB NOT NULL)"
)


INSERT = (
    "INSERT INTO feedback (kind, created, teacher, effort_seconds, info, record, arrays) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)


# Errors that mean a stored row cannot be decoded.
CORRUPT = (
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    RecursionError,
    OSError,
    EOFError,
    zipfile.BadZipFile,
)


def json_object(value: Any, what: str) -> str:
    """``value`` as JSON text, checked to be a dict that survives the round trip."""
    try:
        text = json.dumps(value, allow_nan=False, sort_keys=True)
        ok = isinstance(value, dict) and json.loads(text) == value
    except (TypeError, ValueError, RecursionError) as e:
        text, ok = str(e), False
    if not ok:
        raise ValueError(
            f"{what} must be a dict with str keys and JSON values (str, finite numbers, bools, None, "
            f"lists, dicts); got {value!r}"
        )
    return text


def check_key(key: Any) -> None:
    """Raise unless ``key`` is a pending item's name: a non-empty str."""
    if not isinstance(key, str) or not key:
        raise ValueError(f"a pending key must be a non-empty str; got {key!r}")


def npz(arrays: Any, what: str) -> bytes:
    """``arrays`` (a dict of name -> numeric array) as one ``.npz`` archive, without pickle."""
    if not isinstance(arrays, dict):
        raise TypeError(f"{what}: arrays must be a dict of str -> numpy array; got {type(arrays).__name__}")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:  # what numpy.savez writes, but any name is allowed
        for name, array in arrays.items():
            if not isinstance(name, str) or not name:
                raise TypeError(f"{what}: array names must be non-empty str; got {name!r}")
            if not isinstance(array, np.ndarray) or array.dtype.hasobject:
                dtype = array.dtype if isinstance(array, np.ndarray) else type(array).__name__
                raise TypeError(
                    f"{what}: arrays[{name!r}] is a {dtype}; expected a numeric, bool or string numpy array"
                )
            with archive.open(f"{name}.npy", "w") as f:
                np.lib.format.write_array(f, array, allow_pickle=False)
    return buf.getvalue()


def has_pending(conn: sqlite3.Connection) -> bool:
    """Whether the optional ``pending`` table exists (it is created by the first ``set_pending``)."""
    query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'pending'"
    return conn.execute(query).fetchone() is not None


def header(conn: sqlite3.Connection) -> tuple[int, int, set[str]]:
    """``(application_id, user_version, schema object names)`` of an open database, by reading only."""
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    return app_id, version, tables


BUSY_TIMEOUT = 30.0
"""Seconds a statement waits for another connection's lock on the store before it fails."""


def check_path(path: Path, expected: str = "a feedback store file", *, create: bool = False) -> None:
    """Raise a clear error for a path that cannot hold a store: a directory; with ``create``, also
    a missing file in a folder that is missing or not writable."""
    if path.is_dir():
        inside = path / "feedback.sqlite"
        hint = f" (it holds {inside}: pass that)" if inside.is_file() else ""
        raise ValueError(f"{path} is a directory{hint}; expected {expected}")
    if create and not path.exists():
        if not path.parent.is_dir():
            raise FileNotFoundError(
                f"cannot create feedback store {path}: folder {path.parent} does not exist"
            )
        if not os.access(path.parent, os.W_OK):
            raise PermissionError(
                f"cannot create feedback store {path}: folder {path.parent} is not writable"
            )


def writable(path: Path) -> bool:
    """Whether SQLite may write the store at ``path``: its folder (for the ``-wal`` and ``-shm``
    files) and the file itself, if it exists, are writable."""
    return os.access(path.parent, os.W_OK) and (not path.exists() or os.access(path, os.W_OK))


def connect(path: Path) -> tuple[sqlite3.Connection, bool]:
    """``(connection, read_only)`` for the store at ``path`` (module docs, Opening)."""
    options: dict[str, Any] = {"timeout": BUSY_TIMEOUT, "isolation_level": None, "check_same_thread": False}
    if writable(path):
        return sqlite3.connect(path, **options), False
    uri = "file:" + urllib.parse.quote(str(path.absolute()))
    wal = Path(f"{path}-wal")
    if wal.exists():
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, **options)
        try:
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            return conn, True
        except sqlite3.OperationalError as e:
            conn.close()
            if wal.stat().st_size > 0:
                raise OSError(
                    f"cannot read feedback store {path}: it is read-only, and SQLite reads the changes in "
                    f"its write-ahead log {wal.name} only with write access or its -shm file ({e}); expected "
                    "the store's files copied to a writable folder"
                ) from None
    return sqlite3.connect(f"{uri}?immutable=1", uri=True, **options), True


def open_store(
    conn: sqlite3.Connection, path: Path, meta: dict[str, Any] | None, meta_text: str | None, read_only: bool
) -> dict[str, Any]:
    """Create the schema in an empty file, or check an existing one (reading only until then);
    returns the stored meta. SQLite errors other than "not a database" propagate."""
    try:
        app_id, version, tables = header(conn)
        if app_id == 0 and version == 0 and not tables:
            if read_only:
                raise ValueError(f"cannot create feedback store {path}: the file or its folder is read-only")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                app_id, version, tables = header(conn)  # another process may have won the race
                if app_id == 0 and version == 0 and not tables:
                    _create(conn, meta_text or "{}")
                    app_id, version, tables = APPLICATION_ID, SCHEMA_VERSION, {"meta", "feedback"}
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
    except sqlite3.OperationalError:
        raise
    except sqlite3.DatabaseError as e:
        raise ValueError(
            f"{path} is not an rlhf-gym feedback store: cannot read it as SQLite ({e}); "
            "expected a file written by FeedbackStore, or a new path"
        ) from e
    if app_id != APPLICATION_ID or not {"meta", "feedback"} <= tables:
        raise ValueError(
            f"{path} is a SQLite database but not an rlhf-gym feedback store (application_id "
            f"{app_id:#x}, tables {sorted(tables)}); expected application_id {APPLICATION_ID:#x} "
            "with tables 'meta' and 'feedback'"
        )
    try:
        stored = {key: json.loads(value) for key, value in conn.execute("SELECT key, value FROM meta")}
    except (ValueError, RecursionError) as e:
        raise ValueError(f"{path} has a corrupt meta table ({e}); expected JSON values") from e
    if version != SCHEMA_VERSION or stored.get("schema_version") != SCHEMA_VERSION:
        found = version if version != SCHEMA_VERSION else stored.get("schema_version")
        raise ValueError(
            f"{path} is a feedback store of schema version {found}; this rlhf-gym reads "
            f"schema version {SCHEMA_VERSION} only"
        )
    if stored.get("format") != FORMAT or not isinstance(stored.get("meta"), dict):
        raise ValueError(f"{path} has a malformed meta table; expected format {FORMAT!r}")
    if meta is not None and "task" in meta:
        check_task(path, stored["meta"], meta["task"])
    if not read_only:
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL syncs the WAL on every commit: an acknowledged human label must survive power loss.
        conn.execute("PRAGMA synchronous=FULL")
    return dict(stored["meta"])


def check_task(path: Path, stored: dict[str, Any], task: Any) -> None:
    """Raise unless the store's meta ``stored`` holds ``task``."""
    if task != stored.get("task"):
        raise ValueError(
            f"{path} holds feedback for task {stored.get('task')!r}, not {task!r}; expected the same "
            "task, or a new store path"
        )


def _create(conn: sqlite3.Connection, meta_text: str) -> None:
    for statement in SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.executemany(
        "INSERT INTO meta (key, value) VALUES (?, ?)",
        [
            ("format", json.dumps(FORMAT)),
            ("schema_version", json.dumps(SCHEMA_VERSION)),
            ("created", json.dumps(time.time())),
            ("meta", meta_text),
        ],
    )
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


_HINTS = {
    "SQLITE_BUSY": "another process holds the store's lock; try again when it is done",
    "SQLITE_LOCKED": "another connection holds the store's lock; try again when it is done",
    "SQLITE_FULL": "the disk is full; free some space and try again",
    "SQLITE_IOERR": "the disk failed to read or write",
    "SQLITE_READONLY": "the store, its folder or its filesystem is read-only",
    "SQLITE_PERM": "permission denied",
    "SQLITE_CANTOPEN": "check that the file and its folder exist and are readable",
    "SQLITE_CORRUPT": "the file is damaged",
}


def store_error(path: Path, error: sqlite3.Error, doing: str) -> OSError:
    """One clear line for a SQLite error while ``doing`` (e.g. ``"write"``) the store at ``path``."""
    name = getattr(error, "sqlite_errorname", "") or ""
    hint = _HINTS.get("_".join(name.split("_")[:2]), "")
    kind = PermissionError if name.startswith(("SQLITE_READONLY", "SQLITE_PERM")) else OSError
    return kind(
        f"cannot {doing} feedback store {path}: {error}"
        + (f" ({hint})" if hint else "")
        + "; nothing was changed"
    )
