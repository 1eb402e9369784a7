import dataclasses
import io
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from rlhf_gym.feedback.store import FeedbackStore
from rlhf_gym.feedback.store_schema import APPLICATION_ID
from rlhf_gym.types import (
    FEEDBACK_RECORDS,
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

REPO = Path(__file__).resolve().parents[2]
META = {"task": "CartPole-v1", "seed": 0}


def seg(rng: np.random.Generator, h: int = 4, obs_dim: int = 3, continuous: bool = False) -> Segment:
    actions = rng.normal(size=(h, 2)).astype(np.float32) if continuous else rng.integers(0, 2, h)
    absorbing = np.zeros(h, bool)
    absorbing[-1] = True
    return Segment(rng.normal(size=(h, obs_dim)).astype(np.float32), actions, rng.normal(size=h), absorbing)


def samples() -> dict[str, object]:
    """One record of every kind, with mixed dtypes, shapes, a nan and non-default teachers."""
    rng = np.random.default_rng(0)
    episode = Trajectory(
        rng.normal(size=(6, 3)), rng.integers(0, 2, 6), np.ones(6), np.zeros(6, bool), True, np.ones(3)
    )
    demo = tuple(Segment(episode.obs[i : i + 3], episode.actions[i : i + 3], np.ones(3), np.zeros(3, bool))
                 for i in (0, 3))  # fmt: skip
    return {
        "comparison": Comparison(Query(seg(rng), seg(rng)), 1.0, teacher="oracle"),
        "correction": Correction(seg(rng, continuous=True), seg(rng, continuous=True), teacher="ada"),
        "demonstration": Demonstration(episode, demo, (seg(rng, 3), seg(rng, 3)), teacher="ada"),
        "rating": Rating(seg(rng, h=1, obs_dim=1), 3, 5, teacher="bob"),
        "signal": Signal(seg(rng), np.array([0.1, 0.2, 0.3, 0.4], np.float32), False, teacher="bob"),
        "estop": EStop(seg(rng), seg(rng), teacher="ada"),
    }


def cartpole_seg(rng: np.random.Generator, h: int = 4) -> Segment:
    """A segment that fits CartPole-v1: 4 finite observations a step, actions 0 or 1, its last
    step absorbing with the zero action of padding."""
    absorbing = np.zeros(h, bool)
    absorbing[-1] = True
    actions = rng.integers(0, 2, h)
    actions[-1] = 0
    return Segment(rng.normal(size=(h, 4)).astype(np.float32), actions, rng.normal(size=h), absorbing)


def valid_samples() -> dict[str, object]:
    """One record of every kind that passes an import's checks for META's task, CartPole-v1."""
    rng = np.random.default_rng(0)
    episode = Trajectory(
        rng.normal(size=(6, 4)), rng.integers(0, 2, 6), np.ones(6), np.zeros(6, bool), True, np.ones(4)
    )
    demo = tuple(Segment(episode.obs[i : i + 3], episode.actions[i : i + 3], np.ones(3), np.zeros(3, bool))
                 for i in (0, 3))  # fmt: skip
    return {
        "comparison": Comparison(Query(cartpole_seg(rng), cartpole_seg(rng)), 1.0, teacher="oracle"),
        "correction": Correction(cartpole_seg(rng), cartpole_seg(rng), teacher="ada"),
        "demonstration": Demonstration(
            episode, demo, (cartpole_seg(rng, 3), cartpole_seg(rng, 3)), teacher="ada"
        ),
        "rating": Rating(cartpole_seg(rng, h=1), 3, 5, teacher="bob"),
        "signal": Signal(cartpole_seg(rng), np.array([0.1, 0.2, 0.3, 0.4], np.float32), False, teacher="bob"),
        "estop": EStop(cartpole_seg(rng), cartpole_seg(rng), teacher="ada"),
    }


def assert_same(a, b, where="record"):
    """Exact equality: classes, array dtypes and shapes, values (nan equals nan)."""
    assert type(a) is type(b), where
    if isinstance(a, np.ndarray):
        assert (a.dtype, a.shape) == (b.dtype, b.shape), where
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            assert_same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), where
    else:
        assert a == b, where


