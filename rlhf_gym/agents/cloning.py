"""Behaviour cloning: fitting an agent's policy to demonstrated actions (the instruction-tuning stage)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3 import DQN, SAC
from stable_baselines3.common.base_class import BaseAlgorithm

from rlhf_gym.agents import normalize
from rlhf_gym.agents.registry import make_agent, policy_input
from rlhf_gym.tasks.registry import Task
from rlhf_gym.types import Trajectory

DQFD_MARGIN = 0.8  # Hester et al. 2018 (DQfD), the large-margin loss's l(a_E, a) for a != a_E


def behaviour_clone(
    agent: BaseAlgorithm,
    obs: np.ndarray,
    actions: np.ndarray,
    steps: int,
    rng: np.random.Generator,
    batch_size: int = 64,
) -> float:
    """Fit the agent's policy to ``(obs, actions)`` pairs (behaviour cloning).

    PPO and A2C maximise the log-probability of their own policy, SAC that of its squashed
    Gaussian actor. DQN has Q-values, not a likelihood: it minimises DQfD's large-margin loss
    ``max_a [Q(s, a) + l(a_E, a)] - Q(s, a_E)``, with ``l`` 0.8 for every action but the
    expert's (Hester et al. 2018), which makes the expert's action greedy by a margin and then
    leaves the Q-values alone. Actions are in the environment's units.

    Returns:
        The last batch's loss (the negative log-likelihood; DQN: the large-margin loss).
    """
    import torch

    policy = agent.policy
    n = len(obs)
    if n == 0 or steps <= 0:
        return float("nan")
    obs_t = policy_input(policy, obs)
    normalize.fold_in(agent, obs)  # (statistics first: the cloned policy sees the inputs it will act on)
    opt: torch.optim.Optimizer
    if isinstance(agent, SAC):
        scaled = np.clip(policy.scale_action(np.asarray(actions, np.float32)), -0.999, 0.999)
        act_t = torch.as_tensor(scaled, dtype=torch.float32)
        actor = agent.actor

        def log_prob(o: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
            mean, log_std, kwargs = actor.get_action_dist_params(o)
            return actor.action_dist.proba_distribution(mean, log_std, **kwargs).log_prob(a)

        opt = actor.optimizer
    elif isinstance(agent, DQN):
        act_t = torch.as_tensor(np.asarray(actions), dtype=torch.long).view(-1, 1)

        def log_prob(o: torch.Tensor, a: torch.Tensor) -> torch.Tensor:  # minus the margin loss
            q = agent.q_net(o)
            margins = torch.full_like(q, DQFD_MARGIN).scatter(1, a, 0.0)
            return q.gather(1, a).squeeze(1) - (q + margins).max(1).values

        opt = policy.optimizer
    else:
        dtype = torch.long if isinstance(agent.action_space, spaces.Discrete) else torch.float32
        act_t = torch.as_tensor(np.asarray(actions), dtype=dtype)

        def log_prob(o: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
            return policy.evaluate_actions(o, a)[1]  # type: ignore[operator]

        opt = policy.optimizer
    policy.set_training_mode(True)
    loss = torch.zeros(())
    for _ in range(steps):
        idx = torch.as_tensor(rng.integers(0, n, min(batch_size, n)))
        loss = -log_prob(obs_t[idx], act_t[idx]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    policy.set_training_mode(False)
    return float(loss.detach())


def pretrained(
    task: Task,
    algo: str = "ppo",
    episodes: int = 5,
    bc_steps: int = 2000,
    seed: int = 0,
    noise: float = 0.0,
    hyperparams: dict[str, Any] | None = None,
    horizon: str = "fixed",
) -> BaseAlgorithm:
    """A fresh agent behaviour-cloned on episodes of the task's scripted expert: the RLHF
    pipeline's instruction-tuning stage, and a start (``init_policy``) for KL-anchored RL.

    Args:
        task: a task with an expert (``rlhf_gym.tasks.experts``).
        algo: the agent's algorithm; its network comes from the task preset and ``hyperparams``.
        episodes: demonstrated episodes, from seeds ``1000 * seed + k``.
        bc_steps: behaviour-cloning gradient steps (batches of 64).
        seed: seeds the agent, the episodes and the noise.
        noise: the probability that the demonstrator takes a uniformly random action instead
            (recorded as taken), for a start that is good but not perfect.
        hyperparams: overrides of the preset's hyperparameters for ``algo``.
        horizon: the horizon the episodes are played in; absorbing steps are left out.
    """
    from stable_baselines3.common.vec_env import DummyVecEnv

    if not 0.0 <= noise <= 1.0:
        raise ValueError(f"noise must be a probability in [0, 1], got {noise}")
    kwargs = {**task.algo_kwargs(algo), **(hyperparams or {})}
    kwargs.pop("n_envs", None)
    agent = make_agent(algo, DummyVecEnv([lambda: task.make(horizon)]), kwargs, seed, relabel=False)
    rng = np.random.default_rng(seed)
    trajectories = expert_episodes(task, horizon, [noise] * episodes, seed, rng)
    live = [(t.obs[~t.absorbing], t.actions[~t.absorbing]) for t in trajectories]
    obs, actions = (np.concatenate(x) for x in zip(*live))
    behaviour_clone(agent, obs, actions, bc_steps, rng)
    return agent


def expert_episodes(
    task: Task, horizon: str, noises: Sequence[float], seed: int, rng: np.random.Generator
) -> list[Trajectory]:
    """One episode of the task's scripted expert per entry of ``noises``, from reset seeds
    ``1000 * seed + k``; in episode ``k`` each action is uniformly random with probability
    ``noises[k]`` (recorded as taken)."""
    from rlhf_gym.feedback.synthetic import run
    from rlhf_gym.tasks.registry import get_expert

    expert = get_expert(task)
    env = task.make(horizon)
    env.action_space.seed(seed)
    trajectories = []
    for k, noise in enumerate(noises):
        policy = lambda o, p=noise: env.action_space.sample() if rng.random() < p else expert(o)  # noqa: E731
        trajectories.append(run(env, policy, env.reset(seed=1000 * seed + k)[0], task.max_episode_steps)[0])
    env.close()
    return trajectories
