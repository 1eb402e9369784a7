"""Synthetic teachers for corrections, demonstrations, ratings, TAMER signals and e-stops.

They stand in for a person, as B-Pref's teachers do for comparisons (``rlhf_gym.feedback.teachers``),
and share its parameters (``TeacherParams``). Each judges by the task's true reward, acts
through the task's scripted expert (``rlhf_gym.tasks.experts``), and spends effort as a person
would (``rlhf_gym.feedback.effort``): watching the agent costs time even when no feedback comes of
it. Their yardstick is a ``Reference``: the true reward per step of a random policy and of
the expert, measured once per task.

- **Corrections.** Watch the agent from a fresh episode. Every ``H`` steps, snapshot the
  state; if the expert, restored to that state, would do better over the next ``H`` steps
  than the agent did (by more than the lazy threshold), take over: the expert's segment is
  preferred over the agent's own continuation.
- **Demonstrations.** Play an expert episode; each of its segments is preferred over a
  segment of the agent's recent behaviour.
- **Ratings.** Rate recent agent segments on ``levels`` equal-width bins of the return,
  from the random policy's (worst) to the expert's (best), as RLHF-Blender bins returns.
- **TAMER signals.** Watch recent episodes, slowed down as TAMER studies do; once a second,
  press + when the last second went better than halfway between random and expert, - when
  worse. Each press is credited to the steps 0.2 to 4 s before it, uniformly (Deep TAMER,
  Warnell et al. 2018).
- **E-stops.** Watch recent episodes; stop at the first step where the next ``H`` steps go
  worse than the last ``H`` did. What came before the stop is preferred over what came after.

Correctors and e-stoppers see a little of the future (the next segment), as a person
watching a pole start to fall knows it will fall; a TAMER teacher reacts to what it saw.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from rlhf_gym.data.rollout import to_trajectory
from rlhf_gym.data.segments import cut, sample_segments
from rlhf_gym.feedback.effort import Budget, EffortModel
from rlhf_gym.feedback.teachers import Teacher, sigmoid
from rlhf_gym.tasks.registry import Task
from rlhf_gym.teacher_params import TeacherParams
from rlhf_gym.types import Correction, Demonstration, EStop, Feedback, Rating, Segment, Signal, Trajectory

Policy = Callable[[np.ndarray], Any]
"""One observation to one action, in the environment's own units."""
Item = tuple[Feedback, float]
"""A feedback record and the seconds of effort it took."""

SIGNAL_DELAY = (0.2, 4.0)
"""Deep TAMER's window of human reaction delay, in seconds (uniform density; Warnell et al., 2018)."""
SIGNAL_INTERVAL = 1.0
"""Seconds between a synthetic TAMER teacher's judgements (an assumption: about one key press
a second at most)."""
FORESIGHT = 1.0
"""Seconds of the most recent behaviour a TAMER teacher judges when it presses."""


@dataclass(frozen=True)
class Reference:
    """True reward per step of a uniformly random policy and of the expert.

    Example:
        >>> Reference(random=0.0, expert=1.0).mid
        0.5
    """

    random: float
    expert: float

    @property
    def span(self) -> float:
        return max(self.expert - self.random, 1e-8)

    @property
    def mid(self) -> float:
        return (self.random + self.expert) / 2


def run(env: gym.Env, policy: Policy, obs: np.ndarray, max_steps: int) -> tuple[Trajectory, np.ndarray, bool]:
    """Step ``env`` from ``obs`` with ``policy`` for up to ``max_steps`` steps or the episode's end.

    Returns:
        The steps as a trajectory, the last observation, and whether the episode ended.
    """
    steps: list[tuple[np.ndarray, np.ndarray, float, bool]] = []
    terminated = truncated = False
    for _ in range(max_steps):
        action = policy(obs)
        nxt, reward, terminated, truncated, info = env.step(action)
        steps.append((obs, np.asarray(action), float(reward), bool(info.get("absorbing", False))))
        obs = nxt
        if terminated or truncated:
            break
    return to_trajectory(steps, terminated, obs), obs, terminated or truncated


