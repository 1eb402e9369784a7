"""The hard tasks and the literature's answers to them, compared arm by arm (issue 21):

    python benchmarks/publish.py exploration

On each task where RLHF falls short of its ceiling (the goal tasks MountainCar and
MountainCarContinuous, and PickPlace, whose +1 comes only once the block is dropped in the bin), in
the fixed horizon at the preset's label budget: the true-reward ceiling, the preset as it is, and
one arm per method, each changing one thing of the preset:

- ``plain``: the preset with none of the options below;
- ``pebble``: PEBBLE's unsupervised pre-training on the state entropy (``unsupervised_fraction``);
- ``rune``: RUNE's exploration bonus from the ensemble's disagreement (``reward_model.rune_beta``);
- ``surf``: SURF's pseudo-labels and temporal cropping (``reward_model.surf_threshold``);
- ``goal``: queries that include a segment that reaches the goal (``goal_queries``);
- ``pebble-goal``: the first and the last together;
- ``scale`` and ``goal-scale``: the learned reward at a tenth of its usual root-mean-square, alone and
  with goal queries.

A method whose config resolves to the preset's is not run (it would repeat the preset's runs), and
its row says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from publish import Publication
from report import arm_iqm, normalise, partial_banner, section, seeds_per_arm, shown, target_row

TASKS = ("MountainCar-v0", "MountainCarContinuous-v0", "PickPlace-v0")
METHODS: dict[str, dict[str, Any]] = {
    # the preset without any of these (MountainCarContinuous's preset has goal-scale's two settings)
    "plain": {"goal_queries": 0.0, "unsupervised_fraction": 0.0, "reward_model": {"reward_scale": 1.0}},
    "pebble": {"unsupervised_fraction": 0.2},
    "rune": {"reward_model": {"rune_beta": 0.05}},
    "surf": {"reward_model": {"surf_threshold": 0.95}},
    "goal": {"goal_queries": 0.25},
    "pebble-goal": {"unsupervised_fraction": 0.2, "goal_queries": 0.25},
    # a learned reward scaled to a tenth: its costs stay as small beside exploration as the true ones
    # (MountainCarContinuous's -0.1 u^2); with goal queries, one exploratory run found the flag
    "scale": {"reward_model": {"reward_scale": 0.1}},
    "goal-scale": {"goal_queries": 0.25, "reward_model": {"reward_scale": 0.1}},
}
SEEDS = 5


def _arms() -> dict[str, dict[str, Any]]:
    """Per task: the ceiling, the preset, and each method whose resolved config differs from the
    preset's (a method the preset already uses, or whose undoing changes nothing, would only
    repeat the preset's runs: ``plain`` on MountainCar and PickPlace, say)."""
    from rlhf_gym.train.resolve import resolve_config

    arms: dict[str, dict[str, Any]] = {}
    for task in TASKS:
        base = {"task": task, "horizon": "fixed"}
        arms[f"{task}-true"] = {**base, "reward": "true"}
        arms[f"{task}-preset"] = base
        preset = resolve_config(**base)
        for method, change in METHODS.items():
            if resolve_config(**base, **change) != preset:
                arms[f"{task}-{method}"] = {**base, **change}
    return arms


ARMS = _arms()


def render(df: Any, meta: dict[str, Any], figure: Path | None) -> dict[str, str]:
    """Per task: each method's IQM of normalised return with its CI, the seeds that reach 0.9,
    and the probability that one of its runs beats one of the preset's."""
    from rlhf_gym.experiments.stats import probability_of_improvement

    normalise(df, meta["random_returns"])
    rows = [
        "### Methods against the preset",
        "",
        "| task | arm | changes | normalised return, IQM [95% CI] | seeds >= 0.9 | "
        "P(its run > preset's run) [95% CI] |",
        "|---|---|---|---|---|---|",
    ]
    targets = []
    for task in TASKS:
        preset = df.loc[df["arm"] == f"{task}-preset", "normalised_return"].to_numpy(float)
        best = None
        for method in ("preset", *METHODS):
            arm = f"{task}-{method}"
            runs = df[df["arm"] == arm]
            change = ", ".join(f"{k} = {v}" for k, v in METHODS.get(method, {}).items()) or "-"
            if arm not in ARMS:
                rows.append(f"| {task} | {method} | {change} | the preset itself | | |")
                continue
            if not len(runs):
                rows.append(f"| {task} | {method} | {change} | not run yet | | |")
                continue
            e = arm_iqm(df, arm)
            versus = "-"
            if method != "preset" and len(preset):
                versus = str(probability_of_improvement(runs["normalised_return"].to_numpy(float), preset))
            reached = int((runs["normalised_return"] >= 0.9).sum())
            rows.append(
                f"| {task} | {method} | {change} | {shown(e)} | {reached} of {len(runs)} | {versus} |"
            )
            if best is None or e.value > best[1].value:
                best = (method, e)
        if best is not None:
            method, e = best
            targets.append(target_row(f"{task}: the best arm ({method}), IQM >= 0.9", e, e.value >= 0.9))
    body = [*rows, "", "### Targets", "", "| target | measured | |", "|---|---|---|", *targets, ""]
    notes = [
        *partial_banner(df, meta, True),
        f"{seeds_per_arm(df)}, fixed horizon, oracle comparisons at each preset's label budget. "
        "The best arm is picked after the fact on these seeds: a target it meets says what a preset could "
        "reach, not what it does.",
        "",
    ]
    return {"RESULTS.md": section(df, meta, figure, body, notes)}


# the ceilings and presets are the same runs as those of the presets and tasks publications
PUBLICATIONS = [
    Publication(
        "exploration",
        "Hard tasks: exploration methods compared",
        ARMS,
        SEEDS,
        render,
        reuse=("presets", "tasks"),
    )
]
