"""A markdown report from a sweep's tidy table (``rlhf_gym.experiments.results``).

One table per task: the controls first, then every arm, with the median and IQR of the final
return and normalised return, the interquartile mean (IQM) of the final normalised return with
its 95% stratified bootstrap confidence interval (``rlhf_gym.experiments.stats``), the labels
needed to reach 90% of the ceiling and the area under the learning curve. Under it, the
probability of improvement between every two learned arms that differ in one grid field, with
its CI. A sweep over several tasks gets the same across tasks, resampled within each task. The
text ranks two arms only where their intervals do not overlap (the probability of improvement:
where its interval leaves out 0.5).

The report refuses a table that mixes code versions or platforms unless ``allow_mixed`` is given,
and then says so above the tables (``results.provenance``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from rlhf_gym.experiments.results import arm_items, provenance, short_names
from rlhf_gym.experiments.stats import CONFIDENCE, N_RESAMPLES, Estimate, iqm_ci, probability_of_improvement

if TYPE_CHECKING:
    import pandas as pd

METHOD = (
    f"IQM: the interquartile mean of the final normalised return over seeds, with its "
    f"{CONFIDENCE:.0%} stratified bootstrap CI (runs resampled within each task, {N_RESAMPLES} "
    "resamples, percentiles; the rliable protocol of Agarwal et al. 2021). P(A > B): the probability "
    "that a run of A ends with a higher normalised return than a run of B (ties count a half), "
    "with its CI; a ranking is claimed only where the CIs say so."
)


def labels_to_reach(runs: pd.DataFrame, level: float = 0.9) -> float:
    """Median over seeds of the labels used at the first evaluation with a normalised return of
    at least ``level`` (NaN unless more than half the seeds get there)."""
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
    v = values.dropna().to_numpy(float)
    if not len(v):
        return "-"
    q1, med, q3 = np.percentile(v, [25, 50, 75])
    return f"{med:.3g} [{q1:.3g}, {q3:.3g}]"


def _ci(e: Estimate) -> str:
    return "-" if np.isnan(e.low) else f"[{e.low:.3g}, {e.high:.3g}]"


def _finals(table: pd.DataFrame) -> pd.DataFrame:
    return table[(table["point"] == "final") & (table["status"] == "done")]


def one_field_apart(arms: list[str]) -> list[tuple[str, str, str]]:
    """Every two arms whose names give the same grid fields and differ in the value of exactly
    one, as (field, first arm, second arm) in the order of ``arms``; controls and arms named by
    no field are left out.

    Example:
        >>> one_field_apart(["teacher=oracle labels=50", "teacher=stoch labels=50",
        ...                  "teacher=stoch labels=100", "ceiling (true reward)"])
        [('teacher', 'teacher=oracle labels=50', 'teacher=stoch labels=50'), \
('labels', 'teacher=stoch labels=50', 'teacher=stoch labels=100')]
    """
    parsed = {}
    for arm in arms:
        tokens = [",".join(t) for t in arm_items(arm)]
        if all("=" in i for t in arm_items(arm) for i in t):
            parsed[arm] = ([",".join(i.split("=")[0] for i in t) for t in arm_items(arm)], tokens)
    pairs = []
    names = list(parsed)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            (fa, va), (fb, vb) = parsed[a], parsed[b]
            differ = [k for k in range(len(va)) if va[k] != vb[k]] if fa == fb else []
            if len(differ) == 1:
                pairs.append((fa[differ[0]], a, b))
    return pairs


def _verdict(p: Estimate, a: str, b: str) -> str:
    if np.isnan(p.low):
        return "too few seeds for a CI"
    if p.low > 0.5:
        return f"{a} better"
    if p.high < 0.5:
        return f"{b} better"
    return "no ranking (CI includes 0.5)"


def improvement_lines(scores: dict[str, list[np.ndarray]], seed: int = 0) -> list[str]:
    """The markdown table of the probability of improvement between learned arms one field apart;
    ``scores`` maps each arm to its runs' final normalised returns, one array per task."""
    pairs = one_field_apart(list(scores))
    if not pairs:
        return []
    lines = [
        "Probability of improvement between arms that differ in one grid field:",
        "",
        f"| field | A | B | P(A > B) | {CONFIDENCE:.0%} CI | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for field, a, b in pairs:
        p = probability_of_improvement(scores[a], scores[b], seed=seed)
        lines.append(f"| {field} | {a} | {b} | {_num(p.value, '.3g')} | {_ci(p)} | {_verdict(p, a, b)} |")
    return [*lines, ""]


def best_line(estimates: dict[str, Estimate]) -> list[str]:
    """One sentence on the learned arm with the highest IQM: ranked first only if its CI lies
    above every other arm's; otherwise the arms whose CIs overlap its are named.

    Example:
        >>> print(best_line({"a": Estimate(0.9, 0.8, 1.0), "b": Estimate(0.5, 0.3, 0.7)})[0])
        Highest IQM: a, 0.9 [0.8, 1]; its CI lies above every other arm's.
        >>> print(best_line({"a": Estimate(0.9, 0.6, 1.0), "b": Estimate(0.5, 0.3, 0.7)})[0])
        Highest IQM: a, 0.9 [0.6, 1]; its CI overlaps that of b, so no ranking among them is claimed.
    """
    known = {a: e for a, e in estimates.items() if not np.isnan(e.value)}
    if len(known) < 2:
        return []
    best = max(known, key=lambda a: known[a].value)
    tied = [a for a, e in known.items() if a != best and known[best].overlaps(e)]
    if not tied:
        return [f"Highest IQM: {best}, {known[best]}; its CI lies above every other arm's.", ""]
    those = "that of " + tied[0] if len(tied) == 1 else "those of " + ", ".join(tied)
    return [
        f"Highest IQM: {best}, {known[best]}; its CI overlaps {those}, so no ranking among them is claimed.",
        "",
    ]


def _task_lines(task: str, rows: pd.DataFrame) -> list[str]:
    lines = [
        f"### {task}",
        "",
        "| arm | seeds | failed | true return, median [IQR] | normalised, median [IQR] | normalised IQM | "
        f"{CONFIDENCE:.0%} CI | labels to 90% | AUC | wall s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    # each ceiling group together, its controls first, so every arm sits beside its controls
    groups = list(dict.fromkeys(rows["ceiling"]))
    firsts = rows.drop_duplicates("arm")
    order = sorted(
        zip(firsts["arm"], firsts["ceiling"], firsts["reward"] == "learned"),
        key=lambda a: (groups.index(a[1]), a[2]),
    )
    scores, estimates = {}, {}
    for arm, _, learned in order:
        runs = rows[rows["arm"] == arm]
        done = runs[runs["status"] == "done"]
        finals = _finals(runs)
        failed = runs[runs["status"] == "failed"]["key"].nunique()
        reach = labels_to_reach(done) if learned else np.nan
        normalised = finals["normalised_return"].to_numpy(float)
        e = iqm_ci(normalised)
        if learned:
            scores[arm], estimates[arm] = [normalised], e
        lines.append(
            f"| {arm} | {finals['key'].nunique()} | {failed} | {_iqr(finals['true_return'])} | "
            f"{_iqr(finals['normalised_return'])} | {_num(e.value, '.3g')} | {_ci(e)} | "
            f"{_num(reach, '.0f')} | {_num(auc(done), '.3f')} | "
            f"{_num(finals['wall_seconds'].median(), '.0f')} |"
        )
    return [*lines, "", *best_line(estimates), *improvement_lines(scores)]


def _across_tasks(table: pd.DataFrame) -> list[str]:
    """Each arm named without its task (``short_names``), over every task it ran on."""
    finals = _finals(table)
    finals = finals.assign(arm=short_names(finals))
    lines = [
        "### All tasks",
        "",
        f"| arm | tasks | runs | normalised IQM | {CONFIDENCE:.0%} CI |",
        "|---|---|---|---|---|",
    ]
    scores, estimates = {}, {}
    tasks = list(dict.fromkeys(finals["task"]))
    for arm, runs in finals.groupby("arm", sort=False):
        by_task = [runs.loc[runs["task"] == t, "normalised_return"].to_numpy(float) for t in tasks]
        e = iqm_ci([s for s in by_task if len(s)])
        if (runs["reward"] == "learned").all():
            scores[arm], estimates[arm] = by_task, e
        lines.append(
            f"| {arm} | {runs['task'].nunique()} | {runs['key'].nunique()} | "
            f"{_num(e.value, '.3g')} | {_ci(e)} |"
        )
    return [*lines, "", *best_line(estimates), *improvement_lines(scores)]


def report(
    table: pd.DataFrame, title: str = "Sweep results", command: str | None = None, allow_mixed: bool = False
) -> str:
    """A markdown report (see the module docstring).

    Args:
        table: the sweep's tidy table.
        title: the heading.
        command: the command that made the results, written under the heading.
        allow_mixed: report runs of several code versions or platforms together (with a warning
            line); without it they raise ``ValueError``.
    """
    lines = [f"## {title}", ""]
    if command:
        lines += [f"Command: `{command}`", ""]
    lines += [*provenance(table, allow_mixed), "", METHOD, ""]
    for task, rows in table.groupby("task", sort=False):
        lines += _task_lines(str(task), rows)
    if table["task"].nunique() > 1:
        lines += _across_tasks(table)
    return "\n".join(lines).rstrip() + "\n"
