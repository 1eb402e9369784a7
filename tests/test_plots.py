"""Figures and the markdown report from a hand-made results table with known numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rlhf_gym.plots import _legend, _wrap, auc, labels_to_reach, load_table, plot, report


def curve(key, arm, seed, normalised, teacher="oracle", reward="learned", labels=(10, 20, 30)):
    fixed = {
        "key": key,
        "arm": arm,
        "ceiling": "c",
        "status": "done",
        "task": "CartPole-v1",
        "teacher": teacher,
    }
    fixed |= {"reward": reward, "query_strategy": "uniform", "feedback": "comparisons", "seed": seed}
    last = len(normalised) - 1
    return [
        fixed
        | {"timesteps": 1000 * (i + 1), "labels_used": labels[i], "point": "final" if i == last else "eval"}
        | {"true_return": 500 * n, "normalised_return": n, "wall_seconds": 10.0}
        for i, n in enumerate(normalised)
    ]


@pytest.fixture
def table():
    rows = (
        curve("a0", "teacher=oracle", 0, [0.2, 0.95, 1.0])
        + curve("a1", "teacher=oracle", 1, [0.1, 0.5, 0.92])
        + curve("b0", "teacher=stoch", 0, [0.0, 0.2, 0.4], teacher="stoch")
        + curve("b1", "teacher=stoch", 1, [0.0, 0.3, 0.6], teacher="stoch")
        + curve("c0", "ceiling (true reward)", 0, [0.5, 0.9, 1.0], reward="true", labels=(0, 0, 0))
    )
    table = pd.DataFrame(rows)
    table["labels"] = 30  # the config's budget
    return table


def test_labels_to_reach_and_auc_in_closed_form(table):
    oracle = table[table["arm"] == "teacher=oracle"]
    assert labels_to_reach(oracle) == 25.0  # seed 0 reaches 0.9 at 20 labels, seed 1 at 30
    assert np.isnan(labels_to_reach(table[table["arm"] == "teacher=stoch"]))  # never
    # trapezoid over timesteps 1000..3000 over the range: seed 0 (0.2+2*0.95+1)/4, seed 1 (0.1+1+0.92)/4
    assert auc(oracle) == pytest.approx(np.median([(0.2 + 1.9 + 1.0) / 4, (0.1 + 1.0 + 0.92) / 4]))


def test_report_lists_controls_first_with_medians_and_iqr(table):
    text = report(table, "demo", command="rlhf-gym sweep x.yaml")
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    assert lines[1].startswith("| ceiling (true reward) | 1 | 0 | 500 [500, 500] | 1 [1, 1] | - |")
    oracle = next(line for line in lines if line.startswith("| teacher=oracle"))
    assert "| 2 | 0 | 480 [470, 490] | 0.96 [0.94, 0.98] | 25 |" in oracle
    assert "Command: `rlhf-gym sweep x.yaml`" in text


def test_plot_draws_what_the_sweep_varied(table, tmp_path):
    names = sorted(p.name for p in plot(table, tmp_path))
    assert names == ["curves_labels.png", "curves_steps.png", "teachers.png"]  # teachers vary, queries do not
    assert all((tmp_path / n).stat().st_size > 5000 for n in names)
    table.loc[table["teacher"] == "stoch", "labels"] = 60  # now the budget varies too
    assert "budget.png" in [p.name for p in plot(table, tmp_path / "more")]
    table["labels"] = 30
    table.loc[table["teacher"] == "stoch", "task"] = "Pong-v0"  # budgets and teachers differ only by task
    table.loc[table["task"] == "Pong-v0", "labels"] = 60
    assert sorted(p.name for p in plot(table, tmp_path / "tasks")) == [
        "curves_labels.png",
        "curves_steps.png",
    ]


def test_a_sweep_over_tasks_wraps_its_facets_and_names_arms_without_the_task():
    table = pd.DataFrame(
        {
            "task": ["CartPole-v1", "Pong-v0", "Pong-v0", "Pong-v0"],
            "arm": [
                "task=CartPole-v1",
                "task=Pong-v0",
                "ceiling (true reward) task=Pong-v0",
                "labels=20,task=Pong-v0",
            ],
        }
    )
    assert _legend(table).tolist() == [
        "learned reward",
        "learned reward",
        "ceiling (true reward)",
        "labels=20",
    ]
    assert _wrap(table) is None
    assert _wrap(pd.DataFrame({"task": [f"T{i}" for i in range(10)]})) == 5  # two rows of five


def test_load_table_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no results at"):
        load_table(tmp_path)
    pd.DataFrame({"x": [1]}).to_csv(tmp_path / "other.csv")
    with pytest.raises(ValueError, match="not a sweep results table: it lacks arm"):
        load_table(tmp_path / "other.csv")
