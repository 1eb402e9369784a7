import gymnasium as gym
import pytest

from rlhf_gym.tasks import get_task, list_tasks, preset_names
from rlhf_gym.wrappers import FixedHorizon

PRESETS = ["Acrobot-v1", "CartPole-v1", "MountainCar-v0", "MountainCarContinuous-v0", "Pendulum-v1"]


def test_the_five_classic_presets():
    assert set(PRESETS) <= set(preset_names())
    for task in list_tasks():
        assert task.family == "classic"
        assert task.algo in task.hyperparams, f"{task.name} has no tuned hyperparameters for {task.algo}"


@pytest.mark.parametrize("name", PRESETS)
def test_both_horizon_modes(name):
    task = get_task(name)
    natural, fixed = task.make("natural"), task.make("fixed")
    assert not isinstance(natural, FixedHorizon) and isinstance(fixed, FixedHorizon)
    assert fixed.horizon == task.max_episode_steps
    fixed.reset(seed=0)
    for _ in range(task.max_episode_steps):
        _, _, terminated, truncated, _ = fixed.step(fixed.action_space.sample())
        assert not terminated
    assert truncated


def test_any_gymnasium_id_gets_generic_defaults():
    task = get_task("FrozenLake-v1")
    assert task.family == "generic" and task.max_episode_steps == 100
    env = task.make()
    assert isinstance(env.observation_space, gym.spaces.Discrete)


def test_unknown_task_and_unsupported_spaces():
    with pytest.raises(ValueError, match=r"unknown task 'CartPoel-v1'.*CartPole-v1"):
        get_task("CartPoel-v1")
    with pytest.raises(ValueError, match="Tuple observation space"):
        get_task("Blackjack-v1")


def test_unknown_key_in_a_preset(tmp_path, monkeypatch):
    (tmp_path / "Mine.yaml").write_text("env_id: CartPole-v1\nmax_steps: 5\n")
    monkeypatch.setenv("RLHF_GYM_PRESETS", str(tmp_path))
    from rlhf_gym import tasks

    tasks._load_preset.cache_clear()
    with pytest.raises(ValueError, match=r"unknown key 'max_steps' in task preset Mine\.yaml"):
        get_task("Mine")


def test_snapshot_and_restore_through_the_task():
    task = get_task("MountainCar-v0")
    env = task.make("fixed")
    obs, _ = env.reset(seed=0)
    snap = task.snapshot(env, obs)
    first = [env.step(2)[:2] for _ in range(3)]
    other = task.make("fixed")
    other.reset(seed=1)
    assert (task.restore(other, snap) == obs).all()
    second = [other.step(2)[:2] for _ in range(3)]
    assert all((a[0] == b[0]).all() and a[1] == b[1] for a, b in zip(first, second))


def test_a_task_rejects_another_tasks_env_and_snapshot():
    cartpole, pendulum = get_task("CartPole-v1"), get_task("Pendulum-v1")
    env = pendulum.make()
    obs, _ = env.reset(seed=0)
    with pytest.raises(ValueError, match=r"environment Pendulum-v1 is not task 'CartPole-v1'"):
        cartpole.snapshot(env, obs)
    with pytest.raises(ValueError, match=r"environment Pendulum-v1 is not task 'CartPole-v1'"):
        cartpole.restore(env, pendulum.snapshot(env, obs))
    cart_env = cartpole.make()
    cart_env.reset(seed=0)
    with pytest.raises(ValueError, match=r"snapshot of Pendulum-v1 cannot be restored by task 'CartPole-v1'"):
        cartpole.restore(cart_env, pendulum.snapshot(env, obs))
