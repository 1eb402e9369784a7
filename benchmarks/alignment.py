"""The over-optimisation study: KL-anchored RL, WARP and best-of-N against a frozen learned reward.

    python benchmarks/publish.py alignment                  # CartPole-v1, Pendulum-v1, Reach-v0; 10 seeds
    python benchmarks/publish.py alignment --arms Reach-v0  # one task

Per task and seed (all on the fixed horizon):
1. the proxy: a reward model from a normal RLHF run with few oracle comparisons, then frozen;
2. the start ("SFT"): a PPO policy behaviour-cloned on a few noisy expert episodes
   (``rlhf_gym.agents.cloning.pretrained``);
3. from the start, PPO on the frozen proxy: without a KL term, with a KL penalty toward the start
   (beta 0.01, 0.1, 1) and toward an EMA anchor (beta 0.1, mu 0.01); each logs, every tenth of
   training, the true return, the proxy return and the KL from the start on sampled episodes;
4. WARP with the paper's defaults (M 2, eta 0.3, beta 0.1, mu 0.01, 3 iterations) and its front
   from the start to the last merge; each run trains T / 3 steps, so each of the M chains of
   runs trains as long as one single run above;
5. best-of-N from the start, N = 1..16, with the analytic KL bound.

Each task and seed is one job of the publication (an "arm" per task): it keeps its summary and its
rows (one per evaluated policy, ``metrics.csv``) in ``benchmarks/results/alignment/<task>/s<seed>/``;
``alignment_report.section`` draws one figure per task in ``benchmarks/figures/alignment/`` and the
section of RESULTS.md, with IQMs and 95% CIs over seeds and WARP's domination counted seed by seed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from report import one_thread  # noqa: E402 - benchmarks/ is on the path from here

# per task: the proxy's labels, the start's demonstrations (episodes, BC steps, noise), PPO steps T
TASKS: dict[str, dict[str, Any]] = {
    "CartPole-v1": {"labels": 20, "demos": (2, 1000, 0.3), "timesteps": 100_000},
    "Pendulum-v1": {"labels": 30, "demos": (3, 2000, 0.3), "timesteps": 100_000},
    "Reach-v0": {"labels": 50, "demos": (3, 2000, 0.3), "timesteps": 150_000},
}
ARMS: dict[str, dict[str, Any]] = {
    "no KL": {},
    "KL to start, beta 0.01": {"kl_coef": 0.01},
    "KL to start, beta 0.1": {"kl_coef": 0.1},
    "KL to start, beta 1": {"kl_coef": 1.0},
    "KL to EMA, beta 0.1": {"kl_coef": 0.1, "kl_anchor": "ema", "ema_rate": 0.01},
    "KL loss to start, beta 0.1": {"kl_coef": 0.1, "kl_penalty": "loss"},
}
BON_N = (1, 2, 4, 8, 16)
QUICK = {"timesteps": 2048, "labels": 6}


def _run_config(task: str, seed: int, quick: bool) -> dict[str, Any]:
    spec = {**TASKS[task], **(QUICK if quick else {})}
    t = spec["timesteps"]
    cfg: dict[str, Any] = {
        "task": task,
        "horizon": "fixed",
        "seed": seed,
        "algo": "ppo",
        "total_timesteps": t,
    }
    cfg |= {"eval_freq": max(t // 10, 256), "eval_episodes": 10, "final_eval_episodes": 10}
    if quick:
        cfg["hyperparams"] = {"n_steps": 64, "batch_size": 64, "n_epochs": 1, "n_envs": 2}
    return cfg


def prepare(task: str, seed: int, quick: bool, results: Path) -> dict[str, Any]:
    """The frozen proxy and the start of one task and seed; returns their paths and figures."""
    one_thread()
    from rlhf_gym import RLHF
    from rlhf_gym.agents.cloning import pretrained
    from rlhf_gym.agents.files import save_agent
    from rlhf_gym.algos.anchor import Anchor, sampled_episodes
    from rlhf_gym.tasks.registry import get_task

    folder = results / f"{task}-s{seed}"
    spec = {**TASKS[task], **(QUICK if quick else {})}
    overrides: dict[str, Any] = {"labels": spec["labels"], "horizon": "fixed", "seed": seed}
    if quick:
        overrides |= {"total_timesteps": 1024, "segment_length": 10, "feedback_rounds": 1}
    proxy = RLHF(task, **overrides).learn()
    proxy.save(folder / "proxy")
    episodes, bc_steps, noise = spec["demos"]
    hp = _run_config(task, seed, quick).get("hyperparams")
    start = pretrained(get_task(task), "ppo", episodes, bc_steps if not quick else 50, seed, noise, hp)
    save_agent(start, folder / "start.zip")  # with its pickle-free twin
    reference = Anchor(start.policy).policy  # type: ignore[arg-type]
    m = sampled_episodes(start, get_task(task), proxy.reward_model, reference, 10, seed=seed + 30_000)
    return {
        "reward_model": str(folder / "proxy" / "reward_model"),
        "start": str(folder / "start.zip"),
        "row": {"task": task, "seed": seed, "method": "start", "arm": "start", "step": 0, **_axes(m)},
    }


def _axes(m: dict[str, float]) -> dict[str, float]:
    return {"kl": m["kl"], "proxy_return": m["proxy_return"], "true_return": m["true_return"]}


def arm(task: str, seed: int, quick: bool, name: str, paths: dict[str, str]) -> list[dict[str, Any]]:
    """One PPO run from the start on the frozen proxy; a row per evaluation."""
    one_thread()
    from rlhf_gym import RLHF

    cfg = _run_config(task, seed, quick) | ARMS[name]
    run = RLHF(config=cfg, reward_model_checkpoint=paths["reward_model"], init_policy=paths["start"]).learn()
    rows = []
    for m in run.metrics:
        if "kl_from_init" in m:
            rows.append(
                {
                    "task": task,
                    "seed": seed,
                    "method": "single" if "ema" not in name.lower() else "ema",
                    "arm": name,
                    "step": m["timesteps"],
                    "final": bool(m.get("final")),
                    "kl": m["kl_from_init"],
                    "proxy_return": m["proxy_return"],
                    "true_return": m["sampled_true_return"],
                    "wall_seconds": m["wall_seconds"],
                }
            )
    return rows


def warp(task: str, seed: int, quick: bool, paths: dict[str, str]) -> list[dict[str, Any]]:
    """WARP from the start on the frozen proxy; a row per evaluated policy."""
    one_thread()
    from rlhf_gym.algos.warp import WARP

    cfg = _run_config(task, seed, quick)
    cfg |= {"eval_freq": 10**9, "total_timesteps": cfg["total_timesteps"] // 3}  # 3 iterations: T in all
    w = WARP(config=cfg, reward_model_checkpoint=paths["reward_model"], init_policy=paths["start"]).learn()
    return [
        {
            "task": task,
            "seed": seed,
            "method": "warp",
            "arm": f"WARP {r['kind']}",
            "step": r["iteration"],
            "index": r["index"],
            "final": r["kind"] == "merged" and r["iteration"] == w.warp.iterations,
            "kl": r["kl_from_init"],
            "proxy_return": r["proxy_return"],
            "true_return": r["sampled_true_return"],
            "wall_seconds": w.wall_seconds,
        }
        for r in w.table()
    ]


def best_of_n(task: str, seed: int, quick: bool, paths: dict[str, str]) -> list[dict[str, Any]]:
    """Best-of-N from the start under the frozen proxy (chunks of 25 steps), with the KL bound."""
    one_thread()
    import torch

    from rlhf_gym.agents.files import load_agent
    from rlhf_gym.agents.registry import sample_actions
    from rlhf_gym.algos.bon import evaluate_best_of_n
    from rlhf_gym.reward.model import RewardModel
    from rlhf_gym.tasks.registry import get_task
    from rlhf_gym.train.resolve import resolve_config

    # rebuilt from the preset and the run's config with the saved weights: nothing is unpickled
    agent = load_agent(paths["start"], get_task(task), resolve_config(_run_config(task, seed, quick)))
    model = RewardModel.load(paths["reward_model"], agent.observation_space, agent.action_space)
    torch.manual_seed(seed)

    def policy(obs: Any) -> Any:
        return sample_actions(agent.policy, obs)

    rows = []
    for n in BON_N if not quick else (1, 2):
        r = evaluate_best_of_n(get_task(task), policy, model, n, 25, 10 if not quick else 2, seed + 30_000)
        rows.append(
            {
                "task": task,
                "seed": seed,
                "method": "best-of-N",
                "arm": f"best-of-{n}",
                "step": n,
                "final": True,
                "kl": r["kl_bound"],
                "proxy_return": r["proxy_return_mean"],
                "true_return": r["true_return_mean"],
            }
        )
    return rows


def run_task_seed(overrides: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One task and seed of the study, every policy in turn (one worker): a summary and the rows."""
    import tempfile

    from publish import runner_summary

    task, seed, quick = overrides["task"], overrides["seed"], bool(overrides.get("quick"))
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:  # the proxy and the start: not published
        prepared = prepare(task, seed, quick, Path(tmp))
        paths = {k: prepared[k] for k in ("reward_model", "start")}
        rows = [prepared["row"], *warp(task, seed, quick, paths)]
        for name in ARMS:
            rows += arm(task, seed, quick, name, paths)
        rows += best_of_n(task, seed, quick, paths)
    return runner_summary(task, seed, t0), rows


def render(df: Any, meta: dict[str, Any], figure: Path | None) -> dict[str, str]:
    """The section, from every finished task and seed's rows."""
    from alignment_report import section
    from publish import metrics_rows

    rows = metrics_rows(df, meta)
    figures = figure.parent / "alignment" if figure is not None else None
    return {"RESULTS.md": section(rows, df, meta, figures)}


def _settings(task: str) -> dict[str, Any]:
    """The study's settings for ``task``, as JSON gives them back (lists, not tuples): part of each
    run's overrides, so a change of them reruns the runs they made."""
    import json

    study = {"spec": TASKS[task], "arms": ARMS, "best_of_n": BON_N, "quick": QUICK}
    return dict(json.loads(json.dumps(study)))


from publish import Publication  # noqa: E402 - publish.py imports this module only when asked

PUBLICATIONS = [
    Publication(
        "alignment",
        "Over-optimisation: KL anchors, WARP and best-of-N on a frozen learned reward",
        {task: {"task": task, "study": _settings(task)} for task in TASKS},
        10,
        render,
        runner=run_task_seed,
        smoke={"quick": True},
    )
]
