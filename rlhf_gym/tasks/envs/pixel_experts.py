"""Experts for the pixel games: read the state back from two stacked frames, then play as the state experts.

``CatchPixelsExpert`` and ``PongPixelsExpert`` take the observation of ``CatchPixels-v0`` and
``PongPixels-v0`` (``frame_stack: 2``: ``(36, 36, 2)`` uint8, channel 0 the previous frame,
channel 1 the current), recover the state vector of ``CatchEnv`` / ``PongEnv`` from it (the same
slots and scaling, ``catch_state`` and ``pong_state``) and call ``CatchExpert`` / ``PongExpert``.

Decoding inverts the drawing of ``rlhf_gym.tasks.envs.pixels``:

- **Which thing**: each thing has a grey level of its own and at least one pixel at that full
  level, so the full-level pixels find it (Catch's objects: a cluster of touching ones each).
- **Where**: along each axis, the line of pixels through a full-level pixel holds a run at the
  full level (or brighter, where something lies over it) and a partly lit pixel either side,
  lit in proportion to the part the box covers. Each side gives where the box starts, to about
  1/100 of a pixel; where the two disagree, something else touches one side, and the side
  farther from the other things is kept. A neighbour is read only where the box, not the
  background (Catch's pit and paddle, Pong's paddles, drawn again where decoded), lit it.
- **How fast**: the difference of the two frames, each object matched to the one in the
  previous frame a plausible step above it. A thing seen in one frame only (a new object; both
  frames after a reset) falls at the mean speed with no drift; Pong's ball, after bouncing off
  a paddle or a new serve, heads away from the side of the court it is on.

Mean true return over 20 seeds (seeds 0-19, 500 steps, fixed horizon; ``mean_return`` of
``rlhf_gym.tasks.experts``), the pixel expert on the pixel task beside the state expert on the
state task (the same games, seed for seed):

    task             pixel expert   state expert   uniform random
    CatchPixels-v0          +20.7          +20.8            -10.3
    PongPixels-v0            +4.1           +4.1            -17.3

Example:
    >>> from rlhf_gym.tasks.envs.catch import CatchEnv
    >>> from rlhf_gym.tasks.envs.pixels import CatchPixelsEnv
    >>> env = CatchPixelsEnv()
    >>> frame, _ = env.reset(seed=0)
    >>> state = catch_state(np.concatenate([frame, frame], axis=2))  # as after a reset
    >>> true = CatchEnv._obs(env)  # the state vector the frame shows
    >>> bool(np.abs(state - true)[[0, 1, 2, 5]].max() < 1 / 36)  # the paddle; the object's place, presence
    True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from rlhf_gym.tasks.envs import catch, pong
from rlhf_gym.tasks.envs.catch import CatchExpert
from rlhf_gym.tasks.envs.pixels import (
    BALL,
    CATCH_COLS,
    CATCH_ROWS,
    CAUGHT,
    FALLING,
    FRAME,
    LINE_ROW,
    MISSED,
    OPPONENT,
    OPPONENT_LEFT,
    PADDLE,
    PIT,
    PLAYER,
    PLAYER_LEFT,
    PONG_PADDLE_WIDTH,
    PONG_SCALE,
    THING,
    coverage,
    sprite,
    stamp,
)
from rlhf_gym.tasks.envs.pong import PongExpert

AGREE = 0.15  # pixels: the two sides of one box agree to this when nothing else touches them
LIT = 3  # grey levels above the background for a pixel to be read as lit by the box
CATCH_PADDLE_WIDTH = 2 * catch.PADDLE_HALF * CATCH_COLS
PONG_PADDLE_HEIGHT = 2 * pong.PADDLE_HALF * PONG_SCALE
PLAYER_COL, OPPONENT_COL = math.ceil(PLAYER_LEFT), math.ceil(OPPONENT_LEFT)  # each paddle's full column
FALL_ROWS = (0.5, 1.1)  # rows a falling object moves a step: 0.02 to 0.035 of height, 29 rows a unit
DRIFT_COLS = 0.5  # columns it moves sideways at most: 0.01 of width, 36 columns a unit
MEAN_FALL = (catch.VY_MIN + catch.VY_MAX) / 2 / catch.VY_MAX  # an object seen once: its fall speed
STEP_COLS = pong.VX * PONG_SCALE  # columns the ball crosses a step

Point = tuple[float, float]  # (row, col), in pixels: pixel k spans [k, k + 1)
Cover = Callable[[int], float | None]  # the part of pixel i a box covers, or None: unknown


def frames(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The previous and the current frame, ``(FRAME, FRAME)`` each, of a stacked observation
    (the current twice when it holds one frame).

    Raises:
        ValueError: ``obs`` is not ``(36, 36, k)`` grey frames.
    """
    obs = np.asarray(obs)
    if obs.ndim != 3 or obs.shape[:2] != (FRAME, FRAME) or obs.shape[2] < 1:
        raise ValueError(f"expected stacked frames of shape ({FRAME}, {FRAME}, k), got {obs.shape}")
    return obs[..., max(0, obs.shape[2] - 2)], obs[..., -1]


