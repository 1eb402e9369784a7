"""Each feedback type alone teaches the reward model the known reward of Pendulum."""

import numpy as np
import pytest

from rlhf_gym.config import RewardModelConfig
from rlhf_gym.data.segments import sample_segments
from rlhf_gym.feedback.effort import Budget, EffortModel
from rlhf_gym.feedback.synthetic import SIGNAL_DELAY, SyntheticTeacher, run, tamer_credit
from rlhf_gym.feedback.teachers import Teacher
from rlhf_gym.reward.model import RewardModel
from rlhf_gym.tasks.registry import get_expert, get_task
from rlhf_gym.teacher_params import TeacherParams
from rlhf_gym.types import Correction, Demonstration, EStop, Query, Rating, Signal

H = 20


@pytest.fixture(scope="module")
def pendulum():
    """Pendulum (true reward -(theta^2 + 0.1 thetadot^2 + 0.001 u^2)), a pool of episodes of
    a half-random, half-expert policy, and a synthetic teacher."""
    task = get_task("Pendulum-v1")
    expert = get_expert(task)
    env = task.make("fixed")
    rng = np.random.default_rng(0)
    env.action_space.seed(0)

    def mixed(obs):
        return expert(obs) if rng.random() < 0.5 else env.action_space.sample()

    pool = []
    for k in range(30):
        obs, _ = env.reset(seed=k)
        pool.append(run(env, mixed, obs, task.max_episode_steps)[0])
    teacher = SyntheticTeacher(task, "fixed", TeacherParams(), EffortModel(fps=30), H, expert, levels=5)
    return task, pool, teacher, mixed


def spearman(a, b):
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def fitted_correlation(task, pool, records):
    env = task.make("fixed")
    rm = RewardModel(env.observation_space, env.action_space, RewardModelConfig(use_actions=False), seed=0)
    rm.fit(records)
    test = sample_segments(pool, H, 40, np.random.default_rng(9))
    obs = np.concatenate([s.obs for s in test])
    true = np.concatenate([s.true_rewards for s in test])
    learned = rm(obs, np.zeros((len(obs), 1), np.float32), np.zeros(len(obs), bool))
    return spearman(learned, true)


KINDS = ["comparisons", "corrections", "demonstrations", "ratings", "tamer", "estops"]


@pytest.mark.parametrize("kind", KINDS)
def test_each_feedback_type_alone_ranks_states_by_the_true_reward(pendulum, kind):
    task, pool, teacher, policy = pendulum
    rng = np.random.default_rng(1)
    budget = Budget(labels=100)
    if kind == "comparisons":
        segs = sample_segments(pool, H, 200, rng)
        records = Teacher.preset("oracle").label([Query(a, b) for a, b in zip(segs[::2], segs[1::2])], rng)
    elif kind == "corrections":
        records = [r for r, _ in teacher.corrections(policy, budget, rng)]
    elif kind == "demonstrations":
        records = [r for r, _ in teacher.demonstrations(pool, Budget(labels=3), rng)]
    elif kind == "ratings":
        records = [r for r, _ in teacher.ratings(pool, budget, rng)]
    elif kind == "tamer":
        records = [r for r, _ in teacher.signals(pool, Budget(labels=300), rng)]
    else:
        records = [r for r, _ in teacher.estops(pool, budget, rng)]
    assert records
    # TAMER's sparse signals rank states least well: 0.46 on this pool since the ordinal thresholds
    # start centred on zero (issue 21; 0.50 with the off-centre start before)
    assert fitted_correlation(task, pool, records) > (0.4 if kind == "tamer" else 0.5)


def test_records_have_the_promised_shapes(pendulum):
    _, pool, teacher, policy = pendulum
    rng = np.random.default_rng(2)
    (c, cost), *_ = teacher.corrections(policy, Budget(labels=1), rng)
    assert isinstance(c, Correction) and len(c.original) == len(c.corrected) == H
    assert c.corrected.true_return > c.original.true_return  # a correction improves on the agent
    assert cost >= EffortModel(fps=30).correction(0, H)
    (d, _), *_ = teacher.demonstrations(pool, Budget(labels=1), rng)
    assert isinstance(d, Demonstration) and len(d.demo) == len(d.against) == 200 // H
    (r, _), *_ = teacher.ratings(pool, Budget(labels=1), rng)
    assert isinstance(r, Rating) and 0 <= r.level < 5
    (e, _), *_ = teacher.estops(pool, Budget(labels=1), rng)
    assert isinstance(e, EStop) and e.before.true_return > e.after.true_return
    signals = [s for s, _ in teacher.signals(pool, Budget(labels=30), rng)]
    assert all(isinstance(s, Signal) and len(s.credit) == len(s.steps) for s in signals)
    assert {s.positive for s in signals} == {True, False}


