"""Saved agents: written with a pickle-free twin, read without unpickling anything.

An SB3 zip (``agent.save``) stores some attributes with cloudpickle (``":serialized:"`` entries of
its ``data``), and SB3's ``load`` runs them: ``PPO.load`` on a stranger's zip runs the stranger's
code. rlhf-gym never calls it. ``save_agent`` writes the SB3 zip and, beside ``agent.zip``, a
pickle-free twin:

- ``agent.safetensors``: the policy's state dict;
- ``agent.json``: ``format_version``, the ``algo`` name, the policy class name, ``gamma``, the
  spaces, the shape of every parameter, and the SHA-256 of the safetensors file and of the zip's
  ``policy.pth``, so that a twin left by an older save of the zip is never taken for it.

The readers (``read_policy``, ``load_parameters``, ``load_agent``) prefer the twin. From a zip
alone they read ``policy.pth`` with ``torch.load(weights_only=True)`` and only the plain JSON
fields of ``data``, never a ``":serialized:"`` value. An agent is rebuilt from the task preset
and the run's config, and a policy whose parameters differ (names or shapes) is refused.

Example:
    >>> import pathlib, tempfile
    >>> import gymnasium as gym
    >>> from stable_baselines3 import PPO
    >>> agent = PPO("MlpPolicy", gym.make("CartPole-v1"), policy_kwargs={"net_arch": [8]}, device="cpu")
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = save_agent(agent, pathlib.Path(d) / "agent.zip")
    ...     files = sorted(p.name for p in path.parent.iterdir())
    ...     state = load_parameters(agent, path)
    >>> files
    ['agent.json', 'agent.safetensors', 'agent.zip']
    >>> bool((state["action_net.weight"] == agent.policy.state_dict()["action_net.weight"]).all())
    True
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from safetensors.torch import load_file, save_file
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import DummyVecEnv

from rlhf_gym.agents.registry import ALGO_ENTRY_POINTS, check_algo, make_agent
from rlhf_gym.config import RunConfig
from rlhf_gym.tasks.registry import ALGOS, Task

FORMAT_VERSION = 1
"""The twin format this rlhf-gym writes and reads (``format_version`` in ``agent.json``)."""
MAX_POLICY_BYTES = 1 << 30
"""The largest policy read (1 GiB; an Atari CNN policy is about 7 MB), so no file can exhaust memory."""
MAX_JSON_BYTES = 16 << 20
"""The largest ``agent.json`` or zip ``data`` read."""
EXPECTED = "expected an SB3 agent zip (such as a run's agent.zip) or its agent.safetensors twin"
ALGO_KEYS = {"exploration_fraction": "dqn", "target_entropy": "sac", "n_epochs": "ppo", "gae_lambda": "a2c"}
"""A plain field of an SB3 zip's ``data`` that only one algorithm saves (the key, not its value)."""

PolicyParams = dict[str, torch.Tensor]


@dataclass(frozen=True)
class SavedPolicy:
    """A saved agent's policy, as read without unpickling.

    Args:
        path: the file the weights came from (the twin's ``.safetensors`` or the zip).
        state: the policy's state dict.
        algo: the algorithm's registered name, if the file tells it (the twin), or a guess from
            the names of the zip's plain fields.
        gamma: the agent's discount, if saved as a plain number.
    """

    path: Path
    state: PolicyParams
    algo: str | None
    gamma: float | None


