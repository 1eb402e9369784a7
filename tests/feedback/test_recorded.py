"""The recorded teacher: a feedback store or export replayed, in recorded order, as a run's teacher."""

import json
import warnings

import numpy as np
import pytest

from rlhf_gym.cli.main import main
from rlhf_gym.config import RunConfig
from rlhf_gym.feedback import collect as elicit
from rlhf_gym.feedback.collect import RECORD_KINDS, FeedbackCollector
from rlhf_gym.feedback.effort import Budget, EffortModel
from rlhf_gym.feedback.formats import export_store
from rlhf_gym.feedback.store import FeedbackStore
from rlhf_gym.feedback.teachers import Teacher
from rlhf_gym.tasks.registry import get_task
from rlhf_gym.teacher_params import PRESETS
from rlhf_gym.train.rlhf import RLHF
from rlhf_gym.types import FEEDBACK_RECORDS, Comparison, Query, Rating, Segment
from tests.feedback.test_store import assert_same, samples

TINY = {
    "total_timesteps": 256,
    "segment_length": 5,
    "feedback_rounds": 1,
    "eval_freq": 10_000,
    "final_eval_episodes": 2,
    "reward_model": {"hidden_sizes": [8], "n_steps": 20},
    "hyperparams": {"n_steps": 16, "batch_size": 32, "n_epochs": 1},
}


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """A store of six oracle comparisons from a real CartPole run, and its records and efforts."""
    path = tmp_path_factory.mktemp("recording") / "oracle.sqlite"
    RLHF("CartPole-v1", labels=6, feedback_store=str(path), **TINY).learn()
    with FeedbackStore(path) as store:
        records, rows = store.records(), store.rows()
    assert len(records) == 6 and all(isinstance(r, Comparison) and r.teacher == "oracle" for r in records)
    return path, records, [row["effort_seconds"] for row in rows]


def replay(recorded, out, **kw):
    run = RLHF(
        "CartPole-v1", teacher="recorded", recorded_feedback=str(recorded), feedback_store=str(out), **kw
    )
    return run.learn()


def stored(path):
    with FeedbackStore(path) as store:
        return store.records(), [row["effort_seconds"] for row in store.rows()]


@pytest.mark.parametrize("source", ["store", "export"])
def test_replay_gives_the_first_recorded_records_within_the_label_budget(recording, tmp_path, source):
    path, records, efforts = recording
    if source == "export":
        assert export_store(path, tmp_path / "oracle.jsonl") == 6
        path = tmp_path / "oracle.jsonl"
    run = replay(path, tmp_path / "replayed.sqlite", labels=4, **TINY)
    s = run.summary()
    assert s["teacher"] == "recorded" and s["labels_used"] == 4 and s["queries_skipped"] == 0
    assert s["effort_seconds"] == pytest.approx(sum(efforts[:4]))
    replayed, seconds = stored(tmp_path / "replayed.sqlite")
    assert len(replayed) == 4 and seconds == efforts[:4]
    for original, back in zip(records[:4], replayed, strict=True):
        assert_same(original, back)  # the same segments, labels and teacher, in recorded order
    run.save(tmp_path / "run")
    assert len(stored(tmp_path / "run" / "feedback.sqlite")[0]) == 4


def test_an_exhausted_recording_lets_the_run_go_on(recording, tmp_path):
    path, records, _ = recording
    with pytest.warns(UserWarning, match="has no comparison records left for comparisons"):
        run = replay(path, tmp_path / "replayed.sqlite", labels=10, **TINY)
    s = run.summary()
    # rounds of 4 and 6 labels: the second gets the 2 records left, 4 labels go unanswered
    assert s["labels_used"] == 6 and s["queries_skipped"] == 4 and s["true_return_mean"] is not None
    replayed, _ = stored(tmp_path / "replayed.sqlite")
    for original, back in zip(records, replayed, strict=True):
        assert_same(original, back)


def test_an_effort_budget_spends_each_records_stored_seconds(recording, tmp_path):
    path, records, efforts = recording
    budget = sum(efforts[:3])  # 40% up front affords one record, the rest two more
    run = replay(path, tmp_path / "replayed.sqlite", budget_seconds=budget, **TINY)
    replayed, seconds = stored(tmp_path / "replayed.sqlite")
    assert len(replayed) == 3 and seconds == efforts[:3]
    assert run.summary()["effort_seconds"] == pytest.approx(budget)
    for original, back in zip(records[:3], replayed, strict=True):
        assert_same(original, back)


