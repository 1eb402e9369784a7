"""CPL: the contrastive loss, its gradient steps on SB3's PPO policy, and save/load."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.save_util import load_from_zip_file

from rlhf_gym import RLHF
from rlhf_gym.algos.cpl import CPL, cpl_loss
from rlhf_gym.types import Comparison, Correction, Query, Rating, Segment
from tests.conftest import tiny_run

TINY = {"n_steps": 16, "batch_size": 16, "policy_kwargs": {"net_arch": [16]}, "device": "cpu"}


def make_agent(env_id: str = "CartPole-v1", seed: int = 0, **kwargs) -> CPL:
    agent = CPL("MlpPolicy", env_id, seed=seed, **{**TINY, **kwargs})
    agent.set_logger(Logger(folder=None, output_formats=[]))
    return agent


def random_segment(agent: CPL, rng: np.random.Generator, length: int = 5, absorbing=None) -> Segment:
    obs_shape = agent.observation_space.shape
    space = agent.action_space
    if space.shape == ():
        actions = rng.integers(0, space.n, length)
    else:
        actions = rng.uniform(space.low, space.high, (length, *space.shape)).astype(np.float32)
    absorbing = np.zeros(length, bool) if absorbing is None else np.asarray(absorbing, bool)
    return Segment(
        rng.normal(size=(length, *obs_shape)).astype(np.float32), actions, np.zeros(length), absorbing
    )


def log_prob_sums(agent: CPL, *segments: Segment) -> np.ndarray:
    with torch.no_grad():
        out = []
        for s in segments:
            obs = torch.as_tensor(s.obs[None], dtype=torch.float32)
            dtype = torch.float32 if agent.action_space.shape else torch.long
            total, _ = agent.segment_log_probs(
                obs, torch.as_tensor(s.actions[None], dtype=dtype), torch.as_tensor(~s.absorbing[None])
            )
            out.append(total.item())
    return np.array(out)


def params(agent: CPL) -> list[torch.Tensor]:
    return [p.detach().clone() for p in agent.policy.parameters()]


def test_cpl_loss_prefers_the_labelled_segment():
    high, low = torch.tensor([-2.0]), torch.tensor([-8.0])
    one, zero, tie = torch.ones(1), torch.zeros(1), torch.full((1,), 0.5)
    assert cpl_loss(high, low, one) < cpl_loss(low, high, one)
    assert cpl_loss(low, high, zero) < cpl_loss(high, low, zero)
    assert cpl_loss(high, low, tie) == pytest.approx(cpl_loss(low, high, tie).item())
    # alpha=0.1, lambda=0.5: l(1>2) = -log sigmoid(0.1*-2 - 0.05*-8) = -log sigmoid(0.2) = log(1 + e^-0.2).
    assert cpl_loss(high, low, one).item() == pytest.approx(math.log1p(math.exp(-0.2)), rel=1e-6)
    soft = 0.3 * math.log1p(math.exp(-0.2)) + 0.7 * math.log1p(math.exp(-(-0.8 + 0.1)))
    assert cpl_loss(high, low, torch.tensor([0.3])).item() == pytest.approx(soft, rel=1e-6)
    # The unbiased loss (lambda = 1) is the plain Bradley-Terry loss on alpha * (S_1 - S_2).
    assert cpl_loss(high, low, one, 1.0, 1.0).item() == pytest.approx(math.log1p(math.exp(-6.0)), rel=1e-6)


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
@pytest.mark.parametrize("label", [1.0, 0.0])
def test_cpl_steps_favour_the_preferred_segment(env_id, label):
    agent = make_agent(env_id, learning_rate=3e-3, cpl_steps=20)
    rng = np.random.default_rng(1)
    first, second = random_segment(agent, rng), random_segment(agent, rng)
    agent.feedback = [Comparison(Query(first, second), label)]
    before = log_prob_sums(agent, first, second)
    agent.train()
    after = log_prob_sums(agent, first, second)
    sign = 1 if label == 1.0 else -1
    assert sign * ((after[0] - after[1]) - (before[0] - before[1])) > 0.2
    assert agent.cpl_pairs == 1
    logged = agent.logger.name_to_value
    assert np.isfinite(logged["train/cpl_loss"]) and 0 <= logged["train/cpl_accuracy"] <= 1


def with_absorbing_tail(segment: Segment, tail: Segment) -> Segment:
    return Segment(
        *(
            np.concatenate([a, b])
            for a, b in zip(
                (segment.obs, segment.actions, segment.true_rewards, segment.absorbing),
                (tail.obs, tail.actions, tail.true_rewards, tail.absorbing),
            )
        )
    )


def test_excluded_absorbing_and_padding_steps_do_not_change_the_loss():
    rng = np.random.default_rng(2)
    agents = [make_agent(cpl_steps=1, bc_coef=0.5, absorbing="exclude") for _ in range(2)]
    first, second = random_segment(agents[0], rng), random_segment(agents[0], rng, length=3)
    longer = with_absorbing_tail(first, random_segment(agents[0], rng, length=4, absorbing=[True] * 4))
    agents[0].feedback = [Comparison(Query(first, second), 1.0)]
    agents[1].feedback = [Comparison(Query(longer, second), 1.0)]
    assert log_prob_sums(agents[0], first) == pytest.approx(log_prob_sums(agents[1], longer))
    for agent in agents:
        agent.train()
    logged = [a.logger.name_to_value for a in agents]
    assert logged[0]["train/cpl_loss"] == pytest.approx(logged[1]["train/cpl_loss"], rel=1e-6)
    assert logged[0]["train/bc_loss"] == pytest.approx(logged[1]["train/bc_loss"], rel=1e-6)
    for p, q in zip(params(agents[0]), params(agents[1])):
        torch.testing.assert_close(p, q)


def test_an_absorbing_step_counts_as_the_uniform_policy_on_discrete_actions():
    """The default for Discrete: each absorbing step adds log(1/|A|) whatever its observation and action."""
    rng = np.random.default_rng(3)
    agents = [make_agent(cpl_steps=1) for _ in range(2)]
    first, second = random_segment(agents[0], rng), random_segment(agents[0], rng)
    tails = [random_segment(agents[0], rng, length=4, absorbing=[True] * 4) for _ in range(2)]
    for agent, tail in zip(agents, tails):  # different absorbing observations and actions
        agent.feedback = [Comparison(Query(with_absorbing_tail(first, tail), second), 1.0)]
    s_first, s_second = log_prob_sums(agents[0], first, second)
    expected = cpl_loss(torch.tensor([s_first - 4 * math.log(2)]), torch.tensor([s_second]), torch.ones(1))
    for agent in agents:
        agent.train()
        assert agent.logger.name_to_value["train/cpl_loss"] == pytest.approx(expected.item(), rel=1e-5)
    for p, q in zip(params(agents[0]), params(agents[1])):
        torch.testing.assert_close(p, q)


def pendulum_policy_at(agent: CPL, obs: np.ndarray) -> torch.distributions.Normal:
    with torch.no_grad():
        return agent.policy.get_distribution(torch.as_tensor(obs, dtype=torch.float32)).distribution


def test_a_clipped_action_scores_its_probability_under_the_clipped_policy():
    """Pendulum's actions are clipped to [-2, 2] before the environment (and the segment) sees
    them: an action on a bound has the probability mass the Gaussian puts beyond it."""
    agent = make_agent("Pendulum-v1")
    obs = np.random.default_rng(4).normal(size=(3, 3)).astype(np.float32)
    actions = np.array([[2.0], [-2.0], [0.5]], np.float32)
    got = log_prob_sums(agent, Segment(obs, actions, np.zeros(3), np.zeros(3, bool)))[0]
    dist = pendulum_policy_at(agent, obs)
    mu, sigma = dist.mean[:, 0], dist.stddev[:, 0]
    above = torch.special.log_ndtr((mu[0] - 2.0) / sigma[0])
    below = torch.special.log_ndtr((-2.0 - mu[1]) / sigma[1])
    inside = dist.log_prob(torch.as_tensor(actions))[2, 0]
    assert got == pytest.approx(float(above + below + inside), rel=1e-5)
    # the mass on the upper bound is the share of sampled actions that clipping puts there
    share = (dist.sample((100_000,))[:, 0, 0] >= 2.0).float().mean()
    assert float(above.exp()) == pytest.approx(float(share), rel=0.1)


def test_an_absorbing_step_on_box_actions_scores_the_policys_own_expected_log_likelihood():
    """All actions are equivalent in the absorbing state, so an absorbing step scores what the
    policy's own (clipped) actions score there on average, on the scale of the live steps."""
    rng = np.random.default_rng(5)
    agent = make_agent("Pendulum-v1", cpl_steps=1)
    with torch.no_grad():
        agent.policy.log_std.fill_(-1.0)  # a narrow policy: a log-density far above -log(4)
    first, second = random_segment(agent, rng), random_segment(agent, rng)
    tail = random_segment(agent, rng, length=4, absorbing=[True] * 4)
    agent.feedback = [Comparison(Query(with_absorbing_tail(first, tail), second), 1.0)]
    s_first, s_second = log_prob_sums(agent, first, second)
    # Monte Carlo: the clipped log-likelihood of the policy's own clipped samples at each absorbing step
    samples = pendulum_policy_at(agent, tail.obs).sample((4_000,)).clamp(-2.0, 2.0)  # (n, 4, 1)
    obs = torch.as_tensor(tail.obs).expand(4_000, -1, -1).reshape(-1, 1, 3)
    with torch.no_grad():
        scored, _ = agent.segment_log_probs(
            obs, samples.reshape(-1, 1, 1), torch.ones(len(obs), 1, dtype=bool)
        )
    absorbing = float(scored.mean()) * 4
    assert absorbing > 4 * -math.log(4) + 1  # well above the uniform density's
    expected = cpl_loss(torch.tensor([s_first + absorbing]), torch.tensor([s_second]), torch.ones(1))
    agent.train()
    assert agent.logger.name_to_value["train/cpl_loss"] == pytest.approx(expected.item(), rel=1e-3)


