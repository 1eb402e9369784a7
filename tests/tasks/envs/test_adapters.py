"""The adapted tasks of the optional extras: snapshots, experts, rendering, key maps, missing extras.

Each test needs its extra and is skipped without it, except those about missing extras.
"""

import dataclasses
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

from rlhf_gym.tasks.experts import mean_return
from rlhf_gym.tasks.registry import get_expert, get_task
from rlhf_gym.tasks.snapshots import restore, snapshot

MODULE = {"Reacher-v5": "mujoco", "Pusher-v5": "mujoco", "LunarLander-v3": "Box2D", "PongRam-v5": "ale_py"}
EXTRA = {"Reacher-v5": "mujoco", "Pusher-v5": "mujoco", "LunarLander-v3": "box2d", "PongRam-v5": "atari"}
TASKS = sorted(MODULE)


def task_with_extra(name: str):
    pytest.importorskip(MODULE[name])
    return get_task(name)


def steps(env: gym.Env, actions) -> list[tuple]:
    """Step ``actions`` until the episode ends; each step as (obs bytes, reward, flags, info)."""
    out = []
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        out.append((obs.tobytes(), float(reward), terminated, truncated, repr(info)))
        if terminated or truncated:
            break
    return out


@pytest.mark.parametrize("horizon", ["natural", "fixed"])
@pytest.mark.parametrize("name", TASKS)
def test_round_trip_is_exact_in_the_same_and_a_fresh_env(name, horizon):
    task = task_with_extra(name)
    env = task.make(horizon)
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(min(task.max_episode_steps, 150))]
    obs, _ = env.reset(seed=3)
    for action in actions[:7]:
        obs, *_ = env.step(action)
    snap = task.snapshot(env, obs)
    original = steps(env, actions[7:])
    next_start = env.reset()[0].tobytes()  # the unseeded reset draws from the saved generator too

    assert np.array_equal(task.restore(env, snap), obs)
    assert steps(env, actions[7:]) == original
    assert env.reset()[0].tobytes() == next_start

    fresh = task.make(horizon)
    fresh.reset(seed=99)
    fresh.step(actions[0])
    assert np.array_equal(task.restore(fresh, snap), obs)
    assert steps(fresh, actions[7:]) == original
    assert fresh.reset()[0].tobytes() == next_start


def test_lunar_lander_snapshot_in_the_absorbing_state_and_with_rendering():
    task = task_with_extra("LunarLander-v3")
    env = task.make("fixed", render_mode="rgb_array")  # rendering adds particles to the world
    obs, _ = env.reset(seed=1)
    for _ in range(400):  # main engine only: it drifts, tilts and crashes or lands
        obs, _, _, _, info = env.step(2)
        if info.get("absorbing"):
            break
    assert info == {"absorbing": True}
    snap = snapshot(env, obs)
    after = steps(env, [0] * 50)
    fresh = task.make("fixed", render_mode="rgb_array")
    fresh.reset(seed=0)
    restore(fresh, snap)
    assert steps(fresh, [0] * 50) == after
    assert len(fresh.unwrapped._actions) == len(snap.states[-1]["state"]["_actions"])


def test_lunar_lander_passes_the_environment_checker():
    pytest.importorskip("Box2D")
    from gymnasium.utils.env_checker import check_env

    task = get_task("LunarLander-v3")
    assert task.env_id == "rlhf_gym/LunarLander-v3"
    check_env(task.make().unwrapped, skip_render_check=True)


# Expert and random mean returns on seeds 0-2 (20 seeds in the module docstring: Reacher -3.5
# vs -43.3, Pusher -38.8 vs -146.8, LunarLander 263.9 vs -203.8, Pong +1.1 vs -20.2).
THRESHOLDS = {"Reacher-v5": -8.0, "Pusher-v5": -70.0, "LunarLander-v3": 150.0}


@pytest.mark.parametrize("name", sorted(THRESHOLDS))
def test_the_expert_beats_random_by_a_clear_margin(name):
    task = task_with_extra(name)
    expert = get_expert(task)
    assert mean_return(task, expert, "fixed", range(3)) >= THRESHOLDS[name]
    assert mean_return(task, None, "fixed", range(3)) < THRESHOLDS[name] - 30


def test_the_pong_expert_holds_its_own_where_random_loses():
    task = dataclasses.replace(task_with_extra("PongRam-v5"), max_episode_steps=600)
    assert mean_return(task, get_expert(task), "natural", [0]) >= -3
    assert mean_return(task, None, "natural", [0]) <= -10


@pytest.mark.slow
def test_the_pong_expert_over_full_episodes():
    task = task_with_extra("PongRam-v5")
    assert (
        mean_return(task, get_expert(task), "natural", range(3))
        > -5
        > mean_return(task, None, "natural", [0])
    )