def test_samples_cover_every_record_type():
    assert set(samples()) == set(valid_samples()) == set(FEEDBACK_RECORDS)


@pytest.mark.parametrize("kind", sorted(FEEDBACK_RECORDS))
def test_round_trip_every_record_type(tmp_path, kind):
    record = samples()[kind]
    with FeedbackStore(tmp_path / "f.db", meta=META) as store:
        store.add(record)
        (back,) = store.records()
    assert_same(record, back)
    if kind == "comparison":
        assert np.isnan(back.probability)


def test_reopen_after_close_keeps_everything(tmp_path):
    path = tmp_path / "f.db"
    records = list(samples().values())
    with FeedbackStore(path, meta=META) as store:
        ids = [store.add(r, effort_seconds=1.5, info={"i": i}) for i, r in enumerate(records)]
    with FeedbackStore(path) as store:
        assert store.meta == META
        assert [row["id"] for row in store.rows()] == ids
        assert [row["info"] for row in store.rows()] == [{"i": i} for i in range(len(records))]
        for original, back in zip(records, store.records(), strict=True):
            assert_same(original, back)
        assert [type(r) for r in store.records("estop")] == [EStop]


def test_info_counts_and_rows(tmp_path):
    s = samples()
    t0 = time.time()
    with FeedbackStore(tmp_path / "f.db", meta=META) as store:
        store.add(s["comparison"], effort_seconds=2.0, info={"query_seed": 7})
        store.add(s["comparison"], effort_seconds=3.0)
        store.add(s["rating"], effort_seconds=0.5)
        info, rows = store.info(), store.rows()
        assert len(store) == 3
    assert info["counts"] == dict.fromkeys(FEEDBACK_RECORDS, 0) | {"comparison": 2, "rating": 1}
    assert (info["total"], info["effort_seconds"], info["schema_version"]) == (3, 5.5, 1)
    assert info["meta"] == META
    assert [(r["kind"], r["teacher"], r["effort_seconds"]) for r in rows] == [
        ("comparison", "oracle", 2.0),
        ("comparison", "oracle", 3.0),
        ("rating", "bob", 0.5),
    ]
    assert rows[0]["info"] == {"query_seed": 7} and rows[1]["info"] == {}
    assert all(t0 <= r["created"] <= time.time() for r in rows)


def test_remove_last_undoes_newest_and_never_reuses_ids(tmp_path):
    s = samples()
    with FeedbackStore(tmp_path / "f.db", meta=META) as store:
        store.add(s["rating"])
        second = store.add(s["estop"])
        assert_same(store.remove_last(), s["estop"])
        assert [type(r) for r in store.records()] == [Rating]
        assert store.add(s["signal"]) > second
        assert_same(store.remove_last(), s["signal"])
        assert_same(store.remove_last(), s["rating"])
        assert store.remove_last() is None
        assert len(store) == 0


def test_new_record_type_needs_no_store_change(tmp_path, monkeypatch):
    @dataclass(frozen=True)
    class Nudge:
        segment: Segment
        strength: float
        tags: tuple[str, ...]
        extra: dict
        teacher: str = ""
        kind: ClassVar[str] = "nudge"

    monkeypatch.setitem(FEEDBACK_RECORDS, "nudge", Nudge)
    record = Nudge(seg(np.random.default_rng(1)), float("-inf"), ("a", "b"), {"n": [1, 2.5, None]}, "ada")
    with FeedbackStore(tmp_path / "f.db") as store:
        store.add(record)
        (back,) = store.records("nudge")
    assert_same(record, back)
    assert back.extra == {"n": [1, 2.5, None]}


