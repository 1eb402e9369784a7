"""How fast the sweep runner is: parallel speed-up, overhead per run, and the smoke sweep's wall time.

    python benchmarks/publish.py sweep_speed      # 8 small CartPole runs, three ways, side by side

The same runs (PPO on fixed-horizon CartPole, 20k timesteps, RLHF with 20 comparisons from the
oracle, stoch, mistake and equal teachers)
are timed three ways in one go: one after another in this process (``execute``, the work
itself), through ``run_sweep`` with one worker (the same work plus the runner: process start,
result files, the table), and through ``run_sweep`` with every core. Then the published
``smoke.yaml`` sweep runs from scratch. The figures are kept in ``benchmarks/results/sweep_speed/meta.json``
and rendered into ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RUNS = 8


def spec(runs: int) -> dict:
    """A sweep of ``runs`` small runs (controls off, so the count is exact)."""
    teachers = ["oracle", "stoch", "mistake", "equal"]
    per_seed = min(runs, len(teachers))
    return {
        "name": "speed",
        "base": {
            "task": "CartPole-v1",
            "horizon": "fixed",
            "labels": 20,
            "total_timesteps": 20_000,
            "eval_freq": 10_000,
        },
        "grid": {"teacher": teachers[:per_seed]},
        "seeds": max(1, runs // per_seed),
        "controls": False,
    }


def measure(tasks: list[str], smoke: bool) -> dict[str, Any]:
    """Time the same runs three ways, side by side, then the smoke sweep (a smoke check: 2 runs,
    no smoke sweep)."""
    import torch

    from rlhf_gym.experiments.grid import Sweep
    from rlhf_gym.experiments.sweep import execute, run_sweep
    from rlhf_gym.provenance import platform

    torch.set_num_threads(1)
    small = spec(2 if smoke else RUNS)
    if smoke:
        small["base"] |= {"total_timesteps": 600, "labels": 4, "segment_length": 10, "eval_freq": 10_000}
    sweep = Sweep.from_dict(small)
    runs = sweep.runs()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        for run in runs:
            if execute(run.config)["status"] != "done":
                raise RuntimeError(f"run {run.key} failed")
        serial = time.perf_counter() - start
        one = run_sweep(sweep, Path(tmp) / "one", workers=1, progress=False).wall_seconds
        pool = run_sweep(sweep, Path(tmp) / "pool", workers=cores, progress=False).wall_seconds
        full = None if smoke else run_sweep(Sweep.from_yaml(HERE / "sweeps" / "smoke.yaml"), Path(tmp) / "s")
    return {
        "runs": len(runs),
        "timesteps": small["base"]["total_timesteps"],
        "labels": small["base"]["labels"],
        "cores": cores,
        "platform": platform(),
        "serial_seconds": serial,
        "one_worker_seconds": one,
        "pool_seconds": pool,
        "smoke": None
        if full is None
        else {"seconds": full.wall_seconds, "done": full.done, "failed": full.failed},
    }


def render(df: Any, meta: dict[str, Any], figure: Path | None) -> dict[str, str]:
    from report import commit_note, target_row

    m = meta["measured"]
    n, serial, one, pool = m["runs"], m["serial_seconds"], m["one_worker_seconds"], m["pool_seconds"]
    overhead = (one - serial) / n
    rows = [
        target_row(
            "wall time, every core / one after another (<= 0.6)", f"{pool / serial:.3f}", pool / serial <= 0.6
        ),
        target_row("runner overhead per run, s (< 1)", f"{overhead:.2f}", overhead < 1.0),
    ]
    smoke = m["smoke"]
    if smoke is not None:
        rows.append(
            target_row(
                "smoke.yaml from scratch, s (< 300)", f"{smoke['seconds']:.0f}", smoke["seconds"] < 300
            )
        )
    commit = commit_note(meta)
    block = [
        f"## {meta['title']}",
        "",
        f"Command: `{meta['command']}` ({n} runs of PPO on fixed CartPole, {m['timesteps']} timesteps, "
        f"{m['labels']} comparisons from the oracle, stoch, mistake and equal teachers). Code version "
        f"`{meta['code_version']}`{commit}; {m['cores']} cores; platform: "
        f"{m['platform']}. One after another in one process: {serial:.0f} s; through the runner with one "
        f"worker: {one:.0f} s; with {m['cores']} workers: {pool:.0f} s."
        + (f" `smoke.yaml`: {smoke['done']} runs, {smoke['failed']} failed." if smoke else ""),
        "",
        "| target | measured | |",
        "|---|---|---|",
        *rows,
    ]
    return {"RESULTS.md": "\n".join(block)}


from publish import Publication  # noqa: E402 - publish.py imports this module only when asked

PUBLICATIONS = [Publication("sweep_speed", "Sweep runner", {}, 0, render, measure)]