def test_a_seconds_budget_is_never_overspent(pendulum):
    _, pool, teacher, policy = pendulum
    rng = np.random.default_rng(3)
    for collect in (
        lambda b: teacher.corrections(policy, b, rng),
        lambda b: teacher.demonstrations(pool, b, rng),
        lambda b: teacher.ratings(pool, b, rng),
        lambda b: teacher.signals(pool, b, rng),
        lambda b: teacher.estops(pool, b, rng),
    ):
        budget = Budget(seconds=40.0)
        items = collect(budget)
        assert budget.spent <= 40.0 + 1e-9
        assert sum(cost for _, cost in items) <= budget.spent + 1e-9


def test_lazy_corrector_corrects_less():
    task = get_task("Pendulum-v1")
    expert = get_expert(task)
    env = task.make("fixed")
    env.action_space.seed(0)
    policy = lambda obs: env.action_space.sample()  # noqa: E731
    counts = []
    for lazy in (0.0, 0.5):
        params = TeacherParams(eps_lazy=lazy)
        teacher = SyntheticTeacher(task, "fixed", params, EffortModel(fps=30), H, expert)
        counts.append(len(teacher.corrections(policy, Budget(seconds=120.0), np.random.default_rng(0))))
    assert counts[0] > counts[1]


def test_deep_tamer_credit_is_uniform_over_the_delay_window():
    rate = 10.0
    credit = tamer_credit(60, rate)  # 6 s of steps before the press
    assert credit.sum() == pytest.approx(1.0)
    assert credit[-2:].sum() == 0.0  # the last 0.2 s: too soon for a human to react to
    assert credit[:20].sum() == pytest.approx(0.0, abs=1e-6)  # more than 4 s ago
    assert np.allclose(credit[credit > 1e-6], 1 / (rate * (SIGNAL_DELAY[1] - SIGNAL_DELAY[0])))


def test_natural_horizon_yardstick_counts_the_absorbing_rest_of_the_horizon():
    task = get_task("CartPole-v1")
    expert = get_expert(task)
    teacher = SyntheticTeacher(task, "natural", TeacherParams(), EffortModel(fps=50), 30, expert)
    assert teacher.reference.expert == pytest.approx(1.0) and teacher.reference.random < 0.2
    env = task.make("natural")
    env.action_space.seed(0)
    pool = [run(env, lambda _: env.action_space.sample(), env.reset(seed=k)[0], 500)[0] for k in range(20)]
    pool.append(run(env, expert, env.reset(seed=99)[0], 500)[0])
    levels = {r.level for r, _ in teacher.ratings(pool, Budget(labels=40), np.random.default_rng(0))}
    assert len(levels) > 1
    demos = teacher.demonstrations(pool, Budget(labels=1), np.random.default_rng(0))  # 30 does not divide 500
    assert len(demos[0][0].demo) == 16


def test_an_expert_no_better_than_random_is_refused():
    task = get_task("CartPole-v1")
    with pytest.raises(ValueError, match="no more than a random policy"):
        SyntheticTeacher(task, "fixed", TeacherParams(), EffortModel(fps=50), 50, lambda obs: 0)
    with pytest.raises(ValueError, match="longer than an episode"):
        SyntheticTeacher(task, "fixed", TeacherParams(), EffortModel(fps=50), 600, get_expert(task))


def test_a_correction_costs_the_watching_before_the_takeover_and_a_label_budget_counts_watching(pendulum):
    _, pool, teacher, policy = pendulum
    budget = Budget(labels=1)
    (_, cost), *_ = teacher.corrections(policy, budget, np.random.default_rng(4))
    effort = EffortModel(fps=30)
    watched = round((cost - effort.correction(0, H)) * 30)
    assert watched % H == 0  # whole windows watched before the one corrected
    signals = Budget(labels=5)
    teacher.signals(pool, signals, np.random.default_rng(0))
    assert signals.spent > 0  # watching time is reported under a label budget too
