"""A sweep folder as one tidy table: a row per run and evaluation point.

Columns:
- ``key``, ``arm``, ``status`` (``done`` or ``failed``), ``error`` (for failed runs);
- every ``RunConfig`` field, nested ones flattened with dots (``reward_model.ensemble_size``,
  ``hyperparams.n_steps``; lists and mappings inside them as JSON text);
- ``point``: ``eval`` for an evaluation during training, ``final`` for the final one;
- ``timesteps``, ``env_steps``, ``labels_used``, ``effort_seconds``, ``wall_seconds`` at that
  point (``labels`` is the config's budget);
- ``true_return`` (mean true return of the evaluation episodes) and ``normalised_return``:
  ``(R - R_random) / (R_ceiling - R_random)``, where ``R_ceiling`` is the median final
  return over seeds of the run's own true-reward ceiling (column ``ceiling``: the same
  config with the true reward and no feedback settings), and ``R_random`` the mean return
  of uniform random actions (20 seeded episodes; NaN if the task cannot be built here);
- ``reward_model_accuracy`` (held-out) and ``reward_correlation`` (with the true reward, on
  recent rollouts), from the last reward-model fit before the point;
- ``platform``: where the run ran (``rlhf_gym.provenance.platform``) and ``code_version``: the
  code that ran it (``rlhf_gym.provenance.code_version``), from its ``summary.json``.

``load_table`` reads a table back and refuses one that mixes code versions or platforms unless
told to allow it (``provenance``); ``arm_items`` and ``short_names`` read the grid values in arm
names.

A config column whose values differ in type across runs (``hyperparams.learning_rate`` is
``0.001`` for one task and ``lin_0.001`` for another) holds them as text, so Parquet can store it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

METRICS = {
    "timesteps": "timesteps",
    "env_steps": "env_steps",
    "labels_used": "labels_used",
    "effort_seconds": "effort_seconds",
    "wall_seconds": "wall_seconds",
    "true_return_mean": "true_return",
    "reward_model_accuracy": "reward_model_accuracy",
    "reward_correlation": "reward_correlation",
}


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings become dotted columns; lists, and mappings inside lists, JSON text.

    Example:
        >>> flatten({"a": 1, "b": {"c": [1, 2], "d": {"e": None}}})
        {'a': 1, 'b.c': '[1, 2]', 'b.d.e': None}
    """
    out: dict[str, Any] = {}
    for k, v in config.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            out |= flatten(v, f"{name}.")
        elif isinstance(v, (list, tuple)):
            out[name] = json.dumps(v)
        else:
            out[name] = v
    return out


def results_table(out: str | Path, keys: list[str] | None = None) -> pd.DataFrame:
    """The tidy table of a sweep folder (see the module docstring); one row per failed run too.
    ``keys`` keeps only those runs, in that order (a sweep's own, in the order of its grid, when
    the folder holds older ones too); without it, every run in the order of its key."""
    import pandas as pd

    from rlhf_gym.schema import load_yaml

    rows: list[dict[str, Any]] = []
    names = dict.fromkeys(keys) if keys is not None else sorted(f.name for f in Path(out, "runs").iterdir())
    for name in names:
        folder = Path(out, "runs", name)
        if name.startswith(".") or not folder.is_dir():
            continue
        config = flatten(load_yaml(folder / "config.yaml"))
        if (folder / "summary.json").is_file():
            meta = json.loads((folder / "summary.json").read_text())
            metrics = pd.read_csv(folder / "metrics.csv")
            fitted = metrics.reindex(columns=["reward_model_accuracy", "reward_correlation"]).ffill()
            metrics[fitted.columns] = fitted
            evals = (
                metrics[metrics["true_return_mean"].notna()] if "true_return_mean" in metrics else metrics[:0]
            )
            for _, m in evals.iterrows():
                point = "final" if m.get("final") is True or str(m.get("final")) == "True" else "eval"
                values = {new: m.get(old) for old, new in METRICS.items()}
                rows.append(_head(meta, "done", None) | config | {"point": point} | values)
        elif (folder / "error.json").is_file():
            meta = json.loads((folder / "error.json").read_text())
            end = {"point": "final", "wall_seconds": meta["wall_seconds"]}
            rows.append(_head(meta, "failed", meta["error"]) | config | end)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    for col in METRICS.values():
        if col not in table:
            table[col] = float("nan")
    for col in [c for c in table.columns if pd.api.types.is_object_dtype(table[c])]:
        kinds = {type(v) for v in table[col] if v is not None and v == v}
        if len(kinds) > 1:  # e.g. a learning rate that is a number for one task, a schedule for another
            table[col] = [v if v is None or v != v else str(v) for v in table[col]]
    table["normalised_return"] = normalised(table, random_returns(out, table))
    return table


def _head(meta: dict[str, Any], status: str, error: str | None) -> dict[str, Any]:
    return {
        "key": meta["key"],
        "arm": meta["arm"],
        "ceiling": meta["ceiling"],
        "status": status,
        "error": error,
        "platform": meta.get("platform"),  # runs of older versions did not record it
        "code_version": meta.get("code_version"),
    }


