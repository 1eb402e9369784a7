import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from rlhf_gym.tasks.envs.pick_place import BIN_HALF, PickPlaceEnv, PickPlaceExpert
from rlhf_gym.tasks.experts import mean_return
from rlhf_gym.tasks.registry import get_expert, get_task

ENV_ID = "rlhf_gym/PickPlace-v0"
CLOSE, OPEN = 1.0, -1.0


def act(tau1: float = 0.0, tau2: float = 0.0, grip: float = OPEN) -> np.ndarray:
    return np.array([tau1, tau2, grip], np.float32)


def put_tip_at(env: PickPlaceEnv, xy: tuple[float, float]) -> None:
    env.arm.set_state(*env.arm.inverse_kinematics(*xy, elbow_up=True))


def test_both_checkers_pass_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(gym.make(ENV_ID).unwrapped)
        check_env(gym.make(ENV_ID, render_mode="rgb_array").unwrapped)
        sb3_check_env(gym.make(ENV_ID).unwrapped)


def test_spaces():
    env = gym.make(ENV_ID)
    assert env.action_space == gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    assert env.observation_space.shape == (25,) and env.observation_space.dtype == np.float32
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert obs[6:9].tolist() == [0.0, 0.0, 0.0]  # open, not holding, not placed


def test_same_seed_same_episode():
    def episode(seed: int) -> list[bytes]:
        env = gym.make(ENV_ID, max_episode_steps=40)
        env.action_space.seed(seed)
        obs, _ = env.reset(seed=seed)
        out = [obs.tobytes()]
        for _ in range(40):
            obs, reward, *_ = env.step(env.action_space.sample())
            out.append(obs.tobytes() + np.float64(reward).tobytes())
        return out

    assert episode(5) == episode(5)
    assert episode(5) != episode(6)


def test_the_block_starts_away_from_the_bin_and_within_reach():
    env = PickPlaceEnv()
    for seed in range(50):
        obs, _ = env.reset(seed=seed)
        assert 0.3 <= math.hypot(obs[9], obs[10]) <= 0.8
        assert obs[18] >= 0.4


def test_grasp_carry_and_place():
    env = PickPlaceEnv()
    env.reset(seed=0)
    block = env.block
    put_tip_at(env, (block[0] + 0.05, block[1]))
    obs, *_ = env.step(act(grip=CLOSE))  # the gripper closes within the grasp radius
    assert obs[6] == 1 and obs[7] == 1 and obs[17] == 0.0
    put_tip_at(env, env.bin)
    obs, *_ = env.step(act(grip=CLOSE))  # carried: the block follows the tip
    assert obs[7] == 1 and obs[18] < 1e-6
    obs, reward, *_ = env.step(act(grip=OPEN))  # released over the bin: placed at its centre
    assert reward == pytest.approx(0.0, abs=1e-6)  # the value of the state the step started in
    assert obs[6:9].tolist() == [0.0, 0.0, 1.0] and env.block == env.bin
    _, reward, *_ = env.step(act())
    assert reward == 1.0
    put_tip_at(env, env.bin)
    obs, *_ = env.step(act(grip=CLOSE))  # a placed block cannot be picked up again
    assert obs[7] == 0 and obs[8] == 1


def test_a_closed_gripper_picks_nothing_up_and_a_drop_outside_the_bin_stays():
    env = PickPlaceEnv()
    env.reset(seed=1)
    block = env.block
    env.step(act(grip=CLOSE))  # closed far from the block
    put_tip_at(env, block)
    obs, *_ = env.step(act(grip=CLOSE))  # arriving closed grasps nothing
    assert obs[7] == 0 and env.block == block
    env.step(act(grip=OPEN))
    obs, *_ = env.step(act(grip=CLOSE))  # closing again over it does
    assert obs[7] == 1
    drop = (block[0] * 0.9, block[1] * 0.9)
    put_tip_at(env, drop)
    env.step(act(grip=CLOSE))
    obs, *_ = env.step(act(grip=OPEN))
    assert obs[7] == 0 and obs[8] == 0
    assert env.block == pytest.approx(drop) and not all(abs(b - c) <= BIN_HALF for b, c in zip(drop, env.bin))


