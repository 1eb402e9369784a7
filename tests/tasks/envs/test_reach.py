import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from rlhf_gym.tasks import snapshots
from rlhf_gym.tasks.envs.reach import CTRL_COST, TARGET_RADII, ReachDiscreteExpert, ReachEnv, ReachExpert
from rlhf_gym.tasks.envs.rendering import ACCENT, to_pixels
from rlhf_gym.tasks.experts import mean_return
from rlhf_gym.tasks.registry import get_expert, get_task

NAMES = ["Reach-v0", "ReachDiscrete-v0"]


def random_actions(env: gym.Env, n: int, seed: int = 0) -> list:
    env.action_space.seed(seed)
    return [env.action_space.sample() for _ in range(n)]


def rollout(env: gym.Env, actions) -> list[tuple]:
    out = []
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        out.append((obs.tobytes(), float(reward), terminated, truncated, info))
        if terminated or truncated:
            break
    return out


@pytest.mark.parametrize("name", NAMES)
def test_both_env_checkers_pass_without_warnings(name, monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")  # gymnasium's checker renders in every mode
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(gym.make(f"rlhf_gym/{name}").unwrapped)
        sb3_check_env(gym.make(f"rlhf_gym/{name}").unwrapped)


def test_spaces():
    continuous, discrete = gym.make("rlhf_gym/Reach-v0"), gym.make("rlhf_gym/ReachDiscrete-v0")
    assert continuous.observation_space.shape == discrete.observation_space.shape == (14,)
    assert continuous.observation_space.dtype == np.float32
    assert continuous.action_space == gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    assert discrete.action_space == gym.spaces.Discrete(5)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"discrete_torque must be in \(0, 1\], got 1.5"):
        ReachEnv(discrete=True, discrete_torque=1.5)
    with pytest.raises(TypeError, match="discrete must be a bool, got 'yes'"):
        ReachEnv(discrete="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown render_mode 'window'"):
        ReachEnv(render_mode="window")


def test_observations_stay_in_bounds_and_match_the_geometry():
    env = ReachEnv()
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        for action in [np.ones(2, np.float32)] * 60 + random_actions(env, 60, seed):  # incl. the elbow stop
            assert env.observation_space.contains(obs)
            arm, target = env.arm, env.target
            tip = arm.tip()
            assert obs[:4] == pytest.approx(
                [math.cos(arm.q1), math.sin(arm.q1), math.cos(arm.q2), math.sin(arm.q2)]
            )
            assert obs[6:10] == pytest.approx([*target, tip[0] - target[0], tip[1] - target[1]], abs=1e-6)
            assert obs[12] == pytest.approx(math.hypot(*target) - math.hypot(*tip), abs=1e-6)
            assert obs[13] == pytest.approx(math.dist(tip, target), abs=1e-6)
            obs, *_ = env.step(action)


def test_targets_lie_in_the_annulus_all_around():
    env = ReachEnv()
    targets = np.array([env.reset(seed=seed)[0][6:8] for seed in range(200)])
    radii = np.hypot(targets[:, 0], targets[:, 1])
    assert radii.min() >= TARGET_RADII[0] - 1e-6 and radii.max() <= TARGET_RADII[1] + 1e-6
    assert {bool(x > 0) for x in targets[:, 0]} == {True, False} == {bool(y > 0) for y in targets[:, 1]}


@pytest.mark.parametrize("discrete", [False, True])
def test_reward_is_minus_the_distance_before_the_step_minus_the_torque_cost(discrete):
    env = ReachEnv(discrete=discrete)
    obs, _ = env.reset(seed=4)
    for action in random_actions(env, 20, seed=4):
        torque = env._torques[action] if discrete else np.clip(action, -1, 1)
        expected = -float(obs[13]) - CTRL_COST * float(np.sum(np.square(torque)))
        obs, reward, terminated, truncated, info = env.step(action)
        assert reward == pytest.approx(expected, abs=1e-6)
        assert info["distance"] == pytest.approx(float(obs[13]), abs=1e-6)
        assert not (terminated or truncated)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_actions_same_episode(name):
    task = get_task(name)
    runs = []
    for _ in range(2):
        env = task.make()
        obs, _ = env.reset(seed=7)
        runs.append((obs.tobytes(), rollout(env, random_actions(env, 200, seed=7))))
    assert runs[0] == runs[1]
    assert len(runs[0][1]) == task.max_episode_steps and runs[0][1][-1][3]  # truncated by the time limit
    other = task.make()
    assert other.reset(seed=8)[0].tobytes() != runs[0][0]


