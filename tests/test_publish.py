"""The published figures are the rendering of the committed raw results, and nothing else."""

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def test_results_md_and_readme_are_the_rendering_of_the_committed_results(tmp_path):
    import publish

    files = {"RESULTS.md": tmp_path / "RESULTS.md", "README.md": tmp_path / "README.md"}
    shutil.copy(ROOT / "benchmarks" / "RESULTS.md", files["RESULTS.md"])
    shutil.copy(ROOT / "README.md", files["README.md"])
    rendered = [
        name
        for name, pub in publish.publications().items()
        if publish.render(pub, publish.RESULTS / name, files, figures=False, allow_mixed=False)
    ]
    assert "label_efficiency" in rendered, "the headline publication has no committed results"
    for key, path in files.items():
        published = (ROOT / "benchmarks" / key if key == "RESULTS.md" else ROOT / key).read_text()
        assert path.read_text() == published, (
            f"{key} differs from its rendering: run python benchmarks/publish.py --render"
        )


def test_every_section_between_markers_belongs_to_a_publication_with_results():
    import publish

    text = (ROOT / "benchmarks" / "RESULTS.md").read_text() + (ROOT / "README.md").read_text()
    import re

    names = set(re.findall(r"<!-- (\w+):start -->", text))
    with_results = {n for n in publish.publications() if (publish.RESULTS / n / "meta.json").is_file()}
    assert names <= with_results | {"label_app"}, (
        f"sections without committed results: {names - with_results}"
    )


def test_a_run_of_other_code_platform_or_settings_is_not_finished(tmp_path):
    import publish

    made = {"code_version": "git:a", "platform": "cpu", "overrides": {"labels": 50}}
    publish.save_run(tmp_path / "arm" / "s0", {"seed": 0, **made}, [{"timesteps": 1}])
    assert publish.finished(tmp_path / "arm" / "s0", made) == {"seed": 0, **made}
    for key, other in (("code_version", "git:b"), ("platform", "gpu"), ("overrides", {"labels": 25})):
        assert publish.finished(tmp_path / "arm" / "s0", {**made, key: other}) is None
    assert publish.finished(tmp_path / "arm" / "s1", None) is None
    assert (tmp_path / "arm" / "s0" / "metrics.csv").read_text().splitlines() == ["timesteps", "1"]
    assert sorted(p.name for p in (tmp_path / "arm" / "s0").iterdir()) == ["metrics.csv", "summary.json"]


def test_an_unknown_publication_is_one_clear_error(capsys):
    import publish

    with pytest.raises(SystemExit):
        publish.main(["nonsense", "--render"])
    assert "unknown publication nonsense" in capsys.readouterr().err


@pytest.mark.slow
def test_a_smoke_publication_runs_end_to_end_and_resumes(tmp_path, monkeypatch):
    import publish

    pub = publish.publications()["label_efficiency"]
    arms = {a: pub.arms[a] for a in ("cartpole-fixed-oracle-50", "cartpole-fixed-true")}
    monkeypatch.setattr(pub, "arms", arms)
    results = tmp_path / "results"
    assert publish.run(pub, results, seeds=1, workers=1, smoke=True) == 0
    assert sorted(p.name for p in (results / "cartpole-fixed-oracle-50" / "s0").iterdir()) == [
        "metrics.csv",
        "summary.json",
    ]
    files = {"RESULTS.md": tmp_path / "RESULTS.md", "README.md": tmp_path / "README.md"}
    assert publish.render(pub, results, files, figures=False, allow_mixed=False)
    assert "cartpole-fixed-oracle-50" in files["RESULTS.md"].read_text()
    mtime = (results / "cartpole-fixed-true" / "s0" / "summary.json").stat().st_mtime_ns
    assert publish.run(pub, results, seeds=1, workers=1, smoke=True) == 0  # nothing reruns
    assert (results / "cartpole-fixed-true" / "s0" / "summary.json").stat().st_mtime_ns == mtime