def test_reward_formula_before_grasping():
    env = PickPlaceEnv()
    obs, _ = env.reset(seed=2)
    _, reward, terminated, truncated, _ = env.step(act(1.0, -1.0))
    assert reward == pytest.approx(-0.5 * obs[17] - obs[18], abs=1e-6)
    assert not terminated and not truncated


@pytest.mark.parametrize("horizon", ["natural", "fixed"])
def test_snapshot_round_trip_is_exact(horizon):
    task = get_task("PickPlace-v0")
    env, expert = task.make(horizon), PickPlaceExpert()
    obs, _ = env.reset(seed=3)
    for _ in range(20):  # part-way to the block, so a continuation grasps, carries and places
        obs, *_ = env.step(expert(obs))
    snap = task.snapshot(env, obs)

    def continuation(e: gym.Env, start: np.ndarray) -> list[tuple]:
        out, o = [], start
        for t in range(task.max_episode_steps - 20):
            a = expert(o) if t % 3 else e.action_space.sample()
            o, r, terminated, truncated, info = e.step(a)
            out.append((o.tobytes(), r, terminated, truncated, info))
        return [*out, (e.reset()[0].tobytes(),)]

    env.action_space.seed(0)
    first = continuation(env, obs)
    assert first[-2][3]  # ran to the time limit
    env.action_space.seed(0)
    assert continuation(env, task.restore(env, snap)) == first
    fresh = task.make(horizon)
    fresh.reset(seed=99)
    fresh.action_space.seed(0)
    assert continuation(fresh, task.restore(fresh, snap)) == first


def test_snapshot_refuses_another_bin():
    task = get_task("PickPlace-v0")
    env = task.make()
    obs, _ = env.reset(seed=0)
    snap = task.snapshot(env, obs)
    env.unwrapped.bin_position = None
    with pytest.raises(ValueError, match="bin_position"):
        task.restore(env, snap)


def test_the_expert_beats_random_by_a_clear_margin():
    task = get_task("PickPlace-v0")
    expert = get_expert(task)
    assert isinstance(expert, PickPlaceExpert)
    seeds = range(5)
    # 20 seeds: expert about +30 (every block placed), random about -120.
    assert mean_return(task, expert, "natural", seeds) > 15.0
    assert mean_return(task, None, "natural", seeds) < -80.0
    env = task.make("fixed")
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        for _ in range(task.max_episode_steps):
            obs, *_ = env.step(expert(obs))
        assert obs[8] == 1, seed


def test_random_bin():
    env = PickPlaceEnv(bin_position=None)
    bins = {tuple(env.reset(seed=s)[0][11:13].tolist()) for s in range(5)}
    assert len(bins) == 5
    obs, _ = env.reset(seed=0)
    expert = PickPlaceExpert()
    for _ in range(100):
        obs, *_ = env.step(expert(obs))
    assert obs[8] == 1


def test_bad_arguments():
    with pytest.raises(ValueError, match="grasp_radius must be in"):
        PickPlaceEnv(grasp_radius=0.0)
    with pytest.raises(ValueError, match=r"bin_position must be None or an \(x, y\) point"):
        PickPlaceEnv(bin_position=(0.0, 0.0))
    with pytest.raises(ValueError, match="unknown render_mode"):
        PickPlaceEnv(render_mode="ascii")


def test_render_rgb_array():
    env = gym.make(ENV_ID, render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (400, 400, 3) and frame.dtype == np.uint8
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) > 10  # not blank
    expert = PickPlaceExpert()
    while obs[7] == 0:
        obs, *_ = env.step(expert(obs))
    assert not np.array_equal(env.render(), frame)  # the held block (and the arm) moved
    env.close()


def test_key_map_gives_valid_actions():
    task = get_task("PickPlace-v0")
    space = task.make().action_space
    assert task.action_for_keys([], space).tolist() == [0.0, 0.0, -1.0]  # still, open
    assert task.action_for_keys(["space"], space).tolist() == [0.0, 0.0, 1.0]  # close
    assert task.action_for_keys(["left", "up", "space"], space).tolist() == [1.0, 1.0, 1.0]
    assert task.action_for_keys(["right", "down"], space).tolist() == [-1.0, -1.0, -1.0]
    for keys in (["left", "right"], ["up"], ["down", "space"], ["x"]):
        assert space.contains(task.action_for_keys(keys, space))
