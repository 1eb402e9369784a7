import sys

import gymnasium as gym
import pytest

from rlhf_gym.tasks import registry as tasks
from rlhf_gym.tasks.horizon import FixedHorizon
from rlhf_gym.tasks.registry import FAMILIES, get_task, list_tasks, preset_names

PRESETS = ["Acrobot-v1", "CartPole-v1", "MountainCar-v0", "MountainCarContinuous-v0", "Pendulum-v1"]


def test_every_preset_is_complete():
    assert set(PRESETS) <= set(preset_names())
    for task in list_tasks():
        assert task.family in FAMILIES and task.description
        assert task.algo in task.hyperparams, f"{task.name} has no tuned hyperparameters for {task.algo}"
        assert task.expert is not None, f"{task.name} has no expert"
        assert task.keys, f"{task.name} has no key map"
        try:
            env = task.make()
        except ImportError:
            continue  # an adapter whose extra is not installed
        for pressed in ([], *([k] for k in task.keys)):
            action = task.action_for_keys(pressed, env.action_space)
            assert env.action_space.contains(action), f"{task.name}: keys {pressed} give {action!r}"


def test_a_preset_is_found_by_its_gymnasium_id_too(tmp_path, monkeypatch):
    (tmp_path / "Lake.yaml").write_text("env_id: FrozenLake-v1\nfamily: game\n")
    monkeypatch.setenv("RLHF_GYM_PRESETS", str(tmp_path))
    assert get_task("FrozenLake-v1").name == "Lake"


def test_a_missing_extra_names_the_install_command(tmp_path, monkeypatch):
    (tmp_path / "Arcade.yaml").write_text("env_id: CartPole-v1\nextra: atari\n")
    monkeypatch.setenv("RLHF_GYM_PRESETS", str(tmp_path))
    monkeypatch.setitem(tasks.EXTRAS, "atari", "no_such_module_for_this_test")
    task = get_task("Arcade")
    with pytest.raises(
        ImportError, match=r"task 'Arcade' needs the 'atari' extra .*pip install \"rlhf-gym\[atari\]\""
    ):
        task.make()
    assert task.action_type() == "needs [atari]"


@pytest.mark.parametrize(
    "line, message",
    [("family: arcade", "unknown family 'arcade'"), ("extra: gpu", "unknown extra 'gpu'")],
)
def test_unknown_family_or_extra(tmp_path, monkeypatch, line, message):
    (tmp_path / "Odd.yaml").write_text(f"env_id: CartPole-v1\n{line}\n")
    monkeypatch.setenv("RLHF_GYM_PRESETS", str(tmp_path))
    with pytest.raises(ValueError, match=message):
        get_task("Odd")


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


def test_an_id_of_another_suite_registers_it_or_names_its_extra(monkeypatch):
    breakout = get_task("ALE/Breakout-v5")  # ALE's ids: unknown to Gymnasium until ale_py registers them
    assert (breakout.family, breakout.extra) == ("generic", "atari")
    assert get_task("Hopper-v5").extra == "mujoco" and get_task("LunarLander-v3").extra == "box2d"
    assert get_task("FrozenLake-v1").extra is None
    monkeypatch.setitem(sys.modules, "ale_py", None)  # importing it now fails, as without the extra
    with pytest.raises(ValueError, match=r"'ALE/NoSuchGame-v5' is an Atari \(ALE\) id.*rlhf-gym\[atari\]"):
        get_task("ALE/NoSuchGame-v5")

    def missing(*args, **kwargs):
        raise gym.error.DependencyNotInstalled("MuJoCo is not installed")

    monkeypatch.setattr(tasks.gym, "make", missing)
    with pytest.raises(ValueError, match=r"'Walker2d-v5' needs the 'mujoco' extra.*rlhf-gym\[mujoco\]"):
        get_task("Walker2d-v5")


def test_a_pixel_id_is_never_taken_for_a_ram_preset_and_the_config_names_the_preset():
    from rlhf_gym.train.resolve import resolve_config

    pong = get_task("ALE/Pong-v5")  # the RAM preset PongRam-v5 makes this id with obs_type ram
    assert pong.name == "ALE/Pong-v5" and pong.env_kwargs == {"obs_type": "grayscale"}
    assert pong.make().observation_space.shape == (84, 84, 4)  # grey screens, 84 x 84, 4 frames
    assert get_task("PongRam-v5").env_kwargs == {"obs_type": "ram"}
    assert resolve_config({"task": "rlhf_gym/Catch-v0"}).task == "Catch-v0"  # the preset, as saved


def test_unknown_task_and_unsupported_spaces():
    with pytest.raises(ValueError, match=r"unknown task 'CartPoel-v1'.*CartPole-v1"):
        get_task("CartPoel-v1")
    with pytest.raises(ValueError, match="Tuple observation space"):
        get_task("Blackjack-v1")


def test_unknown_key_in_a_preset(tmp_path, monkeypatch):
    (tmp_path / "Mine.yaml").write_text("env_id: CartPole-v1\nmax_steps: 5\n")
    monkeypatch.setenv("RLHF_GYM_PRESETS", str(tmp_path))
    from rlhf_gym.tasks import registry as tasks

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


@pytest.mark.parametrize("name", ["../../envs/CartPole-v1", "/tmp/x", "os:getcwd", ".hidden"])
def test_a_task_name_is_never_a_path_or_a_module_to_import(name):
    """Task names arrive in shared files (an export's meta): they must not reach outside the
    preset folders, nor make Gymnasium import a module."""
    with pytest.raises(ValueError, match="unknown task"):
        get_task(name)


def test_import_rlhf_gym_registers_every_environment_with_its_presets_time_limit():
    code = (
        "import gymnasium as gym, sys, rlhf_gym\n"
        "from rlhf_gym.tasks.envs import ENVS\n"
        "from rlhf_gym.tasks.registry import get_task\n"
        "for name in ENVS:\n"
        "    spec = gym.spec('rlhf_gym/' + name)\n"
        "    assert spec.max_episode_steps == get_task(name).max_episode_steps, name\n"
        "env = gym.make('rlhf_gym/Catch-v0'); env.reset(seed=0); steps, done = 0, False\n"
        "while not done:\n"
        "    _, _, term, trunc, _ = env.step(env.action_space.sample())\n"
        "    steps, done = steps + 1, term or trunc\n"
        "assert steps <= 500\n"
        "assert not {'pygame', 'pandas', 'seaborn', 'torch'} & set(sys.modules), 'stays light'\n"
        "print('ok')\n"
    )
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "ok", result.stderr
