"""Run folders: what a finished run writes, so that it can be read, reloaded and repeated.

config.yaml       the resolved config (rerun it with ``rlhf-gym train --config``)
metrics.csv       one row per feedback round and evaluation (``docs`` explains each column)
reward_model.*    the reward model (safetensors and JSON; never pickle)
feedback.sqlite   every feedback record, reloadable with ``FeedbackStore``
agent.zip         the SB3 agent
summary.json      the headline figures (``RLHF.summary``)
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from rlhf_gym.config import RunConfig
from rlhf_gym.feedback.store import FeedbackStore
from rlhf_gym.schema import save_yaml
from rlhf_gym.train.loop import Loop

FEEDBACK_FILE = "feedback.sqlite"


def write_run_folder(
    out: Path, config: RunConfig, loop: Loop, summary: dict[str, Any], store: FeedbackStore | None = None
) -> Path:
    """Write a run's folder at ``out`` (created if missing): ``loop``'s metrics, reward model,
    feedback and agent; ``store`` is the run's own feedback store, if it has one. Returns ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    save_yaml(config, out / "config.yaml")
    keys = list(dict.fromkeys(k for row in loop.metrics for k in row))
    with open(out / "metrics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(loop.metrics)
    if config.reward == "learned":
        loop.reward_model.save(out / "reward_model")
    own = out / FEEDBACK_FILE
    if loop.feedback and not (store and Path(store.path).resolve() == own.resolve()):
        with FeedbackStore(own, meta={"task": loop.task.name, "seed": config.seed}) as copy:
            if len(copy) == 0:
                for record, seconds in zip(loop.feedback, loop.feedback_seconds):
                    copy.add(record, effort_seconds=seconds)
    loop.agent.save(out / "agent.zip")
    summary = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in summary.items()}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return out
