"""Asking for feedback: one call per feedback type, each within a budget of labels or effort.

Comparisons come from B-Pref's teacher on queries ranked by the reward model; every other
type from the synthetic teachers of ``rlhf_gym.synthetic``, which act through the task's
expert. A person at the keyboard will answer through the same records.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from rlhf_gym.config import RunConfig
from rlhf_gym.effort import Budget, EffortModel
from rlhf_gym.experts import get_expert
from rlhf_gym.queries import pair_up, rank_queries
from rlhf_gym.reward_model import RewardModel
from rlhf_gym.rollout import TrajectoryRecorder
from rlhf_gym.segments import sample_segments
from rlhf_gym.synthetic import Item, SyntheticTeacher
from rlhf_gym.tasks import Task
from rlhf_gym.teachers import Teacher
from rlhf_gym.types import Trajectory


class FeedbackCollector:
    """The teachers of every feedback type behind one ``collect`` call.

    Args:
        task: the task.
        config: the resolved run config (segment length, query strategy, horizon, ...).
        teacher: B-Pref's teacher, for comparisons; its parameters and name are shared by the
            synthetic teachers of the other types.
        effort: what each item costs.
    """

    def __init__(self, task: Task, config: RunConfig, teacher: Teacher, effort: EffortModel) -> None:
        self.task = task
        self.config = config
        self.teacher = teacher
        self.effort = effort
        self.skipped = 0
        self._synthetic: SyntheticTeacher | None = None

    @property
    def env_steps(self) -> int:
        """Environment steps the synthetic correctors and demonstrators took."""
        return self._synthetic.env_steps if self._synthetic else 0

    def collect(
        self,
        kind: str,
        budget: Budget,
        recorder: TrajectoryRecorder,
        reward_model: RewardModel | None,
        policy: Callable[[np.ndarray], Any],
        rng: np.random.Generator,
        strategy: str | None = None,
    ) -> list[Item]:
        """Feedback of one type about recent behaviour (``recorder``'s pool), within ``budget``.

        Args:
            kind: a feedback type (``rlhf_gym.config.FEEDBACK_TYPES``).
            reward_model: the fitted model that ranks comparison queries; ``None`` before the
                first fit.
            policy: the agent acting on one observation, watched by correctors.
            strategy: the comparison query strategy; the config's when ``None``.
        """
        pool = recorder.pool()
        if kind == "comparisons":
            return self._compare(pool, recorder.recent_returns(10), budget, reward_model, rng, strategy)
        teacher = self._synthetic_teacher()
        if kind == "corrections":
            return teacher.corrections(policy, budget, rng)
        if kind == "demonstrations":
            return teacher.demonstrations(pool, budget, rng)
        if kind == "ratings":
            return teacher.ratings(pool, budget, rng)
        if kind == "tamer":
            return teacher.signals(pool, budget, rng)
        if kind == "estops":
            return teacher.estops(pool, budget, rng)
        raise ValueError(f"unknown feedback type {kind!r}")

    def _compare(
        self,
        pool: list[Trajectory],
        recent_returns: list[float],
        budget: Budget,
        reward_model: RewardModel | None,
        rng: np.random.Generator,
        strategy: str | None,
    ) -> list[Item]:
        """Sample candidate pairs, rank them, ask the B-Pref teacher about the best ones."""
        cfg, h = self.config, self.config.segment_length
        assert h is not None
        cost = self.effort.comparison(h)
        n = budget.labels if budget.labels is not None else int((budget.seconds or 0.0) // cost)
        if n <= 0:
            return []
        self.teacher.update_thresholds(recent_returns, h, self.task.max_episode_steps)
        segments = sample_segments(pool, h, 2 * n * cfg.candidate_factor, rng, self.task.absorbing_reward)
        ranked = rank_queries(pair_up(segments), strategy or cfg.query_strategy, reward_model, rng)
        out: list[Item] = []
        for query in ranked:
            if not budget.affords(cost):
                break
            answer = self.teacher.answer(query, rng)
            budget.spend(cost, items=int(answer is not None))  # a skip costs the time, not a label
            if answer is None:
                self.skipped += 1
            else:
                out.append((answer, cost))
        return out

    def _synthetic_teacher(self) -> SyntheticTeacher:
        if self._synthetic is None:
            cfg = self.config
            assert cfg.segment_length is not None
            self._synthetic = SyntheticTeacher(
                self.task,
                cfg.horizon,
                self.teacher.params,
                self.effort,
                cfg.segment_length,
                get_expert(self.task),
                correction_length=cfg.correction_length,
                levels=cfg.rating_levels,
                name=self.teacher.name,
                seed=cfg.seed,
            )
        return self._synthetic
