"""SURF (Park et al., ICLR 2022): a reward model fitted on more pairs than were labelled.

Two additions to each fit given unlabelled pairs (the loop gives them), both on with
``reward_model.surf_threshold``:

- **Pseudo-labels.** Unlabelled pairs cut from the agent's recent episodes (``UNLABELED_PER_LABEL``
  per labelled pair) join every Adam step, ``BATCH_RATIO`` of them per labelled pair of the batch.
  Each member labels each pair itself, by its own prediction, where it is at least
  ``surf_threshold`` sure on the whole segments (SURF: 0.95 to 0.99), and is trained on those
  labels on a cropped view; the pairs it is unsure of count as zero in the mean (as in FixMatch).
- **Temporal cropping.** Every pair of a batch, labelled or not, is judged on a window of each
  segment: the same random length for both, from ``length - 2c`` to ``length`` steps with
  ``c = ceil(length / 10)`` (SURF's crop range, 5 of 50 steps, on each side), each at a random start.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from rlhf_gym.data.queries import pair_up
from rlhf_gym.data.segments import sample_segments
from rlhf_gym.types import Query, Trajectory

UNLABELED_PER_LABEL = 10
"""Unlabelled pairs drawn per labelled pair at each fit (SURF's ``inv_label_ratio``: 10 to 100)."""
BATCH_RATIO = 4
"""Unlabelled pairs per labelled pair in each Adam step's batch (SURF's mu: 1 to 4)."""
MAX_UNLABELED = 4000
"""At most this many unlabelled pairs per fit: the features of each are held in memory."""


def unlabeled_pairs(
    pool: Sequence[Trajectory], length: int, n_labels: int, rng: np.random.Generator, absorbing_reward: float
) -> list[Query]:
    """Pairs of random segments of the agent's recent episodes, ``UNLABELED_PER_LABEL`` per label."""
    n = min(UNLABELED_PER_LABEL * n_labels, MAX_UNLABELED)
    return pair_up(sample_segments(pool, length, 2 * n, rng, absorbing_reward)) if n and pool else []


def unlabeled_inputs(
    unlabeled: Sequence[Query], inputs: Callable[[np.ndarray, np.ndarray], Any]
) -> tuple[Any, torch.Tensor]:
    """The unlabelled pairs' segments as the reward model takes them (``inputs``), ``(2Q, L, D)``,
    and their absorbing flags ``(2Q, L)``."""
    segments = [seg for q in unlabeled for seg in (q.first, q.second)]
    absorbing = torch.from_numpy(np.stack([seg.absorbing for seg in segments]))
    obs, actions = (np.concatenate([getattr(g, k) for g in segments]) for k in ("obs", "actions"))
    return inputs(obs, actions).view(*absorbing.shape, -1), absorbing


def crop_mask(n_pairs: int, length: int, gen: torch.Generator) -> torch.Tensor:
    """Per segment of ``n_pairs`` consecutive pairs, which of its ``length`` steps count: a window
    of one random length per pair, at a random start in each segment. Shape ``(2 n_pairs, length)``.

    Example:
        >>> m = crop_mask(3, 50, torch.Generator().manual_seed(0))
        >>> m.shape, bool((m[0::2].sum(1) == m[1::2].sum(1)).all()), int(m.sum(1).min()) >= 40
        (torch.Size([6, 50]), True, True)
    """
    c = math.ceil(length / 10)
    lengths = torch.randint(max(1, length - 2 * c), length + 1, (n_pairs,), generator=gen)
    lengths = lengths.repeat_interleave(2)
    starts = (torch.rand(2 * n_pairs, generator=gen) * (length - lengths + 1)).floor()
    steps = torch.arange(length)
    return ((steps >= starts[:, None]) & (steps < (starts + lengths)[:, None])).float()


def pseudo_label_loss(
    first: torch.Tensor, second: torch.Tensor, guess: torch.Tensor, threshold: float
) -> torch.Tensor:
    """Each member's cross-entropy against its own confident labels, ``(E, M) -> (E,)``. The label is
    the segment the member prefers in ``guess``, its ``R1 - R2`` on the whole segments, where its
    probability is at least ``threshold``; the loss is on the cropped returns ``first`` and
    ``second``: as in SURF (and FixMatch), one view labels, another is trained.

    Example:
        >>> first, second = torch.tensor([[0.5, 0.1]]), torch.tensor([[0.0, 0.0]])
        >>> guess = torch.tensor([[3.0, 0.2]])  # sure of the first pair only: it is the first's
        >>> loss = pseudo_label_loss(first, second, guess, 0.9)
        >>> bool(torch.isclose(loss, F.softplus(torch.tensor(-0.5)) / 2).all())
        True
    """
    with torch.no_grad():
        p = torch.sigmoid(guess)
        sure = (torch.maximum(p, 1 - p) >= threshold).float()
        labels = (p > 0.5).float()
    nll = F.binary_cross_entropy_with_logits(first - second, labels, reduction="none")
    return (nll * sure).mean(-1)


def unlabeled_loss(
    returns: Callable[..., torch.Tensor],
    x: Any,
    absorbing: torch.Tensor,
    n_labelled: int,
    gen: torch.Generator,
    threshold: float,
) -> torch.Tensor:
    """The pseudo-label loss ``(E,)`` of ``BATCH_RATIO`` unlabelled pairs per labelled pair of the
    batch, drawn from the inputs ``x`` of every unlabelled pair's segments (first, second, first,
    ...) with their ``absorbing`` masks ``(2 U, H)``: each member labels a pair on the whole
    segments and is trained on cropped views. ``returns(x, absorbing, weights)`` gives ``(E, S)``."""
    iu = torch.randint(0, len(absorbing) // 2, (BATCH_RATIO * n_labelled,), generator=gen)
    seq = torch.stack([2 * iu, 2 * iu + 1], 1).view(-1)
    h = absorbing.shape[1]
    cropped = returns(x[seq], absorbing[seq], crop_mask(len(iu), h, gen))
    with torch.no_grad():  # labelled on the whole segments, trained on the crops
        whole = returns(x[seq], absorbing[seq], torch.ones(len(seq), h))
    guess = whole[:, 0::2] - whole[:, 1::2]
    return pseudo_label_loss(cropped[:, 0::2], cropped[:, 1::2], guess, threshold)
