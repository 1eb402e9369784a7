"""The labelling app on a busy machine: frame rate while the agent trains, key-to-disk latency,
keys pressed against keys answered, the first pair of a new store, closing, how fast the agent
improves per minute of labelling, and labels kept across random kills.

    python benchmarks/publish.py label_app         # 5 minutes of labelling, then 20 kills: published
    python benchmarks/label_app.py --minutes 1 --kills 3 --hog 0   # other settings: printed only

A synthetic "keyboard" teacher stands in for the person: it watches each pair of clips for
``--think`` seconds (as a person would) and then presses a key at a random moment within the
next frame (a timer thread posts the key event, as a keyboard would, whatever the window is
doing), preferring the clip with the higher true return (equal within 1%). The app runs
headless (``SDL_VIDEODRIVER=dummy``) with its learner in a background process, exactly as
``rlhf-gym label`` runs it, while ``--hog`` busy-loop processes keep every core busy (a person's
laptop is rarely idle). ``publish.py label_app`` keeps the measured figures in
``benchmarks/results/label_app/meta.json`` and renders the *Labelling app* section from them.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
COMMAND = "python benchmarks/label_app.py"  # with other settings than the published ones
TASK = "CartPole-v1"


def hog(parent: int) -> None:
    """Keep one core busy until the parent is gone."""
    from rlhf_gym.processes import die_with_parent

    die_with_parent(parent)
    while True:
        pass


def start_hogs(n: int) -> list[mp.Process]:
    """``n`` busy-loop processes that die with this one, even on SIGKILL."""
    ctx = mp.get_context("spawn")
    hogs = [ctx.Process(target=hog, args=(os.getpid(),), daemon=True, name="cpu hog") for _ in range(n)]
    for h in hogs:
        h.start()
    return hogs


class KeyboardTeacher:
    """Answers each pair after ``think`` seconds on screen, by pressing the key a person would."""

    def __init__(self, think: float, fps: float = 60.0) -> None:
        self.think, self.answered, self.first = think, None, None
        self.timeline: list[tuple[float, int, float]] = []  # (seconds, labels, agent true return)
        self.start = time.perf_counter()
        self.pressed = 0
        self.inflight = 0  # keys whose timer has not fired yet
        self.stopped = False  # the session is ending: no more keys
        self.frame = 1.0 / fps
        self.rng = random.Random(0)
        self.waited, self.last = 0.0, None  # seconds with no pair on screen, after the first one

    def __call__(self, app) -> None:
        import pygame

        now = time.perf_counter()
        if self.first is not None and not app.view.players and app.budget_left and not self.stopped:
            self.waited += now - self.last
        self.last = now
        if self.first is None and app.view.players:
            self.first = [p.clip.to_json() for p in app.view.players]
            print("first", f"{time.time():.3f}", json.dumps(self.first), flush=True)
        if not self.timeline or now - self.start - self.timeline[-1][0] >= 1.0:
            self.timeline.append((now - self.start, app.labels, app.status.get("true_return", float("nan"))))
        view = app.view
        if self.stopped or not view.players or view.players is self.answered or view.watched < self.think:
            return
        self.answered = view.players
        left, right = (p.segment.true_return for p in view.players)
        name = (
            "down"
            if abs(left - right) <= 0.01 * max(abs(left), abs(right), 1.0)
            else ("left" if left > right else "right")
        )
        self.pressed += 1
        self.inflight += 1

        def press() -> None:  # a key comes at any moment, not at the start of a frame
            event = pygame.event.Event(
                pygame.KEYDOWN, key=pygame.key.key_code(name), posted=time.perf_counter()
            )
            pygame.event.post(event)
            self.inflight -= 1

        threading.Timer(self.rng.uniform(0.0, self.frame), press).start()


def labelling(minutes: float, think: float, store: Path) -> dict:
    """Label for ``minutes``; returns frame times, commit latencies and the agent's progress."""
    from rlhf_gym.human.label import label

    teacher = KeyboardTeacher(think)
    deadline = teacher.start + 60 * minutes

    def step(app) -> None:
        teacher(app)
        if time.perf_counter() > deadline:
            import pygame

            teacher.stopped = True  # the window closes once every key pressed is in its queue
            if not teacher.inflight:
                pygame.event.post(pygame.event.Event(pygame.QUIT))

    result = label(TASK, store, "compare", fps=60, callback=step)
    waited = teacher.waited
    return {"result": result, "timeline": teacher.timeline, "pressed": teacher.pressed, "waited": waited}


