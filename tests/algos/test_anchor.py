"""KL to an anchor policy: exact and analytic KL, the EMA anchor, the penalty, and RLHF runs with it."""

from __future__ import annotations

import json
import math

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml
from stable_baselines3 import A2C, PPO, SAC

from rlhf_gym import RLHF
from rlhf_gym.algos.anchor import Anchor, KLLoss, KLPenalty, load_parameters, policy_kl, sampled_episodes
from rlhf_gym.tasks.registry import get_task
from rlhf_gym.wrappers import ConstantReward
from tests.conftest import tiny_run

TINY = {"policy_kwargs": {"net_arch": [8]}, "device": "cpu", "n_steps": 16, "batch_size": 16}
HP = {"n_steps": 64, "batch_size": 64, "n_epochs": 2, "n_envs": 2, "policy_kwargs": {"net_arch": [16]}}


def perturbed(policy, seed: int = 0, scale: float = 0.3) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen))


@pytest.mark.parametrize(
    "env_id, kwargs", [("CartPole-v1", {}), ("Pendulum-v1", {}), ("Pendulum-v1", {"use_sde": True})]
)
def test_kl_is_zero_against_itself_and_positive_against_another(env_id, kwargs):
    agent = PPO("MlpPolicy", env_id, seed=0, **TINY, **kwargs)
    anchor = Anchor(agent.policy)
    obs = np.random.default_rng(0).normal(size=(5, *agent.observation_space.shape)).astype(np.float32)
    assert policy_kl(agent.policy, anchor.policy, obs).tolist() == [0.0] * 5
    perturbed(agent.policy)
    kl = policy_kl(agent.policy, anchor.policy, obs)
    assert kl.shape == (5,) and (kl > 0).all()


def test_kl_matches_the_closed_forms():
    agent = PPO("MlpPolicy", "CartPole-v1", seed=0, **TINY)
    other = Anchor(agent.policy).policy
    perturbed(other, seed=1)
    obs = np.random.default_rng(1).normal(size=(4, 4)).astype(np.float32)
    p = agent.policy.get_distribution(torch.as_tensor(obs)).distribution.probs.detach()
    q = other.get_distribution(torch.as_tensor(obs)).distribution.probs.detach()
    expected = (p * (p.log() - q.log())).sum(-1)
    torch.testing.assert_close(policy_kl(agent.policy, other, obs), expected)

    agent = PPO("MlpPolicy", "Pendulum-v1", seed=0, **TINY)
    other = Anchor(agent.policy).policy
    perturbed(other, seed=2)
    obs = np.random.default_rng(2).normal(size=(4, 3)).astype(np.float32)
    a = agent.policy.get_distribution(torch.as_tensor(obs)).distribution
    b = other.get_distribution(torch.as_tensor(obs)).distribution
    m1, s1, m2, s2 = a.mean, a.stddev, b.mean, b.stddev
    expected = (torch.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5).sum(-1).detach()
    torch.testing.assert_close(policy_kl(agent.policy, other, obs), expected)


