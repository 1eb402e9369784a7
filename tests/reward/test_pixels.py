"""The reward model on image observations: the convolutional encoder, fits, checkpoints, storage."""

import numpy as np
import pytest
import torch
from gymnasium import spaces

from rlhf_gym.config import RewardModelConfig
from rlhf_gym.feedback.codec import decode_record, encode_record
from rlhf_gym.feedback.validate import check_record
from rlhf_gym.reward.model import RewardModel
from rlhf_gym.reward.pixels import Encoder, Layout, PixelSteps, feature_dim, image_layout
from rlhf_gym.types import Comparison, Query, Segment

SIDE = 36
FRAMES = spaces.Box(0, 255, (SIDE, SIDE, 2), np.uint8)


def test_image_spaces_are_sb3s_and_anything_else_is_not():
    assert image_layout(FRAMES) == Layout(2, SIDE, SIDE, False)
    assert image_layout(spaces.Box(0, 255, (4, 84, 84), np.uint8)) == Layout(4, 84, 84, True)
    for other in (
        spaces.Box(0, 1, (SIDE, SIDE, 2), np.float32),  # not uint8
        spaces.Box(0, 255, (SIDE * SIDE,), np.uint8),  # not rank 3
        spaces.Discrete(3),
    ):
        assert image_layout(other) is None
    with pytest.raises(ValueError, match="too small"):
        feature_dim(Layout(1, 12, 12, False))


