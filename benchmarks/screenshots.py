"""Screenshots of ``rlhf-gym label`` in every mode on CartPole, PickPlace and Pusher, driven on a
virtual screen as a person would.

    python benchmarks/screenshots.py                  # 3 tasks x 3 modes -> benchmarks/figures/label/
    python benchmarks/screenshots.py --tasks CartPole-v1 --modes compare

Needs Xvfb, xdotool and ImageMagick's ``import`` (Debian: ``apt-get install xvfb xdotool
imagemagick``). Starts Xvfb, runs the real command line in a real window, finds the window with
``xdotool search --pid``, focuses it, types keys with ``xdotool`` (so they travel through the X
server like a person's), and saves the window with ``import``. It also checks that the keys
gave labels in the store, and that the window then closes cleanly on ``q`` (or Escape, where the
task steers with ``q``) within 2 s of the key, with the session's summary.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DISPLAY = ":99"
TASKS = ("CartPole-v1", "PickPlace-v0", "Pusher-v5")

Script = list[tuple[float, list[str]]]


def script(task: str, mode: str) -> Script:
    """What a person does: (seconds to wait first, xdotool arguments, or ``["shot"]``: the shot,
    else at the end)."""
    if mode == "compare" and task == "Pusher-v5":  # software GL renders a pair in seconds: shoot it first
        return [(5.0, ["shot"]), (0.5, ["key", "Left"]), (1.0, [])]
    if mode == "compare":  # the first pair is on screen within 3 s
        return [(4.0, ["key", "Left"]), (1.5, ["key", "Right"]), (1.5, ["key", "Down"]), (1.0, [])]
    steer = {"CartPole-v1": "Right", "PickPlace-v0": "Up", "Pusher-v5": "w"}[task]
    if mode == "live":
        stop = "Return" if task == "PickPlace-v0" else "space"  # PickPlace grips with space
        return [
            (6.0, ["key", "equal"]),
            (1.0, ["keydown", steer]),
            (0.8, ["keyup", steer]),
            (0.5, ["key", "minus"]),
            (1.0, ["key", stop]),
            (0.8, []),
        ]
    # demo: a task key starts an episode; play until it ends and is stored, then start another
    length = {"CartPole-v1": 4.0, "PickPlace-v0": 6.5, "Pusher-v5": 6.5}[task]
    return [
        (4.0, ["keydown", steer]),
        (0.4, ["keyup", steer]),
        (length, ["keydown", steer]),
        (0.3, ["keyup", steer]),
        (0.5, []),
    ]


def need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        need_ = ", ".join(missing)
        raise SystemExit(f"screenshots need {need_}: apt-get install xvfb xdotool imagemagick")


def window_of(pid: int, env: dict[str, str], timeout: float = 90.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = subprocess.run(
            # visible only: a MuJoCo task's renderer has a hidden window of its own in the process
            ["xdotool", "search", "--onlyvisible", "--pid", str(pid)],
            capture_output=True,
            text=True,
            env=env,
        )
        if found.stdout.strip():
            return found.stdout.split()[-1]
        time.sleep(0.3)
    raise SystemExit(f"no window of process {pid} within {timeout:.0f} s")


def shoot(task: str, mode: str, out: Path, tmp: Path, env: dict[str, str]) -> tuple[int, float]:
    """Run one mode, act, save the window, close it; returns the labels stored and the seconds
    from the quit key to the process's end."""
    from rlhf_gym.feedback.store import FeedbackStore

    store = tmp / f"{task}-{mode}.db"
    cmd = [sys.executable, "-m", "rlhf_gym.cli.main", "label", "--task", task, "--mode", mode]
    cmd += ["--store", str(store), "--seed", "3"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        window = window_of(proc.pid, env)
        subprocess.run(["xdotool", "windowfocus", "--sync", window], env=env, check=False)
        out.mkdir(parents=True, exist_ok=True)
        shot = out / f"{task.split('-')[0].lower()}-{mode}.png"
        steps = script(task, mode)
        for wait, action in steps if ["shot"] in [a for _, a in steps] else [*steps, (0.0, ["shot"])]:
            time.sleep(wait)
            if action == ["shot"]:
                subprocess.run(["import", "-window", window, str(shot)], env=env, check=True)
            elif action:
                subprocess.run(["xdotool", *action], env=env, check=True)
        quit_key = "Escape" if task == "Pusher-v5" else "q"
        pressed = time.monotonic()
        subprocess.run(["xdotool", "key", "--window", window, quit_key], env=env, check=False)
        proc.wait(30)
        closed = time.monotonic() - pressed
    finally:
        if proc.poll() is None:
            proc.kill()
    print(proc.stdout.read() if proc.stdout else "", end="")
    with FeedbackStore(store) as s:
        return len(s), closed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", nargs="+", default=list(TASKS))
    parser.add_argument(
        "--modes", nargs="+", default=["compare", "live", "demo"], choices=["compare", "live", "demo"]
    )
    parser.add_argument("--out", type=Path, default=HERE / "figures" / "label")
    args = parser.parse_args(argv)
    need("Xvfb", "xdotool", "import")
    xvfb = subprocess.Popen(["Xvfb", DISPLAY, "-screen", "0", "1280x1000x24", "-nolisten", "tcp"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("SDL_")}
    env |= {"DISPLAY": DISPLAY}  # a real window; the app itself opens no sound
    failed = 0
    try:
        time.sleep(1.0)
        with tempfile.TemporaryDirectory() as tmp:
            for task in args.tasks:
                for mode in args.modes:
                    labels, closed = shoot(task, mode, args.out, Path(tmp), env)
                    ok = labels > 0 and closed <= 2.0
                    print(
                        f"{task} {mode}: {labels} label(s) stored, closed {closed:.2f} s after the quit key"
                        + ("" if ok else "  <- FAILED")
                    )
                    failed += not ok
    finally:
        xvfb.terminate()
        xvfb.wait(10)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
