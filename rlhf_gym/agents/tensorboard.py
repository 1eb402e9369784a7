"""TensorBoard logging, as SB3's ``tensorboard_log``: the agent's own figures (``train/``,
``rollout/``, ``time/``) and the RLHF loop's metrics (``rlhf/``: labels, effort, reward-model
accuracy and correlation, true and learned return) in one event file per run."""

from __future__ import annotations

import math
import numbers
import re
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.logger import Logger, configure
from stable_baselines3.common.utils import get_latest_run_id


def tensorboard_logger(folder: str | Path, name: str) -> Logger:
    """An SB3 logger writing TensorBoard events to ``folder/<name>_<n>``, ``n`` the next free
    number (as SB3 names its own runs, ``PPO_1``, ``PPO_2``, ...).

    Raises:
        ImportError: the ``tensorboard`` package is missing (the ``tensorboard`` extra).
    """
    try:
        import tensorboard  # noqa: F401  (SB3 writes through torch's SummaryWriter, which needs it)
    except ImportError:
        raise ImportError(
            "tensorboard_log needs the tensorboard package: pip install 'rlhf-gym[tensorboard]'"
        ) from None
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)  # task ids hold '/' (ALE/Pong-v5)
    Path(folder).mkdir(parents=True, exist_ok=True)
    run = get_latest_run_id(str(folder), name) + 1
    while True:  # runs in parallel (a sweep's) each take a folder of their own
        try:
            (Path(folder) / f"{name}_{run}").mkdir()
            break
        except FileExistsError:
            run += 1
    return configure(str(Path(folder) / f"{name}_{run}"), ["tensorboard"])


def record_metrics(logger: Logger, row: dict[str, Any]) -> None:
    """Write a metrics row's finite numbers as ``rlhf/<column>`` at the row's ``timesteps``."""
    for key, value in row.items():
        if key != "timesteps" and isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
            if math.isfinite(value):
                logger.record(f"rlhf/{key}", float(value))
    logger.dump(step=int(row["timesteps"]))
