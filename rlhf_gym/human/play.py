"""Play any task by keyboard: ``rlhf-gym play --task T``.

The task's preset maps keys to actions (``Task.keys``, ``Task.action_for_keys``) and says, in its
``play`` block (``rlhf_gym.human.keymap``), what each key does in words, the pace a person plays
at and what happens with no key held. The window shows the environment's ``rgb_array`` frame
with a status bar (episode, step, true return, the key legend). Keys held down are tracked from
``KEYDOWN``/``KEYUP`` events, like Gymnasium's ``utils.play``, so a test can post events instead
of pressing keys.

Controls besides the task's keys: ``Esc`` or closing the window quits, ``Backspace``
restarts the episode, ``Tab`` pauses.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rlhf_gym.data.rollout import to_trajectory
from rlhf_gym.human.keymap import KeyActions, describe, key_words, pace, scene, settings
from rlhf_gym.human.panel import DIM, MIN_WIDTH, TEXT, Panel
from rlhf_gym.human.window import XGuard, init_pygame, open_window
from rlhf_gym.tasks.registry import Task
from rlhf_gym.types import Trajectory

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
    """The key legend of a task, in words, one line (the window wraps it).

    Example:
        >>> from rlhf_gym.tasks.registry import get_task
        >>> legend(get_task("CartPole-v1")).split("  |  ")[0].split("  ")[1:]
        ['right: push the cart right', 'no key: alternate left and right pushes (no net push)']
    """
    return f"{describe(task)}  |  Esc: quit  Backspace: restart  Tab: pause"


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
        fps: steps per second; ``None`` takes the task's human pace (``play.fps`` of its preset),
            else the environment's ``render_fps``.
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
    settings(task)  # a bad play block fails before any window
    pygame = init_pygame()  # display and fonts only: no sound card is opened
    env = task.make(horizon, render_mode="rgb_array")
    result = PlayResult()
    try:
        _check_keys(task, env.action_space, pygame)
        act = KeyActions(task, env.action_space)
        fps = fps or pace(task, env)
        obs, _ = env.reset(seed=seed)
        render = Renderer(task, env)
        frame = render()
        size = (int(frame.shape[1] * zoom), int(frame.shape[0] * zoom))
        width = max(size[0], MIN_WIDTH)
        panel = Panel(pygame)
        keys = legend(task) + (f"  |  {scene(task)}" if scene(task) else "")
        height = size[1] + panel.height([keys], width, spare=2)
        window = open_window(pygame, (width, height))
        pygame.display.set_caption(f"rlhf-gym play: {task.name}")
        guard = XGuard(pygame)
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
                    frame = render()
                elif event.type == pygame.KEYDOWN and name not in pressed:
                    pressed.append(name)
                elif event.type == pygame.KEYUP and name in pressed:
                    pressed.remove(name)
            if guard.gone:
                result.quit_reason = "window"
            if result.quit_reason:
                break
            if not paused:
                action = act(pressed)
                next_obs, reward, terminated, truncated, info = env.step(action)
                steps.append((obs, np.asarray(action), float(reward), bool(info.get("absorbing", False))))
                obs, total_steps = next_obs, total_steps + 1
                if terminated or truncated:
                    _finish(result, steps, bool(terminated), obs)
                    steps, (obs, _) = [], env.reset()
                frame = render()
            ret = sum(s[2] for s in steps)
            held = [f"{k} ({w})" for k, w in key_words(task) if k in pressed]
            doing = "  ".join(held) if held else f"no key: {key_words(task)[-1][1]}"
            status = (
                f"episode {len(result.episodes) + 1}  step {len(steps)}  return {ret:.1f}  {fps:g} steps/s"
            )
            status += "  [paused: Tab goes on]" if paused else f"  now: {doing}"
            window = _draw(pygame, window, panel, frame, size, status, keys)
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
    KeyActions(task, space).actions()  # and what no key does (play.idle), every action of it


class Renderer:
    """Frames of ``env``; a MuJoCo task's are rendered on a thread of their own, one at a time.

    An OpenGL context current on the window's thread leaves its SDL window black (seen with
    MuJoCo under Xvfb), so the context lives on this renderer's thread instead.
    """

    def __init__(self, task: Task, env: Any) -> None:
        self.env = env
        self.thread = ThreadPoolExecutor(1, "rlhf-gym renderer") if task.extra == "mujoco" else None

    def __call__(self) -> np.ndarray:
        if self.thread is None:
            return _frame(self.env)
        return self.thread.submit(_frame, self.env).result()


def _frame(env: Any) -> np.ndarray:
    frame = env.render()
    if not isinstance(frame, np.ndarray) or frame.ndim != 3:
        raise ValueError(f"{env.spec.id if env.spec else env} gave no rgb_array frame to show")
    return frame


def _finish(result: PlayResult, steps: list, terminated: bool, final_obs: np.ndarray) -> None:
    if steps:
        result.episodes.append(to_trajectory(steps, terminated, np.asarray(final_obs)))


def _draw(pg: Any, window: Any, panel: Panel, frame: np.ndarray, size: tuple, status: str, keys: str) -> Any:
    surface = pg.surfarray.make_surface(np.ascontiguousarray(frame.transpose(1, 0, 2)))
    if surface.get_size() != size:
        surface = pg.transform.smoothscale(surface, size)
    window.fill((30, 30, 36))
    window.blit(surface, ((window.get_width() - size[0]) // 2, 0))
    window = panel.draw(window, [(status, TEXT), (keys, DIM)], size[1])
    pg.display.flip()
    return window
