"""The published sweep presets: each of ``benchmarks/sweeps/<name>.yaml`` named in ``PUBLISHED`` is a
publication of ``publish.py``, its arms the sweep's grid (controls included), resolved as
``rlhf-gym sweep`` resolves them:

    python benchmarks/publish.py teachers queries cpl

The same YAML runs as a sweep of your own with ``rlhf-gym sweep benchmarks/sweeps/<name>.yaml``;
published, its runs keep their summaries and metrics under ``benchmarks/results/<name>/`` and its
section gives, beside every arm's IQM with its CI, the probability of improvement between arms
that differ in one grid field (``rlhf_gym.experiments.report``).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from publish import Publication
from report import normalise, section

HERE = Path(__file__).resolve().parent
PUBLISHED = ("teachers", "queries", "cpl")
"""The sweep presets published; ``tasks`` and ``feedback_types`` are publications of
``label_efficiency.py``, and ``smoke`` checks the runner (``tests``)."""


def sweep_arms(name: str) -> tuple[str, dict[str, dict[str, Any]], int]:
    """The preset's description, its arms (label -> the run's resolved config without its seed, as
    JSON gives it back) and its number of seeds.

    Raises:
        ValueError: its seeds are not 0, 1, ..., n-1 (a publication runs the first n seeds).
    """
    from rlhf_gym.experiments.grid import Sweep

    sweep = Sweep.from_yaml(HERE / "sweeps" / f"{name}.yaml")
    seeds = list(sweep.seeds)
    if seeds != list(range(len(seeds))):
        raise ValueError(f"sweep {name}: a publication runs seeds 0..n-1, got {seeds}")
    arms: dict[str, dict[str, Any]] = {}
    for run in dataclasses.replace(sweep, seeds=(0,)).runs():  # the arms of every seed are the same
        if run.arm in arms:
            raise ValueError(f"sweep {name}: two runs of one seed are both named {run.arm!r}")
        arms[run.arm] = {k: v for k, v in run.config.items() if k != "seed"}
    return sweep.description, json.loads(json.dumps(arms)), len(seeds)


def improvement_by_task(df: Any) -> list[str]:
    """The probability of improvement between the learned arms of each task that differ in one grid
    field (``rlhf_gym.experiments.report.improvement_lines``); arms of different tasks are never
    compared."""
    from rlhf_gym.experiments.report import improvement_lines

    lines: list[str] = []
    learned = df[df["reward"] == "learned"]
    tasks = list(dict.fromkeys(learned["task"]))
    for task in tasks:
        runs = learned[learned["task"] == task]
        scores = {a: [g["normalised_return"].to_numpy(float)] for a, g in runs.groupby("arm", sort=False)}
        table = improvement_lines(scores)
        if table and len(tasks) > 1:
            lines += [f"**{task}**", ""]
        lines += table
    return lines


def render(df: Any, meta: dict[str, Any], figure: Path | None) -> dict[str, str]:
    """The section: the probability of improvement between learned arms one grid field apart, then
    every arm's IQM (``report.section``)."""
    normalise(df, meta["random_returns"])
    return {"RESULTS.md": section(df, meta, figure, improvement_by_task(df) + twins(df))}


def twins(df: Any) -> list[str]:
    """A note on each learned arm whose runs match an earlier arm's in every seed (the same final
    return and reward-model accuracy): on this task its setting changed nothing that was measured,
    as a teacher whose labels equal the oracle's would.

    Example:
        >>> import pandas as pd
        >>> rows = {"arm": ["a", "a", "b", "b"], "seed": [0, 1, 0, 1], "reward": ["learned"] * 4}
        >>> rows |= {"true_return_mean": [500.0, 320.5] * 2, "reward_model_accuracy": [0.9, 0.8] * 2}
        >>> twins(pd.DataFrame(rows))[2]
        '- b: the same runs as a in every seed (2 of 2): its setting changed nothing measured here.'
    """
    columns = ["seed", "true_return_mean", "reward_model_accuracy"]
    learned = df[df["reward"] == "learned"]
    runs = {
        a: tuple(g.sort_values("seed")[columns].itertuples(False))
        for a, g in learned.groupby("arm", sort=False)
    }
    lines: list[str] = []
    seen: dict[Any, str] = {}
    for arm, key in runs.items():
        if key in seen and len(key) > 1:
            n = len(key)
            lines.append(
                f"- {arm}: the same runs as {seen[key]} in every seed ({n} of {n}): its setting changed "
                "nothing measured here."
            )
        seen.setdefault(key, arm)
    return ["Arms whose runs repeat another arm's:", "", *lines, ""] if lines else []


PUBLICATIONS = []
for _name in PUBLISHED:
    _description, _arms, _seeds = sweep_arms(_name)
    PUBLICATIONS.append(Publication(_name, f"Sweep {_name}: {_description}", _arms, _seeds, render))
