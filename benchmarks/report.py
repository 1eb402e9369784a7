"""Turn benchmark runs into RESULTS.md sections: IQMs with confidence intervals, targets, figures."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

HEADER = """# Benchmark results

Every section here is rendered by `python benchmarks/publish.py` from the raw results committed under
`benchmarks/results/` (each run's `summary.json` and `metrics.csv`, and `runs.csv`, the tidy table; a
measurement such as *Labelling app* keeps its figures in `meta.json`), on the 2-core CPU machine and the
code version each section names; `tests/test_publish.py` fails if this file differs from that rendering.
A section runs again, resumably, with the command it names; one whose results an earlier version of
`rlhf_gym/` or `envs/` made says so in bold (**Stale**). Results of earlier code versions, not current:
[archive/RESULTS-before-republication.md](archive/RESULTS-before-republication.md).
"""


def one_thread() -> None:
    """One torch and one BLAS thread in this process: a worker of a pool that fills every core."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(1)


def _median(values: Any) -> float:
    import numpy as np

    values = [v for v in values if v == v]
    return float(np.median(values)) if values else float("nan")


def normalise(df: Any, randoms: dict[str, float]) -> dict[tuple[str, str], float]:
    """Add ``normalised_return`` to the runs' table: (R - R_random) / (R_ceiling - R_random), the
    ceiling being the IQM of the true-reward runs of the same task and horizon; and
    ``env_step_ratio``, every environment step taken (the agent's, the initial rollouts' and the
    synthetic teachers') over the config's nominal timesteps. Returns the ceilings."""
    from rlhf_gym.experiments.stats import iqm

    ceilings = {}
    for (task, horizon), g in df.groupby(["task", "horizon"], sort=False):
        true_runs = g[g["reward"] == "true"]
        ceilings[task, horizon] = (
            iqm(true_runs["true_return_mean"].to_numpy(float)) if len(true_runs) else float("nan")
        )
    df["normalised_return"] = [
        (r - randoms[t]) / (ceilings[t, h] - randoms[t]) if ceilings[t, h] != randoms[t] else float("nan")
        for r, t, h in zip(df["true_return_mean"], df["task"], df["horizon"])
    ]
    nominal = df["nominal_timesteps"] if "nominal_timesteps" in df else df["total_timesteps"]
    df["env_step_ratio"] = (df["env_steps"] + df["feedback_env_steps"].fillna(0)) / nominal
    return ceilings


def target_row(text: str, measured: Any, ok: bool) -> str:
    """A row of a targets table: what, the measured figure, and met or missed."""
    return f"| {text} | {measured} | {'met' if ok else '**missed**'} |"


def shown(e: Any) -> str:
    """An estimate as a table cell: ``IQM [low, high]``, or "not measured" when no run gives one."""
    return "not measured" if e.value != e.value else str(e)


def arm_iqm(df: Any, arm: str, col: str = "normalised_return") -> Any:
    """The IQM of ``col`` over the arm's seeds, with its 95% bootstrap CI (``Estimate``)."""
    from rlhf_gym.experiments.stats import iqm_ci

    return iqm_ci(df.loc[df["arm"] == arm, col].to_numpy(float))


def paired_ratio(df: Any, a: str, b: str, col: str = "wall_seconds") -> Any:
    """The IQM, with CI, of ``col`` of arm ``a`` over arm ``b``, seed by seed (runs side by side)."""
    from rlhf_gym.experiments.stats import iqm_ci

    x = df[df["arm"] == a].set_index("seed")[col]
    y = df[df["arm"] == b].set_index("seed")[col]
    ratios = (x / y).dropna()
    return iqm_ci(ratios.to_numpy(float))


def arms_table(df: Any, level: float = 0.95) -> list[str]:
    """Every arm: its settings, the IQM of normalised return with its CI, the return of every seed
    (the failures show), how many seeds reach ``level`` of the ceiling, and its costs."""
    rows = [
        "| arm | task | horizon | reward | feedback | teacher | labels | normalised return, IQM [95% CI] | "
        f"seeds at >= {level:g} | true return by seed | RM held-out acc. (median) | wall s (median) |",
        "|" + "---|" * 12,
    ]
    for arm, g in df.groupby("arm", sort=False):
        first = g.iloc[0]
        learned = first["reward"] == "learned"
        returns = ", ".join(
            f"{r:.0f}" if abs(r) >= 100 else f"{r:.1f}" for r in g.sort_values("seed")["true_return_mean"]
        )
        reached = int((g["normalised_return"] >= level).sum())
        acc = (
            _median(g["reward_model_accuracy"].astype(float))
            if "reward_model_accuracy" in g
            else float("nan")
        )
        rows.append(
            f"| {arm} | {first['task']} | {first['horizon']} | {first['reward']} | "
            f"{first.get('feedback', '-') if learned else '-'} | {first['teacher'] if learned else '-'} | "
            f"{_median(g['labels_used']):.0f} | {shown(arm_iqm(df, arm))} | {reached} of {len(g)} | "
            f"{returns} | {'-' if acc != acc else f'{acc:.3f}'} | {_median(g['wall_seconds']):.1f} |"
        )
    return rows


def seed_count(df: Any) -> str:
    """Seeds per arm, as a reader should read it: ``10``, or ``8 to 10`` when arms differ."""
    n = df.groupby("arm")["seed"].nunique()
    return f"{n.min()}" if n.min() == n.max() else f"{n.min()} to {n.max()}"


