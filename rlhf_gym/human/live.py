"""The live and demo views of ``rlhf-gym label``: one episode at a time, in real time.

Live: the policy plays; + and - rate it (Deep TAMER's credit over the steps shown 0.2-4 s before
the press), the task's keys take over to correct it, the e-stop key stops it. Demo: the person
plays, and each finished episode is stored as a demonstration.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import numpy as np

from rlhf_gym.data.rollout import to_trajectory
from rlhf_gym.data.segments import cut
from rlhf_gym.feedback.synthetic import SIGNAL_DELAY
from rlhf_gym.human.app import PANEL_HEIGHT, WARN, App
from rlhf_gym.human.compare import frame_size
from rlhf_gym.human.learner import replay
from rlhf_gym.human.play import _frame
from rlhf_gym.types import Correction, Demonstration, EStop, Segment, Signal, Trajectory

Step = tuple[np.ndarray, np.ndarray, float, bool]


class _Episode:
    """An episode played in the window: the environment, its steps and its seed generator."""

    def __init__(self, app: App, seed: int) -> None:
        self.app = app
        self.env = app.task.make(app.config.horizon, render_mode="rgb_array")
        self.rng = np.random.default_rng(seed)
        self.fps = float(self.env.metadata.get("render_fps") or 30)
        self.reset()

    def reset(self) -> None:
        self.obs, _ = self.env.reset(seed=int(self.rng.integers(2**31)))
        self.steps: list[Step] = []
        self.times: list[float] = []
        self.started = time.perf_counter()
        self.done = False
        self.terminated = False
        self.absorbed = 0  # absorbing steps so far (fixed horizon, after termination)

    def step(self, action: Any) -> None:
        next_obs, reward, term, trunc, info = self.env.step(action)
        absorbing = bool(info.get("absorbing", False))
        self.steps.append((self.obs, np.asarray(action), float(reward), absorbing))
        self.times.append(time.perf_counter())  # when the step was shown, for TAMER's credit
        self.absorbed = self.absorbed + 1 if absorbing else 0
        self.obs = next_obs
        if term or trunc:
            self.done, self.terminated = True, bool(term)
        elif self.absorbed >= self.fps:  # a fixed-horizon episode is over for a watcher after 1 s
            self.done = True

    def trajectory(self) -> Any:
        return to_trajectory(self.steps, self.terminated, np.asarray(self.obs))

    def frame(self) -> np.ndarray:
        return _frame(self.env)


def credit_at(times: np.ndarray, press: float) -> np.ndarray:
    """Deep TAMER's credit of steps shown at ``times`` (each until the next one; the last until
    the press) for a key pressed at ``press``: the probability that the person's reaction delay,
    uniform on ``SIGNAL_DELAY``, falls in the time each step was on screen.

    Example:
        >>> [round(float(c), 3) for c in credit_at(np.array([0.0, 1.0, 4.0]), 4.1)]  # 0-1, 1-4, 4-4.1 s
        [0.237, 0.763, 0.0]
    """
    lo, hi = SIGNAL_DELAY
    ends = np.append(times[1:], press)
    overlap = np.clip(np.minimum(press - times, hi) - np.maximum(press - ends, lo), 0.0, None)
    return (overlap / (hi - lo)).astype(np.float32)


class _Stepper:
    """Steps an episode at ``fps * speed`` steps a second, whatever the window's frame rate."""

    def __init__(self) -> None:
        self.last = time.perf_counter()
        self.owed = 0.0

    def due(self, now: float, rate: float, paused: bool) -> int:
        self.owed = 0.0 if paused else min(self.owed + (now - self.last) * rate, 4.0)
        self.last = now
        n = int(self.owed)
        self.owed -= n
        return n


class _EpisodeView:
    """A view of one episode at a time, stepped in real time, with the task's keys tracked."""

    def __init__(self, app: App, seed: int) -> None:
        self.app = app
        self.episode = _Episode(app, seed)
        self.action_space = self.episode.env.action_space
        self.size = frame_size(app)
        self.stepper = _Stepper()
        self.pressed: list[str] = []  # the task's keys held down, in the order pressed

    def window_size(self) -> tuple[int, int]:
        return self.size[0], self.size[1] + PANEL_HEIGHT


