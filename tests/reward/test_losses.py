import math

import pytest
import torch

from rlhf_gym.reward.losses import comparison_loss, preference_probability


def test_bradley_terry_closed_form():
    p = preference_probability(torch.tensor([2.0]), torch.tensor([0.5]))
    assert float(p) == pytest.approx(math.exp(2.0) / (math.exp(2.0) + math.exp(0.5)))


def test_noise_robust_mixture():
    p = preference_probability(torch.tensor([50.0]), torch.tensor([0.0]), noise=0.1)
    assert float(p) == pytest.approx(0.95)


def test_tie_loss_is_minimal_at_equal_returns():
    w = torch.ones(1, 1)
    half = torch.tensor([0.5])
    at_equal = comparison_loss(torch.zeros(1, 1), torch.zeros(1, 1), half, w)
    apart = comparison_loss(torch.ones(1, 1), torch.zeros(1, 1), half, w)
    assert float(at_equal) == pytest.approx(math.log(2))
    assert float(apart) > float(at_equal)


def test_weights_select_items():
    r1, r2 = torch.tensor([[3.0, -3.0]]), torch.zeros(1, 2)
    labels = torch.tensor([1.0, 1.0])
    only_good = comparison_loss(r1, r2, labels, torch.tensor([[1.0, 0.0]]))
    assert float(only_good) == pytest.approx(-math.log(1 / (1 + math.exp(-3))), rel=1e-5)
    noisy = comparison_loss(r1, r2, labels, torch.tensor([[1.0, 0.0]]), noise=0.1)
    assert float(noisy) == pytest.approx(-math.log(0.9 / (1 + math.exp(-3)) + 0.05), rel=1e-5)


def test_ordinal_likelihood_prefers_the_level_the_score_falls_in():
    from rlhf_gym.reward.losses import ordinal_loss, ordinal_probabilities

    cut = torch.tensor([[-1.0, 1.0]])  # three levels
    p = ordinal_probabilities(torch.tensor([[-3.0, 0.0, 3.0]]), cut, torch.ones(1))
    assert p.argmax(-1).tolist() == [[0, 1, 2]]
    assert torch.allclose(p.sum(-1), torch.ones(1, 3))
    good = ordinal_loss(torch.tensor([[3.0]]), torch.tensor([2]), cut, torch.ones(1), torch.ones(1, 1))
    bad = ordinal_loss(torch.tensor([[-3.0]]), torch.tensor([2]), cut, torch.ones(1), torch.ones(1, 1))
    assert good < bad
    noisy = ordinal_probabilities(torch.tensor([[50.0]]), cut, torch.ones(1), noise=0.3)
    assert noisy.min() == pytest.approx(0.1)  # a 30% chance of a uniformly random level


@pytest.mark.parametrize("levels", [2, 3, 5, 10])
def test_initial_ordinal_thresholds_are_one_apart_and_centred_on_zero(levels):
    from rlhf_gym.reward.losses import ordinal_thresholds

    # K levels have K-1 thresholds; centred on zero, the first is -(K-2)/2 (one threshold at 0 for
    # TAMER's two keys), so a score of 0 sits in the middle of the scale before any fitting
    cut = ordinal_thresholds(torch.zeros(2, levels - 1))
    expected = torch.arange(levels - 1, dtype=torch.float32) - (levels - 2) / 2
    torch.testing.assert_close(cut, expected.expand(2, -1))
