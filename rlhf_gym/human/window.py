"""Opening the window quietly and noticing every way it can close.

- ``init_pygame`` starts only pygame's display and fonts, with SDL's ``dummy`` audio driver (the
  app plays no sound; environments that call ``pygame.init()`` to render, as Gymnasium's classic
  control does, then open no sound card either, so ALSA prints nothing).
- ``open_window`` gives the display surface, or a ``NoDisplayError`` when there is no screen.
- ``XGuard`` keeps a window destroyed from outside (``xdotool windowclose``) from ending the
  process: Xlib's default handler exits on the ``BadDrawable`` that the next frame then causes
  (and on the ``BadWindow`` of SDL's own destroy at the end). Our handler, installed before SDL
  starts, records them instead, and the window loop ends as if the window were closed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from typing import Any

from rlhf_gym.human import NoDisplayError

BAD_WINDOW, BAD_DRAWABLE = 3, 9
"""X protocol error codes (X.h) that mean a window is gone."""


def init_pygame() -> Any:
    """pygame with its display and fonts started, and no audio opened."""
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")  # an explicit choice of the user's wins
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    if os.environ.get("DISPLAY") and os.environ.get("SDL_VIDEODRIVER", "x11") == "x11":
        _X_ERRORS.install()
    import pygame

    pygame.display.init()
    pygame.font.init()
    return pygame


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


class _XErrorEvent(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("display", ctypes.c_void_p),
        ("resourceid", ctypes.c_ulong),
        ("serial", ctypes.c_ulong),
        ("error_code", ctypes.c_ubyte),
        ("request_code", ctypes.c_ubyte),
        ("minor_code", ctypes.c_ubyte),
    ]


_HANDLER = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(_XErrorEvent))


class _XErrors:
    """The process's X error handler (Xlib has one): counts errors, notes a missing window."""

    def __init__(self) -> None:
        self.gone = False
        self.errors = 0
        self.installed: Any = None  # the C callback, kept referenced while installed

    def install(self) -> None:
        """Install it, once. Before SDL starts its video, so that SDL keeps it as the handler it
        chains to and restores when it quits (its destroy then reports the window missing too)."""
        library = ctypes.util.find_library("X11")
        if self.installed is not None or library is None:
            return
        try:
            x11 = ctypes.CDLL(library)  # the copy SDL loads: the handler is the process's
        except OSError:
            return  # (then Xlib's default handler stays: a window destroyed from outside ends the app)
        # Xlib's locks must come before any display is opened: GLFW (MuJoCo's renderer) calls
        # XInitThreads when it starts, and after SDL's display is open that leaves SDL's window
        # black
        x11.XInitThreads()
        x11.XSetErrorHandler.restype = ctypes.c_void_p
        x11.XSetErrorHandler.argtypes = [_HANDLER]
        self.installed = _HANDLER(self._on_error)
        x11.XSetErrorHandler(self.installed)

    def _on_error(self, display: int, event: Any) -> int:
        self.errors += 1
        # SDL checks what it may get wrong under handlers of its own; one of these reaching us is
        # a call on a window that is no more
        if event.contents.error_code in (BAD_WINDOW, BAD_DRAWABLE):
            self.gone = True
        return 0  # handled: Xlib goes on (its default handler would exit)


_X_ERRORS = _XErrors()


class XGuard:
    """Notices that the X window was destroyed, instead of letting Xlib exit the process.

    ``gone`` turns true once the X server reports a window (or drawable) missing. On any driver
    but ``x11`` the guard does nothing and ``gone`` stays false.
    """

    def __init__(self, pg: Any) -> None:
        self.x11 = pg.display.get_driver() == "x11"
        if self.x11:
            _X_ERRORS.install()  # (normally done by init_pygame, before SDL's video started)
            _X_ERRORS.gone = False

    @property
    def gone(self) -> bool:
        return self.x11 and _X_ERRORS.gone