def box_start(
    line: np.ndarray, seed: int, width: float, cover: Cover, near: Sequence[float] = (), inside: bool = False
) -> float:
    """Where a box ``width`` pixels long starts along ``line``, a row or column of a frame through
    its full-level pixel ``seed``.

    The box spans the run of pixels at its level or brighter around ``seed``; ``cover(i)`` is
    the part of pixel ``i`` just outside the run that the box covers (``None``: unknown). The two
    sides' answers are averaged, or where they disagree the side farther from the things at
    ``near`` (positions along ``line``) is kept. A box ``inside`` the line (a paddle) whose run
    reaches an end of it lies against that end.

    Example:
        >>> line = np.array([0, 0, 50, 200, 150, 0])  # grey 200 from 2.75 to 4.75
        >>> box_start(line, 3, 2.0, lambda i: line[i] / 200)
        2.75
        >>> line[4] = 200  # something as bright touches its right side: the left one is kept
        >>> box_start(line, 3, 2.0, lambda i: line[i] / 200, near=[5.0])
        2.75
    """
    mask = line >= line[seed]
    a, b = seed, seed + 1
    while a > 0 and mask[a - 1]:
        a -= 1
    while b < len(line) and mask[b]:
        b += 1
    guesses = []  # (start, where the pixel read lies)
    if a == 0 and inside:
        guesses.append((0.0, -0.5))
    elif a > 0 and (c := cover(a - 1)) is not None:
        guesses.append((a - c, a - 0.5))
    if b == len(line) and inside:
        guesses.append((b - width, b + 0.5))
    elif b < len(line) and (c := cover(b)) is not None:
        guesses.append((b - width + c, b + 0.5))
    if not guesses:
        return (a + b - width) / 2
    starts = [g[0] for g in guesses]
    if max(starts) - min(starts) > AGREE and near:
        return float(max(guesses, key=lambda g: min(abs(g[1] - n) for n in near))[0])
    return float(np.mean(starts))


def blobs(mask: np.ndarray) -> list[Point]:
    """The centres of the clusters of touching (8-neighbour) pixels of ``mask``, each rounded down
    to a pixel of its cluster (a thing's full-level pixels: a block of 1 or 2 a side).

    Example:
        >>> mask = np.zeros((5, 5), bool)
        >>> mask[1:3, 1:3] = mask[4, 4] = True
        >>> blobs(mask)
        [(2.0, 2.0), (4.5, 4.5)]
    """
    left = set(zip(*(idx.tolist() for idx in np.nonzero(mask))))
    found = []
    for pixel in sorted(left):
        if pixel not in left:
            continue
        left.discard(pixel)
        stack, members = [pixel], []
        while stack:
            r, c = stack.pop()
            members.append((r, c))
            for n in ((r + i, c + j) for i in (-1, 0, 1) for j in (-1, 0, 1)):
                if n in left:
                    left.discard(n)
                    stack.append(n)
        rows, cols = [m[0] for m in members], [m[1] for m in members]
        centre = ((min(rows) + max(rows) + 1) / 2, (min(cols) + max(cols) + 1) / 2)
        if (int(centre[0]), int(centre[1])) not in members:  # two things of one grey, touching
            centre = (members[0][0] + 0.5, members[0][1] + 0.5)
        found.append(centre)
    return found