def save_agent(agent: BaseAlgorithm, path: str | Path) -> Path:
    """Write ``agent`` as an SB3 zip at ``path`` and its pickle-free twin beside it, each atomically.

    ``runs/x/agent.zip`` gets ``runs/x/agent.safetensors`` and ``runs/x/agent.json`` (a path
    without ``.zip`` gets it appended, as SB3 does). Returns the zip's path.
    """
    path = Path(path)
    zip_path = path if path.suffix == ".zip" else path.with_name(path.name + ".zip")
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    stem = zip_path.with_suffix("")
    tmp = {
        s: zip_path.with_name(f".{stem.name}.{os.getpid()}.tmp{s}") for s in (".zip", ".safetensors", ".json")
    }
    try:
        agent.save(tmp[".zip"])
        with zipfile.ZipFile(tmp[".zip"]) as archive:
            zip_digest = hashlib.sha256(archive.read("policy.pth")).hexdigest()
        # cloned: safetensors refuses tensors that share memory (a shared features extractor)
        state = {k: v.detach().cpu().contiguous().clone() for k, v in agent.policy.state_dict().items()}
        save_file(state, str(tmp[".safetensors"]))
        meta = {
            "format_version": FORMAT_VERSION,
            "algo": algo_name(agent),
            "policy": type(agent.policy).__name__,
            "gamma": float(agent.gamma) if hasattr(agent, "gamma") else None,
            "spaces": {k: str(getattr(agent, k)) for k in ("observation_space", "action_space")},
            "parameters": {k: list(v.shape) for k, v in state.items()},
            "safetensors_sha256": _sha256(tmp[".safetensors"]),
            "zip_policy_sha256": zip_digest,
        }
        tmp[".json"].write_text(json.dumps(meta, indent=2) + "\n")
        for suffix in (".zip", ".safetensors", ".json"):  # the JSON last: it vouches for the other two
            os.replace(tmp[suffix], _beside(stem, suffix))
    finally:
        for p in tmp.values():
            p.unlink(missing_ok=True)
    return zip_path


def algo_name(agent: BaseAlgorithm) -> str | None:
    """The registered name of ``agent``'s algorithm (``ALGO_ENTRY_POINTS``), or ``None``."""
    for cls in type(agent).__mro__:
        for name, entry in ALGO_ENTRY_POINTS.items():
            module, _, qualname = entry.partition(":")
            if cls.__name__ == qualname and (cls.__module__ + ".").startswith(module + "."):
                return name
    return None


def read_policy(path: str | Path) -> SavedPolicy:
    """The policy of a saved agent: its twin (``.safetensors`` and ``.json``) if given or lying
    beside the zip and matching it, else the zip's ``policy.pth``; nothing is unpickled.

    Raises:
        FileNotFoundError: no saved agent at ``path`` (nor at ``path`` + ``.zip``).
        ValueError: the file is not a zip, holds no ``policy.pth``, holds anything but tensors,
            non-finite weights, or is a damaged twin.
    """
    path = Path(path)
    if path.is_dir():
        raise _bad(path, "is a directory")
    if path.suffix in (".safetensors", ".json"):
        return _read_twin(path.with_suffix(""))
    tried = [path] if path.suffix == ".zip" else [path, path.with_name(path.name + ".zip")]
    zip_path = next((p for p in tried if p.is_file()), None)
    found = zip_path or tried[-1]
    stem = found.with_suffix("") if found.suffix == ".zip" else found
    has_twin = all(_beside(stem, s).is_file() for s in (".safetensors", ".json"))
    if zip_path is None:
        if not has_twin:
            raise FileNotFoundError(
                f"no saved agent at {' or '.join(repr(str(p)) for p in tried)}; {EXPECTED}"
            )
        return _read_twin(stem)
    if has_twin:
        try:
            meta = _read_json(_beside(stem, ".json"))
        except ValueError:
            meta = {}  # a damaged twin: the zip's own weights
        with _open_zip(zip_path) as archive:
            digest = hashlib.sha256(
                _read_entry(archive, zip_path, "policy.pth", MAX_POLICY_BYTES)
            ).hexdigest()
        if meta.get("zip_policy_sha256") == digest:
            return _read_twin(stem)
    return _read_zip(zip_path)  # no twin, or one left by another save: the zip's own weights


def load_parameters(agent: BaseAlgorithm, path: str | Path, role: str = "init_policy") -> PolicyParams:
    """The policy parameters of a saved agent (``read_policy``), checked against ``agent``'s policy.

    Raises:
        FileNotFoundError: no saved agent at ``path``.
        ValueError: a bad file (``read_policy``), or a policy whose parameter names or shapes
            differ from ``agent``'s: one line naming the file, ``role`` and what was expected.
    """
    saved = read_policy(path)
    own = agent.policy.state_dict()
    diff = _differences(saved.state, own)
    if diff:
        raise ValueError(
            f"{role} {str(path)!r} does not fit this task and algorithm: {diff}; expected an agent saved "
            f"for the same task, algo and net_arch (a {type(agent).__name__} policy of {len(own)} tensors)"
        )
    return saved.state


