"""The live view of ``rlhf-gym label``, and what it shares with the demo view: one episode at a
time, in real time, at the task's human pace.

Live: the policy plays; the good and bad keys (+ and -) rate it (Deep TAMER's credit over the
steps shown 0.2-4 s before the press), the task's keys take over to correct it, the e-stop key
stops it. After a fixed-horizon episode ends, the window says so for a second, then starts the
next (the absorbing steps that fill the horizon show nothing to rate or stop).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from rlhf_gym.data.rollout import to_trajectory
from rlhf_gym.data.segments import cut
from rlhf_gym.feedback.synthetic import SIGNAL_DELAY
from rlhf_gym.human.app import App
from rlhf_gym.human.compare import frame_size
from rlhf_gym.human.keymap import KeyActions, key_words, pace, scene
from rlhf_gym.human.panel import MIN_WIDTH, OK, WARN
from rlhf_gym.human.play import Renderer
from rlhf_gym.human.prepare import render_task
from rlhf_gym.types import Correction, EStop, Segment, Signal

Step = tuple[np.ndarray, np.ndarray, float, bool]


class _Episode:
    """An episode played in the window: the environment, its steps and its seed generator."""

    def __init__(self, app: App, seed: int) -> None:
        self.app = app
        # MuJoCo renders in software here: a smaller frame, scaled up, keeps the window's pace
        self.env = render_task(app.task, (320, 320)).make(app.config.horizon, render_mode="rgb_array")
        self.rng = np.random.default_rng(seed)
        self.fps = pace(app.task, self.env)  # a human pace (the preset's play.fps), not the env's own
        self.renderer = Renderer(app.task, self.env)  # (MuJoCo's on a thread of its own)
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
        return self.renderer()


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
        self.act = KeyActions(app.task, self.action_space)
        self.words = dict(key_words(app.task))

    def window_size(self) -> tuple[int, int]:
        width = max(self.size[0], MIN_WIDTH)
        return width, self.size[1] + self.app.panel_height(width, self._lines())

    def _lines(self) -> list[str]:
        """The panel's lines under the figures: the state, then the legend."""
        raise NotImplementedError

    def _steer(self, name: str, down: bool, say: bool = True) -> None:
        """Track the task's keys held (a press is answered: it steers)."""
        if down and name not in self.pressed:
            self.pressed.append(name)
            if say:
                self.app.ack("steer", f"{name}: {self.words.get(name, 'steer')}, while held")
        elif down:
            self.app.ack("steer", f"{name}: already held")
        elif name in self.pressed:
            self.pressed.remove(name)

    def _blit_frame(self) -> None:
        app = self.app
        app.window.fill((30, 30, 36))
        x = (app.window.get_width() - self.size[0]) // 2
        app.window.blit(app.surface(self.episode.frame(), self.size), (x, 0))
        if self.episode.absorbed:  # the episode is over; the fixed horizon only waits for its end
            band = app.big.render(
                f"episode over ({self._ended()}): the next one starts in {self._left():.1f} s", True, WARN
            )
            app.window.fill((20, 20, 24), (0, self.size[1] // 2 - 16, app.window.get_width(), 32))
            app.window.blit(
                band, (max(8, (app.window.get_width() - band.get_width()) // 2), self.size[1] // 2 - 8)
            )

    def _ended(self) -> str:
        return "the pole fell" if self.app.task.name == "CartPole-v1" else "it terminated"

    def _left(self) -> float:
        return max(0.0, (self.episode.fps - self.episode.absorbed) / (self.episode.fps * self.app.speed))


class LiveView(_EpisodeView):
    """The policy plays in real time; +/- rate it (TAMER), the task's keys correct it, the e-stop
    stops it."""

    def __init__(self, app: App, seed: int) -> None:
        super().__init__(app, seed)
        self.takeover: tuple[Any, int] | None = None  # (snapshot, first step) while the person steers
        self.side = app.task.make(app.config.horizon)  # for the agent's own continuations
        self.agent = _Agent(app, self.side.action_space, seed)
        self.side.reset(seed=seed)  # Gymnasium's checker wants a reset before the first step
        self.last_label = time.perf_counter()

    @property
    def rate(self) -> float:
        return self.episode.fps * self.app.speed

    def key(self, name: str, control: str | None, down: bool, read_at: float) -> None:
        if name in self.app.task.keys:
            held = bool(self.pressed)
            self._steer(name, down)  # the takeover starts with the next step (update)
            if held and not self.pressed:
                self._correct(read_at)
            return
        if not down:
            return
        if control in ("good", "bad"):
            self._signal(control == "good", read_at)
        elif control == "e-stop":
            self._estop(read_at)
        elif control in ("slower", "faster"):
            self.app.speed = float(
                np.clip(self.app.speed * (2.0 if control == "faster" else 0.5), 0.125, 8.0)
            )
            self.app.ack("done", f"speed x{self.app.speed:g}")
        elif control == "restart":
            self.app.ack("done", "episode restarted")
            self._end_episode()

    # ----- feedback -------------------------------------------------------------------
    def _signal(self, positive: bool, read_at: float) -> None:
        steps, times = self.episode.steps, np.asarray(self.episode.times)
        # the steps on screen at some time in the last 4 s: the first is the one shown 4 s ago
        n = len(times) - max(0, int(np.searchsorted(times, read_at - SIGNAL_DELAY[1], "right")) - 1)
        credit = credit_at(times[len(times) - n :], read_at)
        live = ~np.array([s[3] for s in steps[len(steps) - n :]], dtype=bool)
        if n == 0 or not (credit * live).any():
            self.app.ack(
                "ignored", "good/bad: ignored, nothing to rate: no live step in the last 0.2-4 s", WARN
            )
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
            self.app.ack("ignored", "e-stop: ignored, you are steering: let go of the keys first", WARN)
            return
        if n < 2 or steps[-1][3]:
            why = (
                f"the episode is over, the next starts in {self._left():.1f} s"
                if n >= 2
                else "it has just begun"
            )
            self.app.ack("ignored", f"e-stop: ignored, nothing to stop: {why}", WARN)
            return
        after, n = self._continuation(self.app.task.snapshot(self.episode.env, self.episode.obs), n)
        if n < 2:
            self.app.ack("ignored", "e-stop: ignored, nothing to stop: the time limit is here", WARN)
            return
        before = cut(self.episode.trajectory(), len(steps) - n, n, self.app.task.absorbing_reward)
        watched = time.perf_counter() - max(self.last_label, self.episode.started)  # on screen only
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
            action = self.act(self.pressed) if steering else self.agent.act(obs)
            self.episode.step(action)
            if self.episode.done:
                self._end_episode()
                break

    @property
    def _max_takeover(self) -> int:
        return self.app.config.segment_length or 50

    def _lines(self) -> list[str]:
        episode = self.episode
        ret = sum(s[2] for s in episode.steps)
        where = f"step {len(episode.steps)}  return {ret:.1f}  speed x{self.app.speed:g}"
        if self.pressed:
            now = f"you steer ({', '.join(self.pressed)}): let go to store the correction"
        elif episode.absorbed:
            now = f"episode over ({self._ended()}): keys wait for the next one, in {self._left():.1f} s"
        elif self.agent.loaded is None:
            now = "the untrained agent plays (no policy from the learner yet): rate it, take over or stop it"
        else:
            now = "the agent plays: rate it good or bad, take over, or stop it"
        steer = "/".join(self.app.task.keys)
        lines = [f"{now}  {where}", self.app.legend(f"{steer}: take over")]
        return lines + ([scene(self.app.task)] if scene(self.app.task) else [])

    def draw(self) -> None:
        self._blit_frame()
        now, *rest = self._lines()
        self.app.draw_panel([(now, WARN if self.episode.absorbed else OK), *rest], self.size[1])


class _Agent:
    """The learner's latest policy, acting in the window's process.

    torch and SB3 load on a thread of their own (seconds on a busy machine), so the window opens at
    once. Until they have, and the learner has sent a policy, the agent acts uniformly at random, as
    an untrained one nearly does.
    """

    def __init__(self, app: App, space: Any, seed: int) -> None:
        self.space = space
        self.space.seed(seed)
        self.model: Any = None
        self.loaded: Any = None
        self.failed: BaseException | None = None
        threading.Thread(target=self._build, args=(app,), daemon=True, name="rlhf-gym agent").start()

    def _build(self, app: App) -> None:
        try:
            import torch
            from stable_baselines3.common.vec_env import DummyVecEnv

            from rlhf_gym.agents.registry import make_agent

            torch.set_num_threads(1)  # the window's one core: acting needs no more
            cfg, task = app.config, app.task
            hp = {k: v for k, v in cfg.hyperparams.items() if k != "n_envs"}
            venv = DummyVecEnv([lambda: task.make(cfg.horizon)])
            assert cfg.algo is not None
            self.model = make_agent(cfg.algo, venv, hp, cfg.seed, relabel=False)
        except Exception as err:  # said when the first policy comes
            self.failed = err

    def load(self, state: dict[str, np.ndarray] | None) -> None:
        """Act with ``state`` (the actor's weights) from now on, once the agent is built."""
        if state is None or state is self.loaded:
            return
        if self.failed is not None:  # (a policy came, and nothing can act with it)
            raise RuntimeError(f"the window's agent could not be built: {self.failed}") from self.failed
        if self.model is None:
            return
        import torch

        from rlhf_gym.human.learning import NOT_ACTING

        weights = {k: torch.as_tensor(v) for k, v in state.items()}
        missing, unexpected = self.model.policy.load_state_dict(weights, strict=False)  # the actor's only
        wrong = [*unexpected, *(k for k in missing if not k.startswith(NOT_ACTING))]
        if wrong:
            raise ValueError(f"the learner's policy does not fit the window's agent: {', '.join(wrong)}")
        self.loaded = state

    def act(self, obs: np.ndarray) -> Any:
        if self.loaded is None:
            return self.space.sample()
        return self.model.predict(obs, deterministic=False)[0]