@pytest.mark.parametrize("name", TASKS)
def test_expert_actions_are_valid_and_deterministic(name):
    task = task_with_extra(name)
    env = task.make()
    obs, _ = env.reset(seed=0)
    action = get_expert(task)(obs)
    assert env.action_space.contains(action)
    if isinstance(env.action_space, gym.spaces.Discrete):
        assert type(action) is int
    else:
        assert action.dtype == np.float32 and action.shape == env.action_space.shape
    assert np.array_equal(get_expert(task)(obs.copy()), action)


def test_the_lunar_lander_expert_is_gymnasiums_heuristic():
    pytest.importorskip("Box2D")
    from gymnasium.envs.box2d.lunar_lander import heuristic

    from rlhf_gym.tasks.envs.adapter_experts import LunarLanderExpert

    discrete = type("Env", (), {"unwrapped": type("Inner", (), {"continuous": False})})
    rng = np.random.default_rng(0)
    expert = LunarLanderExpert()
    for _ in range(2000):
        obs = rng.normal(size=8).astype(np.float32)
        obs[6:] = rng.integers(0, 2, 2)
        assert expert(obs) == heuristic(discrete, obs)


def test_the_pong_ram_addresses():
    task = task_with_extra("PongRam-v5")
    env = task.make()
    ram, _ = env.reset(seed=0)
    for action, direction in ((2, -1), (3, 1)):  # RIGHT moves the paddle up (y falls), LEFT down
        start = int(ram[51])
        for _ in range(8):
            ram, *_ = env.step(action)
        assert np.sign(int(ram[51]) - start) == direction
    while ram[49] == 0:  # wait for the serve
        ram, *_ = env.step(0)
    x, y = int(ram[49]), int(ram[54])
    ram, *_ = env.step(0)  # 4 frames at the velocity in bytes 58 and 56
    dx, dy = (
        -(int(ram[58]) - 256 if ram[58] > 127 else int(ram[58])),
        int(ram[56]) - (256 if ram[56] > 127 else 0),
    )
    assert abs(int(ram[49]) - x - 4 * dx) <= 1 and abs(int(ram[54]) - y - 4 * dy) <= 2


@pytest.mark.parametrize(
    "name, shape",
    [("Reacher-v5", (480, 480, 3)), ("LunarLander-v3", (400, 600, 3)), ("PongRam-v5", (210, 160, 3))],
)
def test_render_rgb_array_also_after_a_restore(name, shape):
    task = task_with_extra(name)
    env = task.make(render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    env.action_space.seed(0)
    for _ in range(5):
        obs, *_ = env.step(env.action_space.sample())
    try:
        frame = env.render()
    except Exception as err:  # MuJoCo without an OpenGL backend (EGL, OSMesa or a display)
        pytest.skip(f"{name} cannot render here: {err}")
    assert frame.shape == shape and frame.dtype == np.uint8
    assert frame.std() > 5  # not blank
    snap = task.snapshot(env, obs)
    for _ in range(5):
        env.step(env.action_space.sample())
    task.restore(env, snap)
    if name != "PongRam-v5":  # the ALE's screen is not part of its state: it shows the old frame
        assert np.array_equal(env.render(), frame)
    env.close()


@pytest.mark.parametrize("name", TASKS)
def test_key_maps_give_valid_actions(name):
    task = task_with_extra(name)
    env = task.make()
    assert task.extra == EXTRA[name]
    assert env.action_space.contains(task.action_for_keys([], env.action_space))
    for key in task.keys:
        action = task.action_for_keys([key], env.action_space)
        assert env.action_space.contains(action), key
        assert not np.array_equal(action, task.noop), key


def test_a_missing_extra_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "Box2D", None)  # as if box2d were not installed
    with pytest.raises(
        ImportError, match=r"task 'LunarLander-v3' needs the 'box2d' extra.*rlhf-gym\[box2d\]"
    ):
        get_task("LunarLander-v3").make()


def test_the_adapters_import_without_any_extra():
    code = """
import sys
for name in ("mujoco", "Box2D", "ale_py"):
    sys.modules[name] = None
import rlhf_gym.tasks.envs.adapters as adapters
import rlhf_gym.tasks.envs.adapter_experts as experts
from rlhf_gym.tasks.snapshots import HANDLERS
from rlhf_gym.tasks.registry import get_task
assert adapters.mujoco is None and adapters.LunarLander is None and adapters.AtariEnv is None
assert not any(c.__module__.startswith(("gymnasium.envs.mujoco", "ale_py")) for c in HANDLERS)
assert experts.ReacherExpert()(__import__("numpy").zeros(10)).shape == (2,)
for task, extra in (("Reacher-v5", "mujoco"), ("PongRam-v5", "atari")):
    try:
        get_task(task).make()
    except ImportError as err:
        assert f"needs the '{extra}' extra" in str(err), err
    else:
        raise AssertionError(task)
try:
    experts.PusherExpert()
except ImportError as err:
    assert "'mujoco' extra" in str(err), err
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")
