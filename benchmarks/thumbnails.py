"""Render a small thumbnail of every task for the README's task table.

    python benchmarks/thumbnails.py              # every task whose extra is installed
    python benchmarks/thumbnails.py --size 160

Each task's expert plays a seeded episode for a few steps (so the frame shows the task in
motion, not its reset pose), then the ``rgb_array`` frame is scaled to ``--size`` pixels wide
and saved as ``benchmarks/figures/tasks/<task>.png``; a pixel task's shows the agent's newest frame
beside it. MuJoCo tasks need ``MUJOCO_GL=egl``
on a machine without a screen (set here if unset).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def thumbnail(task_name: str, out: Path, size: int, steps: int) -> Path:
    """Save the thumbnail of one task; return its path."""
    import numpy as np
    from PIL import Image

    from rlhf_gym.tasks.registry import get_expert, get_task

    task = get_task(task_name)
    env = task.make(render_mode="rgb_array")
    expert = get_expert(task)
    obs, _ = env.reset(seed=1)
    for _ in range(steps):
        obs, _, terminated, truncated, _ = env.step(expert(obs))
        if terminated or truncated:
            break
    frame = np.asarray(env.render())
    env.close()
    image = Image.fromarray(frame)
    image = image.resize((size, round(size * image.height / image.width)), Image.Resampling.LANCZOS)
    if task.observation:  # a pixel task: what the agent sees (its newest frame) beside the game
        seen = Image.fromarray(np.asarray(obs)[..., -1]).convert("RGB")
        seen = seen.resize((image.height * seen.width // seen.height, image.height), Image.Resampling.NEAREST)
        both = Image.new("RGB", (image.width + seen.width, image.height), "white")
        both.paste(image, (0, 0))
        both.paste(seen, (image.width, 0))
        image = both
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{task.name}.png"
    image.save(path, optimize=True)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=160, help="width in pixels")
    parser.add_argument("--steps", type=int, default=40, help="expert steps before the frame is taken")
    parser.add_argument("--out", type=Path, default=HERE / "figures" / "tasks")
    parser.add_argument("--tasks", nargs="*", help="default: every task")
    args = parser.parse_args(argv)
    os.environ.setdefault("MUJOCO_GL", "egl")
    from rlhf_gym.tasks.registry import list_tasks

    names = args.tasks or [t.name for t in list_tasks()]
    for name in names:
        try:
            print(thumbnail(name, args.out, args.size, args.steps))
        except ImportError as err:
            print(f"skipped {name}: {err}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
