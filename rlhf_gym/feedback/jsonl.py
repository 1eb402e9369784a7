"""Reading a JSON Lines export of feedback line by line, checking each line as it goes.

The format is documented in ``rlhf_gym.feedback.formats``, which writes it (``export_store``) and
builds on ``read_export`` to read it (``read_feedback``, ``feedback_info``, ``import_store``). Every
error names the file and the line, and says what was expected there. A line is parsed with
Python's ``json`` (a line nested too deep is an error, not a ``RecursionError``), and a record's
arrays are decoded within the codec's size limits (``rlhf_gym.feedback.codec``).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rlhf_gym.feedback.codec import MAX_RECORD_BYTES, _size, decode_record
from rlhf_gym.feedback.store_schema import CORRUPT, SCHEMA_VERSION, check_path, json_object
from rlhf_gym.types import FEEDBACK_RECORDS, Feedback

EXPORT_FORMAT = "rlhf-gym feedback export"
EXPORT_KEYS = ("id", "kind", "created", "teacher", "effort_seconds", "info", "record", "arrays")
"""The keys of every record line of an export, in the order they are written."""

MAX_LINE_BYTES = MAX_RECORD_BYTES * 4 // 3 + 2**24
"""The longest line read, about 699 MiB: the base64 of a record's arrays at the codec's limit
(``MAX_RECORD_BYTES`` uncompressed, which the blob cannot exceed by more than the zip's overhead)
plus 16 MiB for the rest of the line. A longer line is an error, read no further."""

Entry = tuple[dict[str, Any], Feedback | None, str, bytes]
"""``(row, record, record_json, arrays_blob)`` of one record line; ``record`` is ``None`` where the
reader keeps only what it writes."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def read_export(
    path: Path,
    *,
    start: Callable[[dict[str, Any]], Callable[[Entry, str], bool]] | None = None,
    keep_records: bool = True,
) -> tuple[dict[str, Any], list[Entry]]:
    """The header and every ``(row, record, record_json, arrays_blob)`` of an export file, each
    line checked and each record decoded; a ``ValueError`` names the line and what was expected.

    Args:
        path: the export.
        start: called with the header; returns a check of each entry and its line's name, which
            returns whether to keep the entry (it raises for a bad one).
        keep_records: keep the decoded records (else ``None``: a decoded record may be far larger
            than its line, so a reader that only copies lines drops them).
    """
    check_path(path, "a .jsonl feedback export")
    if not path.is_file():
        raise FileNotFoundError(f"feedback export {path} does not exist")
    header: dict[str, Any] | None = None
    check: Callable[[Entry, str], bool] | None = None
    entries: list[Entry] = []
    lineno = read = 0
    with open(path, "rb") as f:
        # a line is read within the limit, never whole: a multi-GB line must not fill the memory
        for lineno, raw in enumerate(iter(lambda: f.readline(MAX_LINE_BYTES + 1), b""), 1):
            where = f"{path}, line {lineno}"
            expected = "the header" if header is None else "a record"
            if len(raw) > MAX_LINE_BYTES:
                raise ValueError(
                    f"{where}: the line is longer than {_size(MAX_LINE_BYTES)}, the limit of one line; "
                    f"expected {expected} (a record's arrays hold at most {_size(MAX_RECORD_BYTES)})"
                )
            try:
                value = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
            except (ValueError, RecursionError) as e:  # UnicodeDecodeError included
                cut = "" if raw.endswith(b"\n") else " (the file may be truncated)"
                if isinstance(e, RecursionError):
                    e = ValueError("it nests too deep")
                raise ValueError(
                    f"{where}: not a line of UTF-8 JSON ({e}){cut}; expected {expected}"
                ) from None
            if header is None:
                header = check_header(value, where)
                check = None if start is None else start(header)
            elif read == header["records"]:
                raise ValueError(
                    f"{where}: the header announces {header['records']} records; expected the end"
                )
            else:
                read += 1
                row, record, record_json, blob = check_entry(value, where)
                if check is None or check((row, record, record_json, blob), where):
                    entries.append((row, record if keep_records else None, record_json, blob))
    if header is None:
        raise ValueError(f"{path} is empty; expected a header line with format {EXPORT_FORMAT!r}")
    if read < header["records"]:
        raise ValueError(
            f"{path}, line {lineno + 1}: the file ends after {read} of the header's "
            f"{header['records']} records; the export is truncated"
        )
    return header, entries


def check_header(value: Any, where: str) -> dict[str, Any]:
    """The header line's object, checked: format, schema version, meta and the record count."""
    keys = {"format", "schema_version", "meta", "records"}
    if not isinstance(value, dict) or value.get("format") != EXPORT_FORMAT:
        raise ValueError(
            f"{where}: not an rlhf-gym feedback export header; expected an object with format "
            f"{EXPORT_FORMAT!r}, schema_version, meta and records"
        )
    if set(value) != keys:
        raise ValueError(f"{where}: header keys {sorted(value)}; expected exactly {sorted(keys)}")
    version = value["schema_version"]
    if version != SCHEMA_VERSION or isinstance(version, bool):
        raise ValueError(
            f"{where}: an export of schema version {version!r}; this rlhf-gym reads schema version "
            f"{SCHEMA_VERSION} only"
        )
    json_object(value["meta"], f"{where}: meta")
    n = value["records"]
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"{where}: records must be a count >= 0; got {n!r}")
    return value


def check_entry(value: Any, where: str) -> tuple[dict[str, Any], Feedback, str, bytes]:
    """The ``(row, record, record_json, arrays_blob)`` of one record line, checked and decoded."""
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
    try:
        record_json = json.dumps(value["record"], allow_nan=False, separators=(",", ":"))
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