CHILD = """
import sys, time
import pygame
from rlhf_gym.human.label import label
sys.path.insert(0, {here!r})
from label_app import KeyboardTeacher
if __name__ == "__main__":  # the learner's process is spawned
    teacher = KeyboardTeacher({think})
    label({task!r}, sys.argv[1], "compare", fps=60, callback=teacher,
          on_commit=lambda row: print("ack", row, flush=True))
"""


def kills(n: int, think: float, store: Path, seed: int = 0) -> dict:
    """Kill the app with SIGKILL ``n`` times at random moments, resuming the same store each time;
    count acknowledged labels missing from the store afterwards."""
    from rlhf_gym.feedback.store import FeedbackStore

    rng = random.Random(seed)
    script = store.parent / "child.py"
    script.write_text(textwrap.dedent(CHILD.format(here=str(HERE), think=think, task=TASK)))
    env = os.environ | {"SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy", "PYTHONUNBUFFERED": "1"}
    acked: set[int] = set()
    lost: set[int] = set()
    resumed, pendings, launch_to_pair = 0, 0, []
    for _ in range(n):
        with FeedbackStore(store, meta={"task": TASK}) as s:
            pending = s.pending("compare")
        out = store.parent / "acks.txt"
        with open(out, "w") as sink:
            launched = time.time()
            proc = subprocess.Popen([sys.executable, str(script), str(store)], stdout=sink, env=env)
            time.sleep(rng.uniform(8.0, 16.0))  # start-up takes a few seconds; kill while labelling
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        lines = out.read_text().splitlines()
        acked |= {int(line.split()[1]) for line in lines if line.startswith("ack")}
        with FeedbackStore(store) as s:
            stored = {row["id"] for row in s.rows()}
        lost |= acked - stored
        firsts = [line.split(" ", 2)[1:] for line in lines if line.startswith("first ")]
        # from the command to the first pair on screen (the first launch is a new store's)
        launch_to_pair.append(round(float(firsts[0][0]) - launched, 3) if firsts else None)
        if pending is not None:  # was the interrupted query the first one shown on restart?
            pendings += 1
            resumed += bool(firsts) and json.loads(firsts[0][1]) == pending[0]["clips"]
    return {
        "kills": n,
        "acked": len(acked),
        "lost": len(lost),
        "pendings": pendings,
        "resumed": resumed,
        "launch_to_pair": launch_to_pair,
    }


MINUTES, THINK, KILLS = 5.0, 2.0, 20


