"""The label-efficiency publications: the core RLHF loop against its controls, the other classic
presets, feedback types at equal effort, and the task suites. Each is a ``Publication`` of
``publish.py``, run and rendered by it:

    python benchmarks/publish.py label_efficiency        # the headline: CartPole and Pendulum, 10 seeds
    python benchmarks/publish.py feedback_types tasks    # others

Arms that are paired (an RLHF arm and its true-reward control, same seed) run side by side: the
runs go seed by seed, so the wall-time ratio compares runs that shared the machine.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

from publish import Publication, run_folder
from report import (
    arm_iqm,
    normalise,
    paired_ratio,
    partial_banner,
    section,
    seeds_per_arm,
    shown,
    target_row,
    unfinished,
)

# ----- the headline: label curves of the core loop, with its controls -------------------------
CURVES = {  # (task, horizon) -> the oracle label counts of its curve
    ("CartPole-v1", "natural"): (10, 25, 50, 100, 200),
    ("CartPole-v1", "fixed"): (10, 25, 50, 100, 200),
    ("Pendulum-v1", "natural"): (25, 50, 100, 200),
}
SHORT = {"CartPole-v1": "cartpole", "Pendulum-v1": "pendulum"}
PAIRED = {"CartPole-v1": 50, "Pendulum-v1": 100}  # the label count whose overhead is measured
SEEDS = 10  # per arm


def _curve_arm(task: str, horizon: str, what: str) -> str:
    return f"{SHORT[task]}-{horizon}-{what}" if task == "CartPole-v1" else f"{SHORT[task]}-{what}"


CORE: dict[str, dict[str, Any]] = {}
for (_task, _horizon), _counts in CURVES.items():
    _base = {"task": _task, "horizon": _horizon}
    CORE[_curve_arm(_task, _horizon, "true")] = {**_base, "reward": "true"}
    # the arm of the wall-time ratio next to its control, so that the two run side by side
    for _n in sorted(_counts, key=lambda n: n != PAIRED[_task]):
        CORE[_curve_arm(_task, _horizon, f"oracle-{_n}")] = {**_base, "labels": _n}
    if _task == "CartPole-v1":  # Pendulum never terminates: a constant reward carries no signal
        CORE[_curve_arm(_task, _horizon, "constant")] = {**_base, "reward": "constant"}
# as a reader scans them: by curve, the ceiling, the label counts up, the control; then the teachers
DISPLAY = [
    _curve_arm(t, h, what)
    for (t, h), ns in CURVES.items()
    for what in ("true", *(f"oracle-{n}" for n in ns), "constant")
    if _curve_arm(t, h, what) in CORE
]
for _teacher, _n in (("mistake", 25), ("mistake", 50), ("stoch", 100), ("mistake", 100)):
    CORE[f"cartpole-fixed-{_teacher}-{_n}"] = {
        "task": "CartPole-v1",
        "horizon": "fixed",
        "labels": _n,
        "teacher": _teacher,
    }
    DISPLAY.append(f"cartpole-fixed-{_teacher}-{_n}")
# ablations, each against the arm it changes in one place: at 25 oracle labels, the gradient clipping
# of SB3's default and a pessimistic reward; against B-Pref's mistake teacher, the plain Bradley-Terry
# likelihood in place of the noise-robust one, and RIME's label selection on top of it (the paper's); at
# 50 and 200 oracle labels, the reward unclipped past the labelled states (the preset's input box off), and
# fits warm-started from the last one's weights (PEBBLE's and B-Pref's, for the overhead)
ABLATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "cartpole-fixed-oracle-50-nobox": ("cartpole-fixed-oracle-50", {"reward_model": {"input_box": False}}),
    "cartpole-fixed-oracle-200-nobox": ("cartpole-fixed-oracle-200", {"reward_model": {"input_box": False}}),
    "cartpole-fixed-oracle-50-warm": ("cartpole-fixed-oracle-50", {"reward_model": {"warm_start": True}}),
    "cartpole-fixed-oracle-200-warm": ("cartpole-fixed-oracle-200", {"reward_model": {"warm_start": True}}),
    "cartpole-fixed-oracle-25-clip0.5": ("cartpole-fixed-oracle-25", {"hyperparams": {"max_grad_norm": 0.5}}),
    "cartpole-fixed-oracle-25-pessimism1": ("cartpole-fixed-oracle-25", {"reward_model": {"pessimism": 1.0}}),
    "cartpole-fixed-mistake-25-plain": ("cartpole-fixed-mistake-25", {"reward_model": {"noise_robust": 0.0}}),
    "cartpole-fixed-mistake-25-rime": ("cartpole-fixed-mistake-25-plain", {"reward_model": {"rime": True}}),
    "cartpole-fixed-mistake-50-plain": ("cartpole-fixed-mistake-50", {"reward_model": {"noise_robust": 0.0}}),
    "cartpole-fixed-mistake-50-rime": ("cartpole-fixed-mistake-50-plain", {"reward_model": {"rime": True}}),
}
for _arm, (_base, _change) in ABLATIONS.items():
    CORE[_arm] = {**CORE[_base]}
    for _field, _value in _change.items():  # nested fields: changed one by one
        CORE[_arm][_field] = {**CORE[_arm].get(_field, {}), **_value}
    DISPLAY.append(_arm)


def core_render(df: Any, meta: dict[str, Any], figure: Path | None) -> dict[str, str]:
    """The headline section of RESULTS.md and the README's results table."""
    df = df.iloc[sorted(range(len(df)), key=lambda i: (DISPLAY.index(df["arm"].iloc[i]), df["seed"].iloc[i]))]
    normalise(df, meta["random_returns"])
    curves, targets = curve_table(df), core_targets(df)
    partial = partial_banner(df, meta, True)
    body = [
        *partial,
        "### Targets",
        "",
        "| target | measured | |",
        "|---|---|---|",
        *targets,
        "",
        "### Label curves: normalised return, IQM [95% CI]",
        "",
        *curves,
        "",
        *ablation_table(df),
        *overhead_split(df, meta["results"]),
    ]
    readme = [
        f"Fixed and natural horizon, oracle comparisons, {seeds_per_arm(df)}, from "
        "`python benchmarks/publish.py label_efficiency` "
        "([benchmarks/RESULTS.md](benchmarks/RESULTS.md) has every seed). Normalised return: 0 is the random "
        "policy, 1 the IQM of the true-reward runs of the same task and horizon; IQM over seeds with its "
        "95% bootstrap CI.",
        "",
        *partial,
        *curves,
        "",
        "| target | measured | |",
        "|---|---|---|",
        *targets,
    ]
    return {"RESULTS.md": section(df, meta, figure, body), "README.md": "\n".join(readme)}


