"""Run folders: written as the run goes, so that a crash keeps what was done.

    config.yaml       the resolved config, first (rerun it with ``rlhf-gym train --config``)
    metrics.csv       one row per feedback round and evaluation, rewritten as rows arrive
    reward_model.*    the reward model after every fit (safetensors and JSON; never pickle)
    feedback.sqlite   every feedback record, reloadable with ``FeedbackStore`` (at the end)
    agent.zip         the SB3 agent (at the end), and beside it its pickle-free twin,
    agent.safetensors + agent.json, which is what rlhf-gym reads back
    summary.json      the headline figures (``RLHF.summary``), last: a folder with it is complete

Every file is replaced atomically (written beside, then renamed), so a killed run leaves each
file whole, old or new. A folder that cannot be written fails before training starts.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rlhf_gym.agents.files import save_agent
from rlhf_gym.config import RunConfig
from rlhf_gym.feedback.store import FeedbackStore
from rlhf_gym.schema import save_yaml
from rlhf_gym.train.loop import Loop

FEEDBACK_FILE = "feedback.sqlite"


def _replace(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically; a failed write (a full disk) leaves no temp file."""
    _write_atomically(path, lambda tmp: tmp.write_text(text, newline=""))


def _write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """``write`` a temp file beside ``path``, then rename it over ``path``; on any failure the temp
    file is removed and ``path`` is left as it was."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _unlink_sqlite(path: Path) -> None:
    """Remove a SQLite file and its ``-wal`` and ``-shm`` files, if there."""
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        p.unlink(missing_ok=True)


class RunFolder:
    """A run's folder, written progressively.

    Args:
        out: the folder; created if missing. It must be writable: checked here, so a read-only
            or missing disk fails before any training.

    Raises:
        OSError: the folder cannot be created or written (the message names it).
    """

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            probe = self.out / ".write-check"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as err:
            raise OSError(f"cannot write the run folder {str(self.out)!r}: {err.strerror or err}") from None

    def start(self, config: RunConfig) -> None:
        """Write the resolved config; a summary left by an earlier run goes first, since a folder
        with a summary is complete."""
        (self.out / "summary.json").unlink(missing_ok=True)
        _write_atomically(self.out / "config.yaml", lambda tmp: save_yaml(config, tmp))

    def update(self, config: RunConfig, loop: Loop) -> None:
        """Write the metrics so far and the reward model's last fit."""
        self._write_metrics(loop)
        if config.reward == "learned" and (loop.last_fit is not None or config.reward_model_checkpoint):
            loop.reward_model.save(self.out / "reward_model")

    def _write_metrics(self, loop: Loop) -> None:
        keys = list(dict.fromkeys(k for row in loop.metrics for k in row))
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=keys)
        writer.writeheader()
        writer.writerows(loop.metrics)
        _replace(self.out / "metrics.csv", text.getvalue())

    def finish(
        self, config: RunConfig, loop: Loop, summary: dict[str, Any], store: FeedbackStore | None = None
    ) -> Path:
        """Write everything: the config, metrics and reward model, the feedback (unless ``store``,
        the run's own store, is this folder's), the agent, then the summary. Returns the folder."""
        self.start(config)
        self._write_metrics(loop)
        if config.reward == "learned":  # fitted or not: the run's reward model
            loop.reward_model.save(self.out / "reward_model")
        own = self.out / FEEDBACK_FILE
        if loop.feedback and not (store and Path(store.path).resolve() == own.resolve()):
            self._copy_feedback(own, config, loop)
        save_agent(loop.agent, self.out / "agent.zip")
        summary = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in summary.items()}
        _replace(self.out / "summary.json", json.dumps(summary, indent=2))
        return self.out

    def _copy_feedback(self, own: Path, config: RunConfig, loop: Loop) -> None:
        """Build the run's feedback store under a temporary name, closed, then rename it over
        ``own``: a failed write (a full disk) leaves the old store, or none, and no temp files."""
        tmp = own.with_name(f".{own.name}.{os.getpid()}.tmp")
        _unlink_sqlite(tmp)  # a stale one of a killed attempt would be reopened, not rebuilt
        try:
            with FeedbackStore(tmp, meta={"task": loop.task.name, "seed": config.seed}) as copy:
                for record, seconds in zip(loop.feedback, loop.feedback_seconds, strict=True):
                    copy.add(record, effort_seconds=seconds)
            # closed: its WAL is checkpointed into the file. A stale WAL of the old store would be
            # replayed into the new one, so it goes first.
            for suffix in ("-wal", "-shm"):
                Path(f"{own}{suffix}").unlink(missing_ok=True)
            os.replace(tmp, own)
        finally:
            _unlink_sqlite(tmp)