def test_survives_sigkill_after_each_acknowledged_add(tmp_path):
    path = tmp_path / "f.db"
    child = (
        "import os, signal, sys\n"
        "import numpy as np\n"
        "from rlhf_gym.feedback.store import FeedbackStore\n"
        "from rlhf_gym.types import Rating, Segment\n"
        "store = FeedbackStore(sys.argv[1], meta={'task': 'CartPole-v1'})\n"
        "for i in range(int(sys.argv[2])):\n"
        "    s = Segment(np.full((3, 2), i, np.float32), np.zeros(3, np.int64), np.full(3, i / 7),\n"
        "                np.zeros(3, bool))\n"
        "    print(store.add(Rating(s, i % 5, 5, teacher='child'), effort_seconds=0.5), flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    n = 12
    done = subprocess.run(
        [sys.executable, "-c", child, str(path), str(n)], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    acknowledged = [int(line) for line in done.stdout.split()]
    assert len(acknowledged) == n
    # The labels live only in the un-checkpointed WAL: the test exercises crash recovery.
    assert Path(f"{path}-wal").stat().st_size > 0
    with FeedbackStore(path, meta={"task": "CartPole-v1"}) as store:
        assert [row["id"] for row in store.rows()] == acknowledged
        records = store.records()
    assert [r.level for r in records] == [i % 5 for i in range(n)]
    np.testing.assert_array_equal(records[-1].segment.true_rewards, np.full(3, (n - 1) / 7))


def test_random_bytes_file_is_rejected_untouched(tmp_path):
    path = tmp_path / "notes.db"
    data = np.random.default_rng(0).bytes(4096)
    path.write_bytes(data)
    with pytest.raises(ValueError, match=r"notes\.db is not an rlhf-gym feedback store.*SQLite"):
        FeedbackStore(path, meta=META)
    assert path.read_bytes() == data


def test_other_sqlite_database_is_rejected_untouched(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (x)")
        conn.execute("INSERT INTO t VALUES (1)")
    conn.close()
    data = path.read_bytes()
    with pytest.raises(ValueError, match=r"other\.db is a SQLite database but not an rlhf-gym feedback"):
        FeedbackStore(path)
    assert path.read_bytes() == data
    assert not Path(f"{path}-wal").exists()


def test_other_schema_version_is_rejected_untouched(tmp_path):
    path = tmp_path / "f.db"
    with FeedbackStore(path, meta=META) as store:
        store.add(samples()["rating"])
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 2")
    conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    data = path.read_bytes()
    with pytest.raises(ValueError, match=r"f\.db is a feedback store of schema version 2.*schema version 1"):
        FeedbackStore(path, meta=META)
    assert path.read_bytes() == data


def test_store_file_has_marker_and_wal_mode(tmp_path):
    path = tmp_path / "f.db"
    FeedbackStore(path).close()
    conn = sqlite3.connect(path)
    names = ("application_id", "user_version", "journal_mode")
    pragmas = [conn.execute(f"PRAGMA {name}").fetchone()[0] for name in names]
    conn.close()
    assert pragmas == [APPLICATION_ID, 1, "wal"]


def _pickled_object_array() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, a0=np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("arrays", b"\x00\x01 not an npz"),
        ("arrays", _pickled_object_array()),
        ("record", '{"dataclass": "Rating", "fie'),
        ("record", '{"dataclass": "Rating", "fields": {"segment": {"array": "a99"}}}'),
    ],
)
def test_corrupt_row_names_the_row_and_store(tmp_path, column, value):
    path = tmp_path / "f.db"
    with FeedbackStore(path) as store:
        for _ in range(3):
            store.add(samples()["rating"])
    conn = sqlite3.connect(path)
    conn.execute(f"UPDATE feedback SET {column} = ? WHERE id = 2", (value,))
    conn.commit()
    conn.close()
    with FeedbackStore(path) as store:
        assert len(store.rows()) == 3  # rows() reads no arrays
        with pytest.raises(ValueError, match=rf"row 2 of feedback store {path} is corrupt"):
            store.records()


def test_task_mismatch_is_rejected_and_stored_meta_kept(tmp_path):
    path = tmp_path / "f.db"
    FeedbackStore(path, meta=META).close()
    with pytest.raises(ValueError, match=r"task 'CartPole-v1', not 'Pendulum-v1'"):
        FeedbackStore(path, meta={"task": "Pendulum-v1"})
    with FeedbackStore(path, meta={"task": "CartPole-v1", "seed": 3}) as store:
        assert store.meta == META


def test_bad_input_is_rejected_with_clear_errors(tmp_path):
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="meta must be a dict"):
        FeedbackStore(tmp_path / "a.db", meta={"seed": np.int64(0)})
    with FeedbackStore(tmp_path / "f.db") as store:
        with pytest.raises(TypeError, match="cannot store a Segment; expected a feedback record"):
            store.add(seg(rng))  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="effort_seconds must be a finite number >= 0; got -1"):
            store.add(samples()["rating"], effort_seconds=-1)
        with pytest.raises(ValueError, match="info must be a dict"):
            store.add(samples()["rating"], info={"x": float("nan")})
        bad = Signal(seg(rng), np.array([None] * 4, dtype=object), True)
        with pytest.raises(ValueError, match=r"Signal\.credit: cannot store an array of dtype object"):
            store.add(bad)
        with pytest.raises(ValueError, match="unknown record kind 'vote'"):
            store.records("vote")
        assert len(store) == 0
    with pytest.raises(ValueError, match="is closed"):
        len(store)


