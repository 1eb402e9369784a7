"""KL-regularised RL toward an anchor policy, and the metrics of an over-optimisation study.

RLHF keeps the policy near a reference while it climbs a learned reward, so that it cannot
wander into states where the reward model is wrong. The agent's reward becomes

    r_beta(s, a) = r_hat(s, a) - beta * KL(pi(.|s) || pi_anchor(.|s)),

with the KL computed exactly for discrete actions and analytically for Gaussian ones (the
expectation of WARP's sampled ``log pi / pi_anchor``, without its variance). The anchor is
the initial policy (for example a behaviour-cloned one) or, as in WARP (Rame et al. 2024), an
exponential moving average of the policy: after every optimiser step,
``theta_ema <- (1 - mu) theta_ema + mu theta``.

Example:
    >>> import gymnasium as gym
    >>> from stable_baselines3 import PPO
    >>> agent = PPO("MlpPolicy", gym.make("CartPole-v1"), policy_kwargs={"net_arch": [8]}, device="cpu")
    >>> anchor = Anchor(agent.policy, kind="ema", rate=0.01)
    >>> obs = np.zeros((3, 4), np.float32)
    >>> policy_kl(agent.policy, anchor.policy, obs).tolist()
    [0.0, 0.0, 0.0]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.vec_env import DummyVecEnv

from rlhf_gym.agents import files
from rlhf_gym.agents.registry import sample_actions
from rlhf_gym.config import KL_ANCHORS
from rlhf_gym.tasks.registry import Task
from rlhf_gym.types import RewardFunction

PolicyParams = dict[str, torch.Tensor]


def _distribution(
    policy: ActorCriticPolicy, obs: np.ndarray | torch.Tensor
) -> torch.distributions.Distribution:
    obs_t = obs if isinstance(obs, torch.Tensor) else policy.obs_to_tensor(np.asarray(obs))[0]
    dist = policy.get_distribution(obs_t)
    inner = getattr(dist, "distribution", None)
    if not isinstance(inner, (torch.distributions.Categorical, torch.distributions.Normal)):
        raise TypeError(
            f"KL is computed for categorical and diagonal Gaussian policies; got {type(dist).__name__}"
        )
    return inner


def policy_kl(
    policy: ActorCriticPolicy, anchor: ActorCriticPolicy, obs: np.ndarray | torch.Tensor
) -> torch.Tensor:
    """KL(pi(.|s) || pi_anchor(.|s)) in nats for each observation of a batch, without gradients.

    Exact for ``Discrete`` actions; analytic for (diagonal) Gaussian ones, summed over the
    action dimensions (PPO's and A2C's policies, with or without gSDE).

    Raises:
        TypeError: a policy whose distribution is neither categorical nor Gaussian.
    """
    with torch.no_grad():
        kl = torch.distributions.kl_divergence(_distribution(policy, obs), _distribution(anchor, obs))
    return kl.sum(-1) if kl.dim() > 1 else kl


class Anchor:
    """The policy the KL penalty pulls toward: a frozen copy, or an EMA of the live policy.

    Args:
        policy: the live policy; the anchor starts as a copy of it.
        kind: ``initial`` (frozen at the copy) or ``ema`` (moves toward ``policy`` after each of
            its optimiser steps).
        rate: the EMA rate mu; WARP's default is 0.01 per update.
    """

    def __init__(self, policy: ActorCriticPolicy, kind: str = "initial", rate: float = 0.01) -> None:
        if kind not in KL_ANCHORS:
            raise ValueError(f"unknown kl_anchor {kind!r}; expected one of {', '.join(KL_ANCHORS)}")
        if not 0.0 < rate <= 1.0:
            raise ValueError(f"ema_rate must be in (0, 1], got {rate}")
        self.kind, self.rate = kind, rate
        optimizer = policy.optimizer
        # a fresh policy of the same build, not a deepcopy (gSDE's noise tensors cannot be copied)
        with torch.random.fork_rng():  # building it draws initial weights; keep the run's stream
            self.policy = type(policy)(**policy._get_constructor_parameters())
        self.policy.load_state_dict(policy.state_dict())
        self.policy.set_training_mode(False)
        for p in self.policy.parameters():
            p.requires_grad_(False)
        self._live = policy
        self.updates = 0
        if kind == "ema":
            self._hook = optimizer.register_step_post_hook(lambda *_: self.update())

    def update(self) -> None:
        """One EMA step toward the live policy (called after every optimiser step); buffers (the
        observation statistics of ``normalize``) are the live policy's."""
        with torch.no_grad():
            for a, p in zip(self.policy.parameters(), self._live.parameters()):
                a.lerp_(p, self.rate)
            for buffer, live in zip(self.policy.buffers(), self._live.buffers()):
                buffer.copy_(live)
        self.updates += 1

    def close(self) -> None:
        """Stop following the live policy."""
        if self.kind == "ema":
            self._hook.remove()


