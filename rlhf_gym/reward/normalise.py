"""Each ensemble member's input normaliser and input box, fitted on the member's own bootstrap
sample, so the labels it leaves out (which judge its held-out accuracy) shape nothing of it. The
normaliser is folded into the member's first layer; the box clips what the member scores."""

from __future__ import annotations

import numpy as np
import torch

from rlhf_gym.reward.evidence import Evidence

Normalisers = tuple[torch.Tensor, torch.Tensor]
"""Each member's input mean and std, ``(E, D)`` each."""
Boxes = tuple[torch.Tensor, torch.Tensor]
"""Each member's lowest and highest input, ``(E, D)`` each."""

MIN_STD = 1e-3
"""An input whose std in a member's sample is at most this is centred, not scaled: dividing a
feature that (nearly) never varied by its std would turn noise into a steep slope. A hard
threshold: a std just above it is still divided by. Its weight stays the member's own random
draw, not zero: the members then disagree about a state the labels never showed (PickPlace's
"placed", before a placement is labelled), which disagreement-ranked queries and RUNE rely on."""
UNBOUNDED = float(np.finfo(np.float32).max)
"""The box of an input that is not clipped."""


def _member_steps(ev: Evidence, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The labelled steps' flat observations ``(S, L, d)`` and each member's weight on each step,
    ``(E, S, L)``: its bootstrap count on the step's item, on real steps, live ones if it has any."""
    real = ev.weights > 0
    w = counts[:, ev.owners()][..., None] * real  # (E, S, L)
    live = w * ~ev.absorbing
    w = np.where(live.reshape(len(w), -1).any(-1)[:, None, None], live, w)
    return ev.obs.reshape(*real.shape, -1).astype(np.float64), w


def member_normalisers(ev: Evidence, counts: np.ndarray, box: bool, input_dim: int) -> Normalisers:
    """Mean and std ``(E, D)`` of each member's inputs over its own bootstrap sample (the
    sample's real steps, live ones if any, weighted by its counts). Discrete observations and
    actions (``box`` false, and the action columns) are left as they are."""
    mean = np.zeros((len(counts), input_dim), np.float32)
    std = np.ones_like(mean)
    if box:
        flat, weights = _member_steps(ev, counts)
        d = flat.shape[-1]
        for j, w in enumerate(weights):
            if w.sum() > 0:
                mu = np.einsum("sl,sld->d", w, flat) / w.sum()
                sd = np.sqrt(np.einsum("sl,sld->d", w, (flat - mu) ** 2) / w.sum())
                mean[j, :d], std[j, :d] = mu, np.where(sd > MIN_STD, sd, 1.0)
    return torch.from_numpy(mean), torch.from_numpy(std)


def member_boxes(ev: Evidence, counts: np.ndarray, input_dim: int) -> Boxes:
    """The lowest and highest value ``(E, D)`` of each observation feature over each member's own
    bootstrap sample (its real steps, live ones if any), for Box observations. The action
    columns, and a member with no steps, are ``UNBOUNDED``: nothing of them is clipped."""
    low = np.full((len(counts), input_dim), -UNBOUNDED, np.float32)
    high = np.full_like(low, UNBOUNDED)
    flat, weights = _member_steps(ev, counts)
    d = flat.shape[-1]
    for j, w in enumerate(weights):
        if w.sum() > 0:
            steps = flat[w > 0]
            low[j, :d], high[j, :d] = steps.min(0), steps.max(0)
    return torch.from_numpy(low), torch.from_numpy(high)


def clip(x: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """Inputs ``(N, D)`` as each member sees them, ``(E, N, D)``: clipped to its box."""
    return torch.minimum(torch.maximum(x[None], low[:, None]), high[:, None])


def fold(
    w: torch.Tensor, b: torch.Tensor, mean: torch.Tensor, std: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """First-layer weights ``(E, D, H)`` and biases ``(E, 1, H)`` of members whose inputs are
    normalised, ``((x - mean) / std) w + b``, as a layer on raw inputs, ``x w' + b'``."""
    w = w / std[:, :, None]
    return w, b - torch.bmm(mean[:, None, :], w)


def unfold(
    w: torch.Tensor, b: torch.Tensor, mean: torch.Tensor, std: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``fold``'s inverse: a first layer on raw inputs as one on inputs normalised by ``mean`` and
    ``std``, the same function, for a fit that starts from the last one's weights."""
    return w * std[:, :, None], b + torch.bmm(mean[:, None, :], w)
