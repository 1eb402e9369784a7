import json
import subprocess
import sys

import pytest

from rlhf_gym.cli import main


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "rlhf_gym.cli", *args], capture_output=True, text=True)


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

    from rlhf_gym.reward_model import RewardModel

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

    from tests.test_sweep import TINY

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
