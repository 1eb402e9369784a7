"""Benchmark sweeps: a YAML grid of RLHF runs, run in local processes or on Ray, resumable.

The spec and its runs are in ``rlhf_gym.experiments.grid``.

Each run is keyed by a hash of its resolved config (``resolve_config``: the task preset's
defaults filled in) and of the code version that runs it (``rlhf_gym.provenance.code_version``),
so a killed sweep resumes and skips finished runs, and a sweep run again after any change under
``rlhf_gym/`` runs every run anew: the runs of the other code version stay in the folder, but
are not part of the new table (``other_versions`` counts them). A run's results are
written by the driver, not the worker, into ``<out>/runs/<key>/`` (``summary.json``,
``metrics.csv``, ``config.yaml``), atomically; a failed run gets ``error.json`` and
``traceback.txt`` there instead, and the sweep goes on (``retry_failed`` reruns only those).
``results_table`` turns the folder into one tidy table (``results.parquet``). The local pool's
workers die with the driver, even when it is SIGKILLed (``rlhf_gym.processes``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import traceback
from collections.abc import Generator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlhf_gym.config import RunConfig
from rlhf_gym.experiments.grid import Run, Sweep
from rlhf_gym.processes import die_with_parent
from rlhf_gym.schema import from_dict, save_yaml

BACKENDS = ("local", "ray")


# ----- running --------------------------------------------------------------------------------


def execute(config: dict[str, Any]) -> dict[str, Any]:
    """Run one config and return what the driver writes: ``status`` ``done`` with the summary and
    the metrics rows, or ``failed`` with the error and its traceback. Never raises."""
    import torch
    from threadpoolctl import threadpool_limits

    # One thread per run, torch's and numpy's BLAS alike: the runs themselves fill the cores. Two
    # BLAS threads per run oversubscribe the cores and made each run 30% slower side by side.
    torch.set_num_threads(1)
    start = time.perf_counter()
    try:
        from rlhf_gym.train.rlhf import RLHF

        with threadpool_limits(limits=1):
            run = RLHF(config=config).learn()
        return {"status": "done", "summary": run.summary(), "metrics": run.metrics}
    except Exception as err:  # a failed run is recorded and the sweep goes on
        return {
            "status": "failed",
            "error": f"{type(err).__name__}: {err}",
            "traceback": traceback.format_exc(),
            "wall_seconds": time.perf_counter() - start,
        }


def status(out: Path, key: str, code_version: str | None = None) -> str:
    """``done``, ``failed`` or ``todo`` for the run ``key`` of the sweep folder ``out``. Given the
    ``code_version`` the key is for, a run whose ``summary.json`` records another one (the code
    changed while the sweep ran) is ``todo``."""
    folder = out / "runs" / key
    if (folder / "summary.json").is_file():
        if code_version is not None and _recorded(folder / "summary.json") != code_version:
            return "todo"
        return "done"
    if (folder / "error.json").is_file():
        return "failed"
    return "todo"


def _recorded(path: Path) -> str | None:
    """The code version a run's ``summary.json`` records (None for runs from before it did)."""
    try:
        return json.loads(path.read_text()).get("code_version")
    except (OSError, ValueError):
        return None


def other_versions(out: Path, runs: list[Run]) -> dict[str | None, int]:
    """How many of ``runs`` are done in ``out`` for another code version than the one they are
    keyed for, by that version (``None``: recorded before runs recorded their code version).

    Example:
        >>> other_versions(Path("no-such-folder"), [])
        {}
    """
    from rlhf_gym.experiments.grid import run_key

    recorded = {f.parent.name: _recorded(f) for f in (out / "runs").glob("*/summary.json")}
    counts: dict[str | None, int] = {}
    for version in set(recorded.values()):
        for run in runs:
            if version != run.code_version and recorded.get(run_key(run.config, version), "") == version:
                counts[version] = counts.get(version, 0) + 1
    return counts


def record(out: Path, run: Run, result: dict[str, Any]) -> None:
    """Write a run's result folder atomically: a private temporary folder renamed into place.

    Raises:
        OSError: the folder cannot be written (a full or read-only disk); no temporary folder
            is left behind, and the runs recorded before stay.
    """
    import tempfile

    (out / "runs").mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{run.key}.", dir=out / "runs"))
    try:
        _write_result(tmp, run, result)
        final = out / "runs" / run.key
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise OSError(
            f"cannot record run {run.key} in {out}: {err.strerror or err}; the runs recorded before "
            "are kept, and the same command resumes the sweep"
        ) from None


