"""Screenshots of ``rlhf-gym label`` in every mode, driven on a virtual screen as a person would.

    python benchmarks/screenshots.py                  # all three modes -> benchmarks/figures/label/
    python benchmarks/screenshots.py --modes compare

Needs Xvfb, xdotool and xwd (Debian: ``apt-get install xvfb xdotool x11-apps``) and ImageMagick's
``convert``. Starts Xvfb, runs the real command line in a real window, finds the window with
``xdotool search --pid``, focuses it, types keys with ``xdotool`` (so they travel through the X
server like a person's), and saves the window with ``xwd``. It also checks that the labels the
keys gave are in the store.
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

# what a person does in each mode: (seconds to wait first, xdotool arguments)
SCRIPTS: dict[str, list[tuple[float, list[str]]]] = {
    # the learner needs some seconds to start in its own process before the first clips come
    "compare": [(20.0, ["key", "Left"]), (3.0, ["key", "Right"]), (3.0, ["key", "Down"]), (3.0, [])],
    "live": [
        (20.0, ["key", "equal"]),
        (1.0, ["keydown", "Right"]),
        (0.6, ["keyup", "Right"]),
        (0.5, ["key", "minus"]),
        (1.0, ["key", "space"]),
        (1.0, []),
    ],
    # press a key to start, play one episode (it ends a second after the pole falls), start another
    "demo": [
        (20.0, ["keydown", "Right"]),
        (0.3, ["keyup", "Right"]),
        (0.1, ["keydown", "Left"]),
        (0.2, ["keyup", "Left"]),
        (3.0, ["keydown", "Left"]),
        (0.3, ["keyup", "Left"]),
        (0.1, ["keydown", "Right"]),
        (0.1, []),
    ],
}


def need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        need_ = ", ".join(missing)
        raise SystemExit(f"screenshots need {need_}: apt-get install xvfb xdotool x11-apps imagemagick")


def window_of(pid: int, env: dict[str, str], timeout: float = 90.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = subprocess.run(
            ["xdotool", "search", "--pid", str(pid)], capture_output=True, text=True, env=env
        )
        if found.stdout.strip():
            return found.stdout.split()[-1]
        time.sleep(0.3)
    raise SystemExit(f"no window of process {pid} within {timeout:.0f} s")


def shoot(mode: str, out: Path, tmp: Path, env: dict[str, str]) -> int:
    """Run one mode, act, save the window; returns the labels stored."""
    from rlhf_gym.feedback.store import FeedbackStore

    store = tmp / f"{mode}.db"
    cmd = [sys.executable, "-m", "rlhf_gym.cli.main", "label", "--task", "CartPole-v1", "--mode", mode]
    cmd += ["--store", str(store), "--seed", "3"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        window = window_of(proc.pid, env)
        subprocess.run(["xdotool", "windowfocus", "--sync", window], env=env, check=False)
        for wait, action in SCRIPTS[mode]:
            time.sleep(wait)
            if action:
                subprocess.run(["xdotool", *action], env=env, check=True)
        out.mkdir(parents=True, exist_ok=True)
        xwd = subprocess.run(["xwd", "-silent", "-id", window], env=env, capture_output=True, check=True)
        subprocess.run(["convert", "xwd:-", str(out / f"{mode}.png")], input=xwd.stdout, check=True)
        subprocess.run(["xdotool", "key", "--window", window, "q"], env=env, check=False)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    print(proc.stdout.read() if proc.stdout else "", end="")
    with FeedbackStore(store) as s:
        return len(s)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--modes", nargs="+", default=list(SCRIPTS), choices=list(SCRIPTS))
    parser.add_argument("--out", type=Path, default=HERE / "figures" / "label")
    args = parser.parse_args(argv)
    need("Xvfb", "xdotool", "xwd", "convert")
    xvfb = subprocess.Popen(["Xvfb", DISPLAY, "-screen", "0", "1280x800x24", "-nolisten", "tcp"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("SDL_")}
    env |= {"DISPLAY": DISPLAY, "SDL_AUDIODRIVER": "dummy"}  # a real window, no sound
    failed = 0
    try:
        time.sleep(1.0)
        with tempfile.TemporaryDirectory() as tmp:
            for mode in args.modes:
                labels = shoot(mode, args.out, Path(tmp), env)
                print(f"{mode}: {labels} label(s) stored -> {args.out / (mode + '.png')}")
                failed += labels == 0
    finally:
        xvfb.terminate()
        xvfb.wait(10)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
