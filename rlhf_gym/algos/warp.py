"""WARP (Rame et al. 2024, arXiv 2406.16768): weight-averaged rewarded policies, on control.

Each iteration trains M policies from the same start ``theta_init`` on a frozen learned
reward, each with a KL penalty toward its own EMA anchor. Their task vectors
``delta_m = theta_m - theta_init`` are merged by spherical linear interpolation (SLERP),
tensor by tensor, and the start moves toward the merge (LITI):
``theta_init <- (1 - eta) theta_init + eta theta_slerp``. The last merge, interpolated from the
first start, traces a KL-reward front.

Adapted to control (documented in the README):
- the policies are SB3 PPO or A2C agents; each "run" is a ``RLHF`` run on the frozen reward
  (``reward_model_checkpoint``) that starts from ``theta_init``;
- the EMA rate mu is applied after every optimiser step (a PPO minibatch), as after every
  REINFORCE step in the paper;
- the runs differ by seed (the paper's runs differ by prompt order);
- the KL penalty is the exact per-state KL (``rlhf_gym.algos.anchor``), not the sampled log-ratio.

Example:
    >>> import torch
    >>> a = {"w": torch.tensor([1.0, 0.0])}
    >>> slerp({"w": torch.zeros(2)}, [a, a])["w"].tolist()  # two identical task vectors
    [1.0, 0.0]
    >>> b = {"w": torch.tensor([0.0, 1.0])}
    >>> [round(x, 4) for x in slerp({"w": torch.zeros(2)}, [a, b])["w"].tolist()]  # keeps the norm
    [0.7071, 0.7071]
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from rlhf_gym.agents.evaluation import evaluate
from rlhf_gym.agents.files import save_agent
from rlhf_gym.agents.registry import make_agent
from rlhf_gym.algos.anchor import PolicyParams, load_parameters, sampled_episodes
from rlhf_gym.config import RunConfig, WarpConfig
from rlhf_gym.schema import from_dict, merge, save_yaml, to_dict
from rlhf_gym.train.resolve import resolve_config
from rlhf_gym.train.rlhf import RLHF


def _slerp2(d1: torch.Tensor, d2: torch.Tensor, lam: float) -> torch.Tensor:
    """SLERP of two task vectors with weight ``lam`` on the second; LERP when they are parallel."""
    n1, n2 = d1.norm(), d2.norm()
    if n1 == 0 or n2 == 0:
        return (1 - lam) * d1 + lam * d2
    cos = torch.clamp((d1 * d2).sum() / (n1 * n2), -1.0, 1.0)
    omega = torch.arccos(cos)
    sin = torch.sin(omega)
    if sin < 1e-6:
        return (1 - lam) * d1 + lam * d2
    return torch.sin((1 - lam) * omega) / sin * d1 + torch.sin(lam * omega) / sin * d2


STATISTICS = (".mean", ".var", ".count")
"""The policy's observation statistics (``rlhf_gym.agents.normalize.NormalizedObs``'s buffers): SLERP
scales task vectors up, which could make a variance negative."""


def slerp(init: PolicyParams, policies: Sequence[PolicyParams]) -> PolicyParams:
    """Merge the task vectors ``theta_m - init`` by SLERP, tensor by tensor, with equal weights.

    Two vectors follow the paper's formula with lambda = 1/2; more are merged iteratively
    (the m-th joins the merge of the first m - 1 with weight 1/m; paper, App. B.3).
    """
    if not policies:
        raise ValueError("slerp needs at least one policy to merge")
    merged: PolicyParams = {}
    for name, base in init.items():
        if name.endswith(STATISTICS):  # observation statistics are averaged, never extrapolated
            merged[name] = torch.stack([p[name].float() for p in policies]).mean(0).to(base.dtype)
            continue
        deltas = [p[name].float() - base.float() for p in policies]
        delta = deltas[0]
        for m, d in enumerate(deltas[1:], start=2):
            delta = _slerp2(delta, d, 1.0 / m)
        merged[name] = (base.float() + delta).to(base.dtype)
    return merged


def lerp(a: PolicyParams, b: PolicyParams, eta: float) -> PolicyParams:
    """``(1 - eta) a + eta b`` tensor by tensor (LITI, and plain weight averaging)."""
    return {k: ((1 - eta) * a[k].float() + eta * b[k].float()).to(a[k].dtype) for k in a}


def _copy(params: PolicyParams) -> PolicyParams:
    return {k: v.detach().clone() for k, v in params.items()}


@dataclass
class WarpPoint:
    """One evaluated policy of a WARP run."""

    kind: str
    """``run`` (one RL run), ``merged`` (the merge of an iteration), ``init`` (the start after
    LITI) or ``front`` (an interpolation of the final front)."""
    iteration: int
    index: float
    """The run's number, or the interpolation rate of a front point."""
    metrics: dict[str, float] = field(default_factory=dict)