def overhead_split(df: Any, results: Path) -> list[str]:
    """Where a CartPole RLHF run's extra wall time goes: its wall time over its true-reward pair's,
    seed by seed, until the row of its last feedback round (first rollouts, queries, fits, and
    training on the learned reward) and after it (training with each step scored by the model, the
    last round's reward-model metrics, and the evaluations), from each run's ``metrics.csv`` (the
    true-reward run's read at the same timestep, from its start at 0 s), and over the whole run;
    for the preset in both horizons, and for fits warm-started (the ablation arm, fixed horizon). A
    seed whose metrics do not allow the split is left out; the row says how many seeds it holds."""
    import numpy as np
    import pandas as pd

    from rlhf_gym.experiments.stats import iqm_ci

    def split(seed: int, a: str, b: str) -> tuple[float, ...] | None:
        files = [run_folder(results, arm, seed) / "metrics.csv" for arm in (a, b)]
        if not all(f.is_file() for f in files):
            return None
        ours, theirs = (pd.read_csv(f) for f in files)
        needed = {"timesteps", "wall_seconds"}
        if (
            not (needed | {"round"}) <= set(ours)
            or not needed <= set(theirs)
            or not ours["round"].notna().any()
        ):
            return None
        last = ours[ours["round"].notna()].iloc[-1]
        t = [last["timesteps"], ours["timesteps"].iloc[-1]]
        w = [last["wall_seconds"], ours["wall_seconds"].iloc[-1]]
        v = np.interp(t, [0, *theirs["timesteps"]], [0.0, *theirs["wall_seconds"]])
        if not (0 < t[0] < t[1] <= theirs["timesteps"].max() and 0 < v[0] < v[1]):
            return None
        ratios = w[0] / v[0], (w[1] - w[0]) / (v[1] - v[0]), w[1] / v[1]
        return t[0], *ratios, w[0] - v[0], w[1] - w[0] - v[1] + v[0]

    rows = [
        "### Overhead, split at the last feedback round: CartPole, 50 oracle comparisons",
        "",
        "| horizon | seeds | last round at step (median) | wall time RLHF / true reward until it, "
        "IQM [95% CI] | after it | whole run | seconds more until it / after it (median) |",
        "|---|---|---|---|---|---|---|",
    ]
    pairs = [(h, f"cartpole-{h}-oracle-50", f"cartpole-{h}-true") for h in ("natural", "fixed")]
    pairs.append(("fixed, warm-started fits", "cartpole-fixed-oracle-50-warm", "cartpole-fixed-true"))
    for horizon, a, b in pairs:
        seeds = sorted(set(df.loc[df["arm"] == a, "seed"]) & set(df.loc[df["arm"] == b, "seed"]))
        found = [x for x in (split(int(seed), a, b) for seed in seeds) if x is not None]
        if not found:
            continue
        x = np.array(found)
        rows.append(
            f"| {horizon} | {len(x)} | {np.median(x[:, 0]):,.0f} | {iqm_ci(x[:, 1])} | {iqm_ci(x[:, 2])} | "
            f"{iqm_ci(x[:, 3])} | {np.median(x[:, 4]):.1f} / {np.median(x[:, 5]):.1f} |"
        )
    return [*rows, ""] if len(rows) > 4 else []