def measure(
    minutes: float = MINUTES, think: float = THINK, n_kills: int = KILLS, n_hogs: int | None = None
) -> dict[str, Any]:
    """Label for ``minutes`` beside ``n_hogs`` busy-loop processes (one per core by default), then
    kill the app ``n_kills`` times; the raw figures, as JSON-able data (``meta.json``'s
    ``measured`` in ``benchmarks/results/label_app/``)."""
    import numpy as np

    from rlhf_gym.provenance import platform

    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    n_hogs = (os.cpu_count() or 2) if n_hogs is None else n_hogs
    hogs = start_hogs(n_hogs)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            run = labelling(minutes, think, Path(tmp) / "labels.db")
            load = os.getloadavg()[:2]
            durable = kills(n_kills, 0.3, Path(tmp) / "kills.db")
    finally:
        for h in hogs:
            h.terminate()
    result = run["result"]
    frames = np.asarray(result.frame_seconds[10:])  # the first frames include opening the window
    if not len(frames) or not result.commit_seconds:
        raise RuntimeError(
            f"the app drew {len(frames)} frames and committed {len(result.commit_seconds)} labels"
        )
    return {
        "settings": {"minutes": minutes, "think": think, "hogs": n_hogs, "cores": os.cpu_count()},
        "platform": platform(),
        "frames": len(frames),
        "frame_seconds_median": float(np.median(frames)),
        "frame_seconds_p99": float(np.percentile(frames, 99)),
        # from the moment the key was pressed (posted) to its durable commit: the wait for the next
        # frame is included, as it is for a real key
        "commit_ms": [round(1000 * t, 3) for t in result.commit_seconds],
        "pressed": run["pressed"],
        "keys": result.keys,
        "acks": dict(result.acks),
        "labels": len(result.committed),
        "first_pair_seconds": result.first_pair_seconds,
        "waited_seconds": run["waited"],
        "close_seconds": result.close_seconds,
        "agent_saved": bool(result.agent_saved),
        "timeline": [[round(t, 2), n, r if np.isfinite(r) else None] for t, n, r in run["timeline"]],
        "kills": durable,
        # how busy the machine was: 1- and 5-minute load averages as the labelling ended
        "load_average": [round(x, 2) for x in load],
    }


def render(df: Any, meta: dict[str, Any], figure: Path | None) -> dict[str, str]:
    """The *Labelling app* section of RESULTS.md from the measured figures in ``meta``."""
    import numpy as np
    from report import commit_note, target_row

    m, s = meta["measured"], meta["measured"]["settings"]
    fps, low = 1.0 / m["frame_seconds_median"], 1.0 / m["frame_seconds_p99"]
    p50, p99 = np.percentile(m["commit_ms"], [50, 99])
    acked = sum(m["acks"].values())
    answers = ", ".join(f"{n} {kind}" for kind, n in sorted(m["acks"].items())) or "none"
    durable = m["kills"]
    launch = [t for t in durable.get("launch_to_pair", []) if t is not None]
    waited = m["waited_seconds"] / (60 * s["minutes"]) if "waited_seconds" in m else None
    timeline = [tuple(row) for row in m["timeline"]]
    if figure is not None:
        _plot(timeline, figure, s["think"])
    marks = []
    for minute in range(1, int(s["minutes"]) + 1):
        at = [row for row in timeline if row[0] <= 60 * minute]
        if at:
            r = at[-1][2]
            marks.append(
                f"{minute} min: {at[-1][1]} labels, " + ("no return yet" if r is None else f"return {r:.0f}")
            )
    rows = [
        ("frames per second while the agent trains, median (>= 30)", f"{fps:.1f}", fps >= 30),
        ("frames per second, 99th percentile of frame time (>= 30)", f"{low:.1f}", low >= 30),
        (
            "key to durable commit, p50 ms (from the press; the wait for the frame included)",
            f"{p50:.1f}",
            True,
        ),
        ("key to durable commit, p99 ms (<= 50)", f"{p99:.1f}", p99 <= 50),
        (
            "keys pressed / answered on screen (no silent drop)",
            f"{m['pressed']} / {acked} ({answers})",
            m["pressed"] == m["keys"] == acked,
        ),
        (
            "first pair of a new store on screen, from the window's start, s",
            f"{m['first_pair_seconds']:.2f}",
            True,
        ),
        (
            "first pair of a new store on screen, from the command (a process started), s (<= 3)",
            "not measured" if not launch else f"{launch[0]:.2f}",
            bool(launch) and launch[0] <= 3,
        ),
        (
            "first pair after a restart, from the command, s (median)",
            "not measured" if len(launch) < 2 else f"{float(np.median(launch[1:])):.2f}",
            len(launch) >= 2,
        ),
        (
            "share of the session with no pair on screen after the first (<= 0.1)",
            "not measured" if waited is None else f"{waited:.2f}",
            waited is not None and waited <= 0.1,
        ),
        (
            "window closed to learner stopped (agent saved), s (<= 2)",
            f"{m['close_seconds']:.2f}",
            m["close_seconds"] <= 2 and m["agent_saved"],
        ),
        (
            f"acknowledged labels lost across {durable['kills']} SIGKILLs (0)",
            str(durable["lost"]),
            durable["lost"] == 0,
        ),
    ]
    commit = commit_note(meta)
    block = [
        f"## {meta['title']}",
        "",
        f"Command: `{meta['command']}` ({s['minutes']:g} minutes of comparisons on fixed-horizon {TASK} "
        f"by a synthetic keyboard teacher that watches each pair {s['think']:g} s and presses its key "
        "at a random moment of the next frame; the learner trains PPO in a background process; window "
        f"at 60 frames/s, headless; {s['hogs']} busy-loop processes beside it on {s['cores']} cores; load "
        f"average {m['load_average'][0]:g} (1 min) and {m['load_average'][1]:g} (5 min) as labelling ended). "
        f"Code version `{meta['code_version']}`{commit}; platform: {m['platform']}.",
        "",
        "| target | measured | |",
        "|---|---|---|",
        *(target_row(t, v, ok) for t, v, ok in rows),
        "",
        f"{m['labels']} labels in {s['minutes']:g} minutes; the agent's true return "
        f"(2 deterministic episodes after each training chunk): {'; '.join(marks) or 'none'}. Kills: "
        f"{durable['kills']} SIGKILLs at random moments 8-16 s after start, {durable['acked']} labels "
        f"acknowledged in all, {durable['lost']} lost. {durable['pendings']} kills left a query on "
        f"screen; {durable['resumed']} of the restarts showed it again first. Latency is measured in "
        "compare mode (a correction or e-stop also replays the agent's continuation before its commit).",
        "",
        f"![{meta['title']}](figures/{meta['name']}.png)",
    ]
    return {"RESULTS.md": "\n".join(block)}


