"""The background learner: clips that replay to the learner's own segments, and a prompt stop."""

from __future__ import annotations

import time

import numpy as np

from rlhf_gym.feedback.store import FeedbackStore
from rlhf_gym.human.learner import Learner, chunk_steps, replay
from rlhf_gym.tasks.registry import get_task
from rlhf_gym.train.rlhf import resolve_config
from rlhf_gym.types import Comparison, Query

FAST = {"segment_length": 10, "hyperparams": {"n_steps": 64, "batch_size": 64, "n_epochs": 1}}


def wait_for(learner: Learner, seconds: float = 30.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pair = learner.next_pair()
        if pair is not None:
            return pair
        time.sleep(0.02)
    raise AssertionError("no clips from the learner")


def test_clips_replay_to_segments_and_labels_make_the_learner_train(tmp_path):
    cfg = resolve_config(FAST, task="CartPole-v1", horizon="fixed")
    task = get_task("CartPole-v1")
    with FeedbackStore(tmp_path / "s.db", meta={"task": task.name}) as store:
        learner = Learner(cfg, store.path, backend="thread").start()
        try:
            first, second = wait_for(learner)
            a, b = replay(task, "fixed", first), replay(task, "fixed", second)
            assert len(a) == len(b) == 10 and (~a.absorbing).any() and (~b.absorbing).any()
            # replaying twice gives the same segment: a clip is a portable query
            np.testing.assert_array_equal(replay(task, "fixed", first).obs, a.obs)
            assert first.seed != second.seed or abs(first.start - second.start) >= 10  # distinct stretches
            store.add(Comparison(Query(a, b), 1.0 if a.true_return >= b.true_return else 0.0))
            deadline, status = time.monotonic() + 60, {}
            while time.monotonic() < deadline and status.get("timesteps", 0) < chunk_steps(cfg):
                for message in learner.poll():
                    assert message["type"] != "error", message.get("traceback")
                    if message["type"] == "status":
                        status = message
                time.sleep(0.05)
            assert status["labels"] == 1 and status["fits"] >= 1 and status["timesteps"] >= 64
        finally:
            worker, start = learner._worker, time.monotonic()
            learner.stop()
            assert time.monotonic() - start < 5.0  # a chunk in progress ends at once
            assert not worker.is_alive()


def test_the_agent_is_kept_next_to_the_store_between_sessions(tmp_path):
    import queue
    import threading

    import torch

    from rlhf_gym.human.learner import _Learning, checkpoint_path
    from rlhf_gym.schema import to_dict

    cfg = resolve_config(FAST, task="CartPole-v1", horizon="fixed")
    path = tmp_path / "s.db"
    FeedbackStore(path, meta={"task": "CartPole-v1"}).close()
    first = _Learning(to_dict(cfg), str(path), queue.Queue(), queue.Queue(3), threading.Event())
    with torch.no_grad():
        for p in first.agent.policy.parameters():
            p.add_(1.0)  # a policy no fresh agent has
    first._train()
    assert checkpoint_path(path).is_file()
    saved = {k: v.clone() for k, v in first.agent.policy.state_dict().items()}
    again = _Learning(to_dict(cfg), str(path), queue.Queue(), queue.Queue(3), threading.Event())
    for name, value in again.agent.policy.state_dict().items():
        torch.testing.assert_close(value, saved[name])
    first.store.close()
    again.store.close()
