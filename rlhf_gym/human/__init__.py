"""The person at the keyboard: pygame-ce windows for playing tasks and giving feedback.

This package is the only one that opens windows; it imports pygame when a window opens, so
``import rlhf_gym`` never does. Keys are read from pygame events, so tests drive it headless
with ``SDL_VIDEODRIVER=dummy`` and ``pygame.event.post``.
"""

from __future__ import annotations


class NoDisplayError(RuntimeError):
    """There is no screen to open a window on."""