def load_agent(path: str | Path, task: Task, config: RunConfig) -> BaseAlgorithm:
    """A saved agent rebuilt for ``task`` and the run's ``config`` with the saved policy: for its
    networks (a regret teacher's critic), not to resume training.

    Candidates are built with ``make_agent`` for the algorithms that fit the action space (the
    saved one if known, the config's, then ppo, a2c, dqn, sac), each with the run's
    hyperparameters (for the config's algorithm) or the preset's; the first whose policy has
    exactly the saved parameter names and shapes is kept, with the saved ``gamma``. Building
    them leaves the global random streams as they were.

    Raises:
        FileNotFoundError: no saved agent at ``path``.
        ValueError: a bad file (``read_policy``), or a policy that fits none of the candidates.
    """
    saved = read_policy(path)
    venv = DummyVecEnv([lambda: task.make(config.horizon)])
    tried: list[str] = []
    for algo, kwargs in _candidates(saved.algo, task, config, venv.action_space):
        with _global_rng_kept():
            try:
                agent = make_agent(algo, venv, kwargs, config.seed, relabel=False)
            except ValueError:  # hyperparameters of another algorithm: the next candidate may fit
                continue
        tried.append(algo)
        if not _differences(saved.state, agent.policy.state_dict()):
            agent.policy.load_state_dict(saved.state)
            agent.policy.set_training_mode(False)
            if saved.gamma is not None:
                agent.gamma = saved.gamma  # type: ignore[attr-defined]  # every SB3 critic has one
            return agent
    venv.close()
    first = next(iter(saved.state), "?")
    raise ValueError(
        f"teacher_critic {str(path)!r} does not fit task {task.name}: its policy (e.g. {first} "
        f"{tuple(saved.state[first].shape) if saved.state else ''}) matches none of "
        f"{', '.join(dict.fromkeys(tried)) or 'no algorithm'} built from the preset and the run's "
        "hyperparams; expected an agent saved for this task, such as a ceiling run's agent.zip"
    )


# ----- reading ----------------------------------------------------------------------------
def _read_twin(stem: Path) -> SavedPolicy:
    tensors, meta_path = _beside(stem, ".safetensors"), _beside(stem, ".json")
    for p in (tensors, meta_path):
        if not p.is_file():
            raise FileNotFoundError(f"no saved agent at {str(p)!r}; {EXPECTED}")
    meta = _read_json(meta_path)
    if (version := meta.get("format_version")) != FORMAT_VERSION:
        raise _bad(meta_path, f"has format_version {version!r}", f"expected {FORMAT_VERSION}")
    if tensors.stat().st_size > MAX_POLICY_BYTES:
        raise _bad(tensors, f"is larger than {MAX_POLICY_BYTES} bytes")
    if meta.get("safetensors_sha256") != _sha256(tensors):
        raise _bad(tensors, f"does not match {str(meta_path)!r}", "expected the two files of one save_agent")
    try:
        state = load_file(str(tensors), device="cpu")
    except Exception as err:  # safetensors' own errors name no file
        raise _bad(tensors, f"is damaged ({_first_line(err)})") from None
    algo = meta.get("algo")
    return SavedPolicy(tensors, _checked(state, tensors), algo if algo in ALGOS else None, _gamma(meta))


def _read_zip(path: Path) -> SavedPolicy:
    major, minor = (int(x) for x in torch.__version__.split(".")[:2])
    if (major, minor) < (2, 6):  # CVE-2025-32434: weights_only=True could run code before 2.6
        raise ValueError(
            f"reading {str(path)!r} safely needs torch>=2.6 (this is {torch.__version__}); upgrade torch, "
            "or load the agent's agent.safetensors twin"
        )
    with _open_zip(path) as archive:
        raw = _read_entry(archive, path, "policy.pth", MAX_POLICY_BYTES)
        data: Any = {}
        with suppress(ValueError, RecursionError):  # only hints: a bad data costs nothing but them
            data = json.loads(_read_entry(archive, path, "data", MAX_JSON_BYTES))  # never decoded further
    try:
        state = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as err:  # weights_only refuses anything but tensors and plain containers
        raise ValueError(
            f"the policy.pth of {str(path)!r} is not a plain state dict ({_first_line(err)}); {EXPECTED}"
        ) from None
    fields: dict[str, Any] = data if isinstance(data, dict) else {}
    algo = next((name for key, name in ALGO_KEYS.items() if key in fields), None)
    return SavedPolicy(path, _checked(state, path), algo, _gamma(fields))