def test_one_thread_adds_while_another_reads(tmp_path):
    record = samples()["comparison"]
    errors: list[BaseException] = []
    with FeedbackStore(tmp_path / "f.db") as store:

        def writer():
            try:
                for _ in range(30):
                    store.add(record)
            except BaseException as e:  # pragma: no cover - reported below
                errors.append(e)

        thread = threading.Thread(target=writer)
        thread.start()
        seen = []
        while thread.is_alive():
            seen.append(len(store.records()))
        thread.join()
        assert not errors
        assert seen == sorted(seen)
        assert len(store) == 30


# ----- pending items ---------------------------------------------------------------------------


def pending_arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {
        "first.obs": rng.normal(size=(5, 4)).astype(np.float32),
        "actions": rng.integers(0, 3, 5),
        "absorbing": np.array([False, False, True, True, True]),
        "file": np.array(["ab", "c"]),  # a name numpy.savez itself could not take
        "scalar": np.array(2.5),
    }


def test_pending_round_trip_with_arrays_survives_reopen(tmp_path):
    path = tmp_path / "f.db"
    with FeedbackStore(path, meta=META) as store:
        assert store.pending("query") is None
        store.set_pending("query", {"seed": 1})
        store.set_pending("query", {"seed": 7, "shown": [1, 2], "ui": {"zoom": 1.5}}, pending_arrays())
        store.set_pending("other", {"n": 0})
        assert store.info()["pending"] == ["other", "query"]
    with FeedbackStore(path) as store:
        value, arrays = store.pending("query")
        assert value == {"seed": 7, "shown": [1, 2], "ui": {"zoom": 1.5}}
        assert arrays.keys() == pending_arrays().keys()
        for name, expected in pending_arrays().items():
            assert_same(expected, arrays[name], name)
        assert store.pending("other") == ({"n": 0}, {})
        store.clear_pending("query")
        store.clear_pending("query")  # twice is harmless
        assert store.pending("query") is None and store.pending("other") == ({"n": 0}, {})
        assert store.info()["pending"] == ["other"] and len(store) == 0


def test_pending_rejects_bad_input(tmp_path):
    with FeedbackStore(tmp_path / "f.db") as store:
        with pytest.raises(ValueError, match="pending value must be a dict"):
            store.set_pending("query", {"x": float("nan")})
        with pytest.raises(ValueError, match="pending value must be a dict"):
            store.set_pending("query", [1, 2])  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"arrays\['o'\] is a object; expected a numeric"):
            store.set_pending("query", {}, {"o": np.array([{}], dtype=object)})
        with pytest.raises(TypeError, match=r"arrays\['l'\] is a list"):
            store.set_pending("query", {}, {"l": [1, 2]})  # type: ignore[dict-item]
        with pytest.raises(ValueError, match="pending key must be a non-empty str; got ''"):
            store.set_pending("", {})
        with pytest.raises(ValueError, match="pending key must be a non-empty str; got 3"):
            store.add(samples()["rating"], resolves=3)  # type: ignore[arg-type]
        assert store.pending("query") is None and len(store) == 0


