"""The task suites' measurements besides their runs: every task's speed, expert and random baseline.

    python benchmarks/publish.py tasks        # the project's own tasks, 10 seeds, all cores
    python benchmarks/publish.py adapters     # MuJoCo, Box2D and Atari, 10 seeds (needs their extras)

For each task it measures environment steps per second (random actions, one environment,
through ``gym.make`` as users build it, and on the bare environment), and the scripted expert's
and a uniform-random policy's mean true return. The runs themselves (the true-reward ceiling and
RLHF at the preset's label budget, fixed horizon) are the publications' arms
(``label_efficiency.py``).
"""

from __future__ import annotations

import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
STEPS = 20_000


def steps_per_second(env, n: int = STEPS) -> float:
    """Steps per second of ``env`` over ``n`` random actions, resets included."""
    env.reset(seed=0)
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(n)]
    start = time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    return n / (time.perf_counter() - start)


def task_notes(names: list[str]) -> list[str]:
    """A table per task: steps/s through ``gym.make`` and bare, expert and random returns."""
    from rlhf_gym.tasks.experts import mean_return
    from rlhf_gym.tasks.registry import get_expert, get_task

    rows = [
        "| task | family | actions | horizon | labels (preset) | steps/s, gym.make | steps/s, bare env | "
        "expert return | random return |",
        "|" + "---|" * 9,
    ]
    for name in names:
        task = get_task(name)
        made = task.make()
        bare = task.make().unwrapped
        fast, raw = steps_per_second(made), steps_per_second(bare)
        made.close()
        bare.close()
        expert, rand = mean_return(task, get_expert(task)), mean_return(task, None)
        rows.append(
            f"| {name} | {task.family} | {task.action_type()} | {task.max_episode_steps} | "
            f"{task.run.get('labels', '-')} | {fast:,.0f} | {raw:,.0f} | {expert:.1f} | {rand:.1f} |"
        )
    return [
        f"Speed and reference returns (20 seeded episodes each; steps/s over {STEPS:,} random steps of one "
        "environment on one core):",
        "",
        *rows,
        "",
    ]
