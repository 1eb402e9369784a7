"""The rliable statistics against closed forms and small worked examples."""

from __future__ import annotations

import numpy as np
import pytest

from rlhf_gym.experiments.stats import Estimate, iqm, iqm_ci, performance_profile, probability_of_improvement


def test_iqm_is_the_mean_of_the_middle_half():
    assert iqm(np.arange(1, 9)) == 4.5  # the mean of 3, 4, 5, 6
    assert iqm([1, 2, 3, 4, 5, 6, 7, 1000]) == 4.5  # an outlying run does not move it
    assert iqm([[8, 1, 7, 2], [3, 6, 4, 5]]) == 4.5  # several tasks: their runs pooled
    assert iqm([5.0, np.nan, 3.0]) == 4.0  # NaN (no normalised return) left out
    assert np.isnan(iqm([]))


def test_probability_of_improvement_in_closed_form():
    assert probability_of_improvement([1, 2, 3], [1, 2, 3]).value == 0.5  # identical samples
    disjoint = probability_of_improvement([4, 5, 6], [1, 2, 3])
    assert (disjoint.value, disjoint.low, disjoint.high) == (1.0, 1.0, 1.0)
    assert probability_of_improvement([1, 2, 3], [4, 5, 6]).value == 0.0
    # 2 wins, 1 tie, 1 loss over the 4 pairs: (2 + 0.5) / 4
    assert probability_of_improvement([1.0, 3.0], [1.0, 2.0]).value == 0.625
    # averaged over tasks, each task weighing the same whatever its runs: (1 + 0) / 2
    assert probability_of_improvement([[5, 6, 7, 8], [0]], [[1], [1, 2]]).value == 0.5
    with pytest.raises(ValueError, match="x has 2 task"):
        probability_of_improvement([[1, 2], [3, 4]], [1, 2])


def test_a_ci_contains_its_estimate_and_narrows_with_more_runs():
    few = np.linspace(0.2, 1.0, 8)
    many = np.tile(few, 16)  # the same spread of scores, 16 times the runs
    for scores in (few, many):
        e = iqm_ci(scores, seed=1)
        assert e.low <= e.value <= e.high and e.value == pytest.approx(0.6)
    # the CI's width shrinks about as 1 / sqrt(runs): here by about 4
    assert iqm_ci(many).high - iqm_ci(many).low < (iqm_ci(few).high - iqm_ci(few).low) / 2
    p = probability_of_improvement(many + 0.5, many)
    assert p.low <= p.value <= p.high and p.low > 0.5  # a clear improvement
    wide = iqm_ci(few, confidence=0.99)
    narrow = iqm_ci(few, confidence=0.5)
    assert wide.low <= narrow.low <= narrow.high <= wide.high


def test_results_are_reproducible_for_a_fixed_seed():
    scores = [np.array([0.1, 0.4, 0.5, 0.9, 1.0]), np.array([0.3, 0.2, 0.8])]
    assert iqm_ci(scores, seed=3) == iqm_ci(scores, seed=3)
    assert iqm_ci(scores, seed=3) != iqm_ci(scores, seed=4)  # the seed is what fixes it
    a = performance_profile(scores, [0.25, 0.5], seed=3)
    assert a.equals(performance_profile(scores, [0.25, 0.5], seed=3))


def test_the_bootstrap_is_stratified_by_task():
    # Task A's 3 runs score 1, task B's 5 runs score 0. Pooled, the IQM of 0,0,0,0,0,1,1,1 is
    # the mean of 0,0,0,1 = 0.25. Resampled within each task, every resample holds exactly
    # three 1s and five 0s, so the interval is the point: the task with fewer runs keeps its
    # weight. A pooled (unstratified) bootstrap would draw other mixes.
    stratified = iqm_ci([np.ones(3), np.zeros(5)], seed=0)
    assert (stratified.value, stratified.low, stratified.high) == (0.25, 0.25, 0.25)
    pooled = iqm_ci(np.r_[np.ones(3), np.zeros(5)], seed=0)
    assert pooled.value == 0.25 and pooled.high - pooled.low > 0.2
    # a task of a single run keeps it in every resample
    one = iqm_ci([np.array([0.0, 1.0, 0.0, 1.0]), np.array([0.5])], seed=0)
    assert one.low <= one.value <= one.high


def test_too_few_runs_give_no_interval():
    e = iqm_ci([0.7])
    assert e.value == 0.7 and np.isnan(e.low) and np.isnan(e.high)
    assert str(e) == "0.7 [-, -]" and e.overlaps(Estimate(0.1, 0.0, 0.2))  # unknown: no ranking
    assert np.isnan(iqm_ci([]).value)
    with pytest.raises(ValueError, match="confidence must be between 0 and 1, got 95"):
        iqm_ci([1.0, 2.0], confidence=95)


def test_performance_profile_in_closed_form():
    scores = [np.array([0.0, 0.5, 1.0, 1.0]), np.array([0.2, 0.9])]
    p = performance_profile(scores, [-0.1, 0.1, 0.5, 0.95, 1.0])
    # fraction of the 6 pooled runs strictly above each tau
    assert p["fraction"].tolist() == pytest.approx([1.0, 5 / 6, 3 / 6, 2 / 6, 0.0])
    assert (p["low"] <= p["fraction"]).all() and (p["fraction"] <= p["high"]).all()
    assert p.loc[0, "low"] == p.loc[0, "high"] == 1.0  # every resample: all runs above -0.1
    assert list(p.columns) == ["tau", "fraction", "low", "high"]
