"""Resolving a run's config (defaults, task preset, user values) and its budget schedule."""

from __future__ import annotations

import warnings
from typing import Any

from rlhf_gym.config import RunConfig
from rlhf_gym.schema import merge, to_dict
from rlhf_gym.tasks.registry import get_task
from rlhf_gym.tasks.zoo import UNTUNED


def resolve_config(config: RunConfig | dict[str, Any] | None = None, **overrides: Any) -> RunConfig:
    """Defaults, then the task preset's ``run:`` block, then ``config``, then ``overrides``.

    Fields left ``None`` (algo, total_timesteps, segment_length) come from the task preset,
    and ``hyperparams`` becomes the preset's tuned set with the user's overrides on top. CPL
    asks uniform queries (it has no reward model to rank them by).
    """
    user = to_dict(config) if isinstance(config, RunConfig) else dict(config or {})
    user.update(overrides)
    task = get_task(user.get("task", RunConfig.task))
    cfg = merge(RunConfig(task=task.name), task.run, f"task preset {task.name}")
    cfg = merge(cfg, user)
    algo = cfg.algo or task.algo
    if algo == "cpl" and cfg.query_strategy != "uniform":
        if "query_strategy" in user:
            raise ValueError(
                f"algo 'cpl' has no reward model to rank queries by; expected query_strategy 'uniform', "
                f"got {cfg.query_strategy!r}"
            )
        cfg = merge(cfg, {"query_strategy": "uniform"})
    segment_length = cfg.segment_length or task.segment_length
    if segment_length > task.max_episode_steps:
        raise ValueError(
            f"segment_length {segment_length} is longer than an episode of {task.name} "
            f"({task.max_episode_steps} steps); expected at most {task.max_episode_steps}"
        )
    steps, source = task.settings_for(algo)
    if not user.get("hyperparams_from"):  # (a saved config keeps where its hyperparameters came from)
        if task.zoo is not None and (source.startswith(UNTUNED) or "not applied" in source):
            _warn_once(f"{task.name} has no preset; its {algo} hyperparameters: {source}")
    return merge(
        cfg,
        {
            "task": task.name,  # the preset an id resolved to, so the saved config names it
            "algo": algo,
            "hyperparams_from": user.get("hyperparams_from") or source,
            "total_timesteps": cfg.total_timesteps or steps,
            "segment_length": segment_length,
            "hyperparams": {**task.algo_kwargs(algo), **cfg.hyperparams},
        },
    )


_WARNED: set[str] = set()


def _warn_once(text: str) -> None:
    """A warning said once per process (a sweep resolves the same task for every run)."""
    if text not in _WARNED:
        _WARNED.add(text)
        warnings.warn(text, stacklevel=3)


def effort_schedule(seconds: float, rounds: int, initial_fraction: float) -> list[float]:
    """Seconds of effort per round, split as ``label_schedule`` splits labels.

    Example:
        >>> effort_schedule(100.0, 2, 0.4)
        [40.0, 30.0, 30.0]
    """
    if rounds == 0:
        return [seconds]
    first = seconds * initial_fraction
    return [first] + [(seconds - first) / rounds] * rounds


def label_schedule(labels: int, rounds: int, initial_fraction: float) -> list[int]:
    """Labels per round: a share up front, the rest split evenly over the later rounds.

    Example:
        >>> label_schedule(50, 5, 0.4)
        [20, 6, 6, 6, 6, 6]
    """
    if rounds == 0:
        return [labels]
    first = max(1, round(labels * initial_fraction))
    rest = labels - first
    return [first] + [rest // rounds + (1 if i < rest % rounds else 0) for i in range(rounds)]


def n_envs(cfg: RunConfig) -> int:
    """The run's number of environments (``hyperparams.n_envs``, 1 if unset), checked."""
    n = cfg.hyperparams.get("n_envs", 1)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"hyperparams.n_envs must be a positive integer, got {n!r}")
    return n


def check_algo_options(cfg: RunConfig) -> None:
    """Reject options the resolved algorithm cannot use, and a bad ``n_envs``."""
    n_envs(cfg)
    if cfg.kl_coef and cfg.algo not in ("ppo", "a2c"):
        raise ValueError(f"kl_coef needs algo ppo or a2c (a policy-gradient agent), got {cfg.algo!r}")
    if cfg.kl_coef and cfg.reward == "true":
        raise ValueError(
            "kl_coef penalises a learned or constant reward; reward 'true' has no anchor to keep"
        )
    if cfg.algo in ("cpl", "bon") and cfg.reward != "learned":
        raise ValueError(
            f"algo {cfg.algo!r} learns from feedback; expected reward 'learned', got {cfg.reward!r}"
        )
    if cfg.algo == "cpl" and cfg.reward_model_checkpoint:
        raise ValueError(
            "algo 'cpl' learns from preference pairs without a reward model; drop reward_model_checkpoint"
        )


# Fields that only matter when the reward is learned: a control run resets them, so that every
# learned arm of one task setting shares its ceiling and its constant control.
FEEDBACK_FIELDS = (
    "feedback",
    "teacher",
    "teacher_params",
    "teacher_critic",
    "recorded_feedback",
    "labels",
    "budget_seconds",
    "effort",
    "correction_length",
    "rating_levels",
    "bc_steps",
    "feedback_store",
    "query_strategy",
    "feedback_rounds",
    "initial_label_fraction",
    "feedback_until",
    "initial_rollout_fraction",
    "unsupervised_fraction",
    "goal_queries",
    "candidate_factor",
    "reward_model",
    "reward_model_checkpoint",
    "segment_length",
    "trajectory_window",
)
ANCHOR_FIELDS = ("kl_coef", "kl_anchor", "ema_rate", "kl_penalty")


def feedback_only(key: str) -> bool:
    """Whether a (possibly dotted) config key matters only when the reward is learned."""
    return key.split(".")[0] in (*FEEDBACK_FIELDS, "reward")


def control_config(data: dict[str, Any], reward: str) -> dict[str, Any]:
    """A control of the run ``data`` (config fields, possibly dotted): the same task, horizon,
    seed and steps with ``reward`` (``true``: the ceiling; ``constant``), no feedback, no KL term,
    and CPL and best-of-N replaced by the PPO they are built on (without their own
    hyperparameters)."""
    import inspect

    from stable_baselines3 import PPO

    from rlhf_gym.agents.registry import algo_class
    from rlhf_gym.tasks.registry import PPO_BASED

    kept = {k: v for k, v in data.items() if not feedback_only(k) and k.split(".")[0] not in ANCHOR_FIELDS}
    out = kept | {"reward": reward}
    if out.get("algo") in PPO_BASED:
        own = set(inspect.signature(algo_class(out["algo"]).__init__).parameters)
        own -= set(inspect.signature(PPO.__init__).parameters)
        out["algo"] = "ppo"
        out["hyperparams"] = {k: v for k, v in (out.get("hyperparams") or {}).items() if k not in own}
    return out
