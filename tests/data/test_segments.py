import numpy as np
import pytest

from rlhf_gym.data.segments import cut, sample_segments, valid_starts
from rlhf_gym.types import Trajectory


def traj(n, terminated, absorbing=None):
    return Trajectory(
        np.arange(n, dtype=float)[:, None],
        np.zeros(n, dtype=np.int64),
        np.ones(n),
        np.zeros(n, bool) if absorbing is None else np.asarray(absorbing),
        terminated,
        np.array([-1.0]),
    )


def test_segment_past_a_terminal_state_is_padded_with_the_absorbing_state():
    s = cut(traj(3, True), 2, 4, absorbing_reward=0.0)
    assert s.obs[:, 0].tolist() == [2.0, -1.0, -1.0, -1.0]
    assert s.true_rewards.tolist() == [1.0, 0.0, 0.0, 0.0]
    assert s.absorbing.tolist() == [False, True, True, True]
    assert s.actions.shape == (4,)


def test_unfinished_trajectory_is_never_padded():
    with pytest.raises(ValueError, match="unfinished"):
        cut(traj(3, False), 1, 4)
    assert valid_starts(traj(3, False), 4) == 0
    assert valid_starts(traj(10, False), 4) == 7


def test_all_absorbing_segments_are_never_drawn():
    # fixed-horizon style: 3 live steps, then 7 absorbing steps
    t = traj(10, False, [False] * 3 + [True] * 7)
    assert valid_starts(t, 4) == 3
    segs = sample_segments([t], 4, 200, np.random.default_rng(0))
    assert all((~s.absorbing).any() for s in segs)
    assert {int(s.obs[0, 0]) for s in segs} == {0, 1, 2}


def test_sampling_covers_every_valid_start_uniformly():
    trajs = [traj(5, True), traj(20, True)]
    segs = sample_segments(trajs, 3, 5000, np.random.default_rng(1))
    from_long = sum(s.obs.shape[0] == 3 and s.obs[0, 0] >= 5 for s in segs)
    # 15 of the 25 valid starts are in the long trajectory beyond index 4
    assert abs(from_long / 5000 - 15 / 25) < 0.03


def test_no_segment_fits_is_a_clear_error():
    with pytest.raises(ValueError, match="no segment of 50 steps"):
        sample_segments([traj(3, False)], 50, 1, np.random.default_rng(0))