@contextmanager
def _open_zip(path: Path) -> Iterator[zipfile.ZipFile]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise _bad(path, f"is not a zip file ({err})") from None
    with archive:
        yield archive


def _read_entry(archive: zipfile.ZipFile, path: Path, name: str, limit: int) -> bytes:
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise _bad(path, f"holds no {name}") from None
    if info.file_size > limit:
        raise ValueError(f"the {name} of {str(path)!r} is larger than {limit} bytes; {EXPECTED}")
    try:
        with archive.open(info) as f:
            raw = f.read(limit + 1)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as err:
        raise ValueError(f"the {name} of {str(path)!r} is damaged ({err}); {EXPECTED}") from None
    if len(raw) > limit:
        raise ValueError(f"the {name} of {str(path)!r} is larger than {limit} bytes; {EXPECTED}")
    return raw


def _read_json(path: Path) -> dict[str, Any]:
    if path.stat().st_size > MAX_JSON_BYTES:
        raise _bad(path, f"is larger than {MAX_JSON_BYTES} bytes")
    try:
        meta = json.loads(path.read_bytes())
    except (ValueError, RecursionError) as err:
        raise _bad(path, f"is not JSON ({_first_line(err)})") from None
    if not isinstance(meta, dict):
        raise _bad(path, f"holds a {type(meta).__name__}", "expected a JSON object")
    return meta


def _checked(state: Any, path: Path) -> PolicyParams:
    """``state`` if it is a state dict of finite tensors."""
    if not isinstance(state, dict) or not state:
        raise _bad(path, "holds no policy parameters")
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise _bad(
                path, f"holds {key!r}: {type(value).__name__}", "expected a state dict of named tensors"
            )
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise _bad(path, f"has NaN or inf in {key}", "expected finite weights")
    return state


def _differences(state: PolicyParams, own: dict[str, torch.Tensor]) -> str:
    """The parameter names and shapes that differ, at most three of them, or ``""``."""
    diff = [f"{k} is missing" for k in own if k not in state]
    diff += [
        f"{k} is {tuple(state[k].shape)} where {tuple(own[k].shape)} was expected"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    diff += [f"{k} is unexpected" for k in state if k not in own]
    more = f" and {len(diff) - 3} more" if len(diff) > 3 else ""
    return ", ".join(diff[:3]) + more


def _gamma(fields: dict[str, Any]) -> float | None:
    gamma = fields.get("gamma")
    if isinstance(gamma, (int, float)) and not isinstance(gamma, bool) and 0.0 <= gamma <= 1.0:
        return float(gamma)
    return None  # absent, serialized, NaN or out of range: the rebuilt agent's own is kept


# ----- rebuilding ---------------------------------------------------------------------------
def _candidates(
    saved: str | None, task: Task, config: RunConfig, action_space: spaces.Space
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(algorithm, hyperparameters) to rebuild a saved agent with, most likely first."""
    seen: list[tuple[str, dict[str, Any]]] = []
    for algo in dict.fromkeys(a for a in (saved, config.algo, "ppo", "a2c", "dqn", "sac") if a):
        try:
            check_algo(algo, action_space)
        except ValueError:
            continue
        sets = [config.hyperparams] if algo == config.algo else []
        for kwargs in [*sets, task.algo_kwargs(algo)]:
            candidate = (algo, {k: v for k, v in kwargs.items() if k != "n_envs"})
            if candidate not in seen:
                seen.append(candidate)
                yield candidate


@contextmanager
def _global_rng_kept() -> Iterator[None]:
    """Keep Python's, NumPy's and torch's global random streams (SB3 seeds them when building)."""
    py, np_state = random.getstate(), np.random.get_state()  # noqa: NPY002  (the legacy global stream)
    with torch.random.fork_rng():
        try:
            yield
        finally:
            random.setstate(py)
            np.random.set_state(np_state)  # noqa: NPY002


def _bad(path: Path, problem: str, expected: str = EXPECTED) -> ValueError:
    return ValueError(f"saved agent {str(path)!r} {problem}; {expected}")


def _beside(stem: Path, suffix: str) -> Path:
    """``stem`` with ``suffix`` added (``with_suffix`` would replace the ``.v2`` of ``agent.v2``)."""
    return stem.with_name(stem.name + suffix)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()  # (a twin's size is checked first)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:200]}" if text else type(err).__name__
