"""Critics of trained agents, V(s), for teachers that judge by regret.

A saved critic is read, without unpickling, by ``load_agent`` (``rlhf_gym.agents.files``, re-exported here).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm

from rlhf_gym.agents.files import load_agent

__all__ = ["load_agent", "state_value"]


def state_value(agent: BaseAlgorithm) -> Callable[[np.ndarray], np.ndarray]:
    """``V(s)`` for a batch of observations from a trained agent's critic.

    PPO and A2C have a value head; DQN's value is its largest Q-value; SAC's and TD3's is the
    smallest of their Q-critics at the actor's deterministic action.
    """
    import torch
    from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm

    policy: Any = agent.policy  # an actor-critic, Q-network or SAC policy: each has its own heads

    def value(obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            t, _ = policy.obs_to_tensor(np.asarray(obs))
            if isinstance(agent, OnPolicyAlgorithm):
                v = policy.predict_values(t)
            elif hasattr(policy, "q_net"):
                v = policy.q_net(t).max(dim=1).values
            else:
                qs = policy.critic(t, policy._predict(t, deterministic=True))
                v = torch.min(torch.cat(qs, dim=1), dim=1).values
        return v.reshape(len(obs)).cpu().numpy()

    return value
