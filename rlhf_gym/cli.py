"""The ``rlhf-gym`` command line.

Bad input (an unknown task, an unknown YAML key, a wrong-shape checkpoint, a negative
budget) prints one ``rlhf-gym: error: ...`` line and exits with status 2, never a traceback
(set ``RLHF_GYM_DEBUG=1`` to see one).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rlhf_gym.config import (
    HORIZONS,
    KL_ANCHORS,
    KL_PENALTIES,
    MERGES,
    QUERY_STRATEGIES,
    REWARDS,
    RunConfig,
    WarpConfig,
    field_docs,
    load_yaml,
)
from rlhf_gym.human import NoDisplayError


def _add_train(sub: argparse._SubParsersAction) -> None:
    docs = {k: v.replace("``", "") for k, v in field_docs(RunConfig).items()}
    p = sub.add_parser(
        "train",
        help="train an agent with RLHF (or a control) and write a run folder",
        description="Train an SB3 agent on a reward learned from synthetic-teacher feedback, "
        "evaluate it on the true reward, and write a run folder.",
    )
    p.add_argument("--task", help=docs["task"])
    p.add_argument("--horizon", choices=HORIZONS, help=docs["horizon"])
    p.add_argument("--feedback", help=docs["feedback"])
    p.add_argument("--teacher", help=docs["teacher"])
    p.add_argument("--teacher-critic", dest="teacher_critic", help=docs["teacher_critic"])
    p.add_argument("--recorded-feedback", dest="recorded_feedback", help=docs["recorded_feedback"])
    p.add_argument("--labels", type=int, help=docs["labels"])
    p.add_argument("--budget-seconds", type=float, dest="budget_seconds", help=docs["budget_seconds"])
    p.add_argument("--timesteps", type=int, dest="total_timesteps", help=docs["total_timesteps"])
    p.add_argument("--seed", type=int, help=docs["seed"])
    p.add_argument("--reward", choices=REWARDS, help=docs["reward"])
    p.add_argument("--algo", help=docs["algo"])
    p.add_argument(
        "--query-strategy", choices=QUERY_STRATEGIES, dest="query_strategy", help=docs["query_strategy"]
    )
    p.add_argument("--segment-length", type=int, dest="segment_length", help=docs["segment_length"])
    p.add_argument("--reward-model", dest="reward_model_checkpoint", help=docs["reward_model_checkpoint"])
    _add_anchor_flags(p, docs)
    p.add_argument("--kl-anchor", choices=KL_ANCHORS, dest="kl_anchor", help=docs["kl_anchor"])
    p.add_argument("--kl-penalty", choices=KL_PENALTIES, dest="kl_penalty", help=docs["kl_penalty"])
    p.add_argument("--config", type=Path, help="a YAML file of RunConfig fields; flags given here win")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="run folder (default: runs/<task>-<horizon>-<reward>-s<seed>); a taken one gets _2, _3, ...",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the summary")


def _add_anchor_flags(p: argparse.ArgumentParser, docs: dict[str, str]) -> None:
    p.add_argument("--init-policy", dest="init_policy", help=docs["init_policy"])
    p.add_argument("--kl-coef", type=float, dest="kl_coef", help=docs["kl_coef"])
    p.add_argument("--ema-rate", type=float, dest="ema_rate", help=docs["ema_rate"])


def _add_warp(sub: argparse._SubParsersAction) -> None:
    docs = {k: v.replace("``", "") for k, v in field_docs(RunConfig).items()}
    wdocs = {k: v.replace("``", "") for k, v in field_docs(WarpConfig).items()}
    p = sub.add_parser(
        "warp",
        help="WARP: merge KL-anchored policies trained on a frozen reward model",
        description="Train M policies with an EMA anchor on a frozen learned reward, merge them by "
        "SLERP, move the start toward the merge, iterate; evaluate every policy and the final front "
        "(true return, learned return, KL from the start) and write a run folder.",
    )
    p.add_argument("--task", help=docs["task"])
    p.add_argument("--horizon", choices=HORIZONS, help=docs["horizon"])
    p.add_argument("--reward-model", dest="reward_model_checkpoint", required=True, help="the frozen reward")
    _add_anchor_flags(p, {**docs, "kl_coef": wdocs["kl_coef"], "ema_rate": wdocs["ema_rate"]})
    p.add_argument("--iterations", type=int, help=wdocs["iterations"])
    p.add_argument("--runs", type=int, help=wdocs["runs"])
    p.add_argument("--eta", type=float, help=wdocs["eta"])
    p.add_argument("--merge", choices=MERGES, help=wdocs["merge"])
    p.add_argument("--timesteps", type=int, dest="total_timesteps", help="timesteps T of each run")
    p.add_argument("--seed", type=int, help=docs["seed"])
    p.add_argument("--config", type=Path, help="a YAML file of RunConfig fields, with WARP's under warp:")
    p.add_argument("--out", type=Path, help="run folder (default: runs/warp-<task>-s<seed>)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the summary")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rlhf-gym", description="Classic-control RLHF gym and benchmark suite."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
    sub.add_parser("tasks", help="list the tasks: family, actions, horizon, extras")
    p = sub.add_parser(
        "play",
        help="play a task by keyboard in a window",
        description="Play a task by keyboard. The task's keys are shown under the frame; Esc or "
        "closing the window quits, Backspace restarts the episode, Tab pauses.",
    )
    p.add_argument("--task", required=True, help="a task name (rlhf-gym tasks)")
    p.add_argument("--horizon", choices=HORIZONS, default="natural", help="natural or fixed horizon")
    p.add_argument("--fps", type=float, help="steps per second (default: the task's render fps)")
    p.add_argument("--zoom", type=float, default=1.0, help="scale of the frame in the window")
    p.add_argument("--seed", type=int, help="seed of the first episode")
    p.add_argument("--episodes", type=int, help="quit after this many episodes")
    _add_warp(sub)
    _add_sweep(sub)
    _add_label(sub)
    _add_feedback(sub)
    return parser


def _add_label(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "label",
        help="give feedback by keyboard in a window while the agent learns",
        description="Open the labelling window: compare clips, rate, correct and stop the agent live, "
        "or demonstrate. Every label is committed to the store before it is shown as recorded; "
        "opening the same store again resumes it.",
    )
    p.add_argument("--task", required=True, help="a task name (rlhf-gym tasks)")
    p.add_argument("--mode", choices=("compare", "live", "demo"), default="compare", help="what to give")
    p.add_argument("--store", type=Path, required=True, help="the feedback store (created if new)")
    p.add_argument("--labels", type=int, help="stop asking for comparisons once the store holds this many")
    p.add_argument(
        "--horizon",
        choices=HORIZONS,
        help="the agent's horizon (default: the store's, or fixed for a new one)",
    )
    p.add_argument("--config", type=Path, help="a YAML file of RunConfig fields for the learner")
    p.add_argument("--seed", type=int, help="seed of the learner and the episodes")
    p.add_argument("--fps", type=float, default=60.0, help="frames per second of the window")
    p.add_argument("--zoom", type=float, default=1.0, help="scale of the frames")


def _add_sweep(sub: argparse._SubParsersAction) -> None:
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
    p = sub.add_parser("plot", help="seaborn figures of a sweep's results")
    p.add_argument("results", type=Path, help="a sweep folder, or its results.parquet / .csv")
    p.add_argument("--out", type=Path, help="figure folder (default: <sweep folder>/figures)")
    p = sub.add_parser("report", help="a markdown report of a sweep's results")
    p.add_argument("results", type=Path, help="a sweep folder, or its results.parquet / .csv")
    p.add_argument("--title", default=None, help="the report's heading (default: the sweep's name)")
    p.add_argument("--out", type=Path, help="write the report to this file (default: print it)")


def _add_feedback(sub: argparse._SubParsersAction) -> None:
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
    q = actions.add_parser("import", help="add a .jsonl export's records to a store (created if missing)")
    q.add_argument("input", type=Path, help="the .jsonl export to read (checked in full before writing)")
    q.add_argument(
        "store", type=Path, help="the feedback store to add to; an existing one must hold the same task"
    )
    q.add_argument("--task", help="the task the records must be for (an export without one takes it)")


def cmd_feedback(args: argparse.Namespace) -> int:
    import json

    from rlhf_gym.export import export_store, feedback_info, import_store

    if args.action == "export":
        n = export_store(args.store, args.out)
        print(f"{n} record(s) of {args.store} -> {args.out}")
    elif args.action == "import":
        n = import_store(args.input, args.store, task=args.task)
        print(f"{n} record(s) of {args.input} -> {args.store}")
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


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from rlhf_gym.pipeline import RLHF

    user: dict[str, Any] = load_yaml(args.config) if args.config else {}
    fields = (
        "task",
        "horizon",
        "feedback",
        "teacher",
        "recorded_feedback",
        "labels",
        "budget_seconds",
        "total_timesteps",
        "seed",
        "reward",
        "algo",
        "query_strategy",
        "segment_length",
        "reward_model_checkpoint",
        "init_policy",
        "kl_coef",
        "kl_anchor",
        "ema_rate",
        "kl_penalty",
    )
    user |= {k: getattr(args, k) for k in fields if getattr(args, k) is not None}
    torch.set_num_threads(1)  # small MLPs: one thread is fastest and leaves cores for parallel runs
    run = RLHF(config=user, verbose=0 if args.quiet else 1)
    cfg = run.config
    out = free_folder(args.out or Path("runs") / f"{cfg.task}-{cfg.horizon}-{cfg.reward}-s{cfg.seed}")
    run.learn(progress_bar=not args.no_progress and sys.stderr.isatty())
    run.save(out)
    s = run.summary()
    print(
        f"{cfg.task} ({cfg.horizon} horizon, {cfg.reward} reward, teacher {cfg.teacher}): true return "
        f"{s['true_return_mean']:.1f} +/- {s['true_return_std']:.1f} with {s['labels_used']} labels "
        f"({s['effort_seconds']:.0f} s of effort), "
        f"{s['env_steps']} env steps, {s['wall_seconds']:.0f} s -> {out}"
    )
    return 0


def cmd_warp(args: argparse.Namespace) -> int:
    import torch

    from rlhf_gym.warp import WARP

    user: dict[str, Any] = load_yaml(args.config) if args.config else {}
    warp = dict(user.pop("warp", None) or {})
    run_fields = ("task", "horizon", "reward_model_checkpoint", "init_policy", "total_timesteps", "seed")
    user |= {k: getattr(args, k) for k in run_fields if getattr(args, k) is not None}
    warp_fields = ("iterations", "runs", "eta", "merge", "kl_coef", "ema_rate")
    warp |= {k: getattr(args, k) for k in warp_fields if getattr(args, k) is not None}
    torch.set_num_threads(1)
    run = WARP(config=user, warp=warp, verbose=0 if args.quiet else 1)
    cfg = run.config
    out = free_folder(args.out or Path("runs") / f"warp-{cfg.task}-s{cfg.seed}")
    run.learn()
    run.save(out)
    merged = next(r for r in reversed(run.table()) if r["kind"] == "merged")
    print(
        f"{cfg.task} WARP ({run.warp.iterations} iterations of {run.warp.runs} runs): merged policy true "
        f"return {merged['true_return_mean']:.1f}, learned return {merged['proxy_return']:.1f}, KL from the "
        f"start {merged['kl_from_init']:.2f} nats/episode, {run.wall_seconds:.0f} s -> {out}"
    )
    return 0


def free_folder(path: Path) -> Path:
    """``path`` if it is new or empty, else the first free ``path_2``, ``path_3``, ...: a finished
    run is never overwritten."""
    candidate, k = path, 1
    while candidate.exists() and any(candidate.iterdir()):
        k += 1
        candidate = path.with_name(f"{path.name}_{k}")
    return candidate


def cmd_tasks(args: argparse.Namespace) -> int:
    from rlhf_gym.tasks import list_tasks

    rows = [("task", "family", "actions", "horizon", "algo", "extra", "description")]
    for t in list_tasks():
        horizon, extra = str(t.max_episode_steps), t.extra or "-"
        rows.append((t.name, t.family, t.action_type(), horizon, t.algo, extra, t.description))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
    print("Any other Gymnasium id with Box or Discrete spaces also works, with generic defaults.")
    return 0


def cmd_play(args: argparse.Namespace) -> int:
    from rlhf_gym.human.play import play
    from rlhf_gym.tasks import get_task

    if args.episodes is not None and args.episodes <= 0:
        raise ValueError(f"--episodes must be positive, got {args.episodes}")
    task = get_task(args.task)
    result = play(task, args.horizon, args.fps, args.zoom, args.seed, max_episodes=args.episodes)
    returns = ", ".join(f"{r:.1f}" for r in result.returns) or "none"
    print(f"{task.name}: {len(result.episodes)} episode(s), true returns {returns}")
    return 0


def cmd_label(args: argparse.Namespace) -> int:
    from rlhf_gym.human.label import label

    config: dict[str, Any] = load_yaml(args.config) if args.config else {}
    if args.horizon is not None:
        config["horizon"] = args.horizon
    if args.seed is not None:
        config["seed"] = args.seed
    result = label(
        args.task, args.store, args.mode, config=config, labels=args.labels, fps=args.fps, zoom=args.zoom
    )
    print(
        f"{args.store}: {len(result.committed)} label(s) recorded this session, {result.undone} undone, "
        f"{result.skipped} skipped; {result.fps:.0f} frames/s"
    )
    return 1 if result.quit_reason == "learner" else 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from rlhf_gym.sweep import Sweep, run_sweep, status

    sweep = Sweep.from_yaml(args.spec)
    out = args.out or Path("sweeps") / sweep.name
    if args.dry_run:
        for run in sweep.runs():
            print(f"{run.key}  {status(out, run.key):6}  seed {run.config['seed']}  {run.arm}")
        return 0
    report = run_sweep(
        sweep, out, args.workers, args.backend, args.address, args.retry_failed, not args.no_progress
    )
    if args.csv:
        from rlhf_gym.plots import load_table

        load_table(out).to_csv(out / "results.csv", index=False)
    print(
        f"{sweep.name}: {report.done} run(s) done, {report.failed} failed, {report.skipped} already there, "
        f"{report.wall_seconds:.0f} s -> {out / 'results.parquet'}"
    )
    for error in report.errors:
        print(f"  failed: {error}", file=sys.stderr)
    return 1 if report.failed else 0


def cmd_plot(args: argparse.Namespace) -> int:
    from rlhf_gym.plots import load_table, plot

    folder = args.results if args.results.is_dir() else args.results.parent
    for path in plot(load_table(args.results), args.out or folder / "figures"):
        print(path)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    import json

    from rlhf_gym.plots import load_table, report

    folder = args.results if args.results.is_dir() else args.results.parent
    meta = folder / "sweep.json"
    name = json.loads(meta.read_text())["name"] if meta.is_file() else folder.name
    text = report(load_table(args.results), args.title or name)
    if args.out:
        args.out.write_text(text + "\n")
        print(args.out)
    else:
        print(text)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        commands = {
            "train": cmd_train,
            "warp": cmd_warp,
            "tasks": cmd_tasks,
            "play": cmd_play,
            "label": cmd_label,
            "sweep": cmd_sweep,
            "plot": cmd_plot,
            "report": cmd_report,
            "feedback": cmd_feedback,
        }
        return commands[args.command](args)
    except (ValueError, TypeError, FileNotFoundError, ImportError, NoDisplayError) as err:
        if os.environ.get("RLHF_GYM_DEBUG"):
            raise
        print(f"rlhf-gym: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rlhf-gym: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
