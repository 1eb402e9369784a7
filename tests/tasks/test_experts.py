import itertools

import numpy as np
import pytest
from gymnasium import spaces

from rlhf_gym.tasks.experts import EXPERTS, mean_return
from rlhf_gym.tasks.registry import Task, get_expert, get_task, preset_names

# Per task: the expert's mean return on seeds 0-4 must exceed the threshold and random's must
# fall short of it by the margin (50, or MARGINS'). Measured (20 seeds, experts.py): expert 500 /
# -138 / -105 / 92 / -78, random 22 / -1179 / -200 / -33 / -500; the pixel games' experts
# (pixel_experts.py), reading the state from the frames: +20.7 / +4.1, random -10.3 / -17.3 (the
# state experts on the state games +20.8 / +4.1).
THRESHOLDS = {
    "CartPole-v1": 500.0,  # every episode balanced to the end (500 is the maximum)
    "Pendulum-v1": -300.0,
    "MountainCar-v0": -140.0,
    "MountainCarContinuous-v0": 85.0,
    "Acrobot-v1": -150.0,
    "CatchPixels-v0": 15.0,  # as Catch-v0's state expert (tests/tasks/envs/test_catch.py)
    "PongPixels-v0": 2.0,  # as Pong-v0's
}
MARGINS = {"CatchPixels-v0": 20.0, "PongPixels-v0": 10.0}  # games score a few dozen points at most
SEEDS = range(5)


@pytest.mark.parametrize("name", sorted(THRESHOLDS))
def test_the_expert_beats_random_by_a_clear_margin(name):
    task = get_task(name)
    expert = get_expert(task)
    for horizon in ("natural", "fixed"):
        assert mean_return(task, expert, horizon, SEEDS) >= THRESHOLDS[name], horizon
    assert mean_return(task, None, "natural", SEEDS) < THRESHOLDS[name] - MARGINS.get(name, 50.0)


@pytest.mark.parametrize("name", preset_names())
def test_actions_are_in_the_action_space_and_deterministic(name):
    task = get_task(name)
    try:
        env = task.make()
    except ImportError:
        pytest.skip(f"{name} needs the {task.extra} extra")
    expert = get_expert(task)
    obs, _ = env.reset(seed=0)
    action = expert(obs)
    assert env.action_space.contains(action)
    if isinstance(env.action_space, spaces.Discrete):
        assert type(action) is int
    else:
        assert action.dtype == np.float32 and action.shape == env.action_space.shape
    assert np.array_equal(get_expert(task)(obs.copy()), action)


def test_cartpole_balances_from_every_corner_of_the_start_box():
    task = get_task("CartPole-v1")
    env, expert = task.make(), get_expert(task)
    for corner in itertools.product((-0.05, 0.05), repeat=4):
        env.reset(seed=0)
        env.unwrapped.state = np.array(corner)
        obs = np.array(corner, np.float32)
        for _ in range(500):
            obs, _, terminated, truncated, _ = env.step(expert(obs))
            assert not terminated, corner
        assert truncated


@pytest.mark.parametrize("name", ["MountainCar-v0", "MountainCarContinuous-v0"])
def test_mountain_car_reaches_the_flag_from_every_start(name):
    task = get_task(name)
    env, expert = task.make(), get_expert(task)
    for position in np.linspace(-0.6, -0.4, 9):
        obs, _ = env.reset(seed=0, options={"low": position, "high": position})
        steps, terminated, truncated = 0, False, False
        while not (terminated or truncated):
            obs, _, terminated, truncated, _ = env.step(expert(obs))
            steps += 1
        assert terminated and steps <= 130, (position, steps)


def test_a_task_without_an_expert():
    with pytest.raises(
        ValueError, match=r"task 'FrozenLake-v1' has no expert; tasks with experts: Acrobot-v1, "
    ):
        get_expert(get_task("FrozenLake-v1"))
    with pytest.raises(
        ValueError, match=r"unknown expert 'pid' for task 'Mine'; expected one of cartpole_lqr"
    ):
        get_expert(Task(name="Mine", env_id="CartPole-v1", expert="pid"))


def test_every_preset_names_a_registered_expert():
    for name in THRESHOLDS:
        assert get_task(name).expert in EXPERTS


def test_unknown_expert_in_a_preset(tmp_path, monkeypatch):
    (tmp_path / "Mine.yaml").write_text("env_id: CartPole-v1\nexpert: pid\n")
    monkeypatch.setenv("RLHF_GYM_PRESETS", str(tmp_path))
    from rlhf_gym.tasks import registry as tasks

    tasks._load_preset.cache_clear()
    with pytest.raises(
        ValueError, match=r"unknown expert 'pid' in task preset Mine\.yaml; expected one of cartpole"
    ):
        get_task("Mine")


def test_pendulum_gains_are_checked():
    from rlhf_gym.tasks.experts import PendulumSwingUp

    with pytest.raises(ValueError, match="k_energy must be positive, got -1"):
        PendulumSwingUp(k_energy=-1)
    with pytest.raises(ValueError, match=r"balance_angle must be in \(0, pi\] radians, got 4"):
        PendulumSwingUp(balance_angle=4)
