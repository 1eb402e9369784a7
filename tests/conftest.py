"""Shared fixtures: tiny segments and comparisons with a known reward."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import torch

torch.set_num_threads(1)

from rlhf_gym.types import Comparison, Query, Segment  # noqa: E402


def make_segment(rewards, obs_dim: int = 1, absorbing=None) -> Segment:
    rewards = np.asarray(rewards, dtype=float)
    h = len(rewards)
    return Segment(
        np.zeros((h, obs_dim), np.float32),
        np.zeros(h, dtype=np.int64),
        rewards,
        np.zeros(h, bool) if absorbing is None else np.asarray(absorbing, bool),
    )


@pytest.fixture
def segment():
    return make_segment


def known_reward_comparisons(n: int, rng: np.random.Generator, length: int = 5):
    """Comparisons of random CartPole-shaped segments under the true reward r(s) = s[0] (oracle)."""
    out = []
    for _ in range(n):
        segs = []
        for _ in range(2):
            obs = rng.normal(size=(length, 4)).astype(np.float32)
            segs.append(
                Segment(obs, rng.integers(0, 2, length), obs[:, 0].astype(float), np.zeros(length, bool))
            )
        a, b = segs
        label = 1.0 if a.true_return > b.true_return else 0.0
        out.append(Comparison(Query(a, b), label))
    return out


@pytest.fixture
def comparisons():
    return known_reward_comparisons


TINY_HP = {"n_steps": 32, "batch_size": 32, "n_epochs": 1, "n_envs": 2, "policy_kwargs": {"net_arch": [8]}}


def tiny_run(task: str = "CartPole-v1", hyperparams: dict | None = None, **overrides):
    """An ``RLHF`` run on the fixed horizon with a tiny agent, few labels and no evaluations
    during learning; ``hyperparams`` are added to ``TINY_HP``."""
    from rlhf_gym import RLHF

    kw = dict(horizon="fixed", labels=6, total_timesteps=256, segment_length=10, feedback_rounds=1)
    kw |= dict(eval_freq=100_000, final_eval_episodes=2)
    return RLHF(task, hyperparams={**TINY_HP, **(hyperparams or {})}, **{**kw, **overrides})