def ablation_table(df: Any) -> list[str]:
    """Each ablation against the arm it changes: IQM, seeds at 475 or more, and the probability
    that a run of that arm beats an ablation run (above 0.5: the arm is better; CIs decide)."""
    from rlhf_gym.experiments.stats import probability_of_improvement

    rows = [
        "### Ablations: CartPole fixed, each against the arm it changes",
        "",
        "| arm | changes | from | normalised return, IQM [95% CI] | seeds >= 475 | "
        "P(its run > ablation run) [95% CI] |",
        "|---|---|---|---|---|---|",
    ]
    for arm, (base, change) in ABLATIONS.items():
        runs, based = df[df["arm"] == arm], df.loc[df["arm"] == base, "normalised_return"].to_numpy(float)
        what = ", ".join(f"{k}.{f} = {v}" for k, fields in change.items() for f, v in fields.items())
        if not len(runs) or not len(based):
            rows.append(f"| {arm} | {what} | {base} | not run yet | | |")
            continue
        p = probability_of_improvement(based, runs["normalised_return"].to_numpy(float))
        rows.append(
            f"| {arm} | {what} | {base} | {shown(arm_iqm(df, arm))} | "
            f"{int((runs['true_return_mean'] >= 475).sum())} of {len(runs)} | {p} |"
        )
    return [*rows, ""]


def curve_table(df: Any) -> list[str]:
    """One row per (task, horizon): the IQM of each label count, then the controls."""
    counts = sorted({n for ns in CURVES.values() for n in ns})
    rows = [
        "| task | horizon | "
        + " | ".join(f"{n} labels" for n in counts)
        + " | true reward | constant reward |",
        "|" + "---|" * (len(counts) + 4),
    ]
    for (task, horizon), ns in CURVES.items():
        if not (df["task"] == task).any():
            rows.append(f"| {task} | {horizon} | not run yet |" + " |" * (len(counts) + 1))
            continue
        cells = [
            shown(arm_iqm(df, _curve_arm(task, horizon, f"oracle-{n}"))) if n in ns else "" for n in counts
        ]
        controls = [
            shown(arm_iqm(df, a)) if a in CORE else "-"
            for a in (_curve_arm(task, horizon, "true"), _curve_arm(task, horizon, "constant"))
        ]
        rows.append(f"| {task} | {horizon} | " + " | ".join(cells + controls) + " |")
    return rows


