"""The learner's side of ``rlhf-gym label``: the RLHF loop driven by a person's feedback store.

``learn`` is the body of the ``rlhf_gym.human.learner.Learner``'s process (or thread): it refits
the reward model whenever the store changes, trains the agent chunk by chunk, and sends clips,
the actor's weights (live mode) and its status back on queues. Beside the store it keeps the
agent (``<store>.agent.zip``) and its step counter (``<store>.learner.json``) between sessions.
"""

from __future__ import annotations

import contextlib
import json
import math
import multiprocessing as mp
import os
import queue
import threading
import time
import traceback
import warnings
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rlhf_gym.config import RunConfig
from rlhf_gym.data.rollout import to_trajectory
from rlhf_gym.data.segments import cut, sample_starts
from rlhf_gym.human.clips import Clip
from rlhf_gym.processes import die_with_parent
from rlhf_gym.schema import from_dict
from rlhf_gym.tasks.registry import get_task
from rlhf_gym.types import Query, Trajectory

if TYPE_CHECKING:  # the learner's side imports torch and SB3 in its own process, not the window's
    from rlhf_gym.feedback.effort import Budget
    from rlhf_gym.feedback.store import FeedbackStore
    from rlhf_gym.train.loop import Answer, Loop


def checkpoint_path(store: str | Path) -> Path:
    """Where the learner keeps the agent of a store between sessions: ``<store>.agent.zip``, with
    its pickle-free twin beside it (``rlhf_gym.agents.files``), which is what a session reads."""
    store = Path(store)
    return store.with_name(store.name + ".agent.zip")


def counters_path(store: str | Path) -> Path:
    """Where the learner keeps the agent's step counter between sessions: ``<store>.learner.json``."""
    store = Path(store)
    return store.with_name(store.name + ".learner.json")


TOP_UP = 4
"""Episodes played at most to fill the window's queue of pairs before the learner goes on."""


def chunk_steps(config: RunConfig) -> int:
    """Agent steps between two looks at the store: one on-policy rollout, or 1,000 steps."""
    hp = config.hyperparams
    return int(hp["n_steps"]) * int(hp.get("n_envs", 1)) if "n_steps" in hp else 1_000


