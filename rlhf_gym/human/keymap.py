"""What a task's keys do, in words, at what pace a person plays it, and what no key does.

A preset's ``play`` block (``Task.play``) holds it next to the key map, e.g. CartPole's::

    keys: {left: 0, right: 1}
    noop: 0
    play: {fps: 15, idle: [0, 1], words: {left: "push the cart left", right: "push the cart right",
           none: "alternate left and right pushes (no net push)"}}

``fps`` is a human pace (CartPole's own 50 steps a second end an episode before a person reacts),
``idle`` the actions cycled while no key is held (CartPole has no do-nothing action: pushing
left, its ``noop``, would topple the pole in a fraction of a second), ``words`` what each key
does and ``scene`` what is what on screen.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rlhf_gym.tasks.registry import Task

PLAY_KEYS = ("fps", "idle", "words", "scene")


def settings(task: Task) -> dict[str, Any]:
    """The task's ``play`` block, checked: known keys, a positive ``fps``, words for keys it has.

    Example:
        >>> from rlhf_gym.tasks.registry import get_task
        >>> settings(get_task("CartPole-v1"))["fps"]
        15
    """
    play = dict(task.play or {})
    where = f"task {task.name!r}: play"
    unknown = sorted(set(play) - set(PLAY_KEYS))
    if unknown:
        raise ValueError(f"{where} has unknown key(s) {', '.join(unknown)}; expected {', '.join(PLAY_KEYS)}")
    fps = play.get("fps")
    if fps is not None and (
        isinstance(fps, bool) or not isinstance(fps, (int, float)) or not math.isfinite(fps) or fps <= 0
    ):
        raise ValueError(f"{where}.fps must be a finite positive number of steps a second, got {fps!r}")
    if not isinstance(play.get("scene", ""), str):
        raise ValueError(f"{where}.scene must be text, got {play['scene']!r}")
    words = play.get("words") or {}
    if not isinstance(words, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in words.items()
    ):
        raise ValueError(f"{where}.words must map key names to text, got {words!r}")
    stray = sorted(set(words) - set(task.keys) - {"none"})
    if stray:
        raise ValueError(
            f"{where}.words names {', '.join(stray)}, not keys of the task ({', '.join(task.keys)})"
        )
    idle = play.get("idle")
    if idle is not None and (not isinstance(idle, list) or not idle):
        raise ValueError(f"{where}.idle must be a non-empty list of actions, got {idle!r}")
    return play


def pace(task: Task, env: Any) -> float:
    """Steps a second a person plays ``task`` at: its ``play.fps``, else the env's ``render_fps``."""
    fps = settings(task).get("fps")
    return float(fps or env.metadata.get("render_fps") or 30)


class KeyActions:
    """The action for the keys held, step by step: the task's map, or its ``idle`` cycle.

    Example:
        >>> from gymnasium import spaces
        >>> from rlhf_gym.tasks.registry import get_task
        >>> act = KeyActions(get_task("CartPole-v1"), spaces.Discrete(2))
        >>> [act([]) for _ in range(3)], act(["right"])
        ([0, 1, 0], 1)
    """

    def __init__(self, task: Task, space: Any) -> None:
        self.task, self.space = task, space
        self.idle = settings(task).get("idle")
        self.step = 0

    def __call__(self, pressed: list[str]) -> Any:
        held = [k for k in pressed if k in self.task.keys]
        if held or not self.idle:
            return self.task.action_for_keys(held, self.space)
        action = self.idle[self.step % len(self.idle)]
        self.step += 1
        return self._action(action)

    def _action(self, action: Any) -> Any:
        if isinstance(action, (int, np.integer)) and not isinstance(action, bool):
            return int(action)
        return np.asarray(action, dtype=self.space.dtype).reshape(self.space.shape)

    def actions(self) -> list[Any]:
        """Every action the map gives: each key's, and no key's (``noop`` or each ``idle`` one)."""
        out = [self.task.action_for_keys([k], self.space) for k in self.task.keys]
        return out + (self.idle_actions() if self.idle else [self.task.action_for_keys([], self.space)])

    def idle_actions(self) -> list[Any]:
        """Each ``play.idle`` action, checked to be in the action space.

        Raises:
            ValueError: naming the task and ``play.idle``, for an action outside the space.
        """
        out = []
        for action in self.idle or []:
            try:
                value = self._action(action)
                inside = bool(self.space.contains(value))
            except (ValueError, TypeError) as err:
                value, inside = action, False
                why = f": {err}"
            else:
                why = ""
            if not inside:
                raise ValueError(
                    f"task {self.task.name!r}: play.idle action {action!r} is outside the action space "
                    f"{self.space}{why}"
                )
            out.append(value)
        return out


def key_words(task: Task) -> list[tuple[str, str]]:
    """(key, what it does) for every key of the task, then ``("no key", ...)``.

    A key without words is named by its action (``action 1`` or ``[1.0, 0.0]``).

    Example:
        >>> from rlhf_gym.tasks.registry import get_task
        >>> key_words(get_task("CartPole-v1"))[0]
        ('left', 'push the cart left')
    """
    words = settings(task).get("words") or {}

    def plain(action: Any) -> str:
        return f"action {action}" if isinstance(action, int) else str(action).replace(" ", "")

    out = [(k, words.get(k) or plain(v)) for k, v in task.keys.items()]
    return [*out, ("no key", words.get("none") or plain(task.noop))]


def scene(task: Task) -> str:
    """What is what on screen (``play.scene``), or ``""``."""
    return str(settings(task).get("scene") or "")


def describe(task: Task) -> str:
    """The task's keys in words, one ``  ``-separated line (the legend's first part).

    Example:
        >>> from rlhf_gym.tasks.registry import get_task
        >>> describe(get_task("CartPole-v1")).split("  ")[:2]
        ['left: push the cart left', 'right: push the cart right']
    """
    return "  ".join(f"{k}: {w}" for k, w in key_words(task))
