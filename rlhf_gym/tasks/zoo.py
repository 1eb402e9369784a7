"""Tuned hyperparameters for Gymnasium ids without a preset, from rl-baselines3-zoo (the ``zoo`` extra).

rl-zoo3's wheel ships ``hyperparams/<algo>.yml``: tuned SB3 settings for hundreds of Gymnasium ids.
They are read as YAML (safe loading; rl-zoo3 itself is never imported) and translated to a run's
config:

- ``n_timesteps`` becomes the task's ``total_timesteps``, ``n_envs`` and SB3's own keyword
  arguments stay hyperparameters, and ``lin_<x>`` rates become linear schedules;
- ``policy_kwargs``, a Python expression in the zoo (``"dict(net_arch=[256, 256], activation_fn=nn.ReLU)"``),
  is parsed, never evaluated: only ``dict(...)``, lists, numbers, strings, booleans and ``nn.<Name>``
  activations are read;
- ``normalize`` (observations and rewards, ``rlhf_gym.agents.normalize``) is applied;
- what the pipeline does not apply (``normalize_kwargs``, ``frame_stack``, ``env_wrapper``, a ``policy`` other
  than ``MlpPolicy`` and ``CnnPolicy``, which the agent takes by its observations, ...) is named in
  the source line that runs record, not silently dropped.

An id missing from the zoo takes the entry of the same environment's nearest other version
(``Hopper-v5`` -> ``Hopper-v4``), and the source line says so.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

ALGOS = ("ppo", "sac", "dqn", "a2c")
"""The zoo's files read, in order of preference for a task's default algorithm."""
IGNORED = (
    "normalize_kwargs",
    "frame_stack",
    "env_wrapper",
    "vec_env_wrapper",
    "callback",
    "env_kwargs",
    "noise_type",
    "noise_std",
)
"""Zoo settings the pipeline does not apply (named in the source line of a run that meets them)."""
ACTIVATIONS = {
    "ReLU": "relu",
    "Tanh": "tanh",
    "ELU": "elu",
    "LeakyReLU": "leaky_relu",
    "SiLU": "silu",
    "GELU": "gelu",
}
"""``nn.<Name>`` activations of the zoo's ``policy_kwargs``, and the names hyperparameters use."""
MAX_BYTES = 2_000_000
MAX_ALIASES = 256


@dataclass(frozen=True)
class ZooEntry:
    """One algorithm's tuned settings for one id, translated."""

    algo: str
    zoo_id: str
    """The zoo's id the settings are for (another version of the id, when it has none for it)."""
    hyperparams: dict[str, Any]
    total_timesteps: int | None
    ignored: tuple[str, ...]


def zoo_dir() -> Path | None:
    """rl-zoo3's ``hyperparams`` folder, found without importing it; ``None`` without the extra."""
    spec = importlib.util.find_spec("rl_zoo3")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "hyperparams"
    return folder if folder.is_dir() else None


def zoo_version() -> str:
    try:
        return metadata.version("rl_zoo3")
    except metadata.PackageNotFoundError:
        return "unknown"


class _MergeAliasesOnly(yaml.SafeLoader):
    """YAML's safe loader allowing an alias only as a merge key's value (``<<: *defaults``, as the
    zoo writes them): a merge copies one mapping's entries, so no alias bomb expands without bound."""

    aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1  # (merges of merges copy more each time: a few are all the zoo needs)
            if not (isinstance(index, yaml.ScalarNode) and index.value == "<<") or self.aliases > MAX_ALIASES:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"aliases (*name) are allowed only after '<<:', at most {MAX_ALIASES}",
                    self.peek_event().start_mark,
                )
        return super().compose_node(parent, index)


@cache
def _table(path: Path, mtime: float) -> tuple[dict[str, Any], str]:
    """One zoo file's entries, and why it could not be read ({} then: too large, not YAML, ...)."""
    if path.stat().st_size > MAX_BYTES:
        return {}, f"over {MAX_BYTES} bytes"
    try:
        table = yaml.load(path.read_text(encoding="utf-8"), Loader=_MergeAliasesOnly)
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as err:
        return {}, " ".join(f"not readable YAML ({type(err).__name__})".split())
    return (table, "") if isinstance(table, dict) else ({}, "not a mapping")


def lookup(env_id: str, algos: tuple[str, ...] = ALGOS) -> tuple[list[ZooEntry], list[str]]:
    """The zoo's entries for ``env_id`` (or another version of it), one per algorithm it has, and
    the files whose entry could not be read (``<algo>.yml: why``)."""
    folder = zoo_dir()
    if folder is None:
        return [], []
    entries, unread = [], []
    for algo in algos:
        path = folder / f"{algo}.yml"
        if not path.is_file():
            continue
        table, why = _table(path, path.stat().st_mtime)
        if why:
            unread.append(f"{algo}.yml: {why}")
        key = _nearest(env_id, table)
        if key is None or not isinstance(table[key], dict):
            continue
        try:
            entries.append(translate(algo, key, table[key]))
        except ValueError as err:
            unread.append(f"{algo}.yml: {err}")
    return entries, unread


def _nearest(env_id: str, table: dict[str, Any]) -> str | None:
    """``env_id`` if the zoo has it, else the highest other version of the same environment."""
    if env_id in table:
        return env_id
    stem = re.sub(r"-v\d+$", "", env_id)
    versions = [
        (int(m.group(1)), k) for k in table if (m := re.fullmatch(re.escape(stem) + r"-v(\d+)", str(k)))
    ]
    return max(versions)[1] if versions else None


