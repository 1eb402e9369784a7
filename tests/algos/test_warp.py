"""WARP: SLERP and LERP of task vectors, and a tiny end-to-end run on a frozen reward."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch
import yaml

from rlhf_gym.algos.warp import WARP, lerp, slerp
from rlhf_gym.cli.main import main
from rlhf_gym.config import WarpConfig
from tests.conftest import tiny_run

HP = {"n_steps": 32, "batch_size": 32, "n_epochs": 1, "n_envs": 2, "policy_kwargs": {"net_arch": [8]}}


def params(*values: float) -> dict[str, torch.Tensor]:
    return {"w": torch.tensor(values), "b": torch.tensor([values[0]])}


def test_slerp_of_identical_task_vectors_is_the_identity():
    init = params(0.5, -1.0, 2.0)
    theta = params(1.5, 0.0, -1.0)
    merged = slerp(init, [theta, theta])
    for k in init:
        torch.testing.assert_close(merged[k], theta[k])
    assert slerp(init, [theta])["w"].tolist() == theta["w"].tolist()


def test_slerp_follows_the_great_circle_and_lerp_the_chord():
    init = {"w": torch.zeros(2)}
    a, b = {"w": torch.tensor([2.0, 0.0])}, {"w": torch.tensor([0.0, 2.0])}
    merged = slerp(init, [a, b])["w"]
    torch.testing.assert_close(merged, torch.tensor([math.sqrt(2), math.sqrt(2)]))  # norm 2 kept
    torch.testing.assert_close(lerp(a, b, 0.5)["w"], torch.tensor([1.0, 1.0]))  # norm shrinks
    torch.testing.assert_close(lerp(a, b, 0.0)["w"], a["w"])
    torch.testing.assert_close(lerp(a, b, 1.0)["w"], b["w"])


def test_slerp_merges_three_vectors_iteratively_and_handles_degenerate_ones():
    init = {"w": torch.zeros(3)}
    basis = [{"w": torch.eye(3)[i]} for i in range(3)]
    merged = slerp(init, basis)["w"]
    # the third joins the merge of the first two (90 degrees apart) with weight 1/3
    half = math.sqrt(0.5) * math.sin(math.pi / 3)
    torch.testing.assert_close(merged, torch.tensor([half, half, math.sin(math.pi / 6)]))
    assert merged.norm().item() == pytest.approx(1.0, abs=1e-5)  # orthogonal unit vectors stay unit
    zero = {"w": torch.zeros(3)}
    torch.testing.assert_close(slerp(init, [zero, basis[0]])["w"], 0.5 * basis[0]["w"])
    opposite = {"w": -basis[0]["w"]}
    torch.testing.assert_close(slerp(init, [basis[0], opposite])["w"], torch.zeros(3))
    with pytest.raises(ValueError, match="at least one policy"):
        slerp(init, [])


def test_slerp_is_taken_per_tensor_from_the_shared_start():
    init = {"a": torch.ones(2), "b": torch.zeros(2)}
    p1 = {"a": torch.tensor([2.0, 1.0]), "b": torch.tensor([3.0, 0.0])}
    p2 = {"a": torch.tensor([1.0, 2.0]), "b": torch.tensor([3.0, 0.0])}
    merged = slerp(init, [p1, p2])
    torch.testing.assert_close(merged["a"], torch.ones(2) + torch.full((2,), math.sqrt(0.5)))
    torch.testing.assert_close(merged["b"], torch.tensor([3.0, 0.0]))


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("eta", 0.0, "eta must be in"),
        ("runs", 0, "runs must be a positive integer"),
        ("merge", "ties", "unknown warp merge 'ties'"),
        ("front", (0.5, 1.5), "front rates must be in"),
        ("ema_rate", 2.0, "ema_rate must be in"),
    ],
)
def test_bad_warp_settings_are_named(field, value, message):
    with pytest.raises(ValueError, match=message):
        WarpConfig(**{field: value})


@pytest.fixture(scope="module")
def reward_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("rm")
    tiny_run(hyperparams=HP).learn().save(out)
    return str(out / "reward_model")


def test_warp_needs_a_frozen_reward_and_a_policy_gradient_agent(reward_model):
    with pytest.raises(ValueError, match="frozen learned reward"):
        WARP("CartPole-v1")
    with pytest.raises(ValueError, match="WARP trains ppo or a2c"):
        WARP("CartPole-v1", reward_model_checkpoint=reward_model, algo="dqn")


def test_warp_end_to_end(reward_model, tmp_path):
    warp = WARP(
        "CartPole-v1",
        warp={"iterations": 2, "runs": 2, "front": (0.0, 0.5, 1.0), "eval_episodes": 2},
        horizon="fixed",
        reward_model_checkpoint=reward_model,
        total_timesteps=128,
        hyperparams=HP,
        eval_freq=100_000,
        final_eval_episodes=2,
    ).learn()
    rows = warp.table()
    kinds = [(r["kind"], r["iteration"], r["index"]) for r in rows]
    assert kinds == [
        ("run", 1, 0),
        ("run", 1, 1),
        ("merged", 1, 1.0),
        ("init", 1, 0.3),
        ("run", 2, 0),
        ("run", 2, 1),
        ("merged", 2, 1.0),
        ("init", 2, 0.3),
        ("front", 2, 0.0),
        ("front", 2, 0.5),
        ("front", 2, 1.0),
    ]
    front = {r["index"]: r for r in rows if r["kind"] == "front"}
    assert front[0.0]["kl_from_init"] == 0.0  # the start itself
    last_merge = next(r for r in rows if r["kind"] == "merged" and r["iteration"] == 2)
    assert front[1.0] == {**last_merge, "kind": "front"}  # the same policy, evaluated on the same seeds
    assert all(r["kl_from_init"] > 0 for r in rows if r["kind"] in ("run", "merged"))
    out = warp.save(tmp_path / "warp")
    with open(out / "warp.csv") as f:
        assert len(list(csv.DictReader(f))) == len(rows)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["merged"]["kl_from_init"] == pytest.approx(last_merge["kl_from_init"])
    assert (out / "merged.zip").is_file() and (out / "config.yaml").is_file()


def test_warp_command_writes_its_folder(reward_model, tmp_path, capsys):
    config = tmp_path / "warp.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "hyperparams": HP,
                "eval_freq": 100_000,
                "final_eval_episodes": 2,
                "warp": {"front": [0.0, 1.0], "eval_episodes": 2},
            }
        )
    )
    argv = ["warp", "--task", "CartPole-v1", "--horizon", "fixed", "--reward-model", reward_model]
    argv += ["--iterations", "1", "--runs", "2", "--timesteps", "64", "--config", str(config)]
    assert main([*argv, "--out", str(tmp_path / "w"), "-q"]) == 0
    assert "merged policy true return" in capsys.readouterr().out
    with open(tmp_path / "w" / "warp.csv") as f:
        assert [r["kind"] for r in csv.DictReader(f)] == ["run", "run", "merged", "init", "front", "front"]
    assert main([*argv, "--eta", "0", "-q"]) == 2
    assert "eta must be in (0, 1]" in capsys.readouterr().err


def test_slerp_averages_observation_statistics_and_never_makes_a_variance_negative():
    init = {"features_extractor.var": torch.ones(3), "action_net.weight": torch.zeros(2)}
    finals = [
        {
            "features_extractor.var": torch.tensor([0.05, 60.0, 1.0]),
            "action_net.weight": torch.tensor([1.0, 0.0]),
        },
        {
            "features_extractor.var": torch.tensor([0.05, 1.0, 60.0]),
            "action_net.weight": torch.tensor([0.0, 1.0]),
        },
    ]
    merged = slerp(init, finals)
    torch.testing.assert_close(merged["features_extractor.var"], torch.tensor([0.05, 30.5, 30.5]))
    # the weights are SLERPed: two orthogonal unit task vectors merge to norm 1, not 1/sqrt(2)
    assert float(merged["action_net.weight"].norm()) == pytest.approx(1.0)
