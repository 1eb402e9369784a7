import gymnasium as gym
import numpy as np
import pytest
from gymnasium.wrappers import ClipAction

from rlhf_gym.tasks import snapshots
from rlhf_gym.tasks.horizon import FixedHorizon
from rlhf_gym.tasks.registry import get_expert, get_task
from rlhf_gym.tasks.snapshots import LayerState, restore, snapshot
from rlhf_gym.wrappers import LearnedReward

CLASSIC = ["CartPole-v1", "Pendulum-v1", "MountainCar-v0", "MountainCarContinuous-v0", "Acrobot-v1"]
TERMINATING = ["CartPole-v1", "MountainCar-v0", "MountainCarContinuous-v0", "Acrobot-v1"]


def random_actions(env: gym.Env, n: int, seed: int = 0) -> list:
    env.action_space.seed(seed)
    return [env.action_space.sample() for _ in range(n)]


def rollout(env: gym.Env, actions) -> list[tuple]:
    """Step ``actions`` until the episode ends; each step as (obs bytes, dtype, reward, flags, info)."""
    out = []
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        out.append((obs.tobytes(), obs.dtype, float(reward), terminated, truncated, info))
        if terminated or truncated:
            break
    return out


def continue_and_reset(env: gym.Env, actions) -> tuple[list[tuple], bytes]:
    """The rest of the episode, then the first observation of the next (unseeded) episode."""
    steps = rollout(env, actions)
    obs, _ = env.reset()
    return steps, obs.tobytes()


@pytest.mark.parametrize("horizon", ["natural", "fixed"])
@pytest.mark.parametrize("name", CLASSIC)
def test_round_trip_is_exact_in_the_same_and_a_fresh_env(name, horizon):
    task = get_task(name)
    env = task.make(horizon)
    actions = random_actions(env, 2 * task.max_episode_steps)
    obs, _ = env.reset(seed=3)
    for action in actions[:7]:
        obs, *_ = env.step(action)
    snap = snapshot(env, obs)
    original = continue_and_reset(env, actions[7:])
    assert len(original[0]) == task.max_episode_steps - 7 or original[0][-1][3]  # ran to the episode's end

    assert np.array_equal(restore(env, snap), obs)
    assert continue_and_reset(env, actions[7:]) == original

    fresh = task.make(horizon)
    fresh.reset(seed=99)
    fresh.step(actions[0])
    assert np.array_equal(restore(fresh, snap), obs)
    assert continue_and_reset(fresh, actions[7:]) == original


@pytest.mark.parametrize("name", TERMINATING)
def test_snapshot_in_the_absorbing_state_of_a_fixed_horizon(name):
    task = get_task(name)
    env = task.make("fixed")
    expert = get_expert(task) if name != "CartPole-v1" else (lambda obs: 0)  # CartPole: fall over fast
    obs, _ = env.reset(seed=1)
    steps = 0
    while not isinstance(env, FixedHorizon) or env._terminal_obs is None:
        obs, _, terminated, truncated, _ = env.step(expert(obs))
        steps += 1
        assert not (terminated or truncated), "the episode should end in the absorbing state"
    obs, _, _, _, info = env.step(expert(obs))  # one absorbing step
    assert info == {"absorbing": True}
    snap = snapshot(env, obs)
    actions = random_actions(env, task.max_episode_steps)
    original = rollout(env, actions)
    assert len(original) == task.max_episode_steps - steps - 1
    assert all(step[-1] == {"absorbing": True} for step in original) and original[-1][4]

    fresh = task.make("fixed")
    fresh.reset(seed=0)
    restore(fresh, snap)
    assert rollout(fresh, actions) == original


def test_learned_reward_and_stateless_wrappers_round_trip():
    task = get_task("Pendulum-v1")
    env = LearnedReward(ClipAction(task.make("fixed")), lambda obs, actions, absorbing: obs[:, 2])
    actions = random_actions(env, 50)
    obs, _ = env.reset(seed=0)
    for action in actions[:5]:
        obs, *_ = env.step(action)
    snap = snapshot(env, obs)
    original = rollout(env, actions[5:])
    restore(env, snap)
    # LearnedReward scores the previous observation: without restoring it the first reward differs.
    assert rollout(env, actions[5:]) == original


def test_the_snapshot_holds_copies():
    env = get_task("CartPole-v1").make("fixed")
    obs, _ = env.reset(seed=0)
    snap = snapshot(env, obs)
    saved = obs.copy()
    obs[:] = 7.0  # the caller's array
    for _ in range(5):
        env.step(0)  # the environment's own state
    restored = restore(env, snap)
    restored[:] = 8.0  # the returned array
    assert np.array_equal(snap.obs, saved)
    assert np.array_equal(restore(env, snap), saved)
    assert np.array_equal(env.unwrapped.state.astype(np.float32), saved)
    assert env._t == 0


def test_unsupported_environment():
    env = gym.make("FrozenLake-v1")
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"cannot snapshot FrozenLakeEnv .*supported for CartPoleEnv"):
        snapshot(env, np.array(0))


def test_a_registered_handler_extends_support(monkeypatch):
    env = gym.make("FrozenLake-v1")
    obs, _ = env.reset(seed=0)
    monkeypatch.setitem(snapshots.HANDLERS, type(env.unwrapped), LayerState(state=("s", "_np_random")))
    snap = snapshot(env, np.asarray(obs))
    first = [env.step(2)[:4] for _ in range(3)]
    restore(env, snap)
    assert [env.step(2)[:4] for _ in range(3)] == first


def test_restoring_into_another_task_or_horizon():
    cartpole, pendulum = get_task("CartPole-v1"), get_task("Pendulum-v1")
    env = cartpole.make("natural")
    obs, _ = env.reset(seed=0)
    snap = snapshot(env, obs)
    other = pendulum.make("natural")
    other.reset(seed=0)
    with pytest.raises(ValueError, match=r"snapshot of CartPole-v1 .* into Pendulum-v1"):
        restore(other, snap)
    fixed = cartpole.make("fixed")
    fixed.reset(seed=0)
    with pytest.raises(
        ValueError, match=r"layers TimeLimit > OrderEnforcing .* into CartPole-v1 \(layers FixedHorizon"
    ):
        restore(fixed, snap)
    mountain_car = get_task("MountainCar-v0").make("natural")
    mc_obs, _ = mountain_car.reset(seed=0)
    continuous = get_task("MountainCarContinuous-v0").make("natural")
    continuous.reset(seed=0)
    with pytest.raises(ValueError, match="MountainCar-v0"):
        restore(continuous, snapshot(mountain_car, mc_obs))


def test_a_failed_restore_changes_nothing():
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=0)
    shorter = gym.make("CartPole-v1", max_episode_steps=100)
    shorter.reset(seed=1)
    state = shorter.unwrapped.state.copy()
    with pytest.raises(ValueError, match=r"TimeLimit\._max_episode_steps is 100, the snapshot has 500"):
        restore(shorter, snapshot(env, obs))
    assert np.array_equal(shorter.unwrapped.state, state)


def test_bad_arguments():
    env = gym.make("CartPole-v1")
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"obs has shape \(3,\); .*shape \(4,\)"):
        snapshot(env, np.zeros(3))
    with pytest.raises(TypeError, match="snap must be a Snapshot, got dict"):
        restore(env, {})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"state must be a tuple of attribute names, got '_t'"):
        LayerState(state="_t")  # type: ignore[arg-type]