class KLPenalty:
    """A reward function minus ``beta * KL(pi || pi_anchor)`` on live (non-absorbing) steps.

    The agent's policy is attached after the agent is built (``attach``); until then the
    penalty is zero. ``mean_kl()`` gives the mean KL per live step scored since it was last
    called.

    Args:
        reward_fn: the reward before the penalty (e.g. a fitted ``RewardModel``).
        beta: the penalty coefficient; WARP's default is 0.1.
    """

    def __init__(self, reward_fn: RewardFunction, beta: float) -> None:
        if beta < 0:
            raise ValueError(f"kl_coef must be non-negative, got {beta}")
        self.reward_fn, self.beta = reward_fn, beta
        self.policy: ActorCriticPolicy | None = None
        self.anchor: Anchor | None = None
        self._kl_sum, self._live = 0.0, 0

    def attach(self, policy: ActorCriticPolicy, anchor: Anchor) -> None:
        self.policy, self.anchor = policy, anchor

    def __call__(self, obs: np.ndarray, actions: np.ndarray, absorbing: np.ndarray) -> np.ndarray:
        rewards = np.asarray(self.reward_fn(obs, actions, absorbing), dtype=np.float32)
        if self.policy is None or self.anchor is None or self.beta == 0:
            return rewards
        live = ~np.asarray(absorbing, bool)
        kl = policy_kl(self.policy, self.anchor.policy, obs).numpy() * live
        self._kl_sum += float(kl.sum())
        self._live += int(live.sum())
        return rewards - self.beta * kl.astype(np.float32)

    def mean_kl(self) -> float:
        """Mean KL to the anchor per live step since the last call (NaN if none)."""
        mean = self._kl_sum / self._live if self._live else float("nan")
        self._kl_sum, self._live = 0.0, 0
        return mean


