"""The labelling app, driven headless by posted pygame events, with a real learner in a thread."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pygame
import pytest

from rlhf_gym.feedback.lock import StoreInUseError, StoreLock, lock_path
from rlhf_gym.feedback.store import FeedbackStore
from rlhf_gym.human.app import control_keys
from rlhf_gym.human.label import label
from rlhf_gym.processes import descendants, pid_alive
from rlhf_gym.tasks.registry import get_task

# a quick learner: small PPO rollouts, short segments
FAST = {"segment_length": 10, "hyperparams": {"n_steps": 64, "batch_size": 64, "n_epochs": 1}}


def key(name: str, kind: int = pygame.KEYDOWN) -> None:
    pygame.event.post(pygame.event.Event(kind, key=pygame.key.key_code(name), posted=time.perf_counter()))


class Script:
    """Presses the next key whenever the compare view shows a new pair."""

    def __init__(self, keys: list[str]) -> None:
        self.keys, self.pairs, self.seen, self.last = list(keys), [], None, ""

    def __call__(self, app) -> None:
        players = app.view.players
        if not players or not self.keys or (players is self.seen and self.last != "u"):
            return
        if time.perf_counter() - app.view.shown_at < 0.25:
            return  # keys sooner than 0.2 s after a pair appears are ignored
        if players is not self.seen:
            self.seen = players
            self.pairs.append(tuple(p.clip.to_json() for p in players))
        self.last = self.keys.pop(0)
        key(self.last)


def quick(store: Path, mode: str = "compare", task: str = "CartPole-v1", **kwargs):
    """``label`` with a quick learner in a thread, a fast window and a frame limit."""
    kwargs = {"config": FAST, "fps": 240, "backend": "thread", "max_frames": 4000} | kwargs
    return label(task, store, mode, **kwargs)


def run_compare(store: Path, keys: list[str], **kwargs):
    script = Script(keys)
    return quick(store, callback=script, **kwargs), script


def test_compare_labels_land_in_the_store_and_undo_removes_the_last(tmp_path):
    store = tmp_path / "s.db"
    result, script = run_compare(store, ["left", "right", "down", "s", "left", "u", "q"])
    assert result.quit_reason == "key"
    assert (result.undone, result.skipped) == (1, 1)
    with FeedbackStore(store) as s:
        records, rows = s.records(), s.rows()
    assert [r.label for r in records] == [1.0, 0.0, 0.5]  # the fourth, undone, is gone
    assert all(r.teacher == "human" and r.kind == "comparison" for r in records)
    assert [row["id"] for row in rows] == result.committed
    assert script.pairs[6] == script.pairs[4]  # the undone pair is shown again, to be answered anew
    assert all(row["info"]["mode"] == "compare" and row["effort_seconds"] > 0 for row in rows)
    # each stored comparison is of the clips that were on screen when its key came
    assert [row["info"]["clips"] for row in rows] == [list(pair) for pair in script.pairs[:3]]
    assert all(r.query.first.obs.shape == r.query.second.obs.shape == (10, 4) for r in records)
    assert len(result.commit_seconds) == 4 and max(result.commit_seconds) < 1.0


def test_quitting_mid_label_keeps_every_label_and_resume_shows_the_same_query(tmp_path):
    store = tmp_path / "s.db"
    first, script = run_compare(store, ["left", "right", "q"])  # quits while the third pair is on screen
    assert first.quit_reason == "key"
    interrupted = script.pairs[-1]
    with FeedbackStore(store) as s:
        assert len(s) == 2
        assert s.pending("compare") is not None
    again, script2 = run_compare(store, ["u", "down", "q"])  # undo reaches only this session's labels
    assert script2.pairs[0] == interrupted and len(again.committed) == 1  # shown again first
    assert again.undone == 0
    with FeedbackStore(store) as s:
        assert [r.label for r in s.records()] == [1.0, 0.0, 0.5]
        assert s.rows()[-1]["info"]["clips"] == list(interrupted)
        assert s.pending("compare") is not None  # the next one, shown when "q" came


def test_one_batch_of_keys_answers_one_pair_and_early_keys_are_ignored(tmp_path):
    store = tmp_path / "s.db"
    pairs = []

    def double_tap(app) -> None:
        players = app.view.players
        if not players or any(p is players for p in pairs):
            return
        if time.perf_counter() - app.view.shown_at < 0.05:
            key("left")  # too soon after the pair appeared: ignored
            return
        if time.perf_counter() - app.view.shown_at > 0.3:
            pairs.append(players)
            key("left")
            key("right")  # same batch: must not answer the next pair, unseen
            if len(pairs) == 2:
                key("q")

    result = quick(store, callback=double_tap)
    assert result.quit_reason == "key"
    with FeedbackStore(store) as s:
        assert [r.label for r in s.records()] == [1.0, 1.0]  # one "left" per pair; no "right"
    # every key was answered on screen: recorded, or ignored saying why; none dropped silently
    assert result.keys == sum(result.acks.values()) and result.silent == 0
    assert result.acks["recorded"] == 2 and result.acks["ignored"] >= 3  # early keys, the "right"s


def test_closing_the_window_keeps_the_labels(tmp_path):
    store = tmp_path / "s.db"

    def close_after_two(app) -> None:
        if len(app.result.committed) == 2:
            pygame.event.post(pygame.event.Event(pygame.QUIT))

    script = Script(["left", "left", "left", "left"])
    result = quick(store, callback=lambda app: (script(app), close_after_two(app)))
    assert result.quit_reason == "window"
    with FeedbackStore(store) as s:
        assert len(s) >= 2 and [row["id"] for row in s.rows()] == result.committed


def test_the_label_budget_stops_the_queries(tmp_path):
    script = Script(["left", "left", "left"])

    def answer_then_quit(app) -> None:
        script(app)
        if not app.budget_left and app.result.frames % 100 == 99:
            key("q")  # after some frames without a new pair

    result = quick(tmp_path / "s.db", labels=2, callback=answer_then_quit)
    assert len(result.committed) == 2 and result.quit_reason == "key"
    assert script.keys == ["left"]  # no third pair was shown


class Live:
    """Waits for the agent to play, then rates, steers and stops."""

    def __init__(self, plan: list[tuple[int, str, int]]) -> None:
        self.plan = plan  # (steps played, key, KEYDOWN/KEYUP)

    def __call__(self, app) -> None:
        steps = len(app.view.episode.steps)
        while self.plan and steps >= self.plan[0][0]:
            _, name, kind = self.plan.pop(0)
            key(name, kind)
        if not self.plan and app.result.frames % 50 == 0:
            key("q")


def pendulum_next(obs: np.ndarray, u: float) -> np.ndarray:
    """Gymnasium's Pendulum-v1 step (g=10, m=l=1, dt=0.05), for checking where a record starts."""
    th, thdot = np.arctan2(obs[1], obs[0]), obs[2]
    thdot = np.clip(thdot + (15.0 * np.sin(th) + 3.0 * np.clip(u, -2, 2)) * 0.05, -8, 8)
    th = th + thdot * 0.05
    return np.array([np.cos(th), np.sin(th), thdot])