# ----- the collector alone, on hand-made recordings ----------------------------------------------


def cartpole_segment(value: float) -> Segment:
    return Segment(
        np.full((5, 4), value, np.float32), np.zeros(5, np.int64), np.full(5, value), np.zeros(5, bool)
    )


def collector(path, **config) -> FeedbackCollector:
    cfg = RunConfig(teacher="recorded", recorded_feedback=str(path), segment_length=5, **config)
    return FeedbackCollector(get_task("CartPole-v1"), cfg, Teacher.preset("oracle"), EffortModel(fps=50))


def collect(c: FeedbackCollector, kind: str, budget: Budget):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        items = c.collect(kind, budget, None, None, lambda obs: 0, np.random.default_rng(0))  # type: ignore[arg-type]
    return [(type(record).__name__, record.teacher, seconds) for record, seconds in items]


@pytest.fixture
def mixed(tmp_path):
    """Ratings and comparisons, interleaved, each with its own effort."""
    path = tmp_path / "mixed.sqlite"
    with FeedbackStore(path, meta={"task": "CartPole-v1"}) as store:
        for i in range(5):
            seg = cartpole_segment(i)
            store.add(Rating(seg, i, 10, teacher=f"r{i}"), effort_seconds=1.0 + i)
            if i < 3:
                store.add(Comparison(Query(seg, seg), 0.5, teacher=f"c{i}"), effort_seconds=10.0)
    return path


def test_each_type_replays_its_own_records_in_order(mixed):
    c = collector(mixed)
    assert collect(c, "ratings", Budget(labels=2)) == [("Rating", "r0", 1.0), ("Rating", "r1", 2.0)]
    assert collect(c, "comparisons", Budget(labels=1)) == [("Comparison", "c0", 10.0)]
    # 3 + 4 fit in 8 seconds; r4 (5 s) does not, and is kept for the next call
    assert collect(c, "ratings", Budget(seconds=8.0)) == [("Rating", "r2", 3.0), ("Rating", "r3", 4.0)]
    assert c.skipped == 0
    assert collect(c, "ratings", Budget(labels=4)) == [("Rating", "r4", 5.0)]
    assert c.skipped == 3  # asked for 4, the recording had 1 left
    assert collect(c, "ratings", Budget(labels=2)) == [] and c.skipped == 5
    assert collect(c, "comparisons", Budget(seconds=100.0)) == [
        ("Comparison", "c1", 10.0),
        ("Comparison", "c2", 10.0),
    ]
    assert collect(c, "estops", Budget(labels=0)) == [] and c.skipped == 5
    with pytest.raises(ValueError, match="unknown feedback type 'hugs'"):
        c.collect("hugs", Budget(labels=1), None, None, lambda obs: 0, np.random.default_rng(0))  # type: ignore[arg-type]


def test_the_recording_is_read_once_and_lazily(mixed, tmp_path, monkeypatch):
    calls = []
    real = elicit.read_feedback
    monkeypatch.setattr(elicit, "read_feedback", lambda path: calls.append(path) or real(path))
    c = collector(mixed)
    assert calls == []
    for _ in range(3):
        collect(c, "ratings", Budget(labels=1))
    collect(c, "comparisons", Budget(labels=1))
    assert calls == [str(mixed)]
    missing = collector(tmp_path / "missing.sqlite")  # nothing is read before the first round
    with pytest.raises(FileNotFoundError, match=r"missing\.sqlite does not exist"):
        collect(missing, "ratings", Budget(labels=1))
    assert not (tmp_path / "missing.sqlite").exists()


def test_a_recording_of_other_observations_is_rejected(tmp_path):
    path = tmp_path / "three.sqlite"
    with FeedbackStore(path, meta={"task": "CartPole-v1"}) as store:
        store.add(samples()["estop"])  # observations of shape (3,)
    with pytest.raises(ValueError, match=r"three\.sqlite: record 1 holds observations of shape \(3,\) "
                       r"\(estop\.before\.obs\), but task CartPole-v1 observes shape \(4,\)"):  # fmt: skip
        collect(collector(path), "estops", Budget(labels=1))
    other = tmp_path / "pendulum.sqlite"
    FeedbackStore(other, meta={"task": "Pendulum-v1"}).close()
    with pytest.raises(ValueError, match=r"is for task 'Pendulum-v1', not 'CartPole-v1'"):
        collect(collector(other), "ratings", Budget(labels=1))


