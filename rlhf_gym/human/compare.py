"""The compare view of ``rlhf-gym label``: two clips of the current policy loop side by side.

The pair on screen is stored as the store's pending query before it is shown, so a session that
is killed or closed shows it again when the store is opened next.
"""

from __future__ import annotations

import time
from typing import Any

from rlhf_gym.human.app import PANEL_HEIGHT, WARN, App
from rlhf_gym.human.learner import Clip, replay
from rlhf_gym.human.play import _frame
from rlhf_gym.types import Comparison, Query

PENDING = "compare"
MIN_WATCH = 0.2
"""Seconds a pair is on screen before a key may answer it (a person's fastest reaction)."""


class ClipPlayer:
    """Frames of a clip, made one at a time as it first plays and kept for the next loops.

    Rendering environments are never closed while the window is open: Gymnasium's classic-control
    ``close`` quits pygame itself, window and fonts included. They are freed with the player.
    """

    def __init__(self, app: App, clip: Clip, size: tuple[int, int]) -> None:
        self.app, self.clip, self.size = app, clip, size
        self.env = app.task.make(app.config.horizon, render_mode="rgb_array")
        self.segment = replay(app.task, app.config.horizon, clip, self.env)
        self.env.reset(seed=clip.seed)
        for action in clip.actions[: clip.start]:
            self.env.step(action)
        self.frames: list[Any] = []

    def frame(self, i: int) -> Any:
        while len(self.frames) <= i:
            self.frames.append(self.app.surface(_frame(self.env), self.size))
            t = self.clip.start + len(self.frames) - 1
            if t < len(self.clip.actions):  # past a terminated episode's end, its last frame stays
                self.env.step(self.clip.actions[t])
        return self.frames[i]


def frame_size(app: App, scale: float = 1.0) -> tuple[int, int]:
    env = app.task.make(app.config.horizon, render_mode="rgb_array")
    env.reset(seed=0)
    h, w = _frame(env).shape[:2]
    return int(w * app.zoom * scale), int(h * app.zoom * scale)


class CompareView:
    """Two clips of the current policy loop side by side; the person says which is better."""

    action_space = None

    def __init__(self, app: App, seed: int) -> None:
        self.app = app
        self.clip_size = frame_size(app, 0.6)
        self.players: list[ClipPlayer] = []
        self.shown_at = 0.0
        self.watched = 0.0  # seconds the current pair has been on screen, pauses excluded
        self.fps = float(app.task.make(app.config.horizon).metadata.get("render_fps") or 30)
        self.answered: dict[int, tuple[Clip, ...]] = {}  # this session's labels: row -> its pair
        self.again: list[tuple[Clip, ...]] = []  # pairs to show before asking the learner
        try:
            pending = app.store.pending(PENDING)
            if pending is not None:
                value, arrays = pending
                pair = tuple(Clip(actions=arrays[f"actions{i}"], **c) for i, c in enumerate(value["clips"]))
                self._show(pair)
                app.flash("showing the query that was on screen when the last session ended", WARN)
        except (ValueError, KeyError, TypeError) as err:  # a corrupt pending item must not block labelling
            app.store.clear_pending(PENDING)
            app.flash(f"the interrupted query could not be shown again ({err}); it was dropped", WARN)

    def window_size(self) -> tuple[int, int]:
        w, h = self.clip_size
        return 2 * w + 30, h + 40 + PANEL_HEIGHT

    def _show(self, pair: tuple[Clip, ...]) -> None:
        self.players = [ClipPlayer(self.app, clip, self.clip_size) for clip in pair]
        self.shown_at, self.watched = time.perf_counter(), 0.0

    def _next(self) -> None:
        if not self.app.budget_left:
            return
        pair = self.again.pop() if self.again else self.app.learner.next_pair()
        if pair is not None:
            self._pend(pair)

    def _pend(self, pair: tuple[Clip, ...]) -> None:
        value = {"clips": [c.to_json() for c in pair]}
        self.app.store.set_pending(PENDING, value, {f"actions{i}": c.actions for i, c in enumerate(pair)})
        self._show(pair)  # stored as pending before it is shown

    def undone(self, row: int) -> None:
        """Show the pair of an undone label again, to be answered anew."""
        pair = self.answered.pop(row, None)
        if pair is not None:
            if self.players:  # the pair on screen comes back after it
                self.again.append(tuple(p.clip for p in self.players))
            self._pend(pair)

    def key(self, name: str, control: str | None, down: bool, read_at: float) -> None:
        if not down or not self.players or control is None:
            return
        if read_at - self.shown_at < MIN_WATCH and not self.app.paused:
            return  # a key this soon is about the previous pair (a double tap), not this one
        if control == "skip":
            self.app.store.clear_pending(PENDING)
            self.app.result.skipped += 1
            self.app.flash("skipped")
            self.players = []  # the next pair comes in update(), never within this batch of keys
            return
        label = {"prefer left": 1.0, "prefer right": 0.0, "equal": 0.5}.get(control)
        if label is None:
            return
        left, right = (p.segment for p in self.players)
        record = Comparison(Query(left, right), label, teacher=self.app.teacher)
        info = {"mode": "compare", "clips": [p.clip.to_json() for p in self.players]}
        effort = self.watched if self.app.paused else time.perf_counter() - self.shown_at
        row = self.app.commit(record, effort, info, read_at, resolves=PENDING)
        self.answered[row] = tuple(p.clip for p in self.players)
        self.players = []  # a second key in the same batch must not label a pair not yet seen

    def update(self, now: float) -> None:
        if not self.players:
            self._next()
        elif not self.app.paused:
            self.watched = now - self.shown_at
        else:
            self.shown_at = now - self.watched

    def draw(self) -> None:
        app, window = self.app, self.app.window
        window.fill((30, 30, 36))
        w, h = self.clip_size
        if self.players:
            i = int(self.watched * self.fps) % self.players[0].clip.length
            for k, (player, side) in enumerate(zip(self.players, ("left", "right"))):
                x = 10 + k * (w + 10)
                window.blit(player.frame(i), (x, 30))
                window.blit(app.big.render(side, True, (235, 235, 230)), (x, 6))
            step = f"step {i + 1}/{self.players[0].clip.length}"
            window.blit(app.font.render(step, True, (150, 150, 150)), (2 * w - 80, 10))
        else:
            wait = (
                "budget reached: press q to quit" if not app.budget_left else "waiting for the next clips..."
            )
            window.blit(app.big.render(wait, True, (235, 235, 230)), (20, h // 2))
        app.draw_panel(["which is better? " + app.legend()], h + 40)
