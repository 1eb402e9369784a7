"""PEBBLE's unsupervised pre-training reward: the state entropy of the agent's own visits.

Before the first query, PEBBLE (Lee et al., 2021) trains the agent on an intrinsic reward, the
distance from a state to its k-th nearest neighbour among the states visited so far (k = 5), a
particle estimate of the state distribution's entropy (Liu and Abbeel, 2021). The agent learns to
go where it has not been, and its rollouts give the first queries segments a random policy would
never reach (the flag of MountainCar, the block in the bin). ``StateEntropy`` is that reward for
``LearnedRewardVec``: each observation is scored against a uniform sample of every earlier one,
in coordinates standardised by their running mean and spread, and the distance is divided by its
own running mean, as PEBBLE divides by its running standard deviation. A state's reward is its
novelty when it was visited: an off-policy agent's replay buffer keeps it (PEBBLE recomputes it
against the current buffer at every update), until the first fit relabels the buffer. The
absorbing state after a goal is no state the agent visits: it is kept out of the sample and the
statistics, and is worth the mean of the live rewards given so far. Zero, below every live
state, taught the agent to avoid the goals it should find; one overshoots them, as the running
mean of the distances falls and the live rewards average 0.5 to 0.9.
"""

from __future__ import annotations

import numpy as np


class StateEntropy:
    """The k-nearest-neighbour state-entropy reward of PEBBLE's unsupervised phase.

    Args:
        k: the neighbour whose distance is the reward (PEBBLE: 5).
        capacity: earlier observations kept, a uniform sample of all of them (reservoir sampling).
        seed: seeds the reservoir's choices.

    Example:
        >>> se = StateEntropy(k=1, capacity=100, seed=0)
        >>> _ = se(np.zeros((3, 2)), None, np.zeros(3, bool))  # the origin, three times
        >>> r = se(np.array([[0.0, 0.0], [9.0, 9.0]]), None, np.zeros(2, bool))
        >>> bool(r[1] > r[0] == 0.0)
        True
    """

    def __init__(self, k: int = 5, capacity: int = 4096, seed: int = 0) -> None:
        if k < 1 or capacity < k:
            raise ValueError(f"StateEntropy needs 1 <= k <= capacity, got k={k}, capacity={capacity}")
        self.k, self.capacity = k, capacity
        self.rng = np.random.default_rng(seed)
        self.seen = 0
        self.memory: np.ndarray | None = None
        self._sum: np.ndarray | None = None
        self._sq: np.ndarray | None = None
        self._dist_sum, self._dist_n = 0.0, 0
        self._given_sum, self._given_n = 0.0, 0

    def __call__(self, obs: np.ndarray, actions: object, absorbing: np.ndarray) -> np.ndarray:
        live = ~np.asarray(absorbing, dtype=bool)
        reward = np.full(len(obs), self._given_sum / max(self._given_n, 1))
        if live.any():
            reward[live] = self._live(np.asarray(obs, dtype=np.float64).reshape(len(obs), -1)[live])
            self._given_sum += float(reward[live].sum())
            self._given_n += int(live.sum())
        return reward.astype(np.float32)

    def _live(self, x: np.ndarray) -> np.ndarray:
        """The rewards of live observations ``x`` ``(N, d)``, which then join the sample."""
        if self.memory is None:
            self.memory = np.zeros((self.capacity, x.shape[1]))
            self._sum, self._sq = np.zeros(x.shape[1]), np.zeros(x.shape[1])
        assert self._sum is not None and self._sq is not None
        self._sum += x.sum(0)
        self._sq += (x**2).sum(0)
        n = min(self.seen, self.capacity)  # earlier states kept
        dist = np.zeros(len(x))
        if n:
            total = self.seen + len(x)
            mean = self._sum / total
            std = np.sqrt(np.maximum(self._sq / total - mean**2, 0.0)) + 1e-8
            z, memory = (x - mean) / std, (self.memory[:n] - mean) / std
            d2 = ((z[:, None, :] - memory[None]) ** 2).sum(-1)  # (N, n): each to every kept state
            k = min(self.k, n) - 1
            dist = np.sqrt(np.partition(d2, k, axis=1)[:, k])
            self._dist_sum += float(dist.sum())
            self._dist_n += len(dist)
        self._remember(x)
        return dist / (self._dist_sum / self._dist_n if self._dist_sum > 0 else 1.0)

    def _remember(self, x: np.ndarray) -> None:
        """Keep ``x``'s rows in the reservoir, a uniform sample of every state seen (Vitter's R)."""
        assert self.memory is not None
        for row in x:
            if self.seen < self.capacity:
                self.memory[self.seen] = row
            else:
                j = int(self.rng.integers(0, self.seen + 1))
                if j < self.capacity:
                    self.memory[j] = row
            self.seen += 1
