import dataclasses
import itertools

import numpy as np
import pytest
import torch

from rlhf_gym.algos.bon import BestOfN, best_of_n_episode, bon_kl_bound, evaluate_best_of_n
from rlhf_gym.tasks.registry import get_task
from tests.conftest import tiny_run

# Short horizons keep every episode cheap; snapshots check that all copies share them.
CARTPOLE = dataclasses.replace(get_task("CartPole-v1"), max_episode_steps=200)
PENDULUM = dataclasses.replace(get_task("Pendulum-v1"), max_episode_steps=100)


def cartpole_reward(obs, actions, absorbing):
    """CartPole's true reward in the fixed horizon: +1 per step, 0 in the absorbing state."""
    return 1.0 - np.asarray(absorbing, dtype=float)


def pendulum_reward(obs, actions, absorbing):
    """Pendulum's true reward from the observation (cos, sin, thetadot) and the torque."""
    theta = np.arctan2(obs[:, 1], obs[:, 0])
    u = np.clip(np.asarray(actions, dtype=float).reshape(len(obs), -1)[:, 0], -2.0, 2.0)
    return -(theta**2 + 0.1 * obs[:, 2] ** 2 + 0.001 * u**2)


def negated(reward_fn):
    return lambda obs, actions, absorbing: -reward_fn(obs, actions, absorbing)


TRUE_REWARD = {"CartPole-v1": cartpole_reward, "Pendulum-v1": pendulum_reward}


def random_policy(task, seed):
    """A seeded uniform policy over the task's action space, batched."""
    space = task.make().action_space
    rng = np.random.default_rng(seed)
    if task.env_id == "CartPole-v1":
        return lambda obs: rng.integers(0, space.n, len(obs))
    return lambda obs: rng.uniform(space.low, space.high, (len(obs), *space.shape)).astype(np.float32)


def plain_rollout(task, policy, seed, horizon):
    env = task.make(horizon)
    obs, _ = env.reset(seed=seed)
    steps = []
    while True:
        action = np.asarray(policy(obs[None]))[0]
        next_obs, reward, terminated, truncated, _ = env.step(action)
        steps.append((obs, action, reward))
        obs = next_obs
        if terminated or truncated:
            return steps, terminated


def test_pendulum_reward_helper_is_the_true_reward():
    traj, _ = best_of_n_episode(PENDULUM, random_policy(PENDULUM, 0), pendulum_reward, n=1, chunk=10, seed=0)
    assert np.allclose(pendulum_reward(traj.obs, traj.actions, traj.absorbing), traj.true_rewards, atol=1e-4)


@pytest.mark.parametrize("task", [CARTPOLE, PENDULUM], ids=lambda t: t.env_id)
def test_selection_follows_the_reward(task):
    # Chunks of 25 steps: long enough for CartPole's sparse true reward (+1 while upright) to tell a
    # doomed candidate from a safe one; with chunks of 10, best-of-8 ties too often to help reliably.
    reward = TRUE_REWARD[task.env_id]
    means = {}
    for label, n, fn in (("one", 1, reward), ("best", 8, reward), ("worst", 8, negated(reward))):
        result = evaluate_best_of_n(task, random_policy(task, 1), fn, n=n, chunk=25, episodes=3, seed=0)
        means[label] = result["true_return_mean"]
        sign = 1 if fn is reward else -1
        assert result["proxy_return_mean"] == pytest.approx(
            sign * result["true_return_mean"], abs=1e-3 * task.max_episode_steps
        )
    margin = 0.05 * abs(means["one"])
    assert means["best"] > means["one"] + margin, means  # selecting by the reward helps ...
    assert means["worst"] < means["one"] - margin, means  # ... and selecting against it hurts


@pytest.mark.parametrize("task", [CARTPOLE, PENDULUM], ids=lambda t: t.env_id)
def test_fixed_horizon_episode_length_and_env_steps(task):
    traj, env_steps = best_of_n_episode(
        task, random_policy(task, 0), TRUE_REWARD[task.env_id], n=4, chunk=30, seed=5
    )
    assert len(traj) == task.max_episode_steps  # 30 does not divide it: the last chunk is cut short
    assert env_steps == 4 * len(traj)
    assert not traj.terminated
    assert np.all(traj.true_rewards[traj.absorbing] == task.absorbing_reward)


