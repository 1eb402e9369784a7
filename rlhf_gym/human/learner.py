"""Learning in the background while a person gives feedback (``rlhf-gym label``).

A ``Learner`` runs the reward model and the SB3 agent in a background process (or a thread),
so the window that shows clips and reads keys never waits for training. The two sides share
only the feedback store, two queues and two events (stop; a person waits for a pair):

- **Feedback** travels through the ``FeedbackStore``: the window commits each label, and the
  learner refits the reward model whenever the store's contents change (a label added or
  undone), then relabels and keeps training the agent on the new reward.
- **Messages** travel back on queues: pairs of ``Clip`` to compare, drawn from the current
  policy's own episodes and ranked by the query strategy; the actor's weights, for the window
  to act with in live mode (only then); and a status (agent steps, reward-model accuracy, true
  return). In the window's process a daemon thread (``Inbox``) reads them, so the window only
  ever takes whole messages: a large one arriving slowly from a busy learner never stalls it.
- **Pairs come before learning**: the learner fills the queue of pairs between training chunks,
  and the window asks for the next one (``want_pair``) as soon as it has nothing more to prepare;
  the learner then plays it between two steps of its agent, in the middle of a chunk.

Clips (``rlhf_gym.human.clips``) are stretches of the policy's episodes that anyone can show again.
The learner's own side, and the files it keeps beside a store, are in ``rlhf_gym.human.learning``.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import threading
import time
from pathlib import Path
from typing import Any

from rlhf_gym.config import RunConfig
from rlhf_gym.human.clips import Clip
from rlhf_gym.human.learning import learn
from rlhf_gym.schema import to_dict

BACKENDS = ("process", "thread")

GRACE_SECONDS = 0.5
"""How long messages that a learner sent just before it exited may take to arrive whole."""


class Learner:
    """Fits the reward model on a store's feedback and trains an agent on it, in the background.

    Args:
        config: the resolved run config (task, horizon, algo, hyperparameters, reward model,
            segment length, query strategy, seed).
        store: the feedback store's path; it must exist (the window creates it first).
        backend: ``process`` (the default: training never slows the window) or ``thread``.
        pairs: how many clip pairs may wait in the queue.
        policy: send the actor's weights after every chunk of training (live mode acts with them).

    ``poll()`` returns the messages that arrived, each a dict with a ``type``: ``progress``
    (``text``), ``policy`` (``state``: the actor's weights as arrays), ``status``
    (``timesteps``, ``labels``, ``fits``, ``accuracy``, ``true_return``), ``stopped``
    (``timesteps``, ``saved``) or ``error`` (``error``, ``traceback``: the learner stopped).
    ``next_pair()`` gives the next two ``Clip`` to compare.
    """

    def __init__(
        self,
        config: RunConfig,
        store: str | Path,
        backend: str = "process",
        pairs: int = 3,
        policy: bool = False,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown learner backend {backend!r}; expected one of {', '.join(BACKENDS)}")
        self.config, self.store, self.backend = config, Path(store), backend
        self._pairs, self._policy = pairs, policy
        self._worker: Any = None
        self._last: dict[str, Any] = {}  # its "stopped" message, once it came
        self._failed = False  # an "error" message came
        self._dead_since = 0.0  # when it was first seen ended

    def start(self) -> Learner:
        worker: Any
        if self.backend == "thread":
            self._messages: Any = queue.Queue()
            self._clips: Any = queue.Queue(self._pairs)
            self._stop: Any = threading.Event()
            self._wanted: Any = threading.Event()
            self._inbox: Any = self._messages  # already whole messages
            self._pairs_in: Any = self._clips
            worker = threading.Thread
        else:
            ctx = mp.get_context("spawn")  # never fork a process that holds a window
            self._messages, self._clips, self._stop = ctx.Queue(), ctx.Queue(self._pairs), ctx.Event()
            self._wanted = ctx.Event()
            self._inbox, self._pairs_in = Inbox(self._messages), Inbox(self._clips, self._pairs)
            worker = ctx.Process
        config = to_dict(self.config)
        args = (config, str(self.store), self._messages, self._clips, self._stop, self._policy, self._wanted)
        self._worker = worker(target=learn, args=args, daemon=True, name="rlhf-gym learner")
        self._worker.start()
        return self

    def poll(self) -> list[dict[str, Any]]:
        """Every message that arrived whole (never waits)."""
        messages = _drain(self._inbox)
        for message in messages:
            if message.get("type") == "stopped":
                self._last = message
            elif message.get("type") == "error":
                self._failed = True
        return messages

    def next_pair(self) -> tuple[Clip, Clip] | None:
        """The next pair of clips to compare, or ``None`` if none is ready (never waits)."""
        try:
            return self._pairs_in.get_nowait()
        except queue.Empty:
            return None

    def want_pair(self) -> None:
        """Say that a person waits for a pair: the learner plays one at its agent's next step, even
        in the middle of a training chunk (it fills its queue between chunks anyway)."""
        if self._worker is not None:
            self._wanted.set()

    @property
    def alive(self) -> bool:
        return self._worker is not None and self._worker.is_alive()

    def ended(self) -> str:
        """``""`` while the learner runs, stopped as asked or reported its error; else how it
        ended without a word (``exit code N``), once every message it sent has been polled."""
        worker = self._worker
        if worker is None or worker.is_alive() or self._last or self._failed:
            return ""
        self._dead_since = self._dead_since or time.monotonic()
        if time.monotonic() - self._dead_since < GRACE_SECONDS or not self._inbox.empty():
            return ""  # its last messages may still be on the way
        code = getattr(worker, "exitcode", None)
        return f"exit code {code}" if code is not None else "its thread ended"

    def stop(self, timeout: float = 10.0) -> dict[str, Any]:
        """Ask the learner to save its agent and stop, and wait for it up to ``timeout`` seconds.

        A process still running then is terminated, and its queues are not read again (one
        terminated mid-write leaves a partial message that no read would finish). A thread cannot
        be terminated: it is waited for until it ends (it looks at the stop between steps), so
        the store it uses is never closed under it. Returns its ``stopped`` message
        (``timesteps``, ``saved``: the agent's path, or ``""`` if it had nothing new to save),
        or ``{}``.
        """
        if self._worker is None:
            return self._last
        self._stop.set()
        deadline = time.monotonic() + timeout
        # drain while waiting: a child blocked on a full pipe never exits
        while self._worker.is_alive() and (time.monotonic() < deadline or self.backend == "thread"):
            self.poll()
            _drain(self._pairs_in)
            self._worker.join(0.02)
        if self._worker.is_alive():
            self._worker.terminate()
            self._worker.join(2.0)
            if self._worker.is_alive():  # (stopped by a signal, it cannot act on a SIGTERM)
                self._worker.kill()
                self._worker.join(1.0)
        else:  # what it sent before it exited
            until = time.monotonic() + GRACE_SECONDS
            while not (self._last or self._failed) and time.monotonic() < until:
                self.poll()
                time.sleep(0.01)
        self.poll()
        for inbox in (self._inbox, self._pairs_in):
            if isinstance(inbox, Inbox):
                inbox.close()
        self._worker = None
        return self._last


class Inbox:
    """Whole messages of a ``multiprocessing`` queue, read on a daemon thread of their own.

    ``get_nowait`` never blocks: a message larger than the pipe's buffer, still being written by a
    slow process, waits on this thread, not the caller's. With ``size``, at most that many wait
    here (then the reader waits, and the sender's queue fills as if nobody read it).
    """

    def __init__(self, source: Any, size: int = 0) -> None:
        self.source = source
        self.whole: queue.Queue[Any] = queue.Queue(size)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True, name="rlhf-gym inbox")
        self._thread.start()

    def _read(self) -> None:
        while not self._closed.is_set():
            try:
                item = self.source.get(timeout=0.05)
            except queue.Empty:
                continue
            except (OSError, ValueError, EOFError):
                return  # closed
            while not self._closed.is_set():
                try:
                    self.whole.put(item, timeout=0.05)
                    break
                except queue.Full:
                    continue

    def get_nowait(self) -> Any:
        return self.whole.get_nowait()

    def empty(self) -> bool:
        return self.whole.empty()

    def close(self) -> None:
        """Stop reading (a read in progress is left to its daemon thread)."""
        self._closed.set()


def _drain(q: Any) -> list[Any]:
    out = []
    while True:
        try:
            out.append(q.get_nowait())
        except (queue.Empty, OSError, ValueError):
            return out
