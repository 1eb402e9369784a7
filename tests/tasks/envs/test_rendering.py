"""Both render modes of every environment of the package (headless: SDL's dummy driver)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from rlhf_gym.tasks.envs import ENVS
from rlhf_gym.tasks.envs.rendering import Renderer, check_render_mode, to_pixels


@pytest.mark.parametrize("name", sorted(ENVS))
def test_human_mode_draws_a_window_and_rgb_array_returns_frames(name):
    human = gym.make(f"rlhf_gym/{name}", render_mode="human")
    human.reset(seed=0)
    human.step(human.action_space.sample())
    assert human.render() is None  # drawn into the window instead
    import pygame

    assert pygame.display.get_surface() is not None
    human.close()
    assert pygame.display.get_surface() is None  # close() closes the window

    frames = gym.make(f"rlhf_gym/{name}", render_mode="rgb_array")
    frames.reset(seed=0)
    first = frames.render()
    for _ in range(5):
        frames.step(frames.action_space.sample())
    assert first.dtype == np.uint8 and first.ndim == 3 and first.shape[2] == 3
    assert first.std() > 0  # not blank
    frames.close()


def test_render_mode_and_pixel_helpers():
    with pytest.raises(ValueError, match="unknown render_mode 'rgb'"):
        check_render_mode("rgb")
    with pytest.raises(ValueError, match="unknown render_mode"):
        Renderer((10, 10), "ansi", fps=30)
    assert to_pixels((0.0, 0.0), 50, (10, 20)) == (10, 20)
    assert to_pixels((0.0, 1.0), 50, (10, 20)) == (10, -30)  # y up in the world is up on screen
