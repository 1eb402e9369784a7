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


def test_goal_segments_hold_the_last_live_step_and_the_absorbing_state_after_it():
    from rlhf_gym.data.segments import reaches_end, sample_goal_segments

    fixed = traj(10, False, [False] * 6 + [True] * 4)  # fixed horizon: reached the end at step 6
    natural = traj(4, True)  # natural horizon: the episode stopped there
    unfinished = traj(8, False)
    assert [reaches_end(t) for t in (fixed, natural, unfinished)] == [6, 4, None]
    assert reaches_end(traj(3, False, [True] * 3)) is None  # all absorbing: nothing reached here
    segs = sample_goal_segments([unfinished, fixed, natural], 3, 300, np.random.default_rng(0))
    starts = {(len(s), s.obs[0, 0], tuple(s.absorbing.tolist())) for s in segs}
    # fixed: starts 4, 5; natural: starts 2, 3 (padded); never the unfinished trajectory
    assert {st[1] for st in starts} == {4.0, 5.0, 2.0, 3.0}
    assert all(not s.absorbing[0] and s.absorbing[-1] for s in segs)
    assert sample_goal_segments([unfinished], 3, 5, np.random.default_rng(0)) == []
    assert sample_goal_segments([fixed], 3, 0, np.random.default_rng(0)) == []


def test_a_reported_success_is_a_goal_too_and_segments_stay_within_an_unfinished_trajectory():
    from rlhf_gym.data.rollout import TrajectoryRecorder
    from rlhf_gym.data.segments import reaches_end, sample_goal_segments

    rec = TrajectoryRecorder(n_envs=1)
    for t in range(12):  # the step from state 5 reports success: state 6 is the first at the goal
        rec.add(
            np.full((1, 1), t),
            np.zeros(1, int),
            np.ones(1),
            np.zeros(1, bool),
            np.zeros(1, bool),
            [{"is_success": t >= 5}],
        )
    (placed,) = rec.pool()
    assert placed.goal == 6 and reaches_end(placed) == 6
    segs = sample_goal_segments([placed], 4, 200, np.random.default_rng(0))
    assert {s.obs[0, 0] for s in segs} == {3.0, 4.0, 5.0}  # each holds states 5 and 6
    # near the end of an unfinished trajectory, only segments that fit in it
    segs = sample_goal_segments([placed], 8, 200, np.random.default_rng(0))
    assert {s.obs[0, 0] for s in segs} == {0.0, 1.0, 2.0, 3.0, 4.0}
