import numpy as np
import pytest

from rlhf_gym.reward.novelty import StateEntropy


def test_the_reward_is_the_distance_to_the_kth_nearest_earlier_state_in_standard_units():
    se = StateEntropy(k=2, capacity=100)
    earlier = np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [0.0, 10.0]])
    first = se(earlier, None, np.zeros(4, bool))
    assert first.tolist() == [0.0, 0.0, 0.0, 0.0]  # nothing earlier yet: no distance to measure
    x = np.array([[1.0, 0.0]])
    r = se(x, None, np.zeros(1, bool))
    both = np.vstack([earlier, x])
    std = both.std(0)
    z = (earlier - both.mean(0)) / std
    zx = (x - both.mean(0)) / std
    d = np.sort(np.sqrt(((z - zx) ** 2).sum(1)))[1]  # the 2nd nearest of the earlier states
    assert r[0] == pytest.approx(1.0)  # its own running mean: the only distance so far
    assert se._dist_sum == pytest.approx(d)


def test_novel_states_earn_more_than_familiar_ones():
    rng = np.random.default_rng(0)
    se = StateEntropy(seed=0)
    se(rng.normal(size=(500, 3)), None, np.zeros(500, bool))
    r = se(np.array([[0.0, 0.0, 0.0], [6.0, 6.0, 6.0]]), None, np.zeros(2, bool))
    assert r[1] > 5 * r[0] > 0


def test_an_absorbing_step_is_worth_the_mean_live_reward_so_far_and_joins_nothing():
    rng = np.random.default_rng(0)
    se = StateEntropy(seed=0)
    given = [se(rng.normal(size=(50, 3)), None, np.zeros(50, bool)) for _ in range(4)]
    state = (se.seen, se._sum.copy(), se._dist_sum, se.memory.copy())
    far = np.full((3, 3), 40.0)  # would be the most novel states yet, were they live
    r = se(far, None, np.ones(3, bool))
    assert r.tolist() == pytest.approx([np.concatenate(given).mean()] * 3, rel=1e-6)
    assert 0.0 < r[0] < 1.5  # neither avoided (0, below every live step) nor sought
    assert se.seen == state[0] and (se._sum == state[1]).all() and se._dist_sum == state[2]
    assert (se.memory == state[3]).all()  # nothing of the absorbing steps was kept
    mixed = se(np.vstack([far[:1], np.zeros((1, 3))]), None, np.array([True, False]))
    assert mixed[0] == pytest.approx(np.concatenate(given).mean(), rel=1e-6)  # the live step joins after
    assert se.seen == state[0] + 1


def test_the_reservoir_keeps_a_uniform_sample_of_every_state_seen():
    se = StateEntropy(k=1, capacity=200, seed=1)
    for i in range(50):
        se(np.arange(i * 40, (i + 1) * 40, dtype=float)[:, None], None, np.zeros(40, bool))
    assert se.seen == 2000
    kept = se.memory[:, 0]
    assert len(np.unique(kept)) == 200
    # uniform over 0..1999: the kept states spread over every quarter of the history
    counts = np.histogram(kept, bins=4, range=(0, 2000))[0]
    assert counts.min() > 30


def test_k_and_capacity_are_checked():
    with pytest.raises(ValueError, match="k <= capacity"):
        StateEntropy(k=5, capacity=3)
