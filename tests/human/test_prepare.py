"""The clip preparer: pairs made ready off the window's thread, replaying to the same segments."""

from __future__ import annotations

import time

import numpy as np
import pygame
import pytest

from rlhf_gym.human.clips import replay
from rlhf_gym.human.prepare import RANDOM, Preparer
from rlhf_gym.tasks.registry import get_task


def wait(preparer: Preparer, ticket: int):
    """The pair of ``ticket`` once every frame is rendered (it is handed over with the first)."""
    deadline, ready = time.monotonic() + 30, None
    while time.monotonic() < deadline:
        ready = ready or preparer.take(ticket)
        if ready is not None and ready.seconds > 0:
            return ready
        if ready is not None:
            assert all(len(f) >= 1 for f in ready.frames)  # handed over with a first frame each
        time.sleep(0.01)
    raise AssertionError("nothing prepared in 30 s")


def test_random_pairs_render_every_frame_and_replay_to_their_segments():
    task = get_task("CartPole-v1")
    pygame.display.init()
    preparer = Preparer(task, "fixed", 10, (60, 40), seed=0)
    try:
        ready = wait(preparer, preparer.submit(None))
        assert ready.source == RANDOM and len(ready.clips) == len(ready.segments) == 2
        for clip, segment, frames in zip(ready.clips, ready.segments, ready.frames):
            assert len(frames) == clip.length == len(segment) == 10
            assert all(f.get_size() == (60, 40) for f in frames)
            np.testing.assert_array_equal(replay(task, "fixed", clip).obs, segment.obs)  # portable
            assert (~segment.absorbing).any()  # a random clip starts within the live part
        # the same clips asked again (an undone label's) give the same segments and frames
        again = wait(preparer, preparer.submit(ready.clips, urgent=True))
        np.testing.assert_array_equal(again.segments[0].obs, ready.segments[0].obs)
        a, b = (pygame.surfarray.array3d(f[3]) for f in (ready.frames[0], again.frames[0]))
        np.testing.assert_array_equal(a, b)
    finally:
        preparer.close()


def test_a_failed_preparation_is_reported_not_swallowed():
    task = get_task("CartPole-v1")
    preparer = Preparer(task, "fixed", 10, None, seed=0)
    try:
        ready = wait(preparer, preparer.submit(None))
        bad = ready.clips[0].__class__(seed=0, actions=np.array([[5.0, 5.0]]), start=0, length=10)
        ticket = preparer.submit((bad, bad))
        deadline = time.monotonic() + 30
        with pytest.raises(RuntimeError, match="preparing clips failed"):
            while time.monotonic() < deadline:
                preparer.take(ticket)
                time.sleep(0.01)
    finally:
        preparer.close()