@pytest.mark.parametrize("horizon", ["natural", "fixed"])
def test_one_candidate_is_an_ordinary_rollout(horizon):
    traj, env_steps = best_of_n_episode(
        CARTPOLE, random_policy(CARTPOLE, 3), cartpole_reward, n=1, chunk=7, seed=2, horizon=horizon
    )
    steps, terminated = plain_rollout(CARTPOLE, random_policy(CARTPOLE, 3), seed=2, horizon=horizon)
    assert env_steps == len(traj) == len(steps)
    assert traj.terminated == terminated == (horizon == "natural")
    assert np.array_equal(traj.obs, np.stack([s[0] for s in steps]))
    assert np.array_equal(traj.actions, np.stack([s[1] for s in steps]))
    assert np.array_equal(traj.true_rewards, [s[2] for s in steps])


def test_candidates_end_with_the_episode_in_the_natural_horizon():
    task = CARTPOLE
    envs = [task.make("natural") for _ in range(8)]
    for seed in range(3):
        traj, env_steps = best_of_n_episode(
            task,
            random_policy(task, seed),
            cartpole_reward,
            n=8,
            chunk=10,
            seed=seed,
            horizon="natural",
            envs=envs,
        )
        assert traj.terminated or len(traj) == task.max_episode_steps
        assert len(traj) <= env_steps <= 8 * len(traj) + 8 * 10
        assert not traj.absorbing.any() and np.all(traj.true_rewards == 1.0)
        if traj.terminated:  # the final observation is the terminal state: the pole fell or the cart left
            x, _, theta, _ = traj.final_obs
            assert abs(theta) > 0.2095 or abs(x) > 2.4


def test_bad_arguments_are_rejected():
    policy = random_policy(CARTPOLE, 0)
    with pytest.raises(ValueError, match="n must be at least 1"):
        best_of_n_episode(CARTPOLE, policy, cartpole_reward, n=0, chunk=5, seed=0)
    with pytest.raises(ValueError, match="chunk must be at least 1"):
        best_of_n_episode(CARTPOLE, policy, cartpole_reward, n=2, chunk=0, seed=0)
    with pytest.raises(TypeError, match="n must be an int"):
        best_of_n_episode(CARTPOLE, policy, cartpole_reward, n=2.0, chunk=5, seed=0)
    with pytest.raises(ValueError, match="envs holds 1 environments; expected n=2"):
        best_of_n_episode(
            CARTPOLE, policy, cartpole_reward, n=2, chunk=5, seed=0, envs=[CARTPOLE.make("fixed")]
        )
    with pytest.raises(ValueError, match="policy returned 1 actions for a batch of 2"):
        best_of_n_episode(CARTPOLE, lambda obs: np.zeros(1, int), cartpole_reward, n=2, chunk=5, seed=0)


def test_kl_bound():
    assert bon_kl_bound(1) == 0.0
    values = [bon_kl_bound(n) for n in range(1, 65)]
    assert all(b > a for a, b in itertools.pairwise(values))
    assert bon_kl_bound(16) == pytest.approx(np.log(16) - 15 / 16)
    with pytest.raises(ValueError, match="n must be at least 1"):
        bon_kl_bound(0)


def test_evaluation_counts_decisions_and_steps():
    result = evaluate_best_of_n(
        PENDULUM, random_policy(PENDULUM, 0), pendulum_reward, n=3, chunk=30, episodes=2, seed=0
    )
    assert result["env_steps"] == 2 * 3 * 100
    assert result["kl_bound"] == pytest.approx(4 * bon_kl_bound(3))  # ceil(100 / 30) decisions
    assert result["true_return_std"] > 0.0 and result["n"] == 3 and result["episodes"] == 2


def test_decisions_in_the_absorbing_state_cost_no_kl():
    result = evaluate_best_of_n(
        CARTPOLE, random_policy(CARTPOLE, 0), cartpole_reward, n=2, chunk=25, episodes=1, seed=0
    )
    traj, _ = best_of_n_episode(CARTPOLE, random_policy(CARTPOLE, 0), cartpole_reward, n=2, chunk=25, seed=0)
    live = int(np.sum(~traj.absorbing[::25]))
    assert 1 <= live < 200 // 25  # the pole fell: the last decisions were in the absorbing state
    assert result["kl_bound"] == pytest.approx(live * bon_kl_bound(2))
    assert result["true_return_mean"] == traj.true_return


