"""The recorded teacher: replay the sample dataset of ``feedback/`` as the teacher of RLHF runs.

    python benchmarks/recorded.py              # replay feedback/sample-cartpole.jsonl vs the oracle
    python benchmarks/recorded.py --record     # first record the sample anew through the app

``--record`` runs ``rlhf-gym label`` (compare mode, fixed-horizon CartPole, its learner in a
background process) headless, answered by the synthetic keyboard teacher of
``benchmarks/label_app.py`` through posted key events, until the store holds ``--labels``
comparisons, and exports it to ``feedback/sample-cartpole.jsonl``. No person answered it: it is a
stand-in that exercises the whole path a person's labels take (window, store, export, replay).

The replay runs the same sweep twice over ``--seeds`` seeds: the oracle teacher asked fresh queries
from each run's own policy, and the recorded teacher replaying the sample's comparisons in recorded
order (labels fixed when they were given, about other policies' behaviour), both at the sample's
number of labels, with the true-reward ceiling and the constant-reward control.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SAMPLE = Path("feedback") / "sample-cartpole.jsonl"  # relative to the repository, as the runs see it
COMMAND = "python benchmarks/recorded.py"


def record(labels: int, think: float) -> None:
    """Label through the app until the store holds ``labels`` comparisons; export the sample."""
    import pygame
    from label_app import KeyboardTeacher

    from rlhf_gym.feedback.formats import export_store
    from rlhf_gym.human.label import label

    teacher = KeyboardTeacher(think)

    def answer(app) -> None:
        teacher(app)
        if app.labels >= labels:
            pygame.event.post(pygame.event.Event(pygame.QUIT))

    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "sample.sqlite"
        label(
            "CartPole-v1",
            store,
            "compare",
            config={"seed": 0},
            fps=60,
            callback=answer,
            teacher="keyboard-oracle",
        )
        n = export_store(store, SAMPLE)
    print(f"{n} comparisons -> {SAMPLE}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--record", action="store_true", help="record the sample anew first")
    parser.add_argument("--labels", type=int, default=40, help="comparisons to record (--record)")
    parser.add_argument("--think", type=float, default=1.0, help="seconds per pair (--record)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--report", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args(argv)
    os.chdir(ROOT)
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    sys.path.insert(0, str(HERE))
    from report import hardware, put_section

    from rlhf_gym.experiments.grid import Sweep
    from rlhf_gym.experiments.plots import load_table, report
    from rlhf_gym.experiments.sweep import run_sweep
    from rlhf_gym.feedback.formats import feedback_info

    if args.record:
        record(args.labels, args.think)
    info = feedback_info(SAMPLE)
    n = info["counts"]["comparison"]
    spec = {
        "name": "recorded",
        "description": "the recorded teacher against the oracle at equal labels",
        "base": {"task": "CartPole-v1", "horizon": "fixed", "labels": n},
        "grid": {"teacher": ["oracle", {"teacher": "recorded", "recorded_feedback": str(SAMPLE)}]},
        "seeds": args.seeds,
    }
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        run_sweep(Sweep.from_dict(spec), Path(tmp), progress=False)
        table = load_table(tmp)
    heading, body = report(table, title="The recorded teacher").split("\n", 1)
    block = "\n".join(
        [
            "<!-- recorded:start -->",
            heading,
            "",
            f"Command: `{COMMAND}` ({args.seeds} seeds, {time.perf_counter() - start:.0f} s). Hardware: "
            f"{hardware()}. The sample `feedback/sample-cartpole.jsonl` holds {n} comparisons recorded "
            f"through `rlhf-gym label` ({info['effort_seconds']:.0f} s of labelling) by the synthetic "
            "keyboard teacher (teacher name `keyboard-oracle`), not by a person. The recorded teacher "
            "replays them in recorded order; the oracle answers fresh queries about each run's own policy.",
            body.rstrip(),
            "<!-- recorded:end -->",
        ]
    )
    print(block)
    put_section(args.report, "recorded", block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
