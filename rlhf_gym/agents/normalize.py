"""Observation and reward normalisation for the agent, as rl-zoo3's ``normalize: true`` asks.

SB3 users normalise with ``VecNormalize``, whose statistics live in the environment wrapper: every
place that acts with the agent (evaluation, queries, the labelling app, KL anchors, a saved agent)
would need the same wrapper and a file of its statistics. Here the observation statistics live in
the policy instead:

- ``NormalizedObs``, the policy's features extractor, flattens an observation and standardises it
  by a running mean and variance, clipped to +-10, as ``VecNormalize`` does. Its statistics are
  buffers of the policy, so ``policy.predict`` normalises wherever it is called, and they are saved
  and loaded with the weights (``policy.pth``, the safetensors twin), never pickled.
- ``ObsStats``, a callback, gathers the observations of each rollout and folds them into the
  statistics when the next rollout starts, so that a PPO update sees the statistics its rollout was
  collected with.
- Rewards are normalised by SB3's own ``VecNormalize(norm_obs=False)`` around the agent's training
  environment (on-policy agents only: an off-policy buffer keeps the rewards it is relabelled with).

A preset (or the zoo) asks for it with the agent's hyperparameter ``normalize``: ``true`` (both),
``false``, or ``{obs: true, reward: false}`` (``norm_obs``/``norm_reward`` are read too).

Example:
    >>> import gymnasium as gym, torch
    >>> space = gym.spaces.Box(-10.0, 10.0, (2,))
    >>> ext = NormalizedObs(space)
    >>> ext.update(np.array([[1.0, 10.0], [3.0, 30.0]]))
    >>> ext(torch.tensor([[2.0, 20.0]])).tolist()
    [[0.0, 0.0]]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

CLIP = 10.0
EPSILON = 1e-8


def settings(value: Any, where: str = "hyperparams") -> tuple[bool, bool]:
    """``(observations, rewards)`` to normalise, from a ``normalize`` value.

    Raises:
        ValueError: a value that is none of the forms of the module docstring.
    """
    if isinstance(value, bool):
        return value, value
    if isinstance(value, dict):
        aliases = {"obs": "obs", "norm_obs": "obs", "reward": "reward", "norm_reward": "reward"}
        out = {"obs": True, "reward": True}
        for key, flag in value.items():
            if key not in aliases or not isinstance(flag, bool):
                break
            out[aliases[key]] = flag
        else:
            return out["obs"], out["reward"]
    raise ValueError(f"{where}.normalize must be true, false or {{obs: bool, reward: bool}}, got {value!r}")


def prepare(kwargs: dict[str, Any], space: spaces.Space, algo: str) -> tuple[dict[str, Any], bool]:
    """The agent's keyword arguments with ``normalize`` taken out (and ``NormalizedObs`` as its
    features extractor when observations are normalised), and whether to normalise rewards.

    Raises:
        ValueError: a bad ``normalize``, or normalised observations that are not a flat Box.
    """
    if "normalize" not in kwargs:
        return kwargs, False
    kwargs = dict(kwargs)
    obs, reward = settings(kwargs.pop("normalize"))
    if obs:
        if not isinstance(space, spaces.Box) or space.dtype == np.uint8:
            raise ValueError(f"normalize needs Box observations of numbers, not frames or {space}")
        kwargs["policy_kwargs"] = {
            **(kwargs.get("policy_kwargs") or {}),
            "features_extractor_class": NormalizedObs,
        }
    return kwargs, reward and algo in ("ppo", "a2c", "cpl", "bon")


class NormalizedObs(BaseFeaturesExtractor):
    """Flattened observations standardised by their running mean and variance, clipped to +-10."""

    mean: torch.Tensor
    var: torch.Tensor
    count: torch.Tensor

    def __init__(self, observation_space: spaces.Space) -> None:
        dim = int(np.prod(observation_space.shape or (1,)))
        super().__init__(observation_space, dim)
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("var", torch.ones(dim))
        self.register_buffer("count", torch.tensor(EPSILON, dtype=torch.float64))

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        x = observations.flatten(1).float()
        return ((x - self.mean) / torch.sqrt(self.var + EPSILON)).clamp(-CLIP, CLIP)

    def update(self, batch: np.ndarray) -> None:
        """Fold a batch of observations into the statistics (the parallel update of Chan et al., as
        SB3's ``RunningMeanStd``)."""
        x = torch.as_tensor(np.asarray(batch, np.float64).reshape(len(batch), -1))
        n, count = len(x), float(self.count)
        mean, var = self.mean.double(), self.var.double()
        delta, total = x.mean(0) - mean, count + n
        m2 = var * count + x.var(0, unbiased=False) * n + delta**2 * count * n / total
        self.mean.copy_(mean + delta * n / total)
        self.var.copy_(m2 / total)
        self.count.fill_(total)


class ObsStats(BaseCallback):
    """Gathers each rollout's observations and folds them into every ``NormalizedObs`` of the
    agent's policy when the next rollout starts (the agent's learn calls, from the first)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[np.ndarray] = []

    def _on_rollout_start(self) -> None:
        if self.seen:
            batch = np.concatenate(self.seen)
            for module in self.model.policy.modules():
                if isinstance(module, NormalizedObs):
                    module.update(batch)
            self.seen = []

    def _on_step(self) -> bool:
        self.seen.append(np.asarray(self.locals["new_obs"]))
        return True


def fold_in(agent: Any, obs: Any) -> None:
    """Fold observations into every ``NormalizedObs`` of the agent's policy (before cloning
    demonstrations: the policy learns them on the inputs it will act on)."""
    modules = [m for m in agent.policy.modules() if isinstance(m, NormalizedObs)]
    if modules and len(obs):
        for module in modules:
            module.update(np.asarray(obs))


def normalises_obs(agent: Any) -> bool:
    """Whether the agent's policy normalises its observations."""
    return any(isinstance(m, NormalizedObs) for m in agent.policy.modules())
