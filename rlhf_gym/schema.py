"""Typed dataclass configs from and to plain dicts and YAML, with errors that name the bad key.

Every config of the package (``RunConfig``, ``WarpConfig``, sweep specs) is a dataclass with a
docstring on each field; ``field_docs`` turns those into ``--help`` text.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools
import math
import types
import typing
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")

MAX_LABELS = 1_000_000
"""More labels than any study of people gives; a larger budget is a typo (and would not fit in memory)."""
MAX_TIMESTEPS = 10**10
MAX_BUDGET_SECONDS = 10**6
"""About 12 days of one person's labelling."""
MAX_COUNT = 10**7
"""The largest count (episodes, steps per rollout, buffer size, ...) a field may ask for: a larger
one is a typo that would exhaust memory."""
MAX_WIDTH = 4096
"""The widest reward-model layer."""
BOUNDED_HYPERPARAMS = {"n_envs": 256, "n_steps": MAX_COUNT, "batch_size": MAX_COUNT, "buffer_size": MAX_COUNT}
"""SB3 hyperparameters whose size is allocated up front, and their upper bounds."""


def check_hyperparams(hyperparams: dict[str, Any]) -> None:
    """Refuse a size hyperparameter that would exhaust memory (``BOUNDED_HYPERPARAMS``)."""
    for key, bound in BOUNDED_HYPERPARAMS.items():
        value = hyperparams.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= bound:
            raise ValueError(f"hyperparams.{key} must be an integer in [1, {bound}], got {value!r}")


@cache
def field_docs(cls: type) -> dict[str, str]:
    """The attribute docstring of every field of a config dataclass (used for ``--help``).

    Example:
        >>> from rlhf_gym.config import RunConfig
        >>> field_docs(RunConfig)["rating_levels"]
        'Levels of the rating scale.'
    """
    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, nxt in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
        ):
            docs[node.target.id] = " ".join(str(nxt.value.value).split())
    return docs


def from_dict(cls: type[T], data: dict[str, Any], where: str = "config") -> T:
    """Build a config dataclass from a mapping, rejecting unknown keys by name.

    Example:
        >>> from rlhf_gym.config import RunConfig
        >>> from_dict(RunConfig, {"labels": 10}).labels
        10
        >>> from_dict(RunConfig, {"lables": 10})
        Traceback (most recent call last):
        ...
        ValueError: unknown key 'lables' in config; expected one of: task, horizon, ...
    """
    if not isinstance(data, dict):
        raise TypeError(f"{where} must be a mapping of keys to values, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in names:
            raise ValueError(f"unknown key {key!r} in {where}; expected one of: {', '.join(names)}")
        kwargs[key] = _coerce(hints[key], value, f"{where}.{key}")
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, where: str) -> Any:
    """Check ``value`` against a field's type hint (converting lists to tuples, ints to floats)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return value if isinstance(value, hint) else from_dict(hint, value, where)  # type: ignore[arg-type]
    if origin in (typing.Union, types.UnionType):
        if value is None:
            if type(None) not in args:
                raise TypeError(f"{where} must not be empty")
            return None
        return _coerce(next(a for a in args if a is not type(None)), value, where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{where} must be a list, got {value!r}")
        return tuple(_coerce(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError(f"{where} must be a mapping of keys to values, got {value!r}")
        return {k: _coerce(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool) and not isinstance(value, hint):
        raise TypeError(f"{where} must be {hint.__name__}, got {value!r}")
    if hint is int and isinstance(value, bool):
        raise TypeError(f"{where} must be int, got {value!r}")
    return value


def merge(config: T, overrides: dict[str, Any], where: str = "config") -> T:
    """A copy of ``config`` with ``overrides`` applied; nested configs merge key by key."""
    data = to_dict(config)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return from_dict(type(config), data, where)


def to_dict(config: Any) -> dict[str, Any]:
    """A plain, YAML-safe dict of a config dataclass (tuples become lists)."""

    def plain(v: Any) -> Any:
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, list):
            return [plain(x) for x in v]
        return v

    return {k: plain(v) for k, v in dataclasses.asdict(config).items()}


MAX_YAML_BYTES = 1_000_000
"""The largest config file read: configs and presets are a few kilobytes."""


class _NoAliases(yaml.SafeLoader):
    """YAML's safe loader without anchors' aliases: an alias bomb (a billion laughs) expands
    without bound, and no config needs one."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in rlhf-gym configs", event.start_mark
            )
        return super().compose_node(parent, index)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with a clear error naming the file for a missing, binary, oversized
    or malformed one (aliases are refused)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"config file {str(path)!r} is a directory; expected a YAML file")
    if not path.is_file():
        raise FileNotFoundError(f"config file {str(path)!r} does not exist")
    if path.stat().st_size > MAX_YAML_BYTES:
        raise ValueError(
            f"{path} is {path.stat().st_size} bytes; expected a config of at most {MAX_YAML_BYTES}"
        )
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_NoAliases) or {}
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a text file; expected a YAML config") from None
    except yaml.YAMLError as err:
        raise ValueError(f"{path} is not valid YAML: {err}") from None
    except RecursionError:
        raise ValueError(f"{path} is nested too deeply; expected a YAML config") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a mapping of keys to values, got {type(data).__name__}")
    return data


def save_yaml(config: Any, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(to_dict(config), sort_keys=False))


def check_finite(where: str, value: Any) -> None:
    """Reject a NaN or infinite float anywhere inside ``value`` (nested dicts and lists)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where} must be a finite number, got {value}")
    if isinstance(value, dict):
        for key, item in value.items():
            check_finite(f"{where}.{key}", item)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            check_finite(f"{where}[{i}]", item)


def check_choice(obj: object, name: str, allowed: tuple[str, ...]) -> None:
    """Reject a field of ``obj`` whose value is not one of ``allowed``, naming both."""
    value = getattr(obj, name)
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; expected one of {', '.join(allowed)}")


def check_positive(obj: object, *names: str, allow_zero: bool = False, at_most: float | None = None) -> None:
    """Reject fields of ``obj`` that are not finite positive numbers, or above ``at_most``
    (``None`` passes)."""
    for name in names:
        value = getattr(obj, name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value}")
        if at_most is not None and value > at_most:
            raise ValueError(f"{name} must be at most {at_most}, got {value}")
        if value < 0 or (value == 0 and not allow_zero):
            raise ValueError(f"{name} must be {'non-negative' if allow_zero else 'positive'}, got {value}")
