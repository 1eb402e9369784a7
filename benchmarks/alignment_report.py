"""Figures, tables and the WARP domination check of the over-optimisation study (alignment.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

SINGLE = ("single", "ema")


def dominated(point: tuple[float, float], others: list[tuple[float, float]]) -> bool:
    """Whether some (kl, true return) of ``others`` has no more KL and no less return, one strictly.

    Example:
        >>> dominated((1.0, 5.0), [(0.5, 6.0)]), dominated((1.0, 5.0), [(0.5, 4.0), (2.0, 9.0)])
        (True, False)
    """
    kl, ret = point
    return any(k <= kl and r >= ret and (k < kl or r > ret) for k, r in others)


def domination(df: Any) -> list[dict[str, Any]]:
    """Per task and seed: is the last WARP merge dominated by a single run's final policy, or
    by any of their evaluated checkpoints?"""
    out = []
    for (task, seed), g in df.groupby(["task", "seed"], sort=False):
        merged = g[(g["method"] == "warp") & (g["final"] == True)]  # noqa: E712
        if merged.empty:
            continue
        point = (float(merged["kl"].iloc[0]), float(merged["true_return"].iloc[0]))
        singles = g[g["method"].isin(SINGLE)]
        finals = singles[singles["final"] == True]  # noqa: E712
        out.append(
            {
                "task": task,
                "seed": seed,
                "kl": point[0],
                "true_return": point[1],
                "by_final": dominated(point, list(zip(finals["kl"], finals["true_return"]))),
                "by_checkpoint": dominated(point, list(zip(singles["kl"], singles["true_return"]))),
            }
        )
    return out


def figure(df: Any, task: str, path: Path) -> None:
    """Three panels against KL from the start (square-root axis): the proxy return and the true
    return along each run (over-optimisation), and the true-return-vs-KL plane (Pareto)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    g = df[df["task"] == task]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    colors = dict(zip(list(g[g["method"].isin(SINGLE)]["arm"].unique()), plt.get_cmap("tab10").colors))
    start = g[g["method"] == "start"]
    for ax, y, title in (
        (axes[0], "proxy_return", "learned (proxy) return"),
        (axes[1], "true_return", "true return"),
    ):
        for (name, seed), run in g[g["method"].isin(SINGLE)].groupby(["arm", "seed"], sort=False):
            run = run.sort_values("step")
            s = start[start["seed"] == seed]
            xs, ys = [*s["kl"], *run["kl"]], [*s[y], *run[y]]
            ax.plot(xs, ys, "-o", ms=3, color=colors[name], alpha=0.8, label=name if seed == 0 else None)
        ax.scatter(start["kl"], start[y], color="black", marker="D", zorder=5, label="start")
        ax.set_title(f"{task}: {title} during training")
        ax.set_ylabel(title)
    ax = axes[2]
    singles = g[g["method"].isin(SINGLE)]
    ax.scatter(singles["kl"], singles["true_return"], color="0.8", s=12, label="single runs, checkpoints")
    for name, run in singles[singles["final"] == True].groupby("arm", sort=False):  # noqa: E712
        ax.scatter(run["kl"], run["true_return"], color=colors[name], s=40, label=f"{name}, final")
    w = g[g["method"] == "warp"]
    runs = w[w["arm"] == "WARP run"]
    ax.scatter(runs["kl"], runs["true_return"], marker="x", color="tab:purple", label="WARP runs")
    merged = w[w["arm"] == "WARP merged"]
    ax.scatter(merged["kl"], merged["true_return"], marker="*", s=140, color="tab:red", label="WARP merges")
    for seed, front in w[w["arm"] == "WARP front"].groupby("seed"):
        front = front.sort_values("index")
        ax.plot(
            front["kl"],
            front["true_return"],
            "-",
            color="tab:red",
            alpha=0.6,
            label="WARP front" if seed == 0 else None,
        )
    for seed, bon in g[g["method"] == "best-of-N"].groupby("seed"):
        bon = bon.sort_values("step")
        ax.plot(
            bon["kl"],
            bon["true_return"],
            "--s",
            ms=4,
            color="tab:brown",
            label="best-of-N (KL bound)" if seed == 0 else None,
        )
    ax.scatter(start["kl"], start["true_return"], color="black", marker="D", zorder=5)
    ax.set_title(f"{task}: true return vs KL (Pareto)")
    ax.set_ylabel("true return")
    for ax in axes:
        ax.set_xscale("function", functions=(np.sqrt, np.square))
        ax.set_xlabel("KL from the start (nats per episode, square-root axis)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def table(df: Any, task: str) -> list[str]:
    """Each policy's final figures: the IQM over seeds, with its 95% bootstrap CI."""
    from rlhf_gym.experiments.stats import iqm_ci

    g = df[(df["task"] == task) & (df["final"].fillna(True) == True)]  # noqa: E712
    w = df[(df["task"] == task) & (df["method"] == "warp") & (df["arm"] == "WARP front")]
    lines = [
        "| policy | seeds | KL from start (nats/episode) | proxy return | true return |",
        "|---|---|---|---|---|",
    ]

    def add(label: str, rows: Any) -> None:
        cells = [str(iqm_ci(rows[col].to_numpy(float))) for col in ("kl", "proxy_return", "true_return")]
        lines.append(f"| {label} | {rows['seed'].nunique()} | " + " | ".join(cells) + " |")

    add("start (behaviour-cloned)", df[(df["task"] == task) & (df["method"] == "start")])
    for name, rows in g[g["method"].isin(SINGLE)].groupby("arm", sort=False):
        add(name, rows)
    add("WARP, last merge", g[g["method"] == "warp"])
    for eta, rows in w.groupby("index"):
        add(f"WARP front, eta {eta:g}", rows)
    for name, rows in g[g["method"] == "best-of-N"].groupby("arm", sort=False):
        add(f"{name} (KL: bound)", rows)
    return lines


def section(df: Any, runs: Any, meta: dict[str, Any], figures: Path | None) -> str:
    """The RESULTS.md section from every task and seed's rows (``df``) and their summaries
    (``runs``: provenance); ``figures``: the folder of the per-task figures, drawn when given."""
    from report import origin_lines, partial_banner

    origin = origin_lines(runs, meta, "the over-optimisation runs")
    checks = domination(df)
    tasks = list(dict.fromkeys(df["task"]))
    seeds = runs.groupby("task")["seed"].nunique()
    blocks = [
        f"## {meta['title']}",
        "",
        f"Command: `{meta['command']}` ({', '.join(f'{t} {seeds[t]}' for t in tasks)} seeds; one job per "
        f"task and seed on one core, {runs['wall_seconds'].sum() / 3600:.1f} hours of them in all).",
        "",
        *partial_banner(runs, meta, False),
        *origin,
        "",
        "All policies start from the same behaviour-cloned policy and optimise the same frozen reward "
        "model (fit on few oracle comparisons). Figures are on sampled (stochastic) fixed-horizon "
        "episodes: the true return, the proxy (learned) return and the KL from the start summed over "
        "live steps. Best-of-N's KL is the analytic bound per decision, log N - (N-1)/N. The KL arms "
        'penalise the reward (as InstructGPT and WARP do) unless marked loss. "WARP\'s last merge" is '
        "the SLERP of the last iteration's runs; the front interpolates from the start to it. Tables give "
        "the IQM over seeds with its 95% bootstrap CI (`rlhf_gym.experiments.stats`); a point is dominated "
        "when another has no more KL and no less true return, one of them strictly.",
        "",
        "### WARP's last merge against the single runs, seed by seed",
        "",
        "| task | seeds | not dominated by any single run's final policy | nor by any of their checkpoints |",
        "|---|---|---|---|",
    ]
    for task in tasks:
        mine = [c for c in checks if c["task"] == task]
        blocks.append(
            f"| {task} | {len(mine)} | {sum(not c['by_final'] for c in mine)} of {len(mine)} | "
            f"{sum(not c['by_checkpoint'] for c in mine)} of {len(mine)} |"
        )
    blocks.append("")
    for task in tasks:
        blocks += [f"### {task}", "", *table(df, task), ""]
        if figures is not None:
            figure(df, task, figures / f"{task}.png")
        blocks.append(f"![{task}](figures/alignment/{task}.png)")
        blocks.append("")
    return "\n".join(blocks)
