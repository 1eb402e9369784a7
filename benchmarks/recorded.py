"""The recorded teacher: replay the sample dataset of ``feedback/`` as the teacher of RLHF runs.

    python benchmarks/publish.py recorded      # replay feedback/sample-cartpole.jsonl vs the oracle
    python benchmarks/recorded.py              # record the sample anew through the app

Recording runs ``rlhf-gym label`` (compare mode, fixed-horizon CartPole, its learner in a
background process) headless, answered by the synthetic keyboard teacher of
``benchmarks/label_app.py`` through posted key events, until the store holds ``--labels``
comparisons, and exports it to ``feedback/sample-cartpole.jsonl``. No person answered it: it is a
stand-in that exercises the whole path a person's labels take (window, store, export, replay).

The publication runs, over 5 seeds, the oracle teacher asked fresh queries from each run's own
policy and the recorded teacher replaying the sample's comparisons in recorded order (labels fixed
when they were given, about other policies' behaviour), both at the sample's number of labels,
with the true-reward ceiling and the constant-reward control.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SAMPLE = Path("feedback") / "sample-cartpole.jsonl"  # relative to the repository, as the runs see it


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


def sample_info() -> dict[str, Any]:
    from rlhf_gym.feedback.formats import feedback_info

    return dict(feedback_info(ROOT / SAMPLE))


def run_sample(overrides: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A run whose recorded teacher reads the sample wherever the run's working folder is (the
    overrides name it as the repository does, and the bytes it had by their hash)."""
    from publish import run_one

    o = {k: v for k, v in overrides.items() if k != "sample_sha256"}
    if "recorded_feedback" in o:
        o["recorded_feedback"] = str(ROOT / o["recorded_feedback"])
    return run_one(o)


def render(df: Any, meta: dict[str, Any], figure: Path | None) -> dict[str, str]:
    from report import normalise, section
    from sweeps import improvement_by_task

    info = sample_info()
    normalise(df, meta["random_returns"])
    notes = [
        f"The sample `{SAMPLE.as_posix()}` holds {info['counts']['comparison']} comparisons recorded through "
        f"`rlhf-gym label` ({info['effort_seconds']:.0f} s of labelling) by the synthetic keyboard teacher "
        "(teacher name `keyboard-oracle`), not by a person. The recorded teacher replays them in recorded "
        "order; the oracle answers fresh queries about each run's own policy, at the same number of labels.",
        "",
    ]
    return {"RESULTS.md": section(df, meta, figure, improvement_by_task(df), notes)}


def arms() -> dict[str, dict[str, Any]]:
    """The oracle and the recorded teacher at the sample's number of labels, with the controls; a
    new sample (its SHA-256 in the overrides) runs them again."""
    import hashlib

    sample = {"recorded_feedback": SAMPLE.as_posix()}
    sample["sample_sha256"] = hashlib.sha256((ROOT / SAMPLE).read_bytes()).hexdigest()[:16]
    base = {"task": "CartPole-v1", "horizon": "fixed", "labels": sample_info()["counts"]["comparison"]}
    return {
        "teacher=oracle": base,
        "teacher=recorded": {**base, "teacher": "recorded", **sample},
        "ceiling (true reward)": {"task": "CartPole-v1", "horizon": "fixed", "reward": "true"},
        "control (constant reward)": {"task": "CartPole-v1", "horizon": "fixed", "reward": "constant"},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--labels", type=int, default=40, help="comparisons to record")
    parser.add_argument("--think", type=float, default=1.0, help="seconds per pair")
    args = parser.parse_args(argv)
    os.chdir(ROOT)
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    sys.path.insert(0, str(HERE))
    record(args.labels, args.think)
    return 0


from publish import Publication  # noqa: E402 - publish.py imports this module only when asked

# without the sample (before it is recorded) there is nothing to publish
PUBLICATIONS = (
    [Publication("recorded", "The recorded teacher", arms(), 5, render, runner=run_sample)]
    if (ROOT / SAMPLE).is_file()
    else []
)

if __name__ == "__main__":
    sys.exit(main())
