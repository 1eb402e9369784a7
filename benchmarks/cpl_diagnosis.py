"""Why CPL trails the reward-model route on CartPole: its preference model, or its data?

    python benchmarks/publish.py cpl_diagnosis         # 5 seeds, one job per seed; resumes

CPL (``--algo cpl``) assumes that a teacher prefers segments by their regret; the oracle of every
other benchmark here prefers them by their partial return. CPL also learns only from the
labelled segments, which online come from its own, at first random, rollouts. Two checks on
fixed-horizon CartPole separate the two, per seed:

1. **Online, as in ``sweeps/cpl.yaml``**: CPL with 50 and 500 labels from the partial-return
   oracle and from the regret teacher (``teacher: regret``), whose critic is a PPO agent trained
   here on the true reward (the ceiling).
2. **Offline**: CPL fits a fixed set of labelled pairs of 50-step segments from a random start,
   for ``OFFLINE_STEPS`` gradient steps. The segments come from 100 episodes of the scripted
   expert taking a random action with a probability drawn per episode: from [0, 1] (``noise
   0-1``, every quality, as CPL's and B-Pref's datasets mix policies), or always (``random``,
   what online CPL starts from). The control fits the oracle's labels shuffled among the pairs:
   what CPL gets from the data alone.

Each seed keeps its rows (``metrics.csv``) in ``benchmarks/results/cpl_diagnosis/CartPole-v1/s<seed>/``;
the section of RESULTS.md and ``benchmarks/figures/cpl_diagnosis.png`` are rendered from them.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from report import one_thread  # noqa: E402 - benchmarks/ is on the path from here

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
OFFLINE_STEPS = 2000
"""CPL's gradient steps offline."""
QUICK = {"total_timesteps": 600, "segment_length": 10, "eval_freq": 10_000, "final_eval_episodes": 2}
"""A smoke run's budgets."""


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


def critic(seed: int, results: Path, quick: bool = False) -> tuple[str, dict[str, Any]]:
    """The ceiling run: PPO on the true reward; its critic is the regret teacher's."""
    one_thread()
    from rlhf_gym.agents.files import save_agent
    from rlhf_gym.train.rlhf import RLHF

    t0 = time.perf_counter()
    run = RLHF(TASK, horizon="fixed", seed=seed, reward="true", **(QUICK if quick else {})).learn()
    path = results / f"critic-s{seed}.zip"
    save_agent(run.agent, path)  # with its pickle-free twin, which the regret teacher reads
    return str(path), _row(seed, "ceiling (PPO, true reward)", "-", 0, run.agent, t0)


def online(seed: int, teacher: str, labels: int, critic_path: str, quick: bool = False) -> dict[str, Any]:
    one_thread()
    from rlhf_gym.train.rlhf import RLHF

    t0 = time.perf_counter()
    extra = {"teacher_critic": critic_path} if teacher == "regret" else {}
    extra |= QUICK if quick else {}
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


def run_seed(overrides: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Every route of one seed in turn (one worker): the ceiling, online and offline CPL."""
    import tempfile

    from publish import runner_summary

    seed, quick = overrides["seed"], bool(overrides.get("quick"))
    t0 = time.perf_counter()
    online_labels, pairs = ((6,), (10,)) if quick else (ONLINE_LABELS, OFFLINE_PAIRS)
    steps = 20 if quick else OFFLINE_STEPS
    with tempfile.TemporaryDirectory() as tmp:  # the critic: not published
        path, ceiling = critic(seed, Path(tmp), quick)
        rows = [ceiling]
        for teacher in TEACHERS:
            if teacher != SHUFFLED:
                rows += [online(seed, teacher, n, path, quick) for n in online_labels]
            for data in DATASETS:
                sizes = pairs if data == ALL and teacher != SHUFFLED else pairs[-1:]
                rows += [offline(seed, teacher, n, path, steps, data) for n in sizes]
    return runner_summary(TASK, seed, t0), rows


def render(df: Any, meta: dict[str, Any], figure: Path | None) -> dict[str, str]:
    """The section: IQM [95% CI] over seeds of every route, labels and teacher, and the figure."""
    from publish import metrics_rows
    from report import origin_lines

    from rlhf_gym.experiments.stats import iqm, iqm_ci

    rows = metrics_rows(df, meta)
    ceiling = iqm_ci(rows.loc[rows["route"].str.startswith("ceiling"), "true_return"].to_numpy(float))
    arms = rows[~rows["route"].str.startswith("ceiling")].copy()
    if figure is not None:
        _figure(arms, ceiling.value, figure, iqm)
    lines = [
        f"## {meta['title']}",
        "",
        f"Command: `{meta['command']}` ({df['seed'].nunique()} seeds; one job per seed on one core, "
        f"{df['wall_seconds'].sum() / 3600:.1f} hours of them in all).",
        "",
        *origin_lines(df, meta, "the CPL diagnosis runs"),
        "",
        f"Fixed-horizon {TASK}; true return of 20 deterministic episodes, IQM over seeds with its 95% "
        f"bootstrap CI. The ceiling (PPO on the true reward, also the regret teacher's critic): {ceiling}.",
        "",
        "| route | labels | partial-return oracle | regret teacher | oracle labels shuffled (control) |",
        "|---|---|---|---|---|",
    ]
    for (route, labels), group in arms.groupby(["route", "labels"], sort=False):
        cells = []
        for teacher in TEACHERS:
            r = group.loc[group["teacher"] == teacher, "true_return"].to_numpy(float)
            cells.append(str(iqm_ci(r)) if len(r) else "-")
        lines.append(f"| {route} | {labels} | {' | '.join(cells)} |")
    lines += ["", f"![{meta['title']}](figures/{meta['name']}.png)"]
    return {"RESULTS.md": "\n".join(lines)}


def _figure(arms: Any, ceiling: float, figure: Path, estimator: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    arms = arms.copy()
    arms["arm"] = arms["route"].str.replace(", ", "\n") + "\n" + arms["labels"].astype(str) + " labels"
    figure.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(8, 4))
    sns.pointplot(
        arms,
        x="arm",
        y="true_return",
        hue="teacher",
        estimator=estimator,
        errorbar=("ci", 95),
        seed=0,
        dodge=0.3,
        linestyle="none",
        ax=ax,
    )
    ax.axhline(ceiling, color="grey", linestyle="--", label="ceiling (PPO, true reward), IQM")
    title = f"CPL on fixed-horizon {TASK}: partial-return vs regret labels (IQM, 95% CI)"
    ax.set(xlabel="", ylabel="true return", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(figure, dpi=110)
    plt.close(fig)


def _settings() -> dict[str, Any]:
    """The study's settings, as JSON gives them back: part of each run's overrides, so a change of
    them reruns the runs they made."""
    import json

    study = {
        "online_labels": ONLINE_LABELS,
        "offline_pairs": OFFLINE_PAIRS,
        "offline_steps": OFFLINE_STEPS,
        "datasets": DATASETS,
        "teachers": TEACHERS,
        "episodes": EPISODES,
        "segment": SEGMENT,
        "quick": QUICK,
    }
    return dict(json.loads(json.dumps(study)))


from publish import Publication  # noqa: E402 - publish.py imports this module only when asked

PUBLICATIONS = [
    Publication(
        "cpl_diagnosis",
        "CPL diagnosis: preference model or data?",
        {TASK: {"task": TASK, "study": _settings()}},
        5,
        render,
        runner=run_seed,
        smoke={"quick": True},
    )
]
