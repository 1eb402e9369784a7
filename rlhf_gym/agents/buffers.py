"""Replay buffers whose stored rewards are recomputed after every reward-model fit (PEBBLE's relabelling)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.vec_env import VecTransposeImage, is_vecenv_wrapped

from rlhf_gym.types import RewardFunction


class AbsorbingReplayBuffer(ReplayBuffer):
    """SB3's replay buffer, plus which stored steps were absorbing, so stored rewards can be
    recomputed after every reward-model fit (PEBBLE's relabelling; Lee et al., 2021)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.absorbing = np.zeros((self.buffer_size, self.n_envs), dtype=bool)

    def add(
        self,
        obs: np.ndarray,
        next_obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        self.absorbing[self.pos] = [bool(info.get("absorbing", False)) for info in infos]
        super().add(obs, next_obs, action, reward, done, infos)

    def relabel(
        self,
        reward_fn: RewardFunction,
        unscale: Callable[[np.ndarray], np.ndarray],
        channels_last: bool = False,
    ) -> int:
        """Recompute every stored reward with ``reward_fn``; returns the steps relabelled.
        ``channels_last``: the stored frames are SB3's transposed ones; the reward model takes
        them as the environment gives them."""
        n = self.buffer_size if self.full else self.pos
        if n == 0:
            return 0
        obs = self.observations[:n].reshape(n * self.n_envs, *self.obs_shape)
        if channels_last:
            obs = np.moveaxis(obs, 1, -1)
        actions = unscale(self.actions[:n].reshape(n * self.n_envs, self.action_dim))
        rewards = reward_fn(obs, actions, self.absorbing[:n].reshape(-1))
        self.rewards[:n] = np.asarray(rewards, dtype=np.float32).reshape(n, self.n_envs)
        return n * self.n_envs


def relabel_buffer(agent: BaseAlgorithm, reward_fn: RewardFunction) -> int:
    """Recompute an off-policy agent's stored rewards; on-policy agents have nothing stored."""
    buffer = getattr(agent, "replay_buffer", None)
    if not isinstance(buffer, AbsorbingReplayBuffer):
        return 0
    env = agent.get_env()
    transposed = env is not None and is_vecenv_wrapped(env, VecTransposeImage)
    if isinstance(agent.action_space, spaces.Box):
        return buffer.relabel(reward_fn, agent.policy.unscale_action, transposed)
    return buffer.relabel(reward_fn, lambda a: a.reshape(-1).astype(np.int64), transposed)
