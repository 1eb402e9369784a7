"""Catch: slide a paddle along the bottom of the field to catch falling objects.

Objects fall from the top of a unit field at random places, drifting sideways and bouncing
off the side walls. The paddle (width 0.2) slides along the catch line ``y = 0``. An object
that reaches the line within the paddle's reach (its half width plus the object's radius,
0.125, from the paddle's centre) is caught: it rests on the paddle for 6 steps, then leaves
the field and scores +1. Any other object falls past the line into a pit and scores -1 when
it hits the floor, 0.15 below the line (4 to 8 steps later). At most three objects are on the
field at once (falling, resting or in the pit); the next one drops 10 to 25 steps after the
last, when there is room. Each falls 0.02 to 0.035 a step, 29 to 50 steps from the top: about
25 objects score in a 500-step episode.

- **Observation** ``Box(16,)`` float32: the paddle's position ``2 px - 1`` in [-0.8, 0.8],
  then three slots of five values, one object each, sorted by height so slot 0 holds the
  lowest: ``x - px`` (the object's offset from the paddle, in [-1, 1]), ``y`` (height above
  the catch line, in [-0.15, 1]: 0 while resting on the paddle, below 0 in the pit),
  ``vx / 0.01`` (sideways speed, in [-1, 1]), ``vy / 0.035`` (fall speed, in [0, 1]: 0 while
  resting) and ``present`` (1, or 0 for an empty slot, whose other values are 0). The score is
  not observed, but every scoring object is on screen, in a state of its own, for the steps
  before it scores (resting: ``vy = 0``; missed: ``y < 0``), so a reward model of the
  observation alone can tell catches from misses.
- **Action** ``Discrete(3)``: 0 left, 1 stay, 2 right; the paddle moves 0.04 a step.
- **Reward** ``+1`` for each caught object leaving the paddle and ``-1`` for each missed
  object hitting the floor, in that step: the number caught minus the number missed. This is
  the game's score and the true reward.
- **Termination** never; **truncation** by the time limit only (``max_episode_steps``, 500 in
  the preset), so the fixed-horizon mode is the same episode.

Mean true return over 20 seeds (seeds 0-19, 500 steps, either horizon mode; ``python -m
rlhf_gym.tasks.experts``):

    policy              return
    CatchExpert          +20.8
    uniform random       -10.3

Example:
    >>> import gymnasium as gym
    >>> import rlhf_gym.tasks.envs
    >>> env = gym.make("rlhf_gym/Catch-v0", max_episode_steps=500)
    >>> obs, _ = env.reset(seed=0)
    >>> obs.shape, env.action_space
    ((16,), Discrete(3))
    >>> expert, total, done = CatchExpert(), 0.0, False
    >>> while not done:
    ...     obs, reward, terminated, truncated, _ = env.step(expert(obs))
    ...     total, done = total + reward, terminated or truncated
    >>> total > 10
    True
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from gymnasium import spaces

from rlhf_gym.tasks import snapshots
from rlhf_gym.tasks.envs.games import PaddleGame, bounce, check_action, draw_number, fold, move_paddle
from rlhf_gym.tasks.envs.rendering import ACCENT, BLUE, GOOD, INK, MUTED
from rlhf_gym.tasks.snapshots import RANDOM

SLOTS = 3
PADDLE_HALF = 0.1
PADDLE_SPEED = 0.04
RADIUS = 0.025
REACH = PADDLE_HALF + RADIUS
VX_MAX = 0.01
VY_MIN, VY_MAX = 0.02, 0.035
SPAWN_MIN, SPAWN_MAX = 10, 25
# A caught object rests on the paddle for HOLD steps and a missed one falls to the FLOOR before
# they score, so each outcome is visible for a few steps. Scoring at the catch line instead
# left the reward model at 64-73% pair accuracy on 200 oracle labels (vs 90%; the outcome was
# then only implicit in a height of 0.02-0.035 and an offset) and RLHF at a return of -5.
HOLD = 6
FLOOR = -0.15

Object = tuple[float, float, float, float, int]  # x, y, vx, vy, steps left resting on the paddle


class CatchEnv(PaddleGame):
    """Catch falling objects with a paddle: +1 per catch, -1 per miss (see the module docstring).

    Args:
        render_mode: ``None``, ``"human"`` or ``"rgb_array"``.

    Example:
        >>> env = CatchEnv()
        >>> obs, _ = env.reset(seed=1)
        >>> float(obs[2]), float(obs[5]), float(obs[10])  # slot 0 at the top; slot 1 empty
        (1.0, 1.0, 0.0)
        >>> obs, reward, terminated, truncated, info = env.step(1)
        >>> reward, terminated, truncated
        (0.0, False, False)
    """

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 30}  # noqa: RUF012 (gymnasium's)
    SIZE = (400, 500)
    TITLE = "rlhf-gym Catch"

    def __init__(self, render_mode: str | None = None) -> None:
        super().__init__(render_mode)
        self.action_space = spaces.Discrete(3)
        low = np.array([-1.0] + [-1.0, FLOOR, -1.0, 0.0, 0.0] * SLOTS, dtype=np.float32)
        self.observation_space = spaces.Box(low, np.ones_like(low), dtype=np.float32)
        self._px = 0.5
        self._objects: list[Object] = []  # lowest first
        self._spawn_timer = 0
        self._t = 0
        self._caught = 0
        self._missed = 0
        self._last_event: tuple[int, float, bool] | None = None  # (step, x, caught), for drawing

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self._px = float(self.np_random.uniform(PADDLE_HALF, 1.0 - PADDLE_HALF))
        self._objects = []
        self._spawn()
        self._t = self._caught = self._missed = 0
        self._last_event = None
        if self.render_mode == "human":
            self.render()
        return self._obs(), {}

    def _spawn(self) -> None:
        """Drop a new object from the top and draw the wait for the next one."""
        u = self.np_random.random(4)
        x = RADIUS + float(u[0]) * (1.0 - 2 * RADIUS)
        vx = (2.0 * float(u[1]) - 1.0) * VX_MAX
        vy = VY_MIN + float(u[2]) * (VY_MAX - VY_MIN)
        self._objects.append((x, 1.0, vx, vy, 0))
        self._spawn_timer = SPAWN_MIN + int(float(u[3]) * (SPAWN_MAX - SPAWN_MIN + 1))

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        old = self._px
        px = self._px = move_paddle(old, check_action(action) - 1, PADDLE_SPEED, PADDLE_HALF, 1 - PADDLE_HALF)
        reward = 0.0
        kept: list[Object] = []
        for x, y, vx, vy, hold in self._objects:
            if hold > 0:  # resting on the paddle, moving with it, until it leaves and scores
                if hold > 1:
                    kept.append((x + px - old, 0.0, 0.0, 0.0, hold - 1))
                else:
                    reward += 1.0
                    self._caught += 1
                    self._last_event = (self._t, x + px - old, True)
                continue
            x, vx = bounce(x + vx, vx, RADIUS, 1.0 - RADIUS)
            above, y = y, y - vy
            if above > 0.0 >= y and abs(x - px) <= REACH:  # lands on the paddle
                kept.append((x, 0.0, 0.0, 0.0, HOLD))
            elif y <= FLOOR:  # missed, and now on the floor
                reward -= 1.0
                self._missed += 1
                self._last_event = (self._t, x, False)
            else:
                kept.append((x, y, vx, vy, 0))
        kept.sort(key=_height)  # a fast object can overtake a slow one
        self._objects = kept
        self._t += 1
        self._spawn_timer -= 1
        if self._spawn_timer <= 0 and len(kept) < SLOTS:
            self._spawn()
        if self.render_mode == "human":
            self.render()
        return self._obs(), reward, False, False, {}

    def _obs(self) -> np.ndarray:
        px = self._px
        values = [2.0 * px - 1.0]
        for x, y, vx, vy, _ in self._objects:
            values += (x - px, y, vx / VX_MAX, vy / VY_MAX, 1.0)
        values += [0.0] * (5 * (SLOTS - len(self._objects)))
        return np.array(values, dtype=np.float32)

    def _draw(self, surface: Any, pg: Any) -> None:
        w, h = self.SIZE
        top, scale = 70, 360  # pixel row of y = 1, and pixels per unit of height
        line = top + scale  # the catch line, y = 0
        floor = line + int(-FLOOR * scale)
        r = int(RADIUS * w)

        def pixel(x: float, y: float) -> tuple[int, int]:  # an object's centre, resting on height y
            return round(x * w), round(line - y * scale) - r

        pg.draw.rect(surface, (226, 222, 214), (0, line, w, floor - line))  # the pit
        pg.draw.rect(surface, INK, (0, floor, w, h - floor))
        for x, y, vx, vy, hold in self._objects:
            if hold == 0:
                for k in (3, 2, 1):  # a fading trail along the path it came by
                    shade = (250 - 8 * k, 225 - 8 * k, 215 - 8 * k)
                    pg.draw.circle(surface, shade, pixel(x - 3 * k * vx, y + 3 * k * vy), r - 2 * k)
            pg.draw.circle(surface, GOOD if hold else ACCENT, pixel(x, y), r)
        if self._last_event is not None and self._t - self._last_event[0] < 12:
            step, x, caught = self._last_event
            centre = pixel(x, 0.0) if caught else (int(x * w), floor)
            pg.draw.circle(surface, GOOD if caught else ACCENT, centre, 14 + 2 * (self._t - step), 3)
        pg.draw.line(surface, MUTED, (0, line), (w, line), 1)
        left = round((self._px - PADDLE_HALF) * w)
        pg.draw.rect(surface, BLUE, (left, line, int(2 * PADDLE_HALF * w), 12), border_radius=6)
        mid = (top - 10) // 2  # the score board, over the trails of new objects: caught, then missed
        pg.draw.rect(surface, (232, 232, 226), (0, 0, w, top - 10))
        for cx, count, colour in ((w // 4, self._caught, GOOD), (3 * w // 4, self._missed, ACCENT)):
            pg.draw.circle(surface, colour, (cx - 26, mid), 10)
            draw_number(surface, pg, count, (cx + 14, mid), 34, colour)


def _height(obj: Object) -> float:
    return obj[1]


class CatchExpert:
    """Moves the paddle toward where the lowest object it can still catch will land.

    It uses the observation only. A falling object lands after ``ceil(y / vy)`` more steps,
    at its position carried on by that many steps of its sideways speed and folded back off
    the walls. Objects are taken lowest first; one the paddle cannot reach before it lands is
    given up for the next. With nothing to catch it waits in the middle.

    Example:
        >>> expert = CatchExpert()
        >>> obs = np.zeros(16, np.float32)
        >>> obs[1:6] = [-0.3, 0.5, 0.0, 1.0, 1.0]  # an object 0.3 to the left of the paddle
        >>> expert(obs)
        0
    """

    def __call__(self, obs: np.ndarray) -> int:
        px = (float(obs[0]) + 1.0) / 2.0
        target = 0.5
        for slot in range(SLOTS):
            dx, y, vx, vy, present = (float(v) for v in obs[1 + 5 * slot : 6 + 5 * slot])
            if present < 0.5:
                break
            if y <= 0.0:  # caught or missed already
                continue
            steps = math.ceil(y / (vy * VY_MAX))
            landing = fold(px + dx + steps * vx * VX_MAX, RADIUS, 1.0 - RADIUS)
            target = min(max(landing, PADDLE_HALF), 1.0 - PADDLE_HALF)
            if abs(landing - px) <= steps * PADDLE_SPEED + REACH:
                break
        if abs(target - px) <= PADDLE_SPEED / 2:
            return 1
        return 2 if target > px else 0


snapshots.register(
    CatchEnv,
    snapshots.LayerState(
        state=("_px", "_objects", "_spawn_timer", "_t", "_caught", "_missed", "_last_event", *RANDOM)
    ),
)
