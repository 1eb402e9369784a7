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
from pathlib import Path
from typing import Any

from rlhf_gym.agents.files import save_agent
from rlhf_gym.config import RunConfig
from rlhf_gym.feedback.store import FeedbackStore
from rlhf_gym.schema import save_yaml
from rlhf_gym.train.loop import Loop

FEEDBACK_FILE = "feedback.sqlite"


def _replace(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, newline="")
    os.replace(tmp, path)


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
        """Write the resolved config."""
        tmp = self.out / "config.yaml.tmp"
        save_yaml(config, tmp)
        os.replace(tmp, self.out / "config.yaml")

    def update(self, config: RunConfig, loop: Loop) -> None:
        """Write the metrics so far and the reward model's last fit."""
        keys = list(dict.fromkeys(k for row in loop.metrics for k in row))
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=keys)
        writer.writeheader()
        writer.writerows(loop.metrics)
        _replace(self.out / "metrics.csv", text.getvalue())
        if config.reward == "learned" and (loop.last_fit is not None or config.reward_model_checkpoint):
            loop.reward_model.save(self.out / "reward_model")

    def finish(
        self, config: RunConfig, loop: Loop, summary: dict[str, Any], store: FeedbackStore | None = None
    ) -> Path:
        """Write everything: the config, metrics and reward model, the feedback (unless ``store``,
        the run's own store, is this folder's), the agent, then the summary. Returns the folder."""
        self.start(config)
        self.update(config, loop)
        if config.reward == "learned":
            loop.reward_model.save(self.out / "reward_model")
        own = self.out / FEEDBACK_FILE
        if loop.feedback and not (store and Path(store.path).resolve() == own.resolve()):
            with FeedbackStore(own, meta={"task": loop.task.name, "seed": config.seed}) as copy:
                if len(copy) == 0:
                    for record, seconds in zip(loop.feedback, loop.feedback_seconds):
                        copy.add(record, effort_seconds=seconds)
        save_agent(loop.agent, self.out / "agent.zip")
        summary = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in summary.items()}
        _replace(self.out / "summary.json", json.dumps(summary, indent=2))
        return self.out
