"""The labelling window that every mode shares: its panel, its controls, the store and the learner.

``App`` holds them; ``run_window`` reads keys and draws frames until the person quits. The modes
(``rlhf_gym.human.compare``, ``rlhf_gym.human.live``) draw into it; ``rlhf_gym.human.label`` opens it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rlhf_gym.config import RunConfig
from rlhf_gym.human.learner import Learner
from rlhf_gym.tasks.registry import Task
from rlhf_gym.types import Feedback

PANEL_HEIGHT = 104


TEXT = (235, 235, 230)


DIM = (150, 150, 150)


OK = (120, 200, 130)


WARN = (230, 170, 90)


# control -> keys to try, in order; the first one the task's key map does not use is taken
CONTROLS: dict[str, tuple[str, ...]] = {
    "quit": ("q", "escape"),
    "undo": ("u", "z"),
    "pause": ("p", "tab"),
    "skip": ("s", "k"),
    "prefer left": ("left",),
    "prefer right": ("right",),
    "equal": ("down", "="),
    "plus": ("+", "=", "[+]"),
    "minus": ("-", "[-]"),
    "e-stop": ("space", "return"),
    "slower": ("[", ","),
    "faster": ("]", "."),
    "restart": ("backspace",),
}


def control_keys(task: Task, mode: str) -> dict[str, str]:
    """Key name -> control for ``mode``; in live and demo modes the task's own keys win.

    Example:
        >>> from rlhf_gym.tasks.registry import get_task
        >>> keys = control_keys(get_task("PickPlace-v0"), "live")
        >>> keys["return"], keys["space"] if "space" in keys else "task key"
        ('e-stop', 'task key')
    """
    wanted = {
        "compare": ("quit", "undo", "pause", "skip", "prefer left", "prefer right", "equal"),
        "live": ("quit", "undo", "pause", "plus", "minus", "e-stop", "slower", "faster", "restart"),
        "demo": ("quit", "undo", "pause", "restart"),
    }[mode]
    taken = set(task.keys) if mode != "compare" else set()
    out: dict[str, str] = {}
    for control in wanted:
        free = [k for k in CONTROLS[control] if k not in taken and k not in out]
        if control in ("plus", "minus", "equal"):
            out.update(dict.fromkeys(free, control))  # every spelling works
        elif free:
            out[free[0]] = control
        if not free:
            raise ValueError(
                f"task {task.name!r}: its key map takes every key for {control!r} ({CONTROLS[control]})"
            )
    out.setdefault("escape", "quit")  # Escape always quits
    return out


@dataclass
class LabelResult:
    """What a labelling session did.

    Args:
        mode: the mode.
        committed: row ids of the labels committed in this session, in order (undone ones
            removed).
        undone: labels undone.
        skipped: queries skipped.
        frames: frames drawn.
        quit_reason: ``"key"``, ``"window"`` (closed), ``"frames"`` (the limit given) or
            ``"learner"`` (the learner failed; its error is printed).
        frame_seconds: the time between consecutive frames.
        commit_seconds: per label, from reading its key to its durable commit.
    """

    mode: str
    committed: list[int] = field(default_factory=list)
    undone: int = 0
    skipped: int = 0
    frames: int = 0
    quit_reason: str = ""
    frame_seconds: list[float] = field(default_factory=list)
    commit_seconds: list[float] = field(default_factory=list)

    @property
    def fps(self) -> float:
        """Median frames per second."""
        return 1.0 / float(np.median(self.frame_seconds)) if self.frame_seconds else math.nan


class App:
    """The window, the store and the learner that every mode shares.

    Modes call ``commit`` for each label (it returns only once the label is on disk), ``undo``,
    ``flash`` for a short message, and read ``status`` (the learner's latest figures) and
    ``policy`` (its latest weights).
    """

    def __init__(
        self,
        task: Task,
        config: RunConfig,
        store: Any,
        learner: Learner,
        mode: str,
        budget: int | None,
        zoom: float,
        on_commit: Callable[[int], None] | None,
    ) -> None:
        import pygame

        self.pg, self.task, self.config, self.store, self.learner = pygame, task, config, store, learner
        self.budget, self.zoom, self.on_commit = budget, zoom, on_commit
        self.result = LabelResult(mode)
        self.status: dict[str, Any] = {}
        self.policy: dict[str, np.ndarray] | None = None
        self.paused = False
        self.speed = 1.0
        self.teacher = "human"
        self.view: Any = None
        self.keys = control_keys(task, mode)
        self._flash = ("", 0.0, TEXT)
        self.font = pygame.font.Font(None, 20)
        self.big = pygame.font.Font(None, 28)
        self.window: Any = None

    # ----- what modes call -------------------------------------------------------------
    def commit(
        self,
        record: Feedback,
        effort: float,
        info: dict[str, Any],
        read_at: float,
        resolves: str | None = None,
    ) -> int:
        """Store ``record`` durably, then acknowledge it; returns its row id."""
        row = self.store.add(record, effort_seconds=max(0.0, effort), info=info, resolves=resolves)
        self.result.commit_seconds.append(time.perf_counter() - read_at)
        self.result.committed.append(row)
        self.flash(f"recorded #{row} ({record.kind})", OK)
        if self.on_commit is not None:
            self.on_commit(row)
        return row

    def undo(self) -> None:
        """Delete this session's last label (labels of earlier sessions are never undone here)."""
        if not self.result.committed:
            self.flash("nothing to undo in this session", WARN)
            return
        row = self.result.committed.pop()
        record = self.store.remove(row)
        self.result.undone += 1
        self.flash(f"undone: #{row} ({record.kind if record else 'already gone'})", WARN)
        if hasattr(self.view, "undone"):
            self.view.undone(row)

    def flash(self, text: str, colour: tuple[int, int, int] = TEXT) -> None:
        self._flash = (text, time.monotonic() + 2.5, colour)

    @property
    def labels(self) -> int:
        return len(self.store)

    @property
    def budget_left(self) -> bool:
        return self.budget is None or self.labels < self.budget

    def surface(self, frame: np.ndarray, size: tuple[int, int]) -> Any:
        """A frame as a surface of ``size``."""
        surface = self.pg.surfarray.make_surface(np.ascontiguousarray(frame.transpose(1, 0, 2)))
        return surface if surface.get_size() == size else self.pg.transform.smoothscale(surface, size)

    # ----- the panel ---------------------------------------------------------------------
    def draw_panel(self, lines: list[str], top: int) -> None:
        pg, window = self.pg, self.window
        width = window.get_width()
        pg.draw.rect(window, (22, 22, 28), (0, top, width, PANEL_HEIGHT))
        s = self.status
        budget = f"/{self.budget}" if self.budget is not None else ""
        acc = s.get("accuracy", math.nan)
        ret = s.get("true_return", math.nan)
        figures = (
            f"labels {self.labels}{budget}   reward model acc. {_fmt(acc)}   agent true return {_fmt(ret)}   "
            f"agent steps {s.get('timesteps', 0):,}"
        )
        if not self.learner.alive and not s.get("error"):
            figures += "   (learner starting)" if not s else "   (learner stopped)"
        rows = [(figures, TEXT), *((line, DIM) for line in lines)]
        text, until, colour = self._flash
        if text and time.monotonic() < until:
            rows.append((text, colour))
        if self.paused:
            rows.append(("paused", WARN))
        wrapped = [(part, colour) for line, colour in rows for part in self._wrap(line, width - 16)]
        for i, (line, colour) in enumerate(wrapped[:5]):
            window.blit(self.font.render(line, True, colour), (8, top + 6 + 19 * i))

    def _wrap(self, line: str, width: int) -> list[str]:
        """``line`` split at double spaces into pieces that fit ``width`` pixels."""
        out = [""]
        for word in line.split("  "):
            joined = f"{out[-1]}  {word}" if out[-1] else word
            if out[-1] and self.font.size(joined)[0] > width:
                out.append(word)
            else:
                out[-1] = joined
        return out

    def legend(self, extra: str = "") -> str:
        by_control: dict[str, list[str]] = {}
        for key, control in self.keys.items():
            by_control.setdefault(control, []).append(key)
        keys = "  ".join(f"{'/'.join(k)}: {c}" for c, k in by_control.items())
        return f"{extra}  |  {keys}" if extra else keys

    # ----- messages from the learner ----------------------------------------------------
    def poll(self) -> bool:
        """Take the learner's messages; ``False`` if it failed."""
        for message in self.learner.poll():
            if message["type"] == "status":
                self.status = message
            elif message["type"] == "policy":
                self.policy = message["state"]
            elif message["type"] == "error":
                print(f"rlhf-gym label: the learner failed: {message['error']}\n{message['traceback']}")
                self.status["error"] = message["error"]
                return False
        return True


def _fmt(value: float) -> str:
    return "-" if value != value else f"{value:.3g}"


def run_window(
    app: App, view: Any, fps: float, max_frames: int | None, callback: Callable[[Any], None] | None
) -> None:
    pg, result = app.pg, app.result
    clock = pg.time.Clock()
    last = time.perf_counter()
    while not result.quit_reason:
        if callback is not None:
            callback(app)
        for event in pg.event.get():
            if event.type == pg.QUIT:
                result.quit_reason = "window"
            elif event.type in (pg.KEYDOWN, pg.KEYUP):
                name = pg.key.name(event.key) if event.key else ""
                name = "+" if getattr(event, "unicode", "") == "+" else name
                read_at = getattr(event, "posted", None) or time.perf_counter()
                down = event.type == pg.KEYDOWN
                control = app.keys.get(name) if down else None
                if control == "quit":
                    result.quit_reason = "key"
                elif control == "undo":
                    app.undo()
                elif control == "pause":
                    app.paused = not app.paused
                else:
                    view.key(name, control, down, read_at)
            if result.quit_reason:
                break
        if result.quit_reason:
            break
        if not app.poll():
            result.quit_reason = "learner"
            break
        view.update(time.perf_counter())
        view.draw()
        pg.display.flip()
        result.frames += 1
        now = time.perf_counter()
        result.frame_seconds.append(now - last)
        last = now
        if max_frames is not None and result.frames >= max_frames:
            result.quit_reason = "frames"
        clock.tick(fps)
