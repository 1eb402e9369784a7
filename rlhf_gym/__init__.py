"""rlhf-gym: a classic-control RLHF gym and benchmark suite.

Gymnasium wrappers replace an environment's reward with a reward model learned from
feedback; SB3 agents learn from it; evaluation always uses the true reward.

Importing the package is cheap: the heavy pieces load on first use. Its one side effect is to
register the project's environments with Gymnasium (``rlhf_gym/<Name>-v0``, with time limits).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

import rlhf_gym.tasks.envs  # noqa: F401  (the package's one side effect: registers rlhf_gym/<Name>-v0)

__version__ = "0.1.0"

_EXPORTS = {
    "RLHF": "rlhf_gym.train.rlhf",
    "WARP": "rlhf_gym.algos.warp",
    "RunConfig": "rlhf_gym.config",
    "RewardModelConfig": "rlhf_gym.config",
    "TeacherParams": "rlhf_gym.teacher_params",
    "WarpConfig": "rlhf_gym.config",
    "RewardModel": "rlhf_gym.reward.model",
    "Teacher": "rlhf_gym.feedback.teachers",
    "FeedbackStore": "rlhf_gym.feedback.store",
    "FixedHorizon": "rlhf_gym.tasks.horizon",
    "LearnedReward": "rlhf_gym.wrappers",
    "LearnedRewardVec": "rlhf_gym.wrappers",
    "ConstantReward": "rlhf_gym.wrappers",
    "Task": "rlhf_gym.tasks.registry",
    "get_task": "rlhf_gym.tasks.registry",
    "list_tasks": "rlhf_gym.tasks.registry",
    "evaluate": "rlhf_gym.agents.evaluation",
}
"""The public API: each name and the module that defines it (imported on first use)."""

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'rlhf_gym' has no attribute {name!r}")
