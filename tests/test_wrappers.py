import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.vec_env import DummyVecEnv

from rlhf_gym.config import RewardModelConfig
from rlhf_gym.reward.model import RewardModel
from rlhf_gym.tasks.horizon import FixedHorizon
from rlhf_gym.wrappers import ConstantReward, LearnedReward, LearnedRewardVec


def cartpole_model():
    env = gym.make("CartPole-v1")
    return RewardModel(env.observation_space, env.action_space, RewardModelConfig(hidden_sizes=(8,)))


def test_fixed_horizon_absorbs_until_the_time_limit():
    env = FixedHorizon(gym.make("CartPole-v1"), horizon=100, absorbing_reward=-2.0)
    env.reset(seed=0)
    rewards, absorbing, obs_seen = [], [], []
    for t in range(100):
        obs, r, terminated, truncated, info = env.step(0)
        rewards.append(r)
        absorbing.append(info.get("absorbing", False))
        obs_seen.append(obs)
        assert not terminated
        assert truncated == (t == 99)
    first = absorbing.index(True)
    assert 5 < first < 30  # pushing left fails CartPole quickly
    assert all(absorbing[first:]) and set(rewards[first:]) == {-2.0}
    np.testing.assert_array_equal(obs_seen[first], obs_seen[first - 1])  # the terminal state, frozen
    env.reset(seed=0)
    assert not env.step(0)[4].get("absorbing", False)


def test_wrappers_pass_gymnasium_and_sb3_checkers():
    for env in (
        FixedHorizon(gym.make("CartPole-v1"), 500),
        LearnedReward(gym.make("CartPole-v1"), cartpole_model()),
        LearnedReward(FixedHorizon(gym.make("Pendulum-v1"), 200), ConstantReward()),
    ):
        check_env(env, skip_render_check=True)
        sb3_check_env(env, warn=False)


def test_learned_reward_keeps_true_reward_and_true_episode_statistics():
    rm = cartpole_model()
    env = LearnedReward(gym.make("CartPole-v1"), rm)
    obs, _ = env.reset(seed=0)
    learned, true = [], []
    while True:
        expected = rm(obs[None], np.array([1]), np.array([False]))[0]
        obs, r, terminated, truncated, info = env.step(1)
        assert r == pytest.approx(expected)
        learned.append(r)
        true.append(info["true_reward"])
        if terminated or truncated:
            break
    assert info["episode"]["r"] == pytest.approx(sum(true))
    assert info["episode"]["learned_r"] == pytest.approx(sum(learned))
    assert info["episode"]["l"] == len(true)


def test_vec_wrapper_scores_all_envs_at_once_and_records_trajectories():
    calls = []

    def reward_fn(obs, actions, absorbing):
        calls.append(len(obs))
        return obs[:, 0] * 10

    venv = LearnedRewardVec(DummyVecEnv([lambda: FixedHorizon(gym.make("CartPole-v1"), 30)] * 3), reward_fn)
    venv.seed(0)
    obs = venv.reset()
    for _ in range(30):
        prev = obs
        obs, rewards, _, infos = venv.step(np.zeros(3, dtype=int))
        np.testing.assert_allclose(rewards, prev[:, 0] * 10, rtol=1e-5)
        assert all("true_reward" in i for i in infos)
    assert set(calls) == {3} and len(calls) == 30
    assert venv.env_steps == 90
    trajs = list(venv.recorder.trajectories)
    assert len(trajs) == 3 and all(len(t) == 30 for t in trajs)
    assert all(t.absorbing.any() and not t.terminated for t in trajs)
    assert infos[0]["episode"]["r"] == pytest.approx(trajs[0].true_return)


def test_natural_horizon_trajectories_end_terminated():
    venv = LearnedRewardVec(DummyVecEnv([lambda: gym.make("CartPole-v1")]), ConstantReward())
    venv.seed(1)
    venv.reset()
    while not venv.recorder.trajectories:
        venv.step(np.zeros(1, dtype=int))
    t = venv.recorder.trajectories[0]
    assert t.terminated and not t.absorbing.any()
    assert abs(t.final_obs[2]) > 0.2 or abs(t.final_obs[0]) > 2.4  # the failure state is kept


def test_vec_wrapper_scores_the_state_each_action_was_taken_in_across_auto_resets():
    def reward_fn(obs, actions, absorbing):
        return obs[:, 0] * 100 + actions

    venv = LearnedRewardVec(DummyVecEnv([lambda: gym.make("CartPole-v1")] * 3), reward_fn)
    venv.seed(3)
    obs = venv.reset()
    rng = np.random.default_rng(0)
    resets = 0
    for _ in range(150):
        actions = rng.integers(0, 2, 3)
        prev = obs
        obs, rewards, dones, infos = venv.step(actions)
        np.testing.assert_allclose(rewards, prev[:, 0] * 100 + actions, rtol=1e-5)
        for i in np.flatnonzero(dones):
            resets += 1
            assert not np.allclose(infos[i]["terminal_observation"], obs[i])  # obs[i] is the new episode's
    assert resets >= 6  # random CartPole episodes last about 20 steps
    # the recorded trajectories hold the same (s, a) pairs, episode by episode
    for t in venv.recorder.trajectories:
        assert t.terminated and len(t) == t.true_return


class _TurnsNaN(gym.Wrapper):
    """Observations (or rewards) turn NaN at the third step."""

    def __init__(self, env, field):
        super().__init__(env)
        self.field, self.n = field, 0

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.n += 1
        if self.n == 3:
            obs, reward = (obs * np.nan, reward) if self.field == "observation" else (obs, float("inf"))
        return obs, reward, terminated, truncated, info


@pytest.mark.parametrize("field", ["observation", "reward"])
def test_a_non_finite_step_stops_with_one_line_naming_task_step_and_field(field):
    from rlhf_gym.wrappers import NonFiniteError

    venv = LearnedRewardVec(DummyVecEnv([lambda: _TurnsNaN(gym.make("CartPole-v1"), field)]), None)
    venv.reset()
    with pytest.raises(
        NonFiniteError, match=f"CartPole-v1 gave a non-finite {field} .* at environment step 3"
    ):
        for _ in range(5):
            venv.step(np.array([0]))


def test_a_reward_model_that_gives_nan_stops_the_run():
    from rlhf_gym.wrappers import NonFiniteError

    def nan_reward(obs, actions, absorbing):
        return np.full(len(obs), np.nan)

    venv = LearnedRewardVec(DummyVecEnv([lambda: gym.make("CartPole-v1")]), nan_reward)
    venv.reset()
    with pytest.raises(NonFiniteError, match="non-finite learned reward"):
        venv.step(np.array([0]))
