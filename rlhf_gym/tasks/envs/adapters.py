"""Adapters of other suites' tasks: snapshot handlers (their experts: ``adapter_experts``).

Four tasks come from optional extras: ``Reacher-v5`` and ``Pusher-v5`` (``mujoco``),
``LunarLander-v3`` (``box2d``) and ``PongRam-v5`` (``atari``, ALE Pong with the 128 RAM bytes
as observation). ``Task.make`` of such a task imports this module, which registers the
snapshot handlers of whatever is installed; it imports with none of the extras.

Snapshots are exact (bit-identical continuations, in the same environment or another one
built by the same ``Task.make(horizon)``):

- MuJoCo: the whole ``MjData`` (positions, velocities, activations, time, the solver's warm
  start, derived quantities) is copied into the environment's own ``data`` with
  ``mj_copyData``, which the renderer keeps referencing.
- ALE: ``ale.cloneState(include_rng=True)`` / ``restoreState``; the RNG drives sticky actions
  and unseeded resets. The screen is not part of the ALE's state: after a restore,
  ``render()`` shows the last frame drawn until the next step.
- LunarLander: a Box2D world cannot be copied, so ``rlhf_gym/LunarLander-v3`` is gymnasium's
  ``LunarLander`` plus a record of its generator before the last reset and the actions since;
  a restore resets with that generator and replays the actions. Every reset builds a fresh
  Box2D world, so the replay is exact. It costs one step per step since the reset (about
  0.2 s for a full 1000-step episode).

Experts (pure functions of one observation). Mean true return over seeds 0-19 (the same in
both horizon modes: every absorbing step is worth 0), against uniform random actions;
reproduce with ``python -m rlhf_gym.tasks.registry`` (about 3 minutes, mostly Pong):

    task             expert                   expert    random
    Reacher-v5       reacher_ik                 -3.5     -43.3
    Pusher-v5        pusher_script             -38.8    -146.8   (zero torque: -54.4)
    LunarLander-v3   lunar_lander_heuristic    263.9    -203.8
    PongRam-v5       ale_pong_tracker            1.1     -20.2   (3000 steps)

SB3 on the true reward (seed 0, fixed horizon, the preset's algorithm and budget, one shared
core; details in the presets):

    task             algo   timesteps   return   wall
    Reacher-v5       sac       30,000     -6.4   593 s
    Pusher-v5        sac       30,000    -39.4   395 s
    LunarLander-v3   ppo    1,000,000    249.0   258 s   (209 at 800k, -80 at 200k)
    PongRam-v5       ppo      200,000    -21.0    98 s   (still -21.0 at 1M, 255 s)

Steps/s with uniform random actions through ``Task.make`` (raw ``env.unwrapped.step``), on
a shared core: Reacher 4,900 (5,100), Pusher 4,400 (5,000), LunarLander 6,300 (6,600), Pong
960 (1,080).

Example:
    >>> import numpy as np
    >>> from rlhf_gym.tasks.envs.adapter_experts import ReacherExpert
    >>> expert = ReacherExpert()
    >>> obs = np.array([1, 1, 0, 0, 0.21, 0, 0, 0, 0, 0])  # arm stretched along x, target on it
    >>> bool(np.abs(expert(obs)).max() < 1e-6)  # already there: no torque
    True
"""

from __future__ import annotations

import copy
import os
import sys
from dataclasses import dataclass
from importlib import import_module
from typing import Any

import gymnasium as gym
import numpy as np

from rlhf_gym.tasks.snapshots import RANDOM, LayerState, register

# MuJoCo renders off-screen through EGL when there is no display (read when the first
# renderer is built, so setting it here is in time).
if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
    os.environ.setdefault("MUJOCO_GL", "egl")


def _optional(module: str) -> Any:
    """The module, or ``None`` if its extra is not installed."""
    try:
        return import_module(module)
    except (ImportError, gym.error.DependencyNotInstalled):
        return None


mujoco: Any = _optional("mujoco")
ReacherEnv: Any = getattr(_optional("gymnasium.envs.mujoco.reacher_v5"), "ReacherEnv", None)
PusherEnv: Any = getattr(_optional("gymnasium.envs.mujoco.pusher_v5"), "PusherEnv", None)
LunarLander: Any = getattr(_optional("gymnasium.envs.box2d.lunar_lander"), "LunarLander", None)
AtariEnv: Any = getattr(_optional("ale_py.env"), "AtariEnv", None)


def need(module: Any, extra: str) -> None:
    if module is None:
        raise ImportError(f'this needs the {extra!r} extra; install it with pip install "rlhf-gym[{extra}]"')


