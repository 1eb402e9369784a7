"""What the paddle games (``catch.py``, ``pong.py``) share: a base class, wall bounces and a score display.

Both games are a paddle on a unit field moved by ``Discrete(3)`` actions (one way, stay, the
other way), with Python-float physics and a drawing through the shared ``Renderer``.

Example:
    >>> fold(1.3, 0.0, 1.0), fold(-0.25, 0.0, 1.0)  # a point bounced back off the walls
    (0.7, 0.25)
    >>> move_paddle(0.5, 1, 0.1, 0.0, 1.0), move_paddle(0.95, 1, 0.1, 0.0, 1.0)
    (0.6, 1.0)
    >>> bounce(-0.25, -0.5, 0.0, 1.0)  # a ball stepped through a wall, mirrored back
    (0.25, 0.5)
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from rlhf_gym.tasks.envs.rendering import SelfDrawn, check_render_mode

# Which of the seven segments each character lights: top, top right, bottom right, bottom,
# bottom left, top left, middle (the usual a-g order).
SEGMENTS = {
    "0": "abcdef",
    "1": "bc",
    "2": "abdeg",
    "3": "abcdg",
    "4": "bcfg",
    "5": "acdfg",
    "6": "acdefg",
    "7": "abc",
    "8": "abcdefg",
    "9": "abcdfg",
    "-": "g",
}


def fold(pos: float, lo: float, hi: float) -> float:
    """Where a point travelling ``pos - lo`` from ``lo`` ends up between walls at ``lo`` and ``hi``.

    A straight path continued past a wall is mirrored back (any number of bounces), so
    ``fold(x + n * v, lo, hi)`` is where a ball at ``x`` with velocity ``v`` is after ``n`` steps.

    Example:
        >>> fold(2.5, 0.0, 1.0)  # out to 1, back to 0, out to 0.5
        0.5
    """
    span = hi - lo
    u = (pos - lo) % (2.0 * span)
    return lo + (u if u <= span else 2.0 * span - u)


def bounce(pos: float, vel: float, lo: float, hi: float) -> tuple[float, float]:
    """A position and velocity after one step that may cross a wall at ``lo`` or ``hi``: mirrored back.

    Example:
        >>> bounce(1.25, 0.5, 0.0, 1.0)
        (0.75, -0.5)
    """
    if pos < lo:
        return 2.0 * lo - pos, -vel
    if pos > hi:
        return 2.0 * hi - pos, -vel
    return pos, vel


def move_paddle(pos: float, direction: int, speed: float, lo: float, hi: float) -> float:
    """The paddle's position after a step of ``direction`` (-1, 0 or +1) times ``speed``, kept in [lo, hi]."""
    pos += direction * speed
    return lo if pos < lo else hi if pos > hi else pos


def check_action(action: Any) -> int:
    """The ``Discrete(3)`` action as an ``int``; a ``ValueError`` names any other value."""
    a = int(action)
    if a != action or a not in (0, 1, 2):
        raise ValueError(f"action must be 0, 1 or 2 (Discrete(3)), got {action!r}")
    return a


def draw_number(
    surface: Any, pg: Any, value: int, centre: tuple[int, int], height: int, colour: tuple[int, int, int]
) -> None:
    """Draw an integer in seven-segment digits, centred at ``centre`` (no font needed).

    Example:
        >>> from rlhf_gym.tasks.envs.rendering import Renderer
        >>> r = Renderer((60, 40), "rgb_array", fps=30)
        >>> frame = r.render(lambda surface, pg: draw_number(surface, pg, 12, (30, 20), 20, (0, 0, 0)))
        >>> int((frame.sum(axis=2) == 0).sum()) > 50  # the digits' pixels are black
        True
        >>> r.close()
    """
    text = str(int(value))
    w, t = height // 2, max(2, height // 8)  # digit width, stroke thickness
    gap = t * 2
    x = centre[0] - (len(text) * (w + gap) - gap) // 2
    top, mid, bottom = centre[1] - height // 2, centre[1] - t // 2, centre[1] + height // 2 - t
    for char in text:
        rects = {
            "a": (x, top, w, t),
            "b": (x + w - t, top, t, height // 2),
            "c": (x + w - t, centre[1], t, height // 2),
            "d": (x, bottom, w, t),
            "e": (x, centre[1], t, height // 2),
            "f": (x, top, t, height // 2),
            "g": (x, mid, w, t),
        }
        for seg in SEGMENTS[char]:
            pg.draw.rect(surface, colour, rects[seg])
        x += w + gap


class PaddleGame(SelfDrawn, gym.Env[np.ndarray, np.int64]):
    """Base of the paddle games: the render mode, and drawing through ``SelfDrawn``.

    A subclass sets ``SIZE`` (pixels), ``TITLE`` and ``metadata``, and implements ``_draw``.

    Args:
        render_mode: ``None``, ``"human"`` or ``"rgb_array"``.
    """

    def __init__(self, render_mode: str | None = None) -> None:
        check_render_mode(render_mode)
        self.render_mode = render_mode
