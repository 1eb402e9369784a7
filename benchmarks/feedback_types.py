"""Feedback types at equal human effort: comparisons, corrections, demonstrations, ratings,
TAMER signals, e-stops and their mix, with the true-reward and constant-reward controls, on
fixed-horizon CartPole and Pendulum.

    python benchmarks/feedback_types.py            # every arm, 5 seeds, all cores
    python benchmarks/feedback_types.py --smoke    # tiny budgets: checks the script end to end

Every arm gets the effort budget, in seconds, that the core issue's comparison label counts
cost (CartPole 50, Pendulum 100; costs in ``rlhf_gym.feedback.effort``); ``corrections-half`` gets
half of it. Runs are cached in ``benchmarks/results/feedback_types/`` (git-ignored); the
table, the targets and the figure go into ``benchmarks/RESULTS.md`` and
``benchmarks/figures/feedback_types.png``. Options are those of ``label_efficiency.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    from label_efficiency import main

    sys.exit(main(sys.argv[1:], suite="feedback_types", command="python benchmarks/feedback_types.py"))
