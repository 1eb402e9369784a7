import dataclasses
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlhf_gym.config import RewardModelConfig
from rlhf_gym.reward.model import RewardModel
from rlhf_gym.types import Comparison, Query, Segment
from tests.conftest import known_reward_comparisons

CFG = RewardModelConfig(hidden_sizes=(16,), n_steps=150, batch_size=64)


def cartpole_spaces():
    env = gym.make("CartPole-v1")
    return env.observation_space, env.action_space


def test_learns_a_known_reward_above_chance():
    rng = np.random.default_rng(0)
    rm = RewardModel(*cartpole_spaces(), CFG, seed=0)
    report = rm.fit(known_reward_comparisons(120, rng))
    assert report.train_accuracy > 0.9
    assert report.heldout_accuracy > 0.8
    test = known_reward_comparisons(200, np.random.default_rng(1))
    p = rm.preference_probabilities([c.query for c in test]).mean(0)
    accuracy = np.mean((p > 0.5) == np.array([c.label == 1.0 for c in test]))
    assert accuracy > 0.85
    # predicted reward correlates with the true reward r(s) = s[0]
    obs = rng.normal(size=(500, 4)).astype(np.float32)
    r = rm(obs, np.zeros(500, int), np.zeros(500, bool))
    assert np.corrcoef(r, obs[:, 0])[0, 1] > 0.8


def test_ensemble_runs_batched_with_one_output_per_member():
    rm = RewardModel(*cartpole_spaces(), RewardModelConfig(ensemble_size=5, hidden_sizes=(8,)))
    r = rm.member_rewards(np.zeros((7, 4), np.float32), np.zeros(7, int), np.zeros(7, bool))
    assert r.shape == (5, 7)
    assert len({round(float(v), 6) for v in r[:, 0]}) == 5  # members differ


def test_absorbing_reward_is_learned_and_shifted_to_zero():
    # live steps are good (true reward 1), absorbing steps are worth 0: prefer fewer absorbing steps
    rng = np.random.default_rng(0)
    comps = []
    for _ in range(60):
        segs = []
        for _ in range(2):
            k = int(rng.integers(1, 6))
            absorbing = np.arange(5) >= k
            segs.append(
                Segment(
                    rng.normal(size=(5, 4)).astype(np.float32),
                    np.zeros(5, int),
                    (~absorbing).astype(float),
                    absorbing,
                )
            )
        a, b = segs
        label = 0.5 if a.true_return == b.true_return else float(a.true_return > b.true_return)
        comps.append(Comparison(Query(a, b), label))
    rm = RewardModel(*cartpole_spaces(), CFG)
    rm.fit(comps)
    live = rm(rng.normal(size=(100, 4)).astype(np.float32), np.zeros(100, int), np.zeros(100, bool))
    dead = rm(np.zeros((3, 4), np.float32), np.zeros(3, int), np.ones(3, bool))
    np.testing.assert_allclose(dead, 0.0, atol=1e-5)
    assert live.mean() > 0.5  # alive is better than the end, so living pays
    assert np.sqrt(np.mean(live**2)) == pytest.approx(1.0, rel=0.3)


def test_a_pessimistic_reward_is_the_mean_less_k_member_deviations_and_ending_stays_zero():
    rng = np.random.default_rng(0)
    comps = known_reward_comparisons(60, rng)
    obs = rng.normal(size=(50, 4)).astype(np.float32)
    no_actions, live = np.zeros(50, int), np.zeros(50, bool)
    plain = RewardModel(*cartpole_spaces(), CFG, seed=0)
    plain.fit(comps)
    cautious = RewardModel(*cartpole_spaces(), dataclasses.replace(CFG, pessimism=2.0), seed=0)
    cautious.fit(comps)
    members = cautious.member_rewards(obs, no_actions, live)  # the same fit: pessimism acts after it
    np.testing.assert_allclose(members, plain.member_rewards(obs, no_actions, live), rtol=1e-6)
    # each member's reward about its own absorbing reward (its zero), then mean less 2 std
    ends = cautious.member_rewards(obs, no_actions, np.ones(50, bool))
    centred = members - ends
    np.testing.assert_allclose(
        cautious(obs, no_actions, live) * cautious.scale, centred.mean(0) - 2.0 * centred.std(0), atol=1e-5
    )
    # scaled on the reward the agent gets: unit root-mean-square over the labelled live steps
    segments = {id(s): s for c in comps for s in (c.query.first, c.query.second)}.values()  # each once
    labelled = np.concatenate([s.obs for s in segments]), np.concatenate([s.actions for s in segments])
    r = cautious(*labelled, np.zeros(len(labelled[0]), bool))  # (the segments hold no absorbing step)
    assert np.sqrt(np.mean(r.astype(np.float64) ** 2)) == pytest.approx(1.0, rel=1e-4)
    dead = cautious(np.zeros((2, 4), np.float32), np.zeros(2, int), np.ones(2, bool))
    np.testing.assert_allclose(dead, 0.0, atol=1e-5)
    with pytest.raises(ValueError, match="pessimism"):
        RewardModelConfig(pessimism=-1.0)


