"""Child processes that die with their parent, even when the parent is SIGKILLed.

A parent killed with SIGKILL runs no cleanup, so it cannot stop its children: a sweep's pool
workers would keep running, and the labelling app's learner would block for good writing to a
pipe nobody reads. ``die_with_parent()``, called first thing in a child, makes the child end
itself instead, by two means:

- **a parent-death signal** (Linux): ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` asks the kernel to
  SIGKILL this process the moment its parent dies, whatever the process is doing;
- **a watchdog thread** (everywhere else, and as a second line on Linux): a daemon thread that
  looks every ``poll_seconds`` whether the parent is still there, and ends the process with
  ``os._exit`` when it is not. ``os._exit`` runs no exit handlers, so a queue's feeder thread
  stuck on a full pipe cannot hold the exit up.

The parent is checked once more after both are set up, which closes the race of a parent that
died between starting the child and the child's call.

Example:
    >>> import multiprocessing as mp, os
    >>> from rlhf_gym.processes import die_with_parent
    >>> def work(parent: int) -> None:
    ...     die_with_parent(parent)  # first thing in the child
    ...     ...
    >>> child = mp.get_context("fork").Process(target=work, args=(os.getpid(),))
    >>> child.start()
    >>> child.join()
    >>> child.exitcode
    0
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
EXIT_ORPHANED = 70  # the exit code of a child that ended because its parent died (EX_SOFTWARE)


def die_with_parent(parent: int | None = None, poll_seconds: float = 0.5) -> None:
    """End this process as soon as ``parent`` is gone; call it first thing in a child process.

    Args:
        parent: the pid of the process to die with: pass the parent's ``os.getpid()``, taken
            in the parent before starting the child, so that a parent that died before this
            call is noticed too. ``None`` uses the current parent (``os.getppid()``).
        poll_seconds: how often the watchdog thread looks for the parent.

    Raises:
        ValueError: ``parent`` is not a positive pid, or ``poll_seconds`` is not positive.

    On Linux the kernel's parent-death signal is tied to the *thread* that started this process:
    a parent should start its children from a thread that lives as long as the parent does (the
    main thread, or the thread that also stops them).
    """
    if parent is None:
        parent = os.getppid()
    if isinstance(parent, bool) or not isinstance(parent, int) or parent < 1:
        raise ValueError(f"parent must be a positive pid, got {parent!r}")
    if not poll_seconds > 0:
        raise ValueError(f"poll_seconds must be positive, got {poll_seconds!r}")
    direct = parent == os.getppid()  # the kernel's signal only watches the direct parent
    if direct:
        parent_death_signal(signal.SIGKILL)
    if not _alive(parent, direct):  # the parent died before the signal was set up
        os._exit(EXIT_ORPHANED)
    watchdog = threading.Thread(
        target=_watch, args=(parent, direct, poll_seconds), daemon=True, name=f"rlhf-gym: die with {parent}"
    )
    watchdog.start()


def parent_death_signal(signum: int) -> bool:
    """Ask the kernel to send ``signum`` to this process when its parent dies (Linux only).

    Returns whether the kernel took the request: ``False`` on a platform without
    ``PR_SET_PDEATHSIG`` (macOS, the BSDs, Windows), where only the watchdog of
    ``die_with_parent`` acts.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return bool(libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0)
    except (OSError, AttributeError):  # no libc to load, or one without prctl
        return False


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists and is not a zombie (a dead process not yet reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, but belongs to someone else
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):  # no /proc (macOS), or it ended just now
        return True
    return state not in (b"Z", b"X")


def descendants(pid: int) -> list[int]:
    """The pids of every living process that ``pid`` started, directly or not, lowest first.

    Read from ``/proc`` on Linux and from ``ps`` elsewhere; a check that a killed process left
    no child behind takes them before the kill, since orphans are handed to another parent.
    """
    parents: dict[int, int] = {}
    if os.path.isdir("/proc/self"):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
            except (OSError, IndexError):  # it ended while being read
                continue
            if fields[0] not in (b"Z", b"X"):
                parents[int(entry)] = int(fields[1])
    else:
        import subprocess

        out = subprocess.run(["ps", "-A", "-o", "pid=,ppid=,stat="], capture_output=True, text=True).stdout
        for line in out.splitlines():
            child, parent, state = line.split()[:3]
            if not state.startswith("Z"):
                parents[int(child)] = int(parent)
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {c for c, p in parents.items() if p in frontier and c not in found}
        found |= frontier
    return sorted(found)


def _alive(parent: int, direct: bool) -> bool:
    # a direct parent is gone once this process has been handed to another (init, a subreaper);
    # a parent further up (a forkserver in between) is looked up by its pid
    return os.getppid() == parent if direct else pid_alive(parent)


def _watch(parent: int, direct: bool, poll_seconds: float) -> None:
    while _alive(parent, direct):
        time.sleep(poll_seconds)
    os._exit(EXIT_ORPHANED)
