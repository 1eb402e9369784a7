"""Label efficiency of the core RLHF loop, with its controls, side by side in one run.

    python benchmarks/label_efficiency.py            # every arm, 5 seeds, all cores
    python benchmarks/label_efficiency.py --smoke    # tiny budgets: checks the script end to end
    python benchmarks/label_efficiency.py --suite presets --seeds 1   # the other classic presets

Each run's summary is cached in ``benchmarks/results/label_efficiency/`` (git-ignored), so
a killed benchmark resumes where it stopped; ``--fresh`` starts over. A cached summary counts
only for the code version that made it (``rlhf_gym.provenance.code_version``): after any change
under ``rlhf_gym/`` every run runs again, and the section never mixes code versions (nor
platforms, unless ``--allow-mixed``). The table, the
target checks and the command go into ``benchmarks/RESULTS.md`` between this benchmark's
markers, and the figure into ``benchmarks/figures/label_efficiency.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
COMMAND = "python benchmarks/label_efficiency.py"

# arm name -> RunConfig overrides. Paired arms run side by side (same seed, adjacent in the queue).
ARMS: dict[str, dict[str, Any]] = {
    "cartpole-natural-oracle-50": {"task": "CartPole-v1", "horizon": "natural", "labels": 50},
    "cartpole-natural-true": {"task": "CartPole-v1", "horizon": "natural", "reward": "true"},
    "cartpole-natural-constant": {"task": "CartPole-v1", "horizon": "natural", "reward": "constant"},
    "cartpole-fixed-oracle-50": {"task": "CartPole-v1", "horizon": "fixed", "labels": 50},
    "cartpole-fixed-true": {"task": "CartPole-v1", "horizon": "fixed", "reward": "true"},
    "cartpole-fixed-constant": {"task": "CartPole-v1", "horizon": "fixed", "reward": "constant"},
    "cartpole-fixed-oracle-100": {"task": "CartPole-v1", "horizon": "fixed", "labels": 100},
    "cartpole-fixed-stoch-100": {
        "task": "CartPole-v1",
        "horizon": "fixed",
        "labels": 100,
        "teacher": "stoch",
    },
    "cartpole-fixed-mistake-100": {
        "task": "CartPole-v1",
        "horizon": "fixed",
        "labels": 100,
        "teacher": "mistake",
    },
    "cartpole-fixed-mistake-100-sa": {
        "task": "CartPole-v1",
        "horizon": "fixed",
        "labels": 100,
        "teacher": "mistake",
        "reward_model": {"use_actions": True},
    },
    "pendulum-oracle-100": {"task": "Pendulum-v1", "labels": 100},
    "pendulum-true": {"task": "Pendulum-v1", "reward": "true"},
}
# The other classic presets: no targets yet, measured so that their numbers are known.
PRESET_ARMS: dict[str, dict[str, Any]] = {
    f"{short}-{kind}": {"task": task, **({"reward": "true"} if kind == "true" else {})}
    for short, task in [
        ("mountaincar", "MountainCar-v0"),
        ("acrobot", "Acrobot-v1"),
        ("mountaincarcontinuous", "MountainCarContinuous-v0"),
    ]
    for kind in ("oracle", "true")
}
# Feedback types at equal effort (issue 3): the budget in seconds is what the core issue's
# comparison label counts cost (CartPole 50 x 4.0 s, Pendulum 100 x 4.67 s; rlhf_gym.feedback.effort).
BUDGETS = {"CartPole-v1": 50 * (50 / 50 + 3.0), "Pendulum-v1": 100 * (50 / 30 + 3.0)}
FEEDBACK = ("comparisons", "corrections", "demonstrations", "ratings", "tamer", "estops")
FEEDBACK_ARMS: dict[str, dict[str, Any]] = {}
for _short, _task in (("cartpole", "CartPole-v1"), ("pendulum", "Pendulum-v1")):
    _base = {"task": _task, "horizon": "fixed"}
    for _kind in FEEDBACK:
        FEEDBACK_ARMS[f"{_short}-{_kind}"] = {**_base, "feedback": _kind, "budget_seconds": BUDGETS[_task]}
    FEEDBACK_ARMS[f"{_short}-mix"] = {
        **_base,
        "feedback": ",".join(FEEDBACK),
        "budget_seconds": BUDGETS[_task],
    }
    FEEDBACK_ARMS[f"{_short}-corrections-half"] = {
        **_base,
        "feedback": "corrections",
        "budget_seconds": BUDGETS[_task] / 2,
    }
    FEEDBACK_ARMS[f"{_short}-true"] = {**_base, "reward": "true"}
    FEEDBACK_ARMS[f"{_short}-constant"] = {**_base, "reward": "constant"}
# Sensitivity checks (no targets of their own): TAMER on CartPole watched at real-time speed instead
# of the effort model's 1/4, and demonstrations with behaviour cloning (the instruction-tuning stage).
FEEDBACK_ARMS["cartpole-tamer-realtime"] = {
    **FEEDBACK_ARMS["cartpole-tamer"],
    "effort": {"tamer_speed": 1.0},
}
for _short in ("cartpole", "pendulum"):
    FEEDBACK_ARMS[f"{_short}-demonstrations-bc"] = {
        **FEEDBACK_ARMS[f"{_short}-demonstrations"],
        "bc_steps": 200,
    }
# The task suite (issue 4): every task's true-reward ceiling and RLHF with oracle comparisons at
# the label budget its preset states (run.labels), in the fixed horizon. The project's own tasks
# never terminate, so a constant reward carries no signal there and is left out.
OWN_TASKS = ("Reach-v0", "ReachDiscrete-v0", "PickPlace-v0", "Catch-v0", "Pong-v0")
ADAPTED_TASKS = ("Reacher-v5", "Pusher-v5", "LunarLander-v3", "PongRam-v5")


def task_arms(names: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """A ceiling arm and an oracle-comparisons arm per task."""
    arms: dict[str, dict[str, Any]] = {}
    for name in names:
        base = {"task": name, "horizon": "fixed"}
        arms[f"{name}-true"] = {**base, "reward": "true"}
        arms[f"{name}-oracle"] = base
    return arms


TASK_ARMS, ADAPTER_ARMS = task_arms(OWN_TASKS), task_arms(ADAPTED_TASKS)
SUITES = {
    "core": ARMS,
    "presets": PRESET_ARMS,
    "feedback_types": FEEDBACK_ARMS,
    "tasks": TASK_ARMS,
    "adapters": ADAPTER_ARMS,
}
SECTIONS = {
    "core": ("label_efficiency", "Label efficiency (core RLHF loop)"),
    "presets": ("presets", "Other classic presets"),
    "feedback_types": ("feedback_types", "Feedback types at equal effort"),
    "tasks": ("tasks", "The project's own tasks: ceilings and RLHF"),
    "adapters": ("adapters", "Adapted tasks (MuJoCo, Box2D, Atari): ceilings and RLHF"),
}
ALL_ARMS = {**ARMS, **PRESET_ARMS, **FEEDBACK_ARMS, **TASK_ARMS, **ADAPTER_ARMS}
SMOKE = {
    "total_timesteps": 600,
    "segment_length": 10,
    "eval_freq": 10_000,
    "final_eval_episodes": 2,
    "feedback_rounds": 1,
    "reward_model": {"n_steps": 20},
}


def run_one(arm: str, seed: int, smoke: bool) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    from rlhf_gym import RLHF

    overrides = {**ALL_ARMS[arm], "seed": seed, **(SMOKE if smoke else {})}
    if smoke and overrides.get("reward", "learned") == "learned":
        overrides["labels"] = 6
        if "budget_seconds" in overrides:
            overrides["budget_seconds"] = 30.0
    if smoke and overrides["task"] == "Pendulum-v1":
        overrides["hyperparams"] = {"learning_starts": 100}
    run = RLHF(**overrides).learn()
    return {"arm": arm, **run.summary()}


def cached(path: Path, version: str) -> dict[str, Any] | None:
    """The cached summary at ``path`` if the code version ``version`` made it, else None."""
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return summary if summary.get("code_version") == version else None


def random_return(task_name: str, episodes: int = 20) -> float:
    """Mean true return of uniformly random actions: the 0 of normalised return."""
    import numpy as np

    from rlhf_gym.tasks.registry import get_task

    env = get_task(task_name).make("natural")
    env.action_space.seed(0)
    returns = []
    for i in range(episodes):
        env.reset(seed=10_000 + i)
        total, done = 0.0, False
        while not done:
            _, r, terminated, truncated, _ = env.step(env.action_space.sample())
            total += float(r)
            done = terminated or truncated
        returns.append(total)
    return float(np.mean(returns))


def main(
    argv: list[str] | None = None,
    suite: str = "core",
    command: str = COMMAND,
    notes: Callable[[list[str]], list[str]] | None = None,
) -> int:
    """Run the suite's arms (cached), then write its RESULTS.md section and figure; ``notes``
    gives extra lines for the section from the suite's task names."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--suite", choices=list(SUITES), default=suite)
    parser.add_argument("--arms", nargs="*", choices=list(ALL_ARMS), help="default: every arm of the suite")
    parser.add_argument("--smoke", action="store_true", help="tiny budgets, to check the script end to end")
    parser.add_argument("--fresh", action="store_true", help="ignore cached runs")
    parser.add_argument("--results", type=Path, help="run cache (default: benchmarks/results/<section>)")
    parser.add_argument("--report", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--figure", type=Path, help="default: benchmarks/figures/<section>.png")
    parser.add_argument(
        "--allow-mixed", action="store_true", help="report cached runs of several platforms together"
    )
    args = parser.parse_args(argv)
    section, title = SECTIONS[args.suite]
    args.arms = args.arms or list(SUITES[args.suite])
    args.results = args.results or HERE / "results" / section
    args.figure = args.figure or HERE / "figures" / f"{section}.png"
    if args.smoke:  # never mixed with, nor mistaken for, real results
        args.results = args.results.with_name(args.results.name + "_smoke")
    args.results.mkdir(parents=True, exist_ok=True)

    from tqdm import tqdm

    # the long runs first, and the two arms of each overhead pair side by side
    order = sorted(args.arms, key=lambda a: ALL_ARMS[a]["task"] == "CartPole-v1")
    jobs = [(arm, seed) for seed in range(args.seeds) for arm in order]
    if args.suite == "feedback_types":  # task by task, seed by seed: a partial run covers whole seeds
        jobs = [(a, s) for a in args.arms for s in range(args.seeds)]
        jobs.sort(key=lambda j: (ALL_ARMS[j[0]]["task"] != "CartPole-v1", j[1]))
    from rlhf_gym.provenance import code_version

    version = code_version()
    todo = [(a, s) for a, s in jobs if args.fresh or cached(args.results / f"{a}-s{s}.json", version) is None]
    start = time.perf_counter()
    failed = 0
    from rlhf_gym.processes import die_with_parent

    # the workers die with this process, even on SIGKILL
    pool = ProcessPoolExecutor(max_workers=args.workers, initializer=die_with_parent, initargs=(os.getpid(),))
    with pool, tqdm(total=len(jobs), desc="runs") as bar:
        bar.update(len(jobs) - len(todo))
        futures = {pool.submit(run_one, a, s, args.smoke): (a, s) for a, s in todo}
        for fut in as_completed(futures):
            arm, seed = futures[fut]
            try:
                summary = fut.result()
                (args.results / f"{arm}-s{seed}.json").write_text(json.dumps(summary, indent=2))
            except Exception as err:
                failed += 1
                tqdm.write(f"{arm} seed {seed} failed: {err!r}")
            bar.set_postfix(failed=failed)
            bar.update(1)
    print(f"ran {len(todo)} runs in {time.perf_counter() - start:.0f} s ({failed} failed)")

    from report import write_report

    found = [cached(args.results / f"{a}-s{s}.json", version) for a, s in jobs]
    summaries = [summary for summary in found if summary is not None]  # this code version's only
    tasks = sorted({ALL_ARMS[a]["task"] for a in args.arms})
    randoms = {t: random_return(t) for t in tasks}
    command += " --smoke" if args.smoke else ""
    if args.suite != suite or args.seeds != 5:
        command += f" --suite {args.suite} --seeds {args.seeds}"
    if args.smoke:
        args.report = args.results / "RESULTS.md"
        args.figure = args.results / f"{section}.png"
    extra = notes(tasks) if notes else []
    write_report(
        summaries,
        randoms,
        command,
        args.report,
        args.figure,
        args.seeds,
        section,
        title,
        extra,
        args.allow_mixed,
    )
    print(f"wrote {args.report} and {args.figure}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    sys.exit(main())
