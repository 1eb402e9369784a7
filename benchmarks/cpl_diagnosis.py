"""Why CPL trails the reward-model route on CartPole: its preference model, or its data?

    python benchmarks/cpl_diagnosis.py                 # 3 seeds, 2 workers; resumes
    python benchmarks/cpl_diagnosis.py --report-only   # redraw from benchmarks/results/cpl_diagnosis

CPL (``--algo cpl``) assumes that a teacher prefers segments by their regret; the oracle of every
other benchmark here prefers them by their partial return. CPL also learns only from the
labelled segments, which online come from its own, at first random, rollouts. Two checks on
fixed-horizon CartPole separate the two, per seed:

1. **Online, as in ``sweeps/cpl.yaml``**: CPL with 50 and 500 labels from the partial-return
   oracle and from the regret teacher (``teacher: regret``), whose critic is a PPO agent trained
   here on the true reward (the ceiling).
2. **Offline**: CPL fits a fixed set of labelled pairs of 50-step segments from a random start,
   for ``--offline-steps`` gradient steps. The segments come from 100 episodes of the scripted
   expert taking a random action with a probability drawn per episode: from [0, 1] (``noise
   0-1``, every quality, as CPL's and B-Pref's datasets mix policies), or always (``random``,
   what online CPL starts from). The control fits the oracle's labels shuffled among the pairs:
   what CPL gets from the data alone.

It writes ``benchmarks/results/cpl_diagnosis/rows.csv`` (git-ignored), the figure
``benchmarks/figures/cpl_diagnosis.png`` and the ``cpl_diagnosis`` section of RESULTS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from report import one_thread  # noqa: E402 - benchmarks/ is on the path from here

RESULTS = HERE / "results" / "cpl_diagnosis"
FIGURE = HERE / "figures" / "cpl_diagnosis.png"
COMMAND = "python benchmarks/cpl_diagnosis.py"
TASK = "CartPole-v1"
ONLINE_LABELS = (50, 500)
OFFLINE_PAIRS = (50, 500)
SHUFFLED = "shuffled oracle"
"""The control: the oracle's labels of the offline pairs, shuffled among the pairs."""
TEACHERS = ("oracle", "regret", SHUFFLED)
ALL, RANDOM = "noise 0-1", "random"
DATASETS = {ALL: (0.0, 1.0), RANDOM: (1.0, 1.0)}
"""Offline datasets by the range of the expert's share of random actions per episode."""
EPISODES = 100
SEGMENT = 50


def _row(seed: int, route: str, teacher: str, labels: int, agent: Any, t0: float) -> dict[str, Any]:
    from rlhf_gym.agents.evaluation import evaluate
    from rlhf_gym.tasks.registry import get_task

    returns = evaluate(agent, get_task(TASK)).returns
    return {
        "seed": seed,
        "route": route,
        "teacher": teacher,
        "labels": labels,
        "true_return": sum(returns) / len(returns),
        "wall_seconds": round(time.perf_counter() - t0, 1),
    }


def critic(seed: int, results: Path) -> tuple[str, dict[str, Any]]:
    """The ceiling run: PPO on the true reward; its critic is the regret teacher's."""
    one_thread()
    from rlhf_gym.agents.files import save_agent
    from rlhf_gym.train.rlhf import RLHF

    t0 = time.perf_counter()
    run = RLHF(TASK, horizon="fixed", seed=seed, reward="true").learn()
    path = results / f"critic-s{seed}.zip"
    save_agent(run.agent, path)  # with its pickle-free twin, which the regret teacher reads
    return str(path), _row(seed, "ceiling (PPO, true reward)", "-", 0, run.agent, t0)


def online(seed: int, teacher: str, labels: int, critic_path: str) -> dict[str, Any]:
    one_thread()
    from rlhf_gym.train.rlhf import RLHF

    t0 = time.perf_counter()
    extra = {"teacher_critic": critic_path} if teacher == "regret" else {}
    run = RLHF(TASK, horizon="fixed", seed=seed, algo="cpl", labels=labels, teacher=teacher, **extra)
    return _row(seed, "online CPL", teacher, labels, run.learn().agent, t0)