def make_agent(task, **kwargs):
    torch.manual_seed(0)
    return BestOfN(
        "MlpPolicy",
        task.make("fixed"),
        n_steps=32,
        batch_size=32,
        policy_kwargs={"net_arch": [16]},
        seed=0,
        device="cpu",
        **{"bon_n": 2, "bon_chunk": 10, "bon_episodes": 1, "bc_steps_per_train": 20, **kwargs},
    )


def parameters(agent):
    return [p.detach().clone() for p in agent.policy.parameters()]


@pytest.mark.parametrize("task", [CARTPOLE, PENDULUM], ids=lambda t: t.env_id)
def test_best_of_n_agent_clones_its_best_episodes(task):
    agent = make_agent(task, bon_keep=2)
    agent.task, agent.reward_fn = task, TRUE_REWARD[task.env_id]
    before = parameters(agent)
    agent.learn(96)  # three rollouts, three train() calls
    assert agent.bon_env_steps == 3 * 2 * task.max_episode_steps
    assert len(agent._bon_data) == 2  # only the last bon_keep calls' episodes
    assert any(not torch.equal(a, b) for a, b in zip(before, parameters(agent)))
    logged = agent.logger.name_to_value
    assert logged["train/bon_env_steps"] == agent.bon_env_steps
    if task is PENDULUM:
        assert logged["train/bon_proxy_return"] == pytest.approx(logged["train/bon_true_return"], abs=0.1)


def test_best_of_n_agent_is_reproducible():
    runs = []
    for _ in range(2):
        agent = make_agent(CARTPOLE)
        agent.task, agent.reward_fn = CARTPOLE, cartpole_reward
        agent.learn(64)
        runs.append(parameters(agent))
    assert all(torch.equal(a, b) for a, b in zip(*runs))


def test_without_a_reward_train_does_nothing():
    agent = make_agent(CARTPOLE)
    agent.task = CARTPOLE
    before = parameters(agent)
    agent.learn(64)
    assert agent.bon_env_steps == 0
    assert all(torch.equal(a, b) for a, b in zip(before, parameters(agent)))


def test_without_a_task_train_says_so():
    agent = make_agent(CARTPOLE)
    agent.reward_fn = cartpole_reward
    with pytest.raises(ValueError, match=r"agent\.task"):
        agent.learn(32)


def test_save_and_load(tmp_path):
    agent = make_agent(CARTPOLE, bon_n=3, bon_keep=4)
    agent.task, agent.reward_fn = CARTPOLE, cartpole_reward
    agent.learn(32)
    agent.save(tmp_path / "bon.zip")
    loaded = BestOfN.load(tmp_path / "bon.zip", device="cpu")
    assert (loaded.bon_n, loaded.bon_chunk, loaded.bon_keep, loaded.bon_env_steps) == (
        3,
        10,
        4,
        agent.bon_env_steps,
    )
    assert loaded.reward_fn is None and loaded.task is None and loaded._bon_data == []
    assert all(torch.equal(a, b) for a, b in zip(parameters(agent), parameters(loaded)))
    loaded.set_env(CARTPOLE.make("fixed"))
    loaded.task, loaded.reward_fn = CARTPOLE, cartpole_reward
    loaded.learn(32, reset_num_timesteps=False)
    assert loaded.bon_env_steps == 2 * agent.bon_env_steps


@pytest.mark.parametrize(
    "kwargs",
    [{"bon_n": 0}, {"bon_chunk": -1}, {"bon_episodes": 1.5}, {"bon_keep": True}, {"bc_steps_per_train": 0}],
)
def test_bad_agent_arguments_are_rejected(kwargs):
    (name,) = kwargs
    with pytest.raises(ValueError, match=name):
        make_agent(CARTPOLE, **kwargs)


def test_the_pipeline_gives_best_of_n_its_learned_reward():
    hp = {"bon_n": 2, "bon_chunk": 10, "bon_episodes": 1, "bc_steps_per_train": 2}
    run = tiny_run(algo="bon", labels=4, total_timesteps=128, hyperparams=hp).learn()
    assert isinstance(run.agent, BestOfN) and run.agent.reward_fn is run.reward_model
    assert run.agent.bon_env_steps > 0 and run.last_fit is not None
