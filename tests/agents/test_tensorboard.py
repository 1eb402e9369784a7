"""TensorBoard logs: the agent's figures and the RLHF metrics, one event folder per run."""

import sys

import numpy as np
import pytest

from rlhf_gym import RLHF
from rlhf_gym.agents.tensorboard import record_metrics, tensorboard_logger
from tests.train.test_rlhf import TINY

events = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def scalars(folder):
    read = events.EventAccumulator(str(folder))
    read.Reload()
    return {tag: [(e.step, e.value) for e in read.Scalars(tag)] for tag in read.Tags()["scalars"]}


def test_a_run_logs_the_agents_figures_and_the_rlhf_metrics_and_the_next_run_gets_a_new_folder(tmp_path):
    run = RLHF("CartPole-v1", labels=10, seed=0, tensorboard_log=str(tmp_path), **TINY).learn()
    RLHF("CartPole-v1", labels=10, seed=1, tensorboard_log=str(tmp_path), **TINY).learn()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["CartPole-v1_ppo_1", "CartPole-v1_ppo_2"]
    logged = scalars(tmp_path / "CartPole-v1_ppo_1")
    assert any(tag.startswith("train/") for tag in logged)  # SB3's own figures
    # every metrics row's numbers, at the row's timesteps
    labels = [(m["timesteps"], m["labels_used"]) for m in run.metrics]
    assert [(step, round(value)) for step, value in logged["rlhf/labels_used"]] == labels
    evaluated = [(m["timesteps"], m["true_return_mean"]) for m in run.metrics if "true_return_mean" in m]
    assert [step for step, _ in logged["rlhf/true_return_mean"]] == [step for step, _ in evaluated]
    assert [v for _, v in logged["rlhf/true_return_mean"]] == pytest.approx([v for _, v in evaluated])
    assert "rlhf/reward_model_pair_accuracy" in logged


def test_tensorboard_log_without_the_package_says_which_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import tensorboard now raises ImportError
    with pytest.raises(ImportError, match=r"rlhf-gym\[tensorboard\]"):
        tensorboard_logger(tmp_path, "CartPole-v1_ppo")
    assert not any(tmp_path.iterdir())


def test_a_task_id_with_a_slash_gives_one_folder_not_two(tmp_path):
    tensorboard_logger(tmp_path, "ALE/Pong-v5_ppo")
    assert [p.name for p in tmp_path.iterdir()] == ["ALE_Pong-v5_ppo_1"]


def test_numpy_numbers_are_logged_and_what_is_not_a_finite_number_is_left_out(tmp_path):
    logger = tensorboard_logger(tmp_path, "t")
    row = {"timesteps": 5, "a": np.float32(1.5), "b": np.int64(2), "c": float("nan"), "d": "text", "e": None}
    record_metrics(logger, row | {"f": np.bool_(True), "g": True, "h": [1.0]})
    logger.close()
    assert scalars(tmp_path / "t_1") == {"rlhf/a": [(5, 1.5)], "rlhf/b": [(5, 2.0)]}
