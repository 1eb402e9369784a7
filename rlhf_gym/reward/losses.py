"""Likelihoods of feedback under the reward model: one per feedback type.

Every feedback type is evidence about one reward (the reward-rational choice view of
Jeon, Milli and Dragan, 2020); each function here returns a negative log-likelihood per
ensemble member, weighted per item, so types can be mixed by summing.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from rlhf_gym.reward.evidence import Evidence


def preference_probability(
    returns_first: torch.Tensor, returns_second: torch.Tensor, noise: float = 0.0
) -> torch.Tensor:
    """Bradley-Terry P(first preferred) from summed predicted rewards, with an optional
    chance ``noise`` of a uniformly random answer: P = (1 - noise) P_bt + noise / 2
    (Christiano et al., 2017, use noise = 0.1).

    Example:
        >>> p = preference_probability(torch.tensor([1.0]), torch.tensor([0.0]))
        >>> round(float(p), 4)  # sigmoid(1)
        0.7311
    """
    p = torch.sigmoid(returns_first - returns_second)
    return (1.0 - noise) * p + noise / 2 if noise else p


def comparison_loss(
    returns_first: torch.Tensor,
    returns_second: torch.Tensor,
    labels: torch.Tensor,
    weights: torch.Tensor,
    noise: float = 0.0,
) -> torch.Tensor:
    """Cross-entropy of the labels (1, 0, or 0.5 for a tie) under Bradley-Terry, per member.

    Args:
        returns_first, returns_second: predicted segment returns, shape ``(E, M)``.
        labels: target P(first preferred), shape ``(M,)``.
        weights: per-member item weights (bootstrap counts), shape ``(E, M)``.
        noise: the noise-robust mixture weight.

    Returns:
        The weighted mean loss of each member, shape ``(E,)``.
    """
    if noise:
        p = preference_probability(returns_first, returns_second, noise)
        nll = -(labels * torch.log(p) + (1 - labels) * torch.log1p(-p))
    else:
        logits = returns_first - returns_second
        nll = F.binary_cross_entropy_with_logits(logits, labels.expand_as(logits), reduction="none")
    return (weights * nll).sum(-1) / weights.sum(-1).clamp_min(1.0)


WARM_STOP_ACCURACY = 0.97
"""A warm-started fit (``RewardModelConfig.warm_start``) stops at the end of a pass over the labels
once the members judge more than this share of their untied comparisons right (B-Pref's rule)."""


def judged_right(
    returns_first: torch.Tensor, returns_second: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor
) -> np.ndarray:
    """The weight of the untied comparisons the members judge right, and of all untied ones, summed
    over members and items (arguments as ``comparison_loss``'s), as ``[right, all]``.

    Example:
        >>> first, second = torch.tensor([[2.0, 0.0, 1.0]]), torch.tensor([[1.0, 1.0, 1.0]])
        >>> judged_right(first, second, torch.tensor([1.0, 1.0, 0.5]), torch.ones(1, 3)).tolist()
        [1.0, 2.0]
    """
    untied = (labels != 0.5) * weights
    right = ((returns_first > returns_second) == (labels > 0.5)) * untied
    return np.array([float(right.sum()), float(untied.sum())])


def ordinal_probabilities(
    scores: torch.Tensor, cutpoints: torch.Tensor, slope: torch.Tensor, noise: float = 0.0
) -> torch.Tensor:
    """P(level = k) of an ordered-logit (cumulative link) model: P(level <= k) =
    sigmoid(slope (c_k - score)), with a chance ``noise`` of a uniformly random level.

    Args:
        scores: predicted scores (a segment's return, or the credit-weighted reward of the
            steps before a key press), shape ``(E, M)``.
        cutpoints: increasing thresholds ``c_0 < ... < c_{K-2}`` per member, shape ``(E, K-1)``.
        slope: positive rationality per member, shape ``(E,)``.

    Returns:
        Shape ``(E, M, K)``; each row sums to one.

    Example:
        >>> p = ordinal_probabilities(torch.zeros(1, 1), torch.zeros(1, 1), torch.ones(1))
        >>> p.squeeze().tolist()  # two levels, score on the threshold: a coin flip
        [0.5, 0.5]
    """
    cdf = torch.sigmoid(slope[:, None, None] * (cutpoints[:, None, :] - scores[..., None]))
    ones = torch.ones_like(cdf[..., :1])
    p = torch.diff(cdf, dim=-1, prepend=torch.zeros_like(ones), append=ones)
    k = p.shape[-1]
    return (1.0 - noise) * p + noise / k if noise else p


_SOFTPLUS_INV_1 = math.log(math.e - 1)  # softplus(x) = 1


def ordinal_thresholds(raw: torch.Tensor) -> torch.Tensor:
    """Increasing thresholds ``(E, K-1)`` of a K-level scale from free parameters ``(E, K-1)``:
    the first, then softplus gaps. At zero they are one unit apart and centred on zero, the
    first at ``-(K-2)/2`` (TAMER's two keys: one threshold, at 0).

    Example:
        >>> ordinal_thresholds(torch.zeros(1, 3)).tolist()  # four levels
        [[-1.0, 0.0, 1.0]]
    """
    n = raw.shape[1]  # K - 1
    gaps = F.softplus(raw[:, 1:] + _SOFTPLUS_INV_1)
    return torch.cat([raw[:, :1] - (n - 1) / 2, gaps], 1).cumsum(1)


def ordinal_loss(
    scores: torch.Tensor,
    levels: torch.Tensor,
    cutpoints: torch.Tensor,
    slope: torch.Tensor,
    weights: torch.Tensor,
    noise: float = 0.0,
) -> torch.Tensor:
    """Negative log-likelihood of ordinal labels (ratings, or TAMER's +/- as two levels), per member.

    Args:
        scores: shape ``(E, M)``; levels: integer labels ``(M,)``; weights: ``(E, M)``.

    Returns:
        The weighted mean loss of each member, shape ``(E,)``.
    """
    p = ordinal_probabilities(scores, cutpoints, slope, noise)
    picked = p.gather(-1, levels.view(1, -1, 1).expand(p.shape[0], -1, 1)).squeeze(-1)
    nll = -torch.log(picked.clamp_min(1e-12))
    return (weights * nll).sum(-1) / weights.sum(-1).clamp_min(1.0)


def ordinal_losses(
    scores: torch.Tensor,
    ev: Evidence,
    idx: torch.Tensor,
    scales: list[torch.Tensor],
    log_slopes: list[torch.Tensor],
    counts: torch.Tensor,
    noise: float = 0.0,
) -> tuple[torch.Tensor, int]:
    """The ordinal labels' summed loss per member ``(E,)`` and its weight, over a batch ``idx`` of
    ``ev.ordinal`` (``scores``: their predicted returns ``(E, len(idx))``). Each scale (instrument)
    has its own thresholds (``scales[j]``: a first one and softplus gaps) and log-rationality, and
    weighs as many labels as it has in all; ``counts``: the members' bootstrap counts of every item."""
    instrument, levels = torch.from_numpy(ev.instrument[idx.numpy()]), torch.from_numpy(ev.levels)[idx]
    total, weight = torch.zeros(len(counts)), 0
    for j, raw in enumerate(scales):
        on = instrument == j
        if on.any():
            n_on = int((ev.instrument == j).sum())
            nll = ordinal_loss(
                scores[:, on],
                levels[on],
                ordinal_thresholds(raw),
                log_slopes[j].exp(),
                counts[:, len(ev.pairs) + idx[on]],
                noise,
            )
            total, weight = total + n_on * nll, weight + n_on
    return total, weight