def box_corner(frame: np.ndarray, background: np.ndarray, centre: Point, others: Sequence[Point]) -> Point:
    """The top-left corner of the 2x2 box (an object, the ball) whose full-level pixels centre on
    ``centre``, over ``background`` (what the frame shows without it); ``others``: other things."""
    r, c = int(centre[0]), int(centre[1])  # a full-level pixel
    level = int(frame[r, c])

    def cover(values: np.ndarray, under: np.ndarray) -> Cover:
        def read(i: int) -> float | None:
            v, bg = int(values[i]), int(under[i])
            return v / level if v <= level and (bg == 0 or v > bg + LIT) else None

        return read

    near_rows = [p[0] for p in others if abs(p[1] - centre[1]) < 2 * THING]
    near_cols = [p[1] for p in others if abs(p[0] - centre[0]) < 2 * THING]
    row = box_start(frame[:, c], r, THING, cover(frame[:, c], background[:, c]), near_rows)
    col = box_start(frame[r], c, THING, cover(frame[r], background[r]), near_cols)
    return row, col


def _longest_run(line: np.ndarray, level: int) -> int | None:
    """The first index of the longest run of ``level`` in ``line``, or ``None``."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], line == level, [0]]).astype(np.int8)))
    starts, stops = edges[::2], edges[1::2]
    return int(starts[np.argmax(stops - starts)]) if len(starts) else None


# Catch.

_PIT = np.zeros((FRAME, FRAME, 1), np.uint8)  # the pit, drawn as CatchPixelsEnv draws it
_pit_rows = coverage(LINE_ROW, -catch.FLOOR * CATCH_ROWS, FRAME - LINE_ROW)
_PIT[LINE_ROW:, :, 0] = np.rint(PIT * _pit_rows)[:, None]
_CATCH_PADDLE = sprite(CATCH_PADDLE_WIDTH, 2.0, PADDLE, under=PIT)


def _over_the_pit(line: np.ndarray) -> Cover:
    """The part of each pixel of a paddle row that Catch's paddle covers (blended over the pit)."""
    return lambda i: min(max((int(line[i]) - PIT) / (PADDLE - PIT), 0.0), 1.0)


def _falling_corners(frame: np.ndarray) -> np.ndarray:
    """Where a falling object's corner pixel is lit: diagonal to its full-level pixel, between
    two of its edge pixels brighter than ``MISSED`` (a corner can take ``MISSED``'s grey exactly:
    255 x 21/32 x 29/32, rounded)."""
    padded = np.pad(frame.astype(np.int16), 1)
    found = np.zeros(frame.shape, bool)
    for dr in (-1, 1):
        for dc in (-1, 1):
            rows, cols, inner = (
                slice(1 + dr, 1 + dr + FRAME),
                slice(1 + dc, 1 + dc + FRAME),
                slice(1, 1 + FRAME),
            )
            diagonal, beside = padded[rows, cols] == FALLING, padded[rows, inner] > MISSED
            found |= diagonal & beside & (padded[inner, cols] > MISSED)
    return found


