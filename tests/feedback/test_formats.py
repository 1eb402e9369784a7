"""The portable export: a store's records to JSON Lines and back, and reading either form."""

import base64
import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from rlhf_gym.feedback.formats import (
    EXPORT_FORMAT,
    EXPORT_KEYS,
    export_store,
    feedback_info,
    import_store,
    read_feedback,
)
from rlhf_gym.feedback.store import FeedbackStore
from rlhf_gym.feedback.store_schema import FORMAT
from tests.feedback.test_store import META, assert_same, samples


def recorded_store(path: Path) -> list:
    """A store with one record of every kind (ids with a gap), varied effort and info, and a
    pending item; returns the records in order."""
    s = samples()
    with FeedbackStore(path, meta=META) as store:
        store.add(s["rating"])
        store.remove_last()  # ids start at 2
        for i, record in enumerate(s.values()):
            store.add(record, effort_seconds=0.25 * i, info={"round": i, "note": "ünïcode"})
        store.set_pending("query", {"seed": 9}, {"obs": np.zeros(2)})
    return list(s.values())


def test_export_import_round_trip_keeps_every_field(tmp_path):
    src, out, dst = tmp_path / "src.db", tmp_path / "out.jsonl", tmp_path / "dst.db"
    records = recorded_store(src)
    assert export_store(src, out) == len(records)
    lines = out.read_text(encoding="utf-8").splitlines()
    header = json.loads(lines[0])
    assert header == {"format": EXPORT_FORMAT, "schema_version": 1, "meta": META, "records": len(records)}
    first = json.loads(lines[1])
    assert list(first) == list(EXPORT_KEYS) and first["id"] == 2 and first["kind"] == "comparison"
    assert first["record"]["dataclass"] == "Comparison"
    assert base64.b64decode(first["arrays"]).startswith(b"PK")
    assert import_store(out, dst) == len(records)
    with FeedbackStore(src) as a, FeedbackStore(dst) as b:
        assert b.meta == a.meta == META
        keep = ("kind", "created", "teacher", "effort_seconds", "info")
        assert [{k: r[k] for k in keep} for r in b.rows()] == [{k: r[k] for k in keep} for r in a.rows()]
        assert [r["id"] for r in b.rows()] == list(range(1, len(records) + 1))  # renumbered
        for original, back in zip(records, b.records(), strict=True):
            assert_same(original, back)
        assert b.pending("query") is None and b.info()["pending"] == []  # not exported
        assert a.info() | {"path": "", "pending": []} == b.info() | {"path": ""}
    # exporting the import gives the same lines, ids aside
    assert export_store(dst, tmp_path / "again.jsonl") == len(records)
    again = (tmp_path / "again.jsonl").read_text(encoding="utf-8").splitlines()
    assert again[0] == lines[0]
    assert [{**json.loads(x), "id": 0} for x in again[1:]] == [{**json.loads(x), "id": 0} for x in lines[1:]]


def test_import_appends_to_a_store_of_the_same_task_only(tmp_path):
    src, out, dst = tmp_path / "src.db", tmp_path / "out.jsonl", tmp_path / "dst.db"
    recorded_store(src)
    export_store(src, out)
    with FeedbackStore(dst, meta={"task": "CartPole-v1", "seed": 5}) as store:
        store.add(samples()["estop"])
    assert import_store(out, dst, task="CartPole-v1") == 6
    with FeedbackStore(dst) as store:
        assert len(store) == 7 and store.meta["seed"] == 5 and store.rows()[0]["kind"] == "estop"
    other = tmp_path / "pendulum.db"
    FeedbackStore(other, meta={"task": "Pendulum-v1"}).close()
    data = other.read_bytes()
    with pytest.raises(ValueError, match=r"task 'Pendulum-v1', not 'CartPole-v1'"):
        import_store(out, other)
    assert other.read_bytes() == data
    with pytest.raises(
        ValueError, match=r"out\.jsonl holds feedback for task 'CartPole-v1', not 'Pendulum-v1'"
    ):
        import_store(out, tmp_path / "new.db", task="Pendulum-v1")
    assert not (tmp_path / "new.db").exists()


