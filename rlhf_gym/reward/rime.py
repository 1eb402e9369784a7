"""RIME's sample selection (Cheng et al., ICML 2024): robust preference learning from noisy labels.

During a fit, once per pass over the labelled pairs, the ensemble judges every pair by the KL
divergence of its mean prediction P from the label y, KL(y || P) (for a hard label, -log P(label)):

- a pair is **trusted** while KL < -ln(rho) + alpha * rho + min(beta_t * var, 3), where rho and var are
  running statistics (rate 0.1, from zero) of the largest KL and the KL's variance among the pairs
  trusted so far, alpha = 0.5, and beta_t falls linearly from 3 to 1 over the fit;
- a pair whose KL exceeds -ln(tau), tau = 0.001 (the ensemble gives the label under a 0.1% chance),
  is **flipped**: fitted with the opposite label;
- the others sit out until a later pass trusts them again.

The fit trains on the trusted and the flipped pairs only. The bound follows the paper: clean labels'
KL stays under -ln(rho) + alpha * rho when rho bounds it on the trusted set, and the variance term
leaves room early, when the estimate is rough. The paper warm-starts one model across rounds; here
a fit starts from fresh weights unless ``reward_model.warm_start``, and the statistics start again
with each fit either way: at rho = 0
every pair is trusted, and the filter tightens as the members learn the labels most of them agree
on, which networks learn before they memorise the rest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

ALPHA = 0.5
BETA_START, BETA_END = 3.0, 1.0
TAU = 1e-3
RATE = 0.1
MAX_UNCERTAINTY = 3.0


def label_kl(labels: torch.Tensor, p_first: torch.Tensor) -> torch.Tensor:
    """KL(y || P) between Bernoulli labels y (P(first preferred): 1, 0 or 0.5 for a tie) and
    predictions P, per pair; a hard label's is -log P(label).

    Example:
        >>> label_kl(torch.tensor([1.0, 0.5]), torch.tensor([0.5, 0.5])).tolist()
        [0.6931471824645996, 0.0]
    """
    p = p_first.clamp(1e-7, 1 - 1e-7)
    y = labels
    first = torch.where(y > 0, y * torch.log(y.clamp_min(1e-12) / p), torch.zeros_like(p))
    second = torch.where(y < 1, (1 - y) * torch.log((1 - y).clamp_min(1e-12) / (1 - p)), torch.zeros_like(p))
    return first + second


@dataclass
class Rime:
    """The selection state of one fit: ``passes`` is how many times it will select."""

    passes: int
    rho: float = 0.0
    var: float = 0.0
    done: int = 0
    trusted: float = math.nan
    """The share of pairs trusted, and of pairs flipped, at the last selection."""
    flipped: float = math.nan

    def targets(self, returns: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Select on the members' predicted returns of the pairs, ``(E, 2M)`` (first, second, first,
        ...): the labels to fit (flipped ones turned) and the weight of each pair (1 if it counts)."""
        p_first = torch.sigmoid(returns[:, 0::2] - returns[:, 1::2]).mean(0)
        trusted, flipped = self.select(labels, p_first)
        self.trusted, self.flipped = float(trusted.float().mean()), float(flipped.float().mean())
        return torch.where(flipped, 1 - labels, labels), (trusted | flipped).to(labels.dtype)

    def select(self, labels: torch.Tensor, p_first: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The trusted and the flipped pairs (boolean masks) under the ensemble-mean ``p_first``."""
        kl = label_kl(labels, p_first)
        beta = BETA_START - (BETA_START - BETA_END) * min(1.0, self.done / max(1, self.passes - 1))
        bound = -math.log(self.rho + 1e-8) + ALPHA * self.rho + min(beta * self.var, MAX_UNCERTAINTY)
        flipped = (kl > -math.log(TAU)) & (labels != 0.5)  # (a tie turned is the same tie)
        trusted = (kl < bound) & ~flipped
        if trusted.any():
            kept = kl[trusted]
            self.rho += RATE * (float(kept.max()) - self.rho)
            self.var += RATE * (float(kept.var(unbiased=False)) - self.var)
        self.done += 1
        return trusted, flipped
