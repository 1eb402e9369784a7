"""Give feedback by keyboard while the agent learns: ``rlhf-gym label --task T --mode M --store S``.

The window shows the agent's behaviour and reads keys at ``fps`` frames a second. A
``rlhf_gym.human.learner.Learner`` fits the reward model on the store's feedback and trains the
agent in a background process, so the window never waits, and the next clips come from the
improving policy. Modes (``rlhf_gym.human.compare`` and ``rlhf_gym.human.live``):

- ``compare``: two clips loop side by side; prefer one, call them equal, or skip.
- ``live``: the policy plays in real time; rate it with + and -, take over with the task's
  keys to correct it, stop it with the e-stop key.
- ``demo``: play the task yourself; each finished episode is a demonstration.

Nothing acknowledged is ever lost: each label is committed to the SQLite store before the
window says "recorded". The query on screen is stored as pending before it is shown, so a
killed or closed session shows it again when the same store is opened. ``u`` undoes the last
label of the store. Keys that a task's key map uses are left to the task (see ``control_keys``).
One session at a time writes to a store: it holds the store's writer lock
(``rlhf_gym.feedback.lock``), and its learner process dies with it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rlhf_gym.config import RunConfig
from rlhf_gym.human.app import App, LabelResult, control_keys, run_window
from rlhf_gym.human.learner import Learner
from rlhf_gym.human.play import _check_keys
from rlhf_gym.human.window import init_pygame, open_window
from rlhf_gym.schema import to_dict
from rlhf_gym.tasks.registry import Task, get_task

MODES = ("compare", "live", "demo")


STOP_SECONDS = 0.8
"""How long a closing window waits for the learner to save its agent and stop; then it is
terminated (its agent was saved after its last chunk of training, atomically)."""


SWITCH_SECONDS = 0.0005
"""The window process's thread switch interval while open (Python's default is 5 ms): the
thread that reads keys gets the interpreter back within this long from the one that renders."""


def label(
    task: str | Task,
    store: str | Path,
    mode: str = "compare",
    *,
    config: RunConfig | dict[str, Any] | None = None,
    labels: int | None = None,
    fps: float = 60.0,
    zoom: float = 1.0,
    speed: float = 1.0,
    backend: str = "process",
    seed: int | None = None,
    max_frames: int | None = None,
    callback: Callable[[Any], None] | None = None,
    on_commit: Callable[[int], None] | None = None,
    teacher: str = "human",
) -> LabelResult:
    """Open the labelling window on ``store`` (created if new, resumed if not).

    Args:
        task: a task preset or Gymnasium id.
        store: the feedback store; an existing one must hold the same task, and its pending
            query is shown first.
        mode: ``compare``, ``live`` or ``demo``.
        config: ``RunConfig`` fields for the learner (horizon, algo, hyperparameters, reward
            model, segment length, query strategy, seed); the task preset fills the rest. The
            horizon defaults to ``fixed``.
        labels: stop asking for comparisons after the store holds this many labels.
        fps: frames per second of the window.
        zoom: scale of the frames.
        speed: how fast live and demo episodes play, as a multiple of the task's frame rate
            (live mode changes it with its slower/faster keys).
        backend: where the learner runs: ``process`` (spawned, so a script that calls ``label``
            needs the ``if __name__ == "__main__":`` guard) or ``thread``.
        seed: seed of the episodes shown in live and demo modes (``config.seed`` if ``None``).
        max_frames: close after this many frames.
        callback: called with the ``App`` at the start of every frame, before the keys are read
            (tests and the keyboard-teacher benchmark post their key events from it).
        on_commit: called with the row id of each label as soon as it is on disk.
        teacher: the name stored with every label (a script that answers for a person should
            say so).

    Raises:
        ValueError: an unknown mode or task, a store of another task, a bad config.
        StoreInUseError: another session is writing to ``store`` (a ``ValueError``).
        NoDisplayError: there is no display to open the window on.
    """
    from rlhf_gym.feedback.lock import StoreLock
    from rlhf_gym.feedback.store import FeedbackStore
    from rlhf_gym.human.compare import CompareView
    from rlhf_gym.human.demo import DemoView
    from rlhf_gym.human.live import LiveView

    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    if fps <= 0 or zoom <= 0 or speed <= 0:
        raise ValueError(f"fps, zoom and speed must be positive, got fps={fps}, zoom={zoom}, speed={speed}")
    if labels is not None and labels < 1:
        raise ValueError(f"labels must be at least 1, got {labels}")
    task = task if isinstance(task, Task) else get_task(task)
    # one writing session per store (a second gets a StoreInUseError naming the holder's pid);
    # the kernel frees the lock if this process dies, however it dies
    with StoreLock(store):
        cfg = _session_config(task, Path(store), config, mode)
        pygame = init_pygame()  # display and fonts only: no sound card is opened
        # checks the backend before the store exists; only live mode acts with the learner's policy
        learner = Learner(cfg, Path(store), backend=backend, policy=mode == "live")
        feedback = FeedbackStore(store, meta={"task": task.name, "horizon": cfg.horizon, "seed": cfg.seed})
        app: App | None = None
        interval = sys.getswitchinterval()
        try:
            sys.setswitchinterval(SWITCH_SECONDS)  # a key never waits long on the preparer's thread
            learner.start()  # first: it starts in the background while the window opens
            app = App(task, cfg, feedback, learner, mode, labels, zoom, on_commit)
            app.speed, app.teacher = speed, teacher
            views: dict[str, Any] = {"compare": CompareView, "live": LiveView, "demo": DemoView}
            app.view = view = views[mode](app, cfg.seed if seed is None else seed)
            if mode != "compare":
                _check_keys(task, view.action_space, pygame)
            app.window = open_window(pygame, view.window_size())
            pygame.display.set_caption(f"rlhf-gym label ({mode}): {task.name}")
            run_window(app, view, fps, max_frames, callback)
        finally:
            closing = time.perf_counter()
            if getattr(app.view if app else None, "unsaved", None) is not None:
                print("rlhf-gym label: the last demonstration was not stored: no agent segments had arrived")
            if app is not None and hasattr(app.view, "close"):
                app.view.close()
            pygame.display.quit()  # the window goes at once, then the learner saves its agent and stops
            last = learner.stop(timeout=STOP_SECONDS)
            feedback.close()
            sys.setswitchinterval(interval)
            if app is not None:
                app.result.close_seconds = time.perf_counter() - closing
                app.result.agent_timesteps, app.result.agent_saved = _agent_kept(store, last)
        return app.result


def _agent_kept(store: str | Path, last: dict[str, Any]) -> tuple[int, str]:
    """The agent's steps and path as the learner left them: from its ``stopped`` message, else
    (terminated while it trained) from the save after its last chunk, if any."""
    from rlhf_gym.human.learning import checkpoint_path, counters_path, saved_timesteps

    if last:
        return int(last["timesteps"]), str(last["saved"])
    path = checkpoint_path(store)
    return (saved_timesteps(counters_path(store)), str(path)) if path.is_file() else (-1, "")


def _session_config(
    task: Task, store: Path, config: RunConfig | dict[str, Any] | None, mode: str
) -> RunConfig:
    """The learner's resolved config; checks that it, the mode and an existing store fit ``task``."""
    from rlhf_gym.train.resolve import resolve_config

    user = to_dict(config) if isinstance(config, RunConfig) else dict(config or {})
    stored = _stored_meta(store)
    if stored.get("task", task.name) != task.name:
        raise ValueError(
            f"{store} holds feedback for task {stored['task']!r}, not {task.name!r}; expected the same task, "
            "or a new store path"
        )
    user.setdefault("horizon", stored.get("horizon", "fixed"))  # a store keeps its horizon
    if stored.get("horizon", user["horizon"]) != user["horizon"]:
        raise ValueError(
            f"{store} holds {stored['horizon']}-horizon feedback, not {user['horizon']}; expected the same "
            "horizon (leave it out to use the store's), or a new store"
        )
    cfg = resolve_config(user, task=task.name)
    if mode != "compare" and not task.keys:
        raise ValueError(
            f"task {task.name!r} has no key map, which {mode} mode needs; add keys to its preset"
        )
    control_keys(task, mode)  # a key map that leaves no key for a control fails before any window
    return cfg


def _stored_meta(path: Path) -> dict[str, Any]:
    """The meta of an existing store (read only), or ``{}`` for a new path."""
    from rlhf_gym.feedback.store import FeedbackStore

    if not path.is_file() or path.stat().st_size == 0:
        return {}
    with FeedbackStore(path) as existing:
        return existing.meta
