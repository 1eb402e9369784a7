"""Typed records that cross module boundaries.

Every pipeline stage takes and returns these plain values, so each stage can be tested
alone. Arrays are numpy; nothing here imports torch or SB3.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


class _Steps:
    """Steps with true rewards: their count and their undiscounted true return."""

    true_rewards: np.ndarray

    def __len__(self) -> int:
        return len(self.true_rewards)

    @property
    def true_return(self) -> float:
        return float(self.true_rewards.sum())


@dataclass(frozen=True)
class Trajectory(_Steps):
    """One episode (or the finished part of one) as the agent lived it.

    Args:
        obs: observations ``s_t``, shape ``(T, *obs_shape)``.
        actions: actions ``a_t`` taken in ``s_t``, shape ``(T, *action_shape)``.
        true_rewards: the environment's own reward for each step, shape ``(T,)``.
        absorbing: ``True`` where ``s_t`` was the absorbing state of a fixed-horizon task.
        terminated: the episode ended in a terminal state (not a time limit). A segment that
            runs past the end of a terminated trajectory is padded with the absorbing state.
        final_obs: the observation after the last step (the terminal state if terminated).

    Example:
        >>> import numpy as np
        >>> t = Trajectory(np.zeros((3, 2)), np.zeros(3, dtype=int), np.ones(3), np.zeros(3, bool), True,
        ...                np.ones(2))
        >>> len(t), t.true_return
        (3, 3.0)
    """

    obs: np.ndarray
    actions: np.ndarray
    true_rewards: np.ndarray
    absorbing: np.ndarray
    terminated: bool
    final_obs: np.ndarray


@dataclass(frozen=True)
class Segment(_Steps):
    """A fixed-length window of a trajectory, the unit a teacher judges.

    Steps past a terminal state are absorbing steps: the terminal observation repeated, a
    zero action, and the task's absorbing reward. So the failure is visible to both the
    teacher and the reward model.

    Args:
        obs: shape ``(H, *obs_shape)``.
        actions: shape ``(H, *action_shape)``.
        true_rewards: shape ``(H,)``; only teachers and metrics may read it.
        absorbing: shape ``(H,)``, ``True`` on absorbing steps.
    """

    obs: np.ndarray
    actions: np.ndarray
    true_rewards: np.ndarray
    absorbing: np.ndarray


@dataclass(frozen=True)
class Query:
    """A pair of segments put to a teacher: "which one is better?"."""

    first: Segment
    second: Segment


@dataclass(frozen=True)
class Comparison:
    """A teacher's answer to a query.

    Args:
        query: the two segments.
        label: the target probability that the first segment is preferred: 1.0 (first),
            0.0 (second) or 0.5 (equally good). A stochastic teacher's sampled answer is one
            of these three.
        probability: the teacher's own probability that the first is preferred, before any
            sampling or mistake. ``nan`` when unknown (a person).
        teacher: the name of whoever answered.
    """

    query: Query
    label: float
    probability: float = float("nan")
    teacher: str = ""

    @property
    def is_tie(self) -> bool:
        return self.label == 0.5


class RewardFunction(Protocol):
    """Anything that scores a batch of steps: ``(obs, actions, absorbing) -> rewards``.

    ``obs`` has shape ``(N, *obs_shape)``, ``actions`` ``(N, *action_shape)`` in the
    environment's own units, ``absorbing`` ``(N,)`` booleans; the result has shape ``(N,)``.
    """

    def __call__(self, obs: np.ndarray, actions: np.ndarray, absorbing: np.ndarray) -> np.ndarray: ...