def test_live_mode_records_ratings_corrections_and_estops(tmp_path):
    store = tmp_path / "s.db"
    down, up = pygame.KEYDOWN, pygame.KEYUP
    # Pendulum (Box actions, 200 steps, no termination) at 4x speed: 120 steps a second; a press
    # is about the steps shown 0.2-4 s before it
    plan = [(60, "=", down), (80, "-", down), (100, "right", down), (106, "right", up), (120, "space", down)]
    result = quick(
        store, "live", "Pendulum-v1", config=FAST | {"algo": "ppo"}, speed=4, callback=Live(plan), seed=1
    )
    assert result.quit_reason == "key"
    with FeedbackStore(store) as s:
        records = s.records()
    kinds = [r.kind for r in records]
    assert kinds == ["signal", "signal", "correction", "estop"]
    plus, minus, correction, estop = records
    assert plus.positive and not minus.positive
    # about 0.5 s shown: credit covers 0.2-0.5 s of the 3.8 s window
    assert len(plus.steps) == len(plus.credit) >= 24 and 0 < plus.credit.sum() < 0.2
    assert plus.credit[-1] == 0  # the last 0.2 s before a press get no credit
    assert len(correction.corrected) == len(correction.original) >= 2
    assert np.all(correction.corrected.actions == -2.0)  # "right" held: torque -2
    np.testing.assert_allclose(correction.corrected.obs[0], correction.original.obs[0])  # the same state
    assert len(estop.before) == len(estop.after) == 10
    # the agent's continuation starts in the state the stop came in
    expected = pendulum_next(estop.before.obs[-1], float(estop.before.actions[-1][0]))
    np.testing.assert_allclose(estop.after.obs[0], expected, atol=1e-4)


