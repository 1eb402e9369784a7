"""The ``rlhf-gym`` command line.

Bad input (an unknown task, an unknown YAML key, a wrong-shape checkpoint, a negative
budget) prints one ``rlhf-gym: error: ...`` line and exits with status 2, never a traceback
(set ``RLHF_GYM_DEBUG=1`` to see one).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from rlhf_gym.cli.results import add_feedback, add_sweep, cmd_feedback, cmd_plot, cmd_report, cmd_sweep
from rlhf_gym.config import (
    HORIZONS,
    KL_ANCHORS,
    KL_PENALTIES,
    MERGES,
    QUERY_STRATEGIES,
    REWARDS,
    RunConfig,
    WarpConfig,
)
from rlhf_gym.human import NoDisplayError
from rlhf_gym.schema import field_docs, load_yaml


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
    p.add_argument("--tensorboard-log", dest="tensorboard_log", help=docs["tensorboard_log"])
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


class Parser(argparse.ArgumentParser):
    """argparse with the house's error line: a bad flag or value (``--labels 1.5``) prints one
    ``rlhf-gym: error: ...`` line, with where to read the usage, and exits with status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"rlhf-gym: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="rlhf-gym", description="Classic-control RLHF gym and benchmark suite.")
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
    p.add_argument(
        "--fps",
        type=float,
        help="steps per second (default: the preset's play.fps, else the task's render fps)",
    )
    p.add_argument("--zoom", type=float, default=1.0, help="scale of the frame in the window")
    p.add_argument("--seed", type=int, help="seed of the first episode")
    p.add_argument("--episodes", type=int, help="quit after this many episodes")
    _add_warp(sub)
    _add_sft(sub)
    add_sweep(sub)
    _add_label(sub)
    add_feedback(sub)
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


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from rlhf_gym.train.rlhf import RLHF

    user: dict[str, Any] = load_yaml(args.config) if args.config else {}
    fields = (
        "task",
        "horizon",
        "feedback",
        "teacher",
        "teacher_critic",
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
        "tensorboard_log",
    )
    user |= {k: getattr(args, k) for k in fields if getattr(args, k) is not None}
    torch.set_num_threads(1)  # small MLPs: one thread is fastest and leaves cores for parallel runs
    run = RLHF(config=user, verbose=0 if args.quiet else 1)
    cfg = run.config
    out = free_folder(args.out or Path("runs") / f"{cfg.task}-{cfg.horizon}-{cfg.reward}-s{cfg.seed}")
    run.learn(progress_bar=not args.no_progress and sys.stderr.isatty(), out=out)  # written as it goes
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

    from rlhf_gym.algos.warp import WARP

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
    from rlhf_gym.train.folder import RunFolder

    RunFolder(out)  # a folder that cannot be written fails now, not after the training
    run.learn()
    run.save(out)
    merged = next(r for r in reversed(run.table()) if r["kind"] == "merged")
    print(
        f"{cfg.task} WARP ({run.warp.iterations} iterations of {run.warp.runs} runs): merged policy true "
        f"return {merged['true_return_mean']:.1f}, learned return {merged['proxy_return']:.1f}, KL from the "
        f"start {merged['kl_from_init']:.2f} nats/episode, {run.wall_seconds:.0f} s -> {out}"
    )
    return 0


def _add_sft(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sft",
        help="behaviour-clone the task's scripted expert: a start for --init-policy",
        description="The RLHF pipeline's instruction-tuning stage on control: play episodes of the "
        "task's scripted expert (with a share of random actions, for a start that is good but not "
        "perfect), behaviour-clone a fresh agent on them, evaluate it on the true reward and save it. "
        "Pass its agent.zip to train or warp as --init-policy.",
    )
    p.add_argument("--task", required=True, help="a task with a scripted expert (rlhf-gym tasks)")
    p.add_argument("--algo", help="the agent's algorithm (default: the task preset's)")
    p.add_argument(
        "--horizon", choices=HORIZONS, default="fixed", help="the horizon the episodes are played in"
    )
    p.add_argument("--episodes", type=int, default=5, help="demonstrated episodes")
    p.add_argument(
        "--bc-steps", type=int, default=2000, dest="bc_steps", help="gradient steps (batches of 64)"
    )
    p.add_argument("--noise", type=float, default=0.0, help="probability of a random action at each step")
    p.add_argument("--seed", type=int, default=0, help="seeds the agent, the episodes and the noise")
    p.add_argument("--out", type=Path, help="folder of agent.zip (default: runs/sft-<task>-s<seed>)")


