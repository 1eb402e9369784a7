"""RLHF on pixels end to end: frames to the reward model's encoder and to SB3's CnnPolicy."""

import numpy as np
from stable_baselines3.common.policies import ActorCriticCnnPolicy

from rlhf_gym.reward.model import RewardModel
from rlhf_gym.train.rlhf import RLHF
from tests.train.test_rlhf import TINY


def test_a_tiny_pixel_run_trains_end_to_end_and_saves_what_it_learned(tmp_path):
    run = RLHF("CatchPixels-v0", labels=4, seed=0, horizon="fixed", **TINY).learn()
    s = run.summary()
    assert s["labels_used"] == 4 and np.isfinite(s["true_return_mean"])
    assert isinstance(run.agent.policy, ActorCriticCnnPolicy)
    rm = run.reward_model
    assert rm.encoder is not None and rm.image is not None
    recorded = run.loop.env.recorder.trajectories
    assert recorded
    for obs in (t.obs for t in recorded):
        assert obs.dtype == np.uint8 and obs.shape[1:] == (36, 36, 2)  # recorded as frames, never floats
    out = run.save(tmp_path / "run")
    env = run.task.make("fixed")
    back = RewardModel.load(out / "reward_model", env.observation_space, env.action_space)
    obs = np.stack([env.reset(seed=i)[0] for i in range(3)])
    np.testing.assert_array_equal(
        back(obs, np.zeros(3, int), np.zeros(3, bool)), rm(obs, np.zeros(3, int), np.zeros(3, bool))
    )


def test_an_off_policy_buffer_is_relabelled_on_the_frames_the_environment_gives():
    """SB3 stores frames channels first; the reward model takes them as the environment gives them."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    from rlhf_gym.agents.buffers import relabel_buffer
    from rlhf_gym.agents.registry import make_agent
    from rlhf_gym.tasks.registry import get_task

    task = get_task("CatchPixels-v0")
    agent = make_agent(
        "dqn",
        DummyVecEnv([lambda: task.make("fixed")]),
        {"buffer_size": 200, "learning_starts": 10_000},
        0,
        True,
    )
    agent.learn(64)
    seen = []

    def reward_fn(obs, actions, absorbing):
        seen.append(obs)
        return np.zeros(len(obs), np.float32)

    assert relabel_buffer(agent, reward_fn) == 64
    frames = seen[0]
    assert frames.shape == (64, 36, 36, 2)
    # stacked frames: a step's newest frame is the next step's previous one (no reset within 64 steps)
    np.testing.assert_array_equal(frames[:-1, ..., 1], frames[1:, ..., 0])


def test_cloning_and_cpl_take_pixel_observations():
    from rlhf_gym.agents.cloning import pretrained
    from rlhf_gym.tasks.registry import get_task

    agent = pretrained(get_task("CatchPixels-v0"), "ppo", episodes=1, bc_steps=2, hyperparams={"n_steps": 16})
    assert isinstance(agent.policy, ActorCriticCnnPolicy)
    run = RLHF("CatchPixels-v0", algo="cpl", labels=4, seed=0, horizon="fixed", **TINY).learn()
    assert np.isfinite(run.summary()["true_return_mean"])
