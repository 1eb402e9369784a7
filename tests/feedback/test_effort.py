import pytest

from rlhf_gym.feedback.effort import Budget, EffortModel


def test_costs_follow_watching_time_at_the_tasks_frame_rate():
    e = EffortModel(fps=50)
    assert e.comparison(50) == pytest.approx(1.0 + 3.0)  # clips side by side (Christiano et al.)
    assert e.rating(50) == e.comparison(50)
    assert e.correction(watched=100, length=50) == pytest.approx(2.0 + 1.0 + 2.0)
    assert e.demonstration(500) == pytest.approx(10.0 + 5.0)
    assert e.estop(25) == pytest.approx(0.5)
    assert e.watch(50, speed=0.25) == pytest.approx(4.0)  # TAMER's slowed playback
    assert EffortModel(fps=50, playback_speed=2.0).comparison(50) == pytest.approx(3.5)


def test_bad_effort_figures_are_errors():
    with pytest.raises(ValueError, match="fps"):
        EffortModel(fps=0)
    with pytest.raises(ValueError, match="decide_seconds"):
        EffortModel(decide_seconds=-1)


def test_budgets_in_labels_or_seconds():
    b = Budget(labels=2)
    assert b.affords(100.0) and not b.exhausted
    b.spend(100.0)
    b.spend(0.0)
    assert b.exhausted and not b.affords(0.0)
    s = Budget(seconds=5.0)
    assert s.affords(5.0) and not s.affords(5.1)
    assert [x.seconds for x in s.split(2)] == [2.5, 2.5]
    with pytest.raises(ValueError, match="exactly one"):
        Budget(labels=1, seconds=1.0)