def catch_frame(frame: np.ndarray) -> tuple[float, list[tuple[Point, int]]]:
    """The paddle's position ``px`` and each object's box corner and grey level in one frame."""
    found: list[tuple[Point, int]] = []
    for level in (FALLING, CAUGHT, MISSED):
        mask = frame == level
        if level == MISSED:
            mask &= ~_falling_corners(frame)
        found += [(centre, level) for centre in blobs(mask)]
    centres = [centre for centre, _ in found]
    missed_cols = [centre[1] for centre, level in found if level == MISSED]
    starts = []
    for row in (LINE_ROW, LINE_ROW + 1):
        line = frame[row]
        seed = _longest_run(line, PADDLE)
        if seed is not None:
            read = _over_the_pit(line)
            starts.append(box_start(line, seed, CATCH_PADDLE_WIDTH, read, missed_cols, inside=True))
    left = float(np.mean(starts)) if starts else (0.5 - catch.PADDLE_HALF) * CATCH_COLS
    px = min(max(left / CATCH_COLS + catch.PADDLE_HALF, catch.PADDLE_HALF), 1.0 - catch.PADDLE_HALF)
    background = _PIT.copy()
    stamp(background, _CATCH_PADDLE, LINE_ROW, (px - catch.PADDLE_HALF) * CATCH_COLS)
    objects = []
    for k, (centre, level) in enumerate(found):
        others = centres[:k] + centres[k + 1 :]
        objects.append((box_corner(frame, background[..., 0], centre, others), level))
    return px, objects + _resting_past_the_wall(frame, centres)


def _resting_past_the_wall(frame: np.ndarray, centres: Sequence[Point]) -> list[tuple[Point, int]]:
    """Objects resting on a paddle at a wall that carried them partly past it (up to 1.9 of their
    2 columns): only their part in the first or last column shows, in the two rows over the line."""
    found = []
    for col, corner in ((0, -THING), (FRAME - 1, FRAME)):
        v = int(frame[LINE_ROW - 1, col])
        alone = all(abs(c - col - 0.5) > THING or r < LINE_ROW - 2 * THING for r, c in centres)
        if 0 < v < CAUGHT and frame[LINE_ROW - 2, col] == v and alone:
            shown = v / CAUGHT  # the part of the box's 2 columns inside the frame
            found.append(((LINE_ROW - THING, corner + shown if col == 0 else corner - shown), CAUGHT))
    return found


def catch_state(obs: np.ndarray) -> np.ndarray:
    """``CatchEnv``'s observation (16 values; see ``rlhf_gym.tasks.envs.catch``) read from stacked frames.

    Raises:
        ValueError: ``obs`` is not ``(36, 36, k)`` grey frames.
    """
    previous, current = frames(obs)
    px, objects = catch_frame(current)
    before = [corner for corner, level in catch_frame(previous)[1] if level != CAUGHT]
    slots = []
    for (row, col), level in objects:
        x = (col + THING / 2) / CATCH_COLS  # (a resting object may be carried partly past a wall)
        y = (LINE_ROW - THING - row) / CATCH_ROWS
        vx, vy = 0.0, MEAN_FALL
        if level == CAUGHT:
            y, vy = 0.0, 0.0
        else:
            x = min(max(x, catch.RADIUS), 1.0 - catch.RADIUS)
            steps = [
                (col - c, row - r)
                for r, c in before
                if FALL_ROWS[0] <= row - r <= FALL_ROWS[1] and abs(col - c) <= DRIFT_COLS
            ]
            if steps:
                d_col, d_row = min(steps, key=lambda s: abs(s[0]) + abs(s[1] - 0.8))
                vx = min(max(d_col / CATCH_COLS / catch.VX_MAX, -1.0), 1.0)
                vy = min(d_row / CATCH_ROWS / catch.VY_MAX, 1.0)
            y = min(y, 0.0) if level == MISSED else max(y, 1e-6)
        slots.append((y, x, vx, vy))
    slots.sort(key=lambda s: s[0])
    values = [2.0 * px - 1.0]
    for y, x, vx, vy in slots[: catch.SLOTS]:
        values += (x - px, y, vx, vy, 1.0)
    values += [0.0] * (1 + 5 * catch.SLOTS - len(values))
    return np.array(values, dtype=np.float32)


class CatchPixelsExpert:
    """``CatchExpert`` on the state ``catch_state`` reads from the stacked frames of ``CatchPixels-v0``.

    Example:
        >>> from rlhf_gym.tasks.envs.pixels import CatchPixelsEnv
        >>> frame, _ = CatchPixelsEnv().reset(seed=0)
        >>> CatchPixelsExpert()(np.concatenate([frame, frame], axis=2)) in (0, 1, 2)
        True
    """

    def __init__(self) -> None:
        self.expert = CatchExpert()

    def __call__(self, obs: np.ndarray) -> int:
        return self.expert(catch_state(obs))