class _WithGradientOf(torch.autograd.Function):
    """Identity on ``x``; on the backward pass ``term`` gets gradient 1 (once, as the node runs
    once), so ``term``'s gradient joins the loss's exactly as if ``term`` were added to it."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, term: torch.Tensor) -> torch.Tensor:
        return x.clone()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return grad, torch.ones((), dtype=grad.dtype, device=grad.device)


class KLLoss:
    """Adds ``beta * mean_s KL(pi(.|s) || pi_anchor(.|s))`` to the agent's loss.

    The states are each minibatch the agent's own update evaluates (``evaluate_actions``, which
    PPO and A2C call once per minibatch). The term is computed there and attached to the
    returned log-probabilities, which every policy loss uses, so ``loss.backward()`` adds its
    gradient before SB3 clips the total to ``max_grad_norm`` (a hook after the clipping would
    bypass it). PPO and A2C are unchanged otherwise. This is the exact-gradient alternative to
    the reward penalty (``KLPenalty``). Evaluations without gradients (``torch.no_grad``) get
    no term.

    Args:
        policy: the live policy.
        anchor: the anchor policy.
        beta: the coefficient.
    """

    def __init__(self, policy: ActorCriticPolicy, anchor: Anchor, beta: float) -> None:
        if beta < 0:
            raise ValueError(f"kl_coef must be non-negative, got {beta}")
        self.policy, self.anchor, self.beta = policy, anchor, beta
        self._kl_sum, self._batches = 0.0, 0
        evaluate = policy.evaluate_actions

        def evaluate_actions(obs: Any, actions: torch.Tensor) -> Any:
            values, log_prob, entropy = evaluate(obs, actions)
            if self.beta == 0 or not torch.is_grad_enabled():
                return values, log_prob, entropy
            with torch.no_grad():
                target = _distribution(self.anchor.policy, obs)
            kl = torch.distributions.kl_divergence(_distribution(self.policy, obs), target)
            kl = (kl.sum(-1) if kl.dim() > 1 else kl).mean()
            self._kl_sum += float(kl.detach())
            self._batches += 1
            return values, _WithGradientOf.apply(log_prob, self.beta * kl), entropy

        policy.evaluate_actions = evaluate_actions  # type: ignore[method-assign]

    def mean_kl(self) -> float:
        """Mean KL to the anchor over the minibatches since the last call (NaN if none)."""
        mean = self._kl_sum / self._batches if self._batches else float("nan")
        self._kl_sum, self._batches = 0.0, 0
        return mean


def sampled_episodes(
    agent: BaseAlgorithm,
    task: Task,
    reward_fn: RewardFunction | None,
    reference: ActorCriticPolicy,
    episodes: int = 10,
    seed: int = 30_000,
    horizon: str = "fixed",
) -> dict[str, float]:
    """True return, learned (proxy) return and KL from ``reference`` of the stochastic policy.

    The over-optimisation study's three axes (Gao et al. 2022), measured on the same sampled
    episodes: the sum of true rewards, the sum of ``reward_fn`` (the reward the agent was
    trained on, before any KL penalty; NaN without one), and the sum over live steps of
    KL(pi(.|s_t) || pi_ref(.|s_t)) (nats per episode). Episodes run in lockstep, one per
    environment, from seeds ``seed, seed + 1, ...``.
    """
    envs = [task.make(horizon) for _ in range(episodes)]
    venv = DummyVecEnv([lambda e=e: e for e in envs])  # type: ignore[misc]
    venv.seed(seed)
    obs = np.asarray(venv.reset())
    true, proxy, kl = np.zeros(episodes), np.zeros(episodes), np.zeros(episodes)
    running = np.ones(episodes, bool)
    with torch.random.fork_rng():  # sampling leaves the training run's random stream alone
        torch.manual_seed(seed)
        while running.any():
            actions = sample_actions(agent.policy, obs)  # clipped to a Box, as the env sees them
            step_kl = policy_kl(agent.policy, reference, obs).numpy()  # type: ignore[arg-type]
            next_obs, rewards, dones, infos = venv.step(actions)
            absorbing = np.array([bool(info.get("absorbing", False)) for info in infos])
            if reward_fn is not None:
                proxy += running * np.asarray(reward_fn(obs, actions, absorbing), dtype=np.float64)
            true += running * rewards
            kl += running * step_kl * ~absorbing
            running &= ~dones
            obs = np.asarray(next_obs)
    venv.close()
    return {
        "true_return": float(true.mean()),
        "proxy_return": float(proxy.mean()) if reward_fn is not None else float("nan"),
        "kl": float(kl.mean()),
    }


def load_parameters(agent: BaseAlgorithm, path: str) -> PolicyParams:
    """The policy parameters of a saved agent (``init_policy``), checked against ``agent``'s policy.

    The weights come from the agent's pickle-free twin (``agent.safetensors``) when it lies beside
    the zip, else from the zip's ``policy.pth`` read with ``weights_only=True``; nothing in the zip
    is unpickled (``rlhf_gym.agents.files.read_policy``).

    Raises:
        FileNotFoundError: no saved agent at ``path`` (nor at ``path`` + ``.zip``).
        ValueError: not a saved agent, or a policy whose parameter names or shapes differ from
            ``agent``'s (one line naming the file and what was expected).
    """
    return files.load_parameters(agent, path, role="init_policy")