def translate(algo: str, zoo_id: str, entry: dict[str, Any]) -> ZooEntry:
    """The zoo's settings as a run's hyperparameters and timesteps, with what was left out.

    Example:
        >>> e = translate("ppo", "X-v1", {"n_timesteps": 1e5, "policy": "MlpPolicy", "n_envs": 8,
        ...     "normalize": True, "policy_kwargs": "dict(net_arch=[64], activation_fn=nn.Tanh)"})
        >>> e.total_timesteps, e.hyperparams["normalize"], e.ignored
        (100000, True, ())
    """
    hyperparams: dict[str, Any] = {}
    ignored: list[str] = []
    timesteps = None
    for key, value in entry.items():
        if key == "n_timesteps":
            timesteps = int(float(value))
        elif key == "policy":
            if value not in ("MlpPolicy", "CnnPolicy"):  # (the agent takes CnnPolicy for image observations)
                ignored.append(f"policy {value}")
        elif key in IGNORED:
            ignored.append(key)
        elif key == "normalize":  # true, or a dict as text (rlhf_gym.agents.normalize reads both)
            hyperparams[key] = (
                _literal(ast.parse(value, mode="eval").body, value) if isinstance(value, str) else value
            )
        elif key == "policy_kwargs":
            hyperparams[key] = parse_policy_kwargs(value) if isinstance(value, str) else value
        else:
            hyperparams[key] = value
    return ZooEntry(algo, zoo_id, hyperparams, timesteps, tuple(ignored))


def parse_policy_kwargs(text: str) -> dict[str, Any]:
    """The zoo's ``policy_kwargs`` expression as a dict, read from its syntax tree (never run).

    Raises:
        ValueError: anything but ``dict(...)``, literals and ``nn.<activation>``.
    """
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError as err:
        raise ValueError(f"rl-zoo3 policy_kwargs {text!r} is not an expression: {err}") from None
    value = _literal(tree, text)
    if not isinstance(value, dict):
        raise ValueError(f"rl-zoo3 policy_kwargs {text!r} is not a dict")
    return value


def _literal(node: ast.AST, text: str) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool, type(None))):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _literal(node.operand, text)
        if isinstance(inner, (int, float)) and not isinstance(inner, bool):
            return -inner
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_literal(e, text) for e in node.elts]
    if isinstance(node, ast.Dict) and all(isinstance(k, ast.Constant) for k in node.keys):
        return {k.value: _literal(v, text) for k, v in zip(node.keys, node.values)}  # type: ignore[union-attr]
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "dict"
        and not node.args
        and all(kw.arg is not None for kw in node.keywords)
    ):
        return {kw.arg: _literal(kw.value, text) for kw in node.keywords}
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "nn"
        and node.attr in ACTIVATIONS
    ):
        return ACTIVATIONS[node.attr]
    raise ValueError(f"rl-zoo3 policy_kwargs {text!r}: cannot read {ast.unparse(node)!r} without running it")


def source(entry: ZooEntry, env_id: str) -> str:
    """The line a run records for where its hyperparameters came from."""
    which = entry.zoo_id if entry.zoo_id == env_id else f"{entry.zoo_id}, its nearest version of {env_id}"
    left = f"; not applied: {', '.join(entry.ignored)}" if entry.ignored else ""
    return f"rl-zoo3 {zoo_version()} ({entry.algo}.yml: {which}){left}"


def untuned(env_id: str, unread: list[str] | None = None) -> str:
    """The source line of SB3's defaults, and why they are used."""
    if zoo_dir() is None:
        why = 'pip install "rlhf-gym[zoo]" for rl-zoo3\'s tuned ones'
    else:
        why = f"rl-zoo3 has no entry for {env_id} and this algorithm"
        why += f"; unread: {'; '.join(unread)}" if unread else ""
    return f"{UNTUNED} ({why})"


UNTUNED = "SB3's defaults, untuned"


@dataclass(frozen=True)
class Generic:
    """What a preset-less id gets: an algorithm, and per algorithm its hyperparameters, timesteps
    and source line (the zoo's entries it has, or SB3's defaults)."""

    algo: str
    hyperparams: dict[str, dict[str, Any]]
    timesteps: dict[str, int]
    sources: dict[str, str]


def generic_settings(env_id: str, action_space: Any) -> Generic:
    """A preset-less id's settings: the zoo's, its PPO entry first as the default algorithm (SAC's for
    Box actions, DQN's for Discrete ones next), or SB3's defaults with PPO."""
    from gymnasium import spaces

    found, unread = lookup(env_id)
    usable = {"sac": isinstance(action_space, spaces.Box), "dqn": isinstance(action_space, spaces.Discrete)}
    entries = {e.algo: e for e in found if usable.get(e.algo, True)}
    algo = next((a for a in ALGOS if a in entries), "ppo")
    left = f"; unread: {'; '.join(unread)}" if unread else ""
    return Generic(
        algo,
        {a: e.hyperparams for a, e in entries.items()},
        {a: e.total_timesteps for a, e in entries.items() if e.total_timesteps},
        {a: source(e, env_id) + left for a, e in entries.items()} or {"": untuned(env_id, unread)},
    )