@pytest.mark.parametrize("horizon", ["natural", "fixed"])
@pytest.mark.parametrize("name", NAMES)
def test_snapshot_round_trip_is_exact(name, horizon):
    task = get_task(name)
    env = task.make(horizon)
    actions = random_actions(env, task.max_episode_steps)
    obs, _ = env.reset(seed=3)
    for action in actions[:9]:
        obs, *_ = env.step(action)
    snap = task.snapshot(env, obs)
    original = (rollout(env, actions[9:]), env.reset()[0].tobytes())
    assert len(original[0]) == task.max_episode_steps - 9

    assert np.array_equal(task.restore(env, snap), obs)
    assert (rollout(env, actions[9:]), env.reset()[0].tobytes()) == original

    fresh = task.make(horizon)
    fresh.reset(seed=99)
    fresh.step(actions[0])
    assert np.array_equal(task.restore(fresh, snap), obs)
    assert (rollout(fresh, actions[9:]), fresh.reset()[0].tobytes()) == original


def test_snapshot_refuses_the_other_variant():
    continuous, discrete = ReachEnv(), ReachEnv(discrete=True)
    obs, _ = continuous.reset(seed=0)
    discrete.reset(seed=0)
    with pytest.raises(ValueError, match="discrete"):
        snapshots.restore(discrete, snapshots.snapshot(continuous, obs))


# Mean true return on seeds 0-4 (20 seeds, module docstring: expert -13.3 / -22.0, random -83.2 / -86.4).
THRESHOLDS = {"Reach-v0": -20.0, "ReachDiscrete-v0": -35.0}


@pytest.mark.parametrize("name", NAMES)
def test_the_expert_beats_random_by_a_clear_margin(name):
    task = get_task(name)
    seeds = range(5)
    assert mean_return(task, get_expert(task), "natural", seeds) >= THRESHOLDS[name]
    assert mean_return(task, None, "natural", seeds) < THRESHOLDS[name] - 30


@pytest.mark.parametrize(
    ("discrete", "expert", "tolerance"), [(False, ReachExpert(), 0.01), (True, ReachDiscreteExpert(), 0.05)]
)
def test_the_expert_holds_the_tip_on_the_target(discrete, expert, tolerance):
    env = ReachEnv(discrete=discrete)
    for seed in range(5):
        obs, _ = env.reset(seed=seed)
        distances = []
        for _ in range(100):
            action = expert(obs)
            assert env.action_space.contains(action)
            obs, _, _, _, info = env.step(action)
            distances.append(info["distance"])
        assert max(distances[-25:]) < tolerance, seed


def test_the_expert_is_deterministic():
    env = ReachEnv()
    obs, _ = env.reset(seed=0)
    assert np.array_equal(ReachExpert()(obs), ReachExpert()(obs.copy()))
    assert type(ReachDiscreteExpert()(obs)) is int


def test_rgb_array_shows_the_arm_and_the_target(monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    env = ReachEnv(render_mode="rgb_array")
    env.reset(seed=0)
    env.arm.set_state(0.0, 0.0)  # pointing right; the target is elsewhere
    env.target = (-0.5, 0.3)
    frame = env.render()
    assert frame is not None and frame.shape == (400, 400, 3) and frame.dtype == np.uint8
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) > 5
    x, y = to_pixels((-0.5, 0.3), 200.0, (200, 200))
    assert frame[y + 5, x].tolist() == list(ACCENT)  # inside the target disc
    env.close()


def test_render_without_a_mode_warns_and_returns_none():
    env = ReachEnv()
    env.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode"):
        assert env.render() is None


@pytest.mark.parametrize("name", NAMES)
def test_every_key_gives_a_valid_action_and_left_turns_the_shoulder_counter_clockwise(name):
    task = get_task(name)
    env = task.make()
    space = env.action_space
    assert space.contains(task.action_for_keys([], space))
    for key in ("left", "right", "up", "down"):
        assert space.contains(task.action_for_keys([key], space)), key
    assert space.contains(task.action_for_keys(["left", "up"], space))
    for key, joint, sign in (("left", 0, 1), ("right", 0, -1), ("up", 1, 1), ("down", 1, -1)):
        obs, _ = env.reset(seed=0)
        obs, *_ = env.step(task.action_for_keys([key], space))
        assert np.sign(obs[4 + joint]) == sign and obs[5 - joint] == 0, key
    obs, _ = env.reset(seed=0)
    obs, *_ = env.step(task.action_for_keys([], space))
    assert obs[4] == obs[5] == 0  # no key, no torque
