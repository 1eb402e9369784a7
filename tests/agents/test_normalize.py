"""Observation and reward normalisation for the agent (``normalize``, rl-zoo3's ``normalize: true``)."""

import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecNormalize

from rlhf_gym.agents.files import load_agent
from rlhf_gym.agents.normalize import NormalizedObs, prepare, settings
from rlhf_gym.train.rlhf import RLHF
from tests.train.test_rlhf import TINY

BOX = spaces.Box(-np.inf, np.inf, (3,))


@pytest.mark.parametrize(
    "value, expected",
    [
        (True, (True, True)),
        (False, (False, False)),
        ({"obs": True, "reward": False}, (True, False)),
        ({"norm_obs": False}, (False, True)),
    ],
)
def test_every_form_of_the_setting(value, expected):
    assert settings(value) == expected


@pytest.mark.parametrize("value", ["yes", {"obs": 1}, {"observations": True}, None])
def test_a_bad_setting_is_named(value):
    with pytest.raises(ValueError, match=r"normalize must be true, false or \{obs: bool, reward: bool\}"):
        settings(value)


def test_the_running_statistics_are_those_of_every_batch_seen():
    rng = np.random.default_rng(0)
    batches = [rng.normal(loc=[1.0, -5.0, 100.0], scale=[1.0, 0.1, 30.0], size=(n, 3)) for n in (5, 40, 1)]
    ext = NormalizedObs(BOX)
    for batch in batches:
        ext.update(batch)
    seen = np.concatenate(batches)
    np.testing.assert_allclose(ext.mean.numpy(), seen.mean(0), rtol=1e-5)
    np.testing.assert_allclose(ext.var.numpy(), seen.var(0), rtol=1e-4)
    out = ext(torch.as_tensor(seen, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(out.mean(0), 0.0, atol=1e-4)
    assert ext(torch.full((1, 3), 1e9)).max() == 10.0  # clipped, as VecNormalize clips


def test_prepare_takes_the_setting_out_of_the_agents_arguments():
    kwargs, rewards = prepare({"normalize": True, "n_steps": 8}, BOX, "ppo")
    assert rewards and kwargs == {"n_steps": 8, "policy_kwargs": {"features_extractor_class": NormalizedObs}}
    assert prepare({"normalize": True}, BOX, "sac")[1] is False  # an off-policy buffer keeps its rewards
    assert prepare({"n_steps": 8}, BOX, "ppo") == ({"n_steps": 8}, False)
    with pytest.raises(ValueError, match="normalize needs Box observations of numbers"):
        prepare({"normalize": True}, spaces.Box(0, 255, (36, 36, 2), np.uint8), "ppo")


def test_a_normalised_agent_learns_its_statistics_rollout_by_rollout_and_keeps_them(tmp_path):
    hp = {**TINY["hyperparams"], "normalize": True}
    run = RLHF("Pendulum-v1", algo="ppo", labels=4, seed=0, **{**TINY, "hyperparams": hp}).learn()
    agent = run.agent
    assert isinstance(agent.env, VecNormalize) and agent.env.norm_reward and not agent.env.norm_obs
    ext = agent.policy.features_extractor
    assert isinstance(ext, NormalizedObs)
    # every rollout but the last is folded in when the next one starts: a PPO update sees the
    # statistics its rollout was collected with
    per_rollout = agent.n_steps * agent.n_envs
    assert float(ext.count) == pytest.approx(agent.num_timesteps - per_rollout, abs=1e-3)
    cos, sin, _ = ext.mean.numpy()
    assert -1 <= cos <= 1 and -1 <= sin <= 1 and float(ext.var.numpy()[2]) > 0.1
    # saved with the weights, and loaded back: the same actions from the same observations
    out = run.save(tmp_path / "run")
    back = load_agent(out / "agent", run.task, run.config)
    assert torch.equal(back.policy.features_extractor.mean, ext.mean)
    obs = np.stack([run.task.make().reset(seed=i)[0] for i in range(5)])
    np.testing.assert_array_equal(
        back.predict(obs, deterministic=True)[0], agent.predict(obs, deterministic=True)[0]
    )