# ----- snapshot handlers --------------------------------------------------------------------
@dataclass(frozen=True)
class MujocoState(LayerState):
    """A MuJoCo environment's state: its attributes plus a copy of its whole ``MjData``."""

    def capture(self, layer: Any) -> dict[str, Any]:
        saved: dict[str, Any] = super().capture(layer)
        saved["data"] = copy.copy(layer.data)  # MjData's copy is a deep copy (mj_copyData)
        return saved

    def load(self, layer: Any, saved: dict[str, Any]) -> None:
        super().load(layer, saved)
        mujoco.mj_copyData(layer.data, layer.model, saved["data"])  # in place: the renderer holds it


@dataclass(frozen=True)
class AleState(LayerState):
    """An ALE environment's state: the emulator (RAM, frame counters, RNG) plus attributes."""

    def capture(self, layer: Any) -> dict[str, Any]:
        saved: dict[str, Any] = super().capture(layer)
        saved["ale"] = layer.ale.cloneState(include_rng=True)
        saved["sticky"] = layer.ale.getFloat("repeat_action_probability")
        return saved

    def mismatch(self, layer: Any, saved: dict[str, Any]) -> list[str]:
        out = super().mismatch(layer, saved)
        sticky = layer.ale.getFloat("repeat_action_probability")
        if sticky != saved["sticky"]:
            out.append(f"repeat_action_probability is {sticky}, the snapshot has {saved['sticky']}")
        return out

    def load(self, layer: Any, saved: dict[str, Any]) -> None:
        super().load(layer, saved)
        layer.ale.restoreState(saved["ale"])


@dataclass(frozen=True)
class ReplayState(LayerState):
    """A ``LunarLanderReplay``'s state: replayed from its last reset, then its attributes."""

    def load(self, layer: Any, saved: dict[str, Any]) -> None:
        state = saved["state"]
        if state["_start"] is not None:
            layer.replay(state["_start"], state["_options"], state["_actions"])
        super().load(layer, saved)  # then the generator, and the record itself


if ReacherEnv is not None and PusherEnv is not None:
    _MUJOCO = ("frame_skip", "fullpath", "_reward_dist_weight", "_reward_control_weight")
    register(ReacherEnv, MujocoState(state=("goal", *RANDOM), params=_MUJOCO))
    # Pusher's reset writes the object's start into init_qpos in place, so it is state too.
    register(
        PusherEnv,
        MujocoState(
            state=("cylinder_pos", "goal_pos", "init_qpos", *RANDOM), params=(*_MUJOCO, "_reward_near_weight")
        ),
    )

if AtariEnv is not None:
    register(
        AtariEnv,
        AleState(state=RANDOM, params=("_game", "_game_mode", "_game_difficulty", "_frameskip", "_obs_type")),
    )

if LunarLander is not None:

    class LunarLanderReplay(LunarLander):
        """Gymnasium's ``LunarLander`` that records what it needs to be rebuilt by replay.

        It keeps a copy of its random generator from just before the last reset's draws
        (``_start``), that reset's options and every action since (``_actions``);
        ``replay`` rebuilds the state from them. Registered as ``rlhf_gym/LunarLander-v3``.

        Example:
            >>> env = gym.make("rlhf_gym/LunarLander-v3")
            >>> _ = env.reset(seed=0)
            >>> _ = env.step(2)
            >>> len(env.unwrapped._actions)
            1
        """

        render_mode: str | None

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._start: np.random.Generator | None = None
            self._options: dict[str, Any] | None = None
            self._actions: list[Any] = []

        def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
            if seed is not None:
                self._np_random, self._np_random_seed = gym.utils.seeding.np_random(seed)
            self._start, self._options = copy.deepcopy(self.np_random), copy.deepcopy(options)
            out = super().reset(options=options)
            self._actions = []  # reset's own first step is not an action
            return out

        def step(self, action: Any) -> Any:
            out = super().step(action)
            self._actions.append(copy.deepcopy(action))
            return out

        def replay(
            self, start: np.random.Generator, options: dict[str, Any] | None, actions: list[Any]
        ) -> None:
            """Reset with generator ``start`` and ``options``, then step ``actions`` (no drawing)."""
            mode = self.render_mode
            if mode == "human":  # rebuild the particles too, but draw nothing
                self.render_mode = "rgb_array"
            try:
                self._np_random = copy.deepcopy(start)
                LunarLander.reset(self, options=options)
                for action in actions:
                    LunarLander.step(self, action)
            finally:
                self.render_mode = mode

    register(
        LunarLanderReplay,
        ReplayState(
            state=("_start", "_options", "_actions", *RANDOM),
            params=("continuous", "gravity", "enable_wind", "wind_power", "turbulence_power"),
        ),
    )
    if "rlhf_gym/LunarLander-v3" not in gym.registry:
        gym.register(
            id="rlhf_gym/LunarLander-v3",
            entry_point="rlhf_gym.tasks.envs.adapters:LunarLanderReplay",
            max_episode_steps=1000,
            reward_threshold=200,
        )