def test_a_uniform_density_on_box_actions_is_refused():
    with pytest.raises(ValueError, match="absorbing='uniform' needs Discrete actions"):
        make_agent("Pendulum-v1", absorbing="uniform")


@pytest.mark.parametrize(
    "name, value",
    [
        ("alpha", 0.0),
        ("alpha", -1.0),
        ("contrastive_bias", 0.0),
        ("contrastive_bias", 1.5),
        ("bc_coef", -0.1),
        ("cpl_steps", 0),
        ("cpl_steps", 2.5),
        ("cpl_batch_size", 0),
        ("absorbing", "drop"),
    ],
)
def test_bad_hyperparameters_are_named(name, value):
    with pytest.raises(ValueError, match=f"{name}={value!r}"):
        make_agent(**{name: value})


def test_train_ignores_feedback_without_pairs_and_counts_every_pair():
    agent = make_agent()
    rng = np.random.default_rng(3)
    seg = random_segment(agent, rng)
    agent.train()  # no feedback at all
    agent.feedback = [Rating(seg, 1, 3)]
    before = params(agent)
    agent.train()
    assert agent.cpl_pairs == 0
    for p, q in zip(before, params(agent)):
        assert torch.equal(p, q)
    agent.feedback.append(Comparison(Query(seg, random_segment(agent, rng)), 0.5))
    agent.train()
    assert agent.cpl_pairs == 1 and "train/cpl_accuracy" not in agent.logger.name_to_value  # ties only
    agent.feedback.append(Correction(seg, random_segment(agent, rng)))
    agent.train()
    assert agent.cpl_pairs == 2 and "train/cpl_accuracy" in agent.logger.name_to_value


