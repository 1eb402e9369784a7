"""Likelihoods of feedback under the reward model: one per feedback type.

Every feedback type is evidence about one reward (the reward-rational choice view of
Jeon, Milli and Dragan, 2020); each function here returns a negative log-likelihood per
ensemble member, weighted per item, so types can be mixed by summing.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


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
