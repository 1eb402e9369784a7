"""Clips: stretches of episodes that anyone can show again.

A ``Clip`` is the seed of an episode's reset and the actions from the reset on. Replaying them
in a fresh environment gives the same states (every task's environment is deterministic given
these), so a clip is small, portable and can be stored as the pending query of a store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rlhf_gym.data.rollout import to_trajectory
from rlhf_gym.data.segments import cut
from rlhf_gym.tasks.registry import Task
from rlhf_gym.types import Segment


@dataclass(frozen=True)
class Clip:
    """A stretch of an episode: reset with ``seed``, step ``actions``, show steps ``start`` to
    ``start + length``.

    Args:
        seed: the seed of the episode's ``reset``.
        actions: every action from the reset through the clip's last step.
        start: the clip's first step.
        length: the clip's steps (a clip past the end of a terminated episode shows its end).
    """

    seed: int
    actions: np.ndarray
    start: int
    length: int

    def to_json(self) -> dict[str, int]:
        """Everything but the actions, as JSON-able values (the actions go in an array file)."""
        return {"seed": self.seed, "start": self.start, "length": self.length}


def check_clip(clip: Clip, task: Task, space: Any) -> Clip:
    """``clip``, if it fits ``task`` and its action ``space``: whole-number seed, start and length
    within the task's ``max_episode_steps``, at most that many actions, each in the space (a
    pending query may come from someone else's store).

    Raises:
        ValueError: naming what does not fit.
    """
    most = task.max_episode_steps
    numbers = {"seed": clip.seed, "start": clip.start, "length": clip.length}
    for name, value in numbers.items():
        if type(value) is not int or value < 0:
            raise ValueError(f"a clip's {name} must be a non-negative integer, got {value!r}")
    if not 1 <= clip.length <= most or clip.start >= most:
        raise ValueError(
            f"a clip of steps {clip.start} to {clip.start + clip.length} does not fit {task.name}'s "
            f"{most} steps"
        )
    actions = np.asarray(clip.actions)
    shape = tuple(space.shape or ())
    if actions.ndim != 1 + len(shape) or tuple(actions.shape[1:]) != shape or not 1 <= len(actions) <= most:
        raise ValueError(
            f"a clip's actions have shape {actions.shape}; expected 1 to {most} actions of shape {shape}"
        )
    kinds = "biu" if np.issubdtype(space.dtype, np.integer) else "biuf"
    if actions.dtype.kind not in kinds or not all(space.contains(a) for a in actions.astype(space.dtype)):
        raise ValueError(f"a clip's actions are not all in the action space {space}")
    return clip


def replay(task: Task, horizon: str, clip: Clip, env: Any = None) -> Segment:
    """The segment a clip shows, by replaying it in ``env`` (a fresh ``task.make(horizon)`` if
    ``None``)."""
    env = env if env is not None else task.make(horizon)
    obs, _ = env.reset(seed=clip.seed)
    steps: list[tuple[np.ndarray, np.ndarray, float, bool]] = []
    terminated = False
    for action in clip.actions:
        next_obs, reward, term, trunc, info = env.step(action)
        steps.append((obs, np.asarray(action), float(reward), bool(info.get("absorbing", False))))
        obs = next_obs
        if term or trunc:
            terminated = bool(term)
            break
    return cut(
        to_trajectory(steps, terminated, np.asarray(obs)), clip.start, clip.length, task.absorbing_reward
    )
