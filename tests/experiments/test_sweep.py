"""Sweeps end to end on tiny budgets: the table, resume after a kill, failures, spec errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import yaml

from rlhf_gym.experiments.grid import Sweep, run_key
from rlhf_gym.experiments.sweep import run_sweep, status

TINY = {
    "total_timesteps": 512,
    "segment_length": 8,
    "eval_freq": 256,
    "eval_episodes": 1,
    "final_eval_episodes": 2,
    "feedback_rounds": 1,
    "labels": 6,
    "horizon": "fixed",
    "hyperparams": {
        "n_envs": 2,
        "n_steps": 64,
        "batch_size": 64,
        "n_epochs": 1,
        "policy_kwargs": {"net_arch": [16]},
    },
    "reward_model": {"n_steps": 20},
}
TWO_BY_TWO = {
    "name": "two",
    "base": TINY,
    "grid": {"teacher": ["oracle", "stoch"], "query_strategy": ["uniform", "entropy"]},
    "seeds": 1,
}
RESULT_COLUMNS = [
    "key", "arm", "status", "task", "teacher", "query_strategy", "seed", "point", "timesteps", "env_steps",
    "labels", "labels_used", "effort_seconds", "true_return", "normalised_return", "reward_model_accuracy",
    "reward_correlation", "wall_seconds",
]  # fmt: skip


def finals(out) -> pd.DataFrame:
    t = pd.read_parquet(out / "results.parquet")
    return t[t["point"] == "final"].set_index("key").sort_index()


def test_a_two_by_two_sweep_runs_end_to_end(tmp_path):
    sweep = Sweep.from_dict(TWO_BY_TWO)
    runs = sweep.runs()
    assert len(runs) == 4 + 2  # the grid, plus the task's ceiling and constant control
    report = run_sweep(sweep, tmp_path, workers=2, progress=False)
    assert (report.done, report.failed, report.skipped) == (6, 0, 0)
    table = pd.read_parquet(tmp_path / "results.parquet")
    assert set(RESULT_COLUMNS) <= set(table.columns)
    assert "reward_model.ensemble_size" in table and "hyperparams.n_steps" in table  # every config field
    f = finals(tmp_path)
    assert len(f) == 6 and set(f["status"]) == {"done"}
    assert set(f["arm"]) == {
        "teacher=oracle query_strategy=uniform",
        "teacher=oracle query_strategy=entropy",
        "teacher=stoch query_strategy=uniform",
        "teacher=stoch query_strategy=entropy",
        "ceiling (true reward)",
        "control (constant reward)",
    }
    ceiling = f[f["reward"] == "true"]
    assert ceiling["normalised_return"].tolist() == pytest.approx([1.0])  # its own median
    assert (f[f["reward"] == "learned"]["labels_used"] > 0).all()
    # Running it again finds everything done and runs nothing.
    again = run_sweep(sweep, tmp_path, workers=2, progress=False)
    assert (again.done, again.skipped) == (0, 6)


def test_a_killed_sweep_resumes_without_repeating_runs(tmp_path, monkeypatch):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({**TWO_BY_TWO, "grid": {"teacher": ["oracle", "stoch", "mistake"]}}))
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rlhf_gym.cli.main",
            "sweep",
            str(spec),
            "--out",
            str(out),
            "--workers",
            "1",
            "--no-progress",
        ],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not list(out.glob("runs/*/summary.json")):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    # Keys include the code version, which the killed process computed for itself: resume as
    # that version (in a work tree others edit, this process's may differ by now).
    import rlhf_gym.provenance

    recorded = json.loads(next(out.glob("runs/*/summary.json")).read_text())["code_version"]
    monkeypatch.setattr(rlhf_gym.provenance, "code_version", lambda: recorded)
    sweep = Sweep.from_yaml(spec)
    runs = sweep.runs()
    done_before = {
        r.key: (out / "runs" / r.key / "summary.json").stat().st_mtime_ns
        for r in runs
        if status(out, r.key) == "done"
    }
    assert 1 <= len(done_before) < len(runs)

    resumed = run_sweep(sweep, out, workers=1, progress=False)
    assert resumed.skipped == len(done_before) and resumed.done == len(runs) - len(done_before)
    for key, mtime in done_before.items():  # finished runs were not run again
        assert (out / "runs" / key / "summary.json").stat().st_mtime_ns == mtime
    assert not list((out / "runs").glob(".*"))  # no half-written folder left

    run_sweep(sweep, tmp_path / "straight", workers=1, progress=False)
    same = ["arm", "seed", "true_return", "labels", "env_steps", "timesteps"]
    pd.testing.assert_frame_equal(finals(out)[same], finals(tmp_path / "straight")[same])


def test_a_sigkilled_sweep_leaves_no_worker_behind(tmp_path):
    from rlhf_gym.processes import descendants, pid_alive

    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(TWO_BY_TWO))
    cmd = [sys.executable, "-m", "rlhf_gym.cli.main", "sweep", str(spec), "--out", str(tmp_path / "out")]
    proc = subprocess.Popen([*cmd, "--workers", "2", "--no-progress"], stderr=subprocess.DEVNULL)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while len(workers) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
            workers = descendants(proc.pid)
        assert len(workers) >= 2, "the sweep started no pool workers"
        time.sleep(1.0)  # the workers are inside their runs now
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # the driver only: its workers must follow on their own
        proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(pid_alive(p) for p in workers):
        time.sleep(0.05)
    left = [p for p in workers if pid_alive(p)]
    for pid in left:  # (never leave them running on a shared machine)
        os.kill(pid, signal.SIGKILL)
    assert not left, f"workers {left} outlived their SIGKILLed sweep by 10 s"


def test_a_failing_run_is_recorded_and_the_sweep_goes_on(tmp_path):
    spec = {
        "name": "fails",
        "base": TINY,
        "grid": {"variant": [{"labels": 6}, {"labels": 6, "hyperparams": {"not_an_sb3_argument": 1}}]},
        "controls": False,
    }
    sweep = Sweep.from_dict(spec)
    report = run_sweep(sweep, tmp_path, workers=2, progress=False)
    assert (report.done, report.failed) == (1, 1)
    assert "not_an_sb3_argument" in report.errors[0]
    (bad,) = [r for r in sweep.runs() if status(tmp_path, r.key) == "failed"]
    folder = tmp_path / "runs" / bad.key
    assert "Traceback" in (folder / "traceback.txt").read_text()
    assert "not_an_sb3_argument" in json.loads((folder / "error.json").read_text())["error"]
    f = finals(tmp_path)
    assert sorted(f["status"]) == ["done", "failed"]

    skipped = run_sweep(sweep, tmp_path, workers=1, progress=False)
    assert (skipped.done, skipped.failed, skipped.skipped) == (0, 0, 2)
    retried = run_sweep(sweep, tmp_path, workers=1, progress=False, retry_failed=True)
    assert (retried.failed, retried.skipped) == (1, 1)  # only the failed run ran again


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"grid": {"teacher": ["oracle"]}, "seed": 3}, "unknown key 'seed' in sweep; expected one of"),
        ({"grid": {"teacher": ["orcale"]}}, r"arm 'teacher=orcale'.*unknown teacher 'orcale'"),
        ({"grid": {"labls": [5]}}, "unknown key 'labls'"),
        ({"grid": {"teacher": "oracle"}}, "grid.teacher in sweep must be a non-empty list"),
        ({"grid": {"seed": [0, 1]}}, "list the seeds under seeds"),
        ({"seeds": 0}, "seeds in sweep must be a positive count"),
    ],
)
def test_spec_errors_name_the_bad_key_or_value(spec, message):
    with pytest.raises(ValueError, match=message):
        Sweep.from_dict({"base": TINY, **spec})


def test_the_ray_backend_needs_its_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    sweep = Sweep.from_dict({**TWO_BY_TWO, "grid": {"teacher": ["oracle"]}, "controls": False})
    with pytest.raises(ImportError, match=r'pip install "rlhf-gym\[ray\]"'):
        run_sweep(sweep, tmp_path, backend="ray", progress=False)


def test_the_ray_backend_gives_the_local_table(tmp_path):
    pytest.importorskip("ray")  # the ray extra; CI installs it
    sweep = Sweep.from_dict({**TWO_BY_TWO, "grid": {"teacher": ["oracle", "stoch"]}})
    run_sweep(sweep, tmp_path / "local", workers=2, progress=False)
    run_sweep(sweep, tmp_path / "ray", backend="ray", progress=False)
    same = ["arm", "seed", "true_return", "labels", "env_steps", "timesteps", "normalised_return"]
    pd.testing.assert_frame_equal(finals(tmp_path / "local")[same], finals(tmp_path / "ray")[same])


def test_every_published_sweep_spec_resolves():
    from pathlib import Path

    specs = sorted((Path(__file__).parents[2] / "benchmarks" / "sweeps").glob("*.yaml"))
    assert {p.stem for p in specs} >= {"smoke", "feedback_types", "teachers", "queries", "tasks"}
    for path in specs:
        runs = Sweep.from_yaml(path).runs()
        for task in {r.config["task"] for r in runs}:
            rewards = {r.config["reward"] for r in runs if r.config["task"] == task}
            assert rewards == {"learned", "true", "constant"}, (path.name, task)


def test_runs_resolve_like_train_and_controls_merge():
    from rlhf_gym.schema import to_dict
    from rlhf_gym.train.rlhf import resolve_config

    sweep = Sweep.from_dict({"grid": {"task": ["Pendulum-v1"], "reward": ["learned", "true"]}, "seeds": 1})
    runs = sweep.runs()
    learned = next(r for r in runs if r.config["reward"] == "learned")
    assert learned.config["labels"] == 100  # the Pendulum preset's run: block, as rlhf-gym train gives
    assert learned.config == to_dict(resolve_config({"task": "Pendulum-v1", "seed": 0}))
    # the grid's own true-reward arm is the automatic ceiling: one run, and every run points at it
    ceilings = [r for r in runs if r.config["reward"] == "true"]
    assert len(ceilings) == 1 and len(runs) == 3
    assert {r.ceiling for r in runs} == {run_key(ceilings[0].config | {"seed": None})}


def test_control_labels_keep_what_matters_without_feedback():
    grid = {"setting": [{"horizon": "natural", "labels": 10}, {"horizon": "fixed", "labels": 20}]}
    runs = Sweep.from_dict({"base": TINY, "grid": grid}).runs()
    assert sorted(r.arm for r in runs) == [
        "ceiling (true reward) horizon=fixed",
        "ceiling (true reward) horizon=natural",
        "control (constant reward) horizon=fixed",
        "control (constant reward) horizon=natural",
        "horizon=fixed,labels=20",
        "horizon=natural,labels=10",
    ]


def test_a_worker_that_dies_is_a_failed_run_and_the_sweep_goes_on(tmp_path, monkeypatch):
    import rlhf_gym.experiments.sweep as sweep_module

    real = sweep_module.execute

    def dies_on_stoch(config):
        if config["teacher"] == "stoch":
            os._exit(1)  # as an out-of-memory kill would
        return real(config)

    monkeypatch.setattr(sweep_module, "execute", dies_on_stoch)  # forked workers inherit it
    sweep = Sweep.from_dict({**TWO_BY_TWO, "grid": {"teacher": ["oracle", "stoch"]}, "controls": False})
    report = run_sweep(sweep, tmp_path, workers=1, progress=False)
    assert report.failed >= 1 and report.done + report.failed == 2
    assert any("worker running it died" in e for e in report.errors)
    assert (tmp_path / "results.parquet").is_file()


def test_controls_of_cpl_and_kl_arms_are_plain_ppo_runs():
    sweep = Sweep.from_dict(
        {
            "base": {"task": "CartPole-v1", "horizon": "fixed"},
            "grid": {"arm": [{"algo": "cpl", "hyperparams.cpl_steps": 8}, {"algo": "ppo", "kl_coef": 0.1}]},
            "seeds": 1,
        }
    )
    runs = sweep.runs()
    controls = [r.config for r in runs if r.config["reward"] != "learned"]
    assert {c["algo"] for c in controls} == {"ppo"} and len(controls) == 2
    assert all(c.get("kl_coef") is None and "cpl_steps" not in c["hyperparams"] for c in controls)


def test_a_full_disk_stops_the_sweep_with_one_error_and_leaves_no_temporary_folder(tmp_path, monkeypatch):
    import errno

    import rlhf_gym.experiments.sweep as sweep_module

    sweep = Sweep.from_dict({"name": "full", "base": TINY, "grid": {"labels": [6, 8]}, "controls": False})
    runs = sweep.runs()
    written = []

    def full_after_one(tmp, run, result):
        if written:
            (tmp / "config.yaml").write_text("half")
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(run.key)
        real(tmp, run, result)

    real = sweep_module._write_result
    monkeypatch.setattr(sweep_module, "_write_result", full_after_one)
    monkeypatch.setattr(
        sweep_module,
        "execute",
        lambda config: {"status": "failed", "error": "x", "traceback": "", "wall_seconds": 0.0},
    )
    with pytest.raises(
        OSError, match=r"cannot record run \w+ in .*: No space left on device; the runs recorded"
    ):
        run_sweep(sweep, tmp_path, workers=1, progress=False)
    left = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert left == written and len(runs) == 2  # the first run's result stays, no ".<key>.*" folder


def _fast_or_slow(config):
    """A run of 6 labels ends at once; one of 8 labels writes its pid beside the sweep and runs for
    two minutes (a long training in flight)."""
    if config["labels"] == 8:
        with open(os.environ["RLHF_GYM_TEST_SLOW_PID"], "w") as f:
            f.write(str(os.getpid()))
        time.sleep(120)
    return {"status": "failed", "error": "x", "traceback": "", "wall_seconds": 0.0}


def test_a_full_disk_stops_the_runs_in_flight_at_once(tmp_path, monkeypatch):
    """A result that cannot be recorded ends the sweep now: the runs in flight, whose results
    would be lost, are not waited for (they could take hours), and their workers are gone."""
    import errno

    import rlhf_gym.experiments.sweep as sweep_module

    pid_file = tmp_path / "slow.pid"
    monkeypatch.setenv("RLHF_GYM_TEST_SLOW_PID", str(pid_file))
    sweep = Sweep.from_dict({"name": "full", "base": TINY, "grid": {"labels": [8, 6]}, "controls": False})

    def full(tmp, run, result):
        deadline = time.monotonic() + 60
        while not pid_file.exists() and time.monotonic() < deadline:  # the slow run is in flight
            time.sleep(0.05)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sweep_module, "_write_result", full)
    monkeypatch.setattr(sweep_module, "execute", _fast_or_slow)
    start = time.monotonic()
    with pytest.raises(OSError, match="No space left on device"):
        run_sweep(sweep, tmp_path / "out", workers=2, progress=False)
    assert time.monotonic() - start < 30  # back within seconds, not when the slow run ends
    slow, start = int(pid_file.read_text()), time.monotonic()
    while time.monotonic() - start < 10:
        try:
            os.kill(slow, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"the worker {slow} of the run in flight still runs")
    assert not list((tmp_path / "out" / "runs").iterdir())


def test_a_change_of_code_version_gives_new_keys_and_the_old_runs_are_counted(tmp_path, monkeypatch, capsys):
    import rlhf_gym.provenance
    from rlhf_gym.cli.main import main
    from rlhf_gym.experiments.sweep import other_versions, record

    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({**TWO_BY_TWO, "grid": {"teacher": ["oracle"]}}))
    out = tmp_path / "out"
    monkeypatch.setattr(rlhf_gym.provenance, "code_version", lambda: "git:000000000000")
    old = Sweep.from_yaml(spec).runs()
    assert {r.code_version for r in old} == {"git:000000000000"}

    def finish(run, version):
        summary = {"code_version": version} if version else {}
        record(out, run, {"status": "done", "summary": summary, "metrics": [{"timesteps": 1}]})

    for run in old:
        finish(run, "git:000000000000")
    assert {status(out, r.key, r.code_version) for r in old} == {"done"}

    monkeypatch.setattr(rlhf_gym.provenance, "code_version", lambda: "git:000000000000+dirty:1")
    new = Sweep.from_yaml(spec).runs()
    assert not {r.key for r in new} & {r.key for r in old}  # every key is new
    assert [r.config for r in new] == [r.config for r in old]
    assert {status(out, r.key, r.code_version) for r in new} == {"todo"}
    assert other_versions(out, new) == {"git:000000000000": 3}
    # a run from before runs recorded their code version: keyed by its config alone
    legacy = new[0].__class__(run_key(new[0].config, None), new[0].arm, new[0].config, new[0].ceiling)
    finish(legacy, None)
    assert other_versions(out, new) == {"git:000000000000": 3, None: 1}
    # a run done under the new key by other code (the code changed while the sweep ran) is todo
    finish(new[1], "git:000000000000+dirty:2")
    assert status(out, new[1].key, new[1].code_version) == "todo"
    assert status(out, new[1].key) == "done"  # without a version to check against

    assert main(["sweep", str(spec), "--out", str(out), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert printed.count(" todo ") == 3
    assert (
        "code version git:000000000000+dirty:1: 4 finished run(s) of this sweep are from another" in printed
    )
    assert "(3 of git:000000000000, 1 of an unrecorded version)" in printed
