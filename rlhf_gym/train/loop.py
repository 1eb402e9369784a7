"""The one RLHF loop: collect, ask (query and answer), fit, train, evaluate; each step one call.

Every way of training drives this loop: ``RLHF.learn`` on its label schedule (the API, the CLI,
sweeps and WARP's inner runs), and the labelling app's learner as a person's labels arrive.
They differ only in the loop's ``source`` of feedback: ``SyntheticSource`` asks a simulated
teacher about the loop's own recent behaviour, and the app's source (``rlhf_gym.human.learning``)
reads what a person committed to the feedback store. Every option of a run (the KL anchor,
behaviour cloning, CPL, best-of-N) lives here, so it acts the same in every driver.

    loop = Loop(config, task, reward_model, source)
    loop.start()                     # the environment and the agent
    loop.collect(steps)              # rollouts of the initial policy (or loop.explore(steps))
    loop.ask(budget)                 # queries from those rollouts, answered by the source
    loop.fit()                       # the reward model on all feedback; relabel; clone
    loop.train(steps)                # the agent on the learned reward
    loop.evaluate(episodes, seed)    # on the true reward
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from rlhf_gym.agents import normalize
from rlhf_gym.agents.buffers import relabel_buffer
from rlhf_gym.agents.callbacks import progress_of_run
from rlhf_gym.agents.cloning import behaviour_clone
from rlhf_gym.agents.critics import reset_critic
from rlhf_gym.agents.evaluation import EvalResult, evaluate, reward_model_metrics
from rlhf_gym.agents.registry import make_agent
from rlhf_gym.agents.tensorboard import record_metrics, tensorboard_logger
from rlhf_gym.algos.anchor import Anchor, KLLoss, KLPenalty, PolicyParams, load_parameters, sampled_episodes
from rlhf_gym.config import RunConfig
from rlhf_gym.data.rollout import collect
from rlhf_gym.feedback.collect import FeedbackCollector
from rlhf_gym.feedback.effort import Budget
from rlhf_gym.reward.evidence import expert_steps
from rlhf_gym.reward.model import FitReport, RewardModel
from rlhf_gym.reward.novelty import StateEntropy
from rlhf_gym.reward.rune import Rune
from rlhf_gym.reward.surf import unlabeled_pairs
from rlhf_gym.tasks.registry import Task
from rlhf_gym.train.resolve import n_envs
from rlhf_gym.types import Feedback
from rlhf_gym.wrappers import ConstantReward, LearnedRewardVec

Item = tuple[Feedback, float]
"""A feedback record and the seconds of effort it cost."""


@dataclass
class Answer:
    """What a feedback source gave for one ``ask``.

    Args:
        records: the new records, each with its effort in seconds.
        seconds: the effort spent, watching that gave nothing included.
        replace: the records are all the feedback so far and ``seconds`` all the effort, not
            new ones (a person may have undone some).
    """

    records: list[Item] = field(default_factory=list)
    seconds: float = 0.0
    replace: bool = False


class FeedbackSource(Protocol):
    """Where a loop's feedback comes from: a simulated teacher, or a person through the store."""

    def ask(self, loop: Loop, budget: Budget | None, strategy: str | None) -> Answer:
        """Feedback about the loop's recent behaviour (``loop.env.recorder``), within ``budget``
        (``None``: whatever the source has, as a person gives it)."""
        ...


class SyntheticSource:
    """A simulated person: the teachers of every feedback type (``FeedbackCollector``), split
    equally between the run's feedback types; each record also goes to ``store`` if given."""

    def __init__(self, collector: FeedbackCollector, store: Any = None) -> None:
        self.collector, self.store = collector, store

    def ask(self, loop: Loop, budget: Budget | None, strategy: str | None) -> Answer:
        if budget is None:
            raise ValueError("a synthetic teacher needs a budget (labels or seconds) to spend")
        kinds = loop.config.feedback_types
        new: list[Item] = []
        parts = budget.split(len(kinds))
        for kind, part in zip(kinds, parts):
            fitted = loop.reward_model if loop.last_fit is not None else None
            new += self.collector.collect(kind, part, loop.env.recorder, fitted, loop.act, loop.rng, strategy)
        if self.store is not None:
            for record, seconds in new:
                self.store.add(record, effort_seconds=seconds, info={"round": loop.round})
        return Answer(new, sum(part.spent for part in parts))


