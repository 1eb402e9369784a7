"""The three views of ``rlhf-gym label``: compare, live and demo (see ``rlhf_gym.human.label``).

Each view draws itself into the shared window, turns keys into feedback records and hands
them to ``App.commit``, which returns once they are on disk.
"""

from __future__ import annotations

import math
import time
from collections import deque
from typing import Any

import numpy as np

from rlhf_gym.human.label import PANEL_HEIGHT, WARN, App
from rlhf_gym.human.play import _frame
from rlhf_gym.learner import Clip, replay
from rlhf_gym.rollout import to_trajectory
from rlhf_gym.segments import cut
from rlhf_gym.synthetic import SIGNAL_DELAY, tamer_credit
from rlhf_gym.types import Comparison, Correction, Demonstration, EStop, Query, Segment, Signal

TEACHER = "human"
PENDING = "compare"
Step = tuple[np.ndarray, np.ndarray, float, bool]


class ClipPlayer:
    """Frames of a clip, made one at a time as it first plays and kept for the next loops.

    Rendering environments are never closed while the window is open: Gymnasium's classic-control
    ``close`` quits pygame itself, window and fonts included. They are freed with the player.
    """

    def __init__(self, app: App, clip: Clip, size: tuple[int, int]) -> None:
        self.app, self.clip, self.size = app, clip, size
        self.env = app.task.make(app.config.horizon, render_mode="rgb_array")
        self.env.reset(seed=clip.seed)
        for action in clip.actions[: clip.start]:
            self.env.step(action)
        self.frames: list[Any] = []
        self.segment = replay(app.task, app.config.horizon, clip)

    def frame(self, i: int) -> Any:
        while len(self.frames) <= i:
            self.frames.append(self.app.surface(_frame(self.env), self.size))
            t = self.clip.start + len(self.frames) - 1
            if t < len(self.clip.actions):  # past a terminated episode's end, its last frame stays
                self.env.step(self.clip.actions[t])
        return self.frames[i]


def _frame_size(app: App, scale: float = 1.0) -> tuple[int, int]:
    env = app.task.make(app.config.horizon, render_mode="rgb_array")
    env.reset(seed=0)
    h, w = _frame(env).shape[:2]
    return int(w * app.zoom * scale), int(h * app.zoom * scale)


