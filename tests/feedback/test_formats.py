"""The portable export: a store's records to JSON Lines and back, and reading either form."""

import base64
import io
import json
import os
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from rlhf_gym.feedback.formats import (
    EXPORT_FORMAT,
    EXPORT_KEYS,
    Imported,
    export_store,
    feedback_info,
    import_store,
    read_feedback,
)
from rlhf_gym.feedback.store import FeedbackStore
from rlhf_gym.feedback.store_schema import FORMAT
from rlhf_gym.types import (
    Comparison,
    Correction,
    Demonstration,
    EStop,
    Query,
    Rating,
    Segment,
    Signal,
    Trajectory,
)
from tests.feedback.test_store import META, assert_same, samples, valid_samples


def recorded_store(path: Path) -> list:
    """A store with one record of every kind (ids with a gap), varied effort and info, and a
    pending item; returns the records in order. The records fit META's task, CartPole-v1."""
    s = valid_samples()
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
    assert import_store(out, dst) == Imported(added=len(records), duplicates=0)
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
    assert import_store(out, dst, task="CartPole-v1") == Imported(6, 0)
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
        store.add(valid_samples()["rating"])
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


# ----- importing a file from a stranger: every record checked, nothing stored until all pass -----


def _segment(h: int = 4, obs=None, actions=None, rewards=None, absorbing=None) -> Segment:
    """A CartPole-v1 segment, with any of its arrays replaced."""
    return Segment(
        np.zeros((h, 4), np.float32) if obs is None else obs,
        np.ones(h, np.int64) if actions is None else actions,
        np.ones(h) if rewards is None else rewards,
        np.zeros(h, bool) if absorbing is None else absorbing,
    )


def _comparison(label=1.0, first=None, **kw) -> Comparison:
    return Comparison(Query(_segment() if first is None else first, _segment()), label, **kw)


