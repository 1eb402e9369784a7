"""Synthetic teachers: B-Pref's family of simulated humans (Lee et al., 2021).

A teacher answers a query with the probability that the first segment is preferred, or a
tie, or no answer (a skip), so a person and a teacher are interchangeable. Each teacher
is a point in B-Pref's parameter space; the six named presets are B-Pref's own
(``rll-research/BPref``, ``reward_model.py::get_label``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from rlhf_gym.teacher_params import PRESETS, REGRET, TeacherParams
from rlhf_gym.types import Comparison, Query, Segment


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


class Teacher:
    """A simulated human who prefers segments by their true return.

    Args:
        params: the B-Pref parameters (or use ``Teacher.preset``).
        name: recorded with every answer.

    Example:
        >>> import numpy as np
        >>> seg = lambda r: Segment(np.zeros((2, 1)), np.zeros(2), np.array(r, float), np.zeros(2, bool))
        >>> q = Query(seg([1, 1]), seg([0, 1]))
        >>> Teacher.preset("oracle").probability(q)
        1.0
        >>> round(Teacher.preset("stoch").probability(q), 4)  # sigmoid(1 * (2 - 1))
        0.7311
    """

    def __init__(self, params: TeacherParams, name: str = "custom") -> None:
        self.params = params
        self.name = name
        self.margin: float | None = None

    @classmethod
    def preset(cls, name: str, **overrides: float) -> Teacher:
        """One of ``PRESETS`` (oracle, stoch, mistake, skip, equal, myopic, lazy), optionally adjusted."""
        if name not in PRESETS:
            raise ValueError(f"unknown teacher {name!r}; expected one of {', '.join(PRESETS)}")
        return cls(replace(PRESETS[name], **overrides), name)

    def update_thresholds(
        self, recent_returns: Sequence[float], segment_length: int, max_episode_steps: int
    ) -> None:
        """B-Pref's adaptive margin from the true returns of recent training episodes."""
        if len(recent_returns):
            self.margin = float(np.mean(recent_returns)) * segment_length / max_episode_steps

    @property
    def skip_threshold(self) -> float:
        """Queries whose returns are both at or below this are skipped (``-inf`` before a margin)."""
        if self.margin is None:
            return -math.inf
        return self.margin - (1.0 - self.params.eps_skip) * abs(self.margin)

    @property
    def equal_threshold(self) -> float:
        """Returns closer than this are labelled equal."""
        return 0.0 if self.margin is None else self.params.eps_equal * abs(self.margin)

    def weighted_return(self, segment: Segment) -> float:
        """The myopic return: step t of H weighs gamma ** (H - 1 - t)."""
        h = len(segment)
        weights = self.params.gamma ** np.arange(h - 1, -1, -1)
        return float(np.dot(weights, segment.true_rewards))

    def score(self, segment: Segment) -> float:
        """What the teacher prefers segments by: here the (myopic) return."""
        return self.weighted_return(segment)

    def probability(self, query: Query) -> float:
        """P(first preferred) under the rational part of the model, before skips, ties and mistakes."""
        diff = self.score(query.first) - self.score(query.second)
        if math.isinf(self.params.beta):
            return 1.0 if diff > 0 else 0.0 if diff < 0 else 0.5
        return sigmoid(self.params.beta * diff)

    def answer(self, query: Query, rng: np.random.Generator) -> Comparison | None:
        """Answer one query, in B-Pref's order: skip, equal mask, myopic label, mistake, equal."""
        r1, r2 = query.first.true_return, query.second.true_return
        if self.params.eps_skip > 0 and max(r1, r2) <= self.skip_threshold:
            return None
        equal = abs(r1 - r2) < self.equal_threshold
        p = self.probability(query)
        label = p if math.isinf(self.params.beta) else float(rng.random() < p)
        if self.params.eps_mistake > 0 and label != 0.5 and rng.random() < self.params.eps_mistake:
            label = 1.0 - label
        if equal:
            label = 0.5
        return Comparison(query, label, p, self.name)

    def label(self, queries: Sequence[Query], rng: np.random.Generator) -> list[Comparison]:
        """Answer every query; skipped ones are left out."""
        answers = (self.answer(q, rng) for q in queries)
        return [a for a in answers if a is not None]


class RegretTeacher(Teacher):
    """A simulated human who prefers segments by their regret, not their return.

    Knox et al. (2022) model preferences by regret: how much worse the segment's actions did than
    an optimal policy would have from the same start, ``V*(s_0) - (r_0 + ... + V*(s_H))``. The
    partial-return teacher credits a segment for a good start state; this one only for good
    actions. CPL (Hejna et al., 2024) derives its loss from this model, and CPL's oracle labels
    with a trained critic's discounted advantages, ``sum_t gamma^t (r_t + gamma V(s_t+1) - V(s_t))``,
    which telescopes to the score here:

        score = sum_{t < H-1} gamma^t r_t + gamma^(H-1) V(s_{H-1}) - V(s_0)

    A segment holds no observation after its last step, so its last step counts through
    ``V(s_{H-1})`` rather than ``r_{H-1} + gamma V(s_H)``. An absorbing step's value is
    ``absorbing_value`` (the critic never learned it well: it sees a terminal state only there).

    Args:
        params: B-Pref noise on top (``beta``, ``eps_mistake``, ...); ``gamma`` must stay 1.
        value: a critic ``V(obs batch) -> values``, trained on the true reward
            (``rlhf_gym.agents.critics.state_value``).
        discount: the critic's discount.
        absorbing_value: the value of the absorbing state.

    Example:
        >>> import numpy as np
        >>> seg = lambda o: Segment(np.array(o, float)[:, None], np.zeros(2), np.ones(2), np.zeros(2, bool))
        >>> t = RegretTeacher(TeacherParams(), value=lambda obs: obs[:, 0], discount=1.0)
        >>> t.score(seg([5, 5])), t.score(seg([0, 4]))  # the same return; the second improved its state
        (1.0, 5.0)
        >>> t.probability(Query(seg([5, 5]), seg([0, 4])))
        0.0
    """

    def __init__(
        self,
        params: TeacherParams,
        value: Callable[[np.ndarray], np.ndarray],
        discount: float,
        absorbing_value: float = 0.0,
        name: str = REGRET,
    ) -> None:
        if params.gamma != 1.0:
            raise ValueError(
                f"a regret teacher discounts with its critic's discount; teacher gamma must be 1, "
                f"got {params.gamma}"
            )
        if not 0.0 < discount <= 1.0:
            raise ValueError(f"discount must be in (0, 1], got {discount}")
        super().__init__(params, name)
        self.value = value
        self.discount = discount
        self.absorbing_value = absorbing_value

    def score(self, segment: Segment) -> float:
        h = len(segment)
        ends = np.asarray(self.value(segment.obs[[0, h - 1]]), dtype=float).reshape(2)
        ends = np.where(segment.absorbing[[0, h - 1]], self.absorbing_value, ends)
        discounts = self.discount ** np.arange(h - 1)
        partial = float(np.dot(discounts, segment.true_rewards[: h - 1]))
        return float(partial + self.discount ** (h - 1) * ends[1] - ends[0])
