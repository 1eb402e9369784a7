"""Play any task by keyboard: ``rlhf-gym play --task T``.

The task's preset maps keys to actions (``Task.keys``, ``Task.action_for_keys``); the
window shows the environment's ``rgb_array`` frame with a status bar (episode, step, true
return, the key legend). Keys held down are tracked from ``KEYDOWN``/``KEYUP`` events, like
Gymnasium's ``utils.play``, so a test can post events instead of pressing keys.

Controls besides the task's keys: ``Esc`` or closing the window quits, ``Backspace``
restarts the episode, ``Tab`` pauses.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rlhf_gym.data.rollout import to_trajectory
from rlhf_gym.human import NoDisplayError
from rlhf_gym.tasks.registry import Task
from rlhf_gym.types import Trajectory

STATUS_HEIGHT = 44


CONTROL_KEYS = {"escape": "quit", "backspace": "restart", "tab": "pause"}


@dataclass
class PlayResult:
    """What a play session produced.

    Args:
        episodes: every finished episode as a ``Trajectory`` (true rewards, the actions the
            keys gave), in order; a restarted or quit episode is kept if it has any steps.
        frames: frames shown.
        quit_reason: ``"window"`` (closed), ``"escape"``, ``"episodes"`` or ``"steps"`` (the
            limit given to ``play``).
    """

    episodes: list[Trajectory] = field(default_factory=list)
    frames: int = 0
    quit_reason: str = ""

    @property
    def returns(self) -> list[float]:
        """The true return of each episode."""
        return [t.true_return for t in self.episodes]


def legend(task: Task) -> str:
    """The key legend of a task, one line.

    Example:
        >>> from rlhf_gym.tasks.registry import get_task
        >>> legend(get_task("CartPole-v1"))
        'left: 0  right: 1  (no key: 0)  |  Esc quit  Backspace restart  Tab pause'
    """

    def show(action: Any) -> str:
        return str(action).replace(" ", "")

    keys = "  ".join(f"{k}: {show(v)}" for k, v in task.keys.items())
    return f"{keys}  (no key: {show(task.noop)})  |  Esc quit  Backspace restart  Tab pause"


def play(
    task: Task,
    horizon: str = "natural",
    fps: float | None = None,
    zoom: float = 1.0,
    seed: int | None = None,
    max_episodes: int | None = None,
    max_steps: int | None = None,
    callback: Callable[[int], None] | None = None,
) -> PlayResult:
    """Open a window and let a person play ``task`` until they quit or a limit is reached.

    Args:
        task: the task; its preset must have a key map.
        horizon: ``natural`` or ``fixed`` (see ``Task.make``).
        fps: steps per second; ``None`` takes the environment's ``render_fps``.
        zoom: scale of the frame in the window.
        seed: seed of the first episode (later ones continue its generator).
        max_episodes, max_steps: stop after this many finished episodes or environment steps.
        callback: called with the frame number at the start of every frame, before the keys
            are read (tests post their key events from it).

    Raises:
        ValueError: the task has no key map, or a key's action does not fit its action space.
        NoDisplayError: there is no display to open the window on.
    """
    if not task.keys:
        raise ValueError(f"task {task.name!r} has no key map; add keys and noop to its preset")
    if fps is not None and fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if zoom <= 0:
        raise ValueError(f"zoom must be positive, got {zoom}")
    import pygame

    env = task.make(horizon, render_mode="rgb_array")
    result = PlayResult()
    try:
        pygame.init()
        _check_keys(task, env.action_space, pygame)
        fps = fps or float(env.metadata.get("render_fps") or 30)
        obs, _ = env.reset(seed=seed)
        frame = _frame(env)
        size = (int(frame.shape[1] * zoom), int(frame.shape[0] * zoom))
        window = open_window(pygame, (size[0], size[1] + STATUS_HEIGHT))
        pygame.display.set_caption(f"rlhf-gym play: {task.name}")
        font = pygame.font.Font(None, 20)
        clock = pygame.time.Clock()
        pressed: list[str] = []
        steps: list[tuple[np.ndarray, np.ndarray, float, bool]] = []
        paused, total_steps = False, 0
        while not result.quit_reason:
            if callback is not None:
                callback(result.frames)
            for event in pygame.event.get():
                name = pygame.key.name(event.key) if event.type in (pygame.KEYDOWN, pygame.KEYUP) else ""
                if event.type == pygame.QUIT:
                    result.quit_reason = "window"
                elif event.type == pygame.KEYDOWN and CONTROL_KEYS.get(name) == "quit":
                    result.quit_reason = "escape"
                elif event.type == pygame.KEYDOWN and CONTROL_KEYS.get(name) == "pause":
                    paused = not paused
                elif event.type == pygame.KEYDOWN and CONTROL_KEYS.get(name) == "restart":
                    _finish(result, steps, False, obs)
                    steps, (obs, _) = [], env.reset()
                    frame = _frame(env)
                elif event.type == pygame.KEYDOWN and name not in pressed:
                    pressed.append(name)
                elif event.type == pygame.KEYUP and name in pressed:
                    pressed.remove(name)
            if result.quit_reason:
                break
            if not paused:
                action = task.action_for_keys(pressed, env.action_space)
                next_obs, reward, terminated, truncated, info = env.step(action)
                steps.append((obs, np.asarray(action), float(reward), bool(info.get("absorbing", False))))
                obs, total_steps = next_obs, total_steps + 1
                if terminated or truncated:
                    _finish(result, steps, bool(terminated), obs)
                    steps, (obs, _) = [], env.reset()
                frame = _frame(env)
            ret = sum(s[2] for s in steps)
            status = f"episode {len(result.episodes) + 1}  step {len(steps)}  return {ret:.1f}"
            _draw(pygame, window, font, frame, size, status + ("  [paused]" if paused else ""), legend(task))
            result.frames += 1
            if max_episodes is not None and len(result.episodes) >= max_episodes:
                result.quit_reason = "episodes"
            elif max_steps is not None and total_steps >= max_steps:
                result.quit_reason = "steps"
            clock.tick(fps)
        if result.quit_reason != "episodes":
            _finish(result, steps, False, obs)
    finally:
        env.close()
        pygame.display.quit()
    return result


def open_window(pg: Any, size: tuple[int, int]) -> Any:
    """The display surface, or ``NoDisplayError`` if windows would go nowhere. SDL falls back to
    its ``offscreen`` driver when there is no screen; only an explicit ``SDL_VIDEODRIVER``
    (tests use ``dummy``) may draw to none."""
    error = ""
    try:
        window = pg.display.set_mode(size)
    except pg.error as err:
        error = str(err)
    else:
        if pg.display.get_driver() not in ("offscreen", "dummy") or os.environ.get("SDL_VIDEODRIVER"):
            return window
        error = f"SDL found no screen and chose its {pg.display.get_driver()!r} driver"
    raise NoDisplayError(
        f"cannot open a window: {error}. The window needs a display: set DISPLAY, or run under "
        "Xvfb (xvfb-run rlhf-gym ...)"
    )


def _check_keys(task: Task, space: Any, pg: Any) -> None:
    for key in [*task.keys, None]:
        if key is not None:
            try:
                pg.key.key_code(key)
            except ValueError:
                raise ValueError(
                    f"task {task.name!r}: {key!r} is not a pygame key name (e.g. left, up, space, a)"
                ) from None
        try:
            action = task.action_for_keys([key] if key else [], space)
        except ValueError as err:  # a Box offset or noop of the wrong shape
            what = f"key {key!r}" if key else "noop"
            raise ValueError(
                f"task {task.name!r}: {what} does not fit the action space {space}: {err}"
            ) from None
        if not space.contains(action):
            what = f"key {key!r}" if key else "noop"
            raise ValueError(f"task {task.name!r}: {what} gives {action!r}, outside the action space {space}")


def _frame(env: Any) -> np.ndarray:
    frame = env.render()
    if not isinstance(frame, np.ndarray) or frame.ndim != 3:
        raise ValueError(f"{env.spec.id if env.spec else env} gave no rgb_array frame to show")
    return frame


def _finish(result: PlayResult, steps: list, terminated: bool, final_obs: np.ndarray) -> None:
    if steps:
        result.episodes.append(to_trajectory(steps, terminated, np.asarray(final_obs)))


def _draw(pg: Any, window: Any, font: Any, frame: np.ndarray, size: tuple, status: str, keys: str) -> None:
    surface = pg.surfarray.make_surface(np.ascontiguousarray(frame.transpose(1, 0, 2)))
    if surface.get_size() != size:
        surface = pg.transform.smoothscale(surface, size)
    window.fill((30, 30, 36))
    window.blit(surface, (0, 0))
    for i, text in enumerate((status, keys)):
        window.blit(font.render(text, True, (235, 235, 230)), (8, size[1] + 4 + 20 * i))
    pg.display.flip()
