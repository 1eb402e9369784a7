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
from rlhf_gym.human.panel import DIM, OK, TEXT, WARN, Panel
from rlhf_gym.human.window import XGuard
from rlhf_gym.tasks.registry import Task
from rlhf_gym.types import Feedback

MODIFIERS = frozenset(
    (
        "left shift",
        "right shift",
        "left ctrl",
        "right ctrl",
        "left alt",
        "right alt",
        "left meta",
        "right meta",
    )
)
"""Keys that are not presses of their own (shift makes ``+``); they get no message."""


# control -> keys to try, in order; the first one the task's key map does not use is taken
CONTROLS: dict[str, tuple[str, ...]] = {
    "quit": ("q", "escape"),
    "undo": ("u", "z"),
    "pause": ("p", "tab"),
    "skip": ("s", "k"),
    "prefer left": ("left",),
    "prefer right": ("right",),
    "equal": ("down", "="),
    "good": ("+", "=", "[+]"),
    "bad": ("-", "[-]"),
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
        "live": ("quit", "undo", "pause", "good", "bad", "e-stop", "slower", "faster", "restart"),
        "demo": ("quit", "undo", "pause", "restart"),
    }[mode]
    taken = set(task.keys) if mode != "compare" else set()
    out: dict[str, str] = {}
    for control in wanted:
        free = [k for k in CONTROLS[control] if k not in taken and k not in out]
        if control in ("good", "bad", "equal"):
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
        quit_reason: ``"key"``, ``"window"`` (closed, or destroyed by another program),
            ``"frames"`` (the limit given) or ``"learner"`` (the learner failed; its error is printed).
        frame_seconds: the time between consecutive frames.
        commit_seconds: per label, from reading its key to its durable commit.
        keys: keys pressed (modifiers such as shift aside).
        acks: how each key was answered on screen: ``recorded``, ``done`` (a control acted),
            ``steer``, ``ignored`` (with the reason shown); they sum to ``keys``.
        first_pair_seconds: from opening the session to the first clips on screen (compare mode).
        close_seconds: from the close (a key, the window) to the learner stopped.
        agent_timesteps: the agent's steps when the learner stopped (``-1``: not known).
        agent_saved: where the learner's agent was saved (``""``: not saved by this session).
    """

    mode: str
    committed: list[int] = field(default_factory=list)
    undone: int = 0
    skipped: int = 0
    frames: int = 0
    quit_reason: str = ""
    frame_seconds: list[float] = field(default_factory=list)
    commit_seconds: list[float] = field(default_factory=list)
    keys: int = 0
    acks: dict[str, int] = field(default_factory=dict)
    first_pair_seconds: float = math.nan
    close_seconds: float = math.nan
    agent_timesteps: int = -1
    agent_saved: str = ""

    @property
    def fps(self) -> float:
        """Median frames per second."""
        return 1.0 / float(np.median(self.frame_seconds)) if self.frame_seconds else math.nan

    @property
    def silent(self) -> int:
        """Keys that got no answer on screen (the window's contract: always 0)."""
        return self.keys - sum(self.acks.values())


class App:
    """The window, the store and the learner that every mode shares.

    Modes call ``commit`` for each label (it returns only once the label is on disk), ``undo``,
    ``ack`` to answer the key being handled (``say`` for any other message), and read ``status``
    (the learner's latest figures) and ``policy`` (its latest weights).
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
        self.phase = ("starting the learner", time.monotonic())  # what the learner does, since when
        self.policy: dict[str, np.ndarray] | None = None
        self.paused = False
        self.speed = 1.0
        self.teacher = "human"
        self.view: Any = None
        self.keys = control_keys(task, mode)
        self.panel = Panel(pygame)
        self.font = self.panel.font
        self.big = pygame.font.Font(None, 28)
        self.window: Any = None
        self.opened = time.perf_counter()
        self._answering = False  # a key is being handled and has no answer yet

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
        self.ack("recorded", f"recorded #{row} ({record.kind})", OK)
        if self.on_commit is not None:
            self.on_commit(row)
        return row

    def undo(self) -> None:
        """Delete this session's last label (labels of earlier sessions are never undone here)."""
        if not self.result.committed:
            self.ack("ignored", "u: nothing to undo in this session", WARN)
            return
        row = self.result.committed.pop()
        record = self.store.remove(row)
        self.result.undone += 1
        self.ack("done", f"undone: #{row} ({record.kind if record else 'already gone'})", WARN)
        if hasattr(self.view, "undone"):
            self.view.undone(row)

    def ack(self, outcome: str, text: str, colour: tuple[int, int, int] = TEXT) -> None:
        """Answer the key being handled with ``text`` (counted once as ``outcome``); outside a
        key, only say it."""
        if self._answering:
            self._answering = False
            self.result.acks[outcome] = self.result.acks.get(outcome, 0) + 1
        self.panel.say(text, colour)

    def say(self, text: str, colour: tuple[int, int, int] = TEXT) -> None:
        self.panel.say(text, colour)

    flash = say

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
    def figures(self) -> str:
        s = self.status
        budget = f"/{self.budget}" if self.budget is not None else ""
        text = (
            f"labels {self.labels}{budget}  reward model acc. {_fmt(s.get('accuracy', math.nan))}  "
            f"agent true return {_fmt(s.get('true_return', math.nan))}  agent steps {s.get('timesteps', 0):,}"
        )
        phase, since = self.phase
        if s.get("error"):
            return f"{text}  learner failed: {s['error']}"
        if phase:
            return f"{text}  learner: {phase} ({time.monotonic() - since:.0f} s)"
        return text

    def panel_height(self, width: int, lines: list[str]) -> int:
        """Pixels the panel needs at ``width`` for ``lines`` (the legend), figures and messages."""
        return self.panel.height([self.figures(), *lines], width)

    def draw_panel(self, lines: list[tuple[str, tuple[int, int, int]] | str], top: int) -> None:
        rows = [(self.figures(), TEXT)]
        rows += [(line, DIM) if isinstance(line, str) else line for line in lines]
        if self.paused:
            rows.append(("paused: p (or tab) goes on", WARN))
        self.window = self.panel.draw(self.window, rows, top)

    def legend(self, extra: str = "") -> str:
        by_control: dict[str, list[str]] = {}
        for key, control in self.keys.items():
            by_control.setdefault(control, []).append(KEY_NAMES.get(key, key))
        keys = "  ".join(f"{'/'.join(k)}: {c}" for c, k in by_control.items())
        return f"{extra}  |  {keys}" if extra else keys

    # ----- messages from the learner ----------------------------------------------------
    def poll(self) -> bool:
        """Take the learner's messages; ``False`` if it failed, or ended without a word."""
        for message in self.learner.poll():
            kind = message["type"]
            if kind == "status":  # sent when what a progress message announced is over
                self.status, self.phase = message, ("", 0.0)
            elif kind == "progress":
                self.phase = (message["text"], time.monotonic())
            elif kind == "policy":
                self.policy = message["state"]
            elif kind == "error":
                print(f"rlhf-gym label: the learner failed: {message['error']}\n{message['traceback']}")
                self.status["error"] = message["error"]
                return False
        ended = self.learner.ended()
        if ended:  # killed (out of memory, a signal) or crashed below Python: no error message came
            text = f"the learner process ended unexpectedly ({ended})"
            print(f"rlhf-gym label: {text}")
            self.status["error"] = text
            self.say(text, WARN)
            return False
        return True


KEY_NAMES = {"[+]": "keypad +", "[-]": "keypad -"}
"""How the legend spells keys whose pygame name looks like another key."""


def _fmt(value: float) -> str:
    return "-" if value != value else f"{value:.3g}"


def run_window(
    app: App, view: Any, fps: float, max_frames: int | None, callback: Callable[[Any], None] | None
) -> None:
    """Read keys and draw frames until the person quits, the window closes or the learner fails.

    Every key pressed gets an answer on screen: what it recorded or did, or why it was ignored.
    """
    pg, result = app.pg, app.result
    guard = XGuard(pg)
    last = time.perf_counter()
    while not result.quit_reason:
        started = time.perf_counter()
        if callback is not None:
            callback(app)
        for event in pg.event.get():
            _event(app, view, event)
            if result.quit_reason:
                break
        if guard.gone:
            result.quit_reason = "window"  # destroyed by another program (xdotool windowclose)
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
        _between_frames(app, view, started + 1.0 / fps)


def _between_frames(app: App, view: Any, until: float) -> None:
    """Wait for the next frame, answering each event as it comes: a key waits for no frame."""
    pg = app.pg
    while not app.result.quit_reason:
        left = until - time.perf_counter()
        if left <= 0:
            return
        event = pg.event.wait(max(1, int(left * 1000)))
        if event.type != pg.NOEVENT:
            _event(app, view, event)


def _event(app: App, view: Any, event: Any) -> None:
    pg = app.pg
    if event.type in (pg.QUIT, pg.WINDOWCLOSE):
        app.result.quit_reason = "window"
    elif event.type in (pg.KEYDOWN, pg.KEYUP):
        _key(app, view, event)


def _key(app: App, view: Any, event: Any) -> None:
    """Handle one key event; a press always ends with an answer on screen."""
    pg, result = app.pg, app.result
    name = pg.key.name(event.key) if event.key else ""
    name = "+" if getattr(event, "unicode", "") == "+" else name
    read_at = getattr(event, "posted", None) or time.perf_counter()
    down = event.type == pg.KEYDOWN
    if not down:
        view.key(name, None, False, read_at)
        return
    if name in MODIFIERS:
        return
    result.keys += 1
    app._answering = True
    control = app.keys.get(name)
    if control == "quit":
        result.quit_reason = "key"
        app.ack("done", "quitting")
    elif control == "undo":
        app.undo()
    elif control == "pause":
        app.paused = not app.paused
        app.ack("done", "paused" if app.paused else "going on")
    else:
        view.key(name, control, True, read_at)
    if app._answering:  # the view had nothing to say: still, say something
        what = f"{name or 'that key'}" if name else "that key"
        app.ack("ignored", f"{what}: not a key of this mode (see the keys below)", WARN)
