import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv

from rlhf_gym.agents.cloning import behaviour_clone
from rlhf_gym.agents.registry import make_agent
from rlhf_gym.feedback.synthetic import run
from rlhf_gym.tasks.registry import get_expert, get_task


def expert_data(name: str, episodes: int):
    task = get_task(name)
    expert, env = get_expert(task), task.make()
    trajs = [run(env, expert, env.reset(seed=k)[0], task.max_episode_steps)[0] for k in range(episodes)]
    return task, np.concatenate([t.obs for t in trajs]), np.concatenate([t.actions for t in trajs])


@pytest.mark.parametrize(
    ("task", "algo"), [("CartPole-v1", "ppo"), ("CartPole-v1", "dqn"), ("Pendulum-v1", "sac")]
)
def test_behaviour_cloning_raises_the_likelihood_of_the_experts_actions(task, algo):
    task, obs, actions = expert_data(task, 2)
    agent = make_agent(algo, DummyVecEnv([task.make]), {}, 0, False)
    rng = np.random.default_rng(0)

    def nll():  # one full-batch step: the loss it reports is that of the policy before the step
        return behaviour_clone(agent, obs, actions, 1, rng, batch_size=len(obs))

    before = nll()
    behaviour_clone(agent, obs, actions, 300, rng)
    assert nll() < before - 0.1


def test_behaviour_cloning_fits_dqn_q_values_by_dqfds_large_margin():
    """DQN clones with DQfD's large-margin loss (Hester et al. 2018): the expert's action must
    beat every other by 0.8 in Q, and no further; a softmax cross-entropy instead pulls the
    Q-values apart without bound."""
    import torch

    task, obs, actions = expert_data("CartPole-v1", 2)
    agent = make_agent("dqn", DummyVecEnv([task.make]), {}, 0, False)

    def q_values() -> np.ndarray:
        with torch.no_grad():
            return agent.q_net(torch.as_tensor(obs)).numpy()

    q, a = q_values()[0], actions[0]  # the loss a step reports is that before the step
    one = behaviour_clone(agent, obs[:1].repeat(4, 0), actions[:1].repeat(4), 1, np.random.default_rng(0))
    assert one == pytest.approx(max(q[a], q[1 - a] + 0.8) - q[a], rel=1e-4)
    behaviour_clone(agent, obs, actions, 2000, np.random.default_rng(0))
    q = q_values()
    rows = np.arange(len(q))
    gap = q[rows, actions] - q[rows, 1 - actions]
    assert np.mean(q.argmax(1) == actions) > 0.8
    # beyond the margin nothing pushes; the cross-entropy it replaces left a median gap of 2.6
    # and a 90th percentile of 4.7 here, and growing
    assert 0.8 <= np.median(gap) < 1.5 and np.percentile(gap, 90) < 2.5


def test_behaviour_cloning_moves_a_sac_actor_toward_the_pendulum_expert():
    task, obs, actions = expert_data("Pendulum-v1", 2)
    agent = make_agent("sac", DummyVecEnv([task.make]), {}, 0, False)
    error = lambda: np.abs(agent.predict(obs, deterministic=True)[0] - actions).mean()  # noqa: E731
    before = error()
    behaviour_clone(agent, obs, actions, 300, np.random.default_rng(0))
    assert error() < 0.6 * before
    assert np.isnan(behaviour_clone(agent, obs[:0], actions[:0], 10, np.random.default_rng(0)))


def test_pretrained_agent_imitates_the_expert():
    from rlhf_gym.agents.cloning import pretrained

    task = get_task("CartPole-v1")
    agent = pretrained(
        task, "ppo", episodes=1, bc_steps=300, hyperparams={"policy_kwargs": {"net_arch": [16]}}
    )
    expert = get_expert(task)
    env, states = task.make("natural"), []
    o, _ = env.reset(seed=123)
    for _ in range(200):  # states the expert visits in another episode
        states.append(o)
        o, *_ = env.step(expert(o))
    agree = np.mean(agent.predict(np.array(states), deterministic=True)[0] == [expert(o) for o in states])
    assert agree > 0.8
    with pytest.raises(ValueError, match="noise must be a probability"):
        pretrained(task, noise=1.5)