BAD_RECORDS = {
    "label 7": (_comparison(7.0), r"comparison\.label is 7\.0; expected a number in \[0, 1\]"),
    "label nan": (_comparison(float("nan")), r"comparison\.label is nan; expected a number in \[0, 1\]"),
    "label 'left'": (_comparison("left"), r"comparison\.label is 'left'; expected a number"),
    "label True": (_comparison(True), r"comparison\.label is True; expected a number"),
    "probability 2": (_comparison(probability=2.0), r"comparison\.probability is 2\.0; expected nan"),
    "obs of 3": (
        _comparison(first=_segment(obs=np.zeros((4, 3)))),
        r"comparison\.query\.first\.obs's shape is \(4, 3\); expected \(4, 4\): 4 steps",
    ),
    "obs nan": (
        _comparison(first=_segment(obs=np.array([[0, 0, 0, 0], [0, np.nan, 0, 0]] * 2, np.float32))),
        r"comparison\.query\.first\.obs\[1\] \(the first of 2 bad steps\) is \[0\.0, nan, 0\.0, 0\.0\]; "
        r"expected finite observations",
    ),
    "obs inf": (
        _comparison(first=_segment(obs=np.full((4, 4), np.inf))),
        r"obs\[0\] \(the first of 4 bad steps\) is \[inf, inf, inf, inf\]; expected finite",
    ),
    "obs strings": (
        _comparison(first=_segment(obs=np.full((4, 4), "a"))),
        r"obs's dtype is '<U1'; expected numbers",
    ),
    "action 2": (
        _comparison(first=_segment(actions=np.array([0, 1, 2, 1]))),
        r"first\.actions\[2\] is 2; expected actions of Discrete\(2\): integers in \[0, 1\]",
    ),
    "action -1": (
        _comparison(first=_segment(actions=np.array([0, -1, 0, 1]))),
        r"actions\[1\] is -1; expected",
    ),
    "action 0.5": (
        _comparison(first=_segment(actions=np.array([0.5, 1, 0, 1]))),
        r"actions\[0\] is 0\.5; expected",
    ),
    "actions of 3 steps": (
        _comparison(first=_segment(actions=np.zeros(3, np.int64))),
        r"first\.actions's shape is \(3,\); expected \(4,\): 4 steps \(as many as the observations\)",
    ),
    "reward nan": (
        _comparison(first=_segment(rewards=np.array([1.0, np.nan, 1.0, 1.0]))),
        r"first\.true_rewards\[1\] is nan; expected finite numbers",
    ),
    "rewards of 5 steps": (
        _comparison(first=_segment(rewards=np.ones(5))),
        r"true_rewards's shape is \(5,\)",
    ),
    "absorbing ints": (
        _comparison(first=_segment(absorbing=np.zeros(4, np.int64))),
        r"absorbing's dtype is 'int64'; expected bool",
    ),
    "no steps": (
        _comparison(first=_segment(0)),
        r"obs's shape is \(0, 4\); expected \(steps, \*observation_shape\)",
    ),
    "a segment for a query": (
        Comparison(_segment(), 1.0),  # type: ignore[arg-type]
        r"comparison\.query is a Segment; expected a Query",
    ),
    "rating 5 of 5": (
        Rating(_segment(), 5, 5),
        r"rating\.level is 5; expected an int in \[0, 4\] \(levels is 5\)",
    ),
    "rating of 1 level": (Rating(_segment(), 0, 1), r"rating\.levels is 1; expected an int in \[2, 1000\]"),
    "rating 2.5": (Rating(_segment(), 2.5, 5), r"rating\.level is 2\.5; expected an int"),  # type: ignore[arg-type]
    "credit nan": (
        Signal(_segment(), np.array([0.5, np.nan, 0, 0]), True),
        r"signal\.credit is \[0\.5, nan, 0\.0, 0\.0\]; expected weights in \[0, 1\]",
    ),
    "credit of 3 steps": (Signal(_segment(), np.ones(3), True), r"signal\.credit is .*; expected 4 numbers"),
    "credit all zero": (
        Signal(_segment(), np.zeros(4), True),
        r"credit is .*; expected weights .* not all zero",
    ),
    "positive 1": (Signal(_segment(), np.ones(4), 1), r"signal\.positive is 1; expected a bool"),  # type: ignore[arg-type]
    "correction of 4 and 3": (
        Correction(_segment(), _segment(3)),
        r"correction\.corrected's length is 3; expected 4 steps, the length of correction\.original",
    ),
    "estop of 4 and 5": (EStop(_segment(), _segment(5)), r"estop\.after's length is 5; expected 4 steps"),
    "demonstration of 2 and 1": (
        Demonstration(
            Trajectory(np.zeros((4, 4)), np.zeros(4, int), np.ones(4), np.zeros(4, bool), True, np.zeros(4)),
            (_segment(2), _segment(2)),
            (_segment(2),),
        ),
        r"demonstration\.against's length is 1; expected 2, one agent segment per demo segment",
    ),
    "final_obs of 3": (
        Demonstration(
            Trajectory(np.zeros((4, 4)), np.zeros(4, int), np.ones(4), np.zeros(4, bool), True, np.zeros(3)),
            (_segment(2),),
            (_segment(2),),
        ),
        r"demonstration\.episode\.final_obs's shape is \(3,\); expected \(4,\)",
    ),
}


def _export_with(folder: Path, record, task: str = "CartPole-v1", first=None) -> Path:
    """An export of a valid record (line 2) and then ``record`` (line 3), in a new ``folder``."""
    folder.mkdir(exist_ok=True)
    src, out = folder / "src.db", folder / "out.jsonl"
    with FeedbackStore(src, meta={"task": task}) as store:
        store.add(valid_samples()["rating"] if first is None else first)
        store.add(record)
    export_store(src, out)
    src.unlink()
    return out


@pytest.mark.parametrize("case", sorted(BAD_RECORDS))
def test_an_invalid_record_is_named_by_line_and_stores_nothing(tmp_path, case):
    record, message = BAD_RECORDS[case]
    out = _export_with(tmp_path / "in", record)
    dst = tmp_path / "dst.db"
    with FeedbackStore(dst, meta=META) as store:
        store.add(valid_samples()["estop"])
    data = dst.read_bytes()
    with pytest.raises(ValueError, match=rf"out\.jsonl, line 3: [\w.]*{message}"):
        import_store(out, dst)
    assert dst.read_bytes() == data and not Path(f"{dst}-wal").exists()
    with pytest.raises(ValueError, match=r"line 3: "):
        import_store(out, tmp_path / "new.db")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dst.db", "in"]


