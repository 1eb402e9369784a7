"""The background learner: clips that replay to the learner's own segments, and a prompt stop."""

from __future__ import annotations

import time

import numpy as np
import pytest

from rlhf_gym.feedback.store import FeedbackStore
from rlhf_gym.human.learner import Learner, chunk_steps, replay
from rlhf_gym.tasks.registry import get_task
from rlhf_gym.train.resolve import resolve_config
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


class _Payload:
    """Unpickling this creates the folder ``path``: proof that a stranger's code ran."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        import os

        return (os.mkdir, (self.path,))


def _hostile_checkpoint(kind: str, checkpoint, learning, marker) -> None:
    import pickle
    import zipfile

    import torch

    from rlhf_gym.agents.files import save_agent

    if kind == "pickled policy.pth":
        with zipfile.ZipFile(checkpoint, "w") as archive:
            archive.writestr("data", "{}")
            archive.writestr("policy.pth", pickle.dumps({"action_net.weight": _Payload(str(marker))}))
    elif kind == "not a zip":
        checkpoint.write_bytes(b"\x80\x04 not a zip at all" * 10)
    else:  # NaN weights, in a well-formed zip and twin
        with torch.no_grad():
            next(iter(learning.agent.policy.parameters())).fill_(float("nan"))
        save_agent(learning.agent, checkpoint)


@pytest.mark.parametrize("kind", ["pickled policy.pth", "not a zip", "nan weights"])
def test_a_hostile_checkpoint_is_refused_and_the_learner_starts_anew(tmp_path, kind):
    import queue
    import threading

    import torch

    from rlhf_gym.human.learner import _Learning, checkpoint_path
    from rlhf_gym.schema import to_dict

    cfg = to_dict(resolve_config(FAST, task="CartPole-v1", horizon="fixed"))
    path, marker = tmp_path / "s.db", tmp_path / "ran"
    FeedbackStore(path, meta={"task": "CartPole-v1"}).close()
    fresh = _Learning(cfg, str(path), queue.Queue(), queue.Queue(3), threading.Event())
    expected = {k: v.clone() for k, v in fresh.agent.policy.state_dict().items()}
    _hostile_checkpoint(kind, checkpoint_path(path), fresh, marker)
    fresh.store.close()
    with pytest.warns(UserWarning, match=r"s\.db\.agent\.zip does not fit this config .*; starting anew"):
        again = _Learning(cfg, str(path), queue.Queue(), queue.Queue(3), threading.Event())
    assert not marker.exists()  # nothing was unpickled
    for name, value in again.agent.policy.state_dict().items():
        torch.testing.assert_close(value, expected[name])  # the fresh agent of this config
    again.store.close()


def _segment(task, seed: int):
    from rlhf_gym.human.learner import Clip

    actions = np.array([seed % 2] * 10)
    return replay(task, "fixed", Clip(seed, actions, 0, 10))


def test_the_learner_drives_the_shared_loop_with_every_run_option(tmp_path):
    """The app's learner is the RLHF loop: a KL anchor, behaviour cloning and CPL from its config act."""
    import queue
    import threading

    from rlhf_gym.human.learner import _Learning
    from rlhf_gym.schema import to_dict
    from rlhf_gym.train.loop import Loop
    from rlhf_gym.types import Correction

    task = get_task("CartPole-v1")
    a, b = _segment(task, 1), _segment(task, 2)
    path = tmp_path / "s.db"
    with FeedbackStore(path, meta={"task": task.name}) as store:
        store.add(Comparison(Query(a, b), 1.0), effort_seconds=3.0)
        store.add(Correction(original=b, corrected=a), effort_seconds=2.0)
    options = {"kl_coef": 0.1, "kl_anchor": "ema", "bc_steps": 5}
    cfg = resolve_config({**FAST, **options}, task="CartPole-v1", horizon="fixed")
    learning = _Learning(to_dict(cfg), str(path), queue.Queue(), queue.Queue(3), threading.Event())
    loop = learning.loop
    assert isinstance(loop, Loop) and loop.anchor is not None and loop.kl_term is not None
    before = {k: v.clone() for k, v in learning.agent.policy.state_dict().items()}
    learning._refit()
    assert learning.fitted and loop.last_fit is not None and loop.labels == 2 and loop.effort_seconds == 5.0
    cloned = learning.agent.policy.state_dict()
    assert any(not (cloned[k] == before[k]).all() for k in before)  # behaviour cloning moved the policy
    learning._train()
    assert learning.agent.num_timesteps >= 64 and np.isfinite(loop.kl_term.mean_kl())
    learning.store.close()

    cpl = resolve_config({**FAST, "algo": "cpl"}, task="CartPole-v1", horizon="fixed")
    learning = _Learning(to_dict(cpl), str(path), queue.Queue(), queue.Queue(3), threading.Event())
    learning._refit()
    assert learning.fitted and learning.loop.last_fit is None  # CPL fits its policy, not a reward
    assert learning.agent.feedback is learning.loop.feedback and len(learning.agent.feedback) == 2
    learning._train()
    assert learning.agent.num_timesteps >= 64
    learning.store.close()


BLOCKED = """
import sys, time
import numpy as np
from rlhf_gym.feedback.store import FeedbackStore
from rlhf_gym.human.learner import Clip, Learner, replay
from rlhf_gym.tasks.registry import get_task
from rlhf_gym.train.resolve import resolve_config
from rlhf_gym.types import Comparison, Query

if __name__ == "__main__":  # the learner is spawned
    task = get_task("CartPole-v1")
    a, b = (replay(task, "fixed", Clip(s, np.array([s % 2] * 10), 0, 10)) for s in (1, 2))
    with FeedbackStore(sys.argv[1], meta={{"task": task.name}}) as store:
        store.add(Comparison(Query(a, b), 1.0))
    cfg = resolve_config({config!r}, task="CartPole-v1", horizon="fixed")
    learner = Learner(cfg, sys.argv[1]).start()
    print(learner._worker.pid, flush=True)
    time.sleep(600)  # never polls: the learner's messages fill the pipe
"""


def test_a_learner_blocked_on_a_full_pipe_dies_when_the_window_is_sigkilled(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    from rlhf_gym.human.learner import checkpoint_path
    from rlhf_gym.processes import pid_alive

    # a policy of about 0.5 MB: one policy message overfills the 64 KiB pipe nobody reads
    config = FAST | {"hyperparams": FAST["hyperparams"] | {"policy_kwargs": {"net_arch": [256, 256]}}}
    script, store = tmp_path / "window.py", tmp_path / "s.db"
    script.write_text(BLOCKED.format(config=config))
    proc = subprocess.Popen([sys.executable, str(script), str(store)], stdout=subprocess.PIPE, text=True)
    learner = 0
    try:
        assert proc.stdout is not None
        learner = int(proc.stdout.readline())
        deadline = time.monotonic() + 120
        while not checkpoint_path(store).is_file() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)  # saved just after the first policy message went into the pipe
        assert checkpoint_path(store).is_file(), "the learner never trained"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and pid_alive(learner):
        time.sleep(0.05)
    alive = pid_alive(learner)
    if alive:  # (never leave it on a shared machine)
        os.kill(learner, signal.SIGKILL)
    assert not alive, f"the learner {learner} outlived its SIGKILLed window by 10 s"
