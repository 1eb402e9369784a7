"""Turn benchmark run summaries into a RESULTS.md section, target checks and a figure."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

HEADER = """# Benchmark results

Every figure here was produced by the command written beside it, on a 2-core CPU machine.
Returns are medians over seeds of the mean true return of 20 deterministic episodes on the
natural-horizon task. Normalised return is (R - R_random) / (R_true - R_random), with the
true-reward run of the same benchmark as the ceiling. Ratios are taken seed by seed between
runs that ran side by side, then the median is reported.
"""


def one_thread() -> None:
    """One torch and one BLAS thread in this process: a worker of a pool that fills every core."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(1)


def _median(values: list[float]) -> float:
    import numpy as np

    return float(np.median(values)) if values else float("nan")


def write_report(
    summaries: list[dict[str, Any]],
    randoms: dict[str, float],
    command: str,
    report: Path,
    figure: Path,
    n_seeds: int,
    section: str = "label_efficiency",
    title: str = "Label efficiency (core RLHF loop)",
    notes: list[str] | None = None,
    allow_mixed: bool = False,
) -> None:
    """Write the section ``section`` of ``report`` and its figure from the runs' summaries; the
    section names the one code version and platform of its runs, and refuses summaries of several
    (``rlhf_gym.experiments.results.provenance``) unless ``allow_mixed``, when it says so."""
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd
    import seaborn as sns

    from rlhf_gym.experiments.results import provenance

    df = pd.DataFrame(summaries)
    origin = provenance(df, allow_mixed, f"the {section} runs")
    df["env_step_ratio"] = df["env_steps"] / df["total_timesteps"]
    ceilings = {}
    for task in df["task"].unique():
        true_runs = df[(df["task"] == task) & (df["reward"] == "true")]
        ceilings[task] = _median(true_runs["true_return_mean"].tolist())
    df["normalised_return"] = [
        (r - randoms[t]) / (ceilings[t] - randoms[t]) if ceilings[t] != randoms[t] else float("nan")
        for r, t in zip(df["true_return_mean"], df["task"])
    ]

    for col in ("feedback", "effort_seconds"):
        if col not in df:
            df[col] = float("nan")
    rows = [
        "| arm | task | horizon | reward | feedback | teacher | labels | effort s | "
        "true return (median, min-max) | normalised | env steps / timesteps | RM held-out acc. | wall s |",
        "|" + "---|" * 13,
    ]
    for arm, g in df.groupby("arm", sort=False):
        first = g.iloc[0]
        acc = g["reward_model_accuracy"].dropna()
        rows.append(
            f"| {arm} | {first['task']} | {first['horizon']} | {first['reward']} | "
            f"{first['feedback'] if first['reward'] == 'learned' else '-'} | "
            f"{first['teacher'] if first['reward'] == 'learned' else '-'} | "
            f"{_median(g['labels_used'].tolist()):.0f} | {_median(g['effort_seconds'].tolist()):.0f} | "
            f"{_median(g['true_return_mean'].tolist()):.1f} ({g['true_return_mean'].min():.1f} to "
            f"{g['true_return_mean'].max():.1f}) | {_median(g['normalised_return'].tolist()):.3f} | "
            f"{_median(g['env_step_ratio'].tolist()):.3f} | "
            f"{_median(acc.tolist()) if len(acc) else float('nan'):.3f} | "
            f"{_median(g['wall_seconds'].tolist()):.1f} |"
        )

    by = {arm: g.set_index("seed") for arm, g in df.groupby("arm")}
    targets = {
        "label_efficiency": core_targets,
        "feedback_types": feedback_targets,
        "tasks": task_targets,
    }.get(section, lambda *_: [])(df, by, ceilings)

    figure.parent.mkdir(parents=True, exist_ok=True)
    sns.set_theme(style="whitegrid")
    tasks = list(df["task"].unique())
    fig = sns.catplot(
        data=df,
        x="true_return_mean",
        y="arm",
        col="task",
        kind="box",
        sharex=False,
        sharey=False,
        col_wrap=min(2, len(tasks)),
        height=3.6,
        aspect=1.5,
        color="#9ecae1",
    )
    for ax, task in zip(fig.axes.flat, tasks):
        sub = df[df["task"] == task]
        sns.stripplot(data=sub, x="true_return_mean", y="arm", ax=ax, color="#08519c", size=4)
        ax.axvline(randoms[task], color="grey", ls="--", lw=1)
        ax.set_xlabel("true return")
        ax.set_ylabel("")
    fig.figure.suptitle(
        f"rlhf-gym, {title}: true return of 20 deterministic episodes, {n_seeds} seeds "
        "(dashed: random policy)",
        y=1.03,
    )
    fig.savefig(figure, dpi=90, bbox_inches="tight")

    try:
        rel_fig = figure.relative_to(report.parent)
    except ValueError:
        rel_fig = figure
    random_line = ", ".join(f"{t} {v:.1f}" for t, v in randoms.items())
    block = "\n".join(
        [
            f"<!-- {section}:start -->",
            f"## {title}",
            "",
            f"Command: `{command}` ({n_seeds} seed{'s' if n_seeds != 1 else ''} per arm). "
            f"Random-policy returns: {random_line}.",
            "",
            *origin,
            "",
            *(notes or []),
            *(
                ["### Targets", "", "| target | measured | |", "|---|---|---|", *targets, ""]
                if targets
                else []
            ),
            "### All arms",
            "",
            *rows,
            "",
            f"![{title}]({rel_fig})",
            f"<!-- {section}:end -->",
        ]
    )
    put_section(report, section, block)


