"""Learning in the background while a person gives feedback (``rlhf-gym label``).

A ``Learner`` runs the reward model and the SB3 agent in a background process (or a thread),
so the window that shows clips and reads keys never waits for training. The two sides share
only the feedback store and two queues:

- **Feedback** travels through the ``FeedbackStore``: the window commits each label, and the
  learner refits the reward model whenever the store's contents change (a label added or
  undone), then relabels and keeps training the agent on the new reward.
- **Messages** travel back on queues: pairs of ``Clip`` to compare, drawn from the current
  policy's own episodes and ranked by the query strategy; the policy's weights, for the window
  to act with in live mode; and a status (agent steps, reward-model accuracy, true return).

A ``Clip`` is a stretch of an episode that anyone can show again: the seed of the episode's
reset and the actions from the reset on. Replaying them in a fresh environment gives the same
states (every task's environment is deterministic given these), so a clip is small, portable and
can be stored as the pending query of a store.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import queue
import threading
import time
import traceback
import warnings
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rlhf_gym.config import RunConfig
from rlhf_gym.data.rollout import to_trajectory
from rlhf_gym.data.segments import cut, sample_starts
from rlhf_gym.processes import die_with_parent
from rlhf_gym.schema import from_dict, to_dict
from rlhf_gym.tasks.registry import Task, get_task
from rlhf_gym.types import Query, Segment, Trajectory

if TYPE_CHECKING:  # the learner's side imports torch and SB3 in its own process, not the window's
    from rlhf_gym.feedback.effort import Budget
    from rlhf_gym.feedback.store import FeedbackStore
    from rlhf_gym.train.loop import Answer, Loop

BACKENDS = ("process", "thread")


@dataclass(frozen=True)
class Clip:
    """A stretch of an episode: reset with ``seed``, step ``actions``, show steps ``start`` to
    ``start + length``.

    Args:
        seed: the seed of the episode's ``reset``.
        actions: every action from the reset through the clip's last step.
        start: the clip's first step.
        length: the clip's steps (a clip past the end of a terminated episode shows its end).
    """

    seed: int
    actions: np.ndarray
    start: int
    length: int

    def to_json(self) -> dict[str, int]:
        """Everything but the actions, as JSON-able values (the actions go in an array file)."""
        return {"seed": self.seed, "start": self.start, "length": self.length}


def replay(task: Task, horizon: str, clip: Clip, env: Any = None) -> Segment:
    """The segment a clip shows, by replaying it in ``env`` (a fresh ``task.make(horizon)`` if
    ``None``)."""
    env = env if env is not None else task.make(horizon)
    obs, _ = env.reset(seed=clip.seed)
    steps: list[tuple[np.ndarray, np.ndarray, float, bool]] = []
    terminated = False
    for action in clip.actions:
        next_obs, reward, term, trunc, info = env.step(action)
        steps.append((obs, np.asarray(action), float(reward), bool(info.get("absorbing", False))))
        obs = next_obs
        if term or trunc:
            terminated = bool(term)
            break
    return cut(
        to_trajectory(steps, terminated, np.asarray(obs)), clip.start, clip.length, task.absorbing_reward
    )


def checkpoint_path(store: str | Path) -> Path:
    """Where the learner keeps the agent of a store between sessions: ``<store>.agent.zip``, with
    its pickle-free twin beside it (``rlhf_gym.agents.files``), which is what a session reads."""
    store = Path(store)
    return store.with_name(store.name + ".agent.zip")


def chunk_steps(config: RunConfig) -> int:
    """Agent steps between two looks at the store: one on-policy rollout, or 1,000 steps."""
    hp = config.hyperparams
    return int(hp["n_steps"]) * int(hp.get("n_envs", 1)) if "n_steps" in hp else 1_000


class Learner:
    """Fits the reward model on a store's feedback and trains an agent on it, in the background.

    Args:
        config: the resolved run config (task, horizon, algo, hyperparameters, reward model,
            segment length, query strategy, seed).
        store: the feedback store's path; it must exist (the window creates it first).
        backend: ``process`` (the default: training never slows the window) or ``thread``.
        pairs: how many clip pairs may wait in the queue.

    ``poll()`` returns the messages that arrived, each a dict with a ``type``: ``clips``
    (``pair``: two ``Clip``), ``policy`` (``state``: the policy's weights as arrays),
    ``status`` (``timesteps``, ``labels``, ``fits``, ``accuracy``, ``true_return``) or
    ``error`` (``error``, ``traceback``: the learner stopped).
    """

    def __init__(
        self, config: RunConfig, store: str | Path, backend: str = "process", pairs: int = 3
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown learner backend {backend!r}; expected one of {', '.join(BACKENDS)}")
        self.config, self.store, self.backend = config, Path(store), backend
        self._pairs = pairs
        self._worker: Any = None

    def start(self) -> Learner:
        args: tuple[Any, ...]
        if self.backend == "thread":
            self._messages: Any = queue.Queue()
            self._clips: Any = queue.Queue(self._pairs)
            self._stop: Any = threading.Event()
            args = (to_dict(self.config), str(self.store), self._messages, self._clips, self._stop)
            self._worker = threading.Thread(target=learn, args=args, daemon=True, name="rlhf-gym learner")
        else:
            ctx = mp.get_context("spawn")  # never fork a process that holds a window
            self._messages, self._clips, self._stop = ctx.Queue(), ctx.Queue(self._pairs), ctx.Event()
            args = (to_dict(self.config), str(self.store), self._messages, self._clips, self._stop)
            self._worker = ctx.Process(target=learn, args=args, daemon=True, name="rlhf-gym learner")
        self._worker.start()
        return self

    def poll(self) -> list[dict[str, Any]]:
        """Every status, policy and error message that arrived (never waits)."""
        return _drain(self._messages)

    def next_pair(self) -> tuple[Clip, Clip] | None:
        """The next pair of clips to compare, or ``None`` if none is ready (never waits)."""
        try:
            return self._clips.get_nowait()
        except queue.Empty:
            return None

    @property
    def alive(self) -> bool:
        return self._worker is not None and self._worker.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the learner to stop and wait for it (a process that hangs is terminated)."""
        if self._worker is None:
            return
        self._stop.set()
        if self.backend == "process":
            # drain while waiting: a child blocked on a full pipe never exits
            deadline = time.monotonic() + timeout
            while self._worker.is_alive() and time.monotonic() < deadline:
                _drain(self._messages)
                _drain(self._clips)
                self._worker.join(0.05)
            if self._worker.is_alive():
                self._worker.terminate()
                self._worker.join(2.0)
        else:
            self._worker.join(timeout)
        self._worker = None


def _drain(q: Any) -> list[Any]:
    out = []
    while True:
        try:
            out.append(q.get_nowait())
        except (queue.Empty, OSError, ValueError):
            return out


def learn(config: dict[str, Any], store: str, messages: Any, clips: Any, stop: Any) -> None:
    """The learner's loop (the body of its process or thread); reports errors as a message.

    As a process, it first arranges to die with the window's process (``rlhf_gym.processes``):
    a killed window runs no cleanup, and a learner blocked writing to a full queue would never
    notice on its own.
    """
    parent = mp.parent_process()
    as_process = threading.current_thread() is threading.main_thread()  # a thread is another's
    if as_process and parent is not None and parent.pid is not None:
        die_with_parent(parent.pid)
    try:
        import torch
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(1)  # one core for learning; the window keeps the other
        with threadpool_limits(limits=1):
            _Learning(config, store, messages, clips, stop).run()
    except Exception as err:
        messages.put(
            {"type": "error", "error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()}
        )


class PersonSource:
    """A person's feedback: whatever the labelling window has committed to the store.

    Each ``ask`` returns every record of the store (a person may have undone some), with the
    effort stored beside each; the budget is the person's to spend, so it is not read.
    """

    def __init__(self, store: FeedbackStore) -> None:
        self.store = store

    def ask(self, loop: Loop, budget: Budget | None, strategy: str | None) -> Answer:
        from rlhf_gym.train.loop import Answer

        efforts = [float(row["effort_seconds"] or 0.0) for row in self.store.rows()]
        return Answer(list(zip(self.store.records(), efforts)), sum(efforts), replace=True)


class _Learning:
    """Drives the RLHF loop (``rlhf_gym.train.loop``) as a person labels: ask (read the store)
    and fit whenever the store changes, train a chunk, send clips, policy and status; until
    stopped. Every option of a run's config acts here as it does in ``RLHF``."""

    def __init__(self, config: dict[str, Any], store: str, messages: Any, clips: Any, stop: Any) -> None:
        from rlhf_gym.agents.files import load_parameters
        from rlhf_gym.feedback.store import FeedbackStore
        from rlhf_gym.reward.model import RewardModel
        from rlhf_gym.train.loop import Loop

        self.cfg = cfg = from_dict(RunConfig, config)
        self.task = task = get_task(cfg.task)
        self.messages, self.clips, self.stop = messages, clips, stop
        self.store = FeedbackStore(store)
        self.env = task.make(cfg.horizon)  # the episodes that clips are cut from
        model = RewardModel(self.env.observation_space, self.env.action_space, cfg.reward_model, cfg.seed)
        self.loop = Loop(cfg, task, model, PersonSource(self.store))
        self.agent = self.loop.start()
        self.checkpoint = checkpoint_path(store)
        if self.checkpoint.is_file():  # resume the agent where the last session left it
            try:  # never unpickled (SB3's loaders would run a stranger's code), checked to fit and finite
                self.agent.policy.load_state_dict(load_parameters(self.agent, self.checkpoint))
            except (ValueError, OSError) as err:
                warnings.warn(
                    f"the agent in {self.checkpoint} does not fit this config ({err}); starting anew",
                    stacklevel=2,
                )
        # a resumed store must not replay the same episodes: every session draws its own clips
        self.rng = np.random.default_rng([cfg.seed, len(self.store), time.time_ns() % 2**32])
        self.episodes: deque[tuple[int, np.ndarray, Trajectory]] = deque(maxlen=4)
        self.fitted, self.fits, self.accuracy, self.true_return = False, 0, math.nan, math.nan

    def run(self) -> None:
        seen: tuple[int, int] | None = None
        self._status()
        try:
            while not self.stopping():
                now = self.store.marker()
                if now != seen:
                    seen = now
                    self._refit()
                for _ in range(3):  # top the queue up, so a quick labeller never waits long
                    if self.clips.full() or self.stopping():
                        break
                    self._send_clips()
                if self.fitted:
                    self._train()
                else:
                    self.stop.wait(0.05)
        finally:
            self.store.close()

    def stopping(self) -> bool:
        """Asked to stop, or the window's process is gone (a killed window must not leave us running)."""
        parent = mp.parent_process()  # None in a thread
        return self.stop.is_set() or (parent is not None and not parent.is_alive())

    def _refit(self) -> None:
        loop = self.loop
        loop.ask(None)
        if not loop.feedback:  # everything was undone: wait for new feedback
            self.fitted = False
            self._status()
            return
        fit = loop.fit()
        self.fitted, self.fits = True, self.fits + 1
        self.accuracy = fit.heldout_accuracy if fit is not None else math.nan
        loop.log({"round": loop.round})  # (the reward-model figures would cost the learner's one core)
        self._status()

    def _train(self) -> None:
        from stable_baselines3.common.callbacks import ConvertCallback

        from rlhf_gym.agents.files import save_agent

        stop = ConvertCallback(lambda *_: not self.stopping())  # ends a chunk at once when asked
        self.loop.train(chunk_steps(self.cfg), callback=stop)
        if self.stopping():
            return
        state = {k: v.detach().cpu().numpy() for k, v in self.agent.policy.state_dict().items()}
        self.messages.put({"type": "policy", "state": state, "timesteps": int(self.agent.num_timesteps)})
        save_agent(self.agent, self.checkpoint)  # atomic, with its pickle-free twin: a kill leaves no half
        self.true_return = self.loop.evaluate(2, seed=self.cfg.seed + 20_000).mean
        self._status()

    def _status(self) -> None:
        self.messages.put(
            {
                "type": "status",
                "timesteps": int(self.agent.num_timesteps),
                "labels": self.loop.labels,
                "fits": self.fits,
                "accuracy": self.accuracy,
                "true_return": self.true_return,
            }
        )

    def _send_clips(self) -> None:
        """Play one episode of the current policy, then queue the most informative pairs."""
        from rlhf_gym.data.queries import rank_queries

        cfg, h = self.cfg, self.cfg.segment_length
        assert h is not None
        seed = int(self.rng.integers(2**31))
        obs, _ = self.env.reset(seed=seed)
        steps, actions, terminated = [], [], False
        for _ in range(self.task.max_episode_steps):
            action = self.agent.predict(obs, deterministic=False)[0]
            next_obs, reward, term, trunc, info = self.env.step(action)
            steps.append((obs, np.asarray(action), float(reward), bool(info.get("absorbing", False))))
            actions.append(np.asarray(action))
            obs = next_obs
            if term or trunc:
                terminated = bool(term)
                break
        self.episodes.append((seed, np.stack(actions), to_trajectory(steps, terminated, np.asarray(obs))))
        trajs = [t for _, _, t in self.episodes]
        n = 2 * cfg.candidate_factor  # candidates for the one pair sent per episode played
        try:
            spots = sample_starts(trajs, h, n, self.rng)
        except ValueError:
            return  # no segment fits yet
        segments = [cut(trajs[w], s, h, self.task.absorbing_reward) for w, s in spots]
        # pairs of two different stretches: not two overlapping windows of one episode
        distinct = [
            i
            for i in range(0, len(spots) - 1, 2)
            if spots[i][0] != spots[i + 1][0] or abs(spots[i][1] - spots[i + 1][1]) >= h
        ]
        candidates = [Query(segments[i], segments[i + 1]) for i in distinct]
        where = {id(q): (spots[i], spots[i + 1]) for q, i in zip(candidates, distinct)}
        strategy = cfg.query_strategy if self.fitted else "uniform"
        ranked = rank_queries(candidates, strategy, self.loop.reward_model if self.fitted else None, self.rng)
        if ranked:
            (w1, s1), (w2, s2) = where[id(ranked[0])]
            try:
                self.clips.put_nowait((self._clip(w1, s1), self._clip(w2, s2)))
            except queue.Full:
                pass

    def _clip(self, which: int, start: int) -> Clip:
        seed, actions, _ = self.episodes[which]
        h = self.cfg.segment_length
        assert h is not None
        return Clip(seed, actions[: start + h], start, h)
