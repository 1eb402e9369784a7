"""The RLHF loop: rollouts, queries, teacher, reward model, agent; one stage per call.

Example:
    >>> from rlhf_gym import RLHF
    >>> run = RLHF("CartPole-v1", labels=4, total_timesteps=256, segment_length=5, feedback_rounds=1,
    ...            hyperparams={"n_steps": 16, "batch_size": 32, "n_epochs": 1}, eval_freq=10_000,
    ...            final_eval_episodes=2).learn()
    >>> run.summary()["labels_used"]
    4
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
import json
import math
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.vec_env import DummyVecEnv

from rlhf_gym.agents import RLHFCallback, behaviour_clone, make_agent, regret_teacher, relabel_buffer
from rlhf_gym.anchor import Anchor, KLLoss, KLPenalty, PolicyParams, load_parameters, sampled_episodes
from rlhf_gym.config import RECORDED, RunConfig, merge, save_yaml
from rlhf_gym.effort import Budget, EffortModel
from rlhf_gym.elicit import FeedbackCollector
from rlhf_gym.evaluation import EvalResult, evaluate, reward_model_metrics
from rlhf_gym.evidence import expert_steps
from rlhf_gym.resolve import check_algo_options, effort_schedule, label_schedule, resolve_config
from rlhf_gym.results import platform
from rlhf_gym.reward_model import FitReport, RewardModel
from rlhf_gym.rollout import collect
from rlhf_gym.tasks import get_task
from rlhf_gym.teachers import PRESETS, REGRET, Teacher
from rlhf_gym.types import Feedback

if TYPE_CHECKING:
    from rlhf_gym.store import FeedbackStore
from rlhf_gym.wrappers import ConstantReward, LearnedReward, LearnedRewardVec

FEEDBACK_FILE = "feedback.sqlite"


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
        self.rng = np.random.default_rng(self.config.seed)
        hp = dict(self.config.hyperparams)
        self.n_envs = hp.pop("n_envs", 1)
        if isinstance(self.n_envs, bool) or not isinstance(self.n_envs, int) or self.n_envs < 1:
            raise ValueError(f"hyperparams.n_envs must be a positive integer, got {self.n_envs!r}")
        self.agent_kwargs = hp
        probe = self.task.make(self.config.horizon)
        spaces = (probe.observation_space, probe.action_space)
        if self.config.reward_model_checkpoint:
            self.reward_model = RewardModel.load(self.config.reward_model_checkpoint, *spaces)
        else:
            self.reward_model = RewardModel(*spaces, self.config.reward_model, self.config.seed)
        self.asks_feedback = self.config.reward == "learned" and not self.config.reward_model_checkpoint
        self.fits_reward_model = self.config.algo != "cpl"  # CPL learns its policy from the pairs directly
        self._regret_pending = teacher is None and self.config.teacher == REGRET and self.asks_feedback
        check_algo_options(self.config)
        self.initial_parameters: PolicyParams | None = None
        """Policy parameters to start from (set by WARP); else ``config.init_policy``'s."""
        self.reference: Any = None  # frozen initial policy, for kl_from_init
        self.anchor: Anchor | None = None
        self.feedback: list[Feedback] = []
        self.feedback_seconds: list[float] = []  # effort of each record
        self.effort_seconds = 0.0
        self.store: FeedbackStore | None = None
        if self.config.feedback_store and self.asks_feedback:
            self.store = self._open_store(self.config.feedback_store)
            self.feedback = self.store.records()
            self.feedback_seconds = [row["effort_seconds"] for row in self.store.rows()]
        self._own_labels = 0
        fps = float(probe.metadata.get("render_fps") or 30)
        self.effort_model = EffortModel(fps=fps, **self.config.effort)
        self.collector = FeedbackCollector(self.task, self.config, self.teacher, self.effort_model)
        if self._regret_pending and self.config.teacher_critic:  # a bad path fails now, not later
            self._build_regret_teacher()  # (one that trains its own critic waits for learn())
        self.initial_env_steps = 0
        self.metrics: list[dict[str, Any]] = []
        self.last_fit: FitReport | None = None
        self.final: EvalResult | None = None
        self.wall_seconds = 0.0
        probe.close()
        cfg = self.config
        schedule: list[float] = (
            effort_schedule(cfg.budget_seconds, cfg.feedback_rounds, cfg.initial_label_fraction)
            if cfg.budget_seconds is not None
            else list(map(float, label_schedule(cfg.labels, cfg.feedback_rounds, cfg.initial_label_fraction)))
        )
        self._planned = list(itertools.accumulate(schedule))  # budget due by the end of each round
        self._round = 0

    def _build_regret_teacher(self) -> None:
        self.teacher = self.collector.teacher = regret_teacher(self.config, self.task, self.verbose)
        self._regret_pending = False

    # ----- the loop ---------------------------------------------------------------------
    def learn(self, total_timesteps: int | None = None, progress_bar: bool = False) -> RLHF:
        """Collect feedback, fit the reward model and train the agent; evaluate on the true reward."""
        if total_timesteps is not None:  # recorded, so the saved config reproduces this run
            self.config = merge(self.config, {"total_timesteps": total_timesteps})
        cfg = self.config
        total = cfg.total_timesteps
        assert total is not None
        if self._regret_pending:  # the teacher's critic is the simulated person's, not the run's time
            self._build_regret_teacher()
        start = self._start = time.perf_counter()
        reward = self._agent_reward()
        if cfg.kl_coef and cfg.kl_penalty != "loss":
            reward = KLPenalty(reward, cfg.kl_coef)
        self.env = LearnedRewardVec(self._make_vec_env(), reward, cfg.trajectory_window)
        self.env.action_space.seed(cfg.seed)
        self.agent = make_agent(
            cfg.algo or self.task.algo, self.env, self.agent_kwargs, cfg.seed, relabel=cfg.reward == "learned"
        )
        self._prepare_agent()
        round_steps: list[int] = []
        if self.asks_feedback:
            # enough for one segment per environment, even with a tiny initial_rollout_fraction
            steps = max(
                math.ceil(cfg.initial_rollout_fraction * total), self.n_envs * (cfg.segment_length or 1)
            )
            self.initial_env_steps = collect(self.env, self._initial_policy, steps)
            self.feedback_round(self.budget_for_next_round(), strategy="uniform")
            if not self.feedback:
                warnings.warn(
                    f"the first round gave no feedback ({cfg.feedback} on {cfg.task}); the agent learns "
                    "from an unfitted reward model until a later round gives some",
                    stacklevel=2,
                )
            gap = cfg.feedback_until * total / max(cfg.feedback_rounds, 1)
            round_steps = [round(gap * k) for k in range(1, cfg.feedback_rounds + 1)]
        self.agent.learn(
            total, callback=RLHFCallback(self, round_steps, cfg.eval_freq), progress_bar=progress_bar
        )
        self.final = evaluate(self.agent, self.task, cfg.final_eval_episodes, seed=cfg.seed + 10_000)
        self.wall_seconds = time.perf_counter() - start
        self._log(
            {"final": True, "true_return_mean": self.final.mean, "true_return_std": self.final.std}
            | self._sampled(cfg.final_eval_episodes),
            model_metrics=True,
        )
        return self

    def feedback_round(self, budget: Budget, strategy: str | None = None) -> FitReport | None:
        """Spend ``budget`` on feedback about recent behaviour, split equally between the
        feedback types, then refit the reward model on all feedback so far."""
        self._round += 1
        kinds = self.config.feedback_types
        new: list[tuple[Feedback, float]] = []
        parts = budget.split(len(kinds))
        for kind, part in zip(kinds, parts):
            fitted = self.reward_model if self.last_fit is not None else None
            new += self.collector.collect(
                kind, part, self.env.recorder, fitted, self._act, self.rng, strategy
            )
        self.effort_seconds += sum(part.spent for part in parts)  # watching that gave nothing included
        for record, seconds in new:
            if self.store is not None:
                self.store.add(record, effort_seconds=seconds, info={"round": self._round})
            self.feedback.append(record)
            self.feedback_seconds.append(seconds)
        self._own_labels += len(new)
        if self.fits_reward_model and (new or (self.feedback and self.last_fit is None)):
            self.last_fit = self.reward_model.fit(self.feedback)
            relabel_buffer(self.agent, self.reward_model)
            if self.config.bc_steps:
                behaviour_clone(self.agent, *expert_steps(self.feedback), self.config.bc_steps, self.rng)
        self._log({"round": self._round, "new_labels": len(new)}, model_metrics=True)
        return self.last_fit

    def _act(self, obs: np.ndarray) -> Any:
        """The agent's current stochastic action for one observation (uniform before an
        off-policy agent starts learning, as SB3 itself acts)."""
        agent = self.agent
        if isinstance(agent, OffPolicyAlgorithm) and agent.num_timesteps < agent.learning_starts:
            return agent.action_space.sample()
        return agent.predict(obs, deterministic=False)[0]

    def budget_for_next_round(self) -> Budget:
        """What the next round may spend: its share of the schedule plus anything unspent."""
        due = self._planned[self._round] if self._round < len(self._planned) else self._planned[-1]
        if self.config.budget_seconds is not None:
            return Budget(seconds=max(0.0, due - self.effort_seconds))
        return Budget(labels=max(0, round(due) - self._own_labels))

    def _open_store(self, path: str | Path) -> FeedbackStore:
        from rlhf_gym.store import FeedbackStore

        return FeedbackStore(path, meta={"task": self.task.name, "seed": self.config.seed})

    # ----- pieces -----------------------------------------------------------------------
    def _make_vec_env(self) -> DummyVecEnv:
        venv = DummyVecEnv([lambda: self.task.make(self.config.horizon) for _ in range(self.n_envs)])
        venv.seed(self.config.seed)
        return venv

    def _agent_reward(self) -> Any:
        if not self.fits_reward_model:
            return ConstantReward(0.0)  # the policy learns from the pairs; no reward reaches it
        return {"learned": self.reward_model, "constant": ConstantReward(1.0), "true": None}[
            self.config.reward
        ]

    def _prepare_agent(self) -> None:
        """Start from the initial policy, attach the KL anchor, and give the algorithms built
        on PPO (CPL, best-of-N) what they learn from."""
        cfg, agent = self.config, self.agent
        params = self.initial_parameters
        if params is None and cfg.init_policy:
            params = load_parameters(agent, cfg.init_policy)
        if params is not None:
            agent.policy.load_state_dict(params)
        policy = agent.policy
        if isinstance(policy, ActorCriticPolicy) and (params is not None or cfg.kl_coef):
            self.reference = Anchor(policy).policy
        if cfg.kl_coef:
            assert isinstance(policy, ActorCriticPolicy)
            self.anchor = Anchor(policy, cfg.kl_anchor or "initial", cfg.ema_rate or 0.01)
            if isinstance(self.env.reward_fn, KLPenalty):
                self.kl_term: KLPenalty | KLLoss = self.env.reward_fn
                self.env.reward_fn.attach(policy, self.anchor)
            else:
                self.kl_term = KLLoss(policy, self.anchor, cfg.kl_coef)
        if cfg.algo == "cpl":
            agent.feedback = self.feedback  # type: ignore[attr-defined]  # the same list, appended to
        if cfg.algo == "bon":
            agent.reward_fn, agent.task, agent.horizon = self.reward_model, self.task, cfg.horizon  # type: ignore[attr-defined]

    def _initial_policy(self, obs: np.ndarray) -> np.ndarray:
        """The untrained agent's own stochastic policy; uniform actions for off-policy agents,
        as SB3 itself acts before ``learning_starts`` (an untrained DQN is greedy, not random)."""
        if isinstance(self.agent, OffPolicyAlgorithm):
            return np.stack([self.env.action_space.sample() for _ in range(self.n_envs)])
        return self.agent.predict(obs, deterministic=False)[0]

    def make_env(self) -> LearnedReward:
        """A single environment whose reward is the current reward model (for your own loops)."""
        return LearnedReward(self.task.make(self.config.horizon), self.reward_model)

    # ----- metrics and outputs ----------------------------------------------------------
    def log_evaluation(self, n_episodes: int) -> None:
        result = evaluate(self.agent, self.task, n_episodes, seed=self.config.seed + 20_000)
        self._log(
            {"true_return_mean": result.mean, "true_return_std": result.std} | self._sampled(n_episodes)
        )

    def _sampled(self, n_episodes: int) -> dict[str, float]:
        """With a reference policy: the over-optimisation study's figures (``sampled_episodes``)
        on sampled fixed-horizon episodes, and the last KL to the anchor."""
        if self.reference is None:
            return {}
        reward_fn = self.reward_model if self.config.reward == "learned" and self.fits_reward_model else None
        m = sampled_episodes(
            self.agent,
            self.task,
            reward_fn,
            self.reference,
            max(n_episodes, 10),
            seed=self.config.seed + 30_000,
        )
        row = {
            "sampled_true_return": m["true_return"],
            "proxy_return": m["proxy_return"],
            "kl_from_init": m["kl"],
        }
        if self.anchor is not None:
            row["kl_to_anchor"] = self.kl_term.mean_kl()
        return row

    def _log(self, row: dict[str, Any], model_metrics: bool = False) -> None:
        """Append a metrics row; ``model_metrics`` adds the reward-model figures (after fits, at the end)."""
        base: dict[str, Any] = {
            "timesteps": self.agent.num_timesteps,
            "env_steps": self.env.env_steps,
            "labels_used": self._own_labels,
            "effort_seconds": round(self.effort_seconds, 2),
            "wall_seconds": round(time.perf_counter() - self._start, 3),
        }
        if model_metrics and self.last_fit is not None:
            pool = self.env.recorder.pool()
            m = reward_model_metrics(
                self.reward_model,
                pool[-20:],
                self.config.segment_length or 50,
                np.random.default_rng([self.config.seed, len(self.metrics)]),
                absorbing_reward=self.task.absorbing_reward,
            )
            base |= {
                "reward_model_accuracy": self.last_fit.heldout_accuracy,
                "reward_model_train_accuracy": self.last_fit.train_accuracy,
                "reward_model_pair_accuracy": m.pair_accuracy,
                "reward_correlation": m.correlation,
            }
        row = base | row
        self.metrics.append(row)
        if self.verbose:
            print("  ".join(f"{k}={_fmt(v)}" for k, v in row.items()), flush=True)

    def summary(self) -> dict[str, Any]:
        """The run's headline figures (the keys of ``summary.json``)."""
        cfg = self.config
        fit = self.last_fit
        last: dict[str, Any] = next((m for m in reversed(self.metrics) if "reward_correlation" in m), {})
        final: dict[str, Any] = next((m for m in reversed(self.metrics) if m.get("final")), {})
        return {
            "task": cfg.task,
            "horizon": cfg.horizon,
            "feedback": cfg.feedback,
            "teacher": cfg.teacher,
            "reward": cfg.reward,
            "algo": cfg.algo,
            "seed": cfg.seed,
            "labels_budget": cfg.labels if self.asks_feedback and cfg.budget_seconds is None else None,
            "budget_seconds": cfg.budget_seconds if self.asks_feedback else None,
            "labels_used": self._own_labels,
            "labels_by_type": dict(Counter(record.kind for record in self.feedback)),
            "effort_seconds": round(self.effort_seconds, 2),
            "queries_skipped": self.collector.skipped,
            "env_steps": self.env.env_steps,
            "feedback_env_steps": self.collector.env_steps,
            "total_timesteps": int(self.agent.num_timesteps),
            "true_return_mean": self.final.mean if self.final else None,
            "true_return_std": self.final.std if self.final else None,
            "reward_model_accuracy": fit.heldout_accuracy if fit else None,
            "reward_model_pair_accuracy": last.get("reward_model_pair_accuracy"),
            "reward_correlation": last.get("reward_correlation"),
            "sampled_true_return": final.get("sampled_true_return"),
            "proxy_return": final.get("proxy_return"),
            "kl_from_init": final.get("kl_from_init"),
            "wall_seconds": round(self.wall_seconds, 3),
            "platform": platform(),
        }

    def save(self, out: str | Path) -> Path:
        """Write the run folder: config.yaml, metrics.csv, reward_model.*, feedback.sqlite (every
        feedback record, reloadable with ``FeedbackStore``), agent.zip, summary.json."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        save_yaml(self.config, out / "config.yaml")
        keys = list(dict.fromkeys(k for row in self.metrics for k in row))
        with open(out / "metrics.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self.metrics)
        if self.config.reward == "learned":
            self.reward_model.save(out / "reward_model")
        if self.feedback and not (
            self.store and Path(self.store.path).resolve() == (out / FEEDBACK_FILE).resolve()
        ):
            with self._open_store(out / FEEDBACK_FILE) as store:
                if len(store) == 0:
                    for record, seconds in zip(self.feedback, self.feedback_seconds):
                        store.add(record, effort_seconds=seconds)
        self.agent.save(out / "agent.zip")
        summary = {
            k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in self.summary().items()
        }
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        return out


def _fmt(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)