def test_add_resolves_its_pending_item_and_no_other(tmp_path):
    s = samples()
    with FeedbackStore(tmp_path / "f.db", meta=META) as store:
        store.add(s["rating"], resolves="query")  # nothing pending yet: a plain add
        store.set_pending("query", {"seed": 1}, {"obs": np.zeros(3)})
        store.set_pending("other", {"seed": 2})
        store.add(s["comparison"], effort_seconds=2.0, resolves="query")
        assert store.pending("query") is None and store.pending("other") == ({"seed": 2}, {})
        assert [r.kind for r in store.records()] == ["rating", "comparison"]


@pytest.mark.parametrize(
    "trigger",
    [
        "BEFORE DELETE ON pending BEGIN SELECT RAISE(ABORT, 'disk on fire'); END",
        "BEFORE INSERT ON feedback BEGIN SELECT RAISE(ABORT, 'disk on fire'); END",
    ],
    ids=["delete-fails", "insert-fails"],
)
def test_add_that_resolves_is_atomic(tmp_path, trigger):
    """Whichever half of the transaction fails, neither the record nor the deletion is kept."""
    path = tmp_path / "f.db"
    with FeedbackStore(path, meta=META) as store:
        store.add(samples()["rating"])
        store.set_pending("query", {"seed": 1}, {"obs": np.ones(2)})
        conn = sqlite3.connect(path)
        conn.execute(f"CREATE TRIGGER fail {trigger}")
        conn.commit()
        conn.close()
        with pytest.raises(OSError, match=r"cannot write feedback store .*f\.db: disk on fire; nothing was"):
            store.add(samples()["comparison"], resolves="query")
        assert len(store) == 1
        value, arrays = store.pending("query")
    assert value == {"seed": 1}
    np.testing.assert_array_equal(arrays["obs"], np.ones(2))
    with FeedbackStore(path) as store:  # and so it stays after reopening
        assert len(store) == 1 and store.pending("query") is not None


def test_store_without_pending_table_is_read_without_creating_it(tmp_path):
    path = tmp_path / "f.db"
    with FeedbackStore(path, meta=META) as store:
        store.add(samples()["rating"])
    data = path.read_bytes()
    with FeedbackStore(path, meta=META) as store:
        assert store.pending("query") is None
        store.clear_pending("query")
        assert store.info()["pending"] == [] and len(store.records()) == 1

    def tables() -> set[str]:
        conn = sqlite3.connect(path)
        names = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        conn.close()
        assert version == 1
        return names

    assert "pending" not in tables()
    assert path.read_bytes() == data
    with FeedbackStore(path) as store:
        store.set_pending("query", {"seed": 1})
    assert "pending" in tables()  # created lazily, still schema version 1
    with FeedbackStore(path, meta=META) as store:
        assert store.pending("query") == ({"seed": 1}, {}) and len(store) == 1


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("value", "{not json"),
        ("value", "[1, 2]"),
        ("arrays", b"\x00\x01 not an npz"),
        ("arrays", _pickled_object_array()),
    ],
)
def test_corrupt_pending_row_names_the_store_and_key(tmp_path, column, value):
    path = tmp_path / "f.db"
    with FeedbackStore(path) as store:
        store.set_pending("query", {"seed": 1}, {"obs": np.zeros(2)})
    conn = sqlite3.connect(path)
    conn.execute(f"UPDATE pending SET {column} = ? WHERE key = 'query'", (value,))
    conn.commit()
    conn.close()
    with FeedbackStore(path) as store:
        with pytest.raises(ValueError, match=rf"pending item 'query' of feedback store {path} is corrupt"):
            store.pending("query")


# ----- the file system: directories, read-only stores, SQLite failures -----------------------------


