"""Asking for feedback: one call per feedback type, each within a budget of labels or effort.

Comparisons come from B-Pref's teacher on queries ranked by the reward model; every other
type from the synthetic teachers of ``rlhf_gym.feedback.synthetic``, which act through the task's
expert. A person at the keyboard answers through the same records, and a recorded person
(``teacher: recorded``) is replayed from a feedback store or export, in recorded order.
"""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from rlhf_gym.config import RECORDED, RunConfig
from rlhf_gym.data.queries import pair_up, rank_queries
from rlhf_gym.data.rollout import TrajectoryRecorder
from rlhf_gym.data.segments import sample_goal_segments, sample_segments
from rlhf_gym.feedback.effort import Budget, EffortModel
from rlhf_gym.feedback.formats import read_feedback
from rlhf_gym.feedback.synthetic import Item, SyntheticTeacher
from rlhf_gym.feedback.teachers import Teacher
from rlhf_gym.feedback.validate import check_record, step_sequences
from rlhf_gym.reward.model import RewardModel
from rlhf_gym.tasks.registry import Task, get_expert
from rlhf_gym.types import FEEDBACK_RECORDS, Query, Trajectory

RECORD_KINDS = {
    "comparisons": "comparison",
    "corrections": "correction",
    "demonstrations": "demonstration",
    "ratings": "rating",
    "tamer": "signal",
    "estops": "estop",
}
"""The record kind (``FEEDBACK_RECORDS``) each feedback type gives."""


class FeedbackCollector:
    """The teachers of every feedback type behind one ``collect`` call.

    With ``config.teacher == "recorded"``, every type is answered from
    ``config.recorded_feedback`` instead: the next unused records of the type's record kind, in
    recorded order (the recording is read once, at the first ``collect``). ``skipped`` counts
    the queries a teacher skipped, or the labels a recording ran out of.

    Args:
        task: the task.
        config: the resolved run config (segment length, query strategy, horizon, ...).
        teacher: B-Pref's teacher, for comparisons; its parameters and name are shared by the
            synthetic teachers of the other types. Unused for a recorded teacher.
        effort: what each item costs.
    """

    def __init__(self, task: Task, config: RunConfig, teacher: Teacher, effort: EffortModel) -> None:
        self.task = task
        self.config = config
        self.teacher = teacher
        self.effort = effort
        self.skipped = 0
        self._synthetic: SyntheticTeacher | None = None
        self._recording: dict[str, deque[Item]] | None = None

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
        if self.config.teacher == RECORDED:
            return self._replay(kind, budget)
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
        n_goal = round(cfg.goal_queries * n)
        goal = sample_goal_segments(pool, h, n_goal * cfg.candidate_factor, rng, self.task.absorbing_reward)
        if goal:  # asked first: each pits a segment that reaches the end against any other
            others = sample_segments(pool, h, len(goal), rng, self.task.absorbing_reward)
            pairs = [Query(g, o) for g, o in zip(goal, others)]
            ranked = rank_queries(pairs, strategy or cfg.query_strategy, reward_model, rng)[:n_goal] + ranked
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

    def _replay(self, kind: str, budget: Budget) -> list[Item]:
        """The next unused recorded records of ``kind`` while ``budget`` affords them: one label,
        or the record's stored effort seconds, each. A label budget the recording cannot fill
        adds what is missing to ``skipped``; the run goes on with what there is."""
        if kind not in RECORD_KINDS:
            raise ValueError(f"unknown feedback type {kind!r}")
        queue = self._load_recording()[RECORD_KINDS[kind]]
        out: list[Item] = []
        while queue and budget.affords(queue[0][1]):
            record, seconds = queue.popleft()
            budget.spend(seconds)
            out.append((record, seconds))
        if not queue and not budget.exhausted:
            if budget.labels is not None:
                self.skipped += budget.labels - budget.items
            warnings.warn(
                f"recorded feedback {self.config.recorded_feedback} has no {RECORD_KINDS[kind]} records "
                f"left for {kind}; the run goes on with the feedback it has",
                stacklevel=3,
            )
        return out

    def _load_recording(self) -> dict[str, deque[Item]]:
        """The recording's records of each kind, with their effort seconds, read and checked once."""
        if self._recording is None:
            path = self.config.recorded_feedback
            assert path is not None  # RunConfig checks it
            meta, entries = read_feedback(path)
            if meta.get("task", self.task.name) != self.task.name:
                raise ValueError(
                    f"recorded feedback {path} is for task {meta['task']!r}, not {self.task.name!r}; "
                    "expected a recording of the same task"
                )
            env = self.task.make(self.config.horizon)
            try:
                obs_space, act_space = env.observation_space, env.action_space
            finally:
                env.close()
            shape = obs_space.shape
            queues: dict[str, deque[Item]] = {kind: deque() for kind in FEEDBACK_RECORDS}
            for row, record in entries:
                for where, steps in step_sequences(record, row["kind"]):
                    obs, where = steps.obs, f"{where}.obs"
                    if shape is not None and obs.shape[1:] != shape:
                        raise ValueError(
                            f"recorded feedback {path}: record {row['id']} holds observations of shape "
                            f"{obs.shape[1:]} ({where}), but task {self.task.name} observes shape {shape}; "
                            "expected a recording of this task"
                        )
                # the rules an import applies: a label of 7, an action the task cannot take or a
                # NaN reward would otherwise train silently
                check_record(record, obs_space, act_space, f"recorded feedback {path}, record {row['id']}")
                queues[row["kind"]].append((record, _effort(row["effort_seconds"], path, row["id"])))
            self._recording = queues
        return self._recording

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


def _effort(value: Any, path: str, record: Any) -> float:
    """A record's stored effort seconds, checked: a finite, non-negative number."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = float("nan")
    if not (np.isfinite(seconds) and seconds >= 0):
        raise ValueError(
            f"recorded feedback {path}, record {record}: effort_seconds is {value!r}; "
            "expected a finite number of seconds >= 0"
        )
    return seconds
