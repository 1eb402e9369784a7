"""How fast the sweep runner is: parallel speed-up, overhead per run, and the smoke sweep's wall time.

    python benchmarks/sweep_speed.py              # 8 small CartPole runs, three ways, side by side
    python benchmarks/sweep_speed.py --runs 4     # fewer runs

The same runs (PPO on fixed-horizon CartPole, 20k timesteps, RLHF with 20 oracle comparisons)
are timed three ways in one go: one after another in this process (``execute``, the work
itself), through ``run_sweep`` with one worker (the same work plus the runner: process start,
result files, the table), and through ``run_sweep`` with every core. Then the published
``smoke.yaml`` sweep runs from scratch. The figures go into ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
COMMAND = "python benchmarks/sweep_speed.py"


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--report", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args(argv)

    import torch

    from rlhf_gym.experiments.grid import Sweep
    from rlhf_gym.experiments.sweep import execute, run_sweep

    sys.path.insert(0, str(HERE))
    from report import hardware, put_section

    torch.set_num_threads(1)
    sweep = Sweep.from_dict(spec(args.runs))
    runs = sweep.runs()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        for run in runs:
            assert execute(run.config)["status"] == "done"
        serial = time.perf_counter() - start
        one = run_sweep(sweep, Path(tmp) / "one", workers=1, progress=False).wall_seconds
        pool = run_sweep(sweep, Path(tmp) / "pool", workers=cores, progress=False).wall_seconds
        smoke = run_sweep(
            Sweep.from_yaml(HERE / "sweeps" / "smoke.yaml"), Path(tmp) / "smoke", progress=False
        )
    n = len(runs)
    overhead = (one - serial) / n
    rows = [
        ("wall time, every core / one after another (<= 0.6)", f"{pool / serial:.3f}", pool / serial <= 0.6),
        ("runner overhead per run, s (< 1)", f"{overhead:.2f}", overhead < 1.0),
        ("smoke.yaml from scratch, s (< 300)", f"{smoke.wall_seconds:.0f}", smoke.wall_seconds < 300),
    ]
    block = "\n".join(
        [
            "<!-- sweep_speed:start -->",
            "## Sweep runner",
            "",
            f"Command: `{COMMAND}` ({n} runs of PPO on fixed CartPole, 20k timesteps, 20 oracle comparisons; "
            f"{hardware()}). One after another in one process: {serial:.0f} s; through the runner with one "
            f"worker: {one:.0f} s; with {cores} workers: {pool:.0f} s. `smoke.yaml`: {smoke.done} runs, "
            f"{smoke.failed} failed.",
            "",
            "| target | measured | |",
            "|---|---|---|",
            *(f"| {t} | {v} | {'met' if ok else '**missed**'} |" for t, v, ok in rows),
            "<!-- sweep_speed:end -->",
        ]
    )
    print(block)
    put_section(args.report, "sweep_speed", block)
    return 0 if all(ok for *_, ok in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