def core_targets(df: Any) -> list[str]:
    """The targets of the label-efficiency issues, each with its figure and met or missed."""
    out: list[str] = []

    def target(text: str, measured: str, ok: bool) -> None:
        out.append(target_row(f"{text}", measured, ok))

    def returns(arm: str) -> Any:
        return df.loc[df["arm"] == arm, "true_return_mean"]

    seeds = int(df.groupby("arm")["seed"].nunique().max())  # a seed that crashed counts as missing
    for horizon in ("natural", "fixed"):
        for n in (50, 100, 200):
            r = returns(f"cartpole-{horizon}-oracle-{n}")
            target(
                f"CartPole {horizon}, {n} oracle comparisons: every seed >= 475",
                f"{int((r >= 475).sum())} of {seeds} (lowest {r.min():.0f})" if len(r) else "not measured",
                len(r) == seeds and bool((r >= 475).all()),
            )
        e = arm_iqm(df, f"cartpole-{horizon}-oracle-25")
        target(f"CartPole {horizon}, 25 oracle comparisons: IQM >= 0.95", shown(e), e.value >= 0.95)
    for (task, horizon), ns in CURVES.items():
        curve = {n: arm_iqm(df, _curve_arm(task, horizon, f"oracle-{n}")) for n in ns}
        # more labels, and the interval lies wholly below the IQM at fewer labels: any two counts
        falls = [
            f"{a} to {b}: {curve[a].value:.3g} to {curve[b]}"
            for a, b in itertools.combinations(ns, 2)
            if curve[b].high < curve[a].value
        ]
        unknown = [str(n) for n, e in curve.items() if not math.isfinite(e.high)]
        target(
            f"{task} {horizon}: the IQM never falls with more labels by more than its CI",
            "; ".join(falls) or (f"not measured at {', '.join(unknown)}" if unknown else "no such fall"),
            not falls and not unknown,
        )
    e = arm_iqm(df, "pendulum-oracle-100")
    target("Pendulum SAC, 100 oracle comparisons: IQM >= 0.95", shown(e), e.value >= 0.95)
    e = arm_iqm(df, "cartpole-fixed-constant")
    target("CartPole fixed, constant-reward control far below (IQM < 0.5)", shown(e), e.value < 0.5)
    oracle = arm_iqm(df, "cartpole-fixed-oracle-50").value
    e = arm_iqm(df, "cartpole-fixed-mistake-50")
    target(
        f"CartPole fixed, 50 mistake comparisons >= 95% of the oracle's IQM ({0.95 * oracle:.3g})",
        shown(e),
        e.value >= 0.95 * oracle,
    )
    oracle = arm_iqm(df, "cartpole-fixed-oracle-100").value
    for teacher in ("stoch", "mistake"):
        e = arm_iqm(df, f"cartpole-fixed-{teacher}-100")
        target(
            f"CartPole fixed, 100 {teacher} comparisons >= 90% of the oracle's IQM ({0.9 * oracle:.3g})",
            shown(e),
            e.value >= 0.9 * oracle,
        )
    for task, a, b in (
        ("CartPole natural", "cartpole-natural-oracle-50", "cartpole-natural-true"),
        ("CartPole fixed", "cartpole-fixed-oracle-50", "cartpole-fixed-true"),
        ("Pendulum SAC", "pendulum-oracle-100", "pendulum-true"),
    ):
        e = paired_ratio(df, a, b)
        target(
            f"Overhead, {task}: wall time RLHF / true reward, same seed, side by side, IQM <= 1.1",
            shown(e),
            e.value <= 1.1,
        )
    learned = df[df["reward"] == "learned"]
    worst = float(learned["env_step_ratio"].max()) if len(learned) else float("nan")
    target("Environment steps / nominal timesteps, worst RLHF run <= 1.05", f"{worst:.3f}", worst <= 1.05)
    return out


PUBLICATIONS = [
    Publication("label_efficiency", "Label efficiency (core RLHF loop)", CORE, SEEDS, core_render),
]


# ----- the other publications: every arm against its task's controls ----------------------------
def suite_render(targets: Any = None, notes: Any = None) -> Any:
    """A renderer: the section with ``targets(df, meta)`` (rows of the targets table) and
    ``notes(meta)`` (lines before it, from the publication's measurements), said first to be partial
    until every arm has run every seed; no README block."""

    def render(df: Any, meta: dict[str, Any], figure: Path | None) -> dict[str, str]:
        normalise(df, meta["random_returns"])
        rows = targets(df, meta) if targets else []
        body = ["### Targets", "", "| target | measured | |", "|---|---|---|", *rows, ""] if rows else []
        lead = [*partial_banner(df, meta, bool(rows)), *(notes(meta) if notes else [])]
        return {"RESULTS.md": section(df, meta, figure, body, lead)}

    return render


