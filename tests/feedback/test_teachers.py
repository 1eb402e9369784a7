import math

import numpy as np
import pytest

from rlhf_gym.feedback.teachers import RegretTeacher, Teacher
from rlhf_gym.teacher_params import PRESETS, TeacherParams
from rlhf_gym.types import Query, Segment


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


def test_presets_are_bpref_parameters():
    assert set(PRESETS) == {"oracle", "stoch", "mistake", "skip", "equal", "myopic", "lazy"}
    assert PRESETS["stoch"].beta == 1.0 and math.isinf(PRESETS["oracle"].beta)
    assert PRESETS["mistake"].eps_mistake == 0.1
    assert PRESETS["skip"].eps_skip == 0.1
    assert PRESETS["equal"].eps_equal == 0.1
    assert PRESETS["myopic"].gamma == 0.9
    assert PRESETS["lazy"].eps_lazy == 0.2  # ours, for the other feedback types


def test_oracle_prefers_larger_return_and_ties_at_half(segment):
    t = Teacher.preset("oracle")
    assert t.probability(Query(segment([1, 2]), segment([1, 1]))) == 1.0
    assert t.probability(Query(segment([0, 0]), segment([1, 0]))) == 0.0
    c = t.answer(Query(segment([1, 1]), segment([2, 0])), np.random.default_rng(0))
    assert c is not None and c.label == 0.5


def test_stochastic_teacher_closed_form_and_sampling(segment):
    t = Teacher.preset("stoch", beta=0.5)
    q = Query(segment([1.0, 2.0]), segment([0.5, 0.5]))
    assert t.probability(q) == pytest.approx(sigmoid(0.5 * (3.0 - 1.0)))
    rng = np.random.default_rng(0)
    labels = [t.answer(q, rng).label for _ in range(4000)]
    assert np.mean(labels) == pytest.approx(sigmoid(1.0), abs=0.02)


def test_myopic_weights_recent_steps_more(segment):
    t = Teacher.preset("myopic")
    # step t of H weighs 0.9 ** (H - 1 - t): early reward [1, 0, 0] -> 0.81; late [0, 0, 1] -> 1
    assert t.weighted_return(segment([1, 0, 0])) == pytest.approx(0.81)
    assert t.probability(Query(segment([0, 0, 0.9]), segment([1, 0, 0]))) == 1.0
    stoch_myopic = Teacher(TeacherParams(beta=2.0, gamma=0.5))
    q = Query(segment([0, 1]), segment([1, 0]))
    assert stoch_myopic.probability(q) == pytest.approx(sigmoid(2.0 * (1.0 - 0.5)))


def test_mistake_teacher_flips_ten_percent(segment):
    t = Teacher.preset("mistake")
    q = Query(segment([2]), segment([1]))
    rng = np.random.default_rng(0)
    labels = np.array([t.answer(q, rng).label for _ in range(5000)])
    assert np.mean(labels == 0.0) == pytest.approx(0.1, abs=0.015)


def test_adaptive_thresholds_skip_and_equal(segment):
    skip, equal = Teacher.preset("skip"), Teacher.preset("equal")
    for t in (skip, equal):
        # B-Pref margin: mean recent return * H / T = 100 * 10 / 100 = 10
        t.update_thresholds([50.0, 150.0], segment_length=10, max_episode_steps=100)
        assert t.margin == pytest.approx(10.0)
    assert skip.skip_threshold == pytest.approx(1.0) and equal.equal_threshold == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    assert skip.answer(Query(segment([0.5]), segment([0.9])), rng) is None
    assert skip.answer(Query(segment([0.5]), segment([1.5])), rng).label == 0.0
    assert equal.answer(Query(segment([3.0]), segment([3.9])), rng).label == 0.5
    assert equal.answer(Query(segment([3.0]), segment([4.5])), rng).label == 0.0


def test_label_drops_skips(segment):
    t = Teacher.preset("skip")
    t.update_thresholds([100.0], 1, 1)
    qs = [Query(segment([0.0]), segment([1.0])), Query(segment([50.0]), segment([1.0]))]
    assert [c.label for c in t.label(qs, np.random.default_rng(0))] == [1.0]


@pytest.mark.parametrize("bad", [{"beta": 0.0}, {"gamma": 1.5}, {"eps_mistake": -0.1}])
def test_bad_parameters_are_rejected(bad):
    with pytest.raises(ValueError):
        TeacherParams(**bad)


def test_unknown_preset_names_the_choices():
    with pytest.raises(ValueError, match="oracle, stoch"):
        Teacher.preset("sage")