def test_import_with_task_fills_in_a_missing_one(tmp_path):
    src, out = tmp_path / "src.db", tmp_path / "out.jsonl"
    with FeedbackStore(src) as store:  # no meta at all
        store.add(samples()["rating"])
    export_store(src, out)
    import_store(out, tmp_path / "dst.db", task="CartPole-v1")
    with FeedbackStore(tmp_path / "dst.db") as store:
        assert store.meta == {"task": "CartPole-v1"} and len(store) == 1


def _edit_line(n: int, edit):
    def apply(text: str) -> str:
        lines = text.splitlines(keepends=True)
        lines[n - 1] = edit(lines[n - 1])
        return "".join(lines)

    return apply


def _edit_json(n: int, edit):
    def change(line: str) -> str:
        value = json.loads(line)
        edit(value)
        return json.dumps(value) + "\n"

    return _edit_line(n, change)


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (_edit_line(3, lambda line: line[:40] + "\n"), r"line 3: not a line of UTF-8 JSON"),
        (lambda text: text[:-30], r"line 7: not a line of UTF-8 JSON .*\(the file may be truncated\)"),
        (
            lambda text: text.rsplit("\n", 2)[0] + "\n",
            r"line 7: the file ends after 5 of the header's 6 records",
        ),
        (lambda text: text + text.splitlines(keepends=True)[1], r"line 8: the header announces 6 records"),
        (lambda text: "", r"is empty; expected a header line"),
        (lambda text: text.split("\n", 1)[1], r"line 1: not an rlhf-gym feedback export header"),
        (_edit_json(1, lambda h: h.update(format="rlhf-gym feedback store")), r"line 1: not an rlhf-gym"),
        (_edit_json(1, lambda h: h.update(schema_version=2)), r"line 1: an export of schema version 2"),
        (_edit_json(1, lambda h: h.update(records="6")), r"line 1: records must be a count >= 0; got '6'"),
        (_edit_json(1, lambda h: h.update(extra=1)), r"line 1: header keys .*extra.*expected exactly"),
        (
            _edit_json(2, lambda r: r.update(arrays=r["arrays"][:-3] + "!!!")),
            r"line 2: arrays is not valid base64",
        ),
        (
            _edit_json(2, lambda r: r.update(arrays="aGVsbG8=")),
            r"line 2: arrays is 5 bytes of base64 but not an .npz",
        ),
        (
            _edit_json(3, lambda r: r.update(arrays=base64.b64encode(b"PK no zip").decode())),
            "line 3: the correction record does not decode",
        ),
        (_edit_json(3, lambda r: r.pop("info")), r"line 3: a record line with keys .*; expected exactly"),
        (_edit_json(3, lambda r: r.update(kind="vote")), r"line 3: kind is 'vote'; expected one of"),
        (
            _edit_json(3, lambda r: r.update(kind=["rating"])),
            r"line 3: kind is \['rating'\]; expected one of",
        ),
        (
            _edit_json(2, lambda r: r["record"]["fields"]["query"].update(fields=[1])),
            r"line 2: the comparison record does not decode",
        ),
        (
            _edit_json(4, lambda r: r.update(effort_seconds=-1)),
            r"line 4: effort_seconds is -1; expected a number",
        ),
        (
            _edit_json(4, lambda r: r.update(created="noon")),
            r"line 4: created is 'noon'; expected a unix time",
        ),
        (
            _edit_json(5, lambda r: r.update(teacher="eve")),
            r"line 5: teacher is 'eve'; expected the record's own",
        ),
        (_edit_json(5, lambda r: r["record"].update(dataclass="EStop")), r"line 5: the \w+ record does not"),
        (_edit_json(6, lambda r: r.update(info=[1])), r"line 6: info is \[1\]; expected a JSON object"),
        (_edit_line(2, lambda line: line.replace('"id":', '"id": NaN, "x":', 1)), r"line 2: not a line of"),
    ],
)
def test_corrupt_export_is_named_by_line_and_leaves_the_target_unchanged(tmp_path, corrupt, message):
    src, out, dst = tmp_path / "src.db", tmp_path / "out.jsonl", tmp_path / "dst.db"
    recorded_store(src)
    export_store(src, out)
    out.write_text(corrupt(out.read_text(encoding="utf-8")), encoding="utf-8")
    with FeedbackStore(dst, meta=META) as store:
        store.add(samples()["estop"])
    data = dst.read_bytes()
    with pytest.raises(ValueError, match=message):
        import_store(out, dst)
    assert dst.read_bytes() == data and not Path(f"{dst}-wal").exists()
    with pytest.raises(ValueError, match=message):
        import_store(out, tmp_path / "new.db")
    assert not (tmp_path / "new.db").exists()