# The classic-control presets besides CartPole and Pendulum, in the fixed horizon like every target
PRESET_TASKS = ("MountainCar-v0", "Acrobot-v1", "MountainCarContinuous-v0")
# Feedback types at equal effort: the budget in seconds is what 50 CartPole and 100 Pendulum
# comparisons cost (CartPole 50 x 4.0 s, Pendulum 100 x 4.67 s; rlhf_gym.feedback.effort).
BUDGETS = {"CartPole-v1": 50 * (50 / 50 + 3.0), "Pendulum-v1": 100 * (50 / 30 + 3.0)}
FEEDBACK = ("comparisons", "corrections", "demonstrations", "ratings", "tamer", "estops")
FEEDBACK_ARMS: dict[str, dict[str, Any]] = {}
for _short, _task in (("cartpole", "CartPole-v1"), ("pendulum", "Pendulum-v1")):
    _base = {"task": _task, "horizon": "fixed", "budget_seconds": BUDGETS[_task]}
    for _kind in FEEDBACK:
        FEEDBACK_ARMS[f"{_short}-{_kind}"] = {**_base, "feedback": _kind}
    FEEDBACK_ARMS[f"{_short}-mix"] = {**_base, "feedback": ",".join(FEEDBACK)}
    FEEDBACK_ARMS[f"{_short}-corrections-half"] = {
        **_base,
        "feedback": "corrections",
        "budget_seconds": BUDGETS[_task] / 2,
    }
    FEEDBACK_ARMS[f"{_short}-demonstrations-bc"] = {**_base, "feedback": "demonstrations", "bc_steps": 200}
    FEEDBACK_ARMS[f"{_short}-true"] = {"task": _task, "horizon": "fixed", "reward": "true"}
    FEEDBACK_ARMS[f"{_short}-constant"] = {"task": _task, "horizon": "fixed", "reward": "constant"}


def feedback_targets(df: Any, meta: dict[str, Any]) -> list[str]:
    """Each feedback type at equal effort: normalised IQM >= 0.8; the mix not below the best single
    type (their intervals overlap or the mix's lies above); corrections at half the effort not
    below 90% of comparisons."""
    out = []
    for short, task in (("cartpole", "CartPole-v1"), ("pendulum", "Pendulum-v1")):
        if not (df["task"] == task).any():
            continue
        singles = {kind: arm_iqm(df, f"{short}-{kind}") for kind in FEEDBACK}
        for kind, e in singles.items():
            out.append(target_row(f"{task}: {kind}, IQM >= 0.8", e, e.value >= 0.8))
        e = arm_iqm(df, f"{short}-demonstrations-bc")
        out.append(target_row(f"{task}: demonstrations + cloning, IQM >= 0.8", e, e.value >= 0.8))
        best = max(singles, key=lambda k: singles[k].value if singles[k].value == singles[k].value else -1e9)
        mix = arm_iqm(df, f"{short}-mix")
        ok = mix.high >= singles[best].low
        out.append(
            target_row(f"{task}: mix not below the best single type ({best}, {singles[best]})", mix, ok)
        )
        half, comp = arm_iqm(df, f"{short}-corrections-half"), singles["comparisons"]
        ok = half.value >= 0.9 * comp.value
        out.append(
            target_row(
                f"{task}: corrections at half effort >= 90% of comparisons ({0.9 * comp.value:.3g})", half, ok
            )
        )
    return out


OWN_TASKS = ("Reach-v0", "ReachDiscrete-v0", "PickPlace-v0", "Catch-v0", "Pong-v0")
ADAPTED_TASKS = ("Reacher-v5", "Pusher-v5", "LunarLander-v3", "PongRam-v5")


