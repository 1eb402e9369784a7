"""Figures and a markdown report from a sweep's tidy table (``rlhf_gym.experiments.results``).

``plot`` draws what the sweep varied, one facet per task, as means with 95% bootstrap
confidence intervals across seeds: learning curves against agent steps and against labels used
(always), and the final normalised return against the budget, across teachers and across query
strategies (each when the grid varies it within a task). ``report`` writes one markdown table per task:
the controls first, then every arm, with the median and IQR of the final return, the labels
needed to reach 90% of the ceiling, and the area under the learning curve.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


MEAN_CI = " (mean over seeds, 95% bootstrap CI)"  # the report gives medians and IQRs


def load_table(results: str | Path) -> pd.DataFrame:
    """A sweep folder's ``results.parquet`` (or a ``.parquet``/``.csv`` file) as a table."""
    import pandas as pd

    path = Path(results)
    if path.is_dir():
        path = path / "results.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"no results at {results}; expected a sweep folder or a .parquet/.csv table")
    table = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
    missing = {"arm", "task", "point", "true_return", "normalised_return"} - set(table.columns)
    if missing:
        raise ValueError(f"{path} is not a sweep results table: it lacks {', '.join(sorted(missing))}")
    return table


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
    named = [column in {i.split("=")[0] for t in _items(a) for i in t} for a in _names(finals)]
    if not any(named):
        return None, None
    data = finals[named]
    if data.groupby("task")[column].nunique().max() < 2:  # one named value is no comparison
        return None, None
    data = data.assign(arm=_names(data, drop=column))
    return data, ("arm" if data["arm"].nunique() > 1 else None)


def _wrap(table: pd.DataFrame) -> int | None:
    """Task facets per row: all in one row up to five, else rows of five."""
    return 5 if table["task"].nunique() > 5 else None


def _items(arm: str) -> list[list[str]]:
    """An arm's name as its grid values: space-separated, each one or more comma-separated items."""
    return [t.split(",") for t in str(arm).split(" ")]


def _names(table: pd.DataFrame, drop: str | None = None) -> list[str]:
    """Each row's arm named without the grid items that all learned arms of its task share
    (``task=...``, a preset's budget), which the facet already implies, and without the items of
    the field ``drop``; an arm left with no item is ``learned reward``."""
    shared: dict[str, set[str]] = {}
    for task, rows in table.groupby("task", sort=False):
        learned = rows.loc[rows["reward"] == "learned", "arm"].unique()
        sets = [{i for t in _items(a) for i in t} for a in learned]
        shared[task] = set.intersection(*sets) if sets else set()
        shared[task].add(f"task={task}")
    names = {}
    for arm, task in set(zip(table["arm"], table["task"])):
        keep = [[i for i in t if i not in shared[task] and i.split("=")[0] != drop] for t in _items(arm)]
        names[arm, task] = " ".join(",".join(t) for t in keep if t) or "learned reward"
    return [names[a, t] for a, t in zip(table["arm"], table["task"])]


def _legend(table: pd.DataFrame) -> tuple[pd.DataFrame, str | None]:
    """The curves' legend: ``table`` with each ``arm`` named by ``_names``, so that a sweep over
    tasks colours its ceilings, controls and learned arms alike. When more than eight arms remain
    and every learned one is named by two grid items (``teacher=stoch labels=50``), the colour
    keeps the first and a line style the second (column named by its key; ``no feedback`` for the
    controls); returns the table and that column, or None."""
    arms = _names(table)
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


def labels_to_reach(runs: pd.DataFrame, level: float = 0.9) -> float:
    """Median over seeds of the labels used at the first evaluation with a normalised return of
    at least ``level`` (NaN unless more than half the seeds get there)."""
    import numpy as np

    hits = []
    for _, run in runs.groupby("key"):
        run = run.sort_values("timesteps")
        reached = run[run["normalised_return"] >= level]
        hits.append(float(reached["labels_used"].iloc[0]) if len(reached) else np.inf)
    median = float(np.median(hits)) if hits else np.nan
    return median if np.isfinite(median) else np.nan


def auc(runs: pd.DataFrame) -> float:
    """Median over seeds of the area under the normalised-return curve, per unit of agent steps
    (the mean normalised return over training; 1 is the ceiling from the start)."""
    import numpy as np

    areas = []
    for _, run in runs.groupby("key"):
        run = run.sort_values("timesteps")
        x, y = run["timesteps"].to_numpy(float), run["normalised_return"].to_numpy(float)
        if len(x) > 1 and x[-1] > x[0]:
            areas.append(float(((y[1:] + y[:-1]) / 2 * np.diff(x)).sum() / (x[-1] - x[0])))
    return float(np.median(areas)) if areas else np.nan


def _num(value: float, spec: str) -> str:
    return "-" if value != value else format(value, spec)  # NaN prints as "-"


def _iqr(values: pd.Series) -> str:
    import numpy as np

    v = values.dropna().to_numpy(float)
    if not len(v):
        return "-"
    q1, med, q3 = np.percentile(v, [25, 50, 75])
    return f"{med:.3g} [{q1:.3g}, {q3:.3g}]"


def report(table: pd.DataFrame, title: str = "Sweep results", command: str | None = None) -> str:
    """A markdown report: per task and ceiling group, the controls then each arm, with medians and
    IQRs over seeds."""
    import numpy as np

    lines = [f"## {title}", ""]
    if command:
        lines += [f"Command: `{command}`", ""]
    platforms = table["platform"].dropna().unique() if "platform" in table else []
    if len(platforms) > 1:
        lines += [
            f"These runs ran on {len(platforms)} platforms ({'; '.join(f'`{p}`' for p in platforms)}). "
            "Torch picks its float kernels by the CPU, so a learned-reward run is repeatable only on "
            "its own platform: compare arms within one.",
            "",
        ]
    for task, rows in table.groupby("task", sort=False):
        lines += [
            f"### {task}",
            "",
            "| arm | seeds | failed | true return, median [IQR] | normalised, median [IQR] | "
            "labels to 90% | AUC | wall s |",
            "|---|---|---|---|---|---|---|---|",
        ]
        # each ceiling group together, its controls first, so every arm sits beside its controls
        groups = list(dict.fromkeys(rows["ceiling"]))
        firsts = rows.drop_duplicates("arm")
        order = sorted(
            zip(firsts["arm"], firsts["ceiling"], firsts["reward"] == "learned"),
            key=lambda a: (groups.index(a[1]), a[2]),
        )
        for arm, _, learned in order:
            runs = rows[rows["arm"] == arm]
            done = runs[runs["status"] == "done"]
            finals = _finals(runs)
            failed = runs[runs["status"] == "failed"]["key"].nunique()
            reach = labels_to_reach(done) if learned else np.nan
            lines.append(
                f"| {arm} | {finals['key'].nunique()} | {failed} | {_iqr(finals['true_return'])} | "
                f"{_iqr(finals['normalised_return'])} | {_num(reach, '.0f')} | {_num(auc(done), '.3f')} | "
                f"{_num(finals['wall_seconds'].median(), '.0f')} |"
            )
        lines.append("")
    return "\n".join(lines)
