"""The task registry: YAML presets for known tasks, generic defaults for any Gymnasium id.

A preset (``envs/<name>.yaml``) holds numbers and registered names only: the Gymnasium
id, the horizon, the absorbing reward, the default algorithm with its tuned SB3
hyperparameters, and run overrides. Presets are looked up in ``$RLHF_GYM_PRESETS``, then
the repository's ``envs/`` folder, then the copy shipped inside the wheel.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import import_module
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

import rlhf_gym.tasks.envs  # noqa: F401  (registers rlhf_gym/<Name>-v0)
from rlhf_gym.config import HORIZONS
from rlhf_gym.schema import from_dict, load_yaml
from rlhf_gym.tasks import snapshots
from rlhf_gym.tasks.experts import EXPERTS, Expert
from rlhf_gym.tasks.generic import check_spaces, probe
from rlhf_gym.tasks.horizon import FixedHorizon
from rlhf_gym.tasks.observations import check, preprocess
from rlhf_gym.tasks.zoo import Generic, generic_settings, untuned

ALGOS = ("ppo", "a2c", "dqn", "sac", "cpl", "bon")
PPO_BASED = ("cpl", "bon")
"""Algorithms built on PPO's policy and rollouts (``rlhf_gym.algos.cpl``, ``rlhf_gym.algos.bon``); they
start from the preset's ppo hyperparameters."""
DISCRETE_ONLY = ("dqn",)
CONTINUOUS_ONLY = ("sac",)
FAMILIES = ("classic", "robotics", "game", "generic")

EXTRAS = {"mujoco": "mujoco", "box2d": "Box2D", "atari": "ale_py"}
"""Each optional extra of tasks, and the module it installs."""