def task_arms(names: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Per task, in the fixed horizon: the true-reward ceiling and RLHF with oracle comparisons at
    its preset's budget. The project's own tasks never terminate, so a constant reward carries no
    signal there and is left out."""
    arms: dict[str, dict[str, Any]] = {}
    for name in names:
        base = {"task": name, "horizon": "fixed"}
        arms[f"{name}-true"] = {**base, "reward": "true"}
        arms[f"{name}-oracle"] = base
    return arms


def task_targets(level: float, most: int) -> Any:
    """Each task's RLHF arm reaches ``level`` (IQM) within its preset's label budget, at most ``most``."""

    def targets(df: Any, meta: dict[str, Any]) -> list[str]:
        out = []
        for task in df["task"].unique():
            arm = f"{task}-oracle"
            if not (df["arm"] == arm).any():
                continue
            e = arm_iqm(df, arm)
            labels = float(df.loc[df["arm"] == arm, "labels_used"].max())
            budget = float(df.loc[df["arm"] == arm, "labels_budget"].max())
            ok = e.value >= level and labels <= min(budget, most)
            out.append(target_row(f"{task}: {labels:.0f} comparisons (<= {most}), IQM >= {level}", e, ok))
        return out

    return targets


def speed_notes(meta: dict[str, Any]) -> list[str]:
    return list((meta.get("measured") or {}).get("lines", []))


def measure_tasks(names: list[str], smoke: bool) -> dict[str, Any]:
    from tasks import task_notes

    return {"lines": task_notes(names)}


def sweep_hours(most: float, cores: int = 2) -> Any:
    """The sweep's time on ``cores``: each arm's mean wall time per run, times the publication's
    seeds, summed over its arms and spread over the cores (runs go two at a time, so each run's wall
    time is measured beside another), at most ``most`` hours; projected from the runs so far while
    some arm has fewer seeds, not measured while some arm has none."""

    def target(df: Any, meta: dict[str, Any]) -> list[str]:
        seeds, (missing, short) = meta["seeds"], unfinished(df, meta)
        text = f"{seeds}-seed sweep on {cores} cores: run wall time / {cores} <= {most:g} h"
        if missing:
            return [target_row(text, f"not measured ({len(missing)} arms not run)", False)]
        hours = df.groupby("arm")["wall_seconds"].mean().sum() * seeds / cores / 3600
        measured = f"{hours:.2f} h" + (f" (projected from {len(df)} runs)" if short else "")
        return [target_row(text, measured, hours <= most)]

    return target


def both(*targets: Any) -> Any:
    """The rows of each of ``targets``, in order."""
    return lambda df, meta: [row for t in targets for row in t(df, meta)]


PUBLICATIONS += [
    Publication(
        "presets", "Other classic presets", task_arms(PRESET_TASKS), 10, suite_render(task_targets(0.9, 1000))
    ),
    Publication(
        "feedback_types", "Feedback types at equal effort", FEEDBACK_ARMS, 5, suite_render(feedback_targets)
    ),
    Publication(
        "tasks",
        "The project's own tasks: ceilings and RLHF",
        task_arms(OWN_TASKS),
        10,
        suite_render(both(task_targets(0.9, 300), sweep_hours(3)), speed_notes),
        measure_tasks,
    ),
    Publication(
        "adapters",
        "Adapted tasks (MuJoCo, Box2D, Atari): ceilings and RLHF",
        task_arms(ADAPTED_TASKS),
        10,
        suite_render(task_targets(0.8, 500), speed_notes),
        measure_tasks,
    ),
]


# ----- preset speed: each changed preset against its old setting, side by side -----------------
# (issue 21's preset profiling) on the true reward, so that the ceiling is compared too; each old
# setting runs right after the preset in every seed, so the two share the machine's load
PRESET_CHANGES: dict[str, tuple[str, dict[str, Any]]] = {
    "Pendulum-v1 SAC: 128x128 networks, were 256x256": (
        "Pendulum-v1",
        {"hyperparams": {"policy_kwargs": {"net_arch": [256, 256]}}},
    ),
}
SPEED_ARMS: dict[str, dict[str, Any]] = {}
for _i, (_task, _old) in enumerate(PRESET_CHANGES.values()):
    SPEED_ARMS[f"preset-{_i}"] = {"task": _task, "horizon": "fixed", "reward": "true"}
    SPEED_ARMS[f"old-{_i}"] = {"task": _task, "horizon": "fixed", "reward": "true", **_old}


def speed_render(df: Any, meta: dict[str, Any], figure: Path | None) -> dict[str, str]:
    """Per changed preset: wall time of the preset over its old setting, seed by seed, and both
    ceilings (the IQM of each setting's true return, with its CI)."""
    from rlhf_gym.experiments.stats import iqm_ci

    rows = [
        "| change | wall time, preset / old (IQM [95% CI]) | wall s, preset / old (median) | "
        "true return, preset: IQM [95% CI] | old: IQM [95% CI] |",
        "|---|---|---|---|---|",
    ]
    for i, what in enumerate(PRESET_CHANGES):
        new, old = df[df["arm"] == f"preset-{i}"], df[df["arm"] == f"old-{i}"]
        if not len(new) or not len(old):
            rows.append(f"| {what} | not run yet | | | |")
            continue
        returns = [shown(iqm_ci(g["true_return_mean"].to_numpy(float))) for g in (new, old)]
        rows.append(
            f"| {what} | {shown(paired_ratio(df, f'preset-{i}', f'old-{i}'))} | "
            f"{new['wall_seconds'].median():.0f} / {old['wall_seconds'].median():.0f} | "
            f"{returns[0]} | {returns[1]} |"
        )
    normalise(df, meta["random_returns"])
    return {"RESULTS.md": section(df, meta, figure, ["### Wall time and ceiling", "", *rows, ""])}


PUBLICATIONS.append(
    Publication(
        "preset_speed",
        "Preset speed: changed presets against their old settings",
        SPEED_ARMS,
        10,
        speed_render,
    )
)