def test_sac_policies_are_refused():
    agent = SAC("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [8]}, device="cpu")
    with pytest.raises(AttributeError):
        policy_kl(agent.policy, agent.policy, np.zeros((1, 3), np.float32))


@pytest.mark.parametrize("algo", [PPO, A2C])
def test_ema_anchor_moves_by_its_rate_after_each_optimiser_step_and_initial_stays(algo):
    agent = algo(
        "MlpPolicy", "CartPole-v1", seed=0, policy_kwargs={"net_arch": [8]}, device="cpu", n_steps=16
    )
    ema = Anchor(agent.policy, kind="ema", rate=0.25)
    frozen = Anchor(agent.policy, kind="initial")
    before = [p.detach().clone() for p in agent.policy.parameters()]
    loss = sum((p**2).sum() for p in agent.policy.parameters())
    agent.policy.optimizer.zero_grad()
    loss.backward()
    agent.policy.optimizer.step()
    after = list(agent.policy.parameters())
    assert ema.updates == 1
    for a, f, b, p in zip(ema.policy.parameters(), frozen.policy.parameters(), before, after):
        torch.testing.assert_close(a, 0.75 * b + 0.25 * p.detach())
        torch.testing.assert_close(f, b)
        assert not a.requires_grad
    ema.close()
    agent.policy.optimizer.step()
    assert ema.updates == 1


def test_bad_anchor_settings_are_named():
    agent = PPO("MlpPolicy", "CartPole-v1", **TINY)
    with pytest.raises(ValueError, match="unknown kl_anchor 'slow'"):
        Anchor(agent.policy, kind="slow")
    with pytest.raises(ValueError, match="ema_rate must be in"):
        Anchor(agent.policy, kind="ema", rate=0.0)
    with pytest.raises(ValueError, match="kl_coef must be non-negative"):
        KLPenalty(ConstantReward(), -1.0)


def test_penalty_subtracts_beta_kl_on_live_steps_only():
    agent = PPO("MlpPolicy", "CartPole-v1", seed=0, **TINY)
    anchor = Anchor(agent.policy)
    perturbed(agent.policy)
    penalty = KLPenalty(ConstantReward(1.0), beta=0.5)
    obs = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    absorbing = np.array([False, True, False])
    assert penalty(obs, np.zeros(3), absorbing).tolist() == [1.0, 1.0, 1.0]  # no policy attached yet
    penalty.attach(agent.policy, anchor)
    kl = policy_kl(agent.policy, anchor.policy, obs).numpy()
    np.testing.assert_allclose(
        penalty(obs, np.zeros(3), absorbing), [1 - 0.5 * kl[0], 1.0, 1 - 0.5 * kl[2]], rtol=1e-5
    )
    assert penalty.mean_kl() == pytest.approx((kl[0] + kl[2]) / 2, rel=1e-5)
    assert math.isnan(penalty.mean_kl())


def test_sampled_episodes_measure_true_and_proxy_returns_and_kl():
    task = get_task("CartPole-v1")
    agent = PPO("MlpPolicy", "CartPole-v1", seed=0, **TINY)
    reference = Anchor(agent.policy).policy
    same = sampled_episodes(agent, task, ConstantReward(2.0), reference, episodes=3, seed=5)
    assert same["kl"] == 0.0
    # fixed horizon: 500 steps, +1 per live step; the constant reward scores live and absorbing steps alike
    assert same["proxy_return"] == 1000.0 and 0 < same["true_return"] < 500
    assert sampled_episodes(agent, task, ConstantReward(2.0), reference, episodes=3, seed=5) == same
    perturbed(agent.policy)
    assert sampled_episodes(agent, task, None, reference, episodes=3, seed=5)["kl"] > 0


def flat_parameters(policy) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in policy.parameters()])


def test_kl_loss_is_clipped_with_the_agent_loss():
    """The KL term is part of the loss SB3 clips: with plain SGD, every optimiser step moves the
    parameters by at most learning_rate * max_grad_norm, however large beta * grad KL is."""
    lr, max_norm = 0.1, 1e-3
    kw = {**TINY, "policy_kwargs": {"net_arch": [8], "optimizer_class": torch.optim.SGD}}
    agent = PPO("MlpPolicy", "CartPole-v1", seed=0, learning_rate=lr, max_grad_norm=max_norm, **kw)
    anchor = Anchor(agent.policy)
    perturbed(agent.policy, scale=1.0)  # far from the anchor: beta * grad KL dwarfs the clipped norm
    KLLoss(agent.policy, anchor, beta=10.0)
    moves: list[float] = []
    start: list[torch.Tensor] = []
    opt = agent.policy.optimizer
    opt.register_step_pre_hook(lambda *_: start.append(flat_parameters(agent.policy)))
    opt.register_step_post_hook(
        lambda *_: moves.append(float((flat_parameters(agent.policy) - start[-1]).norm()))
    )
    agent.learn(32)  # two rollouts of 16 steps, one minibatch each, 10 epochs
    assert len(moves) == 20
    assert max(moves) <= lr * max_norm * 1.01  # (float32 rounding of the parameters)


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_kl_loss_adds_beta_grad_kl_to_the_gradient_of_the_loss(env_id):
    agent = PPO("MlpPolicy", env_id, seed=0, **TINY)
    policy, beta = agent.policy, 0.7
    anchor = Anchor(policy)
    perturbed(policy)
    rng = np.random.default_rng(0)
    obs = torch.as_tensor(rng.normal(size=(6, *agent.observation_space.shape)), dtype=torch.float32)
    actions = torch.as_tensor(np.stack([agent.action_space.sample() for _ in range(6)]))

    def kl() -> torch.Tensor:
        p = policy.get_distribution(obs).distribution
        q = anchor.policy.get_distribution(obs).distribution
        d = torch.distributions.kl_divergence(p, q)
        return (d.sum(-1) if d.dim() > 1 else d).mean()

    def gradient(extra) -> list[torch.Tensor]:  # of a PPO-like loss built from evaluate_actions
        policy.zero_grad()
        values, log_prob, entropy = policy.evaluate_actions(obs, actions)
        (-log_prob.mean() + values.pow(2).mean() - 0.01 * entropy.mean() + extra()).backward()
        return [p.grad.clone() for p in policy.parameters()]

    expected = gradient(lambda: beta * kl())
    term = KLLoss(policy, anchor, beta)
    for got, want in zip(gradient(lambda: 0.0), expected):
        torch.testing.assert_close(got, want)
    assert term.mean_kl() == pytest.approx(float(kl().detach()), rel=1e-5)
    with torch.no_grad():  # evaluation outside an update adds nothing and counts nothing
        policy.evaluate_actions(obs, actions)
    assert math.isnan(term.mean_kl())