def cmd_sft(args: argparse.Namespace) -> int:
    import json

    import torch

    from rlhf_gym.agents.cloning import pretrained
    from rlhf_gym.agents.evaluation import evaluate
    from rlhf_gym.tasks.registry import get_task

    for name in ("episodes", "bc_steps"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    torch.set_num_threads(1)
    task = get_task(args.task)
    algo = args.algo or task.algo
    agent = pretrained(task, algo, args.episodes, args.bc_steps, args.seed, args.noise, horizon=args.horizon)
    result = evaluate(agent, task)
    out = free_folder(args.out or Path("runs") / f"sft-{task.name}-s{args.seed}")
    out.mkdir(parents=True, exist_ok=True)
    from rlhf_gym.agents.files import save_agent

    save_agent(agent, out / "agent.zip")
    summary = {k: getattr(args, k) for k in ("episodes", "bc_steps", "noise", "seed", "horizon")}
    summary |= {
        "task": task.name,
        "algo": algo,
        "true_return_mean": result.mean,
        "true_return_std": result.std,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(
        f"{task.name} {algo} cloned from {args.episodes} expert episode(s): true return {result.mean:.1f} "
        f"+/- {result.std:.1f} -> {out / 'agent.zip'}"
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
    from rlhf_gym.tasks.registry import list_tasks

    rows = [("task", "family", "actions", "horizon", "algo", "extra", "description")]
    for t in list_tasks():
        horizon, extra = str(t.max_episode_steps), t.extra or "-"
        rows.append((t.name, t.family, t.action_type(), horizon, t.algo, extra, t.description))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
    print(
        "Any other Gymnasium id with Box or Discrete spaces also works: with rl-zoo3's tuned hyperparameters "
        'where it has them (pip install "rlhf-gym[zoo]"), else with SB3\'s defaults.'
    )
    return 0


def cmd_play(args: argparse.Namespace) -> int:
    from rlhf_gym.human.play import play
    from rlhf_gym.tasks.registry import get_task

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
    answered = f"{result.silent} not answered on screen" if result.silent else "each answered on screen"
    closed = {"key": "quit by key", "window": "window closed", "learner": "the learner failed"}
    agent = (
        f"agent saved at {result.agent_timesteps:,} steps to {result.agent_saved}"
        if result.agent_saved
        else "no agent to save yet (nothing trained)"
    )
    print(
        f"{args.store}: {len(result.committed)} label(s) recorded this session, {result.undone} undone, "
        f"{result.skipped} skipped; {result.keys} key(s) pressed, {answered}; "
        f"{result.fps:.0f} frames/s; {closed.get(result.quit_reason, result.quit_reason)}; "
        f"learner stopped, {agent}"
    )
    return 1 if result.quit_reason == "learner" else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    formatwarning = warnings.formatwarning  # (put back at the end, for a caller in the same process)
    warnings.formatwarning = lambda message, *_, **__: f"rlhf-gym: warning: {_one_line(message)}\n"
    try:
        commands = (cmd_train, cmd_warp, cmd_sft, cmd_tasks, cmd_play, cmd_label, cmd_sweep, cmd_plot)
        by_name = {c.__name__.removeprefix("cmd_"): c for c in (*commands, cmd_report, cmd_feedback)}
        return by_name[args.command](args)
    except (ValueError, TypeError, OSError, sqlite3.Error, ImportError, NoDisplayError) as err:
        # OSError: a missing file, a read-only or full disk; sqlite3.Error: a store that cannot be
        # written. Whatever was written before stays: run folders and stores are written atomically.
        if os.environ.get("RLHF_GYM_DEBUG"):
            raise
        print(f"rlhf-gym: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rlhf-gym: interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.formatwarning = formatwarning


def _one_line(err: BaseException | Warning | str) -> str:
    """The error's message on one line (an OSError without a path of its own gets its strerror)."""
    if isinstance(err, OSError) and not isinstance(err, FileNotFoundError) and err.strerror and err.filename:
        return f"{err.strerror}: {err.filename}"
    return " ".join(str(err).split()) or type(err).__name__


if __name__ == "__main__":
    sys.exit(main())