def normalised(table: pd.DataFrame, randoms: dict[tuple[str, str], float]) -> pd.Series:
    """Each row's normalised return against the median final return of its ceiling's seeds."""
    import numpy as np
    import pandas as pd

    finals = table[(table["reward"] == "true") & (table["point"] == "final") & (table["status"] == "done")]
    ceilings = finals.groupby("ceiling")["true_return"].median().to_dict()
    values = []
    for row in table.itertuples(index=False):
        span = ceilings.get(row.ceiling, np.nan) - randoms.get((row.task, row.horizon), np.nan)
        rand = randoms.get((row.task, row.horizon), np.nan)
        values.append((row.true_return - rand) / span if span and not np.isnan(span) else np.nan)
    return pd.Series(values, index=table.index, dtype=float)


def random_returns(out: str | Path, table: pd.DataFrame) -> dict[tuple[str, str], float]:
    """Mean return of uniform random actions per (task, horizon), cached in ``random_returns.json``."""
    import os

    from rlhf_gym.tasks.experts import mean_return
    from rlhf_gym.tasks.registry import get_task

    path = Path(out, "random_returns.json")
    cache: dict[str, float] = json.loads(path.read_text()) if path.is_file() else {}
    for task, horizon in table[["task", "horizon"]].drop_duplicates().itertuples(index=False):
        name = f"{task}|{horizon}"
        if name not in cache:
            try:
                cache[name] = mean_return(get_task(task), None, horizon)
            except ImportError:  # an extra installed on the workers only: no normalised return here
                continue
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(cache, indent=2))
    os.replace(tmp, path)
    return {(k.split("|")[0], k.split("|")[1]): v for k, v in cache.items()}


PROVENANCE = {"code_version": "code versions", "platform": "platforms"}


def provenance(table: pd.DataFrame, allow_mixed: bool = False, where: str = "the table") -> list[str]:
    """Where the runs of ``table`` come from, as markdown lines for a report: their one code
    version and platform, or, when they mix several and ``allow_mixed`` is given, a warning that
    says so. A run that recorded none counts as ``unrecorded``.

    Raises:
        ValueError: the runs mix code versions or platforms and ``allow_mixed`` is not given;
            the message names them.

    Example:
        >>> import pandas as pd
        >>> t = pd.DataFrame({"code_version": ["git:a", "git:b"], "platform": ["cpu", "cpu"]})
        >>> provenance(t)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: the table mixes 2 code versions (`git:a`, `git:b`): rerun the sweep on one ...
        >>> provenance(t.iloc[:1])
        ['Code version `git:a`; platform `cpu`.']
    """
    if "status" in table and (table["status"] == "done").any():
        table = table[table["status"] == "done"]  # a failed run holds no numbers to mix
    values = {
        col: sorted({v if isinstance(v, str) else "unrecorded" for v in table[col]})
        if col in table
        else ["unrecorded"]
        for col in PROVENANCE
    }
    mixed = {col: v for col, v in values.items() if len(v) > 1}
    if not mixed:
        return [f"Code version `{values['code_version'][0]}`; platform `{values['platform'][0]}`."]
    what = " and ".join(
        f"{len(v)} {PROVENANCE[col]} ({', '.join(f'`{x}`' for x in v)})" for col, v in mixed.items()
    )
    if not allow_mixed:
        raise ValueError(
            f"{where} mixes {what}: rerun the sweep on one code version, or allow it with --allow-mixed"
        )
    return [
        f"**Mixed results:** these runs come from {what}. A learned-reward run is repeatable only on "
        "its own code version and platform (torch picks its float kernels by the CPU): compare arms "
        "within one."
    ]


def load_table(results: str | Path, allow_mixed: bool = False) -> pd.DataFrame:
    """A sweep folder's ``results.parquet`` (or a ``.parquet``/``.csv`` file) as a table.

    Raises:
        FileNotFoundError: there is no table there.
        ValueError: it is not a results table, or its runs mix code versions or platforms and
            ``allow_mixed`` is not given (``provenance``).
    """
    import pandas as pd

    path = Path(results)
    if path.is_dir():
        path = path / "results.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"no results at {results}; expected a sweep folder or a .parquet/.csv table")
    table = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
    missing = {"arm", "task", "point", "true_return", "normalised_return"} - set(table.columns)
    if missing:
        raise ValueError(f"{path} is not a sweep results table: it lacks {', '.join(sorted(missing))}")
    provenance(table, allow_mixed, str(path))
    return table


def arm_items(arm: str) -> list[list[str]]:
    """An arm's name as its grid values: space-separated, each one or more comma-separated items.

    Example:
        >>> arm_items("teacher=stoch task=Pong-v0,labels=10")
        [['teacher=stoch'], ['task=Pong-v0', 'labels=10']]
    """
    return [t.split(",") for t in str(arm).split(" ")]


def short_names(table: pd.DataFrame, drop: str | None = None) -> list[str]:
    """Each row's arm named without the grid items that all learned arms of its task share
    (``task=...``, a preset's budget), which the task already implies, and without the items of
    the field ``drop``; an arm left with no item is ``learned reward``."""
    shared: dict[str, set[str]] = {}
    for task, rows in table.groupby("task", sort=False):
        learned = rows.loc[rows["reward"] == "learned", "arm"].unique()
        sets = [{i for t in arm_items(a) for i in t} for a in learned]
        shared[task] = set.intersection(*sets) if sets else set()
        shared[task].add(f"task={task}")
    names = {}
    for arm, task in set(zip(table["arm"], table["task"])):
        keep = [[i for i in t if i not in shared[task] and i.split("=")[0] != drop] for t in arm_items(arm)]
        names[arm, task] = " ".join(",".join(t) for t in keep if t) or "learned reward"
    return [names[a, t] for a, t in zip(table["arm"], table["task"])]
