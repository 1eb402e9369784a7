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
