"""The text panel under the labelling window's frames: figures, what is on screen, the key legend
and the last few messages, wrapped to the window's width and never cut.

The panel grows the window when its text needs more rows than it has (a long legend, a long
message), so no key of the legend and no message is ever cut off.
"""

from __future__ import annotations

import time
from typing import Any

TEXT = (235, 235, 230)


DIM = (150, 150, 150)


OK = (120, 200, 130)


WARN = (230, 170, 90)


ROW = 19
"""Pixels per row of text."""


MESSAGES = 3
"""Messages shown at once, newest last; each stays ``MESSAGE_SECONDS``."""


MESSAGE_SECONDS = 6.0


MIN_WIDTH = 640
"""The narrowest window: a small frame still gets a legible panel."""


class Panel:
    """Rows of text wrapped at double spaces, and a short log of messages."""

    def __init__(self, pg: Any) -> None:
        self.pg = pg
        self.font = pg.font.Font(None, 20)
        self.messages: list[tuple[str, tuple[int, int, int], float]] = []
        self._cache: dict[tuple[str, tuple[int, int, int]], Any] = {}

    def say(self, text: str, colour: tuple[int, int, int] = TEXT) -> None:
        """Add a message (the oldest of more than ``MESSAGES`` goes)."""
        self.messages = [
            *self.messages[-(MESSAGES - 1) :],
            (text, colour, time.monotonic() + MESSAGE_SECONDS),
        ]

    def current(self) -> list[tuple[str, tuple[int, int, int]]]:
        now = time.monotonic()
        return [(text, colour) for text, colour, until in self.messages if until > now]

    def wrap(self, line: str, width: int) -> list[str]:
        """``line`` split at double spaces (then at spaces) into pieces that fit ``width`` pixels."""
        out = [""]
        for item in line.split("  "):
            words = [item] if self.font.size(item)[0] <= width else item.split(" ")
            sep = "  "
            for word in words:
                joined = f"{out[-1]}{sep}{word}" if out[-1] else word
                if out[-1] and self.font.size(joined)[0] > width:
                    out.append(word)
                else:
                    out[-1] = joined
                sep = " "
            sep = "  "
        return out

    def rows(
        self, lines: list[tuple[str, tuple[int, int, int]]], width: int
    ) -> list[tuple[str, tuple[int, int, int]]]:
        return [(part, colour) for line, colour in lines for part in self.wrap(line, width - 16)]

    def height(self, lines: list[str], width: int, spare: int = MESSAGES + 2) -> int:
        """Pixels for ``lines`` wrapped at ``width`` plus ``spare`` rows (messages, state)."""
        return ROW * (len(self.rows([(line, TEXT) for line in lines], width)) + spare) + 12

    def draw(self, window: Any, lines: list[tuple[str, tuple[int, int, int]]], top: int) -> Any:
        """Draw ``lines`` and the messages from ``top``; returns the window (a new, taller one if
        the rows did not fit)."""
        pg = self.pg
        width = window.get_width()
        rows = self.rows([*lines, *self.current()], width)
        needed = top + ROW * len(rows) + 12
        if needed > window.get_height():
            window = pg.display.set_mode((width, needed))  # grow rather than cut a row
        pg.draw.rect(window, (22, 22, 28), (0, top, width, window.get_height() - top))
        for i, (line, colour) in enumerate(rows):
            window.blit(self._render(line, colour), (8, top + 6 + ROW * i))
        return window

    def _render(self, line: str, colour: tuple[int, int, int]) -> Any:
        key = (line, colour)
        if key not in self._cache:
            if len(self._cache) > 512:
                self._cache.clear()
            self._cache[key] = self.font.render(line, True, colour)
        return self._cache[key]