def test_an_absorbing_reward_no_label_held_is_neutral_not_arbitrary():
    # live-only labels fix the live rewards up to a constant; the absorbing state is unidentified
    live_only = known_reward_comparisons(80, np.random.default_rng(0))
    assert not any(s.absorbing.any() for c in live_only for s in (c.query.first, c.query.second))
    rm = RewardModel(*cartpole_spaces(), CFG, seed=0)
    report = rm.fit(live_only)
    assert report.absorbing_identified == 0.0
    # each member's absorbing reward is its own mean live reward over the labelled steps
    steps = [s for c in live_only for s in (c.query.first, c.query.second)]
    obs, actions = np.concatenate([s.obs for s in steps]), np.concatenate([s.actions for s in steps])
    members = rm.member_rewards(obs, actions, np.zeros(len(obs), bool))
    np.testing.assert_allclose(rm.absorbing_reward.numpy(), members.mean(1), rtol=1e-4, atol=1e-5)
    # so ending is worth exactly an average live step to the agent: zero after the shift
    dead = rm(np.zeros((3, 4), np.float32), np.zeros(3, int), np.ones(3, bool))
    live = rm(obs, actions, np.zeros(len(obs), bool))
    np.testing.assert_allclose(dead, 0.0, atol=1e-5)
    assert live.mean() == pytest.approx(0.0, abs=1e-4)


def test_a_pair_with_equal_absorbing_steps_on_both_sides_does_not_identify_it():
    # absorbing steps that both sides hold equally cancel in R1 - R2: no gradient reaches that reward
    rng = np.random.default_rng(0)
    feedback = known_reward_comparisons(40, rng)
    absorbing = np.arange(5) >= 2
    a, b = (
        Segment(rng.normal(size=(5, 4)).astype(np.float32), np.zeros(5, int), np.ones(5), absorbing)
        for _ in "ab"
    )
    feedback.append(Comparison(Query(a, b), 0.5))
    rm = RewardModel(*cartpole_spaces(), CFG, seed=0)
    assert rm.fit(feedback).absorbing_identified == 0.0
    assert not np.any(rm.absorbing_reward.numpy() == 0.0)  # none is left at its untrained level


def test_labels_with_absorbing_steps_identify_it_in_every_member():
    rng = np.random.default_rng(0)
    comps = []
    for _ in range(60):
        a, b = (
            Segment(
                rng.normal(size=(5, 4)).astype(np.float32),
                np.zeros(5, int),
                np.r_[1.0, 1, 0, 0, 0],
                np.arange(5) >= 2,
            ),
            Segment(
                rng.normal(size=(5, 4)).astype(np.float32), np.zeros(5, int), np.ones(5), np.zeros(5, bool)
            ),
        )
        comps.append(Comparison(Query(a, b), 0.0))
    rm = RewardModel(*cartpole_spaces(), CFG, seed=0)
    assert rm.fit(comps).absorbing_identified == 1.0
    dead = rm(np.zeros((3, 4), np.float32), np.zeros(3, int), np.ones(3, bool))
    live = rm(rng.normal(size=(100, 4)).astype(np.float32), np.zeros(100, int), np.zeros(100, bool))
    assert live.mean() > 0.5 and np.allclose(dead, 0.0, atol=1e-5)  # living is learned to pay


