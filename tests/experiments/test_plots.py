"""Figures from a hand-made results table with known numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rlhf_gym.experiments.plots import _along, _legend, _on_label_grid, _wrap, plot, profiles


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


def two_teachers() -> pd.DataFrame:
    """Two seeds of an oracle and a stoch teacher, and a ceiling: three evaluations each."""
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


@pytest.fixture
def table():
    return two_teachers()


def test_plot_draws_what_the_sweep_varied(table, tmp_path):
    names = sorted(p.name for p in plot(table, tmp_path))
    # teachers vary, queries do not
    assert names == ["curves_labels.png", "curves_steps.png", "profiles.png", "teachers.png"]
    assert all((tmp_path / n).stat().st_size > 5000 for n in names)
    stoch = table["teacher"] == "stoch"
    table.loc[stoch, "labels"] = 60  # now the budget varies too, in the grid: arm names say so
    table.loc[stoch, "arm"] = "teacher=stoch labels=60"
    table.loc[table["teacher"] == "oracle", "arm"] = "teacher=oracle labels=30"
    assert "budget.png" in [p.name for p in plot(table, tmp_path / "more")]
    table.loc[stoch, "query_strategy"] = "disagreement"  # follows from another grid value: not drawn
    table.loc[stoch, "arm"] = "algo=cpl"
    assert "queries.png" not in [p.name for p in plot(table, tmp_path / "cpl")]
    table["labels"] = 30
    table.loc[table["teacher"] == "stoch", "task"] = "Pong-v0"  # budgets and teachers differ only by task
    table.loc[table["task"] == "Pong-v0", "labels"] = 60
    assert sorted(p.name for p in plot(table, tmp_path / "tasks")) == [
        "curves_labels.png",
        "curves_steps.png",
        "profiles.png",
    ]


def test_a_sweep_over_tasks_wraps_its_facets_and_names_arms_without_the_task():
    arms = [
        "task=CartPole-v1",
        "task=Pong-v0,labels=10",
        "ceiling (true reward) task=Pong-v0",
        "task=Pong-v0,labels=20",
    ]
    table = pd.DataFrame(
        {
            "task": ["CartPole-v1"] + ["Pong-v0"] * 3,
            "arm": arms,
            "reward": ["learned", "learned", "true", "learned"],
        }
    )
    legend, style = _legend(table)
    assert legend["arm"].tolist() == [
        "learned reward",
        "labels=10",
        "ceiling (true reward)",
        "labels=20",
    ]
    assert style is None
    assert _wrap(table) is None
    assert _wrap(pd.DataFrame({"task": [f"T{i}" for i in range(10)]})) == 5  # two rows of five


def test_many_arms_of_two_grid_items_split_into_colour_and_line_style():
    arms = [f"teacher={t} labels={n}" for t in ("oracle", "stoch", "skip") for n in (25, 50, 100)]
    table = pd.DataFrame({"task": "CartPole-v1", "arm": [*arms, "ceiling (true reward)"]})
    table["reward"] = ["learned"] * 9 + ["true"]
    legend, style = _legend(table)
    assert style == "labels"
    assert legend["arm"].tolist()[:4] == ["teacher=oracle"] * 3 + ["teacher=stoch"]
    assert legend["arm"].iloc[-1] == "ceiling (true reward)"
    assert [*legend["labels"].tolist()[:3], legend["labels"].iloc[-1]] == ["25", "50", "100", "no feedback"]
    assert _legend(table.iloc[:8])[1] is None  # eight or fewer arms keep their names


def test_a_figure_along_a_grid_field_colours_the_other_grid_values():
    arms = [f"teacher={t} labels={n}" for t in ("oracle", "stoch") for n in (25, 50)]
    table = pd.DataFrame({"task": "CartPole-v1", "arm": arms, "reward": "learned"})
    table["teacher"], table["labels"] = ["oracle", "oracle", "stoch", "stoch"], [25, 50, 25, 50]
    data, hue = _along(table, "teacher")
    assert hue == "arm" and data["arm"].tolist() == ["labels=25", "labels=50"] * 2
    data, hue = _along(table, "labels")
    assert data["arm"].tolist() == ["teacher=oracle"] * 2 + ["teacher=stoch"] * 2
    assert _along(table, "query_strategy") == (None, None)  # not a column here
    table["teacher"] = ["oracle", "stoch", "skip", "equal"]
    table["arm"] = [f"task=CartPole-v1,teacher={t}" for t in table["teacher"]]
    assert _along(table, "teacher")[1] is None  # nothing else varies: one colour
    table["arm"] = ["algo=ppo", "algo=cpl", "algo=cpl,labels=500", "algo=ppo"]
    assert _along(table, "labels") == (None, None)  # only one arm names a budget


def test_runs_with_labels_at_different_counts_share_one_grid():
    one = curve("a0", "feedback=ratings", 0, [0.2, 0.6, 1.0], labels=(0, 50, 100))
    two = curve("a1", "feedback=ratings", 1, [0.0, 0.5], labels=(20, 70))
    grid = _on_label_grid(pd.DataFrame(one + two), points=6)  # 0, 20, 40, 60, 80, 100 labels
    at = grid.pivot_table(index="labels_used", columns="key", values="true_return")
    assert at.index.tolist() == [0, 20, 40, 60, 80, 100]
    assert at["a0"].tolist() == pytest.approx([100, 180, 260, 340, 420, 500])  # 500 * normalised, linear
    assert at["a1"].dropna().to_dict() == pytest.approx(
        {20: 0.0, 40: 100.0, 60: 200.0}
    )  # only inside its range
    assert set(grid["arm"]) == {"feedback=ratings"} and set(grid["seed"]) == {0, 1}


def test_performance_profiles_draw_one_facet_per_task(table, tmp_path):
    finals = table[table["point"] == "final"]
    path = profiles(finals, tmp_path)
    assert path == tmp_path / "profiles.png" and path.stat().st_size > 5000
    assert profiles(finals.assign(normalised_return=np.nan), tmp_path / "none") is None  # nothing to draw
