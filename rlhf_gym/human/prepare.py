"""Clips made ready for the screen off the window's thread, so no key ever waits for them.

A ``Preparer`` is a thread of the window's process with environments of its own. Asked for a
pair (``submit``), it replays each clip to its segment and, if the view shows clips, renders
every frame at the size shown. ``take`` hands over a pair once each clip has its first frame
(a MuJoCo frame takes tens of milliseconds); the rest follow while it plays. Until the
learner's first clips arrive, a new store's pairs come from here too (``submit(None)``): clips
of random actions, which is what an untrained policy's clips would show, and need no training.

The window process switches threads every 0.5 ms while it is open (``label.SWITCH_SECONDS``),
so rendering here never holds a key back for long.
"""

from __future__ import annotations

import dataclasses
import itertools
import queue
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any

import numpy as np

from rlhf_gym.human.clips import Clip, replay
from rlhf_gym.tasks.registry import Task
from rlhf_gym.types import Segment

RANDOM = "random actions"
"""Where a pair of ``submit(None)`` comes from, as ``Prepared.source`` says."""


@dataclass
class Prepared:
    """A pair ready to show.

    Args:
        clips: the clips.
        segments: the segment each clip shows.
        frames: per clip, its frames as surfaces of the size asked for (empty if not rendered);
            handed over once each clip has its first, and filled on in the background.
        source: ``learner`` or ``random actions``.
        seconds: how long it took to prepare (0 until every frame is rendered).
    """

    clips: tuple[Clip, ...]
    segments: tuple[Segment, ...]
    frames: list[list[Any]]
    source: str
    seconds: float


def render_task(task: Task, size: tuple[int, int]) -> Task:
    """``task`` with MuJoCo rendering at ``size`` (its 480x480 frames cost ~0.1 s each in software
    GL); other tasks as they are."""
    if task.extra != "mujoco":
        return task
    return dataclasses.replace(task, env_kwargs={**task.env_kwargs, "width": size[0], "height": size[1]})


def random_pair(task: Task, env: Any, length: int, rng: np.random.Generator) -> tuple[Clip, Clip]:
    """Two clips of two episodes of random actions, each starting within the episode's live part."""
    clips = []
    for _ in range(2):
        seed = int(rng.integers(2**31))
        env.reset(seed=seed)
        env.action_space.seed(int(rng.integers(2**31)))
        actions, live = [], 0
        for _ in range(task.max_episode_steps):
            action = env.action_space.sample()
            _, _, term, trunc, info = env.step(action)
            actions.append(np.asarray(action))
            live += not info.get("absorbing", False)
            if term or trunc:
                break
        start = int(rng.integers(max(1, min(live, len(actions)) - length + 1)))
        clips.append(Clip(seed, np.stack(actions)[: start + length], start, length))
    return clips[0], clips[1]


class Preparer:
    """Prepares pairs of clips in a background thread.

    Args:
        task: the task; horizon: its horizon.
        length: segment length (for pairs of random actions).
        size: the size to render frames at, or ``None`` to replay only (no frames).
        seed: seed of the random pairs.
    """

    def __init__(
        self, task: Task, horizon: str, length: int, size: tuple[int, int] | None, seed: int
    ) -> None:
        self.task, self.horizon, self.length, self.size = task, horizon, length, size
        self.rng = np.random.default_rng([seed, time.time_ns() % 2**32])
        self._requests: queue.PriorityQueue[tuple[int, int, tuple[Clip, ...] | None, str]] = (
            queue.PriorityQueue()
        )
        self._done: dict[int, Prepared | BaseException] = {}
        self._lock = threading.Lock()
        self._tickets = itertools.count()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rlhf-gym clip preparer")
        self._thread.start()

    def submit(self, clips: tuple[Clip, ...] | None, urgent: bool = False, source: str = "learner") -> int:
        """Ask for ``clips`` (``None``: a pair of random actions) from ``source`` (a pair shown
        again keeps where it came from); returns its ticket."""
        ticket = next(self._tickets)
        self._requests.put((0 if urgent else 1, ticket, clips, source))
        return ticket

    def take(self, ticket: int) -> Prepared | None:
        """The pair of ``ticket`` if it is ready (it is then forgotten), else ``None``.

        Raises:
            RuntimeError: preparing it failed (the message says why).
        """
        with self._lock:
            done = self._done.pop(ticket, None)
        if isinstance(done, BaseException):
            raise RuntimeError(f"preparing clips failed: {done}") from done
        return done

    def close(self) -> None:
        self._closed.set()
        self._requests.put((-1, -1, None, ""))

    def _run(self) -> None:
        envs: list[Any] = []
        while not self._closed.is_set():
            _, ticket, clips, source = self._requests.get()
            if self._closed.is_set():
                return
            try:
                if not envs:  # one per clip, so both clips' frames come on together
                    render = "rgb_array" if self.size is not None else None
                    task = render_task(self.task, self.size or (0, 0))
                    envs = [task.make(self.horizon, render_mode=render) for _ in range(2)]
                self._prepare(ticket, envs, clips, source)
            except Exception as err:  # reported to the window, which says so
                err.add_note(traceback.format_exc())
                self._publish(ticket, err)

    def _publish(self, ticket: int, done: Prepared | BaseException) -> None:
        with self._lock:
            self._done[ticket] = done

    def _prepare(self, ticket: int, envs: list[Any], clips: tuple[Clip, ...] | None, source: str) -> None:
        """Replay the clips, then publish the pair once each clip has its first frame, and go on
        rendering the rest into it (the window shows a clip's last frame so far until then)."""
        started = time.perf_counter()
        if clips is None:
            clips, source = random_pair(self.task, envs[0], self.length, self.rng), RANDOM
        segments = tuple(replay(self.task, self.horizon, clip, env) for clip, env in zip(clips, envs))
        ready = Prepared(clips, segments, [[] for _ in clips] if self.size else [], source, 0.0)
        if self.size is None:
            ready.seconds = time.perf_counter() - started
            self._publish(ticket, ready)
            return
        for clip, env in zip(clips, envs):
            env.reset(seed=clip.seed)
            for action in clip.actions[: clip.start]:
                env.step(action)
        for i in range(max(clip.length for clip in clips)):
            for clip, env, frames in zip(clips, envs, ready.frames):
                if self._closed.is_set():
                    return
                if i < clip.length:
                    frames.append(self._frame(env))
                    if clip.start + i < len(
                        clip.actions
                    ):  # past a terminated episode's end, its last frame stays
                        env.step(clip.actions[clip.start + i])
            if i == 0:
                self._publish(ticket, ready)
        ready.seconds = time.perf_counter() - started

    def _frame(self, env: Any) -> Any:
        import pygame

        from rlhf_gym.human.play import _frame

        assert self.size is not None
        frame = _frame(env)
        surface = pygame.surfarray.make_surface(np.ascontiguousarray(frame.transpose(1, 0, 2)))
        return (
            surface if surface.get_size() == self.size else pygame.transform.smoothscale(surface, self.size)
        )
