"""Gymnasium ids without a preset of their own, on rl-baselines3-zoo's tuned settings (issue 23):

    pip install -e ".[zoo,mujoco,box2d]"
    python benchmarks/publish.py zoo_defaults

For each task, PPO on the zoo's hyperparameters (``rlhf_gym.tasks.zoo``; ``LunarLander-v3``'s preset
is the zoo's PPO set, with its budget), at a stated budget of environment steps that 2 cores allow:
the true-reward ceiling, and RLHF from oracle comparisons at a label budget of at most 1,000, 5 seeds,
in the natural horizon, as a user who names the id gets it. The ceiling is set beside the zoo's own
published score (its ``benchmark.md``: one run of the trained agent, at the zoo's budget).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from publish import Publication
from report import arm_iqm, normalise, section, seeds_per_arm, shown, target_row

SEEDS = 5
LABELS = 1000
BUDGETS = {"InvertedPendulum-v5": 200_000, "Hopper-v5": 1_000_000, "LunarLander-v3": 1_000_000}
"""Environment steps per run (the zoo trains each for 1M)."""
ZOO_SCORES = {
    "InvertedPendulum-v5": (1000.0, "the task's maximum (the zoo's table has no InvertedPendulum row)"),
    "Hopper-v5": (2410.4, "PPO on Hopper-v3, 1M steps"),
    "LunarLander-v3": (242.1, "PPO on LunarLander-v2, 1M steps"),
}
"""rl-baselines3-zoo's published mean return for each task (its ``benchmark.md``), and its source."""
CEILING_SHARE = 0.8
"""The ceiling matches the zoo's scale when its IQM is at least this share of the zoo's score."""
TARGET = 0.7

ARMS: dict[str, dict[str, Any]] = {}
for _task, _steps in BUDGETS.items():
    _base = {"task": _task, "horizon": "natural", "total_timesteps": _steps}
    ARMS[f"{_task}-true"] = {**_base, "reward": "true"}
    ARMS[f"{_task}-oracle"] = {**_base, "labels": LABELS}


def render(df: Any, meta: dict[str, Any], figure: Path | None) -> dict[str, str]:
    """Per task: where its hyperparameters came from, its ceiling beside the zoo's score, and RLHF's
    normalised return; then the targets."""
    from rlhf_gym.experiments.stats import iqm_ci

    ceilings = normalise(df, meta["random_returns"])
    rows = [
        "| task | hyperparameters | steps | true-reward ceiling, IQM [95% CI] | the zoo's score | "
        f"RLHF, {LABELS} comparisons: normalised return, IQM [95% CI] |",
        "|---|---|---|---|---|---|",
    ]
    targets = []
    for task in BUDGETS:
        runs = df[df["task"] == task]
        if not len(runs):
            continue
        true = runs[runs["reward"] == "true"]
        ceiling = iqm_ci(true["true_return_mean"].to_numpy(float))
        score, source = ZOO_SCORES[task]
        rlhf = arm_iqm(df, f"{task}-oracle")
        rows.append(
            f"| {task} | {runs['hyperparams_from'].iloc[0]} | {int(runs['total_timesteps'].max()):,} | "
            f"{returns(ceiling)} | {score:g}: {source} | {shown(rlhf)} |"
        )
        if len(true):
            targets.append(
                judged(
                    f"{task}: the ceiling at >= {CEILING_SHARE:g} of the zoo's score ({score:g})",
                    f"{ceilings[task, 'natural']:.1f}",
                    ceilings[task, "natural"] >= CEILING_SHARE * score,
                    len(true),
                )
            )
        learned = runs[runs["reward"] == "learned"]
        if len(learned):
            targets.append(
                judged(
                    f"{task}: RLHF from at most {LABELS} comparisons, IQM >= {TARGET:g} of the ceiling",
                    shown(rlhf),
                    rlhf.value >= TARGET,
                    min(len(learned), len(true)),
                )
            )
    body = [*rows, "", "### Targets", "", "| target | measured | |", "|---|---|---|", *targets, ""]
    notes = [
        f"{seeds_per_arm(df)}, natural horizon (the default a user gets), oracle comparisons. "
        "The zoo trains each task for 1M steps; the budgets here are what 2 cores allow.",
        "",
    ]
    return {"RESULTS.md": section(df, meta, figure, body, notes)}


def judged(text: str, measured: str, ok: bool, seeds: int) -> str:
    """A target's row: met or missed at the publication's seeds, else not judged yet."""
    if seeds >= SEEDS:
        return target_row(text, measured, ok)
    return f"| {text} | {measured} ({seeds} of {SEEDS} seeds) | not judged yet |"


def returns(e: Any) -> str:
    """A return's IQM and CI to one decimal (``-`` for a bound that needs two runs)."""
    if e.value != e.value:
        return "not measured"
    return f"{e.value:.1f} [" + ", ".join("-" if b != b else f"{b:.1f}" for b in (e.low, e.high)) + "]"


PUBLICATIONS = [
    Publication("zoo_defaults", "Gymnasium ids on rl-zoo3's settings", ARMS, SEEDS, render),
]