class LiveView(_EpisodeView):
    """The policy plays in real time; +/- rate it (TAMER), the task's keys correct it, the e-stop
    stops it."""

    def __init__(self, app: App, seed: int) -> None:
        super().__init__(app, seed)
        self.takeover: tuple[Any, int] | None = None  # (snapshot, first step) while the person steers
        self.agent = _Agent(app)
        self.side = app.task.make(app.config.horizon)  # for the agent's own continuations
        self.side.reset(seed=seed)  # Gymnasium's checker wants a reset before the first step
        self.last_label = time.perf_counter()

    @property
    def rate(self) -> float:
        return self.episode.fps * self.app.speed

    def key(self, name: str, control: str | None, down: bool, read_at: float) -> None:
        if name in self.app.task.keys:
            if down and name not in self.pressed:
                self.pressed.append(name)  # the takeover starts with the next step (update)
            elif not down and name in self.pressed:
                self.pressed.remove(name)
                if not self.pressed:
                    self._correct(read_at)
            return
        if not down:
            return
        if control in ("plus", "minus"):
            self._signal(control == "plus", read_at)
        elif control == "e-stop":
            self._estop(read_at)
        elif control in ("slower", "faster"):
            self.app.speed = float(
                np.clip(self.app.speed * (2.0 if control == "faster" else 0.5), 0.125, 8.0)
            )
            self.app.flash(f"speed x{self.app.speed:g}")
        elif control == "restart":
            self._end_episode()

    # ----- feedback -------------------------------------------------------------------
    def _signal(self, positive: bool, read_at: float) -> None:
        steps, times = self.episode.steps, np.asarray(self.episode.times)
        # the steps on screen at some time in the last 4 s: the first is the one shown 4 s ago
        n = len(times) - max(0, int(np.searchsorted(times, read_at - SIGNAL_DELAY[1], "right")) - 1)
        credit = credit_at(times[len(times) - n :], read_at)
        live = ~np.array([s[3] for s in steps[len(steps) - n :]], dtype=bool)
        if n == 0 or not (credit * live).any():
            self.app.flash("nothing to rate: no live step in the last 0.2-4 s", WARN)
            return
        segment = cut(self.episode.trajectory(), len(steps) - n, n, self.app.task.absorbing_reward)
        info = {"mode": "live", "speed": self.app.speed}
        self.app.commit(Signal(segment, credit, positive, self.app.teacher), 0.0, info, read_at)

    def _correct(self, read_at: float) -> None:
        if self.takeover is None:
            return
        snap, first = self.takeover
        self.takeover = None
        n = len(self.episode.steps) - first
        if n < 2:
            return
        original, n = self._continuation(snap, n)
        corrected = cut(self.episode.trajectory(), first, n, self.app.task.absorbing_reward)
        info = {"mode": "live", "speed": self.app.speed}
        self.app.commit(Correction(original, corrected, self.app.teacher), n / self.rate, info, read_at)

    def _estop(self, read_at: float) -> None:
        steps = self.episode.steps
        n = min(len(steps), self.app.config.segment_length or 50)
        if self.pressed:
            self.app.flash("you are steering: release the keys, then stop the agent", WARN)
            return
        if n < 2 or steps[-1][3]:
            self.app.flash(
                "nothing to stop: " + ("the episode is over" if n >= 2 else "it has just begun"), WARN
            )
            return
        after, n = self._continuation(self.app.task.snapshot(self.episode.env, self.episode.obs), n)
        if n < 2:
            self.app.flash("nothing to stop: the time limit is here", WARN)
            return
        before = cut(self.episode.trajectory(), len(steps) - n, n, self.app.task.absorbing_reward)
        watched = time.perf_counter() - self.last_label
        self.app.commit(EStop(before, after, self.app.teacher), watched, {"mode": "live"}, read_at)
        self.last_label = time.perf_counter()
        self._end_episode()

    def _continuation(self, snap: Any, n: int) -> tuple[Segment, int]:
        """What the agent does for ``n`` steps from the saved state, and its length: ``n``, or
        fewer if the time limit comes first (then both sides of the record are cut to it)."""
        obs = self.app.task.restore(self.side, snap)
        steps: list[Step] = []
        terminated = False
        for _ in range(n):
            action = self.agent.act(obs)
            next_obs, reward, term, trunc, info = self.side.step(action)
            steps.append((obs, np.asarray(action), float(reward), bool(info.get("absorbing", False))))
            obs = next_obs
            if term or trunc:
                terminated = bool(term)
                break
        traj = to_trajectory(steps, terminated, np.asarray(obs))
        n = n if terminated else len(steps)
        return cut(traj, 0, n, self.app.task.absorbing_reward), n

    def _end_episode(self) -> None:
        if self.takeover is not None:
            self._correct(time.perf_counter())
        self.episode.reset()  # keys still held steer the next episode (update starts a takeover)

    # ----- playing --------------------------------------------------------------------
    def update(self, now: float) -> None:
        self.agent.load(self.app.policy)
        for _ in range(self.stepper.due(now, self.rate, self.app.paused)):
            if self.pressed and self.takeover is None:
                self.takeover = (
                    self.app.task.snapshot(self.episode.env, self.episode.obs),
                    len(self.episode.steps),
                )
            if self.takeover is not None and len(self.episode.steps) - self.takeover[1] >= self._max_takeover:
                self._correct(time.perf_counter())  # a long takeover is cut into corrections
                self.takeover = (
                    self.app.task.snapshot(self.episode.env, self.episode.obs),
                    len(self.episode.steps),
                )
            steering = bool(self.pressed)
            obs = self.episode.obs
            action = (
                self.app.task.action_for_keys(self.pressed, self.action_space)
                if steering
                else self.agent.act(obs)
            )
            self.episode.step(action)
            if self.episode.done:
                self._end_episode()
                break

    @property
    def _max_takeover(self) -> int:
        return self.app.config.segment_length or 50

    def draw(self) -> None:
        app = self.app
        app.window.fill((30, 30, 36))
        app.window.blit(app.surface(self.episode.frame(), self.size), (0, 0))
        who = "you steer" if self.pressed else "agent plays"
        ret = sum(s[2] for s in self.episode.steps)
        line = f"{who}  step {len(self.episode.steps)}  return {ret:.1f}  speed x{self.app.speed:g}"
        app.draw_panel([line, app.legend("task keys: take over")], self.size[1])