def offline_pairs(
    seed: int, teacher: str, pairs: int, critic_path: str, noise: tuple[float, float] = (0.0, 1.0)
) -> list[Any]:
    """``pairs`` labelled pairs of 50-step segments from episodes of the expert taking a random
    action with a probability drawn from ``noise`` per episode (the same pairs for every teacher
    of a seed)."""
    import numpy as np

    from rlhf_gym.agents.cloning import expert_episodes
    from rlhf_gym.config import RunConfig
    from rlhf_gym.data.segments import sample_segments
    from rlhf_gym.feedback.teachers import Teacher
    from rlhf_gym.tasks.registry import get_task
    from rlhf_gym.train.regret import regret_teacher
    from rlhf_gym.types import Query

    task = get_task(TASK)
    rng = np.random.default_rng(seed)
    trajectories = expert_episodes(task, "fixed", rng.uniform(*noise, EPISODES).tolist(), seed, rng)
    segments = sample_segments(trajectories, SEGMENT, 2 * pairs, rng, task.absorbing_reward)
    queries = [Query(a, b) for a, b in zip(segments[::2], segments[1::2])]
    if teacher == "regret":
        judge = regret_teacher(RunConfig(task=TASK, teacher="regret", teacher_critic=critic_path), task)
    else:
        judge = Teacher.preset("oracle")
    feedback = judge.label(queries, rng)
    if teacher == SHUFFLED:
        labels = rng.permutation([c.label for c in feedback])
        feedback = [dataclasses.replace(c, label=float(mu)) for c, mu in zip(feedback, labels)]
    return feedback


def offline(
    seed: int, teacher: str, pairs: int, critic_path: str, steps: int, data: str = ALL
) -> dict[str, Any]:
    """CPL fitted from a random start to ``offline_pairs`` of the dataset ``data``."""
    one_thread()
    from stable_baselines3.common.logger import configure
    from stable_baselines3.common.vec_env import DummyVecEnv

    from rlhf_gym.agents.registry import make_agent
    from rlhf_gym.tasks.registry import get_task

    t0 = time.perf_counter()
    task = get_task(TASK)
    feedback = offline_pairs(seed, teacher, pairs, critic_path, DATASETS[data])
    kwargs = task.algo_kwargs("cpl") | {"cpl_steps": steps}
    kwargs.pop("n_envs", None)
    agent = make_agent("cpl", DummyVecEnv([lambda: task.make("fixed")]), kwargs, seed, relabel=False)
    agent.set_logger(configure(None, []))
    agent.feedback = feedback
    agent.train()
    return _row(seed, f"offline CPL, {data}", teacher, pairs, agent, t0)


