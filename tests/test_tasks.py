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
