"""Statistics that rank arms honestly: the rliable protocol of Agarwal et al. 2021 ("Deep RL at
the edge of the statistical precipice"), built on ``scipy.stats.bootstrap``.

- ``iqm``: the interquartile mean, the mean of the middle half of the runs (pooled over tasks);
- ``iqm_ci``: its stratified bootstrap confidence interval;
- ``probability_of_improvement``: P(X > Y) + P(X = Y) / 2 for a run of arm X against a run of
  arm Y, averaged over tasks, with its stratified bootstrap confidence interval;
- ``performance_profile``: the fraction of runs whose score exceeds each threshold, with
  bootstrap bands.

Scores come as one array of runs per task. Stratified means that every bootstrap resample draws
runs with replacement within each task, as many as the task has, so a task with few runs keeps
its weight; ``scipy.stats.bootstrap`` does exactly that when each task's runs are a separate
sample (``paired=False``). Confidence intervals use the percentile method, as rliable does, and a
fixed seed, so a table redraws identically. NaN scores (a run without a normalised return) are
left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

N_RESAMPLES = 2000  # rliable's default is 2000 too
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Estimate:
    """A point estimate and its confidence interval (NaN when it cannot be had: fewer than two
    runs).

    Example:
        >>> a, b = Estimate(0.8, 0.7, 0.9), Estimate(0.5, 0.4, 0.75)
        >>> str(a), a.overlaps(b), a.overlaps(Estimate(0.5, 0.4, 0.6))
        ('0.8 [0.7, 0.9]', True, False)
    """

    value: float
    low: float
    high: float

    def overlaps(self, other: Estimate) -> bool:
        """Whether the two intervals share a point; True when either is unknown (NaN), since no
        ranking can be claimed then."""
        if any(np.isnan([self.low, self.high, other.low, other.high])):
            return True
        return self.low <= other.high and other.low <= self.high

    def __str__(self) -> str:
        return f"{_fmt(self.value)} [{_fmt(self.low)}, {_fmt(self.high)}]"


def _fmt(x: float) -> str:
    return "-" if np.isnan(x) else f"{x:.3g}"


def _tasks(scores: Any) -> list[np.ndarray]:
    """Scores as one 1-D float array per task, NaN left out: a flat array of runs is one task, a
    sequence of arrays is one per task (of any lengths)."""
    if isinstance(scores, np.ndarray) and scores.ndim <= 1:
        tasks = [scores]
    elif isinstance(scores, (Sequence, np.ndarray)) and len(scores) and np.ndim(scores[0]) > 0:
        tasks = list(scores)
    else:
        tasks = [np.asarray(scores)]
    out = []
    for t in tasks:
        a = np.asarray(t, dtype=float)
        if a.ndim != 1:
            raise ValueError(f"scores of a task must be a 1-D array of runs, got shape {a.shape}")
        out.append(a[~np.isnan(a)])
    return out


def _pooled(samples: Sequence[np.ndarray], axis: int = -1) -> np.ndarray:
    """The samples' runs side by side along the last axis; their leading (resample) axes
    broadcast, so that a task of one run, kept as it is, joins the resampled ones."""
    assert axis in (-1, samples[0].ndim - 1), "scipy.stats.bootstrap passes the runs' axis last"
    batch = np.broadcast_shapes(*(s.shape[:-1] for s in samples))
    return np.concatenate([np.broadcast_to(s, batch + s.shape[-1:]) for s in samples], axis=-1)


def _pooled_iqm(*tasks: np.ndarray, axis: int = -1) -> Any:
    from scipy.stats import trim_mean

    return trim_mean(_pooled(tasks, axis), 0.25, axis=-1)


def iqm(scores: Any) -> float:
    """The interquartile mean: the mean of the runs left after dropping the lowest and highest
    quarter (``scipy.stats.trim_mean(x, 0.25)``). Robust to outlying runs like the median, yet
    uses half the runs, so it needs fewer of them for the same precision. Several tasks' runs
    are pooled; NaN scores are left out.

    Args:
        scores: the runs' scores, one array (one task) or a sequence of arrays (one per task).

    Example:
        >>> iqm([1, 2, 3, 4, 5, 6, 7, 8])  # the mean of 3, 4, 5, 6
        4.5
        >>> iqm([[1, 2, 3, 4], [5, 6, 7, 8]])  # two tasks, pooled
        4.5
    """
    tasks = [t for t in _tasks(scores) if len(t)]
    return float(_pooled_iqm(*tasks)) if tasks else float("nan")


def _bootstrap(
    statistic: Any, samples: list[np.ndarray], confidence: float, n_resamples: int, seed: int
) -> tuple[Any, Any]:
    """``scipy.stats.bootstrap`` over ``samples`` resampled independently (one stratum each), by
    percentiles. A sample of one run is kept as it is in every resample (the only resample it
    has); the interval is NaN when no sample has two runs."""
    from scipy.stats import bootstrap

    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    varied = [i for i, s in enumerate(samples) if len(s) > 1]
    if not varied:
        point = statistic(*samples, axis=-1)
        return np.full_like(point, np.nan, dtype=float), np.full_like(point, np.nan, dtype=float)

    def stat(*resampled: np.ndarray, axis: int = -1) -> Any:
        full = list(samples)
        for i, r in zip(varied, resampled):
            full[i] = r
        return statistic(*full, axis=axis)

    res = bootstrap(
        [samples[i] for i in varied],
        stat,
        n_resamples=n_resamples,
        vectorized=True,
        paired=False,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return res.confidence_interval.low, res.confidence_interval.high


def iqm_ci(
    scores_by_task: Any, confidence: float = CONFIDENCE, n_resamples: int = N_RESAMPLES, seed: int = 0
) -> Estimate:
    """The IQM of all runs with its stratified bootstrap confidence interval: runs are resampled
    within each task (see the module docstring).

    Args:
        scores_by_task: one array of runs per task (or one array: a single task).
        confidence: the interval's level.
        n_resamples: bootstrap resamples.
        seed: the resampling's seed (the same seed draws the same interval).

    Example:
        >>> e = iqm_ci([[0.1, 0.5, 0.9, 1.0], [0.2, 0.4]], seed=0)
        >>> e.low <= e.value <= e.high, e == iqm_ci([[0.1, 0.5, 0.9, 1.0], [0.2, 0.4]], seed=0)
        (True, True)
    """
    tasks = [t for t in _tasks(scores_by_task) if len(t)]
    if not tasks:
        return Estimate(float("nan"), float("nan"), float("nan"))
    low, high = _bootstrap(_pooled_iqm, tasks, confidence, n_resamples, seed)
    return Estimate(float(_pooled_iqm(*tasks)), float(low), float(high))


def _improvement(*samples: np.ndarray, axis: int = -1) -> Any:
    """The mean over tasks of P(X > Y) + P(X = Y) / 2; ``samples`` are X's tasks, then Y's."""
    half = len(samples) // 2
    per_task = []
    for x, y in zip(samples[:half], samples[half:]):
        x, y = _pooled([x], axis)[..., :, None], _pooled([y], axis)[..., None, :]
        per_task.append((x > y).mean(axis=(-2, -1)) + 0.5 * (x == y).mean(axis=(-2, -1)))
    return np.mean(np.broadcast_arrays(*per_task), axis=0)


def probability_of_improvement(
    x: Any, y: Any, confidence: float = CONFIDENCE, n_resamples: int = N_RESAMPLES, seed: int = 0
) -> Estimate:
    """The probability that a run of arm X scores higher than a run of arm Y on the same task
    (ties count a half: the Mann-Whitney U statistic over all pairs of runs), averaged over tasks,
    with a stratified bootstrap confidence interval (X's and Y's runs resampled within each task).
    X improves on Y when the interval's lower end is above 0.5.

    Args:
        x: X's runs, one array per task (or one array: a single task).
        y: Y's runs, on the same tasks in the same order.
        confidence: the interval's level.
        n_resamples: bootstrap resamples.
        seed: the resampling's seed.

    Example:
        >>> probability_of_improvement([1, 2, 3], [1, 2, 3]).value  # identical: a coin toss
        0.5
        >>> probability_of_improvement([4, 5, 6], [1, 2, 3])  # every run of X beats every run of Y
        Estimate(value=1.0, low=1.0, high=1.0)
    """
    xs, ys = _tasks(x), _tasks(y)
    if len(xs) != len(ys):
        raise ValueError(f"x has {len(xs)} task(s) and y has {len(ys)}; expected the same tasks")
    kept = [(a, b) for a, b in zip(xs, ys) if len(a) and len(b)]
    if not kept:
        return Estimate(float("nan"), float("nan"), float("nan"))
    samples = [a for a, _ in kept] + [b for _, b in kept]
    low, high = _bootstrap(_improvement, samples, confidence, n_resamples, seed)
    return Estimate(float(_improvement(*samples)), float(low), float(high))


def performance_profile(
    scores: Any,
    taus: Any,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
) -> pd.DataFrame:
    """The fraction of runs (pooled over tasks) whose score exceeds each threshold ``tau``, with
    stratified bootstrap bands: rliable's score distribution. One arm's curve lies above another's
    where it is better at that level of score.

    Args:
        scores: the runs' normalised scores, one array per task (or one array).
        taus: the thresholds.
        confidence: the bands' level.
        n_resamples: bootstrap resamples.
        seed: the resampling's seed.

    Returns:
        A table with columns ``tau``, ``fraction``, ``low`` and ``high``, one row per threshold.

    Example:
        >>> performance_profile([0.0, 0.5, 1.0, 1.0], [0.25, 0.75])["fraction"].tolist()
        [0.75, 0.5]
    """
    import pandas as pd

    thresholds = np.asarray(taus, dtype=float).ravel()
    tasks = [t for t in _tasks(scores) if len(t)]
    if not tasks:
        nan = np.full(len(thresholds), np.nan)
        return pd.DataFrame({"tau": thresholds, "fraction": nan, "low": nan, "high": nan})

    def fraction(*samples: np.ndarray, axis: int = -1) -> Any:
        pooled = _pooled(samples, axis)
        return (pooled[None] > thresholds.reshape(-1, *[1] * pooled.ndim)).mean(axis=-1)

    low, high = _bootstrap(fraction, tasks, confidence, n_resamples, seed)
    return pd.DataFrame({"tau": thresholds, "fraction": fraction(*tasks), "low": low, "high": high})
