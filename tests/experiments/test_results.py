"""The tidy table of a sweep folder, from hand-written run folders with known numbers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from rlhf_gym.config import RunConfig
from rlhf_gym.experiments.grid import Run, run_key
from rlhf_gym.experiments.results import load_table, provenance, results_table
from rlhf_gym.experiments.sweep import record
from rlhf_gym.schema import save_yaml, to_dict
from rlhf_gym.train.rlhf import resolve_config


def write_run(out, arm, returns, ceiling="c", code_version="git:1a2b3c4d5e6f", **overrides):
    """A finished run whose evaluations gave ``returns`` (the last one final)."""
    data = to_dict(resolve_config({"task": "CartPole-v1", "horizon": "fixed", **overrides}))
    run = Run(run_key(data), arm, data, ceiling)
    metrics = [{"timesteps": 1000 * (i + 1), "env_steps": 1000 * (i + 1), "labels_used": 10 * (i + 1),
                "effort_seconds": 40.0 * (i + 1), "wall_seconds": float(i + 1), "true_return_mean": r}
               for i, r in enumerate(returns)]  # fmt: skip
    metrics.insert(
        1, {"timesteps": 1500, "labels_used": 15, "reward_model_accuracy": 0.8, "reward_correlation": 0.7}
    )
    metrics[-1]["final"] = True
    summary = {"seed": data["seed"], "platform": "CPU (AVX2 kernels); torch 2", "code_version": code_version}
    record(out, run, {"status": "done", "summary": summary, "metrics": metrics})
    return run


def test_rows_columns_and_normalised_return(tmp_path):
    (tmp_path / "random_returns.json").write_text(json.dumps({"CartPole-v1|fixed": 20.0}))
    write_run(tmp_path, "ceiling (true reward)", [100.0, 420.0], reward="true", seed=0)
    write_run(tmp_path, "ceiling (true reward)", [100.0, 380.0], reward="true", seed=1)
    write_run(tmp_path, "other ceiling", [100.0, 20.0], ceiling="d", reward="true", seed=2)
    learned = write_run(tmp_path, "oracle", [60.0, 300.0], labels=20)
    table = results_table(tmp_path)
    rows = table[table["key"] == learned.key].sort_values("timesteps")
    assert rows["point"].tolist() == ["eval", "final"]
    assert rows["true_return"].tolist() == [60.0, 300.0]
    # ceiling: the median final return of the true-reward runs, 400; random 20
    assert rows["normalised_return"].tolist() == pytest.approx([40 / 380, 280 / 380])
    # the reward-model figures of the last fit before each point
    assert np.isnan(rows["reward_model_accuracy"].iloc[0]) and rows["reward_model_accuracy"].iloc[1] == 0.8
    assert rows["labels_used"].tolist() == [10, 20] and rows["labels"].tolist() == [20, 20]  # used, budget
    assert set(rows["platform"]) == {"CPU (AVX2 kernels); torch 2"}  # from summary.json
    assert set(rows["code_version"]) == {"git:1a2b3c4d5e6f"}
    assert len(results_table(tmp_path, keys=[learned.key])) == 2  # a sweep's own runs only
    assert {"reward_model.ensemble_size", "hyperparams.n_steps", "teacher_params.beta"} - set(table) == {
        "teacher_params.beta"
    }  # nested fields become dotted columns; an empty mapping gives none


def test_a_failed_run_is_one_row_with_its_error(tmp_path):
    (tmp_path / "random_returns.json").write_text(json.dumps({"CartPole-v1|fixed": 20.0}))
    data = to_dict(resolve_config(RunConfig(task="CartPole-v1", horizon="fixed")))
    run = Run(run_key(data), "broken", data, "c")
    record(
        tmp_path,
        run,
        {"status": "failed", "error": "ValueError: boom", "traceback": "Traceback ...", "wall_seconds": 0.5},
    )
    table = results_table(tmp_path)
    assert len(table) == 1
    row = table.iloc[0]
    assert (row["status"], row["error"], row["point"]) == ("failed", "ValueError: boom", "final")
    assert np.isnan(row["true_return"])


def test_an_empty_sweep_gives_an_empty_table(tmp_path):
    (tmp_path / "runs").mkdir()
    assert results_table(tmp_path).empty
    save_yaml(RunConfig(), tmp_path / "unused.yaml")  # stray files beside runs/ are ignored
    assert results_table(tmp_path).empty


def test_a_config_column_of_mixed_types_is_text_and_writes_to_parquet(tmp_path):
    (tmp_path / "random_returns.json").write_text(json.dumps({"CartPole-v1|fixed": 20.0}))
    write_run(tmp_path, "number", [100.0], reward="true", seed=0, hyperparams={"learning_rate": 0.001})
    write_run(
        tmp_path, "schedule", [200.0], reward="true", seed=1, hyperparams={"learning_rate": "lin_0.001"}
    )
    table = results_table(tmp_path)
    assert sorted(table["hyperparams.learning_rate"]) == ["0.001", "lin_0.001"]
    table.to_parquet(tmp_path / "results.parquet", index=False)  # raised ArrowInvalid before
    assert table["true_return"].dtype == float  # metric columns stay numbers


def test_load_table_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no results at"):
        load_table(tmp_path)
    pd.DataFrame({"x": [1]}).to_csv(tmp_path / "other.csv")
    with pytest.raises(ValueError, match="not a sweep results table: it lacks arm"):
        load_table(tmp_path / "other.csv")


def test_load_table_refuses_mixed_code_versions_unless_allowed(tmp_path):
    (tmp_path / "random_returns.json").write_text(json.dumps({"CartPole-v1|fixed": 20.0}))
    write_run(tmp_path, "ceiling (true reward)", [100.0, 420.0], reward="true", seed=0)
    write_run(tmp_path, "ceiling (true reward)", [100.0, 380.0], reward="true", seed=1, code_version="src:0a")
    results_table(tmp_path).to_parquet(tmp_path / "results.parquet", index=False)
    with pytest.raises(
        ValueError, match=r"results.parquet mixes 2 code versions \(`git:1a2b3c4d5e6f`, `src:0a`"
    ):
        load_table(tmp_path)
    table = load_table(tmp_path, allow_mixed=True)
    assert provenance(table, allow_mixed=True)[0].startswith("**Mixed results:** these runs come from 2 code")
    one = table[table["code_version"] == "src:0a"]
    assert provenance(one) == ["Code version `src:0a`; platform `CPU (AVX2 kernels); torch 2`."]


def test_a_failed_run_does_not_make_a_table_mixed():
    import pandas as pd

    from rlhf_gym.experiments.results import provenance

    table = pd.DataFrame(
        {"status": ["done", "failed"], "code_version": ["git:a", None], "platform": ["cpu", None]}
    )
    assert provenance(table) == ["Code version `git:a`; platform `cpu`."]
