"""RUNE's exploration bonus (Liang et al., ICLR 2022): the agent's reward is the learned reward plus
``beta_t`` times the spread of the ensemble's members, ``beta_t = beta_0 (1 - rho)^t`` after ``t``
environment steps (beta_0 = 0.05 and rho = 1e-5 in RUNE's configs). States whose reward the labels
have not pinned down are worth visiting, and the agent's rollouts then hold the segments that the
next queries can resolve; the bonus fades as training goes on. The spread is that of each member's
reward taken relative to its own absorbing reward, in the agent's reward units, as the pessimism
of ``RewardModelConfig`` takes it (with the opposite sign, and no decay).
"""

from __future__ import annotations

import numpy as np

from rlhf_gym.reward.model import RewardModel


class Rune:
    """The agent's reward under RUNE: ``model``'s, plus the decaying bonus for disagreement.

    Args:
        model: the reward model (refitted in place by the loop).
        beta: ``beta_0``, the bonus per standard deviation of the members at step 0.
        decay: ``rho``, the bonus's decay per environment step.

    Example:
        >>> import gymnasium as gym
        >>> model = RewardModel(gym.spaces.Box(-1, 1, (2,)), gym.spaces.Discrete(2))
        >>> rune = Rune(model, beta=0.05, decay=0.5)
        >>> obs, acts, live = np.ones((4, 2), np.float32), np.zeros(4, int), np.zeros(4, bool)
        >>> spread = model.spread(obs, acts, live)
        >>> bool(np.allclose(rune(obs, acts, live), model(obs, acts, live) + 0.05 * spread))
        True
        >>> rune.steps, rune.beta  # 4 environment steps: the bonus has halved 4 times
        (4, 0.003125)
    """

    def __init__(self, model: RewardModel, beta: float, decay: float) -> None:
        self.model, self.beta0, self.decay = model, beta, decay
        self.steps = 0

    @property
    def beta(self) -> float:
        """The bonus per standard deviation now."""
        return self.beta0 * (1.0 - self.decay) ** self.steps

    def __call__(self, obs: np.ndarray, actions: np.ndarray, absorbing: np.ndarray) -> np.ndarray:
        """The reward of one step of every environment; the bonus then decays by those steps."""
        r = self.current(obs, actions, absorbing)
        self.steps += len(obs)
        return r

    def current(self, obs: np.ndarray, actions: np.ndarray, absorbing: np.ndarray) -> np.ndarray:
        """The reward at the current bonus, without counting steps (to relabel a replay buffer)."""
        bonus = self.beta * self.model.spread(obs, actions, absorbing)
        return (self.model(obs, actions, absorbing) + bonus).astype(np.float32)