def test_every_feedback_type_names_a_record_kind():
    from rlhf_gym.config import FEEDBACK_TYPES

    assert set(RECORD_KINDS) == set(FEEDBACK_TYPES) and set(RECORD_KINDS.values()) == set(FEEDBACK_RECORDS)


# ----- configuration and command line ----------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"teacher": "recorded"}, "teacher 'recorded' replays a recording: set recorded_feedback"),
        (
            {"recorded_feedback": "a.jsonl"},
            "recorded_feedback is replayed only by teacher 'recorded', not 'oracle'",
        ),
        ({"teacher": "stoch", "recorded_feedback": "a.jsonl"}, "only by teacher 'recorded', not 'stoch'"),
        (
            {"teacher": "recorded", "recorded_feedback": "a.jsonl", "teacher_params": {"beta": 1.0}},
            r"teacher_params \['beta'\] have no effect with teacher 'recorded'",
        ),
    ],
)
def test_config_pairs_the_recorded_teacher_with_its_recording(fields, message):
    with pytest.raises(ValueError, match=message):
        RunConfig(**fields)


def test_a_recorded_run_builds_with_an_unused_oracle():
    run = RLHF("CartPole-v1", teacher="recorded", recorded_feedback="nowhere.jsonl")
    assert run.config.teacher == "recorded" and run.teacher.params == PRESETS["oracle"]


def test_train_command_replays_a_recording(recording, tmp_path, capsys):
    path, records, _ = recording
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(json.dumps({k: v for k, v in TINY.items() if k != "total_timesteps"}))
    argv = ["train", "--teacher", "recorded", "--recorded-feedback", str(path), "--labels", "5"]
    argv += ["--timesteps", "256", "--config", str(cfg), "--out", str(tmp_path / "run"), "-q"]
    assert main(argv) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["teacher"] == "recorded" and summary["labels_used"] == 5
    replayed, _ = stored(tmp_path / "run" / "feedback.sqlite")
    for original, back in zip(records[:5], replayed, strict=True):
        assert_same(original, back)
    assert "teacher recorded" in capsys.readouterr().out
    assert main(["train", "--teacher", "recorded", "--timesteps", "64"]) == 2
    assert "set recorded_feedback" in capsys.readouterr().err


def bad_segment(field: str) -> Segment:
    seg = cartpole_segment(0.0)
    if field == "actions":
        return Segment(seg.obs, np.array([0, 1, 5, 0, 1]), seg.true_rewards, seg.absorbing)
    if field == "true_rewards":
        return Segment(seg.obs, seg.actions, np.array([0.0, np.nan, 1.0, 1.0, 1.0]), seg.absorbing)
    return seg


@pytest.mark.parametrize(
    ("label", "field", "message"),
    [
        (7.0, "", r"record 2: comparison\.label is 7\.0; expected a number in \[0, 1\]"),
        (1.0, "actions", r"record 2: comparison\.query\.second\.actions\[2\] is 5; expected actions"),
        (0.0, "true_rewards", r"record 2: comparison\.query\.second\.true_rewards\[1\] is nan"),
    ],
)
def test_a_recording_is_validated_like_an_import(tmp_path, label, field, message):
    path = tmp_path / "bad.sqlite"
    with FeedbackStore(path, meta={"task": "CartPole-v1"}) as store:
        good = cartpole_segment(0.0)
        store.add(Comparison(Query(good, good), 1.0, teacher="ok"))
        store.add(Comparison(Query(good, bad_segment(field)), label, teacher="bad"))
    with pytest.raises(ValueError, match=r"recorded feedback .*bad\.sqlite, " + message):
        collect(collector(path), "comparisons", Budget(labels=1))


def test_train_command_refuses_an_invalid_recording(tmp_path, capsys):
    path = tmp_path / "bad.sqlite"
    with FeedbackStore(path, meta={"task": "CartPole-v1"}) as store:
        seg = cartpole_segment(0.0)
        store.add(Comparison(Query(seg, seg), 7.0, teacher="bad"))
    export_store(path, tmp_path / "bad.jsonl")
    for recording in (path, tmp_path / "bad.jsonl"):
        argv = ["train", "--teacher", "recorded", "--recorded-feedback", str(recording), "--labels", "2"]
        argv += ["--timesteps", "64", "--segment-length", "5", "--out", str(tmp_path / "run"), "-q"]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "rlhf-gym: error:" in err and "record 1: comparison.label is 7.0" in err, err
        assert not (tmp_path / "run" / "summary.json").exists()