def test_thresholds_on_negative_returns(segment):
    # Pendulum-like: recent episodes return -800 over 200 steps, segments of 50: margin m = -200
    skip, equal = Teacher.preset("skip"), Teacher.preset("equal")
    rng = np.random.default_rng(0)
    # before any episode has finished, nothing is skipped and nothing is called equal
    assert skip.answer(Query(segment([-1.0]), segment([-5.0])), rng) is not None
    assert equal.answer(Query(segment([-10.0]), segment([-10.5])), rng).label == 1.0
    for t in (skip, equal):
        t.update_thresholds([-700.0, -900.0], segment_length=50, max_episode_steps=200)
    assert skip.margin == pytest.approx(-200.0)
    # skip when both segments are far worse than a typical one: m - (1 - 0.1)|m| = -380
    assert skip.skip_threshold == pytest.approx(-380.0)
    assert skip.answer(Query(segment([-390.0]), segment([-400.0])), rng) is None
    assert skip.answer(Query(segment([-100.0]), segment([-400.0])), rng).label == 1.0
    # equal when closer than 0.1 |m| = 20
    assert equal.answer(Query(segment([-100.0]), segment([-115.0])), rng).label == 0.5
    assert equal.answer(Query(segment([-100.0]), segment([-125.0])), rng).label == 1.0


def _seg(obs, rewards, absorbing=None):
    n = len(obs)
    absorbing = np.zeros(n, bool) if absorbing is None else np.array(absorbing)
    return Segment(np.array(obs, float)[:, None], np.zeros(n), np.array(rewards, float), absorbing)


def test_regret_teacher_scores_discounted_return_plus_end_value_minus_start_value():
    t = RegretTeacher(TeacherParams(), value=lambda obs: 10 * obs[:, 0], discount=0.5)
    # r0 + 0.5 r1 + 0.25 V(s2) - V(s0) = 1 + 1 + 0.25 * 30 - 10
    assert t.score(_seg([1, 2, 3], [1, 2, 99])) == pytest.approx(-0.5)


def test_regret_teacher_credits_actions_not_the_start_state():
    oracle = Teacher.preset("oracle")
    regret = RegretTeacher(TeacherParams(), value=lambda obs: obs[:, 0], discount=1.0)
    lucky = _seg([9, 8, 7], [1, 1, 1])  # a good start, let go down
    skilled = _seg([1, 2, 3], [0, 0, 0])  # a bad start, improved
    q = Query(lucky, skilled)
    assert oracle.probability(q) == 1.0
    assert regret.probability(q) == 0.0
    assert regret.answer(q, np.random.default_rng(0)).label == 0.0


def test_regret_teacher_values_absorbing_steps_by_the_absorbing_value():
    t = RegretTeacher(TeacherParams(), value=lambda obs: obs[:, 0], discount=1.0, absorbing_value=-5.0)
    fell = _seg([4, 100, 100], [1, 0, 0], absorbing=[False, True, True])  # 100: the terminal state
    assert t.score(fell) == pytest.approx(1 + 0 - 5 - 4)


def test_regret_teacher_keeps_bpref_noise_and_rejects_its_own_gamma():
    t = RegretTeacher(TeacherParams(beta=1.0), value=lambda obs: obs[:, 0], discount=1.0)
    q = Query(_seg([0, 2], [0, 0]), _seg([0, 1], [0, 0]))
    assert t.probability(q) == pytest.approx(sigmoid(1.0))
    with pytest.raises(ValueError, match="gamma must be 1"):
        RegretTeacher(TeacherParams(gamma=0.9), value=lambda obs: obs[:, 0], discount=0.99)
    with pytest.raises(ValueError, match="discount"):
        RegretTeacher(TeacherParams(), value=lambda obs: obs[:, 0], discount=0.0)


@pytest.mark.parametrize("share, at_least", [(0.0, 0), (0.5, 5)])
def test_goal_queries_ask_a_share_of_pairs_about_segments_that_reach_the_end(share, at_least):
    from rlhf_gym.config import RunConfig
    from rlhf_gym.feedback.collect import FeedbackCollector
    from rlhf_gym.feedback.effort import Budget, EffortModel
    from rlhf_gym.tasks.registry import get_task
    from rlhf_gym.types import Trajectory

    def traj(reached: bool) -> Trajectory:
        absorbing = np.arange(200) >= 150 if reached else np.zeros(200, bool)
        return Trajectory(
            np.zeros((200, 4), np.float32),
            np.zeros(200, np.int64),
            np.ones(200),
            absorbing,
            False,
            np.zeros(4),
        )

    pool = [traj(i == 7) for i in range(40)]  # one episode of 40 reached the end
    cfg = RunConfig(segment_length=10, goal_queries=share, query_strategy="uniform")
    c = FeedbackCollector(get_task("CartPole-v1"), cfg, Teacher.preset("oracle"), EffortModel(fps=50))
    items = c._compare(pool, [], Budget(labels=10), None, np.random.default_rng(0), None)
    assert len(items) == 10
    reaching = sum(bool(r.query.first.absorbing.any() or r.query.second.absorbing.any()) for r, _ in items)
    assert reaching >= at_least
    if share == 0.0:
        assert reaching <= 2  # by chance alone: about 1 in 40 segments
