"""Gymnasium ids without a preset of their own, on rl-baselines3-zoo's tuned settings (issue 23):

    pip install -e ".[zoo,mujoco,box2d]"
    python benchmarks/publish.py zoo_defaults

For each task, PPO on the zoo's hyperparameters (``rlhf_gym.tasks.zoo``; ``LunarLander-v3``'s preset
is a copy of the zoo's PPO set, with its budget), at a stated budget of environment steps, in the
natural horizon, as a user who names the id gets it, 5 seeds: the true-reward ceiling, RLHF from at
most 1,000 oracle comparisons, and a constant reward, the control: in the natural horizon a reward for
every step alive already teaches a task that ends on falling (InvertedPendulum, Hopper), so RLHF is
credited only where it beats the constant reward. The ceiling is set beside a reference score: the
zoo's published one (its ``benchmark.md``: one run of the trained agent, at the zoo's budget), or the
task's maximum where the zoo publishes none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from publish import Publication
from report import arm_iqm, normalise, section, seeds_per_arm, shown, target_row

SEEDS = 5
LABELS = 1000
BUDGETS = {"InvertedPendulum-v5": 200_000, "Hopper-v5": 300_000, "LunarLander-v3": 1_000_000}
"""Environment steps per run (the zoo trains each for 1M). Hopper's PPO at the zoo's settings (a
minibatch of 32, 5 epochs, 256x256 networks) took 26 min a run for 1M steps on one core, and its
15 runs, about 6.5 core-hours, were more than a working session of both cores; 300k steps cost
about 0.3 of that, and set the ceiling further below the zoo's reference than 1M would (at 1M, the
seed-0 agent stood still, at 979, on the true reward)."""
REFERENCES = {
    "InvertedPendulum-v5": (1000.0, "the task's maximum; the zoo publishes no InvertedPendulum score"),
    "Hopper-v5": (2410.4, "the zoo's PPO on Hopper-v3, 1M steps"),
    "LunarLander-v3": (242.1, "the zoo's PPO on LunarLander-v2, 1M steps"),
}
"""Each task's reference score and its source: rl-baselines3-zoo's published mean return (its
``benchmark.md``), or the task's maximum."""
CEILING_SHARE = 0.8
"""The ceiling matches the zoo's scale when its IQM is at least this share of the reference score."""
TARGET = 0.7

ARMS: dict[str, dict[str, Any]] = {}
for _task, _steps in BUDGETS.items():
    _base = {"task": _task, "horizon": "natural", "total_timesteps": _steps}
    ARMS[f"{_task}-true"] = {**_base, "reward": "true"}
    ARMS[f"{_task}-oracle"] = {**_base, "labels": LABELS}
    ARMS[f"{_task}-constant"] = {**_base, "reward": "constant"}


def render(df: Any, meta: dict[str, Any], figure: Path | None) -> dict[str, str]:
    """Per task: where its hyperparameters came from, its ceiling beside the reference score, and
    the normalised returns of RLHF and of the constant reward; then the targets."""
    from rlhf_gym.experiments.stats import iqm_ci

    normalise(df, meta["random_returns"])
    rows = [
        "| task | hyperparameters | steps | true-reward ceiling, IQM [95% CI] | reference score | "
        f"RLHF, {LABELS} comparisons: normalised return, IQM [95% CI] | constant reward: normalised return |",
        "|---|---|---|---|---|---|---|",
    ]
    targets = []
    for task in BUDGETS:
        runs = df[df["task"] == task]
        if not len(runs):
            continue
        seeds = runs.groupby("arm")["seed"].nunique()
        true = runs[runs["reward"] == "true"]
        ceiling = iqm_ci(true["true_return_mean"].to_numpy(float))
        score, source = REFERENCES[task]
        rlhf, constant = arm_iqm(df, f"{task}-oracle"), arm_iqm(df, f"{task}-constant")
        rows.append(
            f"| {task} | {runs['hyperparams_from'].iloc[0]} | {int(runs['total_timesteps'].max()):,} | "
            f"{returns(ceiling)} | {score:g}: {source} | {shown(rlhf)} | {shown(constant)} |"
        )
        n_true = int(seeds.get(f"{task}-true", 0))
        n_rlhf = min(n_true, int(seeds.get(f"{task}-oracle", 0)))
        n_control = min(n_rlhf, int(seeds.get(f"{task}-constant", 0)))
        checks = [  # (target, measured, met, seeds it stands on)
            (
                f"{task}: the ceiling at >= {CEILING_SHARE:g} of the reference score ({score:g})",
                returns(ceiling),
                ceiling.value >= CEILING_SHARE * score,
                n_true,
            ),
            (
                f"{task}: RLHF from at most {LABELS} comparisons, normalised return IQM >= {TARGET:g}",
                shown(rlhf),
                rlhf.value >= TARGET,
                n_rlhf,
            ),
            (
                f"{task}: RLHF above the constant reward (intervals apart)",
                f"{shown(rlhf)} against {shown(constant)}",
                rlhf.value > constant.value and not rlhf.overlaps(constant),
                n_control,
            ),
        ]
        targets += [judged(*check) for check in checks if check[3]]
    body = [*rows, "", "### Targets", "", "| target | measured | |", "|---|---|---|", *targets, ""]
    notes = [
        f"{seeds_per_arm(df)}, natural horizon (the default a user gets), oracle comparisons. The zoo "
        "trains each task for 1M steps. A target is judged once its arms have run every seed.",
        "",
    ]
    return {"RESULTS.md": section(df, meta, figure, body, notes)}


def judged(text: str, measured: str, ok: bool, seeds: int) -> str:
    """A target's row: met or missed at the publication's seeds, else not judged yet; a figure that
    cannot be had (``shown``'s "not measured": no run, or a ceiling level with random) is never missed."""
    if "not measured" in measured:
        return f"| {text} | not measured | - |"
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
