"""The published figures are the rendering of the committed raw results, and nothing else."""

import json
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
    assert names <= with_results, f"sections without committed results: {names - with_results}"


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


def never_run(overrides):
    raise AssertionError(f"ran {overrides}, which was there to copy")


def test_a_run_another_publication_made_with_the_same_settings_is_copied_not_run_again(tmp_path):
    import publish

    from rlhf_gym.provenance import code_version, platform

    arms = {"MountainCar-v0-preset": {"task": "MountainCar-v0", "horizon": "fixed"}}
    pub = publish.Publication(
        "exploration", "t", arms, 1, lambda *a: {}, runner=never_run, reuse=("presets",)
    )
    made = {"code_version": code_version(), "platform": platform()}
    made["overrides"] = publish.overrides(pub, "MountainCar-v0-preset", 0, smoke=True)
    presets = tmp_path / "presets_smoke"  # smoke runs copy smoke runs
    for arm, other in (("A-settings", {"overrides": {"reward": "true"}}), ("B-cpu", {"platform": "gpu"})):
        publish.save_run(presets / arm / "s0", {"seed": 0, **made, **other}, [{"timesteps": 1}])
    source = presets / "MountainCar-v0-oracle" / "s0"
    publish.save_run(source, {"seed": 0, "arm": "MountainCar-v0-oracle", **made}, [{"timesteps": 7}])
    results = tmp_path / "exploration_smoke"
    assert publish.run(pub, results, seeds=1, workers=1, smoke=True) == 0  # nothing ran
    copy = results / "MountainCar-v0-preset" / "s0"
    summary = json.loads((copy / "summary.json").read_text())
    assert summary["arm"] == "MountainCar-v0-preset"
    assert summary["copied_from"] == "presets/MountainCar-v0-oracle/s0"
    assert (copy / "metrics.csv").read_text() == (source / "metrics.csv").read_text()
    assert all(summary[key] == value for key, value in made.items())
    # without ``reuse``, nothing is copied; nor is a run of other code
    assert not publish.copied(publish.Publication("x", "t", arms, 1, lambda *a: {}), results, "a", 0, made)
    assert not publish.copied(pub, results, "a", 0, {**made, "code_version": "git:other"})

    # a run of this code made here on another platform is never overwritten by a copy unasked
    summary["platform"] = "another cpu"
    (copy / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(SystemExit, match="1 runs of this code version were made on another platform"):
        publish.run(pub, results, seeds=1, workers=1, smoke=True)
    assert json.loads((copy / "summary.json").read_text())["platform"] == "another cpu"


def test_the_exploration_ceilings_and_presets_are_the_presets_and_tasks_runs():
    import publish

    pubs = publish.publications()
    for smoke in (False, True):
        settings = {}
        for name in ("presets", "tasks"):
            for arm in pubs[name].arms:
                settings.setdefault(
                    json.dumps(publish.overrides(pubs[name], arm, 0, smoke), sort_keys=True), arm
                )
        exploration = pubs["exploration"]
        shared = {
            arm: settings.get(json.dumps(publish.overrides(exploration, arm, 0, smoke), sort_keys=True))
            for arm in exploration.arms
        }
        for task in ("MountainCar-v0", "MountainCarContinuous-v0", "PickPlace-v0"):
            assert shared.pop(f"{task}-true") == f"{task}-true"
            assert shared.pop(f"{task}-preset") == f"{task}-oracle"
        assert set(shared.values()) == {None}  # each method runs its own change, in smoke runs too


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

    # a run this code made on another machine's CPU is never deleted unasked, and counts if allowed
    summary = results / "cartpole-fixed-true" / "s0" / "summary.json"
    summary.write_text(json.dumps({**json.loads(summary.read_text()), "platform": "another cpu"}))
    with pytest.raises(SystemExit, match="1 runs of this code version were made on another platform"):
        publish.run(pub, results, seeds=1, workers=1, smoke=True)
    assert json.loads(summary.read_text())["platform"] == "another cpu"
    assert publish.run(pub, results, seeds=1, workers=1, smoke=True, allow_mixed=True) == 0
    assert json.loads(summary.read_text())["platform"] == "another cpu"  # it counted: not rerun
    assert json.loads((results / "meta.json").read_text())["allow_mixed"] is True
    assert publish.render(pub, results, files, figures=False, allow_mixed=False)  # as recorded
    assert "**Mixed results:**" in files["RESULTS.md"].read_text()


MEASURED = {
    "settings": {"minutes": 2.0, "think": 2.0, "hogs": 2, "cores": 2},
    "platform": "cpu",
    "frames": 7000,
    "frame_seconds_median": 1 / 60,
    "frame_seconds_p99": 1 / 25,  # a 99th-percentile frame rate of 25: missed
    "commit_ms": [float(ms) for ms in range(1, 101)],  # p50 50.5, p99 99.01: missed
    "pressed": 40,
    "keys": 40,
    "acks": {"recorded": 39, "ignored": 1},
    "labels": 39,
    "first_pair_seconds": 0.5,
    "close_seconds": 1.0,
    "agent_saved": True,
    "timeline": [[30.0, 10, 20.0], [61.0, 21, 150.0], [119.0, 39, 480.0]],
    "kills": {"kills": 3, "acked": 9, "lost": 0, "pendings": 2, "resumed": 2},
    "load_average": [3.5, 2.9],
}


def test_the_labelling_app_section_is_rendered_from_its_measured_figures(tmp_path):
    import label_app

    meta = {"measured": MEASURED, "code_version": "git:abc", "commit": "0123456789abcdef", "command": "c"}
    meta |= {"title": "Labelling app", "name": "label_app"}
    text = label_app.render(None, meta, tmp_path / "label_app.png")["RESULTS.md"]
    assert (tmp_path / "label_app.png").is_file()
    rows = {line.split(" | ")[0][2:]: line.split(" | ")[1:] for line in text.splitlines() if "|" in line}
    assert rows["frames per second while the agent trains, median (>= 30)"] == ["60.0", "met |"]
    assert rows["frames per second, 99th percentile of frame time (>= 30)"] == ["25.0", "**missed** |"]
    assert rows["key to durable commit, p99 ms (<= 50)"] == ["99.0", "**missed** |"]
    assert rows["keys pressed / answered on screen (no silent drop)"] == [
        "40 / 40 (1 ignored, 39 recorded)",
        "met |",
    ]
    assert rows["acknowledged labels lost across 3 SIGKILLs (0)"] == ["0", "met |"]
    assert "1 min: 10 labels, return 20; 2 min: 39 labels, return 480" in text
    assert "load average 3.5 (1 min)" in text and "`git:abc` (commit `0123456789ab`)" in text


@pytest.mark.slow
def test_a_smoke_measurement_of_the_labelling_app_is_published_from_its_meta(tmp_path, monkeypatch):
    import publish

    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    pub = publish.publications()["label_app"]
    results = tmp_path / "results"
    assert publish.run(pub, results, seeds=0, workers=1, smoke=True) == 0
    measured = publish.load(pub, results)[1]["measured"]
    assert measured["settings"]["hogs"] == 0 and measured["kills"]["kills"] == 2
    files = {"RESULTS.md": tmp_path / "RESULTS.md", "README.md": tmp_path / "README.md"}
    assert publish.render(pub, results, files, figures=False, allow_mixed=False)
    assert "acknowledged labels lost across 2 SIGKILLs" in files["RESULTS.md"].read_text()


def test_a_section_made_by_other_code_says_it_is_stale(tmp_path, monkeypatch):
    import publish

    import rlhf_gym.provenance

    pub = publish.publications()["label_app"]
    results = tmp_path / "label_app"
    results.mkdir()
    meta = {"code_version": "git:aaaa", "commit": "c" * 40, "measured": MEASURED, "random_returns": {}}
    (results / "meta.json").write_text(publish.json.dumps(meta))
    files = {"RESULTS.md": tmp_path / "RESULTS.md", "README.md": tmp_path / "README.md"}
    for now, stale in (("git:aaaa", False), ("git:bbbb+dirty:cccc", True)):
        monkeypatch.setattr(rlhf_gym.provenance, "code_version", lambda now=now: now)
        assert publish.render(pub, results, files, figures=False, allow_mixed=False)
        text = files["RESULTS.md"].read_text()
        assert ("**Stale:**" in text) == stale
        if stale:  # under the heading, naming the version that made the results, not the current one
            assert text.index("## Labelling app") < text.index("**Stale:**") < text.index("Command:")
            assert "git:aaaa" in text and "bbbb" not in text


def test_a_published_sweep_has_the_presets_grid_and_its_controls_as_arms():
    import sweeps

    description, arms, seeds = sweeps.sweep_arms("queries")
    assert seeds == 5 and "uniform" in description
    learned = [a for a in arms if "query_strategy=" in a]
    assert len(learned) == 6 and {arms[a]["query_strategy"] for a in learned} == {
        "uniform",
        "disagreement",
        "entropy",
    }
    assert {arms[a]["labels"] for a in learned if arms[a]["task"] == "Pendulum-v1"} == {50}
    assert arms["ceiling (true reward) task=CartPole-v1"]["reward"] == "true"
    assert all("seed" not in a for a in arms.values())


@pytest.mark.slow
def test_a_smoke_sweep_publication_ranks_arms_one_field_apart(tmp_path):
    import publish

    pub = publish.publications()["queries"]
    results = tmp_path / "results"
    only = [
        "task=CartPole-v1,* query_strategy=uniform",
        "task=CartPole-v1,* query_strategy=entropy",
        "ceiling*CartPole*",
    ]
    assert publish.run(pub, results, seeds=2, workers=2, smoke=True, only=only) == 0
    files = {"RESULTS.md": tmp_path / "RESULTS.md", "README.md": tmp_path / "README.md"}
    assert publish.render(pub, results, files, figures=False, allow_mixed=False)
    text = files["RESULTS.md"].read_text()
    assert "| query_strategy | task=CartPole-v1,labels=25 query_strategy=uniform | " in text


@pytest.mark.slow
def test_the_recorded_teacher_publication_replays_the_sample_from_any_working_folder(tmp_path, monkeypatch):
    import publish

    monkeypatch.chdir(tmp_path)  # the sample's path is the repository's, wherever the run is
    pub = publish.publications()["recorded"]
    assert publish.run(pub, tmp_path / "results", seeds=1, workers=1, smoke=True, only=["teacher=*"]) == 0
    summary = publish.finished(tmp_path / "results" / "teacher=recorded" / "s0", None)
    assert summary["teacher"] == "recorded" and summary["labels_used"] > 0
    assert (
        summary["overrides"]["recorded_feedback"] == "feedback/sample-cartpole.jsonl"
    )  # no path of this machine


def test_the_sweep_runner_section_is_rendered_from_its_measured_timings():
    import sweep_speed

    measured = {
        "runs": 8,
        "timesteps": 20000,
        "labels": 20,
        "cores": 2,
        "platform": "cpu",
        "serial_seconds": 100.0,
        "one_worker_seconds": 104.0,
    }
    measured |= {"pool_seconds": 70.0, "smoke": {"seconds": 120.0, "done": 8, "failed": 0}}
    meta = {"measured": measured, "code_version": "git:abc", "title": "Sweep runner", "command": "c"}
    text = sweep_speed.render(None, meta, None)["RESULTS.md"]
    assert "| wall time, every core / one after another (<= 0.6) | 0.700 | **missed** |" in text
    assert "| runner overhead per run, s (< 1) | 0.50 | met |" in text
    assert "| smoke.yaml from scratch, s (< 300) | 120 | met |" in text


@pytest.mark.slow
def test_a_smoke_measurement_of_the_sweep_runner_times_its_runs_three_ways():
    import sweep_speed

    m = sweep_speed.measure([], smoke=True)
    assert m["runs"] == 2 and m["smoke"] is None
    assert 0 < m["serial_seconds"] and 0 < m["pool_seconds"] and 0 < m["one_worker_seconds"]


def smoke_and_render(pub, results, tmp_path):
    """Run the publication's arms on smoke budgets, one seed, into ``results``, and render them into
    scratch RESULTS.md and README.md under ``tmp_path``; returns those two files."""
    import publish

    assert publish.run(pub, results, seeds=1, workers=1, smoke=True) == 0
    files = {"RESULTS.md": tmp_path / "RESULTS.md", "README.md": tmp_path / "README.md"}
    assert publish.render(pub, results, files, figures=False, allow_mixed=False)
    return files


def exploration_arms():
    import exploration

    return exploration.ARMS


def test_the_exploration_publication_runs_each_method_and_sets_it_against_the_preset(tmp_path, monkeypatch):
    import publish

    pub = publish.publications()["exploration"]
    names = [f"MountainCar-v0-{m}" for m in ("true", "preset", "pebble", "rune", "surf", "goal")]
    monkeypatch.setattr(pub, "arms", {a: pub.arms[a] for a in names})
    results = tmp_path / "results"
    files = smoke_and_render(pub, results, tmp_path)
    text = files["RESULTS.md"].read_text()
    rows = [line for line in text.splitlines() if line.startswith("| MountainCar-v0 | ")]
    methods = [row.split(" | ")[1] for row in rows]
    expected = ["preset", "plain", "pebble", "rune", "surf", "goal", "pebble-goal", "scale", "goal-scale"]
    assert methods == expected
    assert "unsupervised_fraction = 0.2" in rows[2] and "not run yet" in rows[-1]
    assert "the preset itself" in rows[1]  # MountainCar's preset is plain: that arm is never run
    arms = exploration_arms()
    assert "MountainCar-v0-plain" not in arms and "MountainCarContinuous-v0-plain" in arms
    assert "MountainCarContinuous-v0-goal" not in arms  # its preset asks goal queries already
    assert "MountainCar-v0: the best arm" in text
    assert "**Partial:** 1 of 5 seeds per arm have run so far" in text  # (smoke: one seed of each arm)
    summary = json.loads((results / "MountainCar-v0-pebble" / "s0" / "summary.json").read_text())
    assert summary["env_steps"] == summary["total_timesteps"]  # exploring is the agent's own steps


def test_the_pixel_publications_run_and_render_their_targets(tmp_path, monkeypatch):
    import publish

    pixel_id = {"CatchPixels-v0": {"task": "CatchPixels-v0", "labels": 4}}  # (CarRacing takes minutes)
    for name, arms, expect in (
        ("pixels", None, ["CatchPixels-v0: RLHF from", "the slowest run"]),
        (
            "image_ids",
            pixel_id,
            ["| CatchPixels-v0 | 36x36x2 uint8 | 0 |", "CatchPixels-v0: first round within 60 s"],
        ),
    ):
        pub = publish.publications()[name]
        if arms:
            monkeypatch.setattr(pub, "arms", arms)
        files = smoke_and_render(pub, tmp_path / name, tmp_path)
        text = files["RESULTS.md"].read_text()
        for piece in expect:
            assert piece in text, piece


def test_the_zoo_defaults_publication_judges_rlhf_against_its_ceiling_and_the_constant_reward(
    tmp_path, monkeypatch
):
    pytest.importorskip("mujoco")
    import publish

    pub = publish.publications()["zoo_defaults"]
    names = [f"InvertedPendulum-v5-{arm}" for arm in ("true", "oracle", "constant")]
    monkeypatch.setattr(pub, "arms", {a: pub.arms[a] for a in names})
    results = tmp_path / "results"
    files = smoke_and_render(pub, results, tmp_path)
    text = files["RESULTS.md"].read_text()
    row = next(line for line in text.splitlines() if line.startswith("| InvertedPendulum-v5 | "))
    assert "1000: the task's maximum" in row
    assert text.count("(1 of 5 seeds) | not judged yet |") == 3  # targets are judged at 5 seeds
    assert "Hopper-v5" not in text.split("### All arms")[0]  # a task without runs has no row
    # 5 seeds where the constant reward does as well as RLHF: the RLHF target is met, the control is not
    for arm in names:
        made = json.loads((results / arm / "s0" / "summary.json").read_text())
        for seed in range(5):
            made |= {"seed": seed, "true_return_mean": 1000.0 - seed}
            publish.save_run(results / arm / f"s{seed}", made, [{"timesteps": 1}])
    assert publish.render(pub, results, files, figures=False, allow_mixed=False)
    targets = files["RESULTS.md"].read_text().split("### Targets")[1]
    assert "0.8 of the reference score (1000) | 998.0 [996.3, 999.3] | met |" in targets
    assert "normalised return IQM >= 0.7 | 1 [0.998, 1] | met |" in targets
    control = next(line for line in targets.splitlines() if "above the constant reward" in line)
    assert control.endswith("| **missed** |")


def test_a_suite_section_is_partial_until_every_arm_has_run_every_seed_and_projects_the_sweep_time(
    tmp_path, monkeypatch
):
    import publish

    pub = publish.publications()["tasks"]
    monkeypatch.setattr(pub, "arms", {a: pub.arms[a] for a in ("Reach-v0-true", "Reach-v0-oracle")})
    results = tmp_path / "results"
    files = smoke_and_render(pub, results, tmp_path)
    sweep = "| 10-seed sweep on 2 cores: run wall time / 2 <= 3 h |"

    def rendered(walls):  # arm -> wall seconds of each seed saved; renders and returns the text
        for arm, seconds in walls.items():
            made = json.loads((results / arm / "s0" / "summary.json").read_text())
            for seed, wall in enumerate(seconds):
                made |= {"seed": seed, "wall_seconds": wall}
                publish.save_run(results / arm / f"s{seed}", made, [{"timesteps": 1}])
        assert publish.render(pub, results, files, figures=False, allow_mixed=False)
        return files["RESULTS.md"].read_text()

    # the true arm at 3 seeds of 1,800 s, the oracle arm at 1 of 360 s: (1800 + 360) x 10 / 2 = 3 h
    text = rendered({"Reach-v0-true": [1800.0] * 3, "Reach-v0-oracle": [360.0]})
    assert "**Partial:** 1 to 3 of 10 seeds per arm have run so far" in text
    assert f"{sweep} 3.00 h (projected from 4 runs) | met |" in text
    assert text.index("**Partial:**") < text.index("Speed and reference returns")  # the banner comes first
    # every seed of both arms, each run an hour and a half: 2 arms x 10 seeds x 1.5 h / 2 cores
    text = rendered({arm: [5400.0] * 10 for arm in pub.arms})
    assert "Partial" not in text
    assert f"{sweep} 15.00 h | **missed** |" in text
    # an arm that has not run: the section is partial, and the sweep's time is not judged
    monkeypatch.setattr(pub, "arms", {**pub.arms, "Pong-v0-true": {"task": "Pong-v0", "reward": "true"}})
    text = rendered({})
    assert "**Partial:** 0 to 10 of 10 seeds per arm have run so far" in text
    assert f"{sweep} not measured (1 arms not run) | **missed** |" in text


def test_the_overhead_is_split_at_the_last_feedback_round_seed_by_seed(tmp_path):
    import label_efficiency
    import pandas as pd

    runs = []

    def save(arm, seed, frame):
        folder = tmp_path / arm / f"s{seed}"
        folder.mkdir(parents=True)
        frame.to_csv(folder / "metrics.csv", index=False)
        runs.append({"arm": arm, "seed": seed})

    for horizon, slow in (("natural", 1.0), ("fixed", 2.0)):
        for seed in (0, 1, 2):
            # the true-reward run logs from 10k steps, 1 s per 1,000 steps (as real runs log, not from 0)
            steps = [10_000 * k for k in range(1, 11)]
            save(
                f"cartpole-{horizon}-true",
                seed,
                pd.DataFrame({"timesteps": steps, "wall_seconds": [s / 1000 for s in steps]}),
            )
            if seed == 2:
                continue  # a seed of the true arm alone is no pair
            # RLHF: its last round at 50k after (50 + 10 x seed) s, then 50 x slow s more to 100k
            until = 50.0 + 10 * seed
            save(
                f"cartpole-{horizon}-oracle-50",
                seed,
                pd.DataFrame(
                    {
                        "timesteps": [0, 20_000, 50_000, 100_000],
                        "wall_seconds": [1.0, 25.0, until, until + 50 * slow],
                        "round": [1, 2, 3, None],
                    }
                ),
            )
    for seed in (0, 1):  # warm-started fits, against the fixed true-reward run: 10 s more after the round
        frame = {"timesteps": [0, 50_000, 100_000], "wall_seconds": [1.0, 50.0, 110.0], "round": [1, 2, None]}
        save("cartpole-fixed-oracle-50-warm", seed, pd.DataFrame(frame))
    rows = label_efficiency.overhead_split(pd.DataFrame(runs), tmp_path)
    assert "| natural | 2 | 50,000 | 1.1 [1, 1.2] | 1 [1, 1] | 1.05 [1, 1.1] | 5.0 / 0.0 |" in rows
    assert "| fixed | 2 | 50,000 | 1.1 [1, 1.2] | 2 [2, 2] | 1.55 [1.5, 1.6] | 5.0 / 50.0 |" in rows
    warm = "| fixed, warm-started fits | 2 | 50,000 | 1 [1, 1] | 1.2 [1.2, 1.2] | 1.1 [1.1, 1.1] |"
    assert f"{warm} 0.0 / 10.0 |" in rows
    # a seed whose metrics have no feedback round is left out, and one without metrics too
    (tmp_path / "cartpole-fixed-oracle-50" / "s1" / "metrics.csv").write_text(
        "timesteps,wall_seconds\n1,1.0\n"
    )
    (tmp_path / "cartpole-natural-oracle-50" / "s1" / "metrics.csv").unlink()
    rows = label_efficiency.overhead_split(pd.DataFrame(runs), tmp_path)
    assert "| fixed | 1 | 50,000 | 1 [-, -] | 2 [-, -] | 1.5 [-, -] | 0.0 / 50.0 |" in rows
    assert "| natural | 1 | 50,000 | 1 [-, -] | 1 [-, -] | 1 [-, -] | 0.0 / 0.0 |" in rows


def test_each_missed_target_gets_its_account_of_what_was_tried_right_after_the_targets(monkeypatch):
    import tried

    monkeypatch.setitem(
        tried.TRIED,
        "demo",
        {"Task-v0:": "the short key.", "Task-v0: IQM": "the goal arm, and why it fell short."},
    )
    targets = [
        "## Demo",
        "| target | measured | |",
        "|---|---|---|",
        "| Task-v0: IQM >= 0.9 | 0.5 [0.4, 0.6] | **missed** |",
        "| Other-v0: IQM >= 0.9 | 0.95 [0.9, 1] | met |",
        "| Other-v0: overhead <= 1.1 | 1.2 [1.1, 1.3] | **missed** |",
    ]
    rest = ["", "### Curves", "| arm | IQM |", "| a | 1 |", "", "### All arms", "| arm |"]
    accounts = [
        "",
        tried.HEADING,
        "",
        "- **Task-v0: IQM >= 0.9**: the goal arm, and why it fell short.",  # the longest key that fits
        f"- **Other-v0: overhead <= 1.1**: {tried.NONE}",
    ]
    assert tried.with_accounts("demo", "\n".join(targets + rest)) == "\n".join(targets + accounts + rest)
    assert tried.with_accounts("demo", "\n".join(targets)) == "\n".join(targets + accounts)  # nothing after
    met_only = "\n".join(targets + rest).replace("**missed**", "met")
    assert tried.with_accounts("demo", met_only) == met_only
    assert tried.with_accounts("other", "\n".join(targets)).count(tried.NONE) == 2  # its own accounts only
