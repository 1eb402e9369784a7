"""Checking a feedback record against a task's spaces and the rules of its kind, before it is stored.

``check_record`` is what ``rlhf_gym.feedback.formats.import_store`` runs on every record of a file
received from someone else, so a record that would later break a training run (a NaN, a label of
7, an action the task cannot take) is refused with one line that names the field and what was
expected. The rules:

- every ``Segment`` and ``Trajectory`` inside the record: ``obs``, ``actions``, ``true_rewards`` and
  ``absorbing`` have one entry per step (at least one step). Each observation has the shape of the
  task's observation space and is finite (a ``Discrete`` one is an integer in range); observations
  are not held to a ``Box``'s bounds, which several environments overstep. Each action is in the
  task's action space: a ``Discrete`` action an integer in range, a ``Box`` action finite and within
  the bounds give or take ``BOX_TOLERANCE``. On an absorbing step an all-zero action is also
  accepted, since ``rlhf_gym.data.segments.cut`` pads a terminated episode with zero actions.
  ``true_rewards`` are finite numbers and ``absorbing`` is bool. A trajectory's ``final_obs`` is
  one observation;
- ``Comparison``: ``label`` in [0, 1] (1 prefers the first segment, 0 the second, 0.5 is a tie);
  ``probability`` nan (unknown) or in [0, 1];
- ``Correction``: ``original`` and ``corrected`` of the same length; ``EStop``: ``before`` and
  ``after`` of the same length;
- ``Demonstration``: at least one ``demo`` segment, and as many ``against`` segments;
- ``Rating``: ``2 <= levels <= MAX_LEVELS`` and ``0 <= level < levels``, both ints;
- ``Signal``: ``positive`` a bool; ``credit`` one weight in [0, 1] per step, not all zero;
- every field holds the type its record class declares (a ``Query`` where a ``Query`` belongs, a
  str ``teacher``, ...).

Example:
    >>> import numpy as np
    >>> from gymnasium import spaces
    >>> from rlhf_gym.types import Rating, Segment
    >>> obs_space, act_space = spaces.Box(-1, 1, (2,)), spaces.Discrete(2)
    >>> seg = Segment(np.zeros((3, 2)), np.array([0, 1, 1]), np.ones(3), np.zeros(3, bool))
    >>> check_record(Rating(seg, 4, 5), obs_space, act_space, "line 2")
    >>> check_record(Rating(seg, 5, 5), obs_space, act_space, "line 2")
    Traceback (most recent call last):
    ValueError: line 2: rating.level is 5; expected an int in [0, 4] (levels is 5)
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Callable
from typing import Any

import numpy as np
from gymnasium import spaces

from rlhf_gym.tasks.registry import get_task
from rlhf_gym.types import (
    Comparison,
    Correction,
    Demonstration,
    EStop,
    Feedback,
    Rating,
    Segment,
    Signal,
    Trajectory,
)

BOX_TOLERANCE = 1e-5
"""How far a ``Box`` action may stray past a bound, relative to ``1 + |bound|``: SB3 clips actions to
the bounds in float32, and a round trip through another dtype may move them by an ulp."""

MAX_LEVELS = 1000
"""The most levels a rating scale may have (each level is a threshold of the ordinal likelihood)."""


def task_spaces(task: str) -> tuple[spaces.Space, spaces.Space]:
    """The ``(observation_space, action_space)`` of a registered task; builds one environment and
    closes it."""
    env = get_task(task).make("natural")
    try:
        return env.observation_space, env.action_space
    finally:
        env.close()


def check_record(
    record: Feedback, observation_space: spaces.Space, action_space: spaces.Space, where: str = "record"
) -> None:
    """Check ``record`` against the task's spaces and its kind's rules (module docs).

    Args:
        record: any record of ``FEEDBACK_RECORDS``.
        observation_space: the task's observation space (``Box`` or ``Discrete``).
        action_space: the task's action space (``Box`` or ``Discrete``).
        where: what to name the record by in an error, e.g. ``"session.jsonl, line 4"``.

    Raises:
        ValueError: the first rule the record breaks: ``"<where>: <kind>.<field> is <value>;
            expected <what>"``.
    """
    root = str(getattr(record, "kind", type(record).__name__))
    _check_fields(record, root, where)
    for path, steps in step_sequences(record, root):
        _check_steps(steps, path, where, observation_space, action_space)
    rule = _RULES.get(type(record))
    if rule is not None:
        rule(record, root, where)


# ----- field types ----------------------------------------------------------------------------


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        try:
            _HINTS[cls] = typing.get_type_hints(cls)
        except (NameError, TypeError):  # a record class whose annotations do not resolve: no type checks
            _HINTS[cls] = {}
    return _HINTS[cls]


def _fail(where: str, path: str, value: Any, expected: str) -> typing.NoReturn:
    if dataclasses.is_dataclass(value):
        shown = f"a {type(value).__name__}"
    else:
        shown = " ".join(repr(value.tolist() if isinstance(value, np.ndarray) else value).split())
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
    raise ValueError(f"{where}: {path} is {shown}; expected {expected}")


def _check_fields(value: Any, path: str, where: str) -> None:
    """Every init field of the dataclass ``value`` holds its declared type, recursively."""
    hints = _hints(type(value))
    for f in dataclasses.fields(value):
        if f.init and f.name in hints:
            _check_type(getattr(value, f.name), hints[f.name], f"{path}.{f.name}", where)


def _check_type(value: Any, hint: Any, path: str, where: str) -> None:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        if not isinstance(value, (tuple, list)):
            _fail(where, path, value, f"a tuple of {getattr(args[0], '__name__', args[0])}")
        for i, item in enumerate(value):
            _check_type(item, args[0], f"{path}[{i}]", where)
        return
    if hint is float:
        ok, expected = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
    elif hint is int:
        ok, expected = isinstance(value, int) and not isinstance(value, bool), "an int"
    elif isinstance(hint, type):
        ok, expected = (
            isinstance(value, hint),
            "a numpy array" if hint is np.ndarray else f"a {hint.__name__}",
        )
    else:
        return  # a union or a generic this check does not know: left to the kind's rules
    if not ok:
        _fail(where, path, value, expected)
    if dataclasses.is_dataclass(value):
        _check_fields(value, path, where)


# ----- the rules of each kind -----------------------------------------------------------------


def _unit(value: float, path: str, where: str, expected: str) -> None:
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        _fail(where, path, value, expected)


def _comparison(r: Comparison, root: str, where: str) -> None:
    _unit(
        r.label,
        f"{root}.label",
        where,
        "a number in [0, 1] (1: the first segment is preferred, 0: the second, 0.5: a tie)",
    )
    if not math.isnan(r.probability):
        _unit(r.probability, f"{root}.probability", where, "nan (unknown) or a probability in [0, 1]")


def _same_length(a: Segment, b: Segment, names: tuple[str, str], root: str, where: str) -> None:
    if len(a.obs) != len(b.obs):
        _fail(
            where,
            f"{root}.{names[1]}'s length",
            len(b.obs),
            f"{len(a.obs)} steps, the length of {root}.{names[0]}",
        )


def _correction(r: Correction, root: str, where: str) -> None:
    _same_length(r.original, r.corrected, ("original", "corrected"), root, where)


def _estop(r: EStop, root: str, where: str) -> None:
    _same_length(r.before, r.after, ("before", "after"), root, where)


def _demonstration(r: Demonstration, root: str, where: str) -> None:
    if not r.demo:
        _fail(where, f"{root}.demo", r.demo, "at least one demo segment")
    if len(r.against) != len(r.demo):
        _fail(
            where,
            f"{root}.against's length",
            len(r.against),
            f"{len(r.demo)}, one agent segment per demo segment",
        )


def _rating(r: Rating, root: str, where: str) -> None:
    if not 2 <= r.levels <= MAX_LEVELS:
        _fail(where, f"{root}.levels", r.levels, f"an int in [2, {MAX_LEVELS}]")
    if not 0 <= r.level < r.levels:
        _fail(where, f"{root}.level", r.level, f"an int in [0, {r.levels - 1}] (levels is {r.levels})")


def _signal(r: Signal, root: str, where: str) -> None:
    credit, n = r.credit, len(r.steps.obs)
    if credit.shape != (n,) or credit.dtype.kind not in "iuf":
        _fail(
            where,
            f"{root}.credit",
            credit,
            f"{n} numbers, one per step (shape ({n},)); got {credit.dtype} {credit.shape}",
        )
    if not (
        np.isfinite(credit).all()
        and (credit >= 0).all()
        and (credit <= 1 + BOX_TOLERANCE).all()
        and credit.any()
    ):
        _fail(where, f"{root}.credit", credit.tolist(), "weights in [0, 1], not all zero")


_RULES: dict[type, Callable[[Any, str, str], None]] = {
    Comparison: _comparison,
    Correction: _correction,
    Demonstration: _demonstration,
    Rating: _rating,
    Signal: _signal,
    EStop: _estop,
}


# ----- steps against the task's spaces ---------------------------------------------------------


def step_sequences(value: Any, path: str) -> typing.Iterator[tuple[str, Segment | Trajectory]]:
    """Every ``(path, segment or trajectory)`` inside a record, with its path from ``path``."""
    if isinstance(value, (Segment, Trajectory)):
        yield path, value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from step_sequences(getattr(value, f.name), f"{path}.{f.name}")
    elif isinstance(value, (tuple, list)):
        for i, item in enumerate(value):
            yield from step_sequences(item, f"{path}[{i}]")


def _check_steps(
    s: Segment | Trajectory, path: str, where: str, obs_space: spaces.Space, act_space: spaces.Space
) -> None:
    if s.obs.ndim == 0 or len(s.obs) == 0:
        _fail(where, f"{path}.obs's shape", s.obs.shape, "(steps, *observation_shape) with at least one step")
    h = len(s.obs)
    for name, array in (("true_rewards", s.true_rewards), ("absorbing", s.absorbing)):
        if array.shape != (h,):
            _fail(
                where,
                f"{path}.{name}'s shape",
                array.shape,
                f"({h},): one per step, as many as the observations",
            )
    if s.absorbing.dtype != np.bool_:
        _fail(where, f"{path}.absorbing's dtype", str(s.absorbing.dtype), "bool")
    rewards = s.true_rewards
    if rewards.dtype.kind not in "iuf":
        _fail(where, f"{path}.true_rewards's dtype", str(rewards.dtype), "numbers")
    _first_bad(np.isfinite(rewards), rewards, f"{path}.true_rewards", where, "finite numbers (no nan or inf)")
    _check_in_space(s.obs, f"{path}.obs", where, obs_space, h, "observations")
    _check_in_space(s.actions, f"{path}.actions", where, act_space, h, "actions", s.absorbing, bounds=True)
    if isinstance(s, Trajectory):
        shape = obs_space.shape or ()
        if s.final_obs.shape != shape:
            _fail(
                where,
                f"{path}.final_obs's shape",
                s.final_obs.shape,
                f"{shape}, one observation of {obs_space}",
            )
        _check_in_space(s.final_obs[None], f"{path}.final_obs", where, obs_space, 1, "observations")


def _check_in_space(
    array: np.ndarray,
    path: str,
    where: str,
    space: spaces.Space,
    h: int,
    what: str,
    absorbing: np.ndarray | None = None,
    bounds: bool = False,
) -> None:
    """``array`` holds ``h`` elements of ``space``, ``array[t]`` for step ``t``, within a ``Box``'s
    bounds if ``bounds``; an all-zero element is also accepted where ``absorbing``."""
    shape = (h, *(space.shape or ()))
    if array.shape != shape:
        _fail(
            where,
            f"{path}'s shape",
            array.shape,
            f"{shape}: {h} steps (as many as the observations) of {space}",
        )
    discrete = isinstance(space, spaces.Discrete)
    if array.dtype.kind not in ("iuf" if discrete else "biuf"):
        _fail(
            where,
            f"{path}'s dtype",
            str(array.dtype),
            f"{'integers' if discrete else 'numbers'} for {what} of {space}",
        )
    flat = array.reshape(h, -1)
    with np.errstate(invalid="ignore"):
        ok: np.ndarray = np.isfinite(flat) if flat.dtype.kind == "f" else np.ones(flat.shape, bool)
        expected = f"finite {what} of {space} (no nan or inf)"
        if isinstance(space, spaces.Discrete):
            lo, hi = int(space.start), int(space.start) + int(space.n) - 1
            ok &= (flat == np.round(flat)) & (flat >= lo) & (flat <= hi)
            expected = f"{what} of {space}: integers in [{lo}, {hi}]"
        elif bounds and isinstance(space, spaces.Box):
            for bound, sign in ((space.low, -1), (space.high, 1)):
                b = np.broadcast_to(bound, space.shape).reshape(1, -1).astype(np.float64)
                limit = b + sign * np.where(np.isfinite(b), BOX_TOLERANCE * (1 + np.abs(b)), 0.0)
                ok &= flat >= limit if sign < 0 else flat <= limit
            expected = f"{what} of {space}: finite and within its bounds"
    good = np.asarray(ok.all(axis=1))
    if absorbing is not None:  # the zero action of an absorbing step's padding
        good |= absorbing & (flat == 0).all(axis=1)
    _first_bad(good, array, path, where, expected)


def _first_bad(good: np.ndarray, array: np.ndarray, path: str, where: str, expected: str) -> None:
    """Name the first step ``t`` where ``good[t]`` is false, with its value and how many are bad."""
    if good.all():
        return
    t, bad = int(np.argmin(good)), int((~good).sum())
    more = f" (the first of {bad} bad steps)" if bad > 1 else ""
    _fail(where, f"{path}[{t}]{more}", array[t].tolist(), expected)