@dataclass(frozen=True)
class Task:
    """A task: a Gymnasium environment plus what RLHF needs to know about it.

    Args:
        name: the registry name (the preset's file name, or the Gymnasium id).
        env_id: the Gymnasium id to build.
        family: ``classic``, ``robotics``, ``game`` or ``generic`` (no preset).
        max_episode_steps: the time limit, and the length of every fixed-horizon episode.
        absorbing_reward: the true reward of a step in the absorbing state after termination.
        algo: default SB3 algorithm.
        total_timesteps: default agent budget.
        segment_length: default steps per query segment.
        hyperparams: SB3 keyword arguments per algorithm; ``n_envs`` is read from here too.
        run: overrides of ``RunConfig`` fields for this task.
        description: one line for ``rlhf-gym tasks``.
        expert: the registered name of the task's scripted expert controller (a key of
            ``rlhf_gym.tasks.experts.EXPERTS``), used by synthetic teachers for corrections and
            demonstrations; ``None`` if it has none.
        keys: the keyboard map, pygame key name -> action. For a ``Discrete`` action space
            each key is one action; for a ``Box`` each key is an offset added to ``noop``
            (see ``action_for_keys``).
        noop: the action when no mapped key is held.
        play: how a person plays the task in a window (``rlhf-gym play``, ``rlhf-gym label``'s
            live and demo modes), checked by ``rlhf_gym.human.keymap``: ``fps`` (steps a second
            at a human pace; the environment's ``render_fps`` if absent), ``idle`` (actions
            cycled one a step while no key is held, for a task with no do-nothing action;
            ``noop`` if absent), ``words`` (key, or ``none`` for no key, -> what it does) and
            ``scene`` (what is what on screen).
        extra: the optional extra the task needs (``mujoco``, ``box2d`` or ``atari``), or
            ``None``.
        env_kwargs: keyword arguments for ``gym.make`` (e.g. ``obs_type: ram``).
        observation: image preprocessing (``grayscale``, ``resize``, ``frame_stack``;
            ``rlhf_gym.tasks.observations``).
        zoo: an id without a preset: its settings per algorithm (rl-zoo3's, or SB3's defaults).

    Example:
        >>> task = get_task("CartPole-v1")
        >>> task.algo, task.max_episode_steps
        ('ppo', 500)
        >>> env = task.make(horizon="fixed")
        >>> env.spec.max_episode_steps if env.spec else 500
        500
        >>> obs, _ = env.reset(seed=0)
        >>> snap = task.snapshot(env, obs)
        >>> first = env.step(1)
        >>> restored = task.restore(env, snap)
        >>> bool((env.step(1)[0] == first[0]).all())
        True
    """

    name: str
    env_id: str
    family: str = "generic"
    max_episode_steps: int = 1000
    absorbing_reward: float = 0.0
    algo: str = "ppo"
    total_timesteps: int = 100_000
    segment_length: int = 50
    hyperparams: dict[str, dict[str, Any]] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    expert: str | None = None
    keys: dict[str, Any] = field(default_factory=dict)
    noop: Any = 0
    play: dict[str, Any] = field(default_factory=dict)
    extra: str | None = None
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    observation: dict[str, Any] = field(default_factory=dict)
    zoo: Generic | None = None
    """For an id without a preset: rl-zoo3's settings per algorithm, if any (``rlhf_gym.tasks.zoo``)."""

    def make(self, horizon: str = "natural", render_mode: str | None = None) -> gym.Env:
        """Build the environment with its true reward, in the given horizon mode."""
        if horizon not in HORIZONS:
            raise ValueError(f"unknown horizon {horizon!r}; expected one of {', '.join(HORIZONS)}")
        self._import_extra()
        env = gym.make(
            self.env_id, max_episode_steps=self.max_episode_steps, render_mode=render_mode, **self.env_kwargs
        )
        env = preprocess(env, self.observation)
        check_spaces(env, self.name)
        if horizon == "fixed":
            env = FixedHorizon(env, self.max_episode_steps, self.absorbing_reward)
        return env

    def _import_extra(self) -> None:
        if self.extra is None:
            return
        try:
            module = import_module(EXTRAS[self.extra])
        except ImportError as err:
            raise ImportError(
                f"task {self.name!r} needs the {self.extra!r} extra ({err}); install it with "
                f'pip install "rlhf-gym[{self.extra}]"'
            ) from None
        if self.extra == "atari":
            gym.register_envs(module)
        import_module("rlhf_gym.tasks.envs.adapters")  # snapshot handlers of the adapted environments

    def action_for_keys(self, pressed: Sequence[str], space: spaces.Space) -> Any:
        """The action for the keys held down, in the order they were pressed.

        For a ``Discrete`` space the most recently pressed mapped key wins; for a ``Box`` the
        offsets of every held key are added to ``noop`` and clipped to the bounds. With no
        mapped key held the action is ``noop``.

        Example:
            >>> task = get_task("Pendulum-v1")
            >>> env = task.make()
            >>> task.action_for_keys(["left"], env.action_space).tolist()
            [2.0]
            >>> task.action_for_keys([], env.action_space).tolist()
            [0.0]
        """
        mapped = [k for k in pressed if k in self.keys]
        if isinstance(space, spaces.Discrete):
            return int(self.keys[mapped[-1]]) if mapped else int(self.noop)
        assert isinstance(space, spaces.Box)
        action = np.array(self.noop, dtype=np.float64).reshape(space.shape)
        for k in mapped:
            action = action + np.asarray(self.keys[k], dtype=np.float64).reshape(space.shape)
        return np.clip(action, space.low, space.high).astype(space.dtype)

    def action_type(self) -> str:
        """The action space in a few words, e.g. ``Discrete(2)`` or ``Box(3)``; ``needs
        [extra]`` if the task's extra is not installed.

        Example:
            >>> get_task("Pendulum-v1").action_type()
            'Box(1)'
        """
        try:
            env = self.make()
        except ImportError:
            return f"needs [{self.extra}]"
        space = env.action_space
        env.close()
        if isinstance(space, spaces.Discrete):
            return f"Discrete({space.n})"
        return f"Box({','.join(map(str, space.shape or ()))})"

    def algo_kwargs(self, algo: str) -> dict[str, Any]:
        """The tuned keyword arguments for ``algo``, or SB3's defaults if the preset has none.
        CPL and best-of-N take the preset's ppo set, then their own block."""
        base = self.hyperparams.get("ppo", {}) if algo in PPO_BASED else {}
        return {**base, **self.hyperparams.get(algo, {})}

    def settings_for(self, algo: str) -> tuple[int, str]:
        """The default timesteps for ``algo``, and where its hyperparameters come from."""
        if self.zoo is None:
            tuned = f"preset {self.name}" + (
                "" if self.algo_kwargs(algo) else f" (SB3's defaults for {algo})"
            )
            return self.total_timesteps, tuned
        tuned_as = "ppo" if algo in PPO_BASED and algo not in self.zoo.sources else algo  # (as algo_kwargs)
        source = self.zoo.sources.get(tuned_as) or self.zoo.sources.get("") or untuned(self.name)
        return self.zoo.timesteps.get(tuned_as, 100_000), source

    def snapshot(self, env: gym.Env, obs: np.ndarray) -> snapshots.Snapshot:
        """Save the state of ``env`` (built by ``make``), currently at observation ``obs``.

        Raises:
            ValueError: ``env`` is not this task's environment, or its state cannot be
                snapshotted (see ``rlhf_gym.tasks.snapshots``).
        """
        self._check_env(env)
        return snapshots.snapshot(env, obs)

    def restore(self, env: gym.Env, snap: snapshots.Snapshot) -> np.ndarray:
        """Put ``env`` (built by ``make`` in the snapshot's horizon mode) into the saved state;
        return the saved observation.

        Raises:
            ValueError: ``env`` or ``snap`` belongs to another task, or ``env`` to another
                horizon mode.
        """
        self._check_env(env)
        if isinstance(snap, snapshots.Snapshot) and snap.env_id != self.env_id:
            raise ValueError(
                f"snapshot of {snap.env_id} cannot be restored by task {self.name!r} ({self.env_id})"
            )
        return snapshots.restore(env, snap)

    def _check_env(self, env: gym.Env) -> None:
        spec = env.unwrapped.spec
        if spec is None or spec.id != self.env_id:
            raise ValueError(
                f"environment {spec.id if spec else type(env.unwrapped).__name__} is not task "
                f"{self.name!r}'s; expected one built by its make() ({self.env_id})"
            )


