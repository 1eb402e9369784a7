"""Run folders: each file replaced whole, no temp file left by a failed write, a stale summary gone."""

from __future__ import annotations

import errno
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from rlhf_gym.config import RunConfig
from rlhf_gym.feedback.store import FeedbackStore
from rlhf_gym.train import folder
from rlhf_gym.train.folder import RunFolder
from rlhf_gym.types import Rating, Segment


def no_space(path) -> OSError:
    return OSError(errno.ENOSPC, "No space left on device", str(path))


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "metrics.csv"
    folder._replace(target, "old\n")
    real = Path.write_text

    def half(self, data, *args, **kwargs):
        real(self, data[:3], *args, **kwargs)
        raise no_space(self)

    monkeypatch.setattr(Path, "write_text", half)
    with pytest.raises(OSError, match="No space left"):
        folder._replace(target, "a new and longer text\n")
    monkeypatch.undo()
    assert target.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["metrics.csv"]


def test_start_removes_a_stale_summary_and_cleans_up_a_failed_config(tmp_path, monkeypatch):
    run = RunFolder(tmp_path / "run")
    (run.out / "summary.json").write_text("{}")  # an earlier, complete run in this folder
    run.start(RunConfig(seed=1))
    assert not (run.out / "summary.json").exists() and "seed: 1" in (run.out / "config.yaml").read_text()

    def half(config, path):
        Path(path).write_text("seed: ")
        raise no_space(path)

    monkeypatch.setattr(folder, "save_yaml", half)
    (run.out / "summary.json").write_text("{}")
    with pytest.raises(OSError, match="No space left"):
        run.start(RunConfig(seed=2))
    assert "seed: 1" in (run.out / "config.yaml").read_text()
    assert sorted(p.name for p in run.out.iterdir()) == ["config.yaml"]


def ratings(n: int, teacher: str) -> SimpleNamespace:
    seg = Segment(np.zeros((5, 4), np.float32), np.zeros(5, np.int64), np.ones(5), np.zeros(5, bool))
    return SimpleNamespace(
        feedback=[Rating(seg, i % 5, 5, teacher=teacher) for i in range(n)],
        feedback_seconds=[1.0] * n,
        task=SimpleNamespace(name="CartPole-v1"),
    )


def test_the_feedback_copy_is_built_aside_and_replaces_a_stale_store(tmp_path, monkeypatch):
    run = RunFolder(tmp_path / "run")
    own = run.out / folder.FEEDBACK_FILE
    run._copy_feedback(own, RunConfig(), ratings(3, "old"))
    (run.out / "feedback.sqlite-shm").write_bytes(b"stale")  # left by a killed reader
    run._copy_feedback(own, RunConfig(), ratings(2, "new"))
    with FeedbackStore(own) as store:
        assert [r.teacher for r in store.records()] == ["new", "new"]  # not the old records kept
    assert sorted(p.name for p in run.out.iterdir()) == ["feedback.sqlite"]

    real_add = FeedbackStore.add

    def add(self, *args, **kwargs):
        if len(self) >= 1:
            raise no_space(self.path)
        return real_add(self, *args, **kwargs)

    monkeypatch.setattr(FeedbackStore, "add", add)
    with pytest.raises(OSError, match="No space left"):
        run._copy_feedback(own, RunConfig(), ratings(4, "full"))
    monkeypatch.undo()
    with FeedbackStore(own) as store:  # the last whole copy, untouched
        assert [r.teacher for r in store.records()] == ["new", "new"]
    assert sorted(p.name for p in run.out.iterdir()) == ["feedback.sqlite"]
