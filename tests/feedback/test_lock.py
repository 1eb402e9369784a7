"""The store's writer lock: one writer at a time, a clear error for the second, freed by a SIGKILL."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import pytest

from rlhf_gym.feedback.lock import StoreInUseError, StoreLock, lock_path

HOLDER = """
import sys, time
from rlhf_gym.feedback.lock import StoreLock

lock = StoreLock(sys.argv[1]).acquire()
print("locked", flush=True)
time.sleep(600)
"""


def test_a_second_writer_gets_one_clear_error_naming_the_store_and_the_holder(tmp_path):
    store = tmp_path / "s.db"
    with StoreLock(store) as first:
        assert first.held and lock_path(store).is_file()
        with pytest.raises(StoreInUseError) as err:
            StoreLock(store).acquire()
        message = str(err.value)
        assert str(store) in message and f"pid {os.getpid()}" in message and "\n" not in message
        assert isinstance(err.value, ValueError)  # the CLI prints it as one rlhf-gym: error: line
        assert first.held  # the failed attempt took nothing from the holder
        with pytest.raises(RuntimeError, match="already held by this object"):
            first.acquire()
    assert not first.held and not lock_path(store).exists()  # no file left behind
    with StoreLock(store):  # free again
        pass
    other = tmp_path / "t.db"
    with StoreLock(store), StoreLock(other):  # one lock per store
        pass


def test_the_lock_is_freed_when_its_holder_is_sigkilled(tmp_path):
    store = tmp_path / "s.db"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(store)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(
            StoreInUseError, match=re.escape(f"{store} is in use by another writer (pid {holder.pid})")
        ):
            StoreLock(store).acquire()
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    assert lock_path(store).exists()  # a SIGKILL cleans nothing up, yet the kernel freed the lock
    with StoreLock(store) as lock:
        assert lock.held
        assert f"{os.getpid()}" in lock_path(store).read_text()  # the new holder's pid


def test_a_lock_that_cannot_be_created_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"cannot lock feedback store .*missing.*expected a writable folder"):
        StoreLock(tmp_path / "missing" / "s.db").acquire()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forks")
def test_a_forked_copy_of_the_lock_does_not_free_it(tmp_path):
    store = tmp_path / "s.db"
    with StoreLock(store) as lock:
        pid = os.fork()
        if pid == 0:  # the child drops its copy, as a forked worker would on exit
            try:
                lock.release()
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        assert lock_path(store).exists()
        with pytest.raises(StoreInUseError):
            StoreLock(store).acquire()
