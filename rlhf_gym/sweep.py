"""Benchmark sweeps: a YAML grid of RLHF runs, run in local processes or on Ray, resumable.

A sweep spec (``benchmarks/sweeps/*.yaml``) names a grid of ``RunConfig`` overrides; every
combination of the grid's values, times every seed, is one run:

    name: queries
    description: uniform vs disagreement vs entropy queries on fixed CartPole
    base: {horizon: fixed, labels: 50}          # shared by every run
    grid:
      task: [CartPole-v1]
      query_strategy: [uniform, disagreement, entropy]
    seeds: 5                                    # or a list, e.g. [0, 3]
    controls: true                              # the default

A grid value may also be a mapping of several fields that go together, e.g. ``task:
[{task: CartPole-v1, budget_seconds: 200}, {task: Pendulum-v1, budget_seconds: 467}]``, and
a key may reach into a nested field with a dot (``reward_model.ensemble_size``). Unknown keys
and values are errors that name them. With ``controls: true`` every distinct task setting of
the learned-reward runs also gets its true-reward ceiling and its constant-reward control.

Each run is keyed by a hash of its resolved config (``resolve_config``: the task preset's
defaults filled in), so a killed sweep resumes and skips finished runs. A run's results are
written by the driver, not the worker, into ``<out>/runs/<key>/`` (``summary.json``,
``metrics.csv``, ``config.yaml``), atomically; a failed run gets ``error.json`` and
``traceback.txt`` there instead, and the sweep goes on (``retry_failed`` reruns only those).
``results_table`` turns the folder into one tidy table (``results.parquet``).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import time
import traceback
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlhf_gym.config import RunConfig, from_dict, load_yaml, save_yaml, to_dict
from rlhf_gym.resolve import control_config, feedback_only

SPEC_KEYS = ("name", "description", "base", "grid", "seeds", "controls")
BACKENDS = ("local", "ray")
CONTROLS = {"true": "ceiling (true reward)", "constant": "control (constant reward)"}


@dataclass(frozen=True)
class Run:
    """One run of a sweep.

    Args:
        key: 12 hex digits of the SHA-256 of the resolved config: the run's identity.
        arm: the grid values that define the run, without the seed (its group in tables).
        config: the resolved ``RunConfig`` as a plain dict.
        ceiling: the key of the run's true-reward ceiling with the seed left out: the runs
            whose normalised return shares one ceiling (the median over its seeds).

    Example:
        >>> run = Sweep.from_dict({"name": "one", "controls": False}).runs()[0]
        >>> run.arm, run.config["task"], len(run.key), run.ceiling != run.key
        ('one', 'CartPole-v1', 12, True)
    """

    key: str
    arm: str
    config: dict[str, Any]
    ceiling: str


@dataclass(frozen=True)
class Sweep:
    """A grid of runs, read from a YAML spec (see the module docstring).

    Example:
        >>> sweep = Sweep.from_dict({"name": "demo", "grid": {"teacher": ["oracle", "stoch"]},
        ...                          "seeds": 2, "base": {"total_timesteps": 1000}})
        >>> [r.arm for r in sweep.runs() if r.config["seed"] == 0]
        ['teacher=oracle', 'ceiling (true reward)', 'control (constant reward)', 'teacher=stoch']
        >>> sorted({r.arm for r in sweep.runs()})
        ['ceiling (true reward)', 'control (constant reward)', 'teacher=oracle', 'teacher=stoch']
        >>> len(sweep.runs())  # 2 teachers x 2 seeds, plus the ceiling and the constant control x 2 seeds
        8
    """

    name: str
    description: str = ""
    base: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, list[Any]] = field(default_factory=dict)
    seeds: tuple[int, ...] = (0,)
    controls: bool = True

    @classmethod
    def from_yaml(cls, path: str | Path) -> Sweep:
        """Read a spec file; errors name the file and the bad key or value."""
        data = load_yaml(path)
        return cls.from_dict({"name": Path(path).stem, **data}, f"sweep {Path(path).name}")

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "sweep") -> Sweep:
        """Build and check a spec from a mapping."""
        if not isinstance(data, dict):
            raise TypeError(f"{where} must be a mapping, got {type(data).__name__}")
        for key in data:
            if key not in SPEC_KEYS:
                raise ValueError(f"unknown key {key!r} in {where}; expected one of: {', '.join(SPEC_KEYS)}")
        seeds = data.get("seeds", 1)
        if type(seeds) is int and seeds > 0:
            seeds = tuple(range(seeds))
        elif isinstance(seeds, list) and seeds and all(type(s) is int and s >= 0 for s in seeds):
            seeds = tuple(seeds)
        else:
            raise ValueError(f"seeds in {where} must be a positive count or a list of seeds, got {seeds!r}")
        grid = data.get("grid") or {}
        if not isinstance(grid, dict):
            raise TypeError(f"grid in {where} must map config fields to lists of values")
        for axis, values in grid.items():
            if not isinstance(values, list) or not values:
                raise ValueError(f"grid.{axis} in {where} must be a non-empty list of values, got {values!r}")
        base = data.get("base") or {}
        if not isinstance(base, dict):
            raise TypeError(f"base in {where} must be a mapping of config fields")
        if "seed" in base or "seed" in grid:
            raise ValueError(f"{where} sets seed in base or grid; list the seeds under seeds")
        controls = data.get("controls", True)
        if not isinstance(controls, bool):
            raise TypeError(f"controls in {where} must be true or false, got {controls!r}")
        sweep = cls(
            name=str(data.get("name", "sweep")),
            description=str(data.get("description", "")),
            base=base,
            grid=grid,
            seeds=seeds,
            controls=controls,
        )
        sweep.runs(where)  # every combination must resolve: unknown fields and values fail here
        return sweep

    def combinations(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """Each grid combination as (arm label, label of its controls, overrides), in grid order.
        The controls' label keeps only the values that matter without feedback."""
        axes = list(self.grid.items())
        for choice in itertools.product(*(values for _, values in axes)):
            overrides: dict[str, Any] = {}
            labels, env_labels = [], []
            for (axis, _), value in zip(axes, choice):
                items = list(value.items()) if isinstance(value, dict) else [(axis, value)]
                for k, v in items:
                    _set(overrides, k, v)
                labels.append(",".join(f"{k}={_short(v)}" for k, v in items))
                env = [f"{k}={_short(v)}" for k, v in items if not feedback_only(k)]
                if env:
                    env_labels.append(",".join(env))
            yield " ".join(labels) or self.name, " ".join(env_labels), overrides

    def runs(self, where: str = "sweep") -> list[Run]:
        """Every run, seed-major (all arms of seed 0 first), controls included, without duplicates.

        A run is resolved as ``rlhf-gym train`` would resolve its fields (defaults, then the task
        preset's ``run:`` block, then the sweep's values), so a ceiling listed in the grid and the
        automatic one are the same run."""
        base: dict[str, Any] = {}
        for k, v in self.base.items():
            _set(base, k, v)
        runs: dict[str, Run] = {}
        for seed in self.seeds:
            for arm, env_label, overrides in self.combinations():
                data = _merged(base, overrides) | {"seed": seed}
                try:
                    from_dict(RunConfig, data, where)  # names an unknown field before anything else
                    config = _resolve(data)
                    variants = [(arm, config)]
                    if self.controls and config["reward"] == "learned":
                        for reward, label in CONTROLS.items():
                            control = _resolve(control_config(data, reward))
                            variants.append((f"{label} {env_label}".strip(), control))
                    ceiling = run_key(_resolve(control_config(data, "true")) | {"seed": None})
                except (ValueError, TypeError) as err:
                    raise ValueError(f"{where}, arm {arm!r}: {err}") from None
                for label, config in variants:
                    key = run_key(config)
                    runs.setdefault(key, Run(key, label, config, ceiling))
        return list(runs.values())


