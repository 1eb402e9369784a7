"""The demo view of ``rlhf-gym label``: the person plays, and each finished episode is stored as a
demonstration against the agent's recent segments (from the learner's clips, replayed off the
window's thread).
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np

from rlhf_gym.data.segments import cut
from rlhf_gym.human.app import App
from rlhf_gym.human.keymap import describe, scene
from rlhf_gym.human.learning import checkpoint_path
from rlhf_gym.human.live import _EpisodeView
from rlhf_gym.human.panel import OK, WARN
from rlhf_gym.human.prepare import Preparer
from rlhf_gym.types import Demonstration, Segment, Trajectory


class DemoView(_EpisodeView):
    """The person plays; each finished episode is stored as a demonstration."""

    def __init__(self, app: App, seed: int) -> None:
        super().__init__(app, seed)
        self.against: deque[Segment] = deque(maxlen=16)  # the agent's recent segments, from the clips
        self.waiting = True  # each episode starts when the person presses one of the task's keys
        self.unsaved: tuple[Trajectory, float, float] | None = None  # waits for agent segments
        length = app.config.segment_length or app.task.segment_length
        self.preparer = Preparer(app.task, app.config.horizon, length, None, seed)  # replays, off this thread
        self.tickets: list[int] = []
        # a new store's agent is untrained: until the learner's clips come, demonstrations are
        # stored against segments of random actions, as its own would be
        self.bootstrap = not checkpoint_path(app.store.path).is_file()

    def close(self) -> None:
        self.preparer.close()

    def key(self, name: str, control: str | None, down: bool, read_at: float) -> None:
        if name in self.app.task.keys:
            started = down and self.waiting and self.unsaved is None
            if started:
                self.waiting = False
                self.episode.started = time.perf_counter()  # the clock starts now
                self.app.ack("steer", f"{name}: episode started ({self.words.get(name, 'steer')})")
            elif down and self.waiting:
                self.app.ack(
                    "ignored", f"{name}: ignored, the last episode waits for the agent's segments", WARN
                )
                return  # (not held either: an ignored key steers nothing)
            self._steer(name, down, say=not started)
        elif down and control == "restart":
            self.app.ack("done", "episode discarded: press a task key to start the next", WARN)
            self.episode.reset()
            self.waiting = True

    def update(self, now: float) -> None:
        pair = self.app.learner.next_pair()  # keep the newest agent segments
        if pair is not None:
            self.tickets.append(self.preparer.submit(pair))
        elif self.bootstrap and not self.against and not self.tickets:
            self.tickets.append(self.preparer.submit(None))  # a new agent's: random actions
            self.bootstrap = False
        while self.tickets:
            try:
                ready = self.preparer.take(self.tickets[0])
            except RuntimeError as err:
                self.app.say(str(err).splitlines()[0], WARN)
                ready = None
            else:
                if ready is None:
                    break
            self.tickets.pop(0)
            if ready is not None:
                self.against.extend(ready.segments)
        if self.unsaved is not None and self.against:
            self._store(*self.unsaved[:2], time.perf_counter())  # its latency counts from here
        elif self.unsaved is not None and not self.tickets:
            self.app.learner.want_pair()  # a demonstration waits for the agent's first segments
        paused = self.app.paused or self.waiting
        for _ in range(self.stepper.due(now, self.episode.fps * self.app.speed, paused)):
            self.episode.step(self.act(self.pressed))
            if self.episode.done:
                self._finish(time.perf_counter())
                break

    def _finish(self, read_at: float) -> None:
        """Store the finished episode against the agent's recent segments, then start anew."""
        episode = self.episode.trajectory()
        self.unsaved = (episode, time.perf_counter() - self.episode.started, read_at)
        if self.against:
            self._store(*self.unsaved)
        else:
            self.app.flash("episode kept: it is stored once the agent's first segments arrive", WARN)
        self.episode.reset()
        self.waiting = True

    def _store(self, episode: Trajectory, effort: float, read_at: float) -> None:
        self.unsaved = None
        h, task = self.app.config.segment_length or 50, self.app.task
        live = int((~episode.absorbing).sum())
        finished = episode.terminated or bool(episode.absorbing[-1])  # may be padded past its end
        starts = [s for s in range(0, live, h) if s + h <= len(episode) or finished]
        if not starts:
            self.app.flash(f"not stored: shorter than a segment ({h} steps)", WARN)
            return
        demo = tuple(cut(episode, s, h, task.absorbing_reward) for s in starts)
        pool = list(self.against)
        picks = np.random.default_rng(len(self.app.result.committed)).integers(len(pool), size=len(demo))
        record = Demonstration(episode, demo, tuple(pool[i] for i in picks), self.app.teacher)
        self.app.commit(record, effort, {"mode": "demo", "return": episode.true_return}, read_at)

    def _lines(self) -> list[str]:
        ret = sum(s[2] for s in self.episode.steps)
        line = f"you play: each finished episode is stored  step {len(self.episode.steps)}  return {ret:.1f}"
        if self.waiting:
            line = f"press one of the task's keys ({', '.join(self.app.task.keys)}) to start an episode"
        lines = [line, describe(self.app.task), self.app.legend()]
        return lines + ([scene(self.app.task)] if scene(self.app.task) else [])

    def draw(self) -> None:
        self._blit_frame()
        now, *rest = self._lines()
        self.app.draw_panel([(now, WARN if self.waiting else OK), *rest], self.size[1])
