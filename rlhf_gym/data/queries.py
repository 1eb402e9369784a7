"""Query selection: which pairs of segments to put to the teacher.

``uniform`` takes random pairs. ``disagreement`` scores ``candidate_factor`` times as many
random pairs and keeps those whose P(first preferred) varies most across the ensemble
(Christiano et al., 2017, section 2.2.4; B-Pref ``feed_type`` 1). ``entropy`` keeps the pairs
whose answer the members are, on average, least sure of: the mean over members of the entropy
of each member's P (B-Pref ``feed_type`` 2, ``get_entropy``). Members that disagree confidently
(P near 0 for one, near 1 for another) score low here and high under ``disagreement``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rlhf_gym.config import QUERY_STRATEGIES
from rlhf_gym.types import PreferenceModel, Query, Segment


def pair_up(segments: Sequence[Segment]) -> list[Query]:
    """Consecutive segments become pairs: (0, 1), (2, 3), ..."""
    return [Query(segments[i], segments[i + 1]) for i in range(0, len(segments) - 1, 2)]


def score(queries: Sequence[Query], strategy: str, model: PreferenceModel) -> np.ndarray:
    """How informative each query looks to the model; higher is asked first."""
    p = model.preference_probabilities(queries)
    if strategy == "disagreement":
        return p.std(0)
    if strategy == "entropy":  # B-Pref: the members' entropies, averaged (not that of the mean P)
        p = np.clip(p, 1e-6, 1 - 1e-6)
        return -(p * np.log(p) + (1 - p) * np.log(1 - p)).mean(0)
    raise ValueError(f"unknown query strategy {strategy!r}; expected one of {', '.join(QUERY_STRATEGIES)}")


def rank_queries(
    candidates: Sequence[Query], strategy: str, model: PreferenceModel | None, rng: np.random.Generator
) -> list[Query]:
    """All candidates, most informative first (a random order for ``uniform`` or no model).

    Example:
        >>> import numpy as np
        >>> seg = Segment(np.zeros((2, 1)), np.zeros(2), np.zeros(2), np.zeros(2, bool))
        >>> len(rank_queries(pair_up([seg] * 6), "uniform", None, np.random.default_rng(0)))
        3
    """
    if strategy not in QUERY_STRATEGIES:
        raise ValueError(
            f"unknown query strategy {strategy!r}; expected one of {', '.join(QUERY_STRATEGIES)}"
        )
    order = rng.permutation(len(candidates))
    if strategy != "uniform" and model is not None and len(candidates):
        scores = score([candidates[i] for i in order], strategy, model)
        order = order[np.argsort(-scores, kind="stable")]
    return [candidates[i] for i in order]