def test_export_that_is_not_utf8_is_rejected(tmp_path):
    src, out = tmp_path / "src.db", tmp_path / "out.jsonl"
    recorded_store(src)
    export_store(src, out)
    out.write_bytes(out.read_bytes().replace(b"\xc3\xbc", b"\xfc", 1))  # latin-1 in a UTF-8 file
    with pytest.raises(ValueError, match=r"line 2: not a line of UTF-8 JSON \('utf-8' codec"):
        import_store(out, tmp_path / "dst.db")
    assert not (tmp_path / "dst.db").exists()


def test_export_is_never_half_written(tmp_path, monkeypatch):
    src, out = tmp_path / "src.db", tmp_path / "out.jsonl"
    recorded_store(src)
    out.write_text("the previous export\n")
    calls = []

    def failing_b64encode(blob: bytes) -> bytes:
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk full")
        return base64.standard_b64encode(blob)

    monkeypatch.setattr("rlhf_gym.feedback.formats.base64.b64encode", failing_b64encode)
    with pytest.raises(OSError, match="disk full"):
        export_store(src, out)
    assert out.read_text() == "the previous export\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl", "src.db"]
    monkeypatch.undo()
    assert export_store(src, out) == 6 and len(out.read_text().splitlines()) == 7


def test_export_errors_create_nothing(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"feedback store .*missing\.db does not exist"):
        export_store(tmp_path / "missing.db", tmp_path / "out.jsonl")
    assert sorted(tmp_path.iterdir()) == []
    recorded_store(tmp_path / "src.db")
    with pytest.raises(FileNotFoundError, match=r"folder .*nowhere does not exist"):
        export_store(tmp_path / "src.db", tmp_path / "nowhere" / "out.jsonl")
    with pytest.raises(ValueError, match="onto itself"):
        export_store(tmp_path / "src.db", tmp_path / "src.db")
    conn = sqlite3.connect(tmp_path / "src.db")
    conn.execute("UPDATE feedback SET arrays = x'00' WHERE id = 3")
    conn.commit()
    conn.close()
    with pytest.raises(ValueError, match=r"row 3 of feedback store .* is corrupt"):
        export_store(tmp_path / "src.db", tmp_path / "out.jsonl")
    assert not (tmp_path / "out.jsonl").exists()


def test_read_feedback_and_info_agree_for_a_store_and_its_export(tmp_path):
    src, out = tmp_path / "src.db", tmp_path / "out.jsonl"
    records = recorded_store(src)
    export_store(src, out)
    (meta_a, a), (meta_b, b) = read_feedback(src), read_feedback(out)
    assert meta_a == meta_b == META
    assert [row for row, _ in a] == [row for row, _ in b]
    for original, (_, x), (_, y) in zip(records, a, b, strict=True):
        assert_same(original, x)
        assert_same(original, y)
    info_a, info_b = feedback_info(src), feedback_info(out)
    assert (info_a["format"], info_b["format"]) == (FORMAT, EXPORT_FORMAT)
    assert info_a["pending"] == ["query"] and info_b["pending"] == []
    drop = {"format": None, "path": None, "pending": None}
    assert info_a | drop == info_b | drop and info_b["total"] == 6 and info_b["effort_seconds"] == 3.75
    with pytest.raises(FileNotFoundError, match=r"nothing\.db does not exist"):
        read_feedback(tmp_path / "nothing.db")
    with pytest.raises(FileNotFoundError):
        feedback_info(tmp_path / "nothing.jsonl")
    (tmp_path / "empty.db").touch()
    with pytest.raises(ValueError, match="empty file"):
        feedback_info(tmp_path / "empty.db")
    assert (tmp_path / "empty.db").stat().st_size == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db", "out.jsonl", "src.db"]
