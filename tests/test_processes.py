"""Children that die with their parent: SIGKILL a parent, and its child is gone within seconds."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from rlhf_gym.processes import EXIT_ORPHANED, descendants, die_with_parent, parent_death_signal, pid_alive

# A parent that forks a child, which arranges to die with it and then blocks for good in a write to
# a pipe nobody reads (as the labelling app's learner did); the parent then sleeps.
PARENT = """
import os, sys, time
from rlhf_gym import processes

parent = os.getpid()
if os.fork() == 0:
    if sys.argv[1] == "watchdog":  # as on macOS: no parent-death signal
        processes.parent_death_signal = lambda signum: False
    processes.die_with_parent(parent, poll_seconds=0.2)
    read, write = os.pipe()
    print(os.getpid(), flush=True)
    os.write(write, b"x" * (1 << 20))  # blocks: the pipe holds 64 KiB
    os._exit(0)
time.sleep(600)
"""


def gone_within(pids: list[int], seconds: float) -> list[int]:
    """The pids still alive after waiting up to ``seconds`` for them all to end."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        alive = [p for p in pids if pid_alive(p)]
        if not alive:
            return []
        time.sleep(0.05)
    return [p for p in pids if pid_alive(p)]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forks a child")
@pytest.mark.parametrize("means", ["signal", "watchdog"])
def test_a_child_blocked_in_a_pipe_write_dies_when_its_parent_is_sigkilled(tmp_path, means):
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent(PARENT))
    proc = subprocess.Popen([sys.executable, str(script), means], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        child = int(proc.stdout.readline())  # set up, and about to block
        time.sleep(0.2)
        assert pid_alive(child) and descendants(proc.pid) == [child]
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    start = time.monotonic()
    assert gone_within([child], 10.0) == [], f"child {child} outlived its SIGKILLed parent ({means})"
    assert time.monotonic() - start < (1.0 if means == "signal" else 3.0)


def test_a_parent_that_died_before_the_call_ends_the_child_at_once():
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # reaped: its pid names no process now
    assert not pid_alive(dead.pid)
    child = mp.get_context("fork").Process(target=die_with_parent, args=(dead.pid,))
    child.start()
    child.join(10.0)
    assert child.exitcode == EXIT_ORPHANED


def test_a_living_parent_leaves_the_child_alone():
    child = mp.get_context("fork").Process(target=_live_a_while, args=(os.getpid(),))
    child.start()
    child.join(10.0)
    assert child.exitcode == 0


def _live_a_while(parent: int) -> None:
    die_with_parent(parent, poll_seconds=0.01)
    time.sleep(0.3)  # the watchdog looks 30 times and finds the parent every time


def test_the_parent_death_signal_is_linux_only():
    # (asked of a child: the test process itself must not die with pytest's parent)
    ctx = mp.get_context("fork")
    got = ctx.Queue()
    child = ctx.Process(target=lambda: got.put(parent_death_signal(signal.SIGKILL)))
    child.start()
    assert got.get(timeout=10.0) is sys.platform.startswith("linux")
    child.join(10.0)


def test_bad_arguments_get_clear_errors():
    with pytest.raises(ValueError, match="parent must be a positive pid, got 0"):
        die_with_parent(0)
    with pytest.raises(ValueError, match="parent must be a positive pid, got '1'"):
        die_with_parent("1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="poll_seconds must be positive, got 0"):
        die_with_parent(os.getppid(), poll_seconds=0)


def test_descendants_and_pid_alive():
    proc = subprocess.Popen(["sleep", "30"])
    try:
        assert proc.pid in descendants(os.getpid()) and pid_alive(proc.pid)
    finally:
        proc.kill()
        proc.wait()
    assert proc.pid not in descendants(os.getpid()) and not pid_alive(proc.pid)
    assert pid_alive(os.getpid())
