"""The reward model's hot path: every member's reward of a few steps, in numpy.

The agent's reward is scored at every environment step, a handful of steps at a time, where
torch's overhead per call would cost more than the arithmetic. ``RewardModel`` keeps a
``Members``, a numpy copy of its MLPs and input boxes, made after each fit and load.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from rlhf_gym.reward.normalise import UNBOUNDED


class Members:
    """The ensemble's MLPs (leaky ReLU between layers) as numpy arrays.

    Args:
        weights: per layer, every member's weights ``(E, in, out)``.
        biases: per layer, every member's biases ``(E, 1, out)``.
        low: each member's lowest input ``(E, D)`` (``-UNBOUNDED``: not clipped).
        high: each member's highest input ``(E, D)`` (``UNBOUNDED``: not clipped).
        slope: the leaky ReLU's negative slope.

    Example:
        >>> w = [torch.ones(2, 3, 4), torch.ones(2, 4, 1)]
        >>> b = [torch.zeros(2, 1, 4), torch.zeros(2, 1, 1)]
        >>> low, high = torch.full((2, 3), -1.0), torch.full((2, 3), 1.0)
        >>> Members(w, b, low, high, 0.01)(np.full((1, 3), 2.0, np.float32)).tolist()
        [[12.0], [12.0]]
        >>> Members(w, b, low, high, 0.01)(np.full((1, 3), 2.0, np.float32), boxed=False).tolist()
        [[24.0], [24.0]]
    """

    def __init__(
        self,
        weights: Sequence[torch.Tensor],
        biases: Sequence[torch.Tensor],
        low: torch.Tensor,
        high: torch.Tensor,
        slope: float,
    ) -> None:
        self.w = [w.detach().numpy().copy() for w in weights]
        self.b = [b.detach().numpy().copy() for b in biases]
        self.slope = slope
        boxed = bool((low > -UNBOUNDED).any() or (high < UNBOUNDED).any())
        self.box = (low.numpy()[:, None].copy(), high.numpy()[:, None].copy()) if boxed else None
        e, d, h = self.w[0].shape  # unclipped, the first layer of every member is one matmul
        self.w0 = np.ascontiguousarray(self.w[0].transpose(1, 0, 2).reshape(d, e * h))
        self.b0 = self.b[0].reshape(1, e * h)

    def __call__(self, x: np.ndarray, boxed: bool = True) -> np.ndarray:
        """Each member's raw reward ``(E, N)`` of features ``(N, D)``; with ``boxed``, each member
        takes them clipped to its box."""
        if boxed and self.box is not None:
            h = np.matmul(np.minimum(np.maximum(x[None], self.box[0]), self.box[1]), self.w[0])
            h += self.b[0]
        else:
            e, _, width = self.w[0].shape
            h = (x @ self.w0 + self.b0).reshape(len(x), e, width).transpose(1, 0, 2)
        for w, b in zip(self.w[1:], self.b[1:]):
            h = np.matmul(np.maximum(h, self.slope * h), w)
            h += b
        return h[..., 0]