def measure_reference(
    task: Task, horizon: str, expert: Policy, episodes: int = 5, seed: int = 0
) -> Reference:
    """Mean true reward per step of random actions and of the expert over the task's whole
    horizon, an episode that terminates early paying the absorbing reward for the rest (as
    the segments teachers judge are padded).

    Raises:
        ValueError: the expert does no better than random, so there is no yardstick.
    """
    env = task.make(horizon)
    env.action_space.seed(seed)
    per_step = []
    for policy in (lambda _: env.action_space.sample(), expert):
        total = 0.0
        for k in range(episodes):
            obs, _ = env.reset(seed=seed + k)
            traj, _, _ = run(env, policy, obs, task.max_episode_steps)
            total += traj.true_return + (task.max_episode_steps - len(traj)) * task.absorbing_reward
        per_step.append(total / (episodes * task.max_episode_steps))
    env.close()
    if not per_step[1] > per_step[0]:
        raise ValueError(
            f"the expert of task {task.name!r} earns {per_step[1]:.3g} per step, no more than a random "
            f"policy ({per_step[0]:.3g}); the synthetic teachers need an expert that does better"
        )
    return Reference(*per_step)


class SyntheticTeacher:
    """Gives every feedback type but comparisons, from the true reward and an expert.

    Args:
        task: the task (its expert, snapshots and frame rate are used).
        horizon: ``natural`` or ``fixed``, as the agent's environment.
        params: B-Pref-style noise (``eps_mistake``, ``beta``, ``eps_lazy``).
        effort: the cost of each item.
        segment_length: steps of a segment (ratings, e-stops, demonstrations).
        expert: the expert controller (needed for corrections and demonstrations).
        reference: the yardstick; measured from ``expert`` when not given.
        correction_length: steps a correction steers (``segment_length`` if ``None``).
        levels: levels of the rating scale.
        name: recorded with every item.

    Every method returns ``(record, seconds)`` pairs and stops when ``budget`` is spent.
    """

    def __init__(
        self,
        task: Task,
        horizon: str,
        params: TeacherParams,
        effort: EffortModel,
        segment_length: int,
        expert: Policy,
        reference: Reference | None = None,
        correction_length: int | None = None,
        levels: int = 10,
        name: str = "synthetic",
        seed: int = 0,
    ) -> None:
        self.task = task
        self.horizon = horizon
        self.params = params
        self.effort = effort
        self.h = segment_length
        self.expert = expert
        self.reference = reference or measure_reference(task, horizon, expert, seed=seed)
        self.correction_length = correction_length or segment_length
        for name, steps in (
            ("segment_length", segment_length),
            ("correction_length", self.correction_length),
        ):
            if steps > task.max_episode_steps:
                limit = task.max_episode_steps
                raise ValueError(f"{name} {steps} is longer than an episode of {task.name} ({limit} steps)")
        self.levels = levels
        self.name = name
        self.env_steps = 0
        self._ranker = Teacher(params, name)
        self._env: gym.Env | None = None

    # ----- acting teachers: corrections and demonstrations --------------------------------
    def corrections(self, policy: Policy, budget: Budget, rng: np.random.Generator) -> list[Item]:
        """Watch ``policy`` and take over where the expert would do clearly better."""
        env, h = self._environment(), self.correction_length
        out: list[Item] = []
        threshold = self._lazy_threshold(h)
        for _ in range(self._max_episodes(budget)):
            obs, _ = env.reset(seed=int(rng.integers(2**31)))
            watched, corrected = 0, False
            while not corrected:
                start = self.task.snapshot(env, obs)
                original, after_obs, ended = run(env, policy, obs, h)
                if original.absorbing[0] or (len(original) < h and not original.terminated):
                    break  # the episode is over for a watcher, or too little time is left
                after = None if ended else self.task.snapshot(env, after_obs)
                self.task.restore(env, start)
                fix, _, _ = run(env, self._noisy(self.expert, env, rng), obs, h)
                self.env_steps += len(original) + len(fix)
                if len(fix) == h or fix.terminated:
                    old, new = (
                        cut(original, 0, h, self.task.absorbing_reward),
                        cut(fix, 0, h, self.task.absorbing_reward),
                    )
                    if new.true_return - old.true_return > threshold:
                        cost = self.effort.correction(watched, h)  # watched until the takeover
                        if not budget.affords(cost):
                            self._spend_watching(budget, watched)
                            return out
                        budget.spend(cost)
                        out.append((Correction(old, new, self.name), cost))
                        corrected = True
                        continue
                watched += h
                if after is None:
                    break
                obs = self.task.restore(env, after)
            if not corrected and not self._spend_watching(budget, watched):
                return out
            if budget.exhausted:
                break
        return out

    def demonstrations(
        self, pool: Sequence[Trajectory], budget: Budget, rng: np.random.Generator
    ) -> list[Item]:
        """Play expert episodes; each demo segment is preferred over a recent agent segment."""
        env, h = self._environment(), self.h
        out: list[Item] = []
        while not budget.exhausted:
            obs, _ = env.reset(seed=int(rng.integers(2**31)))
            episode, _, _ = run(env, self._noisy(self.expert, env, rng), obs, self.task.max_episode_steps)
            self.env_steps += len(episode)
            live = int((~episode.absorbing).sum())
            cost = self.effort.demonstration(live)
            if not budget.affords(cost):
                break
            starts = [s for s in range(0, live, h) if s + h <= len(episode) or _finished(episode)]
            if not starts:
                break
            demo = tuple(cut(episode, s, h, self.task.absorbing_reward) for s in starts)
            against = tuple(sample_segments(pool, h, len(demo), rng, self.task.absorbing_reward))
            budget.spend(cost)
            out.append((Demonstration(episode, demo, against, self.name), cost))
        return out

    # ----- watching teachers: ratings, TAMER signals and e-stops -------------------------
    def ratings(self, pool: Sequence[Trajectory], budget: Budget, rng: np.random.Generator) -> list[Item]:
        """Rate recent agent segments on ``levels`` bins of the return."""
        cost = self.effort.rating(self.h)
        n = budget.labels if budget.labels is not None else math.floor((budget.seconds or 0) / cost + 1e-9)
        out: list[Item] = []
        for seg in sample_segments(pool, self.h, n, rng, self.task.absorbing_reward) if n else []:
            if not budget.affords(cost):
                break
            budget.spend(cost)
            out.append((Rating(seg, self.level(seg, rng), self.levels, self.name), cost))
        return out

    def level(self, segment: Segment, rng: np.random.Generator) -> int:
        """The rating of a segment: its bin between the random policy's return and the expert's."""
        k, p = self.levels, self.params
        if p.eps_mistake and rng.random() < p.eps_mistake:
            return int(rng.integers(k))
        lo, width = self.h * self.reference.random, self.h * self.reference.span / k
        value = self._ranker.weighted_return(segment)
        if math.isinf(p.beta):
            return int(np.clip(math.floor((value - lo) / width), 0, k - 1))
        centres = lo + (np.arange(k) + 0.5) * width
        logits = -p.beta * np.abs(value - centres)
        probs = np.exp(logits - logits.max())
        return int(rng.choice(k, p=probs / probs.sum()))

    def signals(self, pool: Sequence[Trajectory], budget: Budget, rng: np.random.Generator) -> list[Item]:
        """Watch recent episodes, newest first, slowed to ``effort.tamer_speed``, pressing + or -
        about once a second."""
        p, ref = self.params, self.reference
        rate = self.effort.fps * self.effort.tamer_speed  # steps per second watched
        every, seen = max(1, round(SIGNAL_INTERVAL * rate)), max(1, round(FORESIGHT * rate))
        back = math.ceil(SIGNAL_DELAY[1] * rate)
        band = p.eps_lazy * ref.span / 2
        out: list[Item] = []
        for traj in reversed(pool):
            end = _watch_end(traj, rate * SIGNAL_DELAY[1])
            for t in range(every, end + 1, every):
                if not self._spend_watching(budget, every, self.effort.tamer_speed):
                    return out
                # a reaction to what was just seen: the last second
                delta = float(traj.true_rewards[max(0, t - seen) : t].mean()) - ref.mid
                if abs(delta) <= band:
                    continue
                positive = delta > 0
                if not math.isinf(p.beta):
                    positive = bool(rng.random() < sigmoid(p.beta * delta * seen))
                if p.eps_mistake and rng.random() < p.eps_mistake:
                    positive = not positive
                lo = max(0, t - back)
                credit = tamer_credit(t - lo, rate)
                if not credit.any() or not budget.affords(0.0):
                    continue
                budget.spend(0.0)
                steps = cut(traj, lo, t - lo, self.task.absorbing_reward)
                out.append((Signal(steps, credit, positive, self.name), 0.0))
        return out

    def estops(self, pool: Sequence[Trajectory], budget: Budget, rng: np.random.Generator) -> list[Item]:
        """Watch recent episodes, newest first; stop where the next ``H`` steps go worse."""
        h, fps = self.h, self.effort.fps
        out: list[Item] = []
        threshold = self._lazy_threshold(h)
        for traj in reversed(pool):
            end = _watch_end(traj, fps)
            last = end if _finished(traj) else min(end, len(traj) - h)
            if last < h:
                continue
            rewards = np.concatenate([traj.true_rewards, np.full(h, self.task.absorbing_reward)])
            sums = np.concatenate([[0.0], np.cumsum(rewards)])
            t_all = np.arange(h, last + 1)
            gaps = (sums[t_all] - sums[t_all - h]) - (sums[t_all + h] - sums[t_all])
            stops = t_all[gaps > threshold]
            if self.params.eps_mistake and rng.random() < self.params.eps_mistake:
                stops = rng.integers(h, last + 1, size=1)
            if not len(stops):
                if not self._spend_watching(budget, last):
                    return out
                continue
            t = int(stops[0])
            cost = self.effort.estop(t)
            if not budget.affords(cost):
                self._spend_watching(budget, t)
                return out
            budget.spend(cost)
            before, after = (
                cut(traj, t - h, h, self.task.absorbing_reward),
                cut(traj, t, h, self.task.absorbing_reward),
            )
            out.append((EStop(before, after, self.name), cost))
            if budget.exhausted:
                break
        return out

    # ----- pieces -----------------------------------------------------------------------
    def _environment(self) -> gym.Env:
        if self._env is None:
            self._env = self.task.make(self.horizon)
        return self._env

    def _noisy(self, policy: Policy, env: gym.Env, rng: np.random.Generator) -> Policy:
        """``policy`` with a random action at each step with probability ``eps_mistake``."""
        eps = self.params.eps_mistake
        if not eps:
            return policy
        space = env.action_space
        space.seed(int(rng.integers(2**31)))
        return lambda obs: space.sample() if rng.random() < eps else policy(obs)

    def _lazy_threshold(self, steps: int) -> float:
        """The smallest gap over ``steps`` steps that makes this teacher act."""
        return max(self.params.eps_lazy, 1e-6) * self.reference.span * steps

    def _spend_watching(self, budget: Budget, steps: int, speed: float | None = None) -> bool:
        """Charge watching time that gave no feedback; ``False`` when the budget cannot cover it."""
        seconds = self.effort.watch(steps, speed)
        if budget.seconds is None:  # a label budget: the time still counts, but does not limit
            budget.spend(seconds, 0)
            return True
        if not budget.affords(seconds, 0):
            budget.spend(max(0.0, budget.seconds - budget.spent), 0)
            return False
        budget.spend(seconds, 0)
        return True

    def _max_episodes(self, budget: Budget) -> int:
        """A bound on episodes watched for corrections when the budget is in labels (a perfect
        agent needs none)."""
        return 5 * (budget.labels or 0) + 5 if budget.labels is not None else 1_000_000


def _finished(traj: Trajectory) -> bool:
    return bool(traj.terminated or traj.absorbing[-1])


def _watch_end(traj: Trajectory, after: float) -> int:
    """Steps a person watches: to the end, or ``after`` steps into the absorbing state (the
    episode is visibly over: one second for an e-stopper, and for a TAMER teacher as long as
    its presses may still be about the last steps)."""
    absorbing = np.flatnonzero(traj.absorbing)
    return len(traj) if not len(absorbing) else min(len(traj), int(absorbing[0]) + round(after))


def tamer_credit(n: int, rate: float) -> np.ndarray:
    """Deep TAMER's credit of the ``n`` steps before a press, oldest first, watched at ``rate``
    steps a second: the probability that the reaction delay falls in each step's time
    interval, under a uniform delay on ``SIGNAL_DELAY``."""
    lo, hi = SIGNAL_DELAY
    ago_end = np.arange(n, 0, -1) / rate  # step i started this long before the press
    ago_start = ago_end - 1 / rate
    overlap = np.clip(np.minimum(ago_end, hi) - np.maximum(ago_start, lo), 0.0, None)
    return (overlap / (hi - lo)).astype(np.float32)
