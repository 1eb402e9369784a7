"""Evaluation on the TRUE reward, and reward-model metrics that spend no labels."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from rlhf_gym.data.segments import sample_segments
from rlhf_gym.reward.model import RewardModel
from rlhf_gym.tasks.registry import Task
from rlhf_gym.types import Trajectory


@dataclass(frozen=True)
class EvalResult:
    """True returns of deterministic episodes on the natural-horizon, unwrapped task."""

    returns: tuple[float, ...]

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std(self) -> float:
        return float(np.std(self.returns))


def evaluate(
    agent: BaseAlgorithm, task: Task, n_episodes: int = 20, seed: int = 10_000, deterministic: bool = True
) -> EvalResult:
    """Run ``n_episodes`` on a fresh natural-horizon environment and return the true returns.

    The environment has no learned-reward or fixed-horizon wrapper, so the figures are the
    task's own returns whatever the agent was trained on.
    """
    n_envs = min(n_episodes, 10)
    venv = DummyVecEnv([lambda: Monitor(task.make("natural")) for _ in range(n_envs)])
    venv.seed(seed)
    returns, _ = evaluate_policy(
        agent,
        venv,
        n_eval_episodes=n_episodes,
        deterministic=deterministic,
        return_episode_rewards=True,
        warn=False,
    )
    venv.close()
    assert isinstance(returns, list)
    return EvalResult(tuple(float(r) for r in returns))


def normalised_return(value: float, random: float, ceiling: float) -> float:
    """(R - R_random) / (R_ceiling - R_random): 0 is random, 1 is the true-reward agent.

    Example:
        >>> normalised_return(-200.0, random=-1200.0, ceiling=-150.0)
        0.9523809523809523
    """
    if ceiling == random:
        return float("nan")
    return (value - random) / (ceiling - random)


@dataclass(frozen=True)
class RewardModelMetrics:
    """How well the reward model matches the true reward on fresh on-policy data.

    Args:
        pair_accuracy: share of fresh segment pairs with different true returns that the
            model ranks like the true reward.
        correlation: Pearson correlation of predicted and true reward per step.
    """

    pair_accuracy: float
    correlation: float


def reward_model_metrics(
    model: RewardModel,
    trajectories: Sequence[Trajectory],
    segment_length: int,
    rng: np.random.Generator,
    n_pairs: int = 200,
    absorbing_reward: float = 0.0,
) -> RewardModelMetrics:
    """Score the model on fresh segments of recent trajectories; no teacher labels are spent."""
    segs = sample_segments(trajectories, segment_length, 2 * n_pairs, rng, absorbing_reward)
    # the reward the agent is given (the ensemble's aggregate, normalised)
    step_pred = model(
        np.concatenate([s.obs for s in segs]),
        np.concatenate([s.actions for s in segs]),
        np.concatenate([s.absorbing for s in segs]),
    ).astype(np.float64)
    predicted = np.add.reduceat(step_pred, np.cumsum([0, *[len(s) for s in segs[:-1]]]))
    true = np.array([s.true_return for s in segs])
    dp, dt = predicted[0::2] - predicted[1::2], true[0::2] - true[1::2]
    strict = dt != 0
    accuracy = float(np.mean(np.sign(dp[strict]) == np.sign(dt[strict]))) if strict.any() else float("nan")
    step_true = np.concatenate([s.true_rewards for s in segs])
    if step_true.std() == 0 or step_pred.std() == 0:
        corr = float("nan")
    else:
        corr = float(np.corrcoef(step_pred, step_true)[0, 1])
    return RewardModelMetrics(accuracy, corr)
