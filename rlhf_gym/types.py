"""Typed records that cross module boundaries.

Every pipeline stage takes and returns these plain values, so each stage can be tested
alone. Arrays are numpy; nothing here imports torch or SB3.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

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
        goal: the index of the first state after a step whose ``info["is_success"]`` was true (the
            goal reached, on a task that reports it: Gymnasium's convention), or ``None``.

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
    goal: int | None = None


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


Pair = tuple[Segment, Segment, float]
"""``(first, second, label)``: evidence that ``first`` is preferred with probability ``label``."""


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
    kind: ClassVar[str] = "comparison"

    @property
    def is_tie(self) -> bool:
        return self.label == 0.5

    def pairs(self) -> list[Pair]:
        return [(self.query.first, self.query.second, self.label)]


@dataclass(frozen=True)
class Correction:
    """The corrector took over from a restored state: ``corrected`` is preferred over
    ``original``, the agent's own continuation from the same state (RLHF-Blender's route 1;
    Jain et al.'s improvement in the reward-rational choice view).

    Args:
        original: the agent's continuation for the correction window.
        corrected: the corrector's segment of the same length from the same state.
        teacher: who corrected.
    """

    original: Segment
    corrected: Segment
    teacher: str = ""
    kind: ClassVar[str] = "correction"

    def pairs(self) -> list[Pair]:
        return [(self.corrected, self.original, 1.0)]


@dataclass(frozen=True)
class Demonstration:
    """An expert episode; each of its segments is preferred over an agent segment recorded
    beside it when it was given (T-REX, Brown et al. 2019; Ibarz et al. 2018).

    Args:
        episode: the demonstrated episode.
        demo: the episode cut into segments (absorbing-padded at the end).
        against: one agent segment per demo segment, of the same length.
        teacher: who demonstrated.
    """

    episode: Trajectory
    demo: tuple[Segment, ...]
    against: tuple[Segment, ...]
    teacher: str = ""
    kind: ClassVar[str] = "demonstration"

    def pairs(self) -> list[Pair]:
        return [(d, a, 1.0) for d, a in zip(self.demo, self.against)]


@dataclass(frozen=True)
class Rating:
    """An ordinal score of one segment: ``level`` out of ``levels`` (0 is worst), as in
    RLHF-Blender's rating feedback.

    Args:
        segment: the rated segment.
        level: the rating, ``0 <= level < levels``.
        levels: how many levels the scale has.
        teacher: who rated.
    """

    segment: Segment
    level: int
    levels: int
    teacher: str = ""
    kind: ClassVar[str] = "rating"

    def pairs(self) -> list[Pair]:
        return []


@dataclass(frozen=True)
class Signal:
    """A live +/- key press (TAMER; Knox and Stone 2009), credited to the steps before it.

    Args:
        steps: the steps the press may refer to, oldest first.
        credit: weight of each step, Deep TAMER's probability that the press was about that
            step given the human's reaction delay (Warnell et al. 2018); shape ``(len(steps),)``.
        positive: ``True`` for +, ``False`` for -.
        teacher: who pressed.
    """

    steps: Segment
    credit: np.ndarray
    positive: bool
    teacher: str = ""
    kind: ClassVar[str] = "signal"

    def pairs(self) -> list[Pair]:
        return []


@dataclass(frozen=True)
class EStop:
    """The teacher stopped the agent: what it did before the stop is preferred over what it
    did, or would have done, next (the e-stop of the reward-rational choice view).

    Args:
        before: the steps before the stop.
        after: the agent's continuation from the stop, of the same length.
        teacher: who stopped.
    """

    before: Segment
    after: Segment
    teacher: str = ""
    kind: ClassVar[str] = "estop"

    def pairs(self) -> list[Pair]:
        return [(self.before, self.after, 1.0)]


Feedback = Comparison | Correction | Demonstration | Rating | Signal | EStop
"""Any feedback record. Pair-like records give ``pairs()`` for the Bradley-Terry likelihood;
``Rating`` and ``Signal`` are evaluative and use the ordinal likelihood."""

FEEDBACK_RECORDS: dict[str, type] = {
    cls.kind: cls for cls in (Comparison, Correction, Demonstration, Rating, Signal, EStop)
}


class PreferenceModel(Protocol):
    """Anything that gives, for each of its members, the probability that each query's first
    segment is preferred: ``(queries) -> (members, queries)`` (``RewardModel`` is one)."""

    def preference_probabilities(self, queries: Sequence[Query]) -> np.ndarray: ...


class RewardFunction(Protocol):
    """Anything that scores a batch of steps: ``(obs, actions, absorbing) -> rewards``.

    ``obs`` has shape ``(N, *obs_shape)``, ``actions`` ``(N, *action_shape)`` in the
    environment's own units, ``absorbing`` ``(N,)`` booleans; the result has shape ``(N,)``.
    """

    def __call__(self, obs: np.ndarray, actions: np.ndarray, absorbing: np.ndarray) -> np.ndarray: ...
