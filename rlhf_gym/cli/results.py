"""The ``rlhf-gym`` commands about results and recorded feedback: sweep, plot, report, feedback."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rlhf_gym.experiments.grid import Run


def add_sweep(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="run a YAML grid of runs (resumable) and write a tidy results table",
        description="Run every run of a sweep spec (benchmarks/sweeps/*.yaml) that is not done yet in "
        "the output folder, in local processes or on Ray, and write results.parquet.",
    )
    p.add_argument("spec", type=Path, help="the sweep spec (YAML)")
    p.add_argument("--out", type=Path, help="sweep folder (default: sweeps/<spec name>)")
    p.add_argument("--workers", type=int, help="local processes (default: every core)")
    p.add_argument("--backend", choices=("local", "ray"), default="local", help="where the runs run")
    p.add_argument("--address", help="a Ray cluster to join (default: start a local Ray instance)")
    p.add_argument("--retry-failed", action="store_true", help="rerun the runs that failed before")
    p.add_argument("--csv", action="store_true", help="also write results.csv")
    p.add_argument("--dry-run", action="store_true", help="list the runs and their state, run nothing")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    mixed = (
        "accept runs of several code versions or platforms in one table (refused by default); "
        "the report then says so above its tables"
    )
    p = sub.add_parser(
        "plot",
        help="seaborn figures of a sweep's results",
        description="Draw a sweep's figures: learning curves, the final normalised return along what the "
        "grid varied, and performance profiles with bootstrap bands.",
    )
    p.add_argument("results", type=Path, help="a sweep folder, or its results.parquet / .csv")
    p.add_argument("--out", type=Path, help="figure folder (default: <sweep folder>/figures)")
    p.add_argument("--allow-mixed", action="store_true", help=mixed)
    p = sub.add_parser(
        "report",
        help="a markdown report of a sweep's results",
        description="Write a sweep's markdown report: per task and arm, medians and IQRs, the IQM of the "
        "final normalised return with its 95%% stratified bootstrap CI, and the probability of improvement "
        "between arms that differ in one grid field.",
    )
    p.add_argument("results", type=Path, help="a sweep folder, or its results.parquet / .csv")
    p.add_argument("--title", default=None, help="the report's heading (default: the sweep's name)")
    p.add_argument("--out", type=Path, help="write the report to this file (default: print it)")
    p.add_argument("--allow-mixed", action="store_true", help=mixed)


def add_feedback(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "feedback",
        help="inspect, export and import recorded feedback",
        description="Summarise a feedback store (a run's feedback.sqlite, or a labelling session's) or a "
        ".jsonl export, and convert between the two. The formats are described in feedback/README.md.",
    )
    actions = p.add_subparsers(dest="action", required=True)
    q = actions.add_parser("info", help="summarise a feedback store or a .jsonl export (reads only)")
    q.add_argument("path", type=Path, help="a feedback store or a .jsonl export")
    q = actions.add_parser("export", help="write a store's records to a portable JSON Lines file")
    q.add_argument("store", type=Path, help="the feedback store to read")
    q.add_argument("out", type=Path, help="the .jsonl file to write (replaced whole, never half-written)")
    q = actions.add_parser(
        "import",
        help="add a .jsonl export's records to a store (created if missing), skipping those it holds",
    )
    q.add_argument(
        "input",
        type=Path,
        help="the .jsonl export to read; every record is checked against the task before anything is written",
    )
    q.add_argument(
        "store", type=Path, help="the feedback store to add to; an existing one must hold the same task"
    )
    q.add_argument("--task", help="the task the records must be for (an export without one takes it)")


def cmd_feedback(args: argparse.Namespace) -> int:
    import json

    from rlhf_gym.feedback.formats import export_store, feedback_info, import_store

    if args.action == "export":
        n = export_store(args.store, args.out)
        print(f"{n} record(s) of {args.store} -> {args.out}")
    elif args.action == "import":
        done = import_store(args.input, args.store, task=args.task)
        skipped = f", {done.duplicates} duplicate(s) already there skipped" if done.duplicates else ""
        print(f"{done.added} record(s) of {args.input} -> {args.store}{skipped}")
    else:
        info = feedback_info(args.path)
        rows = [
            ("path", info["path"]),
            ("format", f"{info['format']}, schema version {info['schema_version']}"),
            ("meta", json.dumps(info["meta"], sort_keys=True)),
            *((kind, str(n)) for kind, n in info["counts"].items()),
            ("total", str(info["total"])),
            ("effort seconds", f"{info['effort_seconds']:.1f}"),
            (
                "pending",
                ", ".join(info["pending"]) + " (waiting to be answered)" if info["pending"] else "none",
            ),
        ]
        width = max(len(key) for key, _ in rows)
        for key, value in rows:
            print(f"{key.ljust(width)}  {value}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from rlhf_gym.experiments.grid import Sweep
    from rlhf_gym.experiments.sweep import run_sweep, status

    sweep = Sweep.from_yaml(args.spec)
    out = args.out or Path("sweeps") / sweep.name
    if args.dry_run:
        runs = sweep.runs()
        for run in runs:
            print(
                f"{run.key}  {status(out, run.key, run.code_version):6}  seed {run.config['seed']}  {run.arm}"
            )
        print(f"code version {runs[0].code_version}: {_other_versions(out, runs)}")
        return 0
    report = run_sweep(
        sweep, out, args.workers, args.backend, args.address, args.retry_failed, not args.no_progress
    )
    if args.csv:
        import pandas as pd

        pd.read_parquet(out / "results.parquet").to_csv(out / "results.csv", index=False)
    again = (
        f", {report.other_version} of them run again for this code version" if report.other_version else ""
    )
    print(
        f"{sweep.name}: {report.done} run(s) done{again}, {report.failed} failed, {report.skipped} already "
        f"there, {report.wall_seconds:.0f} s -> {out / 'results.parquet'}"
    )
    for error in report.errors:
        print(f"  failed: {error}", file=sys.stderr)
    return 1 if report.failed else 0


def _other_versions(out: Path, runs: list[Run]) -> str:
    """The dry run's last line: how many of the sweep's runs are finished for another code version."""
    from rlhf_gym.experiments.sweep import other_versions

    counts = other_versions(out, runs)
    if not counts:
        return "no finished run of this sweep is from another code version"
    # the most runs first, then by name (a set's order would change from one process to the next)
    ordered = sorted(counts.items(), key=lambda vn: (-vn[1], vn[0] is None, vn[0] or ""))
    names = ", ".join(f"{n} of {v or 'an unrecorded version'}" for v, n in ordered)
    return (
        f"{sum(counts.values())} finished run(s) of this sweep are from another code version ({names}); "
        "they stay in the folder, but are run again and are not part of the new table"
    )


def cmd_plot(args: argparse.Namespace) -> int:
    from rlhf_gym.experiments.plots import plot
    from rlhf_gym.experiments.results import load_table

    folder = args.results if args.results.is_dir() else args.results.parent
    for path in plot(load_table(args.results, args.allow_mixed), args.out or folder / "figures"):
        print(path)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    import json

    from rlhf_gym.experiments.report import report
    from rlhf_gym.experiments.results import load_table

    folder = args.results if args.results.is_dir() else args.results.parent
    meta = folder / "sweep.json"
    name = json.loads(meta.read_text())["name"] if meta.is_file() else folder.name
    text = report(
        load_table(args.results, args.allow_mixed), args.title or name, allow_mixed=args.allow_mixed
    )
    if args.out:
        args.out.write_text(text + "\n")
        print(args.out)
    else:
        print(text)
    return 0