class CompareView:
    """Two clips of the current policy loop side by side; the person says which is better."""

    action_space = None

    def __init__(self, app: App, seed: int) -> None:
        self.app = app
        self.clip_size = _frame_size(app, 0.6)
        self.players: list[ClipPlayer] = []
        self.shown_at = 0.0
        self.watched = 0.0  # seconds the current pair has been on screen, pauses excluded
        self.fps = float(app.task.make(app.config.horizon).metadata.get("render_fps") or 30)
        pending = app.store.pending(PENDING)
        if pending is not None:
            value, arrays = pending
            self._show(tuple(Clip(actions=arrays[f"actions{i}"], **c) for i, c in enumerate(value["clips"])))
            app.flash("showing the query that was on screen when the last session ended", WARN)

    def window_size(self) -> tuple[int, int]:
        w, h = self.clip_size
        return 2 * w + 30, h + 40 + PANEL_HEIGHT

    def _show(self, pair: tuple[Clip, ...]) -> None:
        self.players = [ClipPlayer(self.app, clip, self.clip_size) for clip in pair]
        self.shown_at, self.watched = time.perf_counter(), 0.0

    def _next(self) -> None:
        self.players = []
        if not self.app.budget_left:
            return
        pair = self.app.learner.next_pair()
        if pair is None:
            return
        value = {"clips": [c.to_json() for c in pair]}
        self.app.store.set_pending(PENDING, value, {f"actions{i}": c.actions for i, c in enumerate(pair)})
        self._show(pair)  # stored as pending before it is shown

    def key(self, name: str, control: str | None, down: bool, read_at: float) -> None:
        if not down or not self.players or control is None:
            return
        if control == "skip":
            self.app.store.clear_pending(PENDING)
            self.app.result.skipped += 1
            self.app.flash("skipped")
            self._next()
            return
        label = {"prefer left": 1.0, "prefer right": 0.0, "equal": 0.5}.get(control)
        if label is None:
            return
        left, right = (p.segment for p in self.players)
        record = Comparison(Query(left, right), label, teacher=TEACHER)
        info = {"mode": "compare", "clips": [p.clip.to_json() for p in self.players]}
        effort = self.watched if self.app.paused else time.perf_counter() - self.shown_at
        self.app.commit(record, effort, info, read_at, resolves=PENDING)
        self._next()

    def update(self, now: float) -> None:
        if not self.players:
            self._next()
        elif not self.app.paused:
            self.watched = now - self.shown_at
        else:
            self.shown_at = now - self.watched

    def draw(self) -> None:
        app, window = self.app, self.app.window
        window.fill((30, 30, 36))
        w, h = self.clip_size
        if self.players:
            i = int(self.watched * self.fps) % self.players[0].clip.length
            for k, (player, side) in enumerate(zip(self.players, ("left", "right"))):
                x = 10 + k * (w + 10)
                window.blit(player.frame(i), (x, 30))
                window.blit(app.big.render(side, True, (235, 235, 230)), (x, 6))
            step = f"step {i + 1}/{self.players[0].clip.length}"
            window.blit(app.font.render(step, True, (150, 150, 150)), (2 * w - 80, 10))
        else:
            wait = (
                "budget reached: press q to quit" if not app.budget_left else "waiting for the next clips..."
            )
            window.blit(app.big.render(wait, True, (235, 235, 230)), (20, h // 2))
        app.draw_panel(["which is better? " + app.legend()], h + 40)


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
        self.started = time.perf_counter()
        self.done = False
        self.terminated = False
        self.absorbed = 0  # absorbing steps so far (fixed horizon, after termination)

    def step(self, action: Any) -> None:
        next_obs, reward, term, trunc, info = self.env.step(action)
        absorbing = bool(info.get("absorbing", False))
        self.steps.append((self.obs, np.asarray(action), float(reward), absorbing))
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
        self.size = _frame_size(app)
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
                self.pressed.append(name)
                if self.takeover is None:
                    self.takeover = (
                        self.app.task.snapshot(self.episode.env, self.episode.obs),
                        len(self.episode.steps),
                    )
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
        steps = self.episode.steps
        n = min(len(steps), math.ceil(SIGNAL_DELAY[1] * self.rate))
        credit = tamer_credit(n, self.rate)
        if n == 0 or not credit.any():
            self.app.flash("too early to rate: nothing watched yet", WARN)
            return
        segment = cut(self.episode.trajectory(), len(steps) - n, n, self.app.task.absorbing_reward)
        info = {"mode": "live", "speed": self.app.speed}
        self.app.commit(Signal(segment, credit, positive, TEACHER), 0.0, info, read_at)

    def _correct(self, read_at: float) -> None:
        if self.takeover is None:
            return
        snap, first = self.takeover
        self.takeover = None
        n = len(self.episode.steps) - first
        if n < 2:
            return
        corrected = cut(self.episode.trajectory(), first, n, self.app.task.absorbing_reward)
        original = self._continuation(snap, n)
        info = {"mode": "live", "speed": self.app.speed}
        self.app.commit(Correction(original, corrected, TEACHER), n / self.rate, info, read_at)

    def _estop(self, read_at: float) -> None:
        steps = self.episode.steps
        n = min(len(steps), self.app.config.segment_length or 50)
        if n < 2:
            self.app.flash("too early to stop: nothing watched yet", WARN)
            return
        before = cut(self.episode.trajectory(), len(steps) - n, n, self.app.task.absorbing_reward)
        after = self._continuation(self.app.task.snapshot(self.episode.env, self.episode.obs), n)
        watched = time.perf_counter() - self.last_label
        self.app.commit(EStop(before, after, TEACHER), watched, {"mode": "live"}, read_at)
        self.last_label = time.perf_counter()
        self._end_episode()

    def _continuation(self, snap: Any, n: int) -> Segment:
        """What the agent does for ``n`` steps from the saved state."""
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
        traj = to_trajectory(steps, terminated or len(steps) < n, np.asarray(obs))
        return cut(traj, 0, n, self.app.task.absorbing_reward)

    def _end_episode(self) -> None:
        if self.takeover is not None:
            self._correct(time.perf_counter())
        self.pressed = []
        self.episode.reset()

    # ----- playing --------------------------------------------------------------------
    def update(self, now: float) -> None:
        self.agent.load(self.app.policy)
        for _ in range(self.stepper.due(now, self.rate, self.app.paused)):
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

        from rlhf_gym.agents import make_agent

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
        self.against: deque[Segment] = deque(maxlen=64)  # the agent's recent segments, from the clips
        self.waiting = True  # each episode starts when the person presses one of the task's keys

    def key(self, name: str, control: str | None, down: bool, read_at: float) -> None:
        if name in self.app.task.keys:
            if down and name not in self.pressed:
                self.pressed.append(name)
                if self.waiting:
                    self.waiting = False
                    self.episode.reset()  # the clock starts now
            elif not down and name in self.pressed:
                self.pressed.remove(name)
        elif down and control == "restart":
            self.app.flash("episode discarded", WARN)
            self.episode.reset()
            self.waiting = True

    def update(self, now: float) -> None:
        pair = self.app.learner.next_pair()
        if pair is not None:
            self.against.extend(replay(self.app.task, self.app.config.horizon, clip) for clip in pair)
        paused = self.app.paused or self.waiting
        for _ in range(self.stepper.due(now, self.episode.fps * self.app.speed, paused)):
            self.episode.step(self.app.task.action_for_keys(self.pressed, self.action_space))
            if self.episode.done:
                self._finish(time.perf_counter())
                break

    def _finish(self, read_at: float) -> None:
        """Store the finished episode against the agent's recent segments, then start anew."""
        h, task = self.app.config.segment_length or 50, self.app.task
        episode = self.episode.trajectory()
        live = int((~episode.absorbing).sum())
        finished = episode.terminated or bool(episode.absorbing[-1])  # may be padded past its end
        starts = [s for s in range(0, live, h) if s + h <= len(episode) or finished]
        if starts and self.against:
            demo = tuple(cut(episode, s, h, task.absorbing_reward) for s in starts)
            pool = list(self.against)
            picks = np.random.default_rng(len(self.app.result.committed)).integers(len(pool), size=len(demo))
            record = Demonstration(episode, demo, tuple(pool[i] for i in picks), TEACHER)
            effort = time.perf_counter() - self.episode.started
            self.app.commit(record, effort, {"mode": "demo", "return": episode.true_return}, read_at)
        elif not self.against:
            self.app.flash("not stored: no agent segments to compare with yet", WARN)
        self.episode.reset()
        self.waiting = True

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


MODE_CLASSES: dict[str, Any] = {"compare": CompareView, "live": LiveView, "demo": DemoView}
