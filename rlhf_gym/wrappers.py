"""Wrappers named for their effect: ``FixedHorizon``, ``LearnedReward`` and ``LearnedRewardVec``.

The true reward is never lost: every step's ``info["true_reward"]`` holds it, and the
episode statistics in ``info["episode"]`` (``r``, ``l``, ``t``, the keys of SB3's
``Monitor``) are those of the true reward, with the learned return beside them as
``learned_r``.
"""

from __future__ import annotations

import math
import time
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn

from rlhf_gym.data.rollout import TrajectoryRecorder
from rlhf_gym.tasks.snapshots import LayerState, register
from rlhf_gym.types import RewardFunction


class ConstantReward:
    """The horizon-leak control: the same reward for every step, absorbing steps included."""

    def __init__(self, value: float = 1.0) -> None:
        self.value = float(value)

    def __call__(self, obs: np.ndarray, actions: np.ndarray, absorbing: np.ndarray) -> np.ndarray:
        return np.full(len(obs), self.value, dtype=np.float32)


def _absorbing(infos: list[dict] | tuple[dict, ...]) -> np.ndarray:
    return np.array([bool(info.get("absorbing", False)) for info in infos])


class EpisodeStats:
    """True and learned returns of the running episodes of ``n`` environments; a finished
    episode's figures go into its ``info["episode"]`` with the keys of SB3's ``Monitor``."""

    def __init__(self, n: int) -> None:
        self.true_returns = np.zeros(n)
        self.learned_returns = np.zeros(n)
        self.lengths = np.zeros(n, dtype=np.int64)
        self.start = time.perf_counter()

    def reset(self) -> None:
        self.true_returns[:] = self.learned_returns[:] = 0.0
        self.lengths[:] = 0

    def step(
        self, true_rewards: np.ndarray, rewards: np.ndarray, dones: np.ndarray, infos: list[dict]
    ) -> None:
        self.true_returns += true_rewards
        self.learned_returns += rewards
        self.lengths += 1
        for i in np.flatnonzero(dones):
            infos[i]["episode"] = {
                "r": float(self.true_returns[i]),
                "l": int(self.lengths[i]),
                "learned_r": float(self.learned_returns[i]),
                "t": round(time.perf_counter() - self.start, 6),
            }
            self.true_returns[i] = self.learned_returns[i] = 0.0
            self.lengths[i] = 0


class LearnedReward(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Replaces a single environment's reward with ``reward_fn(s, a)``.

    Args:
        env: the environment (its reward is the true reward).
        reward_fn: e.g. a fitted ``RewardModel``, or ``ConstantReward()``.

    Example:
        >>> env = LearnedReward(gym.make("CartPole-v1"), ConstantReward(0.5))
        >>> _ = env.reset(seed=0)
        >>> _, reward, _, _, info = env.step(0)
        >>> reward, info["true_reward"]
        (0.5, 1.0)
    """

    def __init__(self, env: gym.Env, reward_fn: RewardFunction) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, reward_fn=reward_fn)
        gym.Wrapper.__init__(self, env)
        self.reward_fn = reward_fn
        self._obs: Any = None
        self._stats = EpisodeStats(1)

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        self._obs, info = self.env.reset(**kwargs)
        self._stats.reset()
        return self._obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, true_reward, terminated, truncated, info = self.env.step(action)
        absorbing = np.array([bool(info.get("absorbing", False))])
        reward = float(self.reward_fn(np.asarray(self._obs)[None], np.asarray(action)[None], absorbing)[0])
        self._obs = obs
        info = {**info, "true_reward": float(true_reward)}
        self._stats.step(
            np.array([float(true_reward)]), np.array([reward]), np.array([terminated or truncated]), [info]
        )
        return obs, reward, terminated, truncated, info


class NonFiniteError(ValueError):
    """An environment or a reward model produced NaN or inf."""


class LearnedRewardVec(VecEnvWrapper):
    """The batched ``LearnedReward`` for SB3: one forward pass scores every environment's step.

    It also records the agent's trajectories (with true rewards) for later queries and counts
    every environment step it takes.

    Args:
        venv: the vectorised environments, with their true rewards.
        reward_fn: e.g. a fitted ``RewardModel``; ``None`` passes the true reward through
            (the ceiling control) while still recording.
        max_trajectories: finished trajectories kept for queries.
    """

    def __init__(self, venv: VecEnv, reward_fn: RewardFunction | None, max_trajectories: int = 100) -> None:
        super().__init__(venv)
        self.reward_fn = reward_fn
        self.recorder = TrajectoryRecorder(venv.num_envs, max_trajectories)
        self.env_steps = 0
        self._obs: np.ndarray | None = None
        self._actions: np.ndarray | None = None
        self._stats = EpisodeStats(venv.num_envs)

    def reset(self) -> Any:
        if self._obs is not None:
            self.recorder.flush()
        self._obs = np.asarray(self.venv.reset())
        self._check(self._obs, "observation")
        self._stats.reset()
        return self._obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)
        self.venv.step_async(actions)

    def step_wait(self) -> VecEnvStepReturn:
        obs, true_rewards, dones, infos = self.venv.step_wait()
        assert self._obs is not None and self._actions is not None, "step before reset"
        self._check(np.asarray(obs), "observation")
        self._check(true_rewards, "reward")
        absorbing = _absorbing(infos)
        if self.reward_fn is None:
            rewards = true_rewards
        else:
            rewards = np.asarray(self.reward_fn(self._obs, self._actions, absorbing), dtype=np.float32)
            self._check(rewards, "learned reward")
        self.recorder.add(self._obs, self._actions, true_rewards, absorbing, dones, infos)
        self.env_steps += self.num_envs
        self._stats.step(true_rewards, rewards, dones, infos)
        for info, true_reward in zip(infos, true_rewards):
            info["true_reward"] = float(true_reward)
        self._obs = np.asarray(obs)
        return obs, rewards, dones, infos

    def _check(self, values: np.ndarray, field: str) -> None:
        """Stop at the first NaN or inf, naming the task, the step and the field: one bad value
        would otherwise poison the reward model and the agent (or hang inside SB3)."""
        # the sum is the cheap test on this hot path; a finite sum that overflows is checked in full
        if values.dtype.kind == "f" and not math.isfinite(values.sum()) and not np.isfinite(values).all():
            spec = self.venv.get_attr("spec", [0])[0]
            name = spec.id if spec is not None else "the environment"
            raise NonFiniteError(
                f"{name} gave a non-finite {field} (NaN or inf) at environment step {self.env_steps + 1}; "
                "expected finite values"
            )


# LearnedReward scores (previous obs, action), so its previous observation is state too.
register(LearnedReward, LayerState(state=("_obs", "_stats")))