def test_box_actions_must_be_within_bounds_except_the_padding(tmp_path):
    """Pendulum-v1 acts in Box(-2, 2, (1,)): a zero action on an absorbing step is padding."""

    def pendulum(actions, absorbing=(False, False, False)):
        obs, actions = np.zeros((3, 3), np.float32), np.array(actions, np.float32)[:, None]
        return Rating(Segment(obs, actions, np.zeros(3), np.array(absorbing)), 1, 3)

    good = pendulum([2.0, -2.0, 0.0])
    ulp = pendulum([2.0, -2.0, float(np.nextafter(np.float32(2), np.float32(3)))])  # a float32 ulp past
    out = _export_with(tmp_path / "good", ulp, "Pendulum-v1", first=good)
    assert import_store(out, tmp_path / "good.db") == Imported(2, 0)
    for i, (actions, message) in enumerate(
        [
            (
                [0.0, 2.1, 0.0],
                r"rating\.segment\.actions\[1\] is \[2\.0999999046325684\]; expected actions of Box",
            ),
            (
                [0.0, np.nan, 0.0],
                r"actions\[1\] is \[nan\]; expected actions of Box.*: finite and within its bounds",
            ),
            ([-3.0, -3.0, 0.0], r"actions\[0\] \(the first of 2 bad steps\) is \[-3\.0\]"),
        ]
    ):
        out = _export_with(tmp_path / f"bad{i}", pendulum(actions), "Pendulum-v1", first=good)
        with pytest.raises(ValueError, match=rf"line 3: [\w.]*{message}"):
            import_store(out, tmp_path / "bad.db")
        assert not (tmp_path / "bad.db").exists()
    from gymnasium import spaces

    from rlhf_gym.feedback.validate import check_record

    # a Box that excludes zero: the zero action passes on an absorbing step only
    box = spaces.Box(1.0, 2.0, (1,))
    padded = Segment(np.zeros((2, 3)), np.array([[1.5], [0.0]]), np.zeros(2), np.array([False, True]))
    check_record(Rating(padded, 1, 3), spaces.Box(-1, 1, (3,)), box)
    live = Segment(np.zeros((2, 3)), np.array([[1.5], [0.0]]), np.zeros(2), np.array([False, False]))
    with pytest.raises(ValueError, match=r"record: rating\.segment\.actions\[1\] is \[0\.0\]"):
        check_record(Rating(live, 1, 3), spaces.Box(-1, 1, (3,)), box)


def _with_arrays(a0: bytes):
    """An edit of a record line that replaces its array ``a0`` by ``a0`` (the bytes of a .npy)."""

    def edit(record: dict) -> None:
        blob = base64.b64decode(record["arrays"])
        buf = io.BytesIO()
        with zipfile.ZipFile(io.BytesIO(blob)) as src, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as dst:
            for member in src.infolist():
                dst.writestr(member.filename, a0 if member.filename == "a0.npy" else src.read(member))
        record["arrays"] = base64.b64encode(buf.getvalue()).decode()

    return edit


def _npy_claiming(shape: tuple[int, ...], data: bytes = b"") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": shape})
    return buf.getvalue() + data


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        # an npy header claiming a 2.9 TiB array
        (
            _edit_json(3, _with_arrays(_npy_claiming((400_000_000_000,)))),
            r"\(2\.9 TiB\); the limit is 256\.0 MiB",
        ),
        # 2 MB of deflated zeros that expand into a 1.6 GB array
        (
            _edit_json(3, _with_arrays(_npy_claiming((200_000_000,), bytes(2**21)))),
            r"line 3: the correction record does not decode \(array 'a0' claims shape \(200000000,\) of "
            r"float64 \(1\.5 GiB\); the limit is 256\.0 MiB per array\)",
        ),
        (
            _edit_line(2, lambda line: "[" * 100_000 + "]" * 100_000 + "\n"),
            r"line 2: not a line of UTF-8 JSON \(it",
        ),
        (
            _edit_line(1, lambda line: '{"a":' * 100_000 + "1" + "}" * 100_000 + "\n"),
            r"line 1: .* nests too deep",
        ),
        (
            _edit_json(
                4, lambda r: r["record"]["fields"].update(teacher=json.loads('{"list":[' * 80 + "]}" * 80))
            ),
            r"line 4: the demonstration record does not decode \(.*nests more than 64 deep",
        ),
    ],
    ids=["2.9 TiB header", "1.6 GB bomb", "JSON 100k deep", "header 100k deep", "record 80 deep"],
)
def test_resource_bombs_are_named_by_line_and_store_nothing(tmp_path, corrupt, message):
    test_corrupt_export_is_named_by_line_and_leaves_the_target_unchanged(tmp_path, corrupt, message)


