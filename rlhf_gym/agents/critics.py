"""Critics of trained agents, V(s), for teachers that judge by regret.

A saved critic is read, without unpickling, by ``load_agent`` (``rlhf_gym.agents.files``, re-exported here).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm

from rlhf_gym.agents.files import load_agent

__all__ = ["load_agent", "reset_critic", "state_value"]


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


def reset_critic(agent: BaseAlgorithm) -> int:
    """Fresh weights, and fresh optimiser moments, for an agent's critic: SAC's and TD3's Q-networks,
    DQN's Q-network, or PPO's and A2C's value network (SB3's orthogonal init with its gains, when
    the policy uses it); target networks copy the fresh weights. The actor is kept. PEBBLE does this
    after its unsupervised phase, whose values were of another reward. DQN's Q-network is its policy
    too: what it keeps from that phase is its replay buffer, relabelled at every fit. Returns the
    number of parameters reset.
    """
    import torch

    policy: Any = agent.policy
    if hasattr(policy, "q_net"):  # DQN
        nets, targets, optimizer = [policy.q_net], [policy.q_net_target], policy.optimizer
    elif hasattr(policy, "critic"):  # SAC, TD3
        nets, targets, optimizer = [policy.critic], [policy.critic_target], policy.critic.optimizer
    else:  # PPO, A2C: the value branch of the extractor and the value head
        nets = [getattr(policy.mlp_extractor, "value_net", None), policy.value_net]
        nets, targets, optimizer = [n for n in nets if n is not None], [], policy.optimizer
    params = {id(p) for net in nets for p in net.parameters()}
    for net in nets:
        if getattr(policy, "ortho_init", False):  # SB3's gains: sqrt(2) in the extractor, 1 at the head
            gain = 1.0 if net is policy.value_net else 2**0.5
            net.apply(functools.partial(policy.init_weights, gain=gain))
            continue
        for module in net.modules():
            if isinstance(module, torch.nn.Linear | torch.nn.Conv2d):
                module.reset_parameters()
    for net, target in zip(nets, targets):
        target.load_state_dict(net.state_dict())
    for group in optimizer.param_groups:
        for p in group["params"]:
            if id(p) in params:
                optimizer.state.pop(p, None)
    return sum(p.numel() for net in nets for p in net.parameters())
