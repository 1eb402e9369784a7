"""The background learner: clips that replay to the learner's own segments, and a prompt stop."""

from __future__ import annotations

import time

import numpy as np
import pytest

from rlhf_gym.feedback.store import FeedbackStore
from rlhf_gym.human.clips import replay
from rlhf_gym.human.learner import Learner
from rlhf_gym.human.learning import chunk_steps
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

    from rlhf_gym.human.learning import _Learning, checkpoint_path
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
    steps = first.agent.num_timesteps
    assert steps >= 64
    again = _Learning(to_dict(cfg), str(path), queue.Queue(), queue.Queue(3), threading.Event())
    for name, value in again.agent.policy.state_dict().items():
        torch.testing.assert_close(value, saved[name])
    assert again.agent.num_timesteps == steps  # the step counter goes on from where it was
    again._train()
    assert again.agent.num_timesteps > steps
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

    from rlhf_gym.human.learning import _Learning, checkpoint_path
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
    from rlhf_gym.human.clips import Clip

    actions = np.array([seed % 2] * 10)
    return replay(task, "fixed", Clip(seed, actions, 0, 10))


def test_the_learner_drives_the_shared_loop_with_every_run_option(tmp_path):
    """The app's learner is the RLHF loop: a KL anchor, behaviour cloning and CPL from its config act."""
    import queue
    import threading

    from rlhf_gym.human.learning import _Learning
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
from rlhf_gym.human.clips import Clip, replay
from rlhf_gym.human.learner import Learner
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

    from rlhf_gym.human.learning import checkpoint_path
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


def _stalled_learner(tmp_path):
    """A Learner whose process stopped (SIGSTOP) mid-way through writing a 1 MB message.

    The first bytes of the message are written here, in the queue's own wire format, so no
    scheduler can let the whole message through before the stop. Returns the rest too.
    """
    import multiprocessing as mp
    import os
    import signal
    import struct
    from multiprocessing.reduction import ForkingPickler

    from rlhf_gym.human.learner import Inbox

    ctx = mp.get_context("spawn")
    messages, clips = ctx.Queue(), ctx.Queue(1)
    big = {"type": "policy", "state": {"w": np.zeros(1 << 17)}}  # 1 MiB: 16 times the pipe's buffer
    wire = struct.pack("!i", len(payload := bytes(ForkingPickler.dumps(big)))) + payload
    messages._sem.acquire()  # (as put does: one message more in the queue)
    os.write(messages._writer.fileno(), wire[: 1 << 15])  # (less than the pipe holds: nobody reads yet)
    worker = ctx.Process(target=time.sleep, args=(600,), daemon=True)  # the writer, stalled
    worker.start()
    os.kill(worker.pid, signal.SIGSTOP)
    learner = Learner(resolve_config(FAST, task="CartPole-v1", horizon="fixed"), tmp_path / "s.db")
    learner._messages, learner._clips, learner._stop, learner._worker = messages, clips, ctx.Event(), worker
    learner._inbox, learner._pairs_in = Inbox(messages), Inbox(clips, 1)  # (as Learner.start does)
    return learner, worker, wire[1 << 15 :]


