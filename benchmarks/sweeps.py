"""Run the published sweep presets and write their sections of ``benchmarks/RESULTS.md``.

    python benchmarks/sweeps.py teachers              # one preset
    python benchmarks/sweeps.py teachers queries      # several, in order
    python benchmarks/sweeps.py --report-only tasks   # rewrite a section from finished results

Each preset (``benchmarks/sweeps/<name>.yaml``) runs with ``rlhf_gym.experiments.sweep.run_sweep`` into
``benchmarks/results/sweeps/<name>`` (git-ignored, so a killed run resumes where it stopped).
Then ``rlhf-gym plot`` draws its figures into ``benchmarks/figures/sweeps/<name>`` (committed)
and ``rlhf-gym report`` gives its tables. The section states the command and the hardware.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PRESETS = ("smoke", "teachers", "queries", "feedback_types", "tasks", "cpl")


def publish(name: str, report_path: Path, workers: int | None, run: bool) -> int:
    """Run (or resume) one preset, then write its figures and its RESULTS.md section; returns
    the number of failed runs."""
    from report import hardware, put_section

    from rlhf_gym.experiments.grid import Sweep
    from rlhf_gym.experiments.plots import plot, report
    from rlhf_gym.experiments.results import results_table
    from rlhf_gym.experiments.sweep import run_sweep

    sweep = Sweep.from_yaml(HERE / "sweeps" / f"{name}.yaml")
    out = HERE / "results" / "sweeps" / name
    if run:
        run_sweep(sweep, out, workers=workers)
    table = results_table(out, keys=[r.key for r in sweep.runs()])  # in the grid's order
    folder = HERE / "figures" / "sweeps" / name
    for stale in folder.glob("*.png"):  # a figure the sweep no longer draws must not stay published
        stale.unlink()
    figures = plot(table, folder)
    heading, body = report(table, title=f"Sweep: {name}").split("\n", 1)
    failed = int(table.loc[table["status"] == "failed", "key"].nunique())
    block = "\n".join(
        [
            f"<!-- sweep_{name}:start -->",
            heading,
            "",
            f"Command: `python benchmarks/sweeps.py {name}` ({sweep.description}; "
            f"{table['key'].nunique()} runs, {failed} failed). Hardware: {hardware()}.",
            "Each arm sits under its own controls (the true-reward ceiling and the constant-reward run); "
            "normalised return is against that ceiling.",
            body.rstrip(),
            "",
            *(f"![{path.stem}]({path.relative_to(report_path.parent)})" for path in figures),
            f"<!-- sweep_{name}:end -->",
        ]
    )
    put_section(report_path, f"sweep_{name}", block)
    print(f"{name}: {len(figures)} figure(s), section sweep_{name} written to {report_path}")
    return failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "names", nargs="+", choices=PRESETS, metavar="NAME", help=f"one of {', '.join(PRESETS)}"
    )
    parser.add_argument("--workers", type=int, default=None, help="processes (default: every core)")
    parser.add_argument("--report", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--report-only", action="store_true", help="do not run; use the finished results")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE))
    failed = sum(publish(name, args.report, args.workers, not args.report_only) for name in args.names)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
