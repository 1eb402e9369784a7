import numpy as np
import pytest
from stable_baselines3 import PPO

from rlhf_gym.agents.evaluation import EvalResult, evaluate, normalised_return, reward_model_metrics
from rlhf_gym.config import RewardModelConfig
from rlhf_gym.reward.model import RewardModel
from rlhf_gym.tasks.registry import get_task
from rlhf_gym.types import Trajectory


def test_evaluate_uses_the_natural_unwrapped_task():
    task = get_task("CartPole-v1")
    agent = PPO("MlpPolicy", task.make("fixed"), n_steps=64, batch_size=64, seed=1)
    result = evaluate(agent, task, n_episodes=4, seed=0)
    assert len(result.returns) == 4
    # natural horizon: this untrained policy falls early and the episode ends there (fixed: 500 steps)
    assert all(r < 50 for r in result.returns)
    assert result.mean == pytest.approx(np.mean(result.returns))


def test_normalised_return():
    assert normalised_return(10.0, random=10.0, ceiling=20.0) == 0.0
    assert normalised_return(20.0, random=10.0, ceiling=20.0) == 1.0
    assert np.isnan(normalised_return(5.0, 1.0, 1.0))
    assert EvalResult((1.0, 3.0)).std == 1.0


def test_reward_model_metrics_spend_no_labels_and_see_a_perfect_model():
    task = get_task("CartPole-v1")
    env = task.make()
    rm = RewardModel(
        env.observation_space, env.action_space, RewardModelConfig(hidden_sizes=(4,), use_actions=False)
    )
    # make the model exactly r(s) = s[0]: one hidden unit passes s[0] through both ReLU halves
    rng = np.random.default_rng(0)
    trajs = [
        Trajectory(
            rng.normal(size=(60, 4)), np.zeros(60, int), np.zeros(60), np.zeros(60, bool), False, np.zeros(4)
        )
        for _ in range(3)
    ]
    trajs = [Trajectory(t.obs, t.actions, t.obs[:, 0].copy(), t.absorbing, False, t.final_obs) for t in trajs]
    import torch

    w0 = torch.zeros(3, 4, 4)
    w0[:, 0, 0], w0[:, 0, 1] = 1.0, -1.0
    w1 = torch.zeros(3, 4, 1)
    w1[:, 0, 0], w1[:, 1, 0] = 1.0, -1.0  # leaky_relu(x) - leaky_relu(-x) = 1.01 x
    rm.weights, rm.biases = [w0, w1], [torch.zeros(3, 1, 4), torch.zeros(3, 1, 1)]
    rm._sync_numpy()
    m = reward_model_metrics(rm, trajs, 10, np.random.default_rng(1), n_pairs=50)
    assert m.pair_accuracy > 0.95 and m.correlation > 0.99