# Pong.


def _paddle_top(frame: np.ndarray, col: int, level: int, ball: Point | None) -> float:
    """The top row of a Pong paddle, from its full column ``col``; ``ball``: where the ball is."""
    line = frame[:, col]
    seed = _longest_run(line, level)
    if seed is None:  # never: the ball hides at most 3 of its 7 rows
        return (0.5 - pong.PADDLE_HALF) * PONG_SCALE
    near = [ball[0]] if ball is not None and abs(ball[1] - col - 0.5) < 2 * THING else []

    def read(i: int) -> float | None:  # over black
        return min(int(line[i]) / level, 1.0)

    return box_start(line, seed, PONG_PADDLE_HEIGHT, read, near, inside=True)


def pong_frame(frame: np.ndarray) -> tuple[Point, float, float]:
    """The ball's box corner and the centres of the player's and the opponent's paddles in one frame."""
    found = blobs(frame == BALL)
    ball = found[0] if found else None
    top = 1.0 - pong.PADDLE_HALF
    player = top - _paddle_top(frame, PLAYER_COL, PLAYER, ball) / PONG_SCALE
    opponent = top - _paddle_top(frame, OPPONENT_COL, OPPONENT, ball) / PONG_SCALE
    if ball is None:  # never: the ball has a full-level pixel
        return (FRAME / 2 - 1, FRAME / 2 - 1), player, opponent
    background = np.zeros((FRAME, FRAME, 1), np.uint8)  # the paddles, drawn where they were read
    for centre, level, left in ((player, PLAYER, PLAYER_LEFT), (opponent, OPPONENT, OPPONENT_LEFT)):
        box = sprite(PONG_PADDLE_WIDTH, PONG_PADDLE_HEIGHT, level)
        stamp(background, box, (top - centre) * PONG_SCALE, left)
    return box_corner(frame, background[..., 0], ball, []), player, opponent


def pong_state(obs: np.ndarray) -> np.ndarray:
    """``PongEnv``'s observation (6 values; see ``rlhf_gym.tasks.envs.pong``) read from stacked frames.

    Raises:
        ValueError: ``obs`` is not ``(36, 36, k)`` grey frames.
    """
    previous, current = frames(obs)
    (row, col), player, opponent = pong_frame(current)
    row0, col0 = pong_frame(previous)[0]
    x, y = (col + THING / 2) / PONG_SCALE, 1.0 - (row + THING / 2) / PONG_SCALE
    d_col, vy = col - col0, (row0 - row) / PONG_SCALE / pong.VY_MAX
    if abs(abs(d_col) - STEP_COLS) < 0.3:  # a plain step across the court
        vx = math.copysign(1.0, d_col)
    elif abs(d_col) < STEP_COLS:  # bounced off a paddle (its new angle shows next step), or a reset
        vx = -1.0 if x > 0.5 else 1.0  # (the same frame twice, served from the centre): away from its side
    else:  # a new serve, from the centre: toward the player
        vx, vy = 1.0, 0.0
    values = [2 * x - 1, 2 * y - 1, vx, vy, 2 * player - 1, 2 * opponent - 1]
    return np.clip(np.array(values, dtype=np.float32), -1.0, 1.0)


class PongPixelsExpert:
    """``PongExpert`` on the state ``pong_state`` reads from the stacked frames of ``PongPixels-v0``.

    Example:
        >>> from rlhf_gym.tasks.envs.pixels import PongPixelsEnv
        >>> frame, _ = PongPixelsEnv().reset(seed=0)
        >>> PongPixelsExpert()(np.concatenate([frame, frame], axis=2)) in (0, 1, 2)
        True
    """

    def __init__(self) -> None:
        self.expert = PongExpert()

    def __call__(self, obs: np.ndarray) -> int:
        return self.expert(pong_state(obs))