class Loop:
    """The RLHF loop's state and its steps; drivers decide when each step runs.

    Args:
        config: the resolved run config.
        task: the config's task.
        reward_model: the model that ``fit`` refits and the agent's reward reads.
        source: where feedback comes from.
        feedback: records given before this loop started (a resumed store), with their efforts.
        verbose: 1 prints every metrics row.
    """

    def __init__(
        self,
        config: RunConfig,
        task: Task,
        reward_model: RewardModel,
        source: FeedbackSource,
        feedback: list[Item] | None = None,
        verbose: int = 0,
    ) -> None:
        self.config, self.task, self.reward_model, self.source = config, task, reward_model, source
        self.verbose = verbose
        self.rng = np.random.default_rng(config.seed)
        self.n_envs = n_envs(config)
        self.agent_kwargs = {k: v for k, v in config.hyperparams.items() if k != "n_envs"}
        self.fits_reward_model = config.algo != "cpl"  # CPL learns its policy from the pairs directly
        self.feedback: list[Feedback] = [record for record, _ in feedback or []]
        self.feedback_seconds: list[float] = [seconds for _, seconds in feedback or []]
        self.labels = 0  # records this loop asked for
        self.effort_seconds = 0.0
        self.round = 0
        self.initial_parameters: PolicyParams | None = None
        """Policy parameters to start from (set by WARP); else ``config.init_policy``'s."""
        self.reference: Any = None  # the frozen initial policy, for kl_from_init
        self.anchor: Anchor | None = None
        self.kl_term: KLPenalty | KLLoss | None = None
        self.last_fit: FitReport | None = None
        self.rune: Rune | None = None  # the agent's reward, with RUNE's bonus (reward_model.rune_beta)
        self.metrics: list[dict[str, Any]] = []
        self.initial_env_steps = 0
        self._start = time.perf_counter()

    # ----- the steps --------------------------------------------------------------------
    def start(self) -> BaseAlgorithm:
        """Build the environment (the learned reward, with a KL penalty if the config asks)
        and the agent, from the initial policy; returns the agent."""
        cfg = self.config
        if cfg.torch_threads is not None:  # the CLI's default: one thread (all cores oversubscribe)
            torch.set_num_threads(cfg.torch_threads)
        self._start = time.perf_counter()
        reward = self._agent_reward()
        if cfg.kl_coef and cfg.kl_penalty != "loss":
            reward = KLPenalty(reward, cfg.kl_coef)
        self.env = LearnedRewardVec(self.make_vec_env(), reward, cfg.trajectory_window)
        self.env.action_space.seed(cfg.seed)
        assert cfg.algo is not None
        _, norm_reward = normalize.prepare(self.agent_kwargs, self.env.observation_space, cfg.algo)
        gamma = self.agent_kwargs.get("gamma", 0.99)  # (rewards scaled by their discounted returns' spread)
        env = VecNormalize(self.env, norm_obs=False, gamma=gamma) if norm_reward else self.env
        self.agent = make_agent(cfg.algo, env, self.agent_kwargs, cfg.seed, relabel=cfg.reward == "learned")
        self.obs_stats = normalize.ObsStats() if normalize.normalises_obs(self.agent) else None
        if cfg.tensorboard_log:  # one logger for every learn call: one event file per run
            self.agent.set_logger(tensorboard_logger(cfg.tensorboard_log, f"{self.task.name}_{cfg.algo}"))
        self._prepare_agent()
        return self.agent

    def collect(self, steps: int) -> int:
        """Roll the initial policy out for ``steps`` environment steps, for the first queries.

        An off-policy agent takes them itself, as the first steps of its training: before
        ``learning_starts`` SB3 acts uniformly at random and only fills its replay buffer (whose
        rewards every fit relabels), so they cost no environment steps beyond its own. Returns the
        agent steps they took (0 for an on-policy agent, whose rollouts are extra)."""
        agent = self.agent
        if isinstance(agent, OffPolicyAlgorithm):
            starts = agent.learning_starts
            agent.learning_starts = 2**62  # (SB3 would train after a train_freq chunk that ends past it)
            try:
                with progress_of_run(agent, self.config.total_timesteps or steps):
                    agent.learn(steps, callback=self.obs_stats, reset_num_timesteps=True)
            finally:
                agent.learning_starts = starts
            return agent.num_timesteps
        self.initial_env_steps = collect(self.env, self._initial_policy, steps)
        return 0

    def explore(self, steps: int) -> int:
        """PEBBLE's unsupervised phase: train the agent ``steps`` steps on the state entropy of its
        own visits (``StateEntropy``), whose rollouts become the pool of the first queries; then
        its critic starts afresh (``reset_critic``), its values being of that other reward."""
        reward_fn = self.env.reward_fn
        self.env.reward_fn = StateEntropy(seed=self.config.seed)
        try:
            with progress_of_run(self.agent, self.config.total_timesteps or steps):
                self.agent.learn(steps, callback=self.obs_stats, reset_num_timesteps=True)
        finally:
            self.env.reward_fn = reward_fn
        reset_critic(self.agent)
        return self.agent.num_timesteps  # (an on-policy agent finishes its last rollout)

    def ask(self, budget: Budget | None, strategy: str | None = None) -> list[Item]:
        """Ask the source for feedback within ``budget`` (queries ranked by ``strategy``, the
        config's when ``None``); the records join ``feedback``. Returns the new records."""
        self.round += 1
        answer = self.source.ask(self, budget, strategy)
        if answer.replace:
            self.feedback[:] = [record for record, _ in answer.records]  # in place: CPL holds it
            self.feedback_seconds[:] = [seconds for _, seconds in answer.records]
            self.labels, self.effort_seconds = len(answer.records), answer.seconds
        else:
            self.feedback += [record for record, _ in answer.records]
            self.feedback_seconds += [seconds for _, seconds in answer.records]
            self.labels += len(answer.records)
            self.effort_seconds += answer.seconds
        return answer.records

    def fit(self) -> FitReport | None:
        """Refit the reward model on all feedback, relabel the agent's stored rewards, and
        behaviour-clone on the demonstrated steps (``bc_steps``). CPL fits nothing here."""
        if not self.fits_reward_model or not self.feedback:
            return None
        unlabeled: list = []
        if self.reward_model.config.surf_threshold:  # SURF: pairs of recent segments, unlabelled
            h = self.config.segment_length or 50
            pool = self.env.recorder.pool()
            unlabeled = unlabeled_pairs(pool, h, len(self.feedback), self.rng, self.task.absorbing_reward)
        self.last_fit = self.reward_model.fit(self.feedback, unlabeled)
        relabel_buffer(self.agent, self.rune.current if self.rune is not None else self.reward_model)
        if self.config.bc_steps:
            behaviour_clone(self.agent, *expert_steps(self.feedback), self.config.bc_steps, self.rng)
        return self.last_fit

    def train(
        self,
        steps: int,
        callback: BaseCallback | None = None,
        progress_bar: bool = False,
        reset: bool = False,
    ) -> None:
        """Train the agent ``steps`` more steps on the learned reward (``reset``: as a new SB3
        ``learn`` call, which counts its steps and logs from zero)."""
        callbacks = [c for c in (callback, self.obs_stats) if c is not None]
        self.agent.learn(steps, callback=callbacks, progress_bar=progress_bar, reset_num_timesteps=reset)

    def evaluate(self, n_episodes: int, seed: int) -> EvalResult:
        """The agent's deterministic return on the true reward, in fresh environments."""
        return evaluate(self.agent, self.task, n_episodes, seed=seed)

    # ----- the agent and its environment ------------------------------------------------
    def make_vec_env(self) -> DummyVecEnv:
        venv = DummyVecEnv([lambda: self.task.make(self.config.horizon) for _ in range(self.n_envs)])
        venv.seed(self.config.seed)
        return venv

    def _agent_reward(self) -> Any:
        if not self.fits_reward_model:
            return ConstantReward(0.0)  # the policy learns from the pairs; no reward reaches it
        rune = self.config.reward_model  # the run's, not a loaded checkpoint's
        if self.config.reward == "learned" and rune.rune_beta:
            self.rune = Rune(self.reward_model, rune.rune_beta, rune.rune_decay)
            return self.rune
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
                self.kl_term = self.env.reward_fn
                self.env.reward_fn.attach(policy, self.anchor)
            else:
                self.kl_term = KLLoss(policy, self.anchor, cfg.kl_coef)
        bind = getattr(agent, "bind", None)  # the algorithms that learn from the loop's own data
        if bind is not None:
            bind(feedback=self.feedback, reward_fn=self.reward_model, task=self.task, horizon=cfg.horizon)

    def _initial_policy(self, obs: np.ndarray) -> np.ndarray:
        """The untrained agent's own stochastic policy (an on-policy agent's)."""
        return self.agent.predict(obs, deterministic=False)[0]

    def act(self, obs: np.ndarray) -> Any:
        """The agent's current stochastic action for one observation (uniform before an
        off-policy agent starts learning, as SB3 itself acts)."""
        agent = self.agent
        if isinstance(agent, OffPolicyAlgorithm) and agent.num_timesteps < agent.learning_starts:
            return agent.action_space.sample()
        return agent.predict(obs, deterministic=False)[0]

    # ----- metrics ----------------------------------------------------------------------
    def sampled(self, n_episodes: int) -> dict[str, float]:
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
        if self.kl_term is not None:
            row["kl_to_anchor"] = self.kl_term.mean_kl()
        return row

    def log(self, row: dict[str, Any], model_metrics: bool = False) -> dict[str, Any]:
        """Append a metrics row; ``model_metrics`` adds the reward-model figures (after fits, at the end)."""
        base: dict[str, Any] = {
            "timesteps": self.agent.num_timesteps,
            "env_steps": self.env.env_steps,
            "labels_used": self.labels,
            "effort_seconds": round(self.effort_seconds, 2),
            "wall_seconds": round(time.perf_counter() - self._start, 3),
        }
        if model_metrics and self.last_fit is not None:
            base |= {
                "reward_model_accuracy": self.last_fit.heldout_accuracy,
                "reward_model_train_accuracy": self.last_fit.train_accuracy,
                "absorbing_identified": self.last_fit.absorbing_identified,
                "reward_model_fit_steps": self.last_fit.steps,
            }
            if self.reward_model.config.rime:
                base |= {"labels_trusted": self.last_fit.trusted, "labels_flipped": self.last_fit.flipped}
            pool = self.env.recorder.pool()[-20:]
            if pool:  # (empty only before the loop's environment has taken a step)
                m = reward_model_metrics(
                    self.reward_model,
                    pool,
                    self.config.segment_length or 50,
                    np.random.default_rng([self.config.seed, len(self.metrics)]),
                    absorbing_reward=self.task.absorbing_reward,
                )
                base |= {"reward_model_pair_accuracy": m.pair_accuracy, "reward_correlation": m.correlation}
        row = base | row
        self.metrics.append(row)
        if self.config.tensorboard_log:
            record_metrics(self.agent.logger, row)
        if self.verbose:
            print("  ".join(f"{k}={_fmt(v)}" for k, v in row.items()), flush=True)
        return row


def _fmt(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)
