"""Cutting trajectories into fixed-length segments, the unit a teacher judges."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rlhf_gym.types import Segment, Trajectory


def valid_starts(traj: Trajectory, length: int) -> int:
    """How many start indices give a segment of ``traj``: the count of starts ``0..n-1``.

    A terminated trajectory may be padded past its end with the absorbing state, so any
    start up to its last step works. An unfinished one must hold the whole segment. A
    segment must contain at least one live step: a segment that is all absorbing carries no
    information about the reward of the states the agent can act in.
    """
    live = np.flatnonzero(~traj.absorbing)
    if len(live) == 0:
        return 0
    last_live = int(live[-1])
    if traj.terminated or traj.absorbing[-1]:
        return last_live + 1
    return max(0, min(last_live + 1, len(traj) - length + 1))


def cut(traj: Trajectory, start: int, length: int, absorbing_reward: float = 0.0) -> Segment:
    """The segment of ``length`` steps from ``start``, padded with absorbing steps past the end.

    Example:
        >>> import numpy as np
        >>> t = Trajectory(np.arange(3.0)[:, None], np.zeros(3, int), np.ones(3), np.zeros(3, bool), True,
        ...                np.array([9.0]))
        >>> s = cut(t, 1, 4)
        >>> s.obs[:, 0].tolist(), s.true_rewards.tolist(), s.absorbing.tolist()
        ([1.0, 2.0, 9.0, 9.0], [1.0, 1.0, 0.0, 0.0], [False, False, True, True])
    """
    end = min(start + length, len(traj))
    pad = length - (end - start)
    obs, actions = traj.obs[start:end], traj.actions[start:end]
    rewards, absorbing = traj.true_rewards[start:end], traj.absorbing[start:end]
    if pad:
        if not traj.terminated and not traj.absorbing[-1]:
            raise ValueError(
                f"segment [{start}, {start + length}) runs past the end of an unfinished "
                f"trajectory of {len(traj)} steps"
            )
        obs = np.concatenate([obs, np.repeat(traj.final_obs[None], pad, axis=0)])
        actions = np.concatenate([actions, np.zeros((pad, *traj.actions.shape[1:]), traj.actions.dtype)])
        rewards = np.concatenate([rewards, np.full(pad, absorbing_reward)])
        absorbing = np.concatenate([absorbing, np.ones(pad, dtype=bool)])
    return Segment(obs, actions, rewards, absorbing)


def sample_segments(
    trajectories: Sequence[Trajectory],
    length: int,
    n: int,
    rng: np.random.Generator,
    absorbing_reward: float = 0.0,
) -> list[Segment]:
    """Draw ``n`` segments, every valid (trajectory, start) equally likely.

    Raises:
        ValueError: no trajectory can give a segment of this length.
    """
    return [
        cut(trajectories[w], s, length, absorbing_reward)
        for w, s in sample_starts(trajectories, length, n, rng)
    ]


def sample_starts(
    trajectories: Sequence[Trajectory], length: int, n: int, rng: np.random.Generator
) -> list[tuple[int, int]]:
    """Draw ``n`` ``(trajectory index, start)`` pairs, every valid one equally likely.

    Raises:
        ValueError: no trajectory can give a segment of this length.
    """
    if length <= 0:
        raise ValueError(f"segment length must be positive, got {length}")
    counts = np.array([valid_starts(t, length) for t in trajectories], dtype=np.int64)
    total = int(counts.sum())
    if total == 0:
        raise ValueError(
            f"no segment of {length} steps fits in {len(trajectories)} trajectories; collect "
            "longer rollouts or shorten segment_length"
        )
    picks = rng.integers(0, total, size=n)
    bounds = np.cumsum(counts)
    which = np.searchsorted(bounds, picks, side="right")
    starts = picks - (bounds[which] - counts[which])
    return [(int(w), int(s)) for w, s in zip(which, starts)]


def reaches_end(traj: Trajectory) -> int | None:
    """The index of the first state of ``traj`` at its goal: the first absorbing step (a terminal
    state reached, in the fixed horizon), its length when it stopped at a terminal state (the
    natural horizon), or the state after the step whose ``info["is_success"]`` first said so
    (``Trajectory.goal``), whichever comes first; ``None`` if it never got there."""
    live = ~np.asarray(traj.absorbing, dtype=bool)
    if not live.any():
        return None
    ends = [traj.goal] if traj.goal is not None else []
    if not live.all():
        ends.append(int(np.argmin(live)))
    elif traj.terminated:
        ends.append(len(traj))
    first = min(ends, default=None)
    return first if first else None


def sample_goal_segments(
    trajectories: Sequence[Trajectory],
    length: int,
    n: int,
    rng: np.random.Generator,
    absorbing_reward: float = 0.0,
) -> list[Segment]:
    """Draw ``n`` segments that reach the goal (``reaches_end``): each holds the last state before
    it and the first at it. Every such (trajectory, start) is equally likely; an empty list when no
    trajectory got there.

    Example:
        >>> t = Trajectory(np.arange(4.0)[:, None], np.zeros(4, int), np.ones(4), np.zeros(4, bool), True,
        ...                np.array([9.0]))
        >>> segments = sample_goal_segments([t], 3, 20, np.random.default_rng(0))
        >>> sorted({tuple(s.absorbing.tolist()) for s in segments})
        [(False, False, True), (False, True, True)]
    """
    if n <= 0:
        return []
    spans = []  # (trajectory, first start, last start + 1): starts from e - length + 1 to e - 1
    for w, t in enumerate(trajectories):
        e = reaches_end(t)
        if e is not None and min(e, valid_starts(t, length)) > max(0, e - length + 1):
            spans.append((w, max(0, e - length + 1), min(e, valid_starts(t, length))))
    if not spans:
        return []
    counts = np.array([hi - lo for _, lo, hi in spans], dtype=np.int64)
    picks = rng.integers(0, int(counts.sum()), size=n)
    bounds = np.cumsum(counts)
    which = np.searchsorted(bounds, picks, side="right")
    out = []
    for i, pick in zip(which, picks):
        w, lo, _ = spans[i]
        out.append(cut(trajectories[w], lo + int(pick - (bounds[i] - counts[i])), length, absorbing_reward))
    return out