def test_a_line_over_the_limit_is_named_and_never_read_whole(tmp_path, monkeypatch):
    from rlhf_gym.feedback import jsonl

    src, out, dst = tmp_path / "src.db", tmp_path / "out.jsonl", tmp_path / "dst.db"
    recorded_store(src)
    export_store(src, out)
    lines = out.read_bytes().splitlines(keepends=True)
    limit = max(len(line) for line in lines)
    monkeypatch.setattr(jsonl, "MAX_LINE_BYTES", limit, raising=False)
    assert len(read_feedback(out)[1]) == 6  # every line within the limit: read as before
    reads = []
    real_open = open

    class Spy:  # the file as read_export sees it: every read is recorded
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def readline(self, size=-1):
            reads.append(size)
            return self.f.readline(size)

        def __iter__(self):
            raise AssertionError("read_export iterates whole lines")

    monkeypatch.setattr(jsonl, "open", lambda *a, **k: Spy(real_open(*a, **k)), raising=False)
    huge = b'{"id": "' + b"x" * (50 * limit) + b'"}\n'
    for n, where in ((3, "a record"), (1, "the header")):
        out.write_bytes(b"".join(lines[: n - 1]) + huge + b"".join(lines[n:]))
        with pytest.raises(
            ValueError, match=rf"out\.jsonl, line {n}: the line is longer than .*; expected {where}"
        ):
            import_store(out, dst)
        assert not dst.exists() and reads and all(0 < size <= limit + 1 for size in reads)
        reads.clear()


def test_import_is_idempotent_and_counts_duplicates(tmp_path):
    src, out, dst = tmp_path / "src.db", tmp_path / "out.jsonl", tmp_path / "dst.db"
    records = recorded_store(src)
    export_store(src, out)
    assert import_store(out, dst) == Imported(6, 0)
    data = dst.read_bytes()
    assert import_store(out, dst) == Imported(0, 6)
    assert dst.read_bytes() == data
    assert import_store(out, src) == Imported(0, 6)  # the store it came from holds them all
    with FeedbackStore(dst) as store:
        assert len(store) == 6
        store.remove(store.rows()[1]["id"])  # one is gone: the next import puts it back, at the end
        store.add(records[0])  # the same label given again later is a new label
    assert import_store(out, dst) == Imported(1, 5)
    with FeedbackStore(dst) as store:
        kinds = [r.kind for r in records]
        assert [r["kind"] for r in store.rows()] == [kinds[0], *kinds[2:], kinds[0], kinds[1]]
    lines = out.read_text(encoding="utf-8").splitlines(keepends=True)
    header = json.loads(lines[0]) | {"records": 8}
    twice = tmp_path / "twice.jsonl"
    twice.write_text("".join([json.dumps(header) + "\n", *lines[1:], lines[1], lines[4]]), encoding="utf-8")
    assert import_store(twice, tmp_path / "new.db") == Imported(6, 2)


def test_an_import_needs_a_task_to_check_its_records_against(tmp_path):
    src, out = tmp_path / "src.db", tmp_path / "out.jsonl"
    with FeedbackStore(src) as store:  # no meta at all
        store.add(valid_samples()["rating"])
    export_store(src, out)
    with pytest.raises(
        ValueError, match=r"neither it nor .*dst\.db names the task they are for; expected --task"
    ):
        import_store(out, tmp_path / "dst.db")
    FeedbackStore(tmp_path / "dst.db", meta=META).close()
    assert import_store(out, tmp_path / "dst.db") == Imported(1, 0)  # the store's task
    with pytest.raises(ValueError, match=r"unknown task 'Nope-v0'"):
        import_store(out, tmp_path / "other.db", task="Nope-v0")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dst.db", "out.jsonl", "src.db"]


def test_a_directory_is_named_as_one_by_every_command(tmp_path):
    src, out = tmp_path / "src.db", tmp_path / "out.jsonl"
    recorded_store(src)
    export_store(src, out)
    (tmp_path / "folder").mkdir()
    folder = tmp_path / "folder"
    expected = r"folder is a directory; expected a feedback store or a \.jsonl export"
    for call in (
        lambda: read_feedback(folder),
        lambda: feedback_info(folder),
        lambda: export_store(folder, out),
    ):
        with pytest.raises(ValueError, match=expected):
            call()
    with pytest.raises(ValueError, match=r"folder is a directory; expected a feedback store file"):
        import_store(out, folder)
    with pytest.raises(ValueError, match=r"folder is a directory; expected a \.jsonl feedback export"):
        import_store(folder, tmp_path / "new.db")
    with pytest.raises(ValueError, match=r"cannot write the export to .*folder: it is a directory"):
        export_store(src, folder)
    run = tmp_path / "run"
    run.mkdir()
    src.rename(run / "feedback.sqlite")
    with pytest.raises(ValueError, match=r"run is a directory \(it holds .*feedback\.sqlite: pass that\)"):
        feedback_info(run)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "out.jsonl", "run"]
    assert list(folder.iterdir()) == []


