import numpy as np
import pytest

from rlhf_gym.config import RewardModelConfig
from rlhf_gym.data.queries import pair_up, rank_queries, score
from rlhf_gym.reward.model import RewardModel
from tests.reward.test_model import cartpole_spaces


def test_pairs_are_consecutive(segment):
    segs = [segment([i]) for i in range(5)]
    pairs = pair_up(segs)
    assert len(pairs) == 2 and pairs[1].first is segs[2]


def test_disagreement_and_entropy_rank_by_their_scores():
    rng = np.random.default_rng(0)
    from rlhf_gym.types import Segment

    segs = [
        Segment(rng.normal(size=(5, 4)).astype(np.float32), np.zeros(5, int), np.zeros(5), np.zeros(5, bool))
        for _ in range(40)
    ]
    rm = RewardModel(*cartpole_spaces(), RewardModelConfig(ensemble_size=4, hidden_sizes=(8,)))
    candidates = pair_up(segs)
    p = rm.preference_probabilities(candidates)
    for strategy in ("disagreement", "entropy"):
        ranked = rank_queries(candidates, strategy, rm, np.random.default_rng(1))
        scores = score(ranked, strategy, rm)
        assert np.all(np.diff(scores) <= 1e-12), strategy
    top = rank_queries(candidates, "disagreement", rm, np.random.default_rng(1))[0]
    assert score([top], "disagreement", rm)[0] == pytest.approx(p.std(0).max())


def test_uniform_is_a_permutation(segment):
    candidates = pair_up([segment([i]) for i in range(20)])
    ranked = rank_queries(candidates, "uniform", None, np.random.default_rng(0))
    assert sorted(id(q) for q in ranked) == sorted(id(q) for q in candidates)


def test_unknown_strategy(segment):
    with pytest.raises(ValueError, match="uniform, disagreement, entropy"):
        rank_queries(pair_up([segment([0])] * 2), "greedy", None, np.random.default_rng(0))


class FixedProbabilities:
    """A preference model whose members give each query a fixed P(first preferred)."""

    def __init__(self, queries, p):
        self.p = {id(q): column for q, column in zip(queries, np.asarray(p, float).T)}

    def preference_probabilities(self, queries):
        return np.stack([self.p[id(q)] for q in queries], axis=1)


def binary_entropy(p):
    p = np.asarray(p, float)
    return -(p * np.log(p) + (1 - p) * np.log(1 - p))


def test_entropy_is_b_prefs_mean_of_the_members_entropies(segment):
    # members split 0.01/0.99: the mean P is 1/2, but each member is sure (B-Pref's get_entropy
    # averages the members' entropies); members agreeing on 0.3 are both unsure
    candidates = pair_up([segment([i]) for i in range(6)])
    p = [[0.01, 0.3, 0.9], [0.99, 0.3, 0.9]]
    model = FixedProbabilities(candidates, p)
    np.testing.assert_allclose(score(candidates, "entropy", model), binary_entropy(p).mean(0))
    ranked = rank_queries(candidates, "entropy", model, np.random.default_rng(0))
    assert [candidates.index(q) for q in ranked] == [1, 2, 0]