def test_sample_actions_redraws_gsde_noise():
    from stable_baselines3 import PPO

    from rlhf_gym.agents.registry import sample_actions

    kw = {"policy_kwargs": {"net_arch": [8]}, "device": "cpu", "seed": 0}
    agent = PPO("MlpPolicy", "Pendulum-v1", use_sde=True, **kw)
    obs = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    fixed = [agent.predict(obs, deterministic=False)[0] for _ in range(2)]
    np.testing.assert_array_equal(*fixed)  # SB3 keeps one noise matrix between calls
    drawn = [sample_actions(agent.policy, obs) for _ in range(2)]
    assert not np.allclose(*drawn)


def test_state_value_reads_each_kind_of_critic():
    import torch

    from rlhf_gym.agents.critics import state_value

    cart, pend = get_task("CartPole-v1"), get_task("Pendulum-v1")
    obs = np.stack([cart.make().reset(seed=k)[0] for k in range(3)])
    ppo = make_agent("ppo", DummyVecEnv([cart.make]), {}, 0, False)
    expected = ppo.policy.predict_values(torch.as_tensor(obs)).squeeze(-1).detach().numpy()
    assert np.allclose(state_value(ppo)(obs), expected)
    dqn = make_agent("dqn", DummyVecEnv([cart.make]), {}, 0, False)
    q = dqn.policy.q_net(torch.as_tensor(obs)).detach().numpy()
    assert np.allclose(state_value(dqn)(obs), q.max(axis=1))
    sac = make_agent("sac", DummyVecEnv([pend.make]), {}, 0, False)
    assert state_value(sac)(np.zeros((2, 3), np.float32)).shape == (2,)
    # (saving and loading critics: tests/agents/test_files.py)


@pytest.mark.parametrize(
    "algo, task", [("ppo", "CartPole-v1"), ("dqn", "CartPole-v1"), ("sac", "Pendulum-v1")]
)
def test_reset_critic_gives_the_critic_fresh_weights_and_moments_and_keeps_the_actor(algo, task):
    import torch

    from rlhf_gym.agents.critics import reset_critic

    hp = {"n_steps": 64, "batch_size": 32} if algo == "ppo" else {"learning_starts": 0}
    agent = make_agent(algo, DummyVecEnv([get_task(task).make]), hp, 0, False)
    agent.learn(300)  # the optimiser has moments for every parameter
    policy = agent.policy
    critic = getattr(policy, {"ppo": "value_net", "dqn": "q_net", "sac": "critic"}[algo])
    target = getattr(policy, {"ppo": "", "dqn": "q_net_target", "sac": "critic_target"}[algo], None)
    optimizer = policy.critic.optimizer if algo == "sac" else policy.optimizer
    actor = getattr(policy, {"ppo": "action_net", "dqn": "", "sac": "actor"}[algo], None)
    actor_before = [p.detach().clone() for p in actor.parameters()] if actor is not None else []
    with torch.no_grad():
        for p in critic.parameters():
            p.fill_(7.0)
    assert all(p in optimizer.state for p in critic.parameters())
    n = reset_critic(agent)
    assert n >= sum(p.numel() for p in critic.parameters())
    assert all(not torch.all(p == 7.0) for p in critic.parameters())
    assert not any(p in optimizer.state for p in critic.parameters())
    if target is not None:
        for a, b in zip(critic.parameters(), target.parameters()):
            assert torch.equal(a, b)
    if actor is not None:
        for before, p in zip(actor_before, actor.parameters()):
            assert torch.equal(before, p)
            assert p in optimizer.state or algo == "sac"  # (SAC's actor has its own optimiser)
