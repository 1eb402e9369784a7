"""Clips: a pending query from someone else's store is checked before it is replayed."""

from __future__ import annotations

import numpy as np
import pytest

from rlhf_gym.human.clips import Clip, check_clip, replay
from rlhf_gym.tasks.registry import get_task


@pytest.mark.parametrize(
    ("clip", "match"),
    [
        (Clip(0, np.zeros(10, int), 10**9, 10), "does not fit CartPole-v1's 500 steps"),
        (Clip(0, np.zeros(10, int), 0, 10**9), "does not fit CartPole-v1's 500 steps"),
        (Clip(0, np.zeros(10, int), -1, 10), "start must be a non-negative integer"),
        (Clip(0, np.zeros(10, int), 0, 0), "does not fit"),
        (Clip(1.5, np.zeros(10, int), 0, 10), "seed must be a non-negative integer"),  # type: ignore[arg-type]
        (Clip(0, np.zeros(10**6, int), 0, 10), r"actions have shape \(1000000,\)"),
        (Clip(0, np.zeros((10, 3), int), 0, 10), r"actions have shape \(10, 3\)"),
        (Clip(0, np.full(10, 7), 0, 10), r"not all in the action space Discrete\(2\)"),
        (Clip(0, np.full(10, 0.5), 0, 10), "not all in the action space"),
        (Clip(0, np.array(["a"] * 10), 0, 10), "not all in the action space"),
    ],
)
def test_a_clip_that_does_not_fit_the_task_is_one_clear_error(clip, match):
    task = get_task("CartPole-v1")
    with pytest.raises(ValueError, match=match):
        check_clip(clip, task, task.make("fixed").action_space)


def test_a_clip_that_fits_is_kept_and_replays():
    task = get_task("Pendulum-v1")
    clip = Clip(3, np.zeros((12, 1), np.float32), 2, 10)
    assert check_clip(clip, task, task.make("fixed").action_space) is clip
    assert len(replay(task, "fixed", clip)) == 10
    with pytest.raises(ValueError, match="not all in the action space"):
        check_clip(Clip(3, np.full((12, 1), np.nan), 2, 10), task, task.make("fixed").action_space)
