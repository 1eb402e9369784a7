"""Figures from a sweep's tidy table (``rlhf_gym.experiments.results``).

``plot`` draws what the sweep varied, one facet per task, as means with 95% bootstrap
confidence intervals across seeds: learning curves against agent steps and against labels used
(always), and the final normalised return against the budget, across teachers and across query
strategies (each when the grid varies it within a task); and the performance profiles of the
final normalised return (``stats.performance_profile``, rliable's score distributions), with
95% bootstrap bands. The markdown report is in ``rlhf_gym.experiments.report``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rlhf_gym.experiments.report import auc, labels_to_reach, report
from rlhf_gym.experiments.results import arm_items, load_table, short_names

# the report and the table loader moved to report.py and results.py; still importable from here
__all__ = ["auc", "labels_to_reach", "load_table", "plot", "profiles", "report"]

if TYPE_CHECKING:
    import pandas as pd


MEAN_CI = " (mean over seeds, 95% bootstrap CI)"  # the report gives medians and IQRs


def _finals(table: pd.DataFrame) -> pd.DataFrame:
    return table[(table["point"] == "final") & (table["status"] == "done")]


def _learned(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["reward"] == "learned"]


def _along(finals: pd.DataFrame, column: str) -> tuple[pd.DataFrame | None, str | None]:
    """The learned arms whose grid varies ``column`` within their task, each renamed by its other
    grid values (the hue, None when there are none), for a figure along ``column``; (None, None)
    when no two arms of a task name different values of it (a field that follows from another grid
    value, as CPL's uniform queries, or a budget that differs only between tasks, draws nothing)."""
    if finals.empty or column not in finals:
        return None, None
    named = [column in {i.split("=")[0] for t in arm_items(a) for i in t} for a in short_names(finals)]
    if not any(named):
        return None, None
    data = finals[named]
    if data.groupby("task")[column].nunique().max() < 2:  # one named value is no comparison
        return None, None
    data = data.assign(arm=short_names(data, drop=column))
    return data, ("arm" if data["arm"].nunique() > 1 else None)


def _wrap(table: pd.DataFrame) -> int | None:
    """Task facets per row: all in one row up to five, else rows of five."""
    return 5 if table["task"].nunique() > 5 else None


def _legend(table: pd.DataFrame) -> tuple[pd.DataFrame, str | None]:
    """The curves' legend: ``table`` with each ``arm`` named by ``short_names``, so that a sweep over
    tasks colours its ceilings, controls and learned arms alike. When more than eight arms remain
    and every learned one is named by two grid items (``teacher=stoch labels=50``), the colour
    keeps the first and a line style the second (column named by its key; ``no feedback`` for the
    controls); returns the table and that column, or None."""
    arms = short_names(table)
    learned = {a for a, reward in zip(arms, table["reward"]) if reward == "learned"}
    pairs = {a: a.split(" ") for a in learned}
    keys = {
        p[1].split("=")[0] if len(p) == 2 and "=" in p[0] and "=" in p[1] else None for p in pairs.values()
    }
    if len(set(arms)) <= 8 or len(keys) != 1 or None in keys:
        return table.assign(arm=arms), None
    key = str(keys.pop())
    split = [
        (pairs[a][0], pairs[a][1].split("=", 1)[1]) if a in learned else (a, "no feedback") for a in arms
    ]
    return table.assign(arm=[c for c, _ in split], **{key: [v for _, v in split]}), key


def _palette(table: pd.DataFrame) -> dict[str, Any]:
    """One colour per arm across a sweep's figures: the controls first, the ceiling near black and
    the constant-reward control grey, then the learned arms in grid order."""
    import seaborn as sns

    shades = {"true": "0.15", "constant": "0.6"}
    controls = dict(
        zip(table.loc[table["reward"] != "learned", "arm"], table.loc[table["reward"] != "learned", "reward"])
    )
    learned = list(dict.fromkeys(table.loc[table["reward"] == "learned", "arm"]))
    colours = sns.color_palette("deep" if len(learned) <= 10 else "husl", len(learned))
    return {a: shades.get(r, "0.4") for a, r in controls.items()} | dict(zip(learned, colours))


def _on_label_grid(table: pd.DataFrame, points: int = 20) -> pd.DataFrame:
    """Each run's true return against the labels it had used, interpolated linearly onto one grid
    of label counts per task and arm (its runs reach their evaluations at different counts when
    the budget is effort), so that the seeds can be averaged; a run gives no value outside its
    own range."""
    import numpy as np
    import pandas as pd

    frames = []
    for _, arm in table.groupby(["task", "arm"], sort=False):
        grid = np.unique(np.linspace(arm["labels_used"].min(), arm["labels_used"].max(), points).round())
        for _, run in arm.groupby("key", sort=False):
            run = run.sort_values("timesteps")
            x, y = run["labels_used"].to_numpy(float), run["true_return"].to_numpy(float)
            at = grid[(grid >= x.min()) & (grid <= x.max())]
            frames.append(
                pd.DataFrame({"labels_used": at, "true_return": np.interp(at, x, y)}).assign(
                    **run.iloc[0].drop(["labels_used", "true_return"]).to_dict()
                )
            )
    return pd.concat(frames, ignore_index=True) if frames else table[:0]


def plot(table: pd.DataFrame, out: str | Path) -> list[Path]:
    """Write the figures for ``table`` into the folder ``out``; return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import seaborn as sns

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sns.set_theme(style="whitegrid")
    done = table[table["status"] == "done"]
    style, palette = None, {}
    if not done.empty:
        done, style = _legend(done)
        palette = _palette(done)
    paths = []
    for x, name, label in (
        ("timesteps", "curves_steps", "agent steps"),
        ("labels_used", "curves_labels", "labels"),
    ):
        data = done if x == "timesteps" else _on_label_grid(_learned(done))
        if data.empty:
            continue
        grid = sns.relplot(
            data=data,
            x=x,
            y="true_return",
            hue="arm",
            hue_order=[a for a in palette if a in set(data["arm"])],
            palette=palette,
            style=style,
            col="task",
            col_wrap=_wrap(data),
            kind="line",
            marker="o",
            errorbar=("ci", 95),
            seed=0,
            facet_kws={"sharex": False, "sharey": False},
            height=3.6,
            aspect=1.4,
        )
        grid.set_axis_labels(label, "true return")
        entries = len(grid.legend.texts) if grid.legend is not None else 0
        if entries > 10:  # a long legend goes under the facets, in columns
            sns.move_legend(grid, "upper center", bbox_to_anchor=(0.5, 0), ncol=min(4, entries // 6 + 1))
        paths.append(_save(grid.figure, out / f"{name}.png", f"True return against {label}{MEAN_CI}"))
    finals = _learned(_finals(table))
    for column, name, title in (
        ("teacher", "teachers", "Robustness across teachers"),
        ("query_strategy", "queries", "Query strategies"),
    ):
        data, hue = _along(finals, column)
        if data is not None:
            grid = sns.catplot(
                data=data,
                x=column,
                y="normalised_return",
                hue=hue,
                col="task",
                col_wrap=_wrap(data),
                kind="bar",
                errorbar=("ci", 95),
                seed=0,
                height=3.6,
                aspect=max(1.3, 0.25 * data[column].nunique()),  # room for every category's name
                sharey=False,
            )
            grid.set_axis_labels(column, "normalised return")
            paths.append(
                _save(grid.figure, out / f"{name}.png", f"{title}: final normalised return{MEAN_CI}")
            )
    path = profiles(_finals(table), out)
    if path is not None:
        paths.append(path)
    for budget in ("budget_seconds", "labels"):  # the config's budgets
        data, hue = _along(finals, budget)
        if data is None:
            continue
        grid = sns.relplot(
            data=data,
            x=budget,
            y="normalised_return",
            hue=hue,
            col="task",
            col_wrap=_wrap(data),
            kind="line",
            marker="o",
            errorbar=("ci", 95),
            seed=0,
            height=3.6,
            aspect=1.3,
            facet_kws={"sharey": False},
        )
        grid.set_axis_labels(
            "effort budget (s)" if budget == "budget_seconds" else "labels", "normalised return"
        )
        paths.append(
            _save(grid.figure, out / "budget.png", f"Final normalised return against the budget{MEAN_CI}")
        )
        break
    return paths


def _save(fig: Any, path: Path, title: str) -> Path:
    fig.suptitle(title, y=1.03)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def profiles(finals: pd.DataFrame, out: str | Path) -> Path | None:
    """Performance profiles, one facet per task: for each arm, the fraction of its runs whose
    final normalised return exceeds tau, against tau, with 95% stratified bootstrap bands;
    written to ``profiles.png`` in ``out`` (None when no run has a normalised return)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from rlhf_gym.experiments.stats import performance_profile

    data = finals[finals["normalised_return"].notna()]
    if data.empty:
        return None
    data = data.assign(arm=short_names(data))
    palette = _palette(data)
    scores = data["normalised_return"].to_numpy(float)
    taus = np.linspace(min(0.0, scores.min()), max(1.0, scores.max()), 81)
    tasks = list(dict.fromkeys(data["task"]))
    cols = min(len(tasks), 5)
    rows = -(-len(tasks) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.0 * cols, 3.6 * rows), squeeze=False)
    for ax, task in zip(axes.flat, tasks):
        runs = data[data["task"] == task]
        for arm in [a for a in palette if a in set(runs["arm"])]:
            p = performance_profile(runs.loc[runs["arm"] == arm, "normalised_return"].to_numpy(float), taus)
            ax.plot(p["tau"], p["fraction"], color=palette[arm], label=arm, drawstyle="steps-post")
            ax.fill_between(p["tau"], p["low"], p["high"], color=palette[arm], alpha=0.15, step="post")
        ax.set(
            title=f"task = {task}",
            xlabel="normalised return τ",
            ylabel="fraction of runs > τ",
            ylim=(0, 1.02),
        )
    for ax in axes.flat[len(tasks) :]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    for ax in axes.flat[1 : len(tasks)]:  # every arm once, in the palette's order
        for h, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                handles.append(h)
                labels.append(label)
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.tight_layout()
    title = "Performance profiles of the final normalised return (95% stratified bootstrap bands)"
    return _save(fig, Path(out) / "profiles.png", title)