def _resolve(data: dict[str, Any]) -> dict[str, Any]:
    from rlhf_gym.resolve import resolve_config

    return to_dict(resolve_config(data))


def _set(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for p in parents:
        data = data.setdefault(p, {})
        if not isinstance(data, dict):
            raise ValueError(f"{dotted!r} reaches into {p!r}, which is not a nested config")
    data[leaf] = value


def _merged(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _short(value: Any) -> str:
    return json.dumps(value, separators=(",", ":")) if isinstance(value, (dict, list)) else str(value)


def run_key(config: dict[str, Any]) -> str:
    """12 hex digits of the SHA-256 of a resolved config (keys sorted). Fields that are ``None``
    are left out, so a new optional field does not change the keys of finished runs.

    Example:
        >>> run_key({"task": "CartPole-v1", "seed": 0}) == run_key({"seed": 0, "task": "CartPole-v1"})
        True
        >>> run_key({"task": "CartPole-v1", "recorded_feedback": None}) == run_key({"task": "CartPole-v1"})
        True
    """
    kept = {k: v for k, v in config.items() if v is not None}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:12]


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
        from rlhf_gym.pipeline import RLHF

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


def status(out: Path, key: str) -> str:
    """``done``, ``failed`` or ``todo`` for the run ``key`` of the sweep folder ``out``."""
    folder = out / "runs" / key
    if (folder / "summary.json").is_file():
        return "done"
    if (folder / "error.json").is_file():
        return "failed"
    return "todo"


def record(out: Path, run: Run, result: dict[str, Any]) -> None:
    """Write a run's result folder atomically: a private temporary folder renamed into place."""
    import csv
    import tempfile

    (out / "runs").mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{run.key}.", dir=out / "runs"))
    tmp.chmod(0o755)  # mkdtemp's 0o700 would hide results from others sharing the folder
    save_yaml(from_dict(RunConfig, run.config), tmp / "config.yaml")
    meta = {"key": run.key, "arm": run.arm, "ceiling": run.ceiling}
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
    final = out / "runs" / run.key
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)