def test_demo_mode_stores_a_finished_episode_as_a_demonstration(tmp_path):
    store = tmp_path / "s.db"

    idle = []

    def finish_one(app) -> None:
        if app.result.frames == 60:  # nothing happens until a task key starts the episode
            idle.append((app.labels, len(app.view.episode.steps)))
            key("left")
            key("left", pygame.KEYUP)
        if app.result.committed:
            key("q")

    result = quick(
        store, "demo", config=FAST | {"horizon": "natural"}, speed=8, max_frames=6000, callback=finish_one
    )
    assert result.quit_reason == "key"
    assert idle == [(0, 0)]
    with FeedbackStore(store) as s:
        (demo,) = s.records()
    assert demo.kind == "demonstration" and demo.teacher == "human"
    assert len(demo.demo) == len(demo.against) >= 1
    assert all(len(d) == len(a) == 10 for d, a in zip(demo.demo, demo.against))
    actions = demo.episode.actions.tolist()  # "left" released at once: no key, CartPole's idle cycle
    assert set(actions) == {0, 1} and all(a != b for a, b in itertools.pairwise(actions))


def test_control_keys_leave_the_tasks_keys_alone():
    keys = control_keys(get_task("PickPlace-v0"), "live")
    assert keys["return"] == "e-stop" and "space" not in keys  # PickPlace grips with space
    pusher = control_keys(get_task("Pusher-v5"), "live")
    # Pusher steers with q and u too
    assert pusher["escape"] == "quit" and "q" not in pusher and pusher["z"] == "undo"
    assert control_keys(get_task("CartPole-v1"), "compare")["left"] == "prefer left"


def test_bad_input_gets_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown mode 'rate'"):
        label("CartPole-v1", tmp_path / "s.db", "rate")
    with FeedbackStore(tmp_path / "p.db", meta={"task": "Pendulum-v1"}):
        pass
    with pytest.raises(ValueError, match="holds feedback for task 'Pendulum-v1'"):
        label("CartPole-v1", tmp_path / "p.db", backend="thread", max_frames=1)
    (tmp_path / "junk.db").write_bytes(b"not a database at all" * 100)
    with pytest.raises(ValueError, match="not an rlhf-gym feedback store"):
        label("CartPole-v1", tmp_path / "junk.db", backend="thread", max_frames=1)
    assert (tmp_path / "junk.db").read_bytes() == b"not a database at all" * 100  # never overwritten


KILLED = """
import sys, time
import pygame
from rlhf_gym.human.label import label

def answer(app):
    players = app.view.players
    new = players and players is not getattr(answer, "seen", None)
    if new and time.perf_counter() - app.view.shown_at > 0.25:  # a key sooner is ignored
        answer.seen = players
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_LEFT))

def ack(row):
    print("ack", row, flush=True)

if __name__ == "__main__":  # the process backend spawns the learner
    label("CartPole-v1", sys.argv[1], "compare", config={config!r}, fps=240, backend="{backend}",
          callback=answer, on_commit=ack)
"""