def _write_result(tmp: Path, run: Run, result: dict[str, Any]) -> None:
    import csv

    tmp.chmod(0o755)  # mkdtemp's 0o700 would hide results from others sharing the folder
    save_yaml(from_dict(RunConfig, run.config), tmp / "config.yaml")
    meta = {"key": run.key, "arm": run.arm, "ceiling": run.ceiling, "code_version": run.code_version}
    if result["status"] == "done":
        rows = result["metrics"]
        with open(tmp / "metrics.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
            writer.writeheader()
            writer.writerows(rows)
        (tmp / "summary.json").write_text(json.dumps(meta | result["summary"], indent=2))
    else:
        (tmp / "traceback.txt").write_text(result["traceback"])
        error = meta | {"error": result["error"], "wall_seconds": result["wall_seconds"]}
        (tmp / "error.json").write_text(json.dumps(error, indent=2))


@dataclass
class SweepReport:
    """What ``run_sweep`` did: runs finished now, failed now, skipped (done before), wall seconds,
    and how many of the sweep's runs were done before by another code version (run again now)."""

    done: int = 0
    failed: int = 0
    skipped: int = 0
    other_version: int = 0
    wall_seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


def run_sweep(
    sweep: Sweep,
    out: str | Path,
    workers: int | None = None,
    backend: str = "local",
    address: str | None = None,
    retry_failed: bool = False,
    progress: bool = True,
) -> SweepReport:
    """Run every run of ``sweep`` not yet done in ``out``, then write ``results.parquet``.

    Args:
        sweep: the grid.
        out: the sweep folder; a killed sweep resumes from it.
        workers: processes (local backend); ``None`` uses every core.
        backend: ``local`` (a process pool) or ``ray`` (the ``ray`` extra).
        address: a Ray cluster to join (``ray`` backend); ``None`` starts a local instance.
        retry_failed: rerun the runs that failed before (otherwise they are skipped).
        progress: show a progress bar with runs done, failed and remaining, and an ETA.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    out = Path(out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    (out / "sweep.json").write_text(json.dumps({"name": sweep.name, "description": sweep.description}))
    runs = sweep.runs()
    states = {r.key: status(out, r.key, r.code_version) for r in runs}
    todo = [r for r in runs if states[r.key] == "todo" or (retry_failed and states[r.key] == "failed")]
    report = SweepReport(skipped=len(runs) - len(todo), other_version=sum(other_versions(out, runs).values()))
    failed_before = sum(states[r.key] == "failed" for r in runs) if not retry_failed else 0
    start = time.perf_counter()
    from tqdm import tqdm

    bar = tqdm(total=len(runs), initial=report.skipped, desc=sweep.name, unit="run", disable=not progress)
    results = _ray_results(todo, address) if backend == "ray" else _local_results(todo, workers)
    try:
        for run, result in results:
            record(out, run, result)
            if result["status"] == "done":
                report.done += 1
            else:
                report.failed += 1
                report.errors.append(f"{run.arm} (seed {run.config['seed']}, {run.key}): {result['error']}")
                bar.write(f"run {run.key} ({run.arm}, seed {run.config['seed']}) failed: {result['error']}")
            left = len(todo) - report.done - report.failed
            done = len(runs) - left - failed_before - report.failed
            bar.set_postfix(done=done, failed=failed_before + report.failed, left=left)
            bar.update(1)
    finally:
        results.close()  # now, not when the traceback lets go of it: a failed record stops the runs
        bar.close()
        report.wall_seconds = time.perf_counter() - start
    from rlhf_gym.experiments.results import results_table

    results_table(out, keys=[r.key for r in runs]).to_parquet(out / "results.parquet", index=False)
    return report


def _crashed(err: BaseException) -> dict[str, Any]:
    return {
        "status": "failed",
        "error": f"the worker running it died ({type(err).__name__}: {err}); --retry-failed reruns it",
        "traceback": "".join(traceback.format_exception(err)),
        "wall_seconds": 0.0,
    }


def _local_results(runs: list[Run], workers: int | None) -> Generator[tuple[Run, dict[str, Any]], None, None]:
    if not runs:
        return
    n = min(workers or os.cpu_count() or 1, len(runs))
    # a killed driver takes its workers with it (rlhf_gym.processes): a SIGKILL runs no shutdown
    pool = ProcessPoolExecutor(max_workers=n, initializer=die_with_parent, initargs=(os.getpid(),))
    completed = False
    try:
        futures = {pool.submit(execute, r.config): r for r in runs}
        for fut in as_completed(futures):
            try:
                result = fut.result()
            except Exception as err:  # a worker process died (out of memory, a signal, a crash)
                result = _crashed(err)
            yield futures[fut], result
        completed = True
    finally:
        if completed:
            pool.shutdown(wait=True, cancel_futures=True)
        else:  # stopped (a result that cannot be recorded, Ctrl-C): the runs in flight would be lost
            _terminate_workers(pool)  # anyway, so they do not get to run on for hours first
            pool.shutdown(wait=False, cancel_futures=True)


def _terminate_workers(pool: ProcessPoolExecutor, grace: float = 5.0) -> None:
    """End ``pool``'s worker processes now: SIGTERM, then SIGKILL after ``grace`` seconds.

    ``ProcessPoolExecutor`` has no public way to stop a running task, so this reads its private
    ``_processes`` (pid to ``multiprocessing.Process``) defensively: anything unexpected is skipped.
    """
    processes = getattr(pool, "_processes", None)
    workers = list(processes.values()) if isinstance(processes, dict) else []
    for signal_name in ("terminate", "kill"):
        for p in workers:
            with contextlib.suppress(Exception):  # gone already, or not a Process
                if p.is_alive():
                    getattr(p, signal_name)()
        deadline = time.monotonic() + grace
        for p in workers:
            with contextlib.suppress(Exception):
                p.join(max(0.0, deadline - time.monotonic()))
        if not any(_alive(p) for p in workers):
            return


def _alive(process: Any) -> bool:
    try:
        return bool(process.is_alive())
    except Exception:
        return False


def _ray_results(runs: list[Run], address: str | None) -> Generator[tuple[Run, dict[str, Any]], None, None]:
    try:
        import ray
    except ImportError:
        raise ImportError('the ray backend needs the ray extra: pip install "rlhf-gym[ray]"') from None
    if not runs:
        return
    ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
    remote = ray.remote(num_cpus=1)(execute)
    pending = {remote.remote(r.config): r for r in runs}
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                try:
                    result = ray.get(ref)
                except Exception as err:  # the task's worker died
                    result = _crashed(err)
                yield pending.pop(ref), result
    finally:
        for ref in pending:
            ray.cancel(ref)