def test_a_directory_is_named_as_one(tmp_path):
    (tmp_path / "f.db").mkdir()
    with pytest.raises(ValueError, match=r"f\.db is a directory; expected a feedback store file"):
        FeedbackStore(tmp_path / "f.db", meta=META)
    run = tmp_path / "run"
    run.mkdir()
    FeedbackStore(run / "feedback.sqlite").close()
    with pytest.raises(
        ValueError, match=r"run is a directory \(it holds .*run/feedback\.sqlite: pass that\)"
    ):
        FeedbackStore(run)
    with pytest.raises(
        FileNotFoundError, match=r"cannot create feedback store .*: folder .*nowhere does not exist"
    ):
        FeedbackStore(tmp_path / "nowhere" / "f.db")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.db", "run"]


def _written(path: Path) -> Path:
    with FeedbackStore(path, meta=META) as store:
        store.add(valid_samples()["rating"], effort_seconds=2.0)
        store.set_pending("query", {"seed": 1})
    return path


def test_a_store_that_cannot_be_written_is_read_read_only(tmp_path, monkeypatch):
    """A store whose file or folder is not writable is read with immutable=1 (no -wal or -shm
    file is created), and every write is refused with one line; a real read-only filesystem is
    in test_formats."""
    path = _written(tmp_path / "f.db")
    data = path.read_bytes()
    monkeypatch.setattr("rlhf_gym.feedback.store_schema.writable", lambda p: False)
    with FeedbackStore(path, meta=META) as store:
        assert store.read_only and len(store) == 1 and store.meta == META
        assert store.info()["pending"] == ["query"] and store.pending("query") == ({"seed": 1}, {})
        assert_same(store.records()[0], valid_samples()["rating"])
        for write in (
            lambda: store.add(valid_samples()["rating"]),
            lambda: store.set_pending("query", {}),
            lambda: store.clear_pending("query"),
            store.remove_last,
        ):
            with pytest.raises(PermissionError, match=r"f\.db is read-only .*it can be read, not changed"):
                write()
    assert path.read_bytes() == data and sorted(p.name for p in tmp_path.iterdir()) == ["f.db"]
    with pytest.raises(ValueError, match=r"cannot create feedback store .*empty\.db: .* read-only"):
        (tmp_path / "empty.db").touch()
        FeedbackStore(tmp_path / "empty.db")
    monkeypatch.setattr("os.access", lambda p, mode: False)
    with pytest.raises(
        PermissionError, match=r"cannot create feedback store .*new\.db: folder .* is not writable"
    ):
        FeedbackStore(tmp_path / "new.db")


def test_a_read_only_store_with_a_write_ahead_log_reads_it(tmp_path, monkeypatch):
    """A store copied while a session ran has its labels in its -wal file: mode=ro reads them."""
    path = tmp_path / "f.db"
    child = (
        "import os, signal, sys\n"
        "from tests.feedback.test_store import META, valid_samples\n"
        "from rlhf_gym.feedback.store import FeedbackStore\n"
        "store = FeedbackStore(sys.argv[1], meta=META)\n"
        "for record in valid_samples().values():\n"
        "    store.add(record)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    subprocess.run([sys.executable, "-c", child, str(path)], cwd=REPO, timeout=60, check=False)
    assert Path(f"{path}-wal").stat().st_size > 0
    monkeypatch.setattr("rlhf_gym.feedback.store_schema.writable", lambda p: False)
    with FeedbackStore(path) as store:
        assert store.read_only and [r.kind for r in store.records()] == list(valid_samples())


def test_sqlite_failures_are_one_line_naming_the_store(tmp_path, monkeypatch):
    path = _written(tmp_path / "f.db")
    monkeypatch.setattr("rlhf_gym.feedback.store_schema.BUSY_TIMEOUT", 0.05)
    with FeedbackStore(path) as store:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        with pytest.raises(
            OSError, match=r"cannot write feedback store .*f\.db: database is locked \(another"
        ):
            store.add(valid_samples()["estop"])
        other.execute("ROLLBACK")
        other.close()
        assert store._conn is not None
        store._conn.execute("PRAGMA max_page_count = 1")  # the disk is full
        with pytest.raises(
            OSError, match=r"f\.db: database or disk is full \(the disk is full.*nothing was changed"
        ):
            store.add(valid_samples()["demonstration"])
        assert len(store) == 1
    with FeedbackStore(path) as store:
        assert len(store) == 1 and store.pending("query") == ({"seed": 1}, {})