@pytest.mark.parametrize("backend", ["thread", "process"])
def test_a_sigkill_mid_session_loses_no_acknowledged_label_and_leaves_no_child(tmp_path, backend):
    store = tmp_path / "s.db"
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent(KILLED.format(config=FAST, backend=backend)))
    env = os.environ | {"SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}
    acked: list[int] = []
    for round_ in range(2):  # kill, then resume the same store and kill again
        proc = subprocess.Popen(
            [sys.executable, str(script), str(store)], stdout=subprocess.PIPE, text=True, env=env
        )
        assert proc.stdout is not None
        want = len(acked) + 3
        deadline = time.monotonic() + 120
        while len(acked) < want and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if line.startswith("ack"):
                acked.append(int(line.split()[1]))
        children = descendants(proc.pid)  # the learner process (and multiprocessing's helper)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert len(acked) >= want, f"round {round_}: only {len(acked)} labels acknowledged"
        with FeedbackStore(store) as s:
            stored = {row["id"] for row in s.rows()}
        assert set(acked) <= stored
        assert len(children) >= (1 if backend == "process" else 0)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(pid_alive(p) for p in children):
            time.sleep(0.05)
        left = [p for p in children if pid_alive(p)]
        for pid in left:  # (never leave them running on a shared machine)
            os.kill(pid, signal.SIGKILL)
        assert not left, f"round {round_}: {left} outlived the SIGKILLed session by 10 s"


def test_a_store_keeps_its_horizon(tmp_path):
    store = tmp_path / "s.db"
    with FeedbackStore(store, meta={"task": "CartPole-v1", "horizon": "natural"}):
        pass
    with pytest.raises(ValueError, match="holds natural-horizon feedback, not fixed"):
        label("CartPole-v1", store, config={"horizon": "fixed"}, backend="thread", max_frames=1)
    result = label("CartPole-v1", store, config=FAST, backend="thread", max_frames=3)  # takes the store's
    assert result.quit_reason == "frames"


def test_a_second_session_on_a_store_gets_one_clear_error(tmp_path):
    store = tmp_path / "s.db"
    with StoreLock(store):  # a first session (its lock: a session of another process is the same)
        with pytest.raises(
            StoreInUseError, match=rf"{store} is in use by another writer \(pid {os.getpid()}\)"
        ):
            label("CartPole-v1", store, config=FAST, backend="thread", max_frames=3)
        assert not store.exists()  # nothing created or opened for writing
    result = label("CartPole-v1", store, config=FAST, backend="thread", max_frames=3)  # once it ended
    assert result.quit_reason == "frames" and not lock_path(store).exists()
    with pytest.raises(ValueError, match="holds feedback for task 'CartPole-v1'"):  # a failed start...
        label("Pendulum-v1", store, backend="thread", max_frames=1)
    StoreLock(store).acquire().release()  # ...frees the lock too


def test_every_key_gets_an_answer_before_during_and_after_a_pair(tmp_path):
    store = tmp_path / "s.db"
    said: list[str] = []

    def press(app) -> None:
        said.extend(text for text, *_ in app.panel.messages if text not in said)
        frame = app.result.frames
        if frame == 0:
            key("left")  # before any pair is on screen
            key("x")  # not a key of this mode
        players = app.view.players
        if players and app.view.shown_at is not None and not app.result.committed:
            if time.perf_counter() - app.view.shown_at > 0.3:
                key("right")
        if app.result.committed and "q" not in said:
            said.append("q")
            key("q")

    result = quick(store, callback=press)
    assert result.quit_reason == "key"
    assert result.keys == 4 and result.silent == 0
    assert result.acks == {"ignored": 2, "recorded": 1, "done": 1}
    assert any("no pair on screen yet" in text for text in said)
    assert any("x: not a key of this mode" in text for text in said)


def test_effort_counts_from_the_first_frame_on_screen_and_the_first_pair_needs_no_learner(tmp_path):
    store = tmp_path / "s.db"
    seen: dict[str, float] = {}

    def answer(app) -> None:
        view = app.view
        if view.players and view.shown_at is not None and "shown" not in seen:
            seen["shown"] = view.shown_at
        if "shown" in seen and "pressed" not in seen and time.perf_counter() - seen["shown"] > 0.5:
            seen["pressed"] = time.perf_counter()
            key("left")
        if app.result.committed:
            key("q")

    # a new store's first pair is asked of the preparer on the first frame, before the learner
    # (which must build its agent first) can have sent any
    result = quick(store, callback=answer)
    with FeedbackStore(store) as s:
        (row,) = s.rows()
    on_screen = seen["pressed"] - seen["shown"]
    assert on_screen <= row["effort_seconds"] <= on_screen + 0.1  # not the start-up before it
    assert row["info"]["source"] == "random actions"  # a new store: no agent to wait for
    assert result.first_pair_seconds == result.first_pair_seconds  # it was measured


NO_SOUND = """
import os, pygame
from rlhf_gym.human.label import label
if __name__ == "__main__":
    label("CartPole-v1", os.environ["STORE"], "compare", config={config!r}, backend="thread", max_frames=30)
    print("audio driver", os.environ.get("SDL_AUDIODRIVER"), flush=True)
    print("mixer", pygame.mixer.get_init(), flush=True)  # pygame.init() would have opened it
"""


def test_the_app_opens_no_sound_card(tmp_path):
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent(NO_SOUND.format(config=FAST)))
    env = {k: v for k, v in os.environ.items() if k != "SDL_AUDIODRIVER"}
    env |= {"SDL_VIDEODRIVER": "dummy", "STORE": str(tmp_path / "s.db")}
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "audio driver dummy" in proc.stdout and "mixer None" in proc.stdout
    assert "ALSA" not in proc.stderr and "pygame-ce" not in proc.stdout


