"""Collecting trajectories: a recorder fed step by step, and a loop for the initial policy.

The agent's own training rollouts are recorded as they happen (by ``LearnedRewardVec``), so
queries after the first round cost no extra environment steps.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from rlhf_gym.types import Trajectory

if TYPE_CHECKING:  # (the labelling window imports this module, and never torch)
    from stable_baselines3.common.vec_env import VecEnv


MAX_BYTES = 512 << 20
"""Observations a recorder keeps at most, in bytes: a hundred Atari episodes would hold gigabytes."""

Step = tuple[np.ndarray, np.ndarray, float, bool, bool]
"""One recorded step: observation, action, true reward, absorbing, and ``info["is_success"]``."""


class TrajectoryRecorder:
    """Turns a stream of vectorised steps into finished ``Trajectory`` records.

    Args:
        n_envs: parallel environments in the stream.
        max_trajectories: most recent finished trajectories kept.
        max_bytes: and at most this many bytes of their observations (image tasks), but the last.

    Example:
        >>> import numpy as np
        >>> rec = TrajectoryRecorder(n_envs=1)
        >>> for t in range(3):
        ...     rec.add(np.zeros((1, 2)), np.zeros(1, int), np.ones(1), np.zeros(1, bool), np.array([t == 2]),
        ...             [{"terminal_observation": np.ones(2)}] if t == 2 else [{}])
        >>> [len(t) for t in rec.trajectories], rec.trajectories[0].terminated, rec.recent_returns()
        ([3], True, [3.0])
    """

    def __init__(self, n_envs: int, max_trajectories: int = 100, max_bytes: int = MAX_BYTES) -> None:
        self.n_envs = n_envs
        self.max_bytes = max_bytes
        self.trajectories: deque[Trajectory] = deque(maxlen=max_trajectories)
        self._open: list[list[Step]] = [[] for _ in range(n_envs)]
        self.episode_returns: deque[float] = deque(maxlen=100)

    def add(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        true_rewards: np.ndarray,
        absorbing: np.ndarray,
        dones: np.ndarray,
        infos: list[dict],
    ) -> None:
        """Record one vectorised step: ``obs`` are the states the actions were taken in."""
        for i in range(self.n_envs):
            success = bool(infos[i].get("is_success", False))
            self._open[i].append((obs[i], actions[i], float(true_rewards[i]), bool(absorbing[i]), success))
            if dones[i]:
                terminated = not infos[i].get("TimeLimit.truncated", False)
                final = infos[i].get("terminal_observation", obs[i])
                self._close(i, terminated, np.asarray(final))
                self.episode_returns.append(self.trajectories[-1].true_return)

    def flush(self) -> None:
        """Close every open episode as cut short (before the environment is reset)."""
        for i in range(self.n_envs):
            if self._open[i]:
                self._close(i, False, self._open[i][-1][0])

    def _close(self, i: int, terminated: bool, final_obs: np.ndarray) -> None:
        steps, self._open[i] = self._open[i], []
        self.trajectories.append(to_trajectory(steps, terminated, final_obs))
        while len(self.trajectories) > 1 and sum(t.obs.nbytes for t in self.trajectories) > self.max_bytes:
            self.trajectories.popleft()

    def pool(self) -> list[Trajectory]:
        """Finished trajectories plus the unfinished part of every open episode, oldest first."""
        open_parts = [to_trajectory(steps, False, steps[-1][0]) for steps in self._open if steps]
        return [*self.trajectories, *open_parts]

    def recent_returns(self, n: int = 10) -> list[float]:
        """True returns of the last ``n`` episodes that ended by termination or time limit
        (episodes cut short by a reset are left out)."""
        return list(self.episode_returns)[-n:]


def to_trajectory(steps: Sequence[tuple], terminated: bool, final_obs: np.ndarray) -> Trajectory:
    """A ``Trajectory`` from ``(obs, action, true_reward, absorbing[, success])`` steps."""
    obs, actions, rewards, absorbing, *success = zip(*steps)
    goal = success[0].index(True) + 1 if success and True in success[0] else None
    return Trajectory(
        np.stack(obs),
        np.stack(actions),
        np.array(rewards),
        np.array(absorbing, dtype=bool),
        terminated,
        final_obs,
        goal,
    )


def collect(env: VecEnv, policy: Callable[[np.ndarray], np.ndarray], n_steps: int) -> int:
    """Step ``env`` with ``policy`` for at least ``n_steps`` environment steps; returns the steps taken.

    The environment records what it sees (see ``LearnedRewardVec``); this loop only drives it.
    """
    obs = np.asarray(env.reset())
    taken = 0
    while taken < n_steps:
        obs = np.asarray(env.step(policy(obs))[0])
        taken += env.num_envs
    return taken
