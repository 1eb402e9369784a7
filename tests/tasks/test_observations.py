"""Image preprocessing as presets state it, and the defaults of image ids without a preset."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from rlhf_gym.tasks.observations import Grayscale, Resize, StackFrames, check, image_defaults, preprocess
from rlhf_gym.tasks.registry import get_task


class Frames(gym.Env):
    """Frames whose pixels count the steps: frame t is t everywhere (channel c holds t + c)."""

    def __init__(self, shape=(8, 6, 3)):
        self.observation_space = spaces.Box(0, 255, shape, np.uint8)
        self.action_space = spaces.Discrete(2)
        self.t = 0

    def _frame(self):
        frame = np.full(self.observation_space.shape, self.t, np.uint8)
        if frame.ndim == 3:
            frame += np.arange(frame.shape[2], dtype=np.uint8)
        return frame

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return self._frame(), {}

    def step(self, action):
        self.t += 1
        return self._frame(), 0.0, False, False, {}


def test_grayscale_is_luminance_with_a_channel_axis():
    env = Grayscale(Frames())
    obs, _ = env.reset()
    assert obs.shape == (8, 6, 1) and obs.dtype == np.uint8
    assert obs[0, 0, 0] == round(0 * 0.299 + 1 * 0.587 + 2 * 0.114)
    assert Grayscale(Frames((8, 6))).reset()[0].shape == (8, 6, 1)  # a grey frame gets its channel


def test_resize_averages_each_block():
    class Quadrants(Frames):
        def _frame(self):
            frame = np.zeros((4, 4, 1), np.uint8)
            frame[:2, :2], frame[:2, 2:], frame[2:, :2], frame[2:, 2:] = 10, 20, 30, 40
            frame[0, 0] = 14  # the top-left block averages 11
            return frame

    env = Resize(Quadrants((4, 4, 1)), (2, 2))
    assert env.observation_space.shape == (2, 2, 1)
    np.testing.assert_array_equal(env.reset()[0][..., 0], [[11, 20], [30, 40]])
    bigger = Resize(Frames((7, 5, 3)), (16, 16)).reset()[0]  # blocks of one pixel, repeated
    assert bigger.shape == (16, 16, 3) and (bigger[..., 2] == 2).all()


def test_frames_are_stacked_oldest_first_and_a_reset_fills_every_slot():
    env = StackFrames(Grayscale(Frames((4, 4))), 3)
    assert env.observation_space.shape == (4, 4, 3)
    assert env.reset()[0][0, 0].tolist() == [0, 0, 0]
    env.step(0)
    assert env.step(0)[0][0, 0].tolist() == [0, 1, 2]
    assert env.step(0)[0][0, 0].tolist() == [1, 2, 3]
    assert env.reset()[0][0, 0].tolist() == [0, 0, 0]


def test_preprocess_applies_grey_resize_stack_in_that_order():
    env = preprocess(Frames((64, 48, 3)), {"grayscale": True, "resize": [32, 24], "frame_stack": 4})
    obs, _ = env.reset()
    assert obs.shape == (32, 24, 4) and env.observation_space.contains(obs)
    assert preprocess(Frames(), {}).observation_space.shape == (8, 6, 3)  # nothing asked, nothing done
    with pytest.raises(ValueError, match="needs uint8 frames"):
        preprocess(gym.make("CartPole-v1"), {"frame_stack": 2})


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"framestack": 2}, "unknown observation setting 'framestack'"),
        ({"frame_stack": 0}, "frame_stack .* must be 1 to 16"),
        ({"frame_stack": True}, "frame_stack .* must be 1 to 16"),
        ({"resize": [8, 8]}, r"resize .* must be \[height, width\], each 16 to 512"),
        ({"resize": 64}, r"resize .* must be \[height, width\]"),
        ({"grayscale": "yes"}, "grayscale .* must be true or false"),
        ([2], "must be a mapping"),
    ],
)
def test_bad_settings_are_named(spec, message):
    with pytest.raises(ValueError, match=message):
        check(spec, "task preset X.yaml")


def test_a_preset_with_a_bad_observation_setting_is_refused(tmp_path, monkeypatch):
    (tmp_path / "Odd.yaml").write_text("env_id: CartPole-v1\nobservation: {frame_stack: 99}\n")
    monkeypatch.setenv("RLHF_GYM_PRESETS", str(tmp_path))
    with pytest.raises(ValueError, match=r"frame_stack in task preset Odd\.yaml must be 1 to 16"):
        get_task("Odd")


def test_image_ids_without_a_preset_take_the_usual_preprocessing():
    rgb = spaces.Box(0, 255, (96, 96, 3), np.uint8)
    assert image_defaults(rgb, atari=False) == {"frame_stack": 2, "grayscale": True, "resize": [64, 64]}
    assert image_defaults(spaces.Box(0, 255, (210, 160), np.uint8), atari=True) == {
        "resize": [84, 84],
        "frame_stack": 4,
    }
    assert image_defaults(spaces.Box(-1, 1, (4,)), atari=False) == {}
    breakout = get_task("ALE/Breakout-v5")
    assert breakout.env_kwargs == {"obs_type": "grayscale"}
    obs, _ = breakout.make("fixed").reset(seed=0)
    assert obs.shape == (84, 84, 4) and obs.dtype == np.uint8 and obs.max() > 0


def test_the_project_pixel_tasks_see_stacked_frames():
    for name in ("CatchPixels-v0", "PongPixels-v0"):
        env = get_task(name).make("fixed")
        obs, _ = env.reset(seed=0)
        assert obs.shape == (36, 36, 2) and obs.dtype == np.uint8
        np.testing.assert_array_equal(obs[..., 0], obs[..., 1])  # a reset fills both slots


def test_a_snapshot_keeps_the_stacked_frames():
    """Corrections restore a state and replay from it: the stack of frames is part of that state."""
    task = get_task("CatchPixels-v0")
    env, other = task.make("fixed"), task.make("fixed")
    obs, _ = env.reset(seed=3)
    for _ in range(30):
        obs, *_ = env.step(2)
    snap = task.snapshot(env, obs)
    after = [env.step(0)[0] for _ in range(5)]
    other.reset(seed=99)
    np.testing.assert_array_equal(task.restore(other, snap), obs)
    for expected in after:
        np.testing.assert_array_equal(other.step(0)[0], expected)


def test_an_atari_id_without_frame_skip_gets_four():
    task = get_task("PongNoFrameskip-v4")
    assert task.env_kwargs == {"obs_type": "grayscale", "frameskip": 4}
    assert task.make().observation_space.shape == (84, 84, 4)
