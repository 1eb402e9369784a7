"""What was tried for each missed target, and why it fell short: prose, under a section's targets.

A target that a rendering marks missed gets its account here, looked up by the publication and the
start of the target's text; a miss with none says so. An account names arms, settings and sections,
never a figure: the figures are the rendering's, so they stay true when the results change.
"""

from __future__ import annotations

# publication -> {start of a target's text -> what was tried, and why it fell short}
TRIED: dict[str, dict[str, str]] = {
    "zoo_defaults": {
        "InvertedPendulum-v5: RLHF above": (
            "nothing can meet it: the episode ends when the pole falls, so a constant reward for every step "
            "alive already teaches balancing, and the RLHF and constant-reward arms both reach the task's "
            "maximum, where no interval separates them. The arm stays as the control that shows it."
        ),
        "Hopper-v5: the ceiling": (
            "the runs train 300k steps where the zoo's reference trains 1M, to fit a working session (the "
            "budget is `BUDGETS` in `zoo_defaults.py`); one exploratory seed at 1M stood still on the true "
            "reward, so the longer budget is no sure cure either."
        ),
        "Hopper-v5: RLHF above": (
            "Hopper's own reward is mostly its bonus for every step it stays up, so the constant reward "
            "already teaches it to stand; against a ceiling that short of the zoo's, the constant arm's "
            "interval is wide and overlaps RLHF's."
        ),
    },
}
HEADING = "### What was tried for the misses"
NONE = "no account written yet."


def missed(block: str) -> list[str]:
    """The text of each target row of ``block`` marked missed, in order."""
    return [
        line.split(" | ")[0].removeprefix("| ").strip()
        for line in block.splitlines()
        if line.startswith("| ") and line.rstrip().endswith("| **missed** |")
    ]


def account(name: str, target: str) -> str:
    """The account of publication ``name``'s missed ``target``, or ``NONE``."""
    return next((text for start, text in TRIED.get(name, {}).items() if target.startswith(start)), NONE)


def with_accounts(name: str, block: str) -> str:
    """``block`` (a RESULTS.md section) with the account of each of its misses before its table of all
    arms (or at its end); unchanged when it misses nothing."""
    targets = missed(block)
    if not targets:
        return block
    accounts = "\n".join([HEADING, "", *(f"- **{t}**: {account(name, t)}" for t in targets), "", ""])
    head, mark, tail = block.partition("### All arms")
    return f"{head}{accounts}{mark}{tail}" if mark else f"{block.rstrip()}\n\n{accounts}"
