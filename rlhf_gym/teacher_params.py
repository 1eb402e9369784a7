"""B-Pref's teacher parameters and the named teacher presets: plain numbers that configs name."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class TeacherParams:
    """B-Pref's teacher parameters.

    Args:
        beta: rationality. ``inf`` answers by the larger return (argmax); a finite beta
            samples from P = exp(beta R1) / (exp(beta R1) + exp(beta R2)) on raw returns.
        gamma: myopia. Step ``t`` of an ``H``-step segment weighs ``gamma ** (H - 1 - t)``,
            so the last step weighs 1.
        eps_mistake: probability that an answer is flipped.
        eps_skip: scale of the skip threshold: a query is skipped when both segments' returns
            are at or below ``eps_skip * margin``.
        eps_equal: scale of the equal threshold: returns closer than ``eps_equal * margin``
            are labelled equal (0.5).
        eps_lazy: laziness of the teachers of the other feedback types: they correct, stop or
            press a key only when the gap they see exceeds ``eps_lazy`` times the gap between
            the expert and a random policy (``rlhf_gym.feedback.synthetic``).

    For the other feedback types, ``beta`` and ``eps_mistake`` keep their meaning where it
    has one: a corrector or demonstrator takes a random action with probability
    ``eps_mistake`` at each step; a rater gives a random level, a TAMER teacher the wrong key
    and an e-stopper stops at a random time with that probability; a finite ``beta`` makes
    ratings and key presses noisy (``rlhf_gym.feedback.synthetic``).

    ``margin`` is B-Pref's adaptive scale ``m``: the mean true return of the last 10 finished
    training episodes times ``segment_length / max_episode_steps``, refreshed before every
    round. B-Pref multiplies by eps twice after its first round (``new_margin * eps`` passed
    to a setter that multiplies by eps again); we multiply once, every round, deliberately.

    B-Pref's thresholds assume positive returns. So that the skip and equal teachers also
    mean something on tasks with negative rewards (Pendulum, MountainCar, Acrobot), the
    equal threshold is ``eps_equal * |m|`` and the skip threshold ``m - (1 - eps_skip) |m|``,
    which is B-Pref's ``eps_skip * m`` whenever ``m > 0``. Nothing is skipped before a margin
    has been measured.
    """

    beta: float = math.inf
    gamma: float = 1.0
    eps_mistake: float = 0.0
    eps_skip: float = 0.0
    eps_equal: float = 0.0
    eps_lazy: float = 0.0

    def __post_init__(self) -> None:
        if not self.beta > 0:
            raise ValueError(f"teacher beta must be positive (inf for a rational teacher), got {self.beta}")
        if not 0.0 < self.gamma <= 1.0:
            raise ValueError(f"teacher gamma must be in (0, 1], got {self.gamma}")
        for name in ("eps_mistake", "eps_skip", "eps_equal", "eps_lazy"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"teacher {name} must be in [0, 1], got {getattr(self, name)}")


# B-Pref Table/README presets (teacher_beta -1 there means argmax, here inf).
PRESETS: dict[str, TeacherParams] = {
    "oracle": TeacherParams(),
    "stoch": TeacherParams(beta=1.0),
    "mistake": TeacherParams(eps_mistake=0.1),
    "skip": TeacherParams(eps_skip=0.1),
    "equal": TeacherParams(eps_equal=0.1),
    "myopic": TeacherParams(gamma=0.9),
    "lazy": TeacherParams(eps_lazy=0.2),  # ours: acts only on large gaps (other feedback types)
}


REGRET = "regret"
"""The teacher that prefers segments by their regret (``RegretTeacher``)."""
