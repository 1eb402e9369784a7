"""The compare view of ``rlhf-gym label``: two clips of the current policy loop side by side.

The pair on screen is stored as the store's pending query before it is shown, so a session that
is killed or closed shows it again when the store is opened next.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from rlhf_gym.human.app import App
from rlhf_gym.human.clips import Clip, check_clip
from rlhf_gym.human.keymap import scene
from rlhf_gym.human.learning import checkpoint_path
from rlhf_gym.human.panel import MIN_WIDTH, OK, WARN
from rlhf_gym.human.play import _frame
from rlhf_gym.human.prepare import RANDOM, Prepared, Preparer
from rlhf_gym.types import Comparison, Query, Segment

PENDING = "compare"
MIN_WATCH = 0.2
"""Seconds a pair is on screen before a key may answer it (a person's fastest reaction); a key
sooner is taken for a double tap on the pair before, and is answered as ignored, saying so."""


AHEAD = 2
"""Pairs prepared ahead of the one on screen."""


@dataclass(frozen=True)
class OnScreen:
    """A clip on screen: the clip, the segment it shows and its frames."""

    clip: Clip
    segment: Segment
    frames: list[Any]


def frame_size(app: App, scale: float = 1.0) -> tuple[int, int]:
    env = app.task.make(app.config.horizon, render_mode="rgb_array")
    env.reset(seed=0)
    h, w = _frame(env).shape[:2]
    return int(w * app.zoom * scale), int(h * app.zoom * scale)


class CompareView:
    """Two clips of the current policy loop side by side; the person says which is better.

    Pairs are prepared ahead in a ``Preparer`` thread; the window only shows what is ready.
    """

    action_space = None

    def __init__(self, app: App, seed: int) -> None:
        self.app = app
        self.clip_size = frame_size(app, 0.6)
        length = app.config.segment_length or app.task.segment_length
        self.preparer = Preparer(app.task, app.config.horizon, length, self.clip_size, seed)
        self.players: list[OnScreen] = []
        self.source = ""
        self.shown_at: float | None = None  # when the pair's first frame was drawn
        self.watched = 0.0  # seconds the current pair has been on screen, pauses excluded
        self.fps = float(app.task.make(app.config.horizon).metadata.get("render_fps") or 30)
        self.answered: dict[int, tuple[tuple[Clip, ...], str]] = {}  # this session's: row -> pair, source
        self.queue: list[int | Prepared] = []  # what comes next: tickets of the preparer, or pairs
        # a new agent's clips are random actions: the window makes them until the learner's arrive
        self.bootstrap = not checkpoint_path(app.store.path).is_file()
        self.from_learner = 0
        try:
            pending = app.store.pending(PENDING)
            if pending is not None:
                value, arrays = pending
                space = app.task.make(app.config.horizon).action_space
                clips = value["clips"]
                if not isinstance(clips, list) or len(clips) != 2:
                    raise ValueError("expected two clips")
                pair = tuple(
                    check_clip(Clip(actions=arrays[f"actions{i}"], **c), app.task, space)
                    for i, c in enumerate(clips)
                )
                source = value.get("source", "learner")
                self.queue.append(self.preparer.submit(pair, urgent=True, source=str(source)))
                app.say("showing the query that was on screen when the last session ended", WARN)
        except (ValueError, KeyError, TypeError) as err:  # a corrupt pending item must not block labelling
            app.store.clear_pending(PENDING)
            app.say(f"the interrupted query could not be shown again ({err}); it was dropped", WARN)

    def window_size(self) -> tuple[int, int]:
        w, h = self.clip_size
        width = max(2 * w + 30, MIN_WIDTH)
        return width, h + 40 + self.app.panel_height(width, [self._legend(), self._state()])

    def close(self) -> None:
        self.preparer.close()

    def _show(self, ready: Prepared) -> None:
        value = {"clips": [c.to_json() for c in ready.clips], "source": ready.source}
        arrays = {f"actions{i}": c.actions for i, c in enumerate(ready.clips)}
        self.app.store.set_pending(PENDING, value, arrays)  # stored as pending before it is shown
        self.players = [OnScreen(*parts) for parts in zip(ready.clips, ready.segments, ready.frames)]
        self.source, self.shown_at, self.watched = ready.source, None, 0.0

    def undone(self, row: int) -> None:
        """Show the pair of an undone label again, to be answered anew (the pair on screen after it)."""
        answered = self.answered.pop(row, None)
        if answered is None:
            return
        if self.players:
            clips = tuple(p.clip for p in self.players)
            segments = tuple(p.segment for p in self.players)
            frames = [p.frames for p in self.players]
            self.queue.insert(0, Prepared(clips, segments, frames, self.source, 0.0))
            self.players = []
        self.queue.insert(0, self.preparer.submit(answered[0], urgent=True, source=answered[1]))

    def key(self, name: str, control: str | None, down: bool, read_at: float) -> None:
        app = self.app
        if not down or control is None:
            return  # (a press of no control gets the window's "not a key of this mode")
        if not self.players:
            why = "the label budget is reached (q quits)" if not app.budget_left else self._waiting()
            app.ack("ignored", f"{name}: ignored, no pair on screen yet: {why}", WARN)
            return
        on_screen = 0.0 if self.shown_at is None else read_at - self.shown_at
        if on_screen < MIN_WATCH and not app.paused:
            app.ack(
                "ignored",
                f"{name}: ignored, the pair appeared {max(on_screen, 0.0):.2f} s before (under {MIN_WATCH} s "
                "is taken for a double tap): press it again",
                WARN,
            )
            return
        if control == "skip":
            app.store.clear_pending(PENDING)
            app.result.skipped += 1
            app.ack("done", "skipped")
            self.players = []  # the next pair comes in update(), never within this batch of keys
            return
        label = {"prefer left": 1.0, "prefer right": 0.0, "equal": 0.5}[control]
        left, right = (p.segment for p in self.players)
        record = Comparison(Query(left, right), label, teacher=app.teacher)
        info = {"mode": "compare", "clips": [p.clip.to_json() for p in self.players], "source": self.source}
        effort = self.watched if app.paused else on_screen  # from the first frame on screen
        row = app.commit(record, effort, info, read_at, resolves=PENDING)
        self.answered[row] = (tuple(p.clip for p in self.players), self.source)
        self.players = []  # a second key in the same batch must not label a pair not yet seen

    def update(self, now: float) -> None:
        app = self.app
        waiting = sum(isinstance(q, int) for q in self.queue)
        while app.budget_left and waiting < AHEAD:
            pair = app.learner.next_pair()
            if pair is not None:
                self.queue.append(self.preparer.submit(pair))
                self.from_learner += 1
            elif self.bootstrap and not self.from_learner and not self.queue:
                self.queue.append(self.preparer.submit(None))  # random actions, until the learner's
            else:
                break
            waiting += 1
        if not self.queue and app.budget_left:  # the next pair, asked for while this one is judged
            app.learner.want_pair()  # (the learner plays it between two steps of its agent)
        if not self.players and self.queue and app.budget_left:
            head = self.queue[0]
            try:
                ready = head if isinstance(head, Prepared) else self.preparer.take(head)
            except RuntimeError as err:
                self.queue.pop(0)
                app.say(str(err).splitlines()[0], WARN)
                return
            if ready is not None:
                self.queue.pop(0)
                self._show(ready)
        if self.players and self.shown_at is not None:
            if app.paused:
                self.shown_at = now - self.watched
            else:
                self.watched = now - self.shown_at

    def _waiting(self) -> str:
        if self.queue:
            return "rendering the next pair"
        if self.bootstrap and not self.from_learner:
            return "making the first clips"
        doing = self.app.phase[0]  # what the learner said it is doing, if it is not playing yet
        return f"waiting for the learner ({doing})" if doing else "the learner is playing its next episodes"

    def _legend(self) -> str:
        where = scene(self.app.task)
        return "which is better?  " + self.app.legend() + (f"  |  {where}" if where else "")

    def _state(self) -> str:
        if not self.players:
            return ""
        if self.source == RANDOM:
            return (
                "these clips are random actions (an untrained agent's), shown until the learner's first clips"
            )
        return "clips of the agent's latest policy"

    def draw(self) -> None:
        app, window = self.app, self.app.window
        window.fill((30, 30, 36))
        w, h = self.clip_size
        if self.players:
            if self.shown_at is None:  # effort counts from the first frame on screen
                self.shown_at = time.perf_counter()
                if app.result.first_pair_seconds != app.result.first_pair_seconds:
                    app.result.first_pair_seconds = self.shown_at - app.opened
            i = int(self.watched * self.fps) % self.players[0].clip.length
            for k, (player, side) in enumerate(zip(self.players, ("left", "right"))):
                x = 10 + k * (w + 10)
                frames = player.frames  # (still being rendered: its last frame so far holds)
                window.blit(frames[min(i, len(frames) - 1)], (x, 30))
                window.blit(app.big.render(side, True, (235, 235, 230)), (x, 6))
            step = f"step {i + 1}/{self.players[0].clip.length}"
            window.blit(app.font.render(step, True, (150, 150, 150)), (2 * w - 80, 10))
        else:
            wait = "label budget reached: q quits" if not app.budget_left else self._waiting() + "..."
            window.blit(app.big.render(wait, True, (235, 235, 230)), (20, h // 2))
        state = self._state()
        lines: list[Any] = [(state, OK if self.source != RANDOM else WARN)] if state else []
        app.draw_panel([*lines, self._legend()], h + 40)
