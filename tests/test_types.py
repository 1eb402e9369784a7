import numpy as np

from rlhf_gym.types import Comparison, Query, Trajectory


def test_trajectory_return_and_length():
    t = Trajectory(
        np.zeros((4, 2)), np.zeros(4), np.array([1.0, 2.0, 0.5, 0.0]), np.zeros(4, bool), False, np.zeros(2)
    )
    assert len(t) == 4
    assert t.true_return == 3.5


def test_comparison_tie_flag(segment):
    q = Query(segment([1, 1]), segment([1, 1]))
    assert Comparison(q, 0.5).is_tie
    assert not Comparison(q, 1.0).is_tie