def put_section(report: Path, section: str, block: str) -> None:
    """Replace the ``<!-- section:start -->`` ... ``<!-- section:end -->`` block of ``report``
    with ``block`` (which carries the markers), or append it if the report has none."""
    text = report.read_text() if report.is_file() else HEADER
    pattern = re.compile(rf"<!-- {section}:start -->.*<!-- {section}:end -->", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    report.write_text(text)


def hardware() -> str:
    """The machine in a few words: cores, then ``rlhf_gym.provenance.platform`` (the CPU model, its
    torch kernels, Python and the versions the numbers depend on)."""
    import os

    from rlhf_gym.provenance import platform

    return f"{os.cpu_count()} cores, no GPU, {platform()}"


def core_targets(df: Any, by: dict[str, Any], ceilings: dict[str, float]) -> list[str]:
    """The core issue's targets, each with its measured figure and whether it was met."""

    def ret(arm: str) -> float:
        return _median(by[arm]["true_return_mean"].tolist()) if arm in by else float("nan")

    def ratio(a: str, b: str, col: str) -> float:
        if a not in by or b not in by:
            return float("nan")
        joined = by[a][[col]].join(by[b][[col]], lsuffix="_a", rsuffix="_b", how="inner")
        return _median((joined[f"{col}_a"] / joined[f"{col}_b"]).tolist())

    targets: list[str] = []

    def target(text: str, value: float, ok: bool, digits: int = 1) -> None:
        targets.append(f"| {text} | {value:.{digits}f} | {'met' if ok else '**missed**'} |")

    r = ret("cartpole-natural-oracle-50")
    target("CartPole natural, PPO 100k, 50 oracle comparisons: return >= 475", r, r >= 475)
    r, c = ret("cartpole-fixed-oracle-50"), ret("cartpole-fixed-constant")
    target("CartPole fixed, same settings: return >= 475", r, r >= 475)
    target("CartPole fixed, constant-reward control far below (< 50% of 475)", c, c < 237.5)
    if "Pendulum-v1" in ceilings:
        n = _median(df[df["arm"] == "pendulum-oracle-100"]["normalised_return"].tolist())
        target("Pendulum SAC, 100 oracle comparisons: normalised return >= 0.95", n, n >= 0.95, 3)
    w = ratio("cartpole-natural-oracle-50", "cartpole-natural-true", "wall_seconds")
    target("Overhead: wall time RLHF / true reward, CartPole natural (paired seeds) <= 1.2", w, w <= 1.2, 3)
    if "pendulum-true" in by:
        w = ratio("pendulum-oracle-100", "pendulum-true", "wall_seconds")
        target("Overhead: wall time RLHF / true reward, Pendulum SAC (paired seeds) <= 1.2", w, w <= 1.2, 3)
    learned = df[df["reward"] == "learned"]
    e = float(learned["env_step_ratio"].max()) if len(learned) else float("nan")
    target("Env steps / nominal timesteps, worst RLHF run <= 1.1", e, e <= 1.1, 3)
    oracle = ret("cartpole-fixed-oracle-100")
    for teacher in ("stoch", "mistake"):
        t = ret(f"cartpole-fixed-{teacher}-100")
        target(
            f"CartPole fixed, 100 {teacher} comparisons >= 90% of oracle ({0.9 * oracle:.1f})",
            t,
            t >= 0.9 * oracle,
        )
    return targets


def feedback_targets(df: Any, by: dict[str, Any], ceilings: dict[str, float]) -> list[str]:
    """The feedback-types issue's targets, at equal effort, per task."""
    targets: list[str] = []

    def norm(arm: str) -> float:
        return _median(by[arm]["normalised_return"].tolist()) if arm in by else float("nan")

    for short, task in (("cartpole", "CartPole-v1"), ("pendulum", "Pendulum-v1")):
        if task not in ceilings:
            continue
        singles = {}
        for kind in ("comparisons", "corrections", "demonstrations", "ratings", "tamer", "estops"):
            n = singles[kind] = norm(f"{short}-{kind}")
            verdict = "met" if n >= 0.8 else "**missed**"
            targets.append(f"| {task}: {kind} normalised return >= 0.8 | {n:.3f} | {verdict} |")
        if f"{short}-demonstrations-bc" in by:
            n = norm(f"{short}-demonstrations-bc")
            verdict = "met" if n >= 0.8 else "**missed**"
            targets.append(f"| {task}: demonstrations with behaviour cloning, >= 0.8 | {n:.3f} | {verdict} |")
        best = max(singles, key=lambda k: singles[k] if singles[k] == singles[k] else -1e9)
        m = norm(f"{short}-mix")
        verdict = "met" if m >= singles[best] - 1e-9 else "**missed**"
        targets.append(
            f"| {task}: mix >= best single type ({best}, {singles[best]:.3f}) | {m:.3f} | {verdict} |"
        )
        half, comp = norm(f"{short}-corrections-half"), singles["comparisons"]
        ok = half >= 0.9 * comp
        targets.append(
            f"| {task}: corrections at half effort >= 90% of comparisons ({0.9 * comp:.3f}) | {half:.3f} | "
            f"{'met' if ok else '**missed**'} |"
        )
    return targets


def task_targets(df: Any, by: dict[str, Any], ceilings: dict[str, float]) -> list[str]:
    """The task suite's target: RLHF with at most 300 oracle comparisons reaches a normalised
    return of 0.8 on each of the project's own tasks."""
    targets = []
    for task in ceilings:
        arm = f"{task}-oracle"
        if arm not in by:
            continue
        n = _median(by[arm]["normalised_return"].tolist())
        labels = _median(by[arm]["labels_used"].tolist())
        ok = n >= 0.8 and labels <= 300
        targets.append(
            f"| {task}: {labels:.0f} oracle comparisons (<= 300), normalised return >= 0.8 | {n:.3f} | "
            f"{'met' if ok else '**missed**'} |"
        )
    return targets
