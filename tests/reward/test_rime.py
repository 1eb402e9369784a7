"""RIME's sample selection: the bound, the flip, and a fit that recovers from mistaken labels."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rlhf_gym.config import RewardModelConfig
from rlhf_gym.reward.rime import Rime, label_kl


def test_label_kl_is_minus_log_p_of_a_hard_label_and_a_bernoulli_kl_for_a_tie():
    p = torch.tensor([0.9, 0.9, 0.5, 0.8])
    kl = label_kl(torch.tensor([1.0, 0.0, 0.5, 0.5]), p)
    tie = 0.5 * math.log(0.5 / 0.8) + 0.5 * math.log(0.5 / 0.2)
    assert kl.tolist() == pytest.approx([-math.log(0.9), -math.log(0.1), 0.0, tie], rel=1e-5)


def test_the_first_pass_trusts_every_pair_and_the_bound_then_tightens():
    rime = Rime(passes=10)
    labels = torch.ones(4)
    p = torch.tensor([0.9, 0.8, 0.6, 0.3])  # KLs 0.105, 0.223, 0.511, 1.204
    trusted, flipped = rime.select(labels, p)
    assert trusted.all() and not flipped.any()  # rho = 0: the bound is -ln(1e-8) = 18.4
    kl = label_kl(labels, p)
    assert rime.rho == pytest.approx(0.1 * float(kl.max()))
    assert rime.var == pytest.approx(0.1 * float(kl.var(unbiased=False)))
    for _ in range(60):  # rho -> the largest trusted KL, where -ln(rho) + rho/2 is under 1.2
        trusted, _ = rime.select(labels, p)
    assert trusted.tolist() == [True, True, True, False]
    bound = -math.log(rime.rho + 1e-8) + 0.5 * rime.rho + min(1.0 * rime.var, 3.0)  # beta has reached 1
    assert float(kl[2]) < bound < float(kl[3])


def test_a_label_the_ensemble_gives_under_a_tenth_of_a_percent_is_flipped_and_fitted_turned():
    rime = Rime(passes=5)
    returns = torch.tensor([[10.0, 0.0, 0.0, 0.1]])  # pair 0: first far better; pair 1: about even
    target, keep = rime.targets(returns, torch.tensor([0.0, 1.0]))  # pair 0's label says second
    assert target.tolist() == [1.0, 1.0] and keep.tolist() == [1.0, 1.0]
    assert rime.flipped == 0.5 and rime.trusted == 0.5


def _pairs(n: int, seed: int, mistakes: float):
    """Pairs of 1-step segments of a 1-D task whose true reward is the observation."""
    from rlhf_gym.types import Comparison, Query, Segment

    rng = np.random.default_rng(seed)
    out, wrong = [], []
    for _ in range(n):
        a, b = rng.uniform(-1, 1, (2, 5, 1)).astype(np.float32)
        seg = [
            Segment(obs=o, actions=np.zeros(5, np.int64), true_rewards=o[:, 0], absorbing=np.zeros(5, bool))
            for o in (a, b)
        ]
        label = float(a.sum() > b.sum())
        flip = rng.random() < mistakes
        out.append(Comparison(Query(*seg), 1.0 - label if flip else label))
        wrong.append(flip)
    return out, np.array(wrong)


def test_rime_fits_through_a_quarter_of_mistaken_labels_and_flips_mostly_mistakes():
    import gymnasium as gym

    from rlhf_gym.reward.model import RewardModel

    feedback, wrong = _pairs(200, 0, 0.25)
    test, _ = _pairs(200, 1, 0.0)
    space = gym.spaces.Box(-1, 1, (1,), np.float32)
    cfg = dict(use_actions=False, noise_robust=0.0, n_steps=400, hidden_sizes=(16,))
    accuracy, reports = {}, {}
    for rime in (False, True):
        model = RewardModel(space, gym.spaces.Discrete(1), RewardModelConfig(rime=rime, **cfg), seed=0)
        reports[rime] = model.fit(feedback)
        if rime:  # what its last pass flipped: under the fitted ensemble, the labels it gives < 0.1%
            given = torch.tensor([c.label for c in feedback])
            p_given = torch.from_numpy(model.preference_probabilities([c.query for c in feedback]).mean(0))
            flipped = (label_kl(given, p_given) > -math.log(1e-3)).numpy()
        p = model.preference_probabilities([c.query for c in test]).mean(0)
        accuracy[rime] = float(np.mean((p > 0.5) == np.array([c.label for c in test])))
    assert math.isnan(reports[False].trusted)
    assert 0.5 < reports[True].trusted < 0.95 and reports[True].flipped > 0.05
    assert flipped.sum() >= 10 and wrong[flipped].mean() > 0.9  # mostly the teacher's mistakes
    assert accuracy[True] >= accuracy[False] - 0.01 and accuracy[True] > 0.9