def learn(
    config: dict[str, Any],
    store: str,
    messages: Any,
    clips: Any,
    stop: Any,
    policy: bool = False,
    wanted: Any = None,
) -> None:
    """The learner's loop (the body of its process or thread); reports errors as a message.

    As a process, it first arranges to die with the window's process (``rlhf_gym.processes``):
    a killed window runs no cleanup, and a learner blocked writing to a full queue would never
    notice on its own.
    """
    parent = mp.parent_process()
    as_process = threading.current_thread() is threading.main_thread()  # a thread is another's
    if as_process and parent is not None and parent.pid is not None:
        die_with_parent(parent.pid)
        with contextlib.suppress(OSError):
            # the window's keys come first, then pairs for the person (``_on_step``), then learning;
            # not lower: beside 4 CPU-bound processes on 2 cores, at 5 the person waited for pairs
            # 23% of a session (the label_app publication)
            os.nice(2)
    try:
        messages.put({"type": "progress", "text": "importing torch and stable-baselines3"})
        import torch
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(1)  # one core for learning; the window keeps the other
        with threadpool_limits(limits=1):
            _Learning(config, store, messages, clips, stop, policy, wanted).run()
    except Exception as err:
        messages.put(
            {"type": "error", "error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()}
        )


COUNTERS_BYTES = 1024
"""The largest ``<store>.learner.json`` read; ours is about 25 bytes."""


NOT_ACTING = ("critic.", "critic_target.", "q_net_target.", "value_net.", "mlp_extractor.value_net.")
"""Parts of SB3's policies that acting does not use (critics, target and value networks)."""


def actor_state(policy: Any) -> dict[str, np.ndarray]:
    """The weights ``policy`` acts with, as arrays: its state dict without ``NOT_ACTING`` parts."""
    state = policy.state_dict().items()
    return {k: v.detach().cpu().numpy() for k, v in state if not k.startswith(NOT_ACTING)}


def saved_timesteps(path: Path) -> int:
    """The step count saved beside a store's agent: 0 if there is none, and 0 with a warning if the
    file is not what the learner writes (it may come from anyone with the store)."""
    try:
        if path.stat().st_size > COUNTERS_BYTES:
            raise ValueError(f"over {COUNTERS_BYTES} bytes")
        steps = json.loads(path.read_text())
        steps = steps.get("timesteps") if isinstance(steps, dict) else None
        if type(steps) is not int or steps < 0:  # (a bool is an int)
            raise ValueError(f"expected a non-negative integer 'timesteps', got {str(steps)[:40]}")
    except FileNotFoundError:
        return 0
    except (OSError, ValueError, RecursionError) as err:
        reason = "nested too deeply" if isinstance(err, RecursionError) else str(err).splitlines()[0][:80]
        warnings.warn(f"{path} ignored ({reason}): the agent's step count starts at 0", stacklevel=2)
        return 0
    return steps


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
    stopped. Every option of a run's config acts here as it does in ``RLHF``, but those of the
    synthetic loop's schedule: the app shows its own episodes, so ``unsupervised_fraction`` and
    ``goal_queries`` (like ``initial_rollout_fraction`` and ``feedback_rounds``) do nothing here."""

    def __init__(
        self,
        config: dict[str, Any],
        store: str,
        messages: Any,
        clips: Any,
        stop: Any,
        policy: bool = False,
        wanted: Any = None,
    ) -> None:
        from rlhf_gym.agents.files import load_parameters
        from rlhf_gym.feedback.store import FeedbackStore
        from rlhf_gym.reward.model import RewardModel
        from rlhf_gym.train.loop import Loop

        self.cfg = cfg = from_dict(RunConfig, config)
        self.task = task = get_task(cfg.task)
        self.messages, self.clips, self.stop, self.send_policy = messages, clips, stop, policy
        self.wanted = wanted  # an Event the window sets while a person waits for a pair
        messages.put({"type": "progress", "text": "building the agent"})
        self.store = FeedbackStore(store)
        self.env = task.make(cfg.horizon)  # the episodes that clips are cut from
        model = RewardModel(self.env.observation_space, self.env.action_space, cfg.reward_model, cfg.seed)
        self.loop = Loop(cfg, task, model, PersonSource(self.store))
        self.agent = self.loop.start()
        self.checkpoint, self.counters = checkpoint_path(store), counters_path(store)
        if self.checkpoint.is_file():  # resume the agent where the last session left it
            messages.put({"type": "progress", "text": "loading the saved agent"})
            try:  # never unpickled (SB3's loaders would run a stranger's code), checked to fit and finite
                self.agent.policy.load_state_dict(load_parameters(self.agent, self.checkpoint))
                self._resume_count(saved_timesteps(self.counters))
            except (ValueError, OSError) as err:
                warnings.warn(
                    f"the agent in {self.checkpoint} does not fit this config ({err}); starting anew",
                    stacklevel=2,
                )
        self.saved_at = int(self.agent.num_timesteps)  # the steps of the agent on disk
        # a resumed store must not replay the same episodes: every session draws its own clips
        self.rng = np.random.default_rng([cfg.seed, len(self.store), time.time_ns() % 2**32])
        self.episodes: deque[tuple[int, np.ndarray, Trajectory]] = deque(maxlen=4)
        self.fitted, self.fits, self.accuracy, self.true_return = False, 0, math.nan, math.nan

    def _resume_count(self, steps: int) -> None:
        """Go on counting from ``steps``. The replay buffer of an off-policy agent is not saved, so
        it fills again for ``learning_starts`` steps before learning, as a new agent's does."""
        if hasattr(self.agent, "learning_starts"):
            self.agent.learning_starts = steps + int(self.agent.learning_starts)
        self.agent.num_timesteps = steps

    def run(self) -> None:
        seen: tuple[int, int] | None = None
        self._status()
        try:
            while not self.stopping():
                self._top_up()  # pairs first: a person waiting for one comes before learning
                now = self.store.marker()
                if now != seen:
                    seen = now
                    self._refit()
                    self._top_up()
                if self.fitted:
                    self._train()
                else:
                    self.stop.wait(0.05)
            self._save()  # asked to stop: what was learned since the last chunk's save is kept too
            saved = str(self.checkpoint) if self.checkpoint.is_file() else ""
            self.messages.put({"type": "stopped", "timesteps": int(self.agent.num_timesteps), "saved": saved})
        finally:
            self.store.close()

    def _top_up(self) -> None:
        """Fill the window's queue of pairs, so that a quick labeller never waits long (an episode
        played for each, at most ``TOP_UP`` in a row: one too short to cut a pair from sends none)."""
        for _ in range(TOP_UP):
            if self.clips.full() or self.stopping():
                return
            self._send_clips()

    def _on_step(self, *_: Any) -> bool:
        """During a chunk: a pair as soon as the window says a person waits for one (learning
        waits, a person does not); ``False`` ends the chunk."""
        if self.wanted is not None and self.wanted.is_set() and not (self.stopping() or self.clips.full()):
            self._send_clips()  # (it clears the request once a pair is queued)
        return not self.stopping()

    def stopping(self) -> bool:
        """Asked to stop, or the window's process is gone (a killed window must not leave us running)."""
        parent = mp.parent_process()  # None in a thread
        return self.stop.is_set() or (parent is not None and not parent.is_alive())

    def _refit(self) -> None:
        loop = self.loop
        loop.ask(None)
        if not loop.feedback:  # no label yet, or everything was undone: wait for new feedback
            self.fitted = False
            self._status()
            return
        self.messages.put(
            {"type": "progress", "text": f"fitting the reward model on {len(loop.feedback)} labels"}
        )
        fit = loop.fit()
        self.fitted, self.fits = True, self.fits + 1
        self.accuracy = fit.heldout_accuracy if fit is not None else math.nan
        loop.log({"round": loop.round})  # (the reward-model figures would cost the learner's one core)
        self._status()

    def _train(self) -> None:
        from stable_baselines3.common.callbacks import ConvertCallback

        self.loop.train(chunk_steps(self.cfg), callback=ConvertCallback(self._on_step))
        if self.stopping():
            return
        if self.send_policy:  # (only live mode acts with it)
            state = actor_state(self.agent.policy)
            self.messages.put({"type": "policy", "state": state, "timesteps": int(self.agent.num_timesteps)})
        self._save()
        self.true_return = self.loop.evaluate(2, seed=self.cfg.seed + 20_000).mean
        self._status()

    def _save(self) -> None:
        """Save the agent and its step count, if it trained since the last save (each file is
        written atomically: a kill leaves the last whole one)."""
        from rlhf_gym.agents.files import save_agent

        steps = int(self.agent.num_timesteps)
        if steps == self.saved_at:
            return
        save_agent(self.agent, self.checkpoint)  # with its pickle-free twin
        tmp = self.counters.with_name(f".{self.counters.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"timesteps": steps}) + "\n")
        os.replace(tmp, self.counters)
        self.saved_at = steps

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
            if self.stopping():
                return
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
            with contextlib.suppress(queue.Full):  # (full: the window has pairs enough)
                self.clips.put_nowait((self._clip(w1, s1), self._clip(w2, s2)))
            if self.wanted is not None:
                self.wanted.clear()  # what the window asked for is on its way

    def _clip(self, which: int, start: int) -> Clip:
        seed, actions, _ = self.episodes[which]
        h = self.cfg.segment_length
        assert h is not None
        return Clip(seed, actions[: start + h], start, h)