def test_discrete_observations_and_box_actions():
    obs_space = gym.spaces.Discrete(6)
    act_space = gym.spaces.Box(-2.0, 2.0, (2,))
    rm = RewardModel(obs_space, act_space, RewardModelConfig(hidden_sizes=(4,)))
    x = rm.features(np.array([0, 5]), np.array([[2.0, -2.0], [0.0, 0.0]]))
    assert x.shape == (2, 8)
    np.testing.assert_allclose(x[0, 6:], [1.0, -1.0])


def test_checkpoint_round_trip(tmp_path):
    rm = RewardModel(*cartpole_spaces(), CFG, seed=3)
    rm.fit(known_reward_comparisons(20, np.random.default_rng(0)))
    rm.save(tmp_path / "rm")
    assert (tmp_path / "rm.safetensors").is_file() and (tmp_path / "rm.json").is_file()
    loaded = RewardModel.load(tmp_path / "rm", *cartpole_spaces())
    obs = np.random.default_rng(1).normal(size=(10, 4)).astype(np.float32)
    args = (obs, np.ones(10, int), np.zeros(10, bool))
    np.testing.assert_allclose(loaded(*args), rm(*args), rtol=1e-6)


def test_checkpoint_for_other_spaces_is_a_clear_error(tmp_path):
    rm = RewardModel(*cartpole_spaces(), CFG)
    rm.save(tmp_path / "rm")
    pendulum = gym.make("Pendulum-v1")
    with pytest.raises(ValueError, match="trained for observation space"):
        RewardModel.load(tmp_path / "rm", pendulum.observation_space, pendulum.action_space)