def test_kl_loss_keeps_the_run_closer_to_its_start():
    runs = {
        beta: tiny_run(total_timesteps=1536, hyperparams=HP, kl_coef=beta, kl_penalty="loss", seed=1).learn()
        for beta in (1e-9, 10.0)
    }
    free, held = (runs[b].summary() for b in (1e-9, 10.0))
    assert held["kl_from_init"] < 0.5 * free["kl_from_init"]
    final = runs[10.0].metrics[-1]
    assert final["final"] and final["kl_to_anchor"] >= 0 and np.isfinite(final["proxy_return"])


def test_ema_run_and_init_policy(tmp_path):
    kw = dict(labels=4, total_timesteps=512, hyperparams=HP)
    first = tiny_run(seed=0, **kw).learn()
    first.agent.save(tmp_path / "start.zip")
    run = tiny_run(
        seed=3, init_policy=str(tmp_path / "start.zip"), kl_coef=0.1, kl_anchor="ema", **kw
    ).learn()
    for name, p in run.reference.state_dict().items():
        torch.testing.assert_close(p, first.agent.policy.state_dict()[name])
    assert run.anchor is not None and run.anchor.kind == "ema" and run.anchor.updates > 0
    assert run.summary()["kl_from_init"] > 0


def test_bad_kl_options_are_refused(tmp_path):
    with pytest.raises(ValueError, match="kl_coef needs algo ppo or a2c"):
        RLHF("Pendulum-v1", kl_coef=0.1)
    with pytest.raises(ValueError, match="have no effect without a positive kl_coef"):
        RLHF("CartPole-v1", kl_anchor="ema")
    with pytest.raises(ValueError, match="unknown kl_penalty 'advantage'"):
        RLHF("CartPole-v1", kl_coef=0.1, kl_penalty="advantage")
    with pytest.raises(ValueError, match="ema_rate is the rate of kl_anchor 'ema'"):
        RLHF("CartPole-v1", kl_coef=0.1, ema_rate=0.1)
    with pytest.raises(ValueError, match="reward 'true'"):
        RLHF("CartPole-v1", kl_coef=0.1, reward="true")
    PPO("MlpPolicy", "Pendulum-v1", **TINY).save(tmp_path / "pendulum.zip")
    agent = PPO("MlpPolicy", gym.make("CartPole-v1"), **TINY)
    with pytest.raises(ValueError, match="does not fit this task"):
        load_parameters(agent, str(tmp_path / "pendulum.zip"))


def test_train_command_takes_the_kl_flags(tmp_path):
    from rlhf_gym.cli.main import main

    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({"hyperparams": HP, "eval_freq": 100_000, "final_eval_episodes": 2}))
    argv = ["train", "--task", "CartPole-v1", "--horizon", "fixed", "--labels", "4", "--timesteps", "256"]
    argv += ["--segment-length", "10", "--config", str(config), "--kl-coef", "0.5", "--kl-anchor", "ema"]
    argv += ["--ema-rate", "0.2", "--kl-penalty", "loss", "--out", str(tmp_path / "run"), "-q"]
    assert main(argv) == 0
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert (saved["kl_coef"], saved["kl_anchor"], saved["ema_rate"], saved["kl_penalty"]) == (
        0.5,
        "ema",
        0.2,
        "loss",
    )
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["kl_from_init"] > 0


def test_building_an_anchor_leaves_the_random_stream_alone():
    agent = PPO("MlpPolicy", "Pendulum-v1", seed=0, **TINY)
    state = torch.random.get_rng_state()
    Anchor(agent.policy, kind="ema")
    assert torch.equal(torch.random.get_rng_state(), state)


def test_an_ema_anchor_acts_on_the_live_policys_observation_statistics():
    """With ``normalize`` the policy's observation statistics are buffers: the EMA anchor takes
    the live ones at each step, so at rate 1 it is the live policy exactly."""
    from rlhf_gym.agents.normalize import NormalizedObs

    agent = PPO(
        "MlpPolicy",
        "Pendulum-v1",
        seed=0,
        device="cpu",
        n_steps=16,
        policy_kwargs={"net_arch": [8], "features_extractor_class": NormalizedObs},
    )
    ema = Anchor(agent.policy, kind="ema", rate=1.0)
    agent.policy.features_extractor.update(np.random.default_rng(0).normal(3.0, 2.0, (64, 3)))
    loss = sum((p**2).sum() for p in agent.policy.parameters())
    agent.policy.optimizer.zero_grad()
    loss.backward()
    agent.policy.optimizer.step()
    assert torch.equal(ema.policy.features_extractor.mean, agent.policy.features_extractor.mean)
    obs = np.random.default_rng(1).normal(3.0, 2.0, (32, 3)).astype(np.float32)
    assert float(policy_kl(agent.policy, ema.policy, obs).max()) < 1e-6
