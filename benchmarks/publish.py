"""The one publishing command: the published figures, run (resumably) or re-rendered from the raw
results committed under ``benchmarks/results/``.

    python benchmarks/publish.py label_efficiency           # run what is missing, then render
    python benchmarks/publish.py --render                   # re-render every publication, run nothing
    python benchmarks/publish.py label_efficiency --smoke   # tiny budgets, into a scratch folder

A publication is a set of runs (arm x seed). Each finished run keeps its ``summary.json`` and
``metrics.csv`` in ``benchmarks/results/<name>/<arm>/s<seed>/`` (kilobytes: no agent, no reward
model), and ``runs.csv`` beside them is the tidy table, one row per run. So a publication resumes
on another day or machine: a run counts when this code version made it
(``rlhf_gym.provenance.code_version``), and any change under ``rlhf_gym/`` or ``envs/`` runs it
again. A section never mixes code versions or platforms, unless it is run or rendered with
``--allow-mixed``: then runs of this code version made on another platform count too (a publication
resumes on a machine with another CPU), the publication's ``meta.json`` records it, and the section
says so and names every platform.

Rendering reads those files alone and writes each publication's blocks between its markers,
``<!-- name:start -->`` and ``<!-- name:end -->``, in ``benchmarks/RESULTS.md`` and in the README;
``tests/test_publish.py`` re-renders them from the committed files and fails if either differs.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
SMOKE = {
    "total_timesteps": 600,
    "segment_length": 10,
    "eval_freq": 10_000,
    "final_eval_episodes": 2,
    "feedback_rounds": 1,
    "reward_model": {"n_steps": 20},
}


@dataclass
class Publication:
    """A published set of runs and how its sections are drawn from them.

    Args:
        name: its results folder and its section markers.
        title: its RESULTS.md heading.
        arms: arm name -> ``RunConfig`` overrides; every arm runs every seed.
        seeds: seeds per arm.
        render: (the runs' table, the publication's meta, a figure path or None) -> the blocks,
            keyed by the file they go into (``"RESULTS.md"`` or ``"README.md"``), markers excluded.
        measure: measurements besides the runs (speeds, say), made when the publication runs and
            kept in ``meta.json``: (the publication's task names, smoke) -> JSON-able data. A
            publication may be a measurement alone (no arms), rendered from ``meta.json``.
        runner: runs one (arm, seed) in a worker: (its overrides, with ``seed``) -> (summary,
            metrics rows), the summary naming ``code_version`` and ``platform``; default
            ``run_one``, an ``RLHF`` run of the overrides.
        smoke: what a smoke run adds to the overrides (default: ``SMOKE``'s tiny budgets).
        reuse: publications whose finished runs this one copies instead of running them again, where
            code version, platform and overrides are the same (its summary says ``copied_from``).
    """

    name: str
    title: str
    arms: dict[str, dict[str, Any]]
    seeds: int
    render: Callable[[Any, dict[str, Any], Path | None], dict[str, str]]
    measure: Callable[[list[str], bool], Any] | None = None
    runner: Callable[[dict[str, Any]], tuple[dict[str, Any], list[dict[str, Any]]]] | None = None
    smoke: dict[str, Any] | None = None
    reuse: tuple[str, ...] = ()
    command: str = field(init=False)

    def __post_init__(self) -> None:
        self.command = f"python benchmarks/publish.py {self.name}"

    def tasks(self) -> list[str]:
        return sorted({arm["task"] for arm in self.arms.values()})


def publications() -> dict[str, Publication]:
    """Every publication, by name."""
    from alignment import PUBLICATIONS as ALIGNMENT
    from cpl_diagnosis import PUBLICATIONS as CPL
    from exploration import PUBLICATIONS as EXPLORATION
    from label_app import PUBLICATIONS as APP
    from label_efficiency import PUBLICATIONS
    from pixels import PUBLICATIONS as PIXELS
    from recorded import PUBLICATIONS as RECORDED
    from sweep_speed import PUBLICATIONS as SPEED
    from sweeps import PUBLICATIONS as SWEEPS
    from zoo_defaults import PUBLICATIONS as ZOO

    return {
        p.name: p
        for p in [
            *APP,
            *PUBLICATIONS,
            *SWEEPS,
            *RECORDED,
            *CPL,
            *ALIGNMENT,
            *SPEED,
            *EXPLORATION,
            *PIXELS,
            *ZOO,
        ]
    }


# ----- running -----------------------------------------------------------------------------
def run_one(overrides: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One run in a worker (one thread): its summary and its metrics rows."""
    from report import one_thread

    one_thread()
    from rlhf_gym import RLHF

    run = RLHF(**overrides).learn()
    return run.summary(), run.metrics


def runner_summary(task: str, seed: int, started: float) -> dict[str, Any]:
    """The summary a runner of its own returns: what it ran, the code version and platform that
    ``finished`` checks, and its wall time since ``started`` (``time.perf_counter``)."""
    from rlhf_gym.provenance import code_version, platform

    wall = round(time.perf_counter() - started, 1)
    return {
        "task": task,
        "seed": seed,
        "code_version": code_version(),
        "platform": platform(),
        "wall_seconds": wall,
    }


def metrics_rows(runs: Any, meta: dict[str, Any]) -> Any:
    """Every metrics row of the ``runs`` (a rendered table), as one table: a renderer's view of the
    rows of runners of their own."""
    import pandas as pd

    folders = [run_folder(Path(meta["results"]), a, s) for a, s in zip(runs["arm"], runs["seed"])]
    return pd.concat([pd.read_csv(folder / "metrics.csv") for folder in folders], ignore_index=True)


def run_folder(results: Path, arm: str, seed: int) -> Path:
    return results / arm / f"s{seed}"


def finished(folder: Path, made_by: dict[str, Any] | None) -> dict[str, Any] | None:
    """The run's summary if it finished, and (unless ``made_by`` is None) was made by the same
    code version, on the same platform, from the same arm settings as ``made_by`` holds."""
    try:
        summary = json.loads((folder / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    if made_by is not None and any(summary.get(k) != v for k, v in made_by.items()):
        return None
    return summary


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, so a kill never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def save_run(folder: Path, summary: dict[str, Any], metrics: list[dict[str, Any]]) -> None:
    """Write a run's metrics, then its summary (the mark of a finished run), each atomically."""
    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / "metrics.csv", pd.DataFrame(metrics).to_csv(index=False))
    write_atomic(folder / "summary.json", json.dumps(summary, indent=1, sort_keys=True) + "\n")


def run(
    pub: Publication,
    results: Path,
    seeds: int,
    workers: int,
    smoke: bool,
    only: list[str] | None = None,
    allow_mixed: bool = False,
) -> int:
    """Run every (arm, seed) that this code version has not finished (of the arms matching a glob
    pattern of ``only``, if given), on this platform or, with ``allow_mixed``, on any; returns the
    failures."""
    from tqdm import tqdm

    from rlhf_gym.processes import die_with_parent
    from rlhf_gym.provenance import code_version, platform

    version = code_version()
    if not smoke and ("+dirty" in version or not version.startswith("git:")):
        raise SystemExit(
            f"code version {version} is not a commit: commit the code (or run in a clean worktree) "
            "before publishing, so that every figure names the code that made it"
        )
    arms = [a for a in pub.arms if only is None or any(fnmatch.fnmatch(a, pattern) for pattern in only)]
    jobs = [(arm, seed) for seed in range(seeds) for arm in arms]  # seed by seed: a partial run
    # what a finished run must share with this one to count: code version, platform, settings
    origin = {"code_version": version, "platform": platform()}
    counts = {"code_version": version} if allow_mixed else origin
    todo = [
        (a, s)
        for a, s in jobs
        if finished(run_folder(results, a, s), {**counts, "overrides": overrides(pub, a, s, smoke)}) is None
    ]
    elsewhere = [  # finished by this code version, with these settings, on another platform
        j
        for j in todo
        if finished(
            run_folder(results, *j), {"code_version": version, "overrides": overrides(pub, *j, smoke)}
        )
    ]
    if elsewhere:  # never thrown away unasked
        raise SystemExit(
            f"{pub.name}: {len(elsewhere)} runs of this code version were made on another platform: "
            f"keep them with --allow-mixed (the section then says it mixes platforms), or delete "
            f"{results} to run every one here"
        )
    todo = [  # what a publication this one reuses has not finished either
        (a, s)
        for a, s in todo
        if not copied(pub, results, a, s, {**counts, "overrides": overrides(pub, a, s, smoke)})
    ]
    for arm, seed in todo:  # a run of other code or settings does not stay beside new ones
        (run_folder(results, arm, seed) / "summary.json").unlink(missing_ok=True)
    meta_path = results / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    here = origin["platform"]
    stale = meta.get("code_version") != version or (not allow_mixed and meta.get("platform", here) != here)
    fresh = not stale and set(meta.get("random_returns", {})) == set(pub.tasks())
    if not fresh:
        meta = {
            "code_version": version,
            "platform": here,
            "commit": commit(),
            "random_returns": {t: random_return(t) for t in pub.tasks()},
            "measured": pub.measure(pub.tasks(), smoke) if pub.measure else None,
        }
    if allow_mixed:  # rendering reads it, so the section keeps saying so
        meta["allow_mixed"] = True
    if not fresh or allow_mixed:
        results.mkdir(parents=True, exist_ok=True)
        write_atomic(meta_path, json.dumps(meta, indent=1, sort_keys=True) + "\n")
    start, failed = time.perf_counter(), 0
    # the workers die with this process, even on SIGKILL
    pool = ProcessPoolExecutor(max_workers=workers, initializer=die_with_parent, initargs=(os.getpid(),))
    with pool, tqdm(total=len(jobs), desc=pub.name) as bar:
        bar.update(len(jobs) - len(todo))
        runner = pub.runner or run_one
        futures = {pool.submit(runner, overrides(pub, a, s, smoke)): (a, s) for a, s in todo}
        for fut in as_completed(futures):
            arm, seed = futures[fut]
            try:
                summary, metrics = fut.result()
                made = {**summary, "arm": arm, "overrides": overrides(pub, arm, seed, smoke)}
                save_run(run_folder(results, arm, seed), made, metrics)
            except Exception as err:
                failed += 1
                tqdm.write(f"{arm} seed {seed} failed: {err!r}")
            bar.set_postfix(failed=failed)
            bar.update(1)
    print(f"ran {len(todo)} runs in {time.perf_counter() - start:.0f} s ({failed} failed)")
    return failed


def copied(pub: Publication, results: Path, arm: str, seed: int, made_by: dict[str, Any]) -> bool:
    """Copy into (arm, seed) a run of a publication ``pub`` reuses (its results beside ``results``,
    smoke ones beside smoke ones) that ``made_by`` counts as finished; False if there is none."""
    for name in pub.reuse:
        sibling = results.parent / (name + results.name.removeprefix(pub.name))
        for source in sorted(sibling.glob(f"*/s{seed}")):
            summary = finished(source, made_by)
            if summary is not None:
                summary = {**summary, "arm": arm, "copied_from": f"{name}/{source.parent.name}/s{seed}"}
                folder = run_folder(results, arm, seed)
                folder.mkdir(parents=True, exist_ok=True)
                write_atomic(folder / "metrics.csv", (source / "metrics.csv").read_text())
                write_atomic(folder / "summary.json", json.dumps(summary, indent=1, sort_keys=True) + "\n")
                return True
    return False


def commit() -> str | None:
    """The commit the code was checked out at (``git rev-parse HEAD`` beside this script)."""
    import subprocess

    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True, text=True, timeout=10
        )
    except OSError:
        return None
    return done.stdout.strip() or None


def overrides(pub: Publication, arm: str, seed: int, smoke: bool) -> dict[str, Any]:
    """The run's ``RunConfig`` overrides (tiny budgets with ``smoke``)."""
    o = {**pub.arms[arm], "seed": seed}
    if smoke and pub.smoke is not None:  # a runner of its own knows its tiny budgets
        o |= pub.smoke
    elif smoke:
        o |= SMOKE | {"reward_model": {**o.get("reward_model", {}), **SMOKE["reward_model"]}}
        if o.get("reward", "learned") == "learned":
            o["labels"] = min(o.get("labels", 6), 6)
            if o.get("budget_seconds") is not None:
                o["budget_seconds"] = 30.0
        if o["task"] == "Pendulum-v1":
            o["hyperparams"] = {"learning_starts": 100}
    return o


def random_return(task_name: str, episodes: int = 20) -> float:
    """Mean true return of uniformly random actions on the natural-horizon task: the 0 of
    normalised return."""
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
    env.close()
    return float(np.mean(returns))


# ----- rendering ---------------------------------------------------------------------------
def load(pub: Publication, results: Path, seeds: int | None = None) -> tuple[Any, dict[str, Any]]:
    """The finished runs of the publication's arms (the first ``seeds`` seeds; every seed found if
    None) as a table, in arm order, and its meta."""
    import pandas as pd

    rows = []
    for arm in pub.arms:
        folders = sorted(
            (results / arm).glob("s*"), key=lambda p: int(p.name[1:]) if p.name[1:].isdigit() else -1
        )
        for folder in folders:
            summary = finished(folder, None)
            if summary is not None and (seeds is None or summary["seed"] < seeds):
                rows.append(summary)
    table = pd.DataFrame(rows)
    meta = json.loads((results / "meta.json").read_text()) if (results / "meta.json").is_file() else {}
    return table, meta


def render(pub: Publication, results: Path, files: dict[str, Path], figures: bool, allow_mixed: bool) -> bool:
    """Render the publication's blocks into ``files`` (by key), with the account of each missed target
    (``tried.py``) in RESULTS.md; False if it has no results."""
    from tried import with_accounts

    table, meta = load(pub, results)
    if not len(table) and (pub.arms or not meta.get("measured")):  # runs, or a measurement alone
        return False
    allow_mixed = allow_mixed or meta.get("allow_mixed", False)  # as the run recorded it
    meta = {**meta, "allow_mixed": allow_mixed, "command": pub.command, "title": pub.title, "name": pub.name}
    meta |= {"arms": list(pub.arms), "seeds": pub.seeds}  # what a complete publication has run
    meta["results"] = results  # where a renderer finds the runs' metrics (never printed)
    figure = HERE / "figures" / f"{pub.name}.png" if figures else None
    if figure is not None and files["RESULTS.md"].parent != HERE:  # a scratch render keeps its figure
        figure = files["RESULTS.md"].parent / f"{pub.name}.png"
    note = stale_note(pub, meta)
    for key, block in pub.render(table.copy(), meta, figure).items():
        if key == "RESULTS.md":
            block = with_accounts(pub.name, block)
        if note:  # under the section's heading, or first
            head, _, rest = block.partition("\n") if block.startswith("## ") else ("", "", block)
            block = f"{head}\n\n{note}\n\n{rest.lstrip()}" if head else f"{note}\n\n{rest}"
        put_block(files[key], pub.name, block)
    if figures and len(table):  # the tidy table, one row per run, beside the runs
        tidy = table.copy()
        for column in ("labels_by_type", "overrides"):  # nested fields, as JSON
            if column in tidy:
                tidy[column] = [json.dumps(v, sort_keys=True) for v in tidy[column]]
        write_atomic(results / "runs.csv", tidy.to_csv(index=False))
    return True


def stale_note(pub: Publication, meta: dict[str, Any]) -> str | None:
    """A warning when the code has changed since the publication's results were made (its figures
    may no longer be what the code gives), else None. It names no current version, so a rendering
    made before a change is committed reads the same after."""
    from rlhf_gym.provenance import code_version

    made_by = meta.get("code_version")
    if not made_by or made_by == code_version():
        return None
    return (
        f"**Stale:** the code under `rlhf_gym/` or `envs/` has changed since these results were made "
        f"(code version `{made_by}`); `{pub.command}` runs them again."
    )


def put_block(path: Path, name: str, block: str) -> None:
    """Put ``block`` between ``<!-- name:start -->`` and ``<!-- name:end -->`` in ``path`` (appended
    when the file has no such markers)."""
    from report import put_section

    put_section(path, name, f"<!-- {name}:start -->\n{block.strip()}\n<!-- {name}:end -->")


def main(argv: list[str] | None = None) -> int:
    pubs = publications()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"default: all of {', '.join(pubs)}")
    parser.add_argument(
        "--render", action="store_true", help="run nothing: re-render from the committed results"
    )
    parser.add_argument("--seeds", type=int, help="seeds per arm (default: the publication's)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--arms", nargs="+", metavar="PATTERN", help="run only the arms matching these globs")
    parser.add_argument(
        "--smoke", action="store_true", help="tiny budgets, into benchmarks/results/<name>_smoke"
    )
    parser.add_argument(
        "--allow-mixed",
        action="store_true",
        help="publish runs of several code versions or platforms, and resume runs made on another platform",
    )
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in pubs]
    if unknown:
        parser.error(f"unknown publication {', '.join(unknown)}; expected some of {', '.join(pubs)}")
    failed = 0
    for name in args.names or list(pubs):
        pub = pubs[name]
        results = RESULTS / (name + ("_smoke" if args.smoke else ""))
        files = {"RESULTS.md": HERE / "RESULTS.md", "README.md": ROOT / "README.md"}
        if args.smoke:  # never mixed with, nor mistaken for, published results
            files = {key: results / key for key in files}
        if not args.render:
            failed += run(
                pub, results, args.seeds or pub.seeds, args.workers, args.smoke, args.arms, args.allow_mixed
            )
        if render(pub, results, files, figures=True, allow_mixed=args.allow_mixed):
            print(f"{name}: rendered into {', '.join(str(p) for p in files.values())}")
        else:
            print(f"{name}: no results in {results}; nothing rendered")
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("MUJOCO_GL", "egl")  # the adapted MuJoCo tasks render headless
    sys.path.insert(0, str(HERE))
    sys.exit(main())
