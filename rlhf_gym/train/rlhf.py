"""``RLHF``: a whole run in one call, driving the RLHF loop on its label schedule.

``RLHF(task, ...).learn()`` collects the initial policy's rollouts, asks the first round of
feedback, then trains the agent while the remaining rounds run at their steps
(``feedback_rounds`` spread over ``feedback_until`` of the budget), and evaluates on the true
reward. Each step is one call of the shared loop (``rlhf_gym.train.loop``).

Example:
    >>> from rlhf_gym import RLHF
    >>> run = RLHF("CartPole-v1", labels=4, total_timesteps=256, segment_length=5, feedback_rounds=1,
    ...            hyperparams={"n_steps": 16, "batch_size": 32, "n_epochs": 1}, eval_freq=10_000,
    ...            final_eval_episodes=2).learn()
    >>> run.summary()["labels_used"]
    4
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import math
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

from rlhf_gym.agents.callbacks import RLHFCallback
from rlhf_gym.agents.evaluation import EvalResult
from rlhf_gym.algos.anchor import PolicyParams
from rlhf_gym.config import RECORDED, RunConfig
from rlhf_gym.feedback.collect import FeedbackCollector
from rlhf_gym.feedback.effort import Budget, EffortModel
from rlhf_gym.feedback.lock import StoreLock
from rlhf_gym.feedback.store import FeedbackStore
from rlhf_gym.feedback.teachers import Teacher
from rlhf_gym.provenance import code_version, platform
from rlhf_gym.reward.model import FitReport, RewardModel
from rlhf_gym.schema import merge, to_dict
from rlhf_gym.tasks.registry import get_task
from rlhf_gym.teacher_params import PRESETS, REGRET
from rlhf_gym.train.folder import RunFolder
from rlhf_gym.train.loop import Loop, SyntheticSource
from rlhf_gym.train.regret import regret_teacher
from rlhf_gym.train.resolve import (
    check_algo_options,
    control_config,
    effort_schedule,
    label_schedule,
    resolve_config,
)
from rlhf_gym.types import Feedback
from rlhf_gym.wrappers import LearnedReward


class RLHF:
    """Train an SB3 agent on a reward learned from feedback, in one call.

    Args:
        task: a task preset or Gymnasium id (see ``rlhf-gym tasks``).
        config: a ``RunConfig`` or a mapping of its fields; keyword overrides win.
        teacher: a teacher preset name (oracle, stoch, mistake, skip, equal, myopic, lazy) or a custom
            ``Teacher``; by default the preset named by ``config.teacher``.
        verbose: 1 prints one line per feedback round and evaluation.
        **overrides: any ``RunConfig`` field, e.g. ``labels=50, seed=1``.
    """

    def __init__(
        self,
        task: str | None = None,
        *,
        config: RunConfig | dict[str, Any] | None = None,
        teacher: str | Teacher | None = None,
        verbose: int = 0,
        **overrides: Any,
    ) -> None:
        if task is not None:
            overrides["task"] = task
        if isinstance(teacher, str):
            overrides["teacher"], teacher = teacher, None
        elif teacher is not None:  # recorded in full, so the saved config reproduces it
            overrides["teacher"] = teacher.name if teacher.name in PRESETS else "oracle"
            overrides["teacher_params"] = dataclasses.asdict(teacher.params)
        self.config = resolve_config(config, **overrides)
        self.task = get_task(self.config.task)
        # a recorded teacher is replayed by the collector, a regret teacher is built below once
        # feedback is sure to be asked; the oracle stands in
        preset = "oracle" if self.config.teacher in (RECORDED, REGRET) else self.config.teacher
        self.teacher = teacher or Teacher.preset(preset, **self.config.teacher_params)
        self.verbose = verbose
        probe = self.task.make(self.config.horizon)
        spaces = (probe.observation_space, probe.action_space)
        if self.config.reward_model_checkpoint:
            self.reward_model = RewardModel.load(self.config.reward_model_checkpoint, *spaces)
        else:
            self.reward_model = RewardModel(*spaces, self.config.reward_model, self.config.seed)
        self.asks_feedback = self.config.reward == "learned" and not self.config.reward_model_checkpoint
        self._regret_pending = teacher is None and self.config.teacher == REGRET and self.asks_feedback
        check_algo_options(self.config)
        self.store: FeedbackStore | None = None
        given: list[tuple[Feedback, float]] = []
        if self.config.feedback_store and self.asks_feedback:
            self.store = self.open_store(self.config.feedback_store)
            given = [(r, row["effort_seconds"]) for r, row in zip(self.store.records(), self.store.rows())]
        fps = float(probe.metadata.get("render_fps") or 30)
        probe.close()
        self.effort_model = EffortModel(fps=fps, **self.config.effort)
        self.collector = FeedbackCollector(self.task, self.config, self.teacher, self.effort_model)
        self.loop = Loop(
            self.config,
            self.task,
            self.reward_model,
            SyntheticSource(self.collector, self.store),
            given,
            verbose,
        )
        if self._regret_pending and self.config.teacher_critic:  # a bad path fails now, not later
            self._build_regret_teacher()  # (one that trains its own critic waits for learn())
        self.final: EvalResult | None = None
        self.folder: RunFolder | None = None
        self.wall_seconds = 0.0
        cfg = self.config
        schedule: list[float] = (
            effort_schedule(cfg.budget_seconds, cfg.feedback_rounds, cfg.initial_label_fraction)
            if cfg.budget_seconds is not None
            else list(map(float, label_schedule(cfg.labels, cfg.feedback_rounds, cfg.initial_label_fraction)))
        )
        self._planned = list(itertools.accumulate(schedule))  # budget due by the end of each round

    def _build_regret_teacher(self) -> None:
        teacher = regret_teacher(self.config, self.task, train_ceiling=_train_ceiling, verbose=self.verbose)
        self.teacher = self.collector.teacher = teacher
        self._regret_pending = False

    # ----- the run ----------------------------------------------------------------------
    def learn(
        self, total_timesteps: int | None = None, progress_bar: bool = False, out: str | Path | None = None
    ) -> RLHF:
        """Collect feedback, fit the reward model and train the agent; evaluate on the true reward.

        Args:
            total_timesteps: the agent's steps (the config's if ``None``).
            progress_bar: show SB3's progress bar.
            out: a run folder to write as the run goes (config first, then metrics and the
                reward model after every round), checked for writing before training starts;
                ``save(out)`` completes it.
        """
        if total_timesteps is not None:  # recorded, so the saved config reproduces this run
            self.config = self.loop.config = merge(self.config, {"total_timesteps": total_timesteps})
        cfg = self.config
        if out is not None:
            self.folder = RunFolder(out)
            self.folder.start(cfg)
        if self._regret_pending:  # the teacher's critic is the simulated person's, not the run's time
            self._build_regret_teacher()
        # the run is its store's one writer while it learns (a labelling session must wait)
        with StoreLock(self.store.path) if self.store is not None else contextlib.nullcontext():
            return self._learn(cfg, progress_bar)

    def _learn(self, cfg: RunConfig, progress_bar: bool) -> RLHF:
        loop = self.loop
        total = cfg.total_timesteps
        assert total is not None
        start = time.perf_counter()
        loop.start()
        round_steps: list[int] = []
        explored = 0
        # enough for one segment per environment, even with a tiny fraction
        least = loop.n_envs * (cfg.segment_length or 1)
        if self.asks_feedback and cfg.unsupervised_fraction:
            explored = loop.explore(max(round(cfg.unsupervised_fraction * total), least))
        elif self.asks_feedback:
            explored = loop.collect(max(math.ceil(cfg.initial_rollout_fraction * total), least))
        if self.asks_feedback:
            self.feedback_round(self.budget_for_next_round(), strategy="uniform")
            if not loop.feedback:
                warnings.warn(
                    f"the first round gave no feedback ({cfg.feedback} on {cfg.task}); the agent learns "
                    "from an unfitted reward model until a later round gives some",
                    stacklevel=3,
                )
            # the later rounds spread evenly from the end of exploration to feedback_until
            end = max(cfg.feedback_until * total, explored)
            gap = (end - explored) / max(cfg.feedback_rounds, 1)
            round_steps = [round(explored + gap * k) for k in range(1, cfg.feedback_rounds + 1)]
        schedule = RLHFCallback(
            round_steps,
            lambda: self.feedback_round(self.budget_for_next_round()),
            cfg.eval_freq,
            lambda: self.log_evaluation(cfg.eval_episodes),
        )
        loop.train(max(total - explored, 0), callback=schedule, progress_bar=progress_bar, reset=not explored)
        self.final = loop.evaluate(cfg.final_eval_episodes, seed=cfg.seed + 10_000)
        self.wall_seconds = time.perf_counter() - start
        loop.log(
            {"final": True, "true_return_mean": self.final.mean, "true_return_std": self.final.std}
            | loop.sampled(cfg.final_eval_episodes),
            model_metrics=True,
        )
        if cfg.tensorboard_log:  # its event file complete, its writer thread ended
            loop.agent.logger.close()
        return self

    def feedback_round(self, budget: Budget, strategy: str | None = None) -> FitReport | None:
        """Spend ``budget`` on feedback about recent behaviour, split equally between the
        feedback types, then refit the reward model on all feedback so far."""
        loop = self.loop
        new = loop.ask(budget, strategy)
        if new or loop.last_fit is None:
            loop.fit()
        loop.log({"round": loop.round, "new_labels": len(new)}, model_metrics=True)
        if self.folder is not None:
            self.folder.update(self.config, loop)
        return loop.last_fit

    def budget_for_next_round(self) -> Budget:
        """What the next round may spend: its share of the schedule plus anything unspent."""
        r = self.loop.round
        due = self._planned[r] if r < len(self._planned) else self._planned[-1]
        if self.config.budget_seconds is not None:
            return Budget(seconds=max(0.0, due - self.loop.effort_seconds))
        return Budget(labels=max(0, round(due) - self.loop.labels))

    def open_store(self, path: str | Path) -> FeedbackStore:
        return FeedbackStore(path, meta={"task": self.task.name, "seed": self.config.seed})

    def log_evaluation(self, n_episodes: int) -> None:
        """Log the agent's return on the true reward (and the KL figures, with a reference)."""
        result = self.loop.evaluate(n_episodes, seed=self.config.seed + 20_000)
        self.loop.log(
            {"true_return_mean": result.mean, "true_return_std": result.std} | self.loop.sampled(n_episodes)
        )
        if self.folder is not None:
            self.folder.update(self.config, self.loop)

    # ----- the loop's state, as the run's -----------------------------------------------
    agent = property(lambda self: self.loop.agent, doc="The SB3 agent (after ``learn`` starts).")
    env = property(lambda self: self.loop.env, doc="The vectorised environment with the learned reward.")
    feedback = property(lambda self: self.loop.feedback, doc="Every feedback record, in order.")
    feedback_seconds = property(lambda self: self.loop.feedback_seconds, doc="The effort of each record.")
    metrics = property(lambda self: self.loop.metrics, doc="The rows of ``metrics.csv``.")
    last_fit = property(lambda self: self.loop.last_fit, doc="The last reward-model fit's report.")
    anchor = property(lambda self: self.loop.anchor, doc="The KL anchor, with ``kl_coef``.")
    reference = property(lambda self: self.loop.reference, doc="The frozen initial policy, if any.")
    effort_seconds = property(lambda self: self.loop.effort_seconds, doc="Effort spent so far.")
    initial_env_steps = property(lambda self: self.loop.initial_env_steps, doc="Initial rollout steps.")

    @property
    def initial_parameters(self) -> PolicyParams | None:
        """Policy parameters to start from (set by WARP); else ``config.init_policy``'s."""
        return self.loop.initial_parameters

    @initial_parameters.setter
    def initial_parameters(self, params: PolicyParams | None) -> None:
        self.loop.initial_parameters = params

    def make_env(self) -> LearnedReward:
        """A single environment whose reward is the current reward model (for your own loops)."""
        return LearnedReward(self.task.make(self.config.horizon), self.reward_model)

    def summary(self) -> dict[str, Any]:
        """The run's headline figures (the keys of ``summary.json``)."""
        cfg = self.config
        fit = self.last_fit
        last: dict[str, Any] = next((m for m in reversed(self.metrics) if "reward_correlation" in m), {})
        final: dict[str, Any] = next((m for m in reversed(self.metrics) if m.get("final")), {})
        return {
            "task": cfg.task,
            "hyperparams_from": cfg.hyperparams_from,
            "horizon": cfg.horizon,
            "feedback": cfg.feedback,
            "teacher": cfg.teacher,
            "reward": cfg.reward,
            "algo": cfg.algo,
            "seed": cfg.seed,
            "labels_budget": cfg.labels if self.asks_feedback and cfg.budget_seconds is None else None,
            "budget_seconds": cfg.budget_seconds if self.asks_feedback else None,
            "labels_used": self.loop.labels,
            "labels_by_type": dict(Counter(record.kind for record in self.feedback)),
            "effort_seconds": round(self.effort_seconds, 2),
            "queries_skipped": self.collector.skipped,
            "env_steps": self.env.env_steps,
            "feedback_env_steps": self.collector.env_steps,
            "total_timesteps": int(self.agent.num_timesteps),
            "nominal_timesteps": cfg.total_timesteps,
            "true_return_mean": self.final.mean if self.final else None,
            "true_return_std": self.final.std if self.final else None,
            "reward_model_accuracy": fit.heldout_accuracy if fit else None,
            "absorbing_identified": fit.absorbing_identified if fit else None,
            **(
                {"labels_trusted": fit.trusted, "labels_flipped": fit.flipped}
                if fit and cfg.reward_model.rime
                else {}
            ),
            "reward_model_pair_accuracy": last.get("reward_model_pair_accuracy"),
            "reward_correlation": last.get("reward_correlation"),
            "sampled_true_return": final.get("sampled_true_return"),
            "proxy_return": final.get("proxy_return"),
            "kl_from_init": final.get("kl_from_init"),
            "wall_seconds": round(self.wall_seconds, 3),
            "platform": platform(),
            "code_version": code_version(),
        }

    def save(self, out: str | Path) -> Path:
        """Write the run folder: config.yaml, metrics.csv, reward_model.*, feedback.sqlite (every
        feedback record, reloadable with ``FeedbackStore``), agent.zip, summary.json."""
        folder = self.folder if self.folder is not None and self.folder.out == Path(out) else RunFolder(out)
        return folder.finish(self.config, self.loop, self.summary(), self.store)


def _train_ceiling(config: RunConfig) -> Any:
    """The agent of the run's own ceiling (the true reward), for a regret teacher's critic."""
    return RLHF(config=control_config(to_dict(config), "true")).learn().agent