def preset_dirs() -> list[Path]:
    """Where presets are looked up, first match wins."""
    dirs = []
    if os.environ.get("RLHF_GYM_PRESETS"):
        dirs.append(Path(os.environ["RLHF_GYM_PRESETS"]))
    package = Path(__file__).resolve().parents[1]  # rlhf_gym/
    dirs += [package.parent / "envs", package / "_presets"]
    return [d for d in dirs if d.is_dir()]


def preset_names() -> list[str]:
    """Names of every task with a preset."""
    return sorted({p.stem for d in preset_dirs() for p in d.glob("*.yaml")})


@cache
def _load_preset(path: Path) -> Task:
    where = f"task preset {path.name}"
    data = load_yaml(path)
    if "env_id" not in data:
        raise ValueError(f"{where} has no env_id; it must name the Gymnasium environment to build")
    task = from_dict(Task, {**data, "name": path.stem}, where)
    for key in ("max_episode_steps", "total_timesteps", "segment_length"):
        if getattr(task, key) <= 0:
            raise ValueError(f"{key} in {where} must be positive, got {getattr(task, key)}")
    for algo in [task.algo, *task.hyperparams]:
        if algo not in ALGOS:
            raise ValueError(f"unknown algorithm {algo!r} in {where}; expected one of {', '.join(ALGOS)}")
    if task.family not in FAMILIES:
        raise ValueError(f"unknown family {task.family!r} in {where}; expected one of {', '.join(FAMILIES)}")
    if task.extra is not None and task.extra not in EXTRAS:
        raise ValueError(f"unknown extra {task.extra!r} in {where}; expected one of {', '.join(EXTRAS)}")
    check(task.observation, where)
    if task.expert is not None and task.expert not in EXPERTS:
        raise ValueError(f"unknown expert {task.expert!r} in {where}; expected one of {', '.join(EXPERTS)}")
    return task


def get_task(name: str) -> Task:
    """Look up a task by preset name, or build generic defaults for a Gymnasium id.

    Raises:
        ValueError: the name is neither a preset nor a registered Gymnasium id.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"task must be a non-empty string, got {name!r}")
    if ":" in name:  # Gymnasium would import the module named before the colon
        raise ValueError(f"unknown task {name!r}; expected a preset or a Gymnasium id (without 'module:')")
    # a preset is named by its file's stem: a name that looks like a path (from a shared file's
    # meta, say) never reaches outside the preset folders
    is_stem = not any(c in name for c in "/\\") and not name.startswith(".") and len(name) <= 200
    for d in preset_dirs() if is_stem else []:
        path = d / f"{name}.yaml"
        if path.is_file():
            return _load_preset(path)
    for preset in preset_names():  # a preset can also be named by its Gymnasium id, unless it makes
        task = get_task(preset)  # that id differently (PongRam-v5's RAM observations, say)
        if task.env_id == name and not task.env_kwargs:
            return task
    found = probe(name, preset_names())
    settings = generic_settings(name, found.action_space)
    return Task(
        name=name,
        env_id=name,
        family="generic",
        max_episode_steps=found.max_episode_steps or 1000,
        algo=settings.algo,
        total_timesteps=settings.timesteps.get(settings.algo, 100_000),
        hyperparams=settings.hyperparams,
        description=f"no preset: {settings.sources.get(settings.algo, settings.sources.get(''))}",
        extra=found.extra,
        env_kwargs=found.env_kwargs,
        observation=found.observation,
        zoo=settings,
    )


def list_tasks() -> list[Task]:
    """Every task with a preset."""
    return [get_task(n) for n in preset_names()]


def get_expert(task: Task) -> Expert:
    """Build the expert the task's preset names.

    Raises:
        ValueError: the task has no expert.

    Example:
        >>> from rlhf_gym.tasks.registry import get_task
        >>> expert = get_expert(get_task("CartPole-v1"))
        >>> expert(np.zeros(4, np.float32)) in (0, 1)
        True
    """
    if task.expert is None:
        having = ", ".join(t.name for t in list_tasks() if t.expert is not None) or "none"
        raise ValueError(f"task {task.name!r} has no expert; tasks with experts: {having}")
    if task.expert not in EXPERTS:
        raise ValueError(
            f"unknown expert {task.expert!r} for task {task.name!r}; expected one of {', '.join(EXPERTS)}"
        )
    return EXPERTS[task.expert]()


if __name__ == "__main__":
    from rlhf_gym.tasks.experts import mean_return

    for task in list_tasks():
        if task.expert is not None:
            for horizon in ("natural", "fixed"):
                expert, rand = mean_return(task, get_expert(task), horizon), mean_return(task, None, horizon)
                print(f"{task.name:26} {horizon:8} expert {expert:8.1f}  random {rand:8.1f}")