class WARP:
    """Weight-averaged rewarded policies on a frozen learned reward, in one call.

    Args:
        task: a task preset or Gymnasium id.
        config: the ``RunConfig`` of every RL run (it must name ``reward_model_checkpoint``,
            the frozen reward; ``init_policy`` is the start, e.g. a behaviour-cloned policy).
        warp: a ``WarpConfig`` or a mapping of its fields.
        verbose: 1 prints one line per evaluated policy.
        **overrides: ``RunConfig`` fields, e.g. ``total_timesteps`` (T per run) or ``seed``.
    """

    def __init__(
        self,
        task: str | None = None,
        *,
        config: RunConfig | dict[str, Any] | None = None,
        warp: WarpConfig | dict[str, Any] | None = None,
        verbose: int = 0,
        **overrides: Any,
    ) -> None:
        if task is not None:
            overrides["task"] = task
        self.warp = warp if isinstance(warp, WarpConfig) else from_dict(WarpConfig, dict(warp or {}), "warp")
        base = resolve_config(config, **overrides)
        if not base.reward_model_checkpoint:
            raise ValueError(
                "WARP fine-tunes against a frozen learned reward: set reward_model_checkpoint to a saved "
                "reward model (the reward_model of an rlhf-gym train run folder)"
            )
        if base.algo not in ("ppo", "a2c"):
            raise ValueError(f"WARP trains ppo or a2c agents, got algo {base.algo!r}")
        self.config = base
        self.verbose = verbose
        self.points: list[WarpPoint] = []
        self.merged: PolicyParams | None = None
        self.wall_seconds = 0.0

    def _initial_parameters(self) -> PolicyParams:
        """The first start: ``init_policy``'s weights, or a fresh agent's for the base seed."""
        cfg = self.config
        probe = RLHF(config=cfg)
        agent = make_agent(
            cfg.algo or probe.task.algo, probe.loop.make_vec_env(), probe.loop.agent_kwargs, cfg.seed, False
        )
        if cfg.init_policy:
            agent.policy.load_state_dict(load_parameters(agent, cfg.init_policy))
        return _copy(agent.policy.state_dict())

    def _run(self, start: PolicyParams, iteration: int, m: int) -> RLHF:
        w = self.warp
        seed = self.config.seed + 1000 * iteration + m
        kl = {"kl_coef": w.kl_coef, "kl_anchor": "ema", "ema_rate": w.ema_rate} if w.kl_coef else {}
        run = RLHF(config=merge(self.config, {"seed": seed, **kl}))
        run.initial_parameters = start
        return run.learn()

    def learn(self) -> WARP:
        """Run the iterations, then evaluate the front from the first start to the last merge."""
        t0 = time.perf_counter()
        w = self.warp
        start = self._initial_parameters()
        for iteration in range(1, w.iterations + 1):
            finals: list[PolicyParams] = []
            for m in range(w.runs):
                run = self._run(start, iteration, m)
                if iteration == 1 and m == 0:  # its agent evaluates every policy; its reference is the start
                    self._probe, self._sft = run, run.reference
                finals.append(_copy(run.agent.policy.state_dict()))
                self._point("run", iteration, m, finals[-1])
            merged = slerp(start, finals) if w.merge == "slerp" else _mean(finals)
            self._point("merged", iteration, 1.0, merged)
            self.merged = merged
            start = lerp(start, merged, w.eta)
            self._point("init", iteration, w.eta, start)
        first = self._sft.state_dict()
        assert self.merged is not None
        for eta in w.front:
            self._point("front", w.iterations, eta, lerp(first, self.merged, eta))
        self.wall_seconds = time.perf_counter() - t0
        return self

    def _point(self, kind: str, iteration: int, index: float, params: PolicyParams) -> None:
        run = self._probe
        run.agent.policy.load_state_dict(params)
        cfg = self.config
        m = sampled_episodes(
            run.agent, run.task, run.reward_model, self._sft, self.warp.eval_episodes, seed=cfg.seed + 30_000
        )
        final = evaluate(run.agent, run.task, cfg.final_eval_episodes, seed=cfg.seed + 10_000)
        metrics = {
            "sampled_true_return": m["true_return"],
            "proxy_return": m["proxy_return"],
            "kl_from_init": m["kl"],
            "true_return_mean": final.mean,
        }
        self.points.append(WarpPoint(kind, iteration, index, metrics))
        if self.verbose:
            figures = "  ".join(f"{k}={v:.3g}" for k, v in metrics.items())
            print(f"warp {kind} iteration={iteration} index={index:g}  {figures}", flush=True)

    def table(self) -> list[dict[str, Any]]:
        """One row per evaluated policy: kind, iteration, index and its figures."""
        return [
            {"kind": p.kind, "iteration": p.iteration, "index": p.index, **p.metrics} for p in self.points
        ]

    def save(self, out: str | Path) -> Path:
        """Write ``warp.csv`` (every evaluated policy), ``config.yaml`` (the runs' config and
        WARP's), ``merged.zip`` (an SB3 agent holding the last merge) and ``summary.json``."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        rows = self.table()
        with open(out / "warp.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        save_yaml(self.config, out / "config.yaml")
        (out / "warp.yaml").write_text(json.dumps(to_dict(self.warp), indent=2))
        assert self.merged is not None
        self._probe.agent.policy.load_state_dict(self.merged)
        save_agent(self._probe.agent, out / "merged.zip")
        last = next(r for r in reversed(rows) if r["kind"] == "merged")
        summary = {
            "task": self.config.task,
            "iterations": self.warp.iterations,
            "runs": self.warp.runs,
            "merged": {k: _plain(v) for k, v in last.items() if k not in ("kind", "index")},
            "wall_seconds": round(self.wall_seconds, 3),
        }
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        return out


def _mean(policies: Sequence[PolicyParams]) -> PolicyParams:
    return {k: sum(p[k].float() for p in policies) / len(policies) for k in policies[0]}  # type: ignore[misc]


def _plain(v: Any) -> Any:
    return None if isinstance(v, float) and math.isnan(v) else v