def run_all(seeds: int, workers: int, steps: int, results: Path) -> None:
    """Every job not yet in ``rows.csv``; each row is added as its job ends, so a killed run resumes."""
    import pandas as pd

    results.mkdir(parents=True, exist_ok=True)
    table = results / "rows.csv"
    done = (
        pd.read_csv(table)
        if table.is_file()
        else pd.DataFrame(columns=["seed", "route", "teacher", "labels"])
    )
    have = set(zip(done["seed"], done["route"], done["teacher"], done["labels"]))
    t0 = time.perf_counter()

    def add(row: dict[str, Any]) -> None:
        pd.DataFrame([row]).to_csv(table, mode="a", header=not table.is_file(), index=False)
        print(
            f"seed {row['seed']} {row['route']} {row['teacher']} {row['labels']}: {row['true_return']:.1f}, "
            f"{time.perf_counter() - t0:.0f} s",
            flush=True,
        )

    from rlhf_gym.processes import die_with_parent

    # the workers die with this process, even on SIGKILL
    with ProcessPoolExecutor(workers, initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
        paths = {s: results / f"critic-s{s}.zip" for s in range(seeds)}
        todo = [s for s in range(seeds) if not paths[s].is_file()]
        for _, row in pool.map(critic, todo, [results] * len(todo)):
            add(row)
        jobs = []
        for seed in range(seeds):
            path = str(paths[seed])
            for teacher in TEACHERS:
                if teacher != SHUFFLED:
                    for n in ONLINE_LABELS:
                        if (seed, "online CPL", teacher, n) not in have:
                            jobs.append(pool.submit(online, seed, teacher, n, path))
                for data in DATASETS:
                    sizes = OFFLINE_PAIRS if data == ALL and teacher != SHUFFLED else OFFLINE_PAIRS[-1:]
                    for n in sizes:
                        if (seed, f"offline CPL, {data}", teacher, n) not in have:
                            jobs.append(pool.submit(offline, seed, teacher, n, path, steps, data))
        for job in jobs:
            add(job.result())
    print(f"CPL diagnosis: {time.perf_counter() - t0:.0f} s on {workers} workers")


def publish(rows: Path, figure: Path, report: Path, command: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns
    from report import hardware, put_section

    df = pd.read_csv(rows)
    ceiling = df[df["route"].str.startswith("ceiling")]["true_return"].median()
    arms = df[~df["route"].str.startswith("ceiling")].copy()
    arms["arm"] = arms["route"].str.replace(", ", "\n") + "\n" + arms["labels"].astype(str) + " labels"
    figure.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(8, 4))
    sns.pointplot(
        arms,
        x="arm",
        y="true_return",
        hue="teacher",
        estimator="median",
        errorbar=("pi", 50),
        dodge=0.3,
        linestyle="none",
        ax=ax,
    )
    ax.axhline(ceiling, color="grey", linestyle="--", label="ceiling (PPO, true reward)")
    title = f"CPL on fixed-horizon {TASK}: partial-return vs regret labels"
    ax.set(xlabel="", ylabel="true return", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(figure, dpi=110)
    plt.close(fig)
    lines = [
        "<!-- cpl_diagnosis:start -->",
        "## CPL diagnosis: preference model or data?",
        "",
        f"Command: `{command}` ({df['seed'].nunique()} seeds). Hardware: {hardware()}.",
        f"Fixed-horizon {TASK}; true return of 20 deterministic episodes; the ceiling (PPO on the true "
        f"reward, also the regret teacher's critic) has a median of {ceiling:.4g}.",
        "",
        "| route | labels | partial-return oracle, median [IQR] | regret teacher, median [IQR] | "
        "oracle labels shuffled (control) |",
        "|---|---|---|---|---|",
    ]
    for (route, labels), group in arms.groupby(["route", "labels"], sort=False):
        cells = []
        for teacher in TEACHERS:
            r = group[group["teacher"] == teacher]["true_return"]
            iqr = f"[{r.quantile(0.25):.4g}, {r.quantile(0.75):.4g}]"
            cells.append(f"{r.median():.4g} {iqr}" if len(r) else "-")
        lines.append(f"| {route} | {labels} | {' | '.join(cells)} |")
    lines += ["", f"![CPL diagnosis](figures/{figure.name})", "<!-- cpl_diagnosis:end -->"]
    put_section(report, "cpl_diagnosis", "\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--offline-steps", type=int, default=2000, help="CPL gradient steps offline")
    parser.add_argument("--report-only", action="store_true", help="redraw the figure and the section")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the raw results go")
    args = parser.parse_args(argv)
    if not args.report_only:
        run_all(args.seeds, args.workers, args.offline_steps, args.results)
    command = COMMAND + (f" --seeds {args.seeds}" if args.seeds != 3 else "")
    command += f" --offline-steps {args.offline_steps}" if args.offline_steps != 2000 else ""
    publish(args.results / "rows.csv", FIGURE, HERE / "RESULTS.md", command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