def measure_published(tasks: list[str], smoke: bool) -> dict[str, Any]:
    """The published measurement (a smoke check: 0.3 minutes, 2 kills, no busy loops)."""
    return measure(0.3, 1.0, 2, 0) if smoke else measure()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=MINUTES, help="minutes of labelling")
    parser.add_argument("--think", type=float, default=THINK, help="seconds the teacher watches each pair")
    parser.add_argument("--kills", type=int, default=KILLS, help="random SIGKILLs")
    parser.add_argument("--hog", type=int, help="busy-loop processes beside the app (default: one per core)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE))
    from rlhf_gym.provenance import code_version

    measured = measure(args.minutes, args.think, args.kills, args.hog)
    meta = {"measured": measured, "code_version": code_version(), "command": COMMAND, "name": "label_app"}
    text = render(None, meta | {"title": "Labelling app (not published)"}, None)["RESULTS.md"]
    print(text)
    return 1 if "**missed**" in text else 0


def _plot(timeline: list[tuple[float, int, float | None]], path: Path, think: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [row[0] / 60 for row in timeline]
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    returns = [float("nan") if row[2] is None else row[2] for row in timeline]  # None: not evaluated yet
    ax.plot(t, returns, color="#08519c", label="agent true return")
    ax.set_xlabel("minutes of labelling")
    ax.set_ylabel(f"{TASK} true return")
    twin = ax.twinx()
    twin.plot(t, [row[1] for row in timeline], color="#d6604d", ls="--", label="labels")
    twin.set_ylabel("labels")
    ax.set_title(f"rlhf-gym label: keyboard teacher, one comparison per {think:g} s")
    fig.legend(loc="lower right", bbox_to_anchor=(0.88, 0.2))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)


from publish import Publication  # noqa: E402 - publish.py imports this module only when asked

PUBLICATIONS = [Publication("label_app", "Labelling app", {}, 0, render, measure_published)]

if __name__ == "__main__":
    sys.exit(main())
