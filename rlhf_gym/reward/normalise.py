"""Each ensemble member's input normaliser: fitted on the member's own bootstrap sample, so the labels
it leaves out (which judge its held-out accuracy) shape nothing of it, and folded into its first layer."""

from __future__ import annotations

import numpy as np
import torch

from rlhf_gym.reward.evidence import Evidence

Normalisers = tuple[torch.Tensor, torch.Tensor]
"""Each member's input mean and std, ``(E, D)`` each."""


def member_normalisers(ev: Evidence, counts: np.ndarray, box: bool, input_dim: int) -> Normalisers:
    """Mean and std ``(E, D)`` of each member's inputs over its own bootstrap sample (the
    sample's real steps, live ones if any, weighted by its counts), so that the labels it
    leaves out, which judge its held-out accuracy, shape nothing of it. Discrete
    observations and actions (``box`` false, and the action columns) are left as they are."""
    mean = np.zeros((len(counts), input_dim), np.float32)
    std = np.ones_like(mean)
    if box:
        owner = ev.owners()
        real = ev.weights > 0
        flat = ev.obs.reshape(*real.shape, -1).astype(np.float64)
        d = flat.shape[-1]
        for j, member_counts in enumerate(counts):
            w = member_counts[owner][:, None] * real
            w = w * ~ev.absorbing if (w * ~ev.absorbing).any() else w
            if w.sum() > 0:
                mu = np.einsum("sl,sld->d", w, flat) / w.sum()
                var = np.einsum("sl,sld->d", w, (flat - mu) ** 2) / w.sum()
                mean[j, :d], std[j, :d] = mu, np.maximum(np.sqrt(var), 1e-3)
    return torch.from_numpy(mean), torch.from_numpy(std)


def fold(
    w: torch.Tensor, b: torch.Tensor, mean: torch.Tensor, std: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """First-layer weights ``(E, D, H)`` and biases ``(E, 1, H)`` of members whose inputs are
    normalised, ``((x - mean) / std) w + b``, as a layer on raw inputs, ``x w' + b'``."""
    w = w / std[:, :, None]
    return w, b - torch.bmm(mean[:, None, :], w)