def test_a_learner_that_ends_without_a_word_ends_the_session_saying_so(tmp_path, capsys):
    killed: list[int] = []

    def kill(app) -> None:  # as the kernel's out-of-memory killer would: no error message comes
        worker = app.learner._worker
        if not killed and worker is not None and worker.pid is not None:
            os.kill(worker.pid, signal.SIGKILL)
            killed.append(worker.pid)

    result = quick(tmp_path / "s.db", backend="process", callback=kill, max_frames=2000)
    assert killed and result.quit_reason == "learner"
    assert "the learner process ended unexpectedly (exit code -9)" in capsys.readouterr().out


def test_a_random_pair_shown_again_keeps_its_source_after_a_resume_and_an_undo(tmp_path):
    store = tmp_path / "s.db"
    _, script = run_compare(store, ["q"])  # quits while the new store's first pair is on screen
    with FeedbackStore(store) as s:
        assert s.pending("compare")[0]["source"] == "random actions"
    states = []

    def watch(app) -> None:
        if app.view.players and app.view._state() not in states:
            states.append(app.view._state())
        script2(app)

    script2 = Script(["left", "u", "right", "q"])  # answered, undone, shown again, answered anew
    quick(store, callback=watch)
    assert script2.pairs[0] == script.pairs[0]
    with FeedbackStore(store) as s:
        (row,), (record,) = s.rows(), s.records()
    assert record.label == 0.0 and row["info"]["source"] == "random actions"
    assert states[0].startswith("these clips are random actions")


def test_the_learners_status_ends_what_its_progress_message_announced(tmp_path):
    from rlhf_gym.human.app import App

    app = App.__new__(App)  # only its message handling
    app.status, app.phase = {}, ("starting the learner", 0.0)

    class Messages:
        def __init__(self, *batches):
            self.batches = list(batches)

        def poll(self):
            return self.batches.pop(0)

        def ended(self):
            return None

    app.learner = Messages(
        [{"type": "progress", "text": "building the agent"}],
        [{"type": "status", "timesteps": 0, "fits": 0, "labels": 0}],  # a new store: nothing to fit
    )
    assert app.poll() and app.phase[0] == "building the agent"
    assert app.poll() and app.phase[0] == ""


def test_the_live_windows_agent_acts_at_once_and_loads_torch_on_a_thread_of_its_own():
    from types import SimpleNamespace

    import torch

    from rlhf_gym.human.learning import actor_state
    from rlhf_gym.human.live import _Agent
    from rlhf_gym.train.resolve import resolve_config

    app = SimpleNamespace(
        config=resolve_config(FAST, task="CartPole-v1", horizon="fixed"), task=get_task("CartPole-v1")
    )
    threads = torch.get_num_threads()
    space = app.task.make().action_space
    agent = _Agent(app, space, seed=0)  # returns before torch and SB3 are imported and the agent built
    obs = np.zeros(4, np.float32)
    assert agent.act(obs) in (0, 1) and agent.loaded is None  # meanwhile: uniform actions
    deadline = time.monotonic() + 60
    while agent.model is None and agent.failed is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert agent.failed is None and agent.model is not None
    assert torch.get_num_threads() == 1  # (the window's process: acting needs one core)
    torch.set_num_threads(threads)
    state = actor_state(agent.model.policy)
    state = {k: np.full_like(v, 0.5) for k, v in state.items()}
    agent.load(state)
    assert agent.loaded is state and agent.act(obs) in (0, 1)
    assert float(next(agent.model.policy.action_net.parameters()).mean()) == 0.5
