"""Reward-model checkpoints: tensors in safetensors and metadata in JSON, never a pickle.

A checkpoint at ``path`` is two files:

- ``path.safetensors``: the ensemble's tensors ``w0, w1, ...`` (weights ``(E, in, out)``),
  ``b0, b1, ...`` (biases ``(E, 1, out)``), ``absorbing_reward`` ``(E,)``, the input
  normaliser's ``obs_mean`` and ``obs_std``, and each member's input box ``in_low`` and
  ``in_high`` ``(E, D)`` (``RewardModelConfig.input_box``; ``normalise.UNBOUNDED`` where nothing
  is clipped); for image observations also the convolutions' ``c0, c1, ...`` and ``cb0, cb1,
  ...`` (``rlhf_gym.reward.pixels``);
- ``path.json``: ``format_version`` (``FORMAT_VERSION``), the ``observation_space`` and
  ``action_space`` (as ``describe_space`` gives them), the reward model's ``config``, the output
  normalisation ``shift`` and ``scale``, ``n_labels`` and ``seed``.

Loading checks the format version, the spaces and every tensor's shape, so a checkpoint from
another environment or a damaged file fails with a ``ValueError`` that says what is wrong.
``RewardModel.save`` and ``RewardModel.load`` call the functions here.

Example:
    >>> import pathlib, tempfile
    >>> import gymnasium as gym
    >>> from rlhf_gym.config import RewardModelConfig
    >>> from rlhf_gym.reward.model import RewardModel
    >>> env = gym.make("CartPole-v1")
    >>> rm = RewardModel(env.observation_space, env.action_space, RewardModelConfig(hidden_sizes=(8,)))
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = pathlib.Path(d) / "rm"
    ...     save_reward_model(rm, path)
    ...     back = load_reward_model(RewardModel, path, env.observation_space, env.action_space)
    >>> bool((back.weights[0] == rm.weights[0]).all()), back.obs_info
    (True, {'type': 'Box', 'shape': [4]})
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from safetensors.numpy import load_file, save_file

from rlhf_gym.config import RewardModelConfig
from rlhf_gym.schema import from_dict, to_dict

FORMAT_VERSION = 2
"""The checkpoint format this rlhf-gym writes (``format_version`` in ``path.json``)."""
READS = (1, 2)
"""The formats it reads: version 1 has no input boxes, and loads as a model that clips nothing."""


def describe_space(space: spaces.Space) -> dict[str, Any]:
    """A JSON description of a Box or Discrete space, used to check checkpoints."""
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n)}
    if isinstance(space, spaces.Box):
        return {"type": "Box", "shape": list(space.shape)}
    raise ValueError(f"the reward model supports Box and Discrete spaces, got {type(space).__name__}")


def save_reward_model(model: Any, path: str | Path) -> None:
    """Write ``path.safetensors`` (tensors) and ``path.json`` (metadata), each atomically (a
    crash leaves the old file or the new one, never half of one); no pickle."""
    path = Path(path).with_suffix("")
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {f"w{i}": w for i, w in enumerate(model._members.w)}
    tensors |= {f"b{i}": b for i, b in enumerate(model._members.b)}
    tensors |= {"absorbing_reward": model._np_abs, "obs_mean": model.obs_mean, "obs_std": model.obs_std}
    tensors |= {"in_low": model.in_low.numpy(), "in_high": model.in_high.numpy()}
    if model.encoder is not None:
        tensors |= {k: v.detach().numpy() for k, v in model.encoder.named_tensors().items()}
    tmp = Path(f"{path}.safetensors.tmp")
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(tmp))
    os.replace(tmp, f"{path}.safetensors")
    meta = {
        "format_version": FORMAT_VERSION,
        "observation_space": model.obs_info,
        "action_space": model.action_info,
        "config": to_dict(model.config),
        "shift": model.shift,
        "scale": model.scale,
        "n_labels": model.n_labels,
        "seed": model.seed,
    }
    tmp = Path(f"{path}.json.tmp")
    tmp.write_text(json.dumps(meta, indent=2))
    os.replace(tmp, f"{path}.json")


def load_reward_model(
    cls: Any, path: str | Path, observation_space: spaces.Space, action_space: spaces.Space
) -> Any:
    """Load a checkpoint as a ``cls`` for an environment with these spaces.

    Raises:
        FileNotFoundError: the checkpoint files are missing.
        ValueError: the checkpoint is corrupt, of another format version, or was trained
            for different spaces.
    """
    path = Path(path).with_suffix("")
    meta_path, tensor_path = Path(f"{path}.json"), Path(f"{path}.safetensors")
    for p in (meta_path, tensor_path):
        if not p.is_file():
            raise FileNotFoundError(f"reward-model checkpoint file {str(p)!r} does not exist")
    try:
        meta = json.loads(meta_path.read_text())
        tensors = load_file(str(tensor_path))
    except Exception as err:
        raise ValueError(f"reward-model checkpoint {str(path)!r} is corrupt: {err}") from None
    required = (
        "format_version",
        "observation_space",
        "action_space",
        "config",
        "shift",
        "scale",
        "n_labels",
        "seed",
    )
    missing = [k for k in required if not isinstance(meta, dict) or k not in meta]
    if missing:
        raise ValueError(
            f"reward-model checkpoint {str(path)!r} is corrupt: its metadata lacks {', '.join(missing)}"
        )
    version = meta["format_version"]
    if isinstance(version, bool) or version not in READS:
        raise ValueError(
            f"reward-model checkpoint {str(path)!r} has format version {version!r}; "
            f"this rlhf-gym reads versions {', '.join(map(str, READS))}"
        )
    for kind, space in (("observation_space", observation_space), ("action_space", action_space)):
        want = describe_space(space)
        if meta[kind] != want:
            raise ValueError(
                f"reward-model checkpoint was trained for {kind.replace('_', ' ')} "
                f"{meta[kind]}, but the environment has {want}"
            )
    _check_values(path, meta, tensors)
    config = from_dict(RewardModelConfig, meta["config"])
    _check_widths(path, config, tensors)  # before building: a config may claim a model of terabytes
    model = cls(observation_space, action_space, config, meta["seed"])
    shapes = {f"w{i}": tuple(w.shape) for i, w in enumerate(model.weights)}
    shapes |= {f"b{i}": tuple(b.shape) for i, b in enumerate(model.biases)}
    shapes |= {
        "absorbing_reward": tuple(model.absorbing_reward.shape),
        "obs_mean": model.obs_mean.shape,
        "obs_std": model.obs_std.shape,
    }
    if version >= 2:
        shapes |= {"in_low": tuple(model.in_low.shape), "in_high": tuple(model.in_high.shape)}
    if model.encoder is not None:
        shapes |= {k: tuple(v.shape) for k, v in model.encoder.named_tensors().items()}
    for name, shape in shapes.items():
        got = tuple(tensors[name].shape) if name in tensors else "nothing"
        if got != shape:
            raise ValueError(
                f"reward-model checkpoint {str(path)!r} is corrupt: tensor {name} should have "
                f"shape {shape}, got {got}"
            )
    model.weights = [torch.from_numpy(tensors[f"w{i}"]) for i in range(len(model.weights))]
    model.biases = [torch.from_numpy(tensors[f"b{i}"]) for i in range(len(model.biases))]
    model.absorbing_reward = torch.from_numpy(tensors["absorbing_reward"])
    model.obs_mean, model.obs_std = tensors["obs_mean"], tensors["obs_std"]
    if version >= 2:
        model.in_low, model.in_high = (
            torch.from_numpy(tensors["in_low"]),
            torch.from_numpy(tensors["in_high"]),
        )
    if model.encoder is not None:
        model.encoder.load(tensors)
    model.shift, model.scale, model.n_labels = (
        float(meta["shift"]),
        float(meta["scale"]),
        meta["n_labels"],
    )
    model._sync_numpy()
    return model


def _check_values(path: Path, meta: dict[str, Any], tensors: dict[str, np.ndarray]) -> None:
    """Refuse metadata and tensors that would poison a run: a non-integer seed or label count,
    a non-finite shift, a scale or input spread that is not positive, or NaN or inf weights."""
    where = f"reward-model checkpoint {str(path)!r} is corrupt"
    for key in ("seed", "n_labels"):
        value = meta[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{where}: {key} must be a non-negative integer, got {value!r}")
    for key in ("shift", "scale"):
        value = meta[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{where}: {key} must be a finite number, got {value!r}")
    if meta["scale"] <= 0:
        raise ValueError(f"{where}: scale must be positive, got {meta['scale']!r}")
    for name, tensor in tensors.items():
        if tensor.dtype != np.float32:
            raise ValueError(f"{where}: tensor {name} is {tensor.dtype}; expected float32")
        if not np.isfinite(tensor).all():
            raise ValueError(f"{where}: tensor {name} holds NaN or inf; expected finite weights")
    if "obs_std" in tensors and not (tensors["obs_std"] > 0).all():
        raise ValueError(f"{where}: obs_std must be positive everywhere; expected a fitted normaliser")
    if "in_low" in tensors and "in_high" in tensors and (tensors["in_low"] > tensors["in_high"]).any():
        raise ValueError(f"{where}: in_low exceeds in_high somewhere; expected each member's input box")


def _check_widths(path: Path, config: RewardModelConfig, tensors: dict[str, np.ndarray]) -> None:
    """The ensemble size and layer widths the config states must be the stored tensors' own."""
    widths = (*config.hidden_sizes, 1)
    for i, width in enumerate(widths):
        w = tensors.get(f"w{i}")
        if w is None or w.ndim != 3 or w.shape[0] != config.ensemble_size or w.shape[2] != width:
            got = "nothing" if w is None else tuple(w.shape)
            raise ValueError(
                f"reward-model checkpoint {str(path)!r} is corrupt: its config states {config.ensemble_size} "
                f"members with layer widths {list(widths)}, but tensor w{i} has shape {got}"
            )
