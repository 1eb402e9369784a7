import json
import re
import subprocess
import sys

import pytest

from rlhf_gym.cli.main import main


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "rlhf_gym.cli.main", *args], capture_output=True, text=True)


def test_tasks_lists_every_preset(capsys):
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    for name in ("CartPole-v1", "Pendulum-v1", "MountainCar-v0", "Acrobot-v1", "MountainCarContinuous-v0"):
        assert name in out


def test_train_writes_the_run_folder(tmp_path):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(
        "segment_length: 5\nfeedback_rounds: 1\neval_freq: 10000\nfinal_eval_episodes: 2\n"
        "reward_model: {hidden_sizes: [8], n_steps: 20}\n"
        "hyperparams: {n_steps: 16, batch_size: 32, n_epochs: 1}\n"
    )
    code = main(
        [
            "train",
            "--task",
            "CartPole-v1",
            "--horizon",
            "fixed",
            "--teacher",
            "stoch",
            "--labels",
            "4",
            "--timesteps",
            "256",
            "--seed",
            "1",
            "--config",
            str(cfg),
            "--out",
            str(tmp_path / "run"),
            "-q",
        ]
    )
    assert code == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["teacher"] == "stoch" and summary["labels_used"] == 4 and summary["seed"] == 1
    # the same command again never overwrites the finished run
    assert (
        main(
            [
                "train",
                "--task",
                "CartPole-v1",
                "--reward",
                "constant",
                "--timesteps",
                "256",
                "--config",
                str(cfg),
                "--out",
                str(tmp_path / "run"),
                "-q",
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "run" / "summary.json").read_text()) == summary
    assert json.loads((tmp_path / "run_2" / "summary.json").read_text())["reward"] == "constant"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--task", "NoSuchTask-v0"], "unknown task 'NoSuchTask-v0'"),
        (["--labels", "-5"], "labels must be non-negative"),
        (["--teacher", "sage"], "unknown teacher 'sage'"),
        (["--feedback", "comparisons,hugs"], "unknown feedback type 'hugs'"),
        (["--budget-seconds", "-1"], "budget_seconds must be positive"),
        (["--budget-seconds", "nan"], "budget_seconds must be a finite number, got nan"),
        (["--budget-seconds", "inf"], "budget_seconds must be a finite number, got inf"),
        (["--kl-coef", "nan"], "kl_coef must be a finite number"),
        (["--labels", "1000000000000"], "labels must be at most"),
        (["--labels", "1.5"], "argument --labels: invalid int value: '1.5'"),
        (["--segment-length", "900"], "segment_length 900 is longer than an episode of CartPole-v1"),
        (["--out", "/dev/null/run"], "cannot write the run folder '/dev/null/run'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message):
    result = run_cli("train", *args, "--timesteps", "64")
    assert result.returncode == 2
    assert result.stderr.strip().startswith("rlhf-gym: error:") and message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_unknown_yaml_key_and_wrong_checkpoint(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("lables: 5\n")
    result = run_cli("train", "--config", str(bad))
    assert (
        result.returncode == 2
        and "unknown key 'lables'" in result.stderr
        and "Traceback" not in result.stderr
    )
    pendulum = tmp_path / "pendulum_rm"
    import gymnasium as gym

    from rlhf_gym.reward.model import RewardModel

    env = gym.make("Pendulum-v1")
    RewardModel(env.observation_space, env.action_space).save(pendulum)
    result = run_cli("train", "--task", "CartPole-v1", "--reward-model", str(pendulum))
    assert result.returncode == 2 and "trained for observation space" in result.stderr
    assert "Traceback" not in result.stderr


def test_train_with_other_feedback_types_and_an_effort_budget(tmp_path, capsys):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(
        "segment_length: 5\nfeedback_rounds: 1\neval_freq: 10000\nfinal_eval_episodes: 2\n"
        "reward_model: {hidden_sizes: [8], n_steps: 20}\n"
        "hyperparams: {n_steps: 16, batch_size: 32, n_epochs: 1}\n"
    )
    argv = ["train", "--task", "CartPole-v1", "--horizon", "fixed", "--feedback", "ratings,estops"]
    argv += [
        "--budget-seconds",
        "30",
        "--timesteps",
        "256",
        "--config",
        str(cfg),
        "--out",
        str(tmp_path / "r"),
    ]
    assert main([*argv, "-q"]) == 0
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["budget_seconds"] == 30.0 and 0 < summary["effort_seconds"] <= 30.0
    assert set(summary["labels_by_type"]) <= {"rating", "estop"} and "rating" in summary["labels_by_type"]
    assert (tmp_path / "r" / "feedback.sqlite").is_file()
    assert "s of effort" in capsys.readouterr().out


def test_sweep_report_and_plot_commands(tmp_path, capsys):
    import yaml

    from tests.experiments.test_sweep import TINY

    spec = tmp_path / "mini.yaml"
    spec.write_text(yaml.safe_dump({"base": TINY, "grid": {"teacher": ["oracle"]}, "seeds": 1}))
    out = tmp_path / "mini"
    assert main(["sweep", str(spec), "--out", str(out), "--workers", "2", "--no-progress", "--csv"]) == 0
    printed = capsys.readouterr().out
    assert "mini: 3 run(s) done, 0 failed, 0 already there" in printed
    assert (out / "results.parquet").is_file() and (out / "results.csv").is_file()
    assert main(["sweep", str(spec), "--out", str(out), "--dry-run"]) == 0
    assert capsys.readouterr().out.count("done") == 3
    assert main(["report", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("## mini") and "| ceiling (true reward) | 1 | 0 |" in text
    assert main(["plot", str(out)]) == 0
    assert (out / "figures" / "curves_steps.png").is_file()


def test_sweep_errors_are_one_line(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text("grid: {teacher: [orcale]}\n")
    proc = run_cli("sweep", str(spec), "--out", str(tmp_path / "x"))
    assert proc.returncode == 2
    assert proc.stderr.startswith("rlhf-gym: error: sweep bad.yaml, arm 'teacher=orcale': unknown teacher")
    proc = run_cli("report", str(tmp_path / "nothing"))
    assert proc.returncode == 2 and "no results at" in proc.stderr


def test_feedback_info_export_and_import(tmp_path, capsys):
    from rlhf_gym.feedback.store import FeedbackStore
    from tests.feedback.test_formats import recorded_store

    store, out, copy = tmp_path / "session.sqlite", tmp_path / "session.jsonl", tmp_path / "copy.sqlite"
    recorded_store(store)  # one record of each kind, 3.75 s of effort, a pending query

    def info(path) -> dict[str, str]:
        assert main(["feedback", "info", str(path)]) == 0
        lines = capsys.readouterr().out.splitlines()
        return dict(re.split(r"\s{2,}", line, maxsplit=1) for line in lines)

    shown = info(store)
    assert shown["path"] == str(store)
    assert shown["format"] == "rlhf-gym feedback store, schema version 1"
    assert json.loads(shown["meta"]) == {"task": "CartPole-v1", "seed": 0}
    assert all(
        shown[kind] == "1"
        for kind in ("comparison", "correction", "demonstration", "rating", "signal", "estop")
    )
    assert (shown["total"], shown["effort seconds"], shown["pending"]) == (
        "6",
        "3.8",
        "query (waiting to be answered)",
    )
    assert main(["feedback", "export", str(store), str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"6 record(s) of {store} -> {out}"
    exported = info(out)
    assert (
        exported["format"] == "rlhf-gym feedback export, schema version 1" and exported["pending"] == "none"
    )
    assert main(["feedback", "import", str(out), str(copy), "--task", "CartPole-v1"]) == 0
    assert capsys.readouterr().out.strip() == f"6 record(s) of {out} -> {copy}"
    same = ("meta", "comparison", "rating", "total", "effort seconds")
    assert {k: info(copy)[k] for k in same} == {k: exported[k] for k in same} == {k: shown[k] for k in same}
    with FeedbackStore(copy) as a, FeedbackStore(store) as b:
        assert [r.kind for r in a.records()] == [r.kind for r in b.records()]


def test_feedback_errors_are_one_line_and_exit_2(tmp_path, capsys):
    from rlhf_gym.feedback.store import FeedbackStore
    from tests.feedback.test_formats import recorded_store

    recorded_store(tmp_path / "s.sqlite")
    assert main(["feedback", "export", str(tmp_path / "s.sqlite"), str(tmp_path / "s.jsonl")]) == 0
    lines = (tmp_path / "s.jsonl").read_text().splitlines(keepends=True)
    (tmp_path / "bad.jsonl").write_text("".join([lines[0], lines[1][:100] + "\n", *lines[2:]]))
    (tmp_path / "noise.sqlite").write_bytes(bytes(range(256)) * 8)
    FeedbackStore(tmp_path / "pendulum.sqlite", meta={"task": "Pendulum-v1"}).close()
    before = sorted(p.name for p in tmp_path.iterdir())
    cases = [
        (["info", str(tmp_path / "missing.sqlite")], "missing.sqlite does not exist"),
        (["info", str(tmp_path / "noise.sqlite")], "noise.sqlite is not an rlhf-gym feedback store"),
        (["info", str(tmp_path / "bad.jsonl")], "bad.jsonl, line 2: not a line of UTF-8 JSON"),
        (
            ["export", str(tmp_path / "missing.sqlite"), str(tmp_path / "x.jsonl")],
            "missing.sqlite does not exist",
        ),
        (["import", str(tmp_path / "bad.jsonl"), str(tmp_path / "new.sqlite")], "bad.jsonl, line 2"),
        (
            ["import", str(tmp_path / "s.jsonl"), str(tmp_path / "pendulum.sqlite")],
            "task 'Pendulum-v1', not 'CartPole-v1'",
        ),
        (
            ["import", str(tmp_path / "s.jsonl"), str(tmp_path / "new.sqlite"), "--task", "Acrobot-v1"],
            "not 'Acrobot-v1'",
        ),
        (
            ["import", str(tmp_path / "missing.jsonl"), str(tmp_path / "new.sqlite")],
            "missing.jsonl does not exist",
        ),
    ]
    for args, message in cases:
        assert main(["feedback", *args]) == 2, args
        err = capsys.readouterr().err.strip()
        assert err.startswith("rlhf-gym: error:") and message in err and len(err.splitlines()) == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing created, nothing left over
    result = run_cli("feedback", "info", str(tmp_path / "missing.jsonl"))
    assert result.returncode == 2 and "Traceback" not in result.stderr and "does not exist" in result.stderr


def test_sft_clones_the_expert_into_a_start_that_train_accepts(tmp_path):
    out = tmp_path / "sft"
    assert (
        main(["sft", "--task", "CartPole-v1", "--episodes", "1", "--bc-steps", "200", "--out", str(out)]) == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["algo"] == "ppo" and summary["true_return_mean"] > 100  # random play scores about 20
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("segment_length: 5\nfeedback_rounds: 1\neval_freq: 10000\nfinal_eval_episodes: 2\n")
    argv = ["train", "--task", "CartPole-v1", "--horizon", "fixed", "--labels", "2", "--timesteps", "64"]
    argv += [
        "--config",
        str(cfg),
        "--init-policy",
        str(out / "agent.zip"),
        "--out",
        str(tmp_path / "run"),
        "-q",
    ]
    assert main(argv) == 0
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["kl_from_init"] >= 0


def test_sft_rejects_bad_counts(capsys):
    assert main(["sft", "--task", "CartPole-v1", "--episodes", "0"]) == 2
    assert "--episodes must be positive" in capsys.readouterr().err
    assert main(["sft", "--task", "CartPole-v1", "--noise", "2"]) == 2
    assert "noise must be a probability" in capsys.readouterr().err


@pytest.mark.parametrize(
    "text, message",
    [
        (b"\x00\xff\xfe binary", "is not a text file"),
        (b"a: &x [1, 1]\nb: [*x, *x]\n", "aliases (*name) are not allowed"),
        (b"hyperparams: {learning_rate: .nan}\n", "hyperparams.learning_rate must be a finite number"),
        (b"[" * 100_000, "nested too deeply"),
    ],
)
def test_hostile_yaml_is_one_line_naming_the_file(tmp_path, text, message):
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(text)
    result = run_cli("train", "--task", "CartPole-v1", "--config", str(bad))
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    if "finite" not in message:
        assert str(bad) in result.stderr


def _disk_fills_at(where: str, monkeypatch) -> str:
    """Make the disk fill inside the run folder's real writes, at ``where``: a partial file is
    written, then ``OSError(ENOSPC)`` is raised. Returns the file named in the error."""
    import errno
    import pathlib

    from rlhf_gym.agents import files
    from rlhf_gym.feedback.store import FeedbackStore

    def full(path) -> OSError:
        return OSError(errno.ENOSPC, "No space left on device", str(path))

    if where == "feedback":  # one record of the copy is written (into its WAL), the next is not
        real_add = FeedbackStore.add

        def add(self, *args, **kwargs):
            if len(self) >= 1:
                raise full(self.path)
            return real_add(self, *args, **kwargs)

        monkeypatch.setattr(FeedbackStore, "add", add)
        return "feedback.sqlite"
    if where == "agent":  # the zip is written, the safetensors twin half

        def save_file(state, filename, *args, **kwargs):
            pathlib.Path(filename).write_bytes(b"\x00" * 100)
            raise full(filename)

        monkeypatch.setattr(files, "save_file", save_file)
        return ".tmp.safetensors"  # the error names the file being written
    real_write = pathlib.Path.write_text

    def write_text(self, data, *args, **kwargs):
        if self.name.startswith("summary.json"):
            real_write(self, data[: len(data) // 2], *args, **kwargs)
            raise full(self)
        return real_write(self, data, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "write_text", write_text)
    return "summary.json"


@pytest.mark.parametrize("where", ["feedback", "agent", "summary"])
def test_a_full_disk_is_one_line_and_keeps_what_was_written(tmp_path, capsys, monkeypatch, where):
    """The run folder is written as the run goes: a write that fails late keeps the config and
    the metrics so far whole, leaves no temporary file, and the command says so in one line."""
    import csv

    import yaml

    from rlhf_gym.feedback.store import FeedbackStore

    out = tmp_path / "run"
    name = _disk_fills_at(where, monkeypatch)
    args = ["train", "--task", "CartPole-v1", "--labels", "4", "--timesteps", "300", "--out", str(out), "-q"]
    assert main([*args, "--segment-length", "5", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rlhf-gym: error: ") and "\n" not in err, err
    assert "No space left on device" in err and name in err, err
    monkeypatch.undo()  # the disk has room again, to read what is there
    assert yaml.safe_load((out / "config.yaml").read_text())["task"] == "CartPole-v1"
    with open(out / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and all(None not in row for row in rows)  # no row cut short
    assert (out / "reward_model.safetensors").is_file() and not (out / "summary.json").exists()
    left = sorted(p.name for p in out.iterdir())
    assert not [n for n in left if "tmp" in n or n.startswith(".")], left
    if where == "feedback":
        assert "feedback.sqlite" not in left and "agent.zip" not in left
    else:  # what was written before the disk filled is whole
        with FeedbackStore(out / "feedback.sqlite") as store:
            assert len(store) > 0 and len(store.records()) == len(store)
        assert ("agent.zip" in left) == (where == "summary")


@pytest.mark.parametrize(
    ("acks", "said"), [({"recorded": 3}, "each answered on screen"), ({}, "3 not answered")]
)
def test_the_label_summary_says_how_many_keys_got_no_answer(tmp_path, capsys, monkeypatch, acks, said):
    import rlhf_gym.human.label as label_module
    from rlhf_gym.human.app import LabelResult

    result = LabelResult("compare", keys=3, acks=acks, quit_reason="key")
    monkeypatch.setattr(label_module, "label", lambda *args, **kwargs: result)
    assert main(["label", "--task", "CartPole-v1", "--store", str(tmp_path / "s.db")]) == 0
    out = capsys.readouterr().out
    assert f"3 key(s) pressed, {said}" in out
    assert ("not answered" in out) == (not acks)


def test_play_help_names_the_presets_pace(capsys):
    with pytest.raises(SystemExit):
        main(["play", "--help"])
    assert "play.fps" in " ".join(capsys.readouterr().out.split())
