"""The algorithm registry: names to SB3 classes (by entry point), and building an agent."""

from __future__ import annotations

from importlib import import_module
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import VecEnv

from rlhf_gym.agents import normalize
from rlhf_gym.agents.buffers import AbsorbingReplayBuffer
from rlhf_gym.tasks.registry import ALGOS, CONTINUOUS_ONLY, DISCRETE_ONLY

ALGO_ENTRY_POINTS: dict[str, str] = {
    "ppo": "stable_baselines3:PPO",
    "a2c": "stable_baselines3:A2C",
    "dqn": "stable_baselines3:DQN",
    "sac": "stable_baselines3:SAC",
    "cpl": "rlhf_gym.algos.cpl:CPL",
    "bon": "rlhf_gym.algos.bon:BestOfN",
}
"""Every algorithm name and the class it builds, as ``module:Class``, imported on first use (as
Gymnasium's ``register`` names an environment's entry point): the algorithms built on the agents
layer (``rlhf_gym.algos``) are named here without being imported."""


def schedule(value: Any) -> Any:
    """rl-zoo's ``"lin_0.001"`` notation for a rate that decays linearly to zero; numbers pass through."""
    if isinstance(value, str) and value.startswith("lin_"):
        try:
            start = float(value[4:])
        except ValueError:
            raise ValueError(f"bad schedule {value!r}; expected 'lin_<number>'") from None
        return LinearSchedule(start, 0.0, 1.0)
    return value


def activation(name: str) -> type:
    """A torch activation by its name in hyperparameters (``relu``, ``tanh``, ...: ``rlhf_gym.tasks.zoo``)."""
    from torch import nn

    from rlhf_gym.tasks.zoo import ACTIVATIONS

    classes = {short: getattr(nn, cls) for cls, short in ACTIVATIONS.items()}
    if name not in classes:
        raise ValueError(f"unknown activation_fn {name!r}; expected one of {', '.join(classes)}")
    return classes[name]


def sample_actions(policy: BasePolicy, obs: np.ndarray) -> np.ndarray:
    """Stochastic actions for a batch of observations, each drawn from pi(.|s) afresh.

    With gSDE the exploration noise is redrawn first: SB3's ``predict`` keeps one noise matrix
    between calls, which makes its "stochastic" actions a fixed function of the state.
    """
    if getattr(policy, "use_sde", False):
        policy.reset_noise(len(obs))  # type: ignore[operator]
    return policy.predict(obs, deterministic=False)[0]


def policy_input(policy: BasePolicy, obs: Any, device: Any = "cpu") -> Any:
    """Observations (any leading dimensions) as a tensor for the policy's networks, as SB3's own
    rollouts give them: image frames uint8 and channels first (SB3 transposes channel-last frames
    with ``VecTransposeImage``; the networks scale them), anything else float32."""
    import torch

    obs = np.asarray(obs)
    space = policy.observation_space
    if not is_image_space(space):
        return torch.as_tensor(obs, dtype=torch.float32, device=device)
    if obs.shape[-3:] != space.shape:  # channel-last frames, as the environments give them
        obs = np.moveaxis(obs, -1, -3)
    return torch.as_tensor(np.ascontiguousarray(obs), device=device)


def algo_class(algo: str) -> type[BaseAlgorithm]:
    """The class of an algorithm name (``ALGO_ENTRY_POINTS``), imported when first used."""
    module, _, name = ALGO_ENTRY_POINTS[algo].partition(":")
    cls: type[BaseAlgorithm] = getattr(import_module(module), name)
    return cls


def check_algo(algo: str, action_space: spaces.Space) -> None:
    """Reject an unknown algorithm, or one that cannot act in this action space."""
    if algo not in ALGOS:
        raise ValueError(f"unknown algo {algo!r}; expected one of {', '.join(ALGOS)}")
    if algo in DISCRETE_ONLY and not isinstance(action_space, spaces.Discrete):
        raise ValueError(f"{algo} needs a Discrete action space, got {action_space}")
    if algo in CONTINUOUS_ONLY and not isinstance(action_space, spaces.Box):
        raise ValueError(f"{algo} needs a Box action space, got {action_space}")


def make_agent(algo: str, env: VecEnv, kwargs: dict[str, Any], seed: int, relabel: bool) -> BaseAlgorithm:
    """Build an SB3 agent (``CnnPolicy`` for image observations, as SB3 users choose; else
    ``MlpPolicy``, with ``NormalizedObs`` if ``kwargs["normalize"]`` asks: ``rlhf_gym.agents.normalize``);
    off-policy agents get a relabelling buffer when ``relabel``."""
    check_algo(algo, env.action_space)
    kwargs, _ = normalize.prepare(kwargs, env.observation_space, algo)  # (rewards: the loop's environment)
    kwargs = {k: schedule(v) for k, v in kwargs.items()}
    policy = kwargs.pop("policy", "CnnPolicy" if is_image_space(env.observation_space) else "MlpPolicy")
    if isinstance((policy_kwargs := kwargs.get("policy_kwargs") or {}).get("activation_fn"), str):
        kwargs["policy_kwargs"] = {
            **policy_kwargs,
            "activation_fn": activation(policy_kwargs["activation_fn"]),
        }
    cls = algo_class(algo)
    if relabel and issubclass(cls, OffPolicyAlgorithm):
        kwargs["replay_buffer_class"] = AbsorbingReplayBuffer
    try:
        return cls(policy, env, seed=seed, device="cpu", verbose=0, **kwargs)
    except TypeError as err:
        raise ValueError(f"bad hyperparameters for {algo}: {err}") from None
