"""Catch and Pong seen as pixels: one 36x36 grey frame per step, the fast pixel benchmark of issue 23.

``CatchPixelsEnv`` and ``PongPixelsEnv`` are ``CatchEnv`` and ``PongEnv`` with another
observation only: the same actions, dynamics, true reward, ``terminated``, ``truncated`` and
info, and the same pygame ``render()``. The frame is drawn with numpy straight from the game's
state (no pygame), a few microseconds a step.

- **Observation** ``Box(0, 255, (36, 36, 1), uint8)``: one grey frame, height by width,
  channel last (what SB3's ``is_image_space`` takes, and the smallest NatureCNN takes). Frames
  are not stacked here; a wrapper does it, as for Atari.
- **Drawing**: the background is black (0). Each thing is a box of its own grey level, its
  position mapped linearly from the game's coordinates, and anti-aliased: a pixel is lit in
  proportion to the part of it the box covers (to 1/32 of a pixel), so motion of less than a
  pixel a step shows. Boxes are at least 2x2 pixels (Catch's objects and Pong's ball are
  drawn 2x2, a little larger than they are), so each has a pixel at its full level. Where
  boxes may overlap (the ball at a paddle; a missed object over the pit or the paddle; two
  objects touching) the brighter wins; Catch's paddle is blended over the pit.
- **Catch**: x in [0, 1] spans the 36 columns; heights are 29 rows a unit, the catch line
  ``y = 0`` the top of row 31 and the field's top (``y = 1`` plus an object) row 0. The pit,
  from the catch line to the floor ``y = -0.15`` (row 35.35), is a faint band (40). The
  paddle (104) is 7.2 columns wide (0.2) and 2 rows deep, just under the line. Objects are
  2x2 boxes standing on their height: falling 255, resting on the paddle (caught) 204, in the
  pit (missed, ``y <= 0``) 152.
- **Pong**: the court is 36 pixels a unit both ways, ``y = 1`` at the top. The ball is a 2x2
  box (255) around its centre; each paddle is 2 columns wide behind its face (the player's at
  ``x = 0.9``, right, 160; the opponent's at ``x = 0.1``, left, 96) and 7.2 rows tall (0.2).

The snapshot handlers of ``CatchEnv`` and ``PongEnv`` serve their pixel versions too: a frame
is a function of the state, so there is nothing more to save.

Example:
    >>> import gymnasium as gym
    >>> import rlhf_gym.tasks.envs
    >>> env = gym.make("rlhf_gym/CatchPixels-v0")
    >>> obs, _ = env.reset(seed=0)
    >>> obs.shape, obs.dtype, env.action_space
    ((36, 36, 1), dtype('uint8'), Discrete(3))
    >>> sorted(set(obs.ravel().tolist()) & {40, 104, 255})  # the pit, the paddle, a falling object
    [40, 104, 255]
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
from gymnasium import spaces

from rlhf_gym.tasks import snapshots
from rlhf_gym.tasks.envs import catch, pong
from rlhf_gym.tasks.envs.catch import CatchEnv
from rlhf_gym.tasks.envs.pong import PongEnv

FRAME = 36  # pixels a side: the smallest image SB3's NatureCNN takes
SUBPIXEL = 32  # positions are drawn to 1/32 of a pixel (a power of 2: shifts and masks below)
SHIFT = 5  # log2(SUBPIXEL)
BELOW_ZERO = 8 * SUBPIXEL  # positions are rounded as positive numbers, this far above the real ones
ROUNDING = BELOW_ZERO + 0.5
THING = 2.0  # an object's or the ball's side, in pixels
NEAR = THING + 1.0  # two objects this close (rows and columns) may touch the same pixels

# Catch's grey levels and geometry (see the module docstring).
PIT, PADDLE, MISSED, CAUGHT, FALLING = 40, 104, 152, 204, 255
CATCH_COLS = FRAME  # columns per unit of x
CATCH_ROWS = 29  # rows per unit of height
LINE_ROW = 31  # the catch line y = 0 is the top of this row

# Pong's grey levels and geometry.
OPPONENT, PLAYER, BALL = 96, 160, 255
PONG_SCALE = FRAME  # pixels per unit, both ways
PONG_PADDLE_WIDTH = 2.0
PLAYER_LEFT = pong.PLAYER_X * PONG_SCALE  # the player's paddle lies behind its face, to the right
OPPONENT_LEFT = pong.OPPONENT_X * PONG_SCALE - PONG_PADDLE_WIDTH  # and the opponent's to the left

Sprite = list[list[np.ndarray]]
"""A box drawn at every sub-pixel offset: ``sprite[i][j]``, a ``(rows, cols, 1)`` uint8 patch."""


def coverage(start: float, size: float, cells: int) -> np.ndarray:
    """How much of each of ``cells`` pixels, from pixel ``floor(start)`` on, ``[start, start + size)`` covers.

    Example:
        >>> coverage(0.25, 2.0, 3).tolist()
        [0.75, 1.0, 0.25]
    """
    first = math.floor(start)
    left = np.arange(first, first + cells, dtype=float)
    return np.clip(np.minimum(left + 1.0, start + size) - np.maximum(left, start), 0.0, 1.0)


@cache
def sprite(width: float, height: float, level: int, under: int = 0) -> Sprite:
    """A ``width`` x ``height`` pixel box of grey ``level`` over a background of grey ``under``.

    ``sprite(...)[i][j]`` is the box with its top-left corner ``i / SUBPIXEL`` of a pixel below
    and ``j / SUBPIXEL`` right of its first pixel's corner: the pixels it touches, each lit in
    proportion to the part of it the box covers (the rest is ``under``). Cached: read-only.

    Example:
        >>> box = sprite(2.0, 2.0, 200)
        >>> box[0][0][..., 0].tolist(), box[0][16][0, :, 0].tolist()
        ([[200, 200], [200, 200]], [100, 200, 100])
    """
    offsets = np.arange(SUBPIXEL) / SUBPIXEL
    rows = np.stack([coverage(o, height, math.ceil(height) + 1) for o in offsets])
    cols = np.stack([coverage(o, width, math.ceil(width) + 1) for o in offsets])
    lit = rows[:, None, :, None, None] * cols[None, :, None, :, None]
    patches = np.rint(under + (level - under) * lit).astype(np.uint8)
    patches.flags.writeable = False
    touched_rows, touched_cols = (rows > 0).sum(axis=1), (cols > 0).sum(axis=1)  # the rest is past the box
    return [
        [patches[i, j, : touched_rows[i], : touched_cols[j]] for j in range(SUBPIXEL)]
        for i in range(SUBPIXEL)
    ]


def stamp(canvas: np.ndarray, box: Sprite, row: float, col: float, brighter: bool = False) -> None:
    """Draw ``box`` with its top-left corner at pixel ``(row, col)`` of a ``(FRAME, FRAME, 1)``
    canvas, clipped to it: over what is there, or only where brighter (``brighter``, slower)."""
    r = int(row * SUBPIXEL + ROUNDING) - BELOW_ZERO  # to the nearest 1/SUBPIXEL of a pixel
    c = int(col * SUBPIXEL + ROUNDING) - BELOW_ZERO
    patch = box[r & (SUBPIXEL - 1)][c & (SUBPIXEL - 1)]
    i, j = r >> SHIFT, c >> SHIFT
    h, w = patch.shape[0], patch.shape[1]
    if i < 0 or j < 0 or i + h > FRAME or j + w > FRAME:  # at an edge: only the part inside
        patch = patch[max(0, -i) : FRAME - i, max(0, -j) : FRAME - j]
        i, j = max(0, i), max(0, j)
        h, w = patch.shape[0], patch.shape[1]
    view = canvas[i : i + h, j : j + w]
    if brighter:
        np.maximum(view, patch, out=view)
    else:
        view[...] = patch


def image_space() -> spaces.Box:
    """The observation space of both games: one grey ``FRAME`` x ``FRAME`` frame, channel last."""
    return spaces.Box(0, 255, (FRAME, FRAME, 1), np.uint8)


class CatchPixelsEnv(CatchEnv):
    """Catch seen as one 36x36 grey frame (see the module docstring); all else is ``CatchEnv``'s.

    Args:
        render_mode: ``None``, ``"human"`` or ``"rgb_array"`` (the pygame drawing of ``CatchEnv``).

    Example:
        >>> env = CatchPixelsEnv()
        >>> obs, _ = env.reset(seed=1)
        >>> int(obs[LINE_ROW, round(env._px * CATCH_COLS), 0]) == PADDLE  # under the paddle's centre
        True
        >>> obs, reward, terminated, truncated, info = env.step(1)
        >>> obs.shape, reward, terminated, truncated
        ((36, 36, 1), 0.0, False, False)
    """

    def __init__(self, render_mode: str | None = None) -> None:
        super().__init__(render_mode)
        self.observation_space = image_space()
        self._background = np.zeros((FRAME, FRAME, 1), np.uint8)
        pit = coverage(LINE_ROW, -catch.FLOOR * CATCH_ROWS, FRAME - LINE_ROW)  # rows from the catch line down
        self._background[LINE_ROW:, :, 0] = np.rint(PIT * pit)[:, None].astype(np.uint8)
        # drawn over the pit's full rows, so its own background is the pit
        self._paddle = sprite(2 * catch.PADDLE_HALF * CATCH_COLS, 2.0, PADDLE, under=PIT)
        self._falling, self._caught_box, self._missed_box = (
            sprite(THING, THING, level) for level in (FALLING, CAUGHT, MISSED)
        )

    def _obs(self) -> np.ndarray:  # a frame, not the state vector
        canvas = self._background.copy()
        stamp(canvas, self._paddle, LINE_ROW, (self._px - catch.PADDLE_HALF) * CATCH_COLS)
        drawn: list[tuple[float, float]] = []
        for x, y, _, _, hold in self._objects:
            row, col = LINE_ROW - THING - y * CATCH_ROWS, x * CATCH_COLS - THING / 2
            if hold:
                box, brighter = self._caught_box, False
            elif y > 0.0:
                box, brighter = self._falling, False
            else:  # over the pit and maybe the paddle: only where brighter
                box, brighter = self._missed_box, True
            for r, c in drawn:  # and so over an object it touches (rare: only then is it slower)
                if abs(row - r) < NEAR and abs(col - c) < NEAR:
                    brighter = True
            stamp(canvas, box, row, col, brighter)
            drawn.append((row, col))
        return canvas


class PongPixelsEnv(PongEnv):
    """Pong seen as one 36x36 grey frame (see the module docstring); all else is ``PongEnv``'s.

    Args:
        render_mode: ``None``, ``"human"`` or ``"rgb_array"`` (the pygame drawing of ``PongEnv``).

    Example:
        >>> env = PongPixelsEnv()
        >>> obs, _ = env.reset(seed=0)
        >>> int(obs[18, 33, 0]), int(obs[18, 2, 0])  # the paddles, centred: the player's, the opponent's
        (160, 96)
        >>> int(obs.max()), int((obs == BALL).sum()) >= 1  # the ball, served from the centre
        (255, True)
    """

    def __init__(self, render_mode: str | None = None) -> None:
        super().__init__(render_mode)
        self.observation_space = image_space()
        height = 2 * pong.PADDLE_HALF * PONG_SCALE
        self._player_box = sprite(PONG_PADDLE_WIDTH, height, PLAYER)
        self._opponent_box = sprite(PONG_PADDLE_WIDTH, height, OPPONENT)
        self._ball_box = sprite(THING, THING, BALL)

    def _obs(self) -> np.ndarray:  # a frame, not the state vector
        canvas = np.zeros((FRAME, FRAME, 1), np.uint8)
        top = 1.0 - pong.PADDLE_HALF
        stamp(canvas, self._player_box, (top - self._player) * PONG_SCALE, PLAYER_LEFT)
        stamp(canvas, self._opponent_box, (top - self._opponent) * PONG_SCALE, OPPONENT_LEFT)
        x, y, _, _ = self._ball
        col = x * PONG_SCALE - THING / 2
        over_a_paddle = not OPPONENT_LEFT + PONG_PADDLE_WIDTH <= col <= PLAYER_LEFT - THING
        stamp(canvas, self._ball_box, (1.0 - y) * PONG_SCALE - THING / 2, col, brighter=over_a_paddle)
        return canvas


# A frame is a function of the game's state: the state envs' handlers save all there is.
snapshots.register(CatchPixelsEnv, snapshots.HANDLERS[CatchEnv])
snapshots.register(PongPixelsEnv, snapshots.HANDLERS[PongEnv])
