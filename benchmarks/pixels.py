"""RLHF from pixels (issue 23):

    python benchmarks/publish.py pixels

- **The pixel benchmark:** ``CatchPixels-v0`` (Catch seen as two stacked 36 x 36 grey frames), its
  true-reward ceiling and RLHF with oracle comparisons at its preset's label budget, fixed horizon,
  5 seeds. Agent: SB3's ``CnnPolicy``; reward model: the convolutional ensemble of
  ``rlhf_gym.reward.pixels``.
- **Image ids without a preset** (``python benchmarks/publish.py image_ids``): ``CarRacing-v3``
  (96 x 96 RGB, grey at 64 x 64 with 2 frames) and ``ALE/Breakout-v5`` (grey 84 x 84 with 4
  frames), for a few thousand agent steps: the time to the first feedback round, and that they train.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from publish import Publication, run_folder
from report import arm_iqm, normalise, section, seeds_per_arm, target_row

TASK = "CatchPixels-v0"
SEEDS = 5
ANY_IDS = {
    "CarRacing-v3": {"labels": 20, "total_timesteps": 6144},
    "ALE/Breakout-v5": {"labels": 10, "total_timesteps": 2048},
}
MAX_RUN_MINUTES = 15
MAX_FIRST_ROUND_SECONDS = 60

ARMS: dict[str, dict[str, Any]] = {
    f"{TASK}-true": {"task": TASK, "horizon": "fixed", "reward": "true"},
    f"{TASK}-oracle": {"task": TASK, "horizon": "fixed"},
}
ID_ARMS = {name: {"task": name, **run} for name, run in ANY_IDS.items()}


def render(df: Any, meta: dict[str, Any], figure: Path | None) -> dict[str, str]:
    """The pixel benchmark's arms and targets."""
    normalise(df, meta["random_returns"])
    targets = []
    if (df["arm"] == f"{TASK}-oracle").any():
        e = arm_iqm(df, f"{TASK}-oracle")
        labels = int(df.loc[df["arm"] == f"{TASK}-oracle", "labels_used"].max())
        targets.append(target_row(f"{TASK}: RLHF from {labels} comparisons, IQM >= 0.9", e, e.value >= 0.9))
    slowest = float(df["wall_seconds"].max())
    targets.append(
        target_row(
            f"{TASK}: the slowest run (of every arm) within {MAX_RUN_MINUTES} minutes on 2 cores",
            f"{slowest / 60:.1f} min",
            slowest <= 60 * MAX_RUN_MINUTES,
        )
    )
    body = ["### Targets", "", "| target | measured | |", "|---|---|---|", *targets, ""]  # (the arms follow)
    notes = [
        f"{seeds_per_arm(df)}, fixed horizon, oracle comparisons at the preset's label budget. "
        f"Observations: {(meta.get('measured') or {}).get('observations', {}).get(TASK, '-')}.",
        "",
    ]
    return {"RESULTS.md": section(df, meta, figure, body, notes)}


def render_ids(df: Any, meta: dict[str, Any], figure: Path | None) -> dict[str, str]:
    """Each image id without a preset: its observations, when its first round was done, and its run."""
    normalise(df, meta["random_returns"])  # (no ceiling here: NaN, as section() expects the column)
    shapes = (meta.get("measured") or {}).get("observations", {})
    rows = [
        "| task | observations (agent and reward model) | seed | first round done at (s) | labels | "
        "agent steps | wall s | true return |",
        "|---|---|---|---|---|---|---|---|",
    ]
    targets = []
    for _, run in df.iterrows():
        m = pd.read_csv(run_folder(Path(meta["results"]), run["arm"], run["seed"]) / "metrics.csv")
        first = float(m.loc[m["round"] == 1, "wall_seconds"].min())
        rows.append(
            f"| {run['task']} | {shapes.get(run['task'], '-')} | {run['seed']} | {first:.1f} | "
            f"{run['labels_used']:.0f} | {run['total_timesteps']:.0f} | {run['wall_seconds']:.0f} | "
            f"{run['true_return_mean']:.1f} |"
        )
        targets.append(
            target_row(
                f"{run['task']}: first round within {MAX_FIRST_ROUND_SECONDS} s",
                f"{first:.1f} s",
                first <= MAX_FIRST_ROUND_SECONDS,
            )
        )
    body = [*rows, "", "### Targets", "", "| target | measured | |", "|---|---|---|", *targets, ""]
    notes = [
        "No preset: each id takes the usual preprocessing (rlhf_gym/tasks/observations.py), SB3's defaults "
        "and the run's label budget, natural horizon; one seed, a few thousand agent steps: that it runs "
        "and trains on pixels, not how well.",
        "",
    ]
    return {"RESULTS.md": section(df, meta, figure, body, notes)}


def measure(names: list[str], smoke: bool) -> dict[str, Any]:
    """Each task's observations as the agent sees them."""
    from rlhf_gym.tasks.registry import get_task

    shapes = {}
    for name in names:
        env = get_task(name).make("fixed")
        shapes[name] = (
            "x".join(map(str, env.observation_space.shape or ())) + f" {env.observation_space.dtype}"
        )
        env.close()
    return {"observations": shapes}


PUBLICATIONS = [
    Publication("pixels", "RLHF from pixels: the pixel benchmark", ARMS, SEEDS, render, measure),
    Publication("image_ids", "RLHF from pixels: image ids without a preset", ID_ARMS, 1, render_ids, measure),
]
