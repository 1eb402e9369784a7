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
"""

from __future__ import annotations

import io
import json
import sqlite3
import zipfile
from typing import Any

import numpy as np

APPLICATION_ID = 0x524C4846
"""``PRAGMA application_id`` of every feedback store: "RLHF" in ASCII."""


FORMAT = "rlhf-gym feedback store"


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
    except (TypeError, ValueError) as e:
        text, ok = str(e), False
    if not ok:
        raise ValueError(
            f"{what} must be a dict with str keys and JSON values (str, finite numbers, bools, None, "
            f"lists, dicts); got {value!r}"
        )
    return text


def check_key(key: Any) -> None:
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


def load_npz(blob: bytes) -> dict[str, np.ndarray]:
    loaded = np.load(io.BytesIO(blob), allow_pickle=False)
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise ValueError("the arrays blob is not an .npz archive")
    with loaded:
        return {name: loaded[name] for name in loaded.files}


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