def _read_only_mount_works() -> bool:
    try:
        return subprocess.run(["unshare", "-rm", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.skipif(
    sys.platform != "linux" or not _read_only_mount_works(), reason="needs unshare -rm (Linux)"
)
def test_a_store_on_a_read_only_filesystem_is_read_by_info_and_export(tmp_path):
    """The store's folder is bind-mounted read-only in a private mount namespace: info and export
    read it (no -wal or -shm can be created there), and an import into it is one error line."""
    folder, out = tmp_path / "ro", tmp_path / "out.jsonl"
    folder.mkdir()
    recorded_store(folder / "s.sqlite")
    data = (folder / "s.sqlite").read_bytes()
    cli = f"{sys.executable} -m rlhf_gym.cli.main feedback"
    script = (
        f"mount --bind {folder} {folder} && mount -o remount,bind,ro {folder} {folder} && "
        f"{cli} info {folder}/s.sqlite; echo info=$?; {cli} export {folder}/s.sqlite {out}; echo export=$?; "
        f"{cli} import {out} {folder}/s.sqlite; echo import=$?; "
        f"{cli} import {out} {folder}/new.sqlite; echo new=$?"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert "info=0" in done.stdout and "total           6" in done.stdout, done.stdout + done.stderr
    assert "export=0" in done.stdout and "6 record(s) of" in done.stdout, done.stdout + done.stderr
    assert "import=2" in done.stdout and "new=2" in done.stdout, done.stdout + done.stderr
    errors = done.stderr.strip().splitlines()
    assert "Traceback" not in done.stderr and len(errors) == 2, done.stderr
    assert (
        errors[0].startswith("rlhf-gym: error: cannot import into feedback store")
        and "read-only" in errors[0]
    )
    assert (
        errors[1].startswith("rlhf-gym: error: cannot create feedback store") and "not writable" in errors[1]
    )
    assert (folder / "s.sqlite").read_bytes() == data and sorted(p.name for p in folder.iterdir()) == [
        "s.sqlite"
    ]
    assert len(read_feedback(out)[1]) == 6


def test_every_refusal_is_one_cli_error_line(tmp_path, capsys):
    """The command line turns each of these into one ``rlhf-gym: error:`` line and exit status 2."""
    from rlhf_gym.cli.main import main

    bad = _export_with(tmp_path / "in", _comparison(7.0))
    bomb = tmp_path / "bomb.jsonl"
    lines = (
        _export_with(tmp_path / "ok", _comparison(1.0)).read_text(encoding="utf-8").splitlines(keepends=True)
    )
    bomb.write_text(
        lines[0] + _edit_json(1, _with_arrays(_npy_claiming((400_000_000_000,))))(lines[1]) + lines[2],
        encoding="utf-8",
    )
    (tmp_path / "folder").mkdir()
    for args, message in (
        (
            ["import", str(bad), str(tmp_path / "new.db")],
            "line 3: comparison.label is 7.0; expected a number in [0, 1]",
        ),
        (["import", str(bomb), str(tmp_path / "new.db")], "(2.9 TiB); the limit is 256.0 MiB per array"),
        (["info", str(bomb)], "line 2: the rating record does not decode"),
        (
            ["info", str(tmp_path / "folder")],
            "folder is a directory; expected a feedback store or a .jsonl export",
        ),
        (
            ["import", str(bad), str(tmp_path / "folder")],
            "folder is a directory; expected a feedback store file",
        ),
    ):
        assert main(["feedback", *args]) == 2, args
        err = capsys.readouterr().err.strip()
        assert err.startswith("rlhf-gym: error:") and message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "new.db").exists()
    assert main(["feedback", "import", str(tmp_path / "ok" / "out.jsonl"), str(tmp_path / "new.db")]) == 0
    assert main(["feedback", "import", str(tmp_path / "ok" / "out.jsonl"), str(tmp_path / "new.db")]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith("new.db, 2 duplicate(s) already there skipped")
