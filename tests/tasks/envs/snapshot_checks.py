"""A shared check for the environments' tests: snapshots restore exactly."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from rlhf_gym.tasks.registry import get_task


def rollout(env: gym.Env, actions) -> list[tuple]:
    """Every step's (observation bytes, reward, terminated, truncated, info)."""
    out = []
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        out.append((obs.tobytes(), float(reward), terminated, truncated, info))
    return out


def random_actions(n: int, seed: int = 0) -> list[int]:
    """``n`` seeded actions of a Discrete(3) space."""
    return [int(a) for a in np.random.default_rng(seed).integers(0, 3, n)]


def assert_exact_snapshot(task_name: str, horizon: str, warmup: int = 40) -> None:
    """A snapshot taken after ``warmup`` random steps, restored into the same environment and
    into a fresh one, gives the same continuation, scoring included, and the same next reset."""
    task = get_task(task_name)
    env = task.make(horizon)
    actions = random_actions(task.max_episode_steps)
    obs, _ = env.reset(seed=3)
    for action in actions[:warmup]:
        obs, *_ = env.step(action)
    snap = task.snapshot(env, obs)
    original = rollout(env, actions[warmup:])
    assert any(step[1] for step in original)  # something was scored after the snapshot
    next_obs = env.reset()[0].tobytes()  # unseeded: drawn from the saved generator

    assert np.array_equal(task.restore(env, snap), obs)
    assert rollout(env, actions[warmup:]) == original
    assert env.reset()[0].tobytes() == next_obs

    fresh = task.make(horizon)
    fresh.reset(seed=99)
    fresh.step(0)
    assert np.array_equal(task.restore(fresh, snap), obs)
    assert rollout(fresh, actions[warmup:]) == original
    assert fresh.reset()[0].tobytes() == next_obs
