"""A Gymnasium id without a preset: its suite, the extra it needs, and how its observations come.

An id of another suite (ALE, MuJoCo, Box2D) registers that suite first, or names the extra that is
missing. An image id takes the usual preprocessing (``rlhf_gym.tasks.observations.image_defaults``);
an Atari id is made to give grey screens (``obs_type="grayscale"``), so that its pixels, never its
RAM, are what the agent and the reward model see, and to repeat each action 4 frames (a
``NoFrameskip`` id too; ALE's own frame skip, without Mnih et al.'s max over the last two frames).
An id whose spec sets no time limit (ALE's) is cut at 1,000 agent steps, as any such id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

import gymnasium as gym
from gymnasium import spaces

from rlhf_gym.tasks.observations import image_defaults, preprocess

SUITES = {"atari": "ale_py", "mujoco": "gymnasium.envs.mujoco", "box2d": "gymnasium.envs.box2d"}
"""Each extra of other suites, and what the entry points of its environments start with."""


@dataclass(frozen=True)
class Probe:
    """What making an id once tells: its time limit, extra, spaces and how to build it."""

    max_episode_steps: int | None
    extra: str | None
    action_space: Any
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    observation: dict[str, Any] = field(default_factory=dict)


def probe(name: str, known: list[str]) -> Probe:
    """Make the id ``name`` once and say how a task of it is built.

    Raises:
        ValueError: the id is not registered (``known``: the presets, for the message), its suite's
            extra is missing, or it cannot be made.
    """
    spec, extra = suite_spec(name, known)
    kwargs: dict[str, Any] = {}
    if extra == "atari" and spec.kwargs.get("obs_type", "rgb") == "rgb":
        kwargs["obs_type"] = "grayscale"
    if (
        extra == "atari" and spec.kwargs.get("frameskip", 4) == 1
    ):  # (a NoFrameskip id: 4, as v5 and Mnih et al.)
        kwargs["frameskip"] = 4
    try:
        env = gym.make(name, **kwargs)
    except gym.error.DependencyNotInstalled as err:
        raise ValueError(
            f"task {name!r} needs the {extra or 'its suite'!r} extra ({err}); install it with "
            f'pip install "rlhf-gym[{extra}]"'
            if extra
            else f"task {name!r} cannot be made: {err}"
        ) from None
    except gym.error.Error as err:
        raise ValueError(f"task {name!r} cannot be made: {err}") from None
    observation = image_defaults(env.observation_space, extra == "atari")
    env = preprocess(env, observation)
    check_spaces(env, name)
    env.close()
    return Probe(spec.max_episode_steps, extra, env.action_space, kwargs, observation)


def suite_spec(name: str, known: list[str]) -> tuple[Any, str | None]:
    """The Gymnasium spec of the id ``name`` and the extra its suite needs (None: Gymnasium's own
    environments). ALE's ids are registered first when ale_py is installed (Gymnasium does not
    know them until then); an ALE id without it names the extra.

    Raises:
        ValueError: the id is not registered (or is ALE's, and the atari extra is missing).
    """
    unknown = ValueError(
        f"unknown task {name!r}; expected a preset ({', '.join(known)}) or a registered Gymnasium id"
    )
    try:
        spec = gym.spec(name)
    except gym.error.Error:
        try:
            ale_py = import_module("ale_py")
        except ImportError:
            if name.startswith("ALE/"):
                raise ValueError(
                    f"task {name!r} is an Atari (ALE) id: it needs the 'atari' extra; install it with "
                    'pip install "rlhf-gym[atari]"'
                ) from None
            raise unknown from None
        gym.register_envs(ale_py)
        try:
            spec = gym.spec(name)
        except gym.error.Error:
            raise unknown from None
    entry = spec.entry_point if isinstance(spec.entry_point, str) else spec.entry_point.__module__
    return spec, next((extra for extra, module in SUITES.items() if entry.startswith(module)), None)


def check_spaces(env: gym.Env, name: str) -> None:
    """Reject spaces the reward model and agents cannot handle, naming what was expected."""
    for kind, space in (("observation", env.observation_space), ("action", env.action_space)):
        if not isinstance(space, (spaces.Box, spaces.Discrete)):
            raise ValueError(
                f"task {name!r} has a {type(space).__name__} {kind} space; rlhf-gym supports "
                "Box and Discrete spaces"
            )
