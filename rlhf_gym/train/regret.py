"""The regret teacher of a run: B-Pref's teacher judging by a critic trained on the true reward."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rlhf_gym.agents.critics import load_agent, state_value
from rlhf_gym.config import RunConfig
from rlhf_gym.feedback.teachers import RegretTeacher
from rlhf_gym.tasks.registry import Task
from rlhf_gym.teacher_params import TeacherParams


def regret_teacher(
    config: RunConfig,
    task: Task,
    *,
    train_ceiling: Callable[[RunConfig], Any] | None = None,
    verbose: int = 0,
) -> RegretTeacher:
    """The ``regret`` teacher of a run: it judges with the critic of ``config.teacher_critic`` (a
    saved agent trained on the true reward), or, when that is not set, of the agent that
    ``train_ceiling(config)`` trains first: the run's own ceiling
    (``rlhf_gym.train.resolve.control_config``)."""
    if config.teacher_critic:
        agent = load_agent(config.teacher_critic, task, config)
    elif train_ceiling is None:
        raise ValueError("the regret teacher needs teacher_critic (a saved agent) or a way to train one")
    else:
        if verbose:
            print(f"teacher regret: training its critic on the true reward of {task.name} first")
        agent = train_ceiling(config)
    gamma = float(agent.gamma)  # type: ignore[attr-defined]  # every SB3 algorithm with a critic has one
    absorbing = task.absorbing_reward / (1.0 - gamma) if gamma < 1 else 0.0
    return RegretTeacher(TeacherParams(**config.teacher_params), state_value(agent), gamma, absorbing)