def test_learn_on_cartpole_then_save_and_load_without_feedback(tmp_path, comparisons):
    agent = CPL(
        "MlpPolicy",
        "CartPole-v1",
        seed=0,
        alpha=0.2,
        cpl_steps=4,
        cpl_batch_size=4,
        **{**TINY, "n_steps": 32, "batch_size": 32},
    )
    agent.feedback = comparisons(6, np.random.default_rng(4))
    agent.learn(64)
    assert agent.num_timesteps == 64 and agent.cpl_pairs == 6
    agent.save(tmp_path / "cpl")
    data, _, _ = load_from_zip_file(tmp_path / "cpl.zip")
    assert "feedback" not in data and data["alpha"] == 0.2
    loaded = CPL.load(tmp_path / "cpl", device="cpu")
    assert loaded.feedback == [] and loaded.alpha == 0.2 and loaded.cpl_steps == 4
    obs = np.random.default_rng(5).normal(size=(8, 4)).astype(np.float32)
    np.testing.assert_array_equal(
        agent.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0]
    )


def test_the_pipeline_trains_cpl_on_its_pairs_without_a_reward_model():
    run = tiny_run(algo="cpl", hyperparams={"cpl_steps": 4}).learn()
    assert isinstance(run.agent, CPL) and run.agent.feedback is run.feedback
    assert run.agent.cpl_pairs == len(run.feedback) == 6
    assert run.last_fit is None and run.summary()["reward_model_accuracy"] is None
    assert run.agent.n_steps == 32 and run.agent.cpl_steps == 4  # the preset's ppo set, then overrides
    with pytest.raises(ValueError, match="expected reward 'learned'"):
        RLHF("CartPole-v1", algo="cpl", reward="true")


def test_cpl_asks_uniform_queries():
    assert tiny_run(algo="cpl").config.query_strategy == "uniform"
    with pytest.raises(ValueError, match="expected query_strategy 'uniform'"):
        tiny_run(algo="cpl", query_strategy="entropy")