def unfinished(df: Any, meta: dict[str, Any]) -> tuple[set[str], bool]:
    """The publication's arms (``meta["arms"]``) with no run yet, and whether some arm that has run
    has fewer seeds than ``meta["seeds"]``."""
    ran = df.groupby("arm")["seed"].nunique()
    return set(meta["arms"]) - set(ran.index), int(ran.min()) < meta["seeds"]


def partial_banner(df: Any, meta: dict[str, Any], targets: bool) -> list[str]:
    """The **Partial** line of a section whose arms have not all run every seed yet (``unfinished``),
    or nothing; ``targets``: the section judges targets."""
    missing, short = unfinished(df, meta)
    if not missing and not short:
        return []
    count = f"0 to {df.groupby('arm')['seed'].nunique().max()}" if missing else seed_count(df)
    judged = "; a target marked met here is met on these seeds only" if targets else ""
    return [
        f"**Partial:** {count} of {meta['seeds']} seeds per arm have run so far (its command runs the rest, "
        f"resumably){judged}.",
        "",
    ]


def seeds_per_arm(df: Any) -> str:
    """``1 seed per arm``, ``10 seeds per arm`` or ``8 to 10 seeds per arm``."""
    count = seed_count(df)
    return f"{count} seed{'' if count == '1' else 's'} per arm"


def draw(df: Any, figure: Path, title: str, randoms: dict[str, float]) -> None:
    """Each arm's true return, seed by seed, over a box of its spread, one panel per task."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

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
        height=0.32 * df.groupby("task")["arm"].nunique().max() + 1.6,
        aspect=1.6,
        color="#9ecae1",
    )
    for ax, task in zip(fig.axes.flat, tasks):
        sub = df[df["task"] == task]
        sns.stripplot(data=sub, x="true_return_mean", y="arm", ax=ax, color="#08519c", size=3.5)
        ax.axvline(randoms[task], color="grey", ls="--", lw=1)
        ax.set_xlabel("true return")
        ax.set_ylabel("")
    n = df.groupby("arm")["seed"].nunique().max()
    seeds = f"{n} seed{'' if n == 1 else 's'}"
    fig.figure.suptitle(f"rlhf-gym, {title}: true return, {seeds} (dashed: random policy)", y=1.02)
    fig.savefig(figure, dpi=80, bbox_inches="tight")
    plt.close(fig.figure)


def section(
    df: Any,
    meta: dict[str, Any],
    figure: Path | None,
    body: list[str],
    notes: list[str] | None = None,
) -> str:
    """A RESULTS.md section: its heading, command, provenance and the protocol, then ``body``
    (targets, tables), the arms table and the figure (drawn when ``figure`` is given)."""
    title = meta["title"]
    origin = origin_lines(df, meta, f"the {title} runs")
    seeds = seeds_per_arm(df)
    randoms = meta["random_returns"]
    lines = [
        f"## {title}",
        "",
        f"Command: `{meta['command']}` ({seeds}, {len(df)} runs). "
        f"Random-policy returns: {', '.join(f'{t} {v:.1f}' for t, v in randoms.items())}.",
        "",
        *origin,
        "",
        PROTOCOL,
        "",
        *(notes or []),
        *body,
        "### All arms",
        "",
        *arms_table(df),
        "",
    ]
    if figure is not None:
        draw(df, figure, title, randoms)
    lines.append(f"![{title}](figures/{figure.name if figure else meta['name'] + '.png'})")
    return "\n".join(lines)


def origin_lines(runs: Any, meta: dict[str, Any], what: str) -> list[str]:
    """The provenance of a section's runs (``rlhf_gym.experiments.results.provenance``), the commit
    that made them named beside their code version."""
    from rlhf_gym.experiments.results import provenance

    origin = provenance(runs, meta.get("allow_mixed", False), what)
    if meta.get("commit") and not meta.get("allow_mixed"):
        origin = [origin[0].replace(";", f"{commit_note(meta)};", 1), *origin[1:]]
    return origin


def commit_note(meta: dict[str, Any]) -> str:
    """`` (commit `abcdef012345`)``: the commit the publication's meta names, or nothing."""
    return f" (commit `{meta['commit'][:12]}`)" if meta.get("commit") else ""


PROTOCOL = (
    "Each run's return is the mean true return of its final policy over 20 deterministic episodes. "
    "Normalised return is (R - R_random) / (R_ceiling - R_random), the ceiling being the IQM of the "
    "true-reward runs of the same task and horizon. IQM is the mean of the middle half of the seeds; "
    "[low, high] is its 95% bootstrap confidence interval (percentile, 2000 resamples, "
    "`rlhf_gym.experiments.stats`). A ranking is claimed only where intervals do not overlap."
)


def put_section(report: Path, section: str, block: str) -> None:
    """Replace the ``<!-- section:start -->`` ... ``<!-- section:end -->`` block of ``report``
    with ``block`` (which carries the markers), or append it if the report has none."""
    text = report.read_text() if report.is_file() else HEADER
    pattern = re.compile(rf"<!-- {section}:start -->.*<!-- {section}:end -->", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    tmp = report.with_name(report.name + ".tmp")  # a kill never leaves half a report
    tmp.write_text(text)
    tmp.replace(report)


def hardware() -> str:
    """The machine in a few words: cores, then ``rlhf_gym.provenance.platform`` (the CPU model, its
    torch kernels, Python and the versions the numbers depend on)."""
    import os

    from rlhf_gym.provenance import platform

    return f"{os.cpu_count()} cores, no GPU, {platform()}"
