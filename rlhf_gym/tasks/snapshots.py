"""Save an environment's state and put it back: the basis of corrections.

A correction restores the state an agent was in, lets a corrector act for a few steps and
compares that with the agent's own continuation from the same state. ``snapshot`` deep-copies
the per-episode state of every layer of an environment (the wrappers' step counters and
absorbing flags, the simulator's state and its random generator); ``restore`` writes it into
the same environment or into another one built by the same ``Task.make(horizon)``. Stepping
the same actions from a restored state then gives bit-identical observations, rewards,
``terminated``/``truncated`` flags and infos.

Each layer class that holds state has a ``LayerState`` handler in ``HANDLERS``. A wrapper
without a handler is taken to be stateless and passed through; an unwrapped environment
without one cannot be snapshotted. Gymnasium's classic-control environments are registered
here; the project's own environments and the adapters register themselves when their module
loads. Support for another environment is one ``register`` call.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control import (
    AcrobotEnv,
    CartPoleEnv,
    Continuous_MountainCarEnv,
    MountainCarEnv,
    PendulumEnv,
)
from gymnasium.wrappers import OrderEnforcing, TimeLimit

from rlhf_gym.tasks.horizon import FixedHorizon

# Every gymnasium.Env keeps its random generator here; it is drawn from by reset() without a
# seed (and by Acrobot's optional torque noise), so it is part of the state.
RANDOM = ("_np_random", "_np_random_seed")


@dataclass(frozen=True)
class LayerState:
    """How to save and load the state of one layer (a wrapper or the unwrapped environment).

    Args:
        state: attributes that change during an episode; deep-copied on save and on load.
        params: attributes fixed at construction that must be equal in the environment a
            snapshot is restored into (e.g. a time limit or a gravity constant).

    Example:
        >>> handler = LayerState(state=("_elapsed_steps",), params=("_max_episode_steps",))
        >>> env = gym.make("CartPole-v1")
        >>> _ = env.reset(seed=0)
        >>> _ = env.step(0)
        >>> saved = handler.capture(env)
        >>> saved["state"]["_elapsed_steps"], saved["params"]["_max_episode_steps"]
        (1, 500)
    """

    state: tuple[str, ...]
    params: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for field in ("state", "params"):
            names = getattr(self, field)
            if not isinstance(names, tuple) or not all(isinstance(n, str) for n in names):
                raise TypeError(f"LayerState {field} must be a tuple of attribute names, got {names!r}")

    def capture(self, layer: Any) -> dict[str, dict[str, Any]]:
        """Deep copies of the layer's state attributes, and its parameters to check later."""
        return {
            "state": {name: copy.deepcopy(getattr(layer, name)) for name in self.state},
            "params": {name: copy.deepcopy(getattr(layer, name)) for name in self.params},
        }

    def mismatch(self, layer: Any, saved: dict[str, dict[str, Any]]) -> list[str]:
        """Descriptions of the parameters whose values differ from the saved ones (empty if none)."""
        out = []
        for name, value in saved["params"].items():
            here = getattr(layer, name, None)
            if not _equal(here, value):
                out.append(f"{type(layer).__name__}.{name} is {here!r}, the snapshot has {value!r}")
        return out

    def load(self, layer: Any, saved: dict[str, dict[str, Any]]) -> None:
        """Write deep copies of the saved state into the layer (the snapshot stays reusable)."""
        for name, value in saved["state"].items():
            setattr(layer, name, copy.deepcopy(value))


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(a, b))
    return bool(a == b)


HANDLERS: dict[type, LayerState] = {}
"""The state handler of each layer class, looked up by exact class (a subclass may add state)."""


def register(cls: type, handler: LayerState) -> None:
    """Add or replace the handler for a wrapper or environment class."""
    if not isinstance(cls, type):
        raise TypeError(f"register needs a class, got {cls!r}")
    HANDLERS[cls] = handler


# Wrappers. TimeLimit and OrderEnforcing come from gym.make; PassiveEnvChecker (also from
# gym.make) only warns on the first step and reset and is passed through.
register(TimeLimit, LayerState(state=("_elapsed_steps",), params=("_max_episode_steps",)))
register(OrderEnforcing, LayerState(state=("_has_reset",)))
register(FixedHorizon, LayerState(state=("_t", "_terminal_obs"), params=("horizon", "absorbing_reward")))