def _within(seconds: float, call):
    import threading

    out: list = []
    thread = threading.Thread(target=lambda: out.append(call()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert out, f"{call} still blocked after {seconds} s"
    return out[0]


def test_a_message_still_being_written_never_blocks_the_window_nor_the_stop(tmp_path):
    import os
    import signal

    learner, worker, _ = _stalled_learner(tmp_path)
    try:
        assert _within(1.0, learner.poll) == []  # the window goes on; the inbox waits for the rest
        assert _within(1.0, learner.next_pair) is None
        # stopping it: terminated mid-write, its partial message is never read again
        start = time.monotonic()
        assert _within(10.0, lambda: learner.stop(timeout=0.3)) == {}
        assert time.monotonic() - start < 5.0 and not worker.is_alive()
    finally:
        if worker.is_alive():
            os.kill(worker.pid, signal.SIGKILL)


def test_a_slow_message_arrives_whole(tmp_path):
    import os
    import signal
    import threading

    learner, worker, rest = _stalled_learner(tmp_path)
    try:
        assert learner.poll() == []
        writer = learner._messages._writer.fileno()
        threading.Thread(target=os.write, args=(writer, rest), daemon=True).start()  # the rest, late
        deadline, got = time.monotonic() + 30, []
        while not got and time.monotonic() < deadline:
            got = learner.poll()
            time.sleep(0.01)
        assert [m["type"] for m in got] == ["policy"] and got[0]["state"]["w"].shape == (1 << 17,)
        assert learner.stop(timeout=0.3) == {} and not worker.is_alive()
    finally:
        if worker.is_alive():
            os.kill(worker.pid, signal.SIGKILL)


def test_only_live_mode_gets_the_policy_and_only_the_actors_weights(tmp_path):
    import queue
    import threading

    from rlhf_gym.human.learning import _Learning
    from rlhf_gym.schema import to_dict

    cfg = to_dict(resolve_config(FAST, task="CartPole-v1", horizon="fixed"))
    path = tmp_path / "s.db"
    FeedbackStore(path, meta={"task": "CartPole-v1"}).close()
    sent = {}
    for live in (False, True):
        messages: queue.Queue = queue.Queue()
        learning = _Learning(cfg, str(path), messages, queue.Queue(3), threading.Event(), live)
        learning._train()
        learning.store.close()
        sent[live] = []
        while not messages.empty():
            message = messages.get_nowait()
            if message["type"] == "policy":
                sent[live].append(message)
    assert sent[False] == []
    (policy,) = sent[True]
    assert policy["state"] and not any("value_net" in k for k in policy["state"])  # PPO's critic stays behind
    assert "action_net.weight" in policy["state"]


def test_a_resumed_off_policy_agent_fills_its_replay_buffer_again_before_learning(tmp_path):
    import queue
    import threading

    from rlhf_gym.human.learning import _Learning, checkpoint_path
    from rlhf_gym.schema import to_dict

    config = {
        "segment_length": 10,
        "hyperparams": {"learning_starts": 50, "policy_kwargs": {"net_arch": [16]}},
    }
    cfg = to_dict(resolve_config(config, task="Pendulum-v1", horizon="fixed"))
    assert cfg["algo"] == "sac"
    path = tmp_path / "s.db"
    FeedbackStore(path, meta={"task": "Pendulum-v1"}).close()
    first = _Learning(cfg, str(path), queue.Queue(), queue.Queue(3), threading.Event())
    first.agent.num_timesteps = 5_000  # a past session's steps
    first._save()
    first.store.close()
    assert checkpoint_path(path).is_file()
    again = _Learning(cfg, str(path), queue.Queue(), queue.Queue(3), threading.Event())
    again.store.close()
    assert again.agent.num_timesteps == 5_000  # the count goes on
    assert again.agent.learning_starts == 5_050  # the unsaved buffer fills again first
    assert again.agent.replay_buffer.size() == 0


@pytest.mark.parametrize(
    "text",
    [
        '{"timesteps": true}',
        '{"timesteps": -3}',
        '{"timesteps": 1.5}',
        "[1, 2]",
        "not json",
        "[" * 100_000 + "]" * 100_000,
        '{"timesteps": 1, "pad": "' + "x" * 2000 + '"}',
    ],
)
def test_a_bad_step_counter_file_is_ignored_with_a_one_line_warning(tmp_path, text):
    from rlhf_gym.human.learning import saved_timesteps

    path = tmp_path / "s.db.learner.json"
    path.write_text(text)
    with pytest.warns(
        UserWarning, match=r"s\.db\.learner\.json ignored \(.*\): the agent's step count starts at 0"
    ) as seen:
        assert saved_timesteps(path) == 0
    assert "\n" not in str(seen[0].message)
    path.write_text('{"timesteps": 1234}')
    assert saved_timesteps(path) == 1234
    assert saved_timesteps(tmp_path / "none.json") == 0  # no file: no warning


def test_a_thread_learner_is_waited_for_until_it_ends(tmp_path, monkeypatch):
    """A thread cannot be terminated: the store must not close under it."""
    import rlhf_gym.human.learning as learning

    ended = []

    class Slow:  # a long refit: it does not look at the stop for 1.5 s
        def __init__(self, config, store, messages, clips, stop, policy, wanted):
            self.messages = messages

        def run(self):
            time.sleep(1.5)
            ended.append(True)
            self.messages.put({"type": "stopped", "timesteps": 7, "saved": ""})

    monkeypatch.setattr(learning, "_Learning", Slow)
    learner = Learner(
        resolve_config(FAST, task="CartPole-v1", horizon="fixed"), tmp_path / "s.db", backend="thread"
    )
    learner.start()
    worker = learner._worker
    assert learner.stop(timeout=0.1) == {"type": "stopped", "timesteps": 7, "saved": ""}
    assert ended and not worker.is_alive()


def test_mid_chunk_the_learner_plays_a_pair_only_when_the_window_asks(tmp_path):
    import queue
    import threading

    from rlhf_gym.human.learning import _Learning
    from rlhf_gym.schema import to_dict

    cfg = to_dict(resolve_config(FAST, task="CartPole-v1", horizon="fixed"))
    path = tmp_path / "s.db"
    FeedbackStore(path, meta={"task": "CartPole-v1"}).close()
    clips: queue.Queue = queue.Queue(3)
    wanted = threading.Event()
    learning = _Learning(cfg, str(path), queue.Queue(), clips, threading.Event(), False, wanted)
    played = []  # the episodes played for pairs
    reset = learning.env.reset
    learning.env.reset = lambda **kw: played.append(1) or reset(**kw)

    def served(size: int) -> None:
        """Step until the queue holds ``size`` pairs: an episode too short to cut two apart
        stretches from sends none and leaves the request standing, so the next step plays again."""
        for _ in range(50):
            assert learning._on_step()
            if clips.qsize() == size:
                break
            assert wanted.is_set() and clips.qsize() == size - 1  # not served yet: still asked
        assert clips.qsize() == size and not wanted.is_set()

    try:
        for _ in range(50):  # a window that takes every pair as it comes (demo mode does) asks for none
            assert learning._on_step() and clips.empty() and not played
        wanted.set()  # a person waits
        served(1)
        assert learning._on_step() and clips.qsize() == 1  # one pair per request
        before = len(played)
        while not clips.full():
            clips.put(None)
        wanted.set()  # asked while the queue is full (paused, or the budget reached): nothing played
        for _ in range(20):
            assert learning._on_step() and len(played) == before
        clips.get()
        served(clips.maxsize)  # room again: one pair
    finally:
        learning.store.close()