def test_each_member_has_its_own_encoder():
    """The grouped convolutions keep members apart: changing member 1's weights changes its
    features only."""
    enc = Encoder.build(image_layout(FRAMES), members=3, gen=torch.Generator().manual_seed(0))
    frames = torch.randint(
        0, 256, (4, SIDE * SIDE * 2), dtype=torch.uint8, generator=torch.Generator().manual_seed(1)
    )
    before = enc(frames)
    assert before.shape == (3, 4, feature_dim(enc.layout))
    for w in enc.weights[1:]:  # the grouped layers: member 1's output channels
        per = w.shape[0] // 3
        w[per : 2 * per] += 0.5
    enc.weights[0][enc.weights[0].shape[0] // 3 : 2 * enc.weights[0].shape[0] // 3] += 0.5
    after = enc(frames)
    assert torch.equal(after[0], before[0]) and torch.equal(after[2], before[2])
    assert not torch.allclose(after[1], before[1])


def blob_segment(rng: np.random.Generator, left: bool, length: int = 20) -> Segment:
    """A bright 3x3 blob wandering in the left (reward 1 a step) or right half (reward 0)."""
    obs = np.zeros((length, SIDE, SIDE, 2), np.uint8)
    for t in range(length):
        x = rng.integers(0, SIDE // 2 - 3) + (0 if left else SIDE // 2)
        y = rng.integers(0, SIDE - 3)
        obs[t, y : y + 3, x : x + 3, :] = 200
    return Segment(obs, rng.integers(0, 3, length), np.full(length, float(left)), np.zeros(length, bool))


def blob_pairs(rng: np.random.Generator, n: int) -> list[Comparison]:
    out = []
    for _ in range(n):
        first_left = bool(rng.integers(2))
        query = Query(blob_segment(rng, first_left), blob_segment(rng, not first_left))
        out.append(Comparison(query, 1.0 if first_left else 0.0))
    return out


def test_a_pixel_reward_model_learns_where_the_reward_is():
    rng = np.random.default_rng(0)
    train, test = blob_pairs(rng, 40), blob_pairs(rng, 40)
    rm = RewardModel(FRAMES, spaces.Discrete(3), RewardModelConfig(use_actions=False), seed=0)
    assert rm.encoder is not None and isinstance(
        rm._inputs(train[0].query.first.obs, np.zeros(20)), PixelSteps
    )
    report = rm.fit(train)
    assert report.train_accuracy == 1.0
    p = rm.preference_probabilities([c.query for c in test]).mean(0)
    labels = np.array([c.label for c in test])
    assert ((p > 0.5) == (labels > 0.5)).mean() >= 0.95
    # the agent's reward: higher for a frame with the blob on the left; a batch of steps in one call
    left, right = blob_segment(rng, True).obs, blob_segment(rng, False).obs
    r = rm(np.concatenate([left, right]), np.zeros(40, int), np.zeros(40, bool))
    assert r.shape == (40,) and r.dtype == np.float32 and r[:20].mean() > r[20:].mean()


def test_actions_join_the_encoded_frames():
    """With ``use_actions`` a Box action reaches the MLP: two steps differing only in the action
    score differently."""
    rm = RewardModel(FRAMES, spaces.Box(-1, 1, (2,)), RewardModelConfig(), seed=0)
    assert rm.input_dim == feature_dim(image_layout(FRAMES)) + 2
    obs = np.zeros((2, SIDE, SIDE, 2), np.uint8)
    r = rm.member_rewards(obs, np.array([[1.0, 0.0], [-1.0, 0.0]], np.float32), np.zeros(2, bool))
    assert r.shape == (3, 2) and not np.allclose(r[:, 0], r[:, 1])


def test_many_frames_are_scored_in_chunks_with_the_same_result():
    rm = RewardModel(FRAMES, spaces.Discrete(3), RewardModelConfig(use_actions=False), seed=0)
    obs = np.random.default_rng(0).integers(0, 256, (2500, SIDE, SIDE, 2), dtype=np.uint8)
    whole = rm.member_rewards(obs, np.zeros(2500, int), np.zeros(2500, bool))
    parts = np.concatenate(
        [
            rm.member_rewards(obs[i : i + 500], np.zeros(500, int), np.zeros(500, bool))
            for i in range(0, 2500, 500)
        ],
        axis=1,
    )
    np.testing.assert_allclose(whole, parts, rtol=1e-5, atol=1e-6)


def test_pixel_checkpoints_round_trip_and_refuse_other_frames(tmp_path):
    rng = np.random.default_rng(0)
    rm = RewardModel(FRAMES, spaces.Discrete(3), RewardModelConfig(use_actions=False), seed=0)
    rm.fit(blob_pairs(rng, 8))
    rm.save(tmp_path / "rm")
    back = RewardModel.load(tmp_path / "rm", FRAMES, spaces.Discrete(3))
    obs = blob_segment(rng, True).obs
    np.testing.assert_array_equal(
        back(obs, np.zeros(20, int), np.zeros(20, bool)), rm(obs, np.zeros(20, int), np.zeros(20, bool))
    )
    with pytest.raises(ValueError, match="observation space"):
        RewardModel.load(tmp_path / "rm", spaces.Box(0, 255, (SIDE, SIDE, 4), np.uint8), spaces.Discrete(3))


def test_image_segments_are_stored_as_uint8_frames():
    """A comparison of image segments passes the import checks and survives the store's encoding
    as uint8 frames, never floats."""
    rng = np.random.default_rng(0)
    record = blob_pairs(rng, 1)[0]
    check_record(record, FRAMES, spaces.Discrete(3))
    text, blob = encode_record(record)
    assert len(blob) < 2 * 20 * SIDE * SIDE * 2 + 10_000  # the frames' bytes and a header, no float copy
    back = decode_record("comparison", text, blob)
    assert back.query.first.obs.dtype == np.uint8
    np.testing.assert_array_equal(back.query.first.obs, record.query.first.obs)


def test_a_checkpoint_with_tensors_of_another_dtype_is_refused(tmp_path):
    from safetensors.numpy import load_file, save_file

    rm = RewardModel(FRAMES, spaces.Discrete(3), RewardModelConfig(use_actions=False), seed=0)
    rm.save(tmp_path / "rm")
    tensors = load_file(str(tmp_path / "rm.safetensors"))
    tensors["c0"] = tensors["c0"].astype(np.float64)
    save_file(tensors, str(tmp_path / "rm.safetensors"))
    with pytest.raises(ValueError, match="tensor c0 is float64; expected float32"):
        RewardModel.load(tmp_path / "rm", FRAMES, spaces.Discrete(3))
