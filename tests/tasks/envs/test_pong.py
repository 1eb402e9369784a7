import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from rlhf_gym.tasks.envs.pong import OPPONENT_X, PLAYER_X, REACH, VX, PongEnv, PongExpert
from rlhf_gym.tasks.experts import mean_return
from rlhf_gym.tasks.registry import get_expert, get_task
from tests.tasks.envs.snapshot_checks import assert_exact_snapshot, random_actions, rollout

TASK = "Pong-v0"


def test_spaces_and_the_serve():
    env = get_task(TASK).make()
    assert env.observation_space.shape == (6,) and env.observation_space.dtype == np.float32
    assert env.action_space == gym.spaces.Discrete(3)
    obs, info = env.reset(seed=0)
    assert info == {} and env.observation_space.contains(obs)
    assert obs[0] == 0.0 and obs[2] == 1.0 and abs(obs[3]) <= 0.5  # from the centre, to the player
    assert obs[4] == obs[5] == 0.0  # both paddles in the middle


@pytest.mark.parametrize("checker", [gym_check_env, sb3_check_env])
def test_env_checkers_pass_without_warnings(checker):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        checker(gym.make("rlhf_gym/Pong-v0").unwrapped)


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


def test_the_hit_offset_sets_the_angle_and_a_missed_ball_scores_at_the_goal_line():
    env = PongEnv()
    env.reset(seed=0)
    env._player = 0.5
    env._ball = (PLAYER_X - VX / 2, 0.5 + REACH / 2, VX, 0.0)  # hits the upper half of the paddle
    obs, reward, *_ = env.step(1)
    assert reward == 0.0 and obs[2] == -1.0 and obs[3] == pytest.approx(0.5)  # back, half as steep as can be
    env._opponent = 0.9  # far from the ball
    env._ball = (OPPONENT_X + VX / 2, 0.2, -VX, 0.0)
    rewards = [env.step(1)[1] for _ in range(4)]
    assert env._opponent < 0.9  # chasing, too late
    assert rewards == [0.0, 0.0, 0.0, 1.0]  # behind the paddle for 3 steps, then over the line
    obs = env._obs()
    assert obs[0] == 0.0 and obs[2] == 1.0  # served again, toward the player
    assert (env._won, env._lost) == (1, 0)


def test_the_expert_beats_random_by_a_clear_margin():
    task = get_task(TASK)
    seeds = range(3)
    expert = mean_return(task, get_expert(task), "fixed", seeds)
    rand = mean_return(task, None, "natural", seeds)
    assert expert >= 2.0 and rand <= -10.0, (expert, rand)  # 20 seeds: +4.1 and -17.3
    assert isinstance(PongExpert()(np.zeros(6, np.float32)), int)


@pytest.mark.parametrize("horizon", ["natural", "fixed"])
def test_snapshot_round_trip_is_exact(horizon):
    assert_exact_snapshot(TASK, horizon)


def test_rgb_array_frame_is_drawn():
    env = get_task(TASK).make(render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    expert = PongExpert()
    for _ in range(60):
        obs, *_ = env.step(expert(obs))
    frame = env.render()
    assert frame.shape == (*PongEnv.SIZE[::-1], 3) and frame.dtype == np.uint8
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) > 5  # court, paddles, ball, score
    env.close()


def test_bad_action_is_refused():
    env = PongEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action must be 0, 1 or 2 \(Discrete\(3\)\), got 1.5"):
        env.step(1.5)


def test_key_map():
    task = get_task(TASK)
    env = task.make()
    assert task.action_for_keys(["up"], env.action_space) == 0
    assert task.action_for_keys(["down"], env.action_space) == 2
    assert task.action_for_keys([], env.action_space) == 1
    env.reset(seed=0)
    _, _, _, _, _ = env.step(task.action_for_keys(["up"], env.action_space))
    assert env.unwrapped._player > 0.5  # "up" moves the paddle up the screen
