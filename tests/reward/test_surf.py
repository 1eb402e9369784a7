import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch

import rlhf_gym.reward.surf as surf_module
from rlhf_gym.config import RewardModelConfig
from rlhf_gym.reward.model import RewardModel
from rlhf_gym.reward.surf import BATCH_RATIO, UNLABELED_PER_LABEL, crop_mask, pseudo_label_loss
from tests.conftest import known_reward_comparisons, tiny_run

CFG = RewardModelConfig(hidden_sizes=(16,), n_steps=60, batch_size=16, surf_threshold=0.9)


def spaces():
    env = gym.make("CartPole-v1")
    return env.observation_space, env.action_space


def test_crops_keep_one_window_per_segment_of_the_same_length_in_both_segments_of_a_pair():
    m = crop_mask(500, 20, torch.Generator().manual_seed(0))
    kept = m.sum(1)
    assert torch.equal(kept[0::2], kept[1::2])
    assert set(kept.tolist()) == set(range(16, 21))  # 20 - 2 ceil(20 / 10) to 20 steps
    # each row's ones are contiguous: one window
    assert torch.all((m[:, 1:] - m[:, :-1]).abs().sum(1) <= 2)
    assert m[:, 0].any() and m[:, -1].any() and not m[:, 0].all()  # starts vary


def test_pseudo_labels_are_each_members_own_confident_guess_on_the_whole_segments():
    guess = torch.tensor([[4.0, -4.0, 0.1], [-4.0, 4.0, 0.1]])  # member 2 disagrees, surely
    cropped = torch.tensor([[1.0, -1.0, 3.0], [-1.0, 1.0, 3.0]])  # what the crops give
    loss = pseudo_label_loss(cropped, torch.zeros_like(cropped), guess, 0.95)
    # each member is sure of pairs 1 and 2 (each its own way), unsure of pair 3; trained on the crops
    expected = 2 * torch.nn.functional.softplus(torch.tensor(-1.0)) / 3
    assert torch.allclose(loss, expected.expand(2))


def test_a_surf_fit_adds_cropped_pseudo_labelled_pairs_to_every_step_and_still_learns(monkeypatch):
    calls: list[tuple[int, float]] = []
    real = surf_module.pseudo_label_loss

    def spy(first, second, guess, threshold):
        calls.append((first.shape[1], threshold))
        assert not guess.requires_grad and first.requires_grad
        return real(first, second, guess, threshold)

    monkeypatch.setattr(surf_module, "pseudo_label_loss", spy)
    rng = np.random.default_rng(0)
    labelled = known_reward_comparisons(40, rng)
    unlabeled = [c.query for c in known_reward_comparisons(400, rng)]
    rm = RewardModel(*spaces(), CFG, seed=0)
    report = rm.fit(labelled, unlabeled)
    assert calls == [(BATCH_RATIO * 16, 0.9)] * 60
    assert report.heldout_accuracy > 0.7
    test = known_reward_comparisons(300, np.random.default_rng(1))
    p = rm.preference_probabilities([c.query for c in test]).mean(0)
    assert np.mean((p > 0.5) == np.array([c.label == 1.0 for c in test])) > 0.8
    calls.clear()
    plain = RewardModel(*spaces(), dataclasses.replace(CFG, surf_threshold=0.0), seed=0)
    plain.fit(labelled, unlabeled)  # off: the unlabelled pairs are not used
    assert calls == []


def test_the_loop_gives_a_surf_fit_unlabelled_pairs_of_its_recent_segments(monkeypatch):
    given: list[int] = []
    real = RewardModel.fit

    def spy(self, feedback, unlabeled=()):
        given.append((len(feedback), len(unlabeled), {len(q.first) for q in unlabeled}))
        return real(self, feedback, unlabeled)

    monkeypatch.setattr(RewardModel, "fit", spy)
    run = tiny_run(reward_model={"surf_threshold": 0.95, "n_steps": 20})
    run.learn()
    assert given and all(u == UNLABELED_PER_LABEL * n and h == {10} for n, u, h in given)


def test_the_threshold_is_a_probability_above_a_half():
    with pytest.raises(ValueError, match="surf_threshold must be 0 or in"):
        RewardModelConfig(surf_threshold=0.4)