class _Agent:
    """The learner's latest policy, acting in the window's process."""

    def __init__(self, app: App) -> None:
        from stable_baselines3.common.vec_env import DummyVecEnv

        from rlhf_gym.agents.registry import make_agent

        cfg, task = app.config, app.task
        hp = {k: v for k, v in cfg.hyperparams.items() if k != "n_envs"}
        venv = DummyVecEnv([lambda: task.make(cfg.horizon)])
        assert cfg.algo is not None
        self.model = make_agent(cfg.algo, venv, hp, cfg.seed, relabel=False)
        self.loaded: Any = None

    def load(self, state: dict[str, np.ndarray] | None) -> None:
        if state is None or state is self.loaded:
            return
        import torch

        self.model.policy.load_state_dict({k: torch.as_tensor(v) for k, v in state.items()})
        self.loaded = state

    def act(self, obs: np.ndarray) -> Any:
        return self.model.predict(obs, deterministic=False)[0]


class DemoView(_EpisodeView):
    """The person plays; each finished episode is stored as a demonstration."""

    def __init__(self, app: App, seed: int) -> None:
        super().__init__(app, seed)
        self.against: deque[Segment] = deque(maxlen=16)  # the agent's recent segments, from the clips
        self.waiting = True  # each episode starts when the person presses one of the task's keys
        self.unsaved: tuple[Trajectory, float, float] | None = None  # waits for agent segments

    def key(self, name: str, control: str | None, down: bool, read_at: float) -> None:
        if name in self.app.task.keys:
            if down and name not in self.pressed:
                self.pressed.append(name)
                if self.waiting and self.unsaved is None:
                    self.waiting = False
                    self.episode.started = time.perf_counter()  # the clock starts now
                elif self.waiting:
                    self.app.flash("the last episode waits for the agent's first segments to be stored", WARN)
            elif not down and name in self.pressed:
                self.pressed.remove(name)
        elif down and control == "restart":
            self.app.flash("episode discarded", WARN)
            self.episode.reset()
            self.waiting = True

    def update(self, now: float) -> None:
        pair = self.app.learner.next_pair()  # keep the newest agent segments
        if pair is not None:
            self.against.extend(replay(self.app.task, self.app.config.horizon, clip) for clip in pair)
        if self.unsaved is not None and self.against:
            self._store(*self.unsaved[:2], time.perf_counter())  # its latency counts from here
        paused = self.app.paused or self.waiting
        for _ in range(self.stepper.due(now, self.episode.fps * self.app.speed, paused)):
            self.episode.step(self.app.task.action_for_keys(self.pressed, self.action_space))
            if self.episode.done:
                self._finish(time.perf_counter())
                break

    def _finish(self, read_at: float) -> None:
        """Store the finished episode against the agent's recent segments, then start anew."""
        episode = self.episode.trajectory()
        self.unsaved = (episode, time.perf_counter() - self.episode.started, read_at)
        if self.against:
            self._store(*self.unsaved)
        else:
            self.app.flash("episode kept: it is stored once the agent's first segments arrive", WARN)
        self.episode.reset()
        self.waiting = True

    def _store(self, episode: Trajectory, effort: float, read_at: float) -> None:
        self.unsaved = None
        h, task = self.app.config.segment_length or 50, self.app.task
        live = int((~episode.absorbing).sum())
        finished = episode.terminated or bool(episode.absorbing[-1])  # may be padded past its end
        starts = [s for s in range(0, live, h) if s + h <= len(episode) or finished]
        if not starts:
            self.app.flash(f"not stored: shorter than a segment ({h} steps)", WARN)
            return
        demo = tuple(cut(episode, s, h, task.absorbing_reward) for s in starts)
        pool = list(self.against)
        picks = np.random.default_rng(len(self.app.result.committed)).integers(len(pool), size=len(demo))
        record = Demonstration(episode, demo, tuple(pool[i] for i in picks), self.app.teacher)
        self.app.commit(record, effort, {"mode": "demo", "return": episode.true_return}, read_at)

    def draw(self) -> None:
        app = self.app
        app.window.fill((30, 30, 36))
        app.window.blit(app.surface(self.episode.frame(), self.size), (0, 0))
        ret = sum(s[2] for s in self.episode.steps)
        line = f"you play  step {len(self.episode.steps)}  return {ret:.1f}"
        if self.waiting:
            line = "press one of the task's keys to start an episode"
        keys = "  ".join(f"{k}: {v}" for k, v in app.task.keys.items())
        app.draw_panel([line, app.legend(keys)], self.size[1])