# Classic control: the attributes each env's step() reads and writes (gymnasium 1.x sources,
# envs/classic_control/*.py); constructor arguments that change the dynamics are parameters.
CLASSIC_CONTROL = (CartPoleEnv, PendulumEnv, MountainCarEnv, Continuous_MountainCarEnv, AcrobotEnv)
register(
    CartPoleEnv,
    LayerState(state=("state", "steps_beyond_terminated", *RANDOM), params=("_sutton_barto_reward",)),
)
register(PendulumEnv, LayerState(state=("state", "last_u", *RANDOM), params=("g",)))
register(MountainCarEnv, LayerState(state=("state", *RANDOM), params=("goal_velocity",)))
register(Continuous_MountainCarEnv, LayerState(state=("state", *RANDOM), params=("goal_velocity",)))
register(AcrobotEnv, LayerState(state=("state", *RANDOM), params=("torque_noise_max", "book_or_nips")))


@dataclass(frozen=True, eq=False)
class Snapshot:
    """An environment's saved state: opaque, made by ``snapshot`` and used by ``restore``.

    It holds deep copies, so stepping the environment afterwards does not change it, and it
    can be restored any number of times.

    Args:
        env_id: the Gymnasium id of the environment it was taken from.
        layers: the class of each layer, outermost wrapper first, as ``module.QualName``.
        states: what each layer's handler saved (``None`` for a layer passed through).
        obs: the observation the environment was at.

    Example:
        >>> env = gym.make("CartPole-v1")
        >>> obs, _ = env.reset(seed=0)
        >>> snap = snapshot(env, obs)
        >>> first = env.step(1)
        >>> np.array_equal(restore(env, snap), obs)
        True
        >>> again = env.step(1)
        >>> np.array_equal(first[0], again[0]) and first[1:] == again[1:]
        True
    """

    env_id: str | None
    layers: tuple[str, ...]
    states: tuple[dict[str, dict[str, Any]] | None, ...]
    obs: np.ndarray


def _layers(env: gym.Env) -> list[Any]:
    """The wrapper chain from the outside in, ending with the unwrapped environment."""
    out: list[Any] = [env]
    while isinstance(out[-1], gym.Wrapper):
        out.append(out[-1].env)
    return out


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _env_id(env: gym.Env) -> str | None:
    spec = env.unwrapped.spec
    return spec.id if spec is not None else None


def snapshot(env: gym.Env, obs: np.ndarray) -> Snapshot:
    """Save the state of ``env``, which is currently at observation ``obs``.

    Raises:
        ValueError: the environment has no registered handler,
            or ``obs`` does not have the shape of its observation space.
    """
    layers = _layers(env)
    base = layers[-1]
    if type(base) not in HANDLERS:
        supported = ", ".join(cls.__name__ for cls in HANDLERS if not issubclass(cls, gym.Wrapper))
        raise ValueError(
            f"cannot snapshot {type(base).__name__} ({_env_id(env)}): snapshots are supported for {supported}"
        )
    obs = np.array(obs, copy=True)
    shape = env.observation_space.shape
    if shape is not None and obs.shape != shape:
        raise ValueError(
            f"obs has shape {obs.shape}; expected the current observation of {_env_id(env)}, shape {shape}"
        )
    states = tuple(
        HANDLERS[type(layer)].capture(layer) if type(layer) in HANDLERS else None for layer in layers
    )
    return Snapshot(_env_id(env), tuple(_name(type(layer)) for layer in layers), states, obs)


def restore(env: gym.Env, snap: Snapshot) -> np.ndarray:
    """Put ``env`` into the state saved in ``snap`` and return the saved observation.

    ``env`` may be the environment the snapshot was taken from, or another one built the same
    way (the same ``Task.make(horizon)``). Nothing is changed if the check fails.

    Raises:
        TypeError: ``snap`` is not a ``Snapshot``.
        ValueError: ``env`` is a different task, horizon mode or wrapper chain, or has
            different parameters.
    """
    if not isinstance(snap, Snapshot):
        raise TypeError(f"snap must be a Snapshot, got {type(snap).__name__}")
    layers = _layers(env)
    names = tuple(_name(type(layer)) for layer in layers)
    if _env_id(env) != snap.env_id or names != snap.layers:
        raise ValueError(
            f"cannot restore a snapshot of {snap.env_id} (layers {_short(snap.layers)}) into "
            f"{_env_id(env)} (layers {_short(names)}); expected an environment built by the same "
            "Task.make(horizon)"
        )
    problems = [
        problem
        for layer, saved in zip(layers, snap.states)
        if saved is not None
        for problem in HANDLERS[type(layer)].mismatch(layer, saved)
    ]
    if problems:
        raise ValueError(f"cannot restore a snapshot of {snap.env_id}: {'; '.join(problems)}")
    for layer, saved in zip(layers, snap.states):
        if saved is not None:
            HANDLERS[type(layer)].load(layer, saved)
    return snap.obs.copy()


def _short(names: tuple[str, ...]) -> str:
    return " > ".join(name.rsplit(".", 1)[-1] for name in names)