def test_corrupt_or_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError):
        RewardModel.load(tmp_path / "nothing", *cartpole_spaces())
    rm = RewardModel(*cartpole_spaces(), CFG)
    rm.save(tmp_path / "rm")
    (tmp_path / "rm.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(ValueError, match="corrupt"):
        RewardModel.load(tmp_path / "rm", *cartpole_spaces())


@pytest.mark.parametrize(
    "meta, tensor, message",
    [
        ({"seed": "zero"}, None, "seed must be a non-negative integer, got 'zero'"),
        ({"scale": 0}, None, "scale must be positive, got 0"),
        ({"shift": float("nan")}, None, "shift must be a finite number"),
        ({}, ("obs_std", 0.0), "obs_std must be positive everywhere"),
        ({}, ("w0", float("nan")), "tensor w0 holds NaN or inf"),
        ({}, ("absorbing_reward", float("inf")), "tensor absorbing_reward holds NaN or inf"),
    ],
)
def test_a_checkpoint_with_poisoned_values_is_refused(tmp_path, meta, tensor, message):
    """Values that would poison a run (NaN mid-run, a division by zero) are refused at load."""
    import json

    from safetensors.numpy import load_file, save_file

    rm = RewardModel(*cartpole_spaces(), CFG)
    rm.save(tmp_path / "rm")
    stored = json.loads((tmp_path / "rm.json").read_text())
    (tmp_path / "rm.json").write_text(json.dumps(stored | meta))
    if tensor is not None:
        tensors = load_file(str(tmp_path / "rm.safetensors"))
        tensors[tensor[0]] = np.full_like(tensors[tensor[0]], tensor[1])
        save_file(tensors, str(tmp_path / "rm.safetensors"))
    with pytest.raises(ValueError, match="corrupt: " + message.replace("(", r"\(")):
        RewardModel.load(tmp_path / "rm", *cartpole_spaces())


def test_a_checkpoint_whose_config_claims_a_huge_model_is_refused_before_building_it(tmp_path):
    import json

    rm = RewardModel(*cartpole_spaces(), CFG)
    rm.save(tmp_path / "rm")
    stored = json.loads((tmp_path / "rm.json").read_text())
    stored["config"]["hidden_sizes"] = [4096, 4096]
    stored["config"]["ensemble_size"] = 64  # about 4 GB of weights, never allocated
    (tmp_path / "rm.json").write_text(json.dumps(stored))
    with pytest.raises(ValueError, match=r"config states 64 members with layer widths \[4096, 4096, 1\]"):
        RewardModel.load(tmp_path / "rm", *cartpole_spaces())


def test_a_checkpoint_is_written_atomically(tmp_path, monkeypatch):
    """A failing write leaves the last good checkpoint whole."""
    import safetensors.numpy

    rm = RewardModel(*cartpole_spaces(), CFG, seed=3)
    rm.save(tmp_path / "rm")
    before = (tmp_path / "rm.safetensors").read_bytes()

    def full_disk(tensors, path):
        Path(path).write_bytes(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("rlhf_gym.reward.checkpoints.save_file", full_disk)
    with pytest.raises(OSError):
        rm.save(tmp_path / "rm")
    assert (tmp_path / "rm.safetensors").read_bytes() == before and safetensors.numpy is not None
    RewardModel.load(tmp_path / "rm", *cartpole_spaces())


def test_fit_without_labels_is_an_error():
    with pytest.raises(ValueError, match="without feedback"):
        RewardModel(*cartpole_spaces(), CFG).fit([])


def test_a_members_inputs_are_normalised_on_its_own_bootstrap_sample():
    """A label a member never trained on (out of bag) judges that member's held-out accuracy, so
    it must not shape the member at all, its input normaliser included: moving the observations
    of one label leaves exactly the members whose bootstrap sample left it out unchanged."""
    comps = known_reward_comparisons(20, np.random.default_rng(0))
    first = comps[0].query.first
    moved = Segment(first.obs * 5 + 20, first.actions, first.true_rewards, first.absorbing)
    changed = [Comparison(Query(moved, comps[0].query.second), comps[0].label), *comps[1:]]
    cfg = RewardModelConfig(ensemble_size=5, hidden_sizes=(8,), n_steps=30, batch_size=64)
    obs = np.random.default_rng(1).normal(size=(50, 4)).astype(np.float32)
    rewards = []
    for feedback in (comps, changed):
        rm = RewardModel(*cartpole_spaces(), cfg, seed=3)
        rm.fit(feedback)
        rewards.append(rm.member_rewards(obs, np.zeros(50, int), np.zeros(50, bool)))
    same = np.isclose(rewards[0], rewards[1], rtol=0, atol=1e-5).all(1)
    assert same.any() and not same.all()


def test_with_an_input_box_each_member_scores_past_its_labels_as_at_their_edge():
    """Past the labelled states the reward neither grows nor falls (``input_box``): each member
    clips what it scores to the range of its own bootstrap sample; without the box the MLP
    extrapolates, and a state far past the labels is worth far more than any labelled one."""
    comps = known_reward_comparisons(60, np.random.default_rng(0))  # true reward s[0]
    labelled = np.concatenate([s.obs for c in comps for s in (c.query.first, c.query.second)])
    far = np.zeros((2, 4), np.float32)
    far[:, 0] = labelled[:, 0].max() + np.array([0.0, 50.0])  # the edge, and far beyond it
    args = (far, np.zeros(2, int), np.zeros(2, bool))
    cfg = dataclasses.replace(CFG, ensemble_size=3)
    free = RewardModel(*cartpole_spaces(), cfg, seed=0)
    free.fit(comps)
    boxed = RewardModel(*cartpole_spaces(), dataclasses.replace(cfg, input_box=True), seed=0)
    boxed.fit(comps)
    members = boxed.member_rewards(*args)
    assert (members[:, 1] <= members[:, 0] + 1e-6).all()  # nothing gained past the edge
    assert free.member_rewards(*args)[:, 1].min() > free.member_rewards(*args)[:, 0].max() + 1.0
    # each member's box is its own bootstrap sample's range, not all labels'
    low, high = boxed.in_low.numpy(), boxed.in_high.numpy()
    assert (high[:, :4] <= labelled.max(0)).all() and (low[:, :4] >= labelled.min(0)).all()
    assert (high[:, :4] < labelled.max(0)).any() and (low[:, 4:] < -1e30).all()
    assert not np.array_equal(high[0], high[1])
    # RUNE's spread sees past the box: the members' unclipped disagreement
    unclipped = boxed.member_rewards(*args, boxed=False)
    assert (unclipped[:, 1] > members[:, 1]).all()
    expected = (unclipped - boxed._np_abs[:, None]).std(0) / boxed.scale
    np.testing.assert_allclose(boxed.spread(*args), expected, rtol=1e-5)


def test_an_input_box_leaves_discrete_observations_unclipped():
    obs_space, act_space = gym.spaces.Discrete(6), gym.spaces.Discrete(2)
    rng = np.random.default_rng(0)
    comps = []
    for _ in range(20):
        a, b = (
            Segment(rng.integers(0, 3, 5), rng.integers(0, 2, 5), np.zeros(5), np.zeros(5, bool))
            for _ in "ab"
        )
        comps.append(Comparison(Query(a, b), float(a.obs.sum() > b.obs.sum())))
    rm = RewardModel(obs_space, act_space, dataclasses.replace(CFG, input_box=True), seed=0)
    rm.fit(comps)
    assert (rm.in_low < -1e30).all() and (rm.in_high > 1e30).all()  # one-hot states: nothing to clip
    assert rm._members.box is None


def test_an_input_box_survives_a_checkpoint_and_a_format_1_checkpoint_clips_nothing(tmp_path):
    import json

    from safetensors.numpy import load_file, save_file

    comps = known_reward_comparisons(30, np.random.default_rng(0))
    rm = RewardModel(*cartpole_spaces(), dataclasses.replace(CFG, input_box=True), seed=1)
    rm.fit(comps)
    rm.save(tmp_path / "rm")
    far = np.full((3, 4), 30.0, np.float32)
    args = (far, np.zeros(3, int), np.zeros(3, bool))
    np.testing.assert_allclose(RewardModel.load(tmp_path / "rm", *cartpole_spaces())(*args), rm(*args))
    meta = json.loads((tmp_path / "rm.json").read_text())
    tensors = load_file(str(tmp_path / "rm.safetensors"))
    (tmp_path / "rm.json").write_text(json.dumps(meta | {"format_version": 1}))
    save_file({k: v for k, v in tensors.items() if not k.startswith("in_")}, str(tmp_path / "rm.safetensors"))
    old = RewardModel.load(tmp_path / "rm", *cartpole_spaces())
    np.testing.assert_allclose(old.member_rewards(*args), rm.member_rewards(*args, boxed=False), rtol=1e-6)
    (tmp_path / "rm.json").write_text(json.dumps(meta | {"format_version": 3}))
    with pytest.raises(ValueError, match="format version 3; this rlhf-gym reads versions 1, 2"):
        RewardModel.load(tmp_path / "rm", *cartpole_spaces())
    (tmp_path / "rm.json").write_text(json.dumps(meta))
    save_file(tensors | {"in_low": tensors["in_high"] + 1}, str(tmp_path / "rm.safetensors"))
    with pytest.raises(ValueError, match="corrupt: in_low exceeds in_high"):
        RewardModel.load(tmp_path / "rm", *cartpole_spaces())


def test_an_input_that_never_varied_in_the_labels_is_centred_not_magnified():
    """A feature constant in every labelled step (a std of 0, floored) used to be divided by
    1e-3: moving it then moved the reward several times more than the real feature does."""
    comps = known_reward_comparisons(40, np.random.default_rng(0))
    for c in comps:
        for s in (c.query.first, c.query.second):
            s.obs[:, 3] = 0.25  # never varies
    rm = RewardModel(*cartpole_spaces(), CFG, seed=0)
    rm.fit(comps)
    obs = np.zeros((2, 4), np.float32)
    obs[:, 3] = [0.25, 1.25]  # the constant feature moved by 1
    r = rm(obs, np.zeros(2, int), np.zeros(2, bool))
    real = obs.copy()
    real[:, 3], real[:, 0] = 0.25, [0.0, 1.0]  # the real feature moved by 1
    step = rm(real, np.zeros(2, int), np.zeros(2, bool))
    assert abs(r[1] - r[0]) < 0.25 * abs(step[1] - step[0])  # (divided by 1e-3: about 5 times it)


def test_a_warm_fit_starts_from_the_last_fits_function_and_stops_once_it_judges_its_labels_right():
    feedback = known_reward_comparisons(140, np.random.default_rng(0))
    obs = np.random.default_rng(1).normal(size=(50, 4)).astype(np.float32)
    steps = (obs, np.zeros(50, int), np.zeros(50, bool))
    for warm in (False, True):
        rm = RewardModel(*cartpole_spaces(), dataclasses.replace(CFG, warm_start=warm), seed=0)
        assert rm.fit(feedback[:100]).steps == CFG.n_steps  # the first fit: fresh weights, every step
        before = rm.member_rewards(*steps)
        # a second fit on more labels (so other bootstrap samples and normalisers) that barely moves
        rm.config = dataclasses.replace(rm.config, learning_rate=1e-9)
        rm.fit(feedback)
        moved = np.abs(rm.member_rewards(*steps) - before).max()
        assert (moved < 1e-4) if warm else (moved > 0.1)
        rm.config = dataclasses.replace(rm.config, learning_rate=CFG.learning_rate)
        report = rm.fit(feedback)
        # oracle labels of r(s) = s[0]: a warm fit judges them right within a few passes of 3 steps
        assert (report.steps < CFG.n_steps / 3) if warm else (report.steps == CFG.n_steps)
        assert report.train_accuracy > 0.9


def test_a_warm_fit_runs_every_step_when_it_cannot_judge_its_labels_right():
    rng = np.random.default_rng(0)
    flipped = [dataclasses.replace(c, label=1.0 - c.label) for c in known_reward_comparisons(60, rng)]
    feedback = known_reward_comparisons(60, rng) + flipped  # half the labels contradict r(s) = s[0]
    rm = RewardModel(*cartpole_spaces(), dataclasses.replace(CFG, warm_start=True), seed=0)
    rm.fit(feedback[:100])
    assert rm.fit(feedback).steps == CFG.n_steps


def test_unfold_inverts_fold():
    from rlhf_gym.reward.normalise import fold, unfold

    gen = torch.Generator().manual_seed(0)
    w, b = torch.randn(3, 4, 5, generator=gen), torch.randn(3, 1, 5, generator=gen)
    mean, std = torch.randn(3, 4, generator=gen), torch.rand(3, 4, generator=gen) + 0.5
    w2, b2 = fold(*unfold(w, b, mean, std), mean, std)
    assert torch.allclose(w2, w, atol=1e-5) and torch.allclose(b2, b, atol=1e-5)
    w3, b3 = unfold(*fold(w, b, mean, std), mean, std)
    assert torch.allclose(w3, w, atol=1e-5) and torch.allclose(b3, b, atol=1e-5)


def test_a_warm_started_models_bootstrap_samples_only_grow():
    from rlhf_gym.reward.evidence import bootstrap_counts, gather

    feedback = known_reward_comparisons(60, np.random.default_rng(0))
    small, large = (bootstrap_counts(gather(feedback[:n]), 3, 0, n, True) for n in (40, 60))
    assert (large[:, :40] == small).all()  # each member's earlier labels: in or out of bag as before
    assert (small == 0).any() and (small > 0).any()
    # cold fits draw a new sample each time
    small, large = (bootstrap_counts(gather(feedback[:n]), 3, 0, n, False) for n in (40, 60))
    assert (large[:, :40] != small).any() and (small.sum(1) == 40).all()


def test_a_reward_learned_from_ties_alone_is_not_amplified_to_the_reward_scale():
    rng = np.random.default_rng(0)

    def segment():
        obs = rng.normal(size=(20, 4)).astype(np.float32)
        return Segment(obs, np.zeros(20, int), -np.ones(20), np.zeros(20, bool))

    ties = [Comparison(Query(segment(), segment()), 0.5) for _ in range(50)]
    informative = known_reward_comparisons(50, rng, length=20)
    obs = rng.normal(size=(500, 4)).astype(np.float32)
    for feedback, low, high in ((ties, 0.0, 0.5), (informative, 0.9, 1.1)):
        rm = RewardModel(*cartpole_spaces(), CFG, seed=0)
        rm.fit(feedback)
        rms = float(np.sqrt(np.mean(rm(obs, np.zeros(500, int), np.zeros(500, bool)) ** 2)))
        assert low <= rms <= high, rms  # ties: the members barely differ between states (rms < 1/20)
