"""Sweep specs: a YAML grid of run configs, times seeds, each run keyed by its resolved config
and the code version that runs it.

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
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlhf_gym.config import RunConfig
from rlhf_gym.schema import from_dict, load_yaml, to_dict
from rlhf_gym.train.resolve import control_config, feedback_only

SPEC_KEYS = ("name", "description", "base", "grid", "seeds", "controls")


CONTROLS = {"true": "ceiling (true reward)", "constant": "control (constant reward)"}


@dataclass(frozen=True)
class Run:
    """One run of a sweep.

    Args:
        key: 12 hex digits of the SHA-256 of the resolved config and the code version
            (``run_key``): the run's identity.
        arm: the grid values that define the run, without the seed (its group in tables).
        config: the resolved ``RunConfig`` as a plain dict.
        ceiling: the key of the run's true-reward ceiling with the seed left out: the runs
            whose normalised return shares one ceiling (the median over its seeds).
        code_version: the code version the key is for (``rlhf_gym.provenance.code_version``).

    Example:
        >>> run = Sweep.from_dict({"name": "one", "controls": False}).runs()[0]
        >>> run.arm, run.config["task"], len(run.key), run.ceiling != run.key
        ('one', 'CartPole-v1', 12, True)
    """

    key: str
    arm: str
    config: dict[str, Any]
    ceiling: str
    code_version: str | None = None


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
        automatic one are the same run. Runs are keyed for this process's code version."""
        from rlhf_gym.provenance import code_version

        version = code_version()
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
                    ceiling = run_key(_resolve(control_config(data, "true")) | {"seed": None}, version)
                except (ValueError, TypeError) as err:
                    raise ValueError(f"{where}, arm {arm!r}: {err}") from None
                for label, config in variants:
                    key = run_key(config, version)
                    runs.setdefault(key, Run(key, label, config, ceiling, version))
        return list(runs.values())


def _resolve(data: dict[str, Any]) -> dict[str, Any]:
    from rlhf_gym.train.resolve import resolve_config

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


CURRENT = "current"
"""``run_key``'s default code version: this process's ``provenance.code_version()``."""


def run_key(config: dict[str, Any], code_version: str | None = CURRENT) -> str:
    """12 hex digits of the SHA-256 of a resolved config (keys sorted) and the code version that
    runs it, so that a run of changed code is a new run: changing any file under ``rlhf_gym/``
    gives every run a new key. Fields that are ``None`` are left out, so a new optional field does
    not change the keys of finished runs.

    Args:
        config: the resolved config, a plain dict.
        code_version: the code version (``rlhf_gym.provenance.code_version``); by default this
            process's; ``None`` gives the key that runs had before code versions were recorded.

    Example:
        >>> run_key({"task": "CartPole-v1", "seed": 0}) == run_key({"seed": 0, "task": "CartPole-v1"})
        True
        >>> run_key({"task": "CartPole-v1", "recorded_feedback": None}) == run_key({"task": "CartPole-v1"})
        True
        >>> run_key({"seed": 0}, "git:1a2b3c4d5e6f") == run_key({"seed": 0}, "git:1a2b3c4d5e6f+dirty:0a")
        False
    """
    if code_version == CURRENT:
        from rlhf_gym.provenance import code_version as current

        code_version = current()
    kept = {k: v for k, v in (config | {"code_version": code_version}).items() if v is not None}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:12]
