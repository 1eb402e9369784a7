import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from rlhf_gym.tasks.envs.catch import FLOOR, HOLD, CatchEnv, CatchExpert
from rlhf_gym.tasks.experts import mean_return
from rlhf_gym.tasks.registry import get_expert, get_task
from tests.tasks.envs.snapshot_checks import assert_exact_snapshot, random_actions, rollout

TASK = "Catch-v0"


def test_spaces_and_first_observation():
    env = get_task(TASK).make()
    assert env.observation_space.shape == (16,) and env.observation_space.dtype == np.float32
    assert env.action_space == gym.spaces.Discrete(3)
    obs, info = env.reset(seed=0)
    assert info == {} and env.observation_space.contains(obs)
    assert obs[5] == 1.0 and obs[2] == 1.0  # one object, at the top
    assert not obs[6:].any()  # two empty slots


@pytest.mark.parametrize("checker", [gym_check_env, sb3_check_env])
def test_env_checkers_pass_without_warnings(checker):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        checker(gym.make("rlhf_gym/Catch-v0").unwrapped)


def test_same_seed_same_episode_and_observations_in_bounds():
    actions = random_actions(500)
    a, b = get_task(TASK).make(), get_task(TASK).make()
    a.reset(seed=7)
    b.reset(seed=7)
    first, second = rollout(a, actions), rollout(b, actions)
    assert first == second
    assert second[-1][3] and not any(step[2] for step in second)  # truncated at 500, never terminated
    space = a.observation_space
    assert all(space.contains(np.frombuffer(step[0], np.float32)) for step in first)
    c = get_task(TASK).make()
    c.reset(seed=8)
    assert rollout(c, actions) != first


def test_a_catch_rests_on_the_paddle_then_scores_and_a_miss_scores_at_the_floor():
    env = CatchEnv()
    env.reset(seed=0)
    env._px = 0.5
    env._objects = [(0.5, 0.01, 0.0, 0.02, 0), (0.95, 0.015, 0.0, 0.02, 0)]  # over the paddle; far off
    env._spawn_timer = 1000
    obs, reward, *_ = env.step(1)
    assert reward == 0.0
    assert obs[2] < 0.0 and obs[6:11].tolist() == [0.0, 0.0, 0.0, 0.0, 1.0]  # in the pit; resting
    rewards = [reward] + [env.step(1)[1] for _ in range(HOLD + 10)]
    assert sorted(r for r in rewards if r) == [-1.0, 1.0]
    assert rewards.index(1.0) == HOLD  # caught at step 0, leaves the paddle HOLD steps later
    assert rewards.index(-1.0) == int(np.ceil((0.015 - FLOOR) / 0.02)) - 1  # when it hits the floor
    assert (env._caught, env._missed) == (1, 1) and env._objects == []


def test_the_expert_beats_random_by_a_clear_margin():
    task = get_task(TASK)
    seeds = range(3)
    expert = mean_return(task, get_expert(task), "fixed", seeds)
    rand = mean_return(task, None, "natural", seeds)
    assert expert >= 15.0 and rand <= -5.0, (expert, rand)  # 20 seeds: +20.8 and -10.3
    assert isinstance(CatchExpert()(np.zeros(16, np.float32)), int)


@pytest.mark.parametrize("horizon", ["natural", "fixed"])
def test_snapshot_round_trip_is_exact(horizon):
    assert_exact_snapshot(TASK, horizon)


def test_rgb_array_frame_is_drawn():
    env = get_task(TASK).make(render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    expert = CatchExpert()
    for _ in range(60):
        obs, *_ = env.step(expert(obs))
    frame = env.render()
    assert frame.shape == (*CatchEnv.SIZE[::-1], 3) and frame.dtype == np.uint8
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) > 5  # paddle, objects, score, floor
    env.close()


def test_render_without_a_mode_warns_and_draws_nothing():
    env = CatchEnv()
    env.reset(seed=0)
    with pytest.warns(UserWarning, match="without a render_mode"):
        assert env.render() is None


def test_bad_action_is_refused():
    env = CatchEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action must be 0, 1 or 2 \(Discrete\(3\)\), got 3"):
        env.step(3)


def test_key_map():
    task = get_task(TASK)
    env = task.make()
    assert task.action_for_keys(["left"], env.action_space) == 0
    assert task.action_for_keys(["right"], env.action_space) == 2
    assert task.action_for_keys(["left", "right"], env.action_space) == 2  # the last pressed wins
    assert task.action_for_keys([], env.action_space) == 1
    for action in (0, 1, 2):
        assert env.action_space.contains(action)
