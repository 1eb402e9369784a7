"""The markdown report from a hand-made results table with known numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rlhf_gym.experiments.report import auc, labels_to_reach, one_field_apart, report
from tests.experiments.test_plots import two_teachers


@pytest.fixture
def table():
    table = two_teachers()
    table["platform"], table["code_version"] = "CPU A (AVX2 kernels)", "git:1a2b3c4d5e6f"
    return table


def rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("| ")]


def test_labels_to_reach_and_auc_in_closed_form(table):
    oracle = table[table["arm"] == "teacher=oracle"]
    assert labels_to_reach(oracle) == 25.0  # seed 0 reaches 0.9 at 20 labels, seed 1 at 30
    assert np.isnan(labels_to_reach(table[table["arm"] == "teacher=stoch"]))  # never
    # trapezoid over timesteps 1000..3000 over the range: seed 0 (0.2+2*0.95+1)/4, seed 1 (0.1+1+0.92)/4
    assert auc(oracle) == pytest.approx(np.median([(0.2 + 1.9 + 1.0) / 4, (0.1 + 1.0 + 0.92) / 4]))


def test_report_lists_controls_first_with_medians_iqr_and_iqm_with_its_ci(table):
    text = report(table, "demo", command="rlhf-gym sweep x.yaml")
    lines = rows(text)
    assert "| normalised, median [IQR] | normalised IQM | 95% CI |" in lines[0]
    # one seed: its IQM, and no CI
    assert lines[1].startswith("| ceiling (true reward) | 1 | 0 | 500 [500, 500] | 1 [1, 1] | 1 | - | - |")
    oracle = next(line for line in lines if line.startswith("| teacher=oracle"))
    # two seeds, 1.0 and 0.92: IQM is their mean; the bootstrap's resamples range from both
    # 0.92 to both 1.0, so the percentile CI's ends are those
    assert "| 2 | 0 | 480 [470, 490] | 0.96 [0.94, 0.98] | 0.96 | [0.92, 1] | 25 |" in oracle
    assert "Command: `rlhf-gym sweep x.yaml`" in text
    assert "Code version `git:1a2b3c4d5e6f`; platform `CPU A (AVX2 kernels)`." in text
    assert report(table, "demo") == report(table, "demo")  # seeded: the same CIs every time


def test_report_ranks_arms_only_where_cis_leave_no_overlap(table):
    text = report(table)
    # every oracle run beats every stoch run: P = 1 with a CI of [1, 1]
    assert "| teacher | teacher=oracle | teacher=stoch | 1 | [1, 1] | teacher=oracle better |" in text
    assert "Highest IQM: teacher=oracle, 0.96 [0.92, 1]; its CI lies above every other arm's." in text
    final = table["point"] == "final"
    table.loc[final & (table["key"] == "b1"), "normalised_return"] = 1.0  # stoch: 0.4 and 1.0
    text = report(table)
    assert "its CI overlaps that of teacher=stoch, so no ranking among them is claimed" in text
    assert "| teacher | teacher=oracle | teacher=stoch | 0.625 |" in text  # (2 + 0.5) / 4 pairs
    assert "no ranking (CI includes 0.5) |" in text
    assert "better" not in text


def test_report_refuses_mixed_code_versions_or_platforms_unless_allowed(table):
    table.loc[table["key"] == "a1", "platform"] = "CPU B (AVX512 kernels)"
    with pytest.raises(ValueError, match=r"mixes 2 platforms \(`CPU A \(AVX2 kernels\)`, `CPU B"):
        report(table)
    table.loc[table["key"] == "b1", "code_version"] = None  # a run from before versions were recorded
    with pytest.raises(ValueError, match=r"2 code versions \(`git:1a2b3c4d5e6f`, `unrecorded`\) and 2 plat"):
        report(table)
    text = report(table, allow_mixed=True)
    warning = next(line for line in text.splitlines() if line.startswith("**Mixed results:**"))
    assert "2 code versions" in warning and "2 platforms" in warning
    assert text.index(warning) < text.index("| arm |")  # above the table


def test_a_sweep_over_tasks_gets_a_table_across_tasks(table):
    pong = table.assign(
        task="Pong-v0",
        key=table["key"] + "p",
        arm=table["arm"].where(table["reward"] != "learned", table["arm"] + " task=Pong-v0"),
    )
    text = report(pd.concat([table, pong], ignore_index=True))
    assert "### All tasks" in text
    across = rows(text[text.index("### All tasks") :])
    oracle = next(line for line in across if line.startswith("| teacher=oracle |"))
    assert oracle.startswith("| teacher=oracle | 2 | 4 | 0.96 |")  # 2 tasks, 4 runs
    assert any(line.startswith("| teacher | teacher=oracle | teacher=stoch | 1 |") for line in across)


def test_arms_one_field_apart():
    arms = ["teacher=oracle q=uniform", "teacher=stoch q=uniform", "teacher=stoch q=entropy"]
    arms += ["teacher=oracle q=entropy", "task=A,labels=10 q=uniform", "ceiling (true reward)"]
    assert one_field_apart(arms) == [
        ("teacher", arms[0], arms[1]),
        ("q", arms[0], arms[3]),
        ("q", arms[1], arms[2]),
        ("teacher", arms[2], arms[3]),
    ]