@dataclass
class SweepReport:
    """What ``run_sweep`` did: runs finished now, failed now, skipped (done before), wall seconds."""

    done: int = 0
    failed: int = 0
    skipped: int = 0
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
    states = {r.key: status(out, r.key) for r in runs}
    todo = [r for r in runs if states[r.key] == "todo" or (retry_failed and states[r.key] == "failed")]
    report = SweepReport(skipped=len(runs) - len(todo))
    failed_before = sum(states[r.key] == "failed" for r in runs) if not retry_failed else 0
    start = time.perf_counter()
    from tqdm import tqdm

    bar = tqdm(total=len(runs), initial=report.skipped, desc=sweep.name, unit="run", disable=not progress)
    try:
        results = _ray_results(todo, address) if backend == "ray" else _local_results(todo, workers)
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
        bar.close()
        report.wall_seconds = time.perf_counter() - start
    from rlhf_gym.results import results_table

    results_table(out, keys=[r.key for r in runs]).to_parquet(out / "results.parquet", index=False)
    return report


def _crashed(err: BaseException) -> dict[str, Any]:
    return {
        "status": "failed",
        "error": f"the worker running it died ({type(err).__name__}: {err}); --retry-failed reruns it",
        "traceback": "".join(traceback.format_exception(err)),
        "wall_seconds": 0.0,
    }


def _local_results(runs: list[Run], workers: int | None) -> Iterator[tuple[Run, dict[str, Any]]]:
    if not runs:
        return
    pool = ProcessPoolExecutor(max_workers=min(workers or os.cpu_count() or 1, len(runs)))
    try:
        futures = {pool.submit(execute, r.config): r for r in runs}
        for fut in as_completed(futures):
            try:
                result = fut.result()
            except Exception as err:  # a worker process died (out of memory, a signal, a crash)
                result = _crashed(err)
            yield futures[fut], result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _ray_results(runs: list[Run], address: str | None) -> Iterator[tuple[Run, dict[str, Any]]]:
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
