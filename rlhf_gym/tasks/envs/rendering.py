"""Drawing for the project's environments: a pygame-ce surface per frame, shown in a window
(``render_mode="human"``) or returned as an ``(H, W, 3)`` uint8 array (``"rgb_array"``).

pygame is imported on the first frame, so building or stepping an environment never needs it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

RENDER_MODES = ("human", "rgb_array")

BACKGROUND = (245, 245, 240)
INK = (40, 40, 48)
ACCENT = (214, 96, 77)
GOOD = (76, 153, 96)
BLUE = (66, 114, 196)
MUTED = (170, 170, 165)


def check_render_mode(render_mode: str | None) -> None:
    """Reject an unknown render mode, naming the ones there are."""
    if render_mode is not None and render_mode not in RENDER_MODES:
        raise ValueError(f"unknown render_mode {render_mode!r}; expected None, 'human' or 'rgb_array'")


class Renderer:
    """Turns a drawing function into frames for one environment.

    Args:
        size: ``(width, height)`` in pixels.
        render_mode: ``"human"`` (a window, paced at ``fps``) or ``"rgb_array"``.
        fps: frames per second in human mode (the environment's ``render_fps``).
        title: the window caption.

    Example:
        >>> r = Renderer((40, 30), "rgb_array", fps=30)
        >>> frame = r.render(lambda surface, pg: pg.draw.circle(surface, INK, (20, 15), 5))
        >>> frame.shape, frame.dtype, frame[15, 20].tolist()
        ((30, 40, 3), dtype('uint8'), [40, 40, 48])
        >>> r.close()
    """

    def __init__(self, size: tuple[int, int], render_mode: str, fps: int, title: str = "rlhf-gym") -> None:
        check_render_mode(render_mode)
        self.size, self.render_mode, self.fps, self.title = size, render_mode, fps, title
        self._window: Any = None
        self._clock: Any = None

    def render(self, draw: Any) -> np.ndarray | None:
        """Call ``draw(surface, pygame)`` on a fresh background; show or return the frame."""
        import pygame

        surface = pygame.Surface(self.size)
        surface.fill(BACKGROUND)
        draw(surface, pygame)
        if self.render_mode == "rgb_array":
            return np.ascontiguousarray(pygame.surfarray.array3d(surface).transpose(1, 0, 2))
        if self._window is None:
            pygame.init()
            pygame.display.set_caption(self.title)
            self._window = pygame.display.set_mode(self.size)
            self._clock = pygame.time.Clock()
        self._window.blit(surface, (0, 0))
        pygame.event.pump()
        pygame.display.flip()
        self._clock.tick(self.fps)
        return None

    def close(self) -> None:
        """Close the window, if one was opened."""
        if self._window is not None:
            import pygame

            pygame.display.quit()
            self._window = None


class SelfDrawn:
    """``render()`` and ``close()`` for an environment that draws itself: mix in before
    ``gym.Env``, set ``SIZE`` (pixels) and ``TITLE``, keep ``render_mode`` and ``metadata``, and
    implement ``_draw(surface, pygame)``. The ``Renderer`` is built on the first frame."""

    SIZE: tuple[int, int] = (400, 400)
    TITLE = "rlhf-gym"
    render_mode: str | None
    metadata: dict[str, Any]
    _renderer: Renderer | None = None

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            import gymnasium as gym

            gym.logger.warn(
                f"{type(self).__name__}.render() called without a render_mode; pass "
                "render_mode='rgb_array' or 'human' to make()"
            )
            return None
        if self._renderer is None:
            self._renderer = Renderer(self.SIZE, self.render_mode, self.metadata["render_fps"], self.TITLE)
        return self._renderer.render(self._draw)

    def _draw(self, surface: Any, pg: Any) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement _draw(surface, pygame)")

    def close(self) -> None:
        """Close the window, if one was opened."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None


def to_pixels(xy: Any, scale: float, origin: tuple[float, float]) -> tuple[int, int]:
    """World coordinates (y up) to pixel coordinates (y down) around a pixel ``origin``.

    Example:
        >>> to_pixels((1.0, 0.5), scale=100, origin=(200, 200))
        (300, 150)
    """
    return round(origin[0] + scale * float(xy[0])), round(origin[1] - scale * float(xy[1]))
