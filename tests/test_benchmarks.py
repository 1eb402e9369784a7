import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_put_section_replaces_its_own_block_and_appends_new_ones(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from report import HEADER, put_section

    path = tmp_path / "RESULTS.md"
    put_section(path, "a", "<!-- a:start -->\nfirst\n<!-- a:end -->")
    put_section(path, "b", "<!-- b:start -->\nother\n<!-- b:end -->")
    put_section(path, "a", "<!-- a:start -->\nsecond\n<!-- a:end -->")
    text = path.read_text()
    assert text.startswith(HEADER.rstrip())
    assert "second" in text and "first" not in text and "other" in text
    assert text.index("second") < text.index("other")  # replaced in place, not appended


def test_warp_domination_check():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import pandas as pd
    from alignment_report import domination

    rows = [
        {"task": "T", "seed": 0, "method": "warp", "final": True, "kl": 1.0, "true_return": 5.0},
        {"task": "T", "seed": 0, "method": "single", "final": True, "kl": 2.0, "true_return": 6.0},
        {"task": "T", "seed": 0, "method": "ema", "final": False, "kl": 0.5, "true_return": 5.5},
        {"task": "U", "seed": 0, "method": "warp", "final": True, "kl": 1.0, "true_return": 5.0},
        {"task": "U", "seed": 0, "method": "single", "final": True, "kl": 1.0, "true_return": 5.5},
    ]
    checks = domination(pd.DataFrame(rows))
    assert [(c["task"], c["by_final"], c["by_checkpoint"]) for c in checks] == [
        ("T", False, True),
        ("U", True, True),
    ]


@pytest.mark.slow
def test_the_alignment_study_is_a_publication_that_runs_end_to_end_and_resumes(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import publish

    pub = publish.publications()["alignment"]
    results = tmp_path / "results"
    assert publish.run(pub, results, seeds=1, workers=1, smoke=True, only=["CartPole-v1"]) == 0
    files = {"RESULTS.md": tmp_path / "RESULTS.md", "README.md": tmp_path / "README.md"}
    assert publish.render(pub, results, files, figures=True, allow_mixed=False)
    text = files["RESULTS.md"].read_text()
    assert "WARP, last merge" in text and "best-of-2" in text
    assert "| CartPole-v1 | 1 | " in text  # the domination count of its one seed
    assert "**Partial:** 0 to 1 of 10 seeds per arm have run so far" in text  # two tasks have not run
    assert (tmp_path / "alignment" / "CartPole-v1.png").stat().st_size > 1000
    mtime = (results / "CartPole-v1" / "s0" / "summary.json").stat().st_mtime_ns
    assert publish.run(pub, results, seeds=1, workers=1, smoke=True, only=["CartPole-v1"]) == 0
    assert (results / "CartPole-v1" / "s0" / "summary.json").stat().st_mtime_ns == mtime


def test_cpl_diagnosis_labels_the_same_pairs_three_ways(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from cpl_diagnosis import SHUFFLED, offline_pairs
    from stable_baselines3 import PPO

    PPO("MlpPolicy", "CartPole-v1", seed=0, device="cpu").save(tmp_path / "critic.zip")
    critic = str(tmp_path / "critic.zip")
    oracle, regret, shuffled = (offline_pairs(0, t, 40, critic) for t in ("oracle", "regret", SHUFFLED))

    def starts(feedback):
        return [(c.query.first.obs[0].tolist(), c.query.second.obs[0].tolist()) for c in feedback]

    assert starts(oracle) == starts(regret) == starts(shuffled)
    assert sorted(c.label for c in shuffled) == sorted(c.label for c in oracle)
    assert [c.label for c in shuffled] != [c.label for c in oracle]
    assert {c.teacher for c in regret} == {"regret"}
    ties = [c.is_tie for c in oracle]
    assert any(ties) and not all(ties)  # expert segments that both stay up tie; others do not


@pytest.mark.slow
def test_the_cpl_diagnosis_is_a_publication_with_every_route_of_a_seed(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import publish

    pub = publish.publications()["cpl_diagnosis"]
    results = tmp_path / "results"
    assert publish.run(pub, results, seeds=1, workers=1, smoke=True) == 0
    files = {"RESULTS.md": tmp_path / "RESULTS.md", "README.md": tmp_path / "README.md"}
    assert publish.render(pub, results, files, figures=True, allow_mixed=False)
    text = files["RESULTS.md"].read_text()
    for route in ("| online CPL | 6 |", "| offline CPL, noise 0-1 | 10 |", "| offline CPL, random | 10 |"):
        assert route in text
    assert (tmp_path / "cpl_diagnosis.png").stat().st_size > 1000
