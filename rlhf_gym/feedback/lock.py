"""The writer lock of a feedback store: one writing session at a time, freed when its holder dies.

Two labelling sessions on one store would share one pending query and overwrite one agent.
``StoreLock`` lets a single writer in: it holds an exclusive ``flock`` on a side file,
``<store>.lock``, which names the holder's pid. The kernel releases a ``flock`` when the
holder's last descriptor closes, so a holder that crashes or is SIGKILLed frees the store at
once, with no stale lock to clear by hand. A second writer gets a ``StoreInUseError`` naming
the store and the holder's pid. Readers (``feedback info``, ``export``, the labelling app's
learner) take no lock: SQLite keeps their reads consistent.

On Windows, which has no ``flock``, ``msvcrt.locking`` locks the side file's first byte, which
Windows also releases when the holder's process ends.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import TracebackType

if sys.platform != "win32":
    import fcntl

PID_AT = 16  # where the holder's pid is written (Windows forbids reading a locked byte)


class StoreInUseError(ValueError):
    """Another session holds the writer lock of a feedback store."""


def lock_path(store: str | Path) -> Path:
    """The side file that holds the writer lock of ``store``: ``<store>.lock``."""
    store = Path(store)
    return store.with_name(store.name + ".lock")


class StoreLock:
    """The exclusive writer lock of the feedback store at ``store``; a context manager.

    Args:
        store: the store's path (the store itself need not exist yet).

    Raises:
        StoreInUseError: on ``acquire``, when another writer holds the lock (a ``ValueError``).
        ValueError: on ``acquire``, when the lock file cannot be created next to the store.

    Example:
        >>> import pathlib, tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     store = pathlib.Path(d) / "feedback.db"
        ...     with StoreLock(store) as lock:
        ...         try:
        ...             StoreLock(store).acquire()
        ...         except StoreInUseError as err:
        ...             print(lock.held, f"pid {os.getpid()}" in str(err))
        True True
    """

    def __init__(self, store: str | Path) -> None:
        self.store = Path(store)
        self.path = lock_path(self.store)
        self._fd: int | None = None
        self._owner = 0  # the pid that took the lock (a forked copy of this object must not free it)

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> StoreLock:
        """Take the lock at once, or raise ``StoreInUseError``; returns ``self``."""
        if self._fd is not None:
            raise RuntimeError(f"the writer lock of {self.store} is already held by this object")
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as err:
                raise ValueError(
                    f"cannot lock feedback store {self.store}: {err.strerror} ({self.path}); expected a "
                    "writable folder that exists"
                ) from err
            if not _try_lock(fd):
                holder = _read_pid(fd)
                os.close(fd)
                who = f"pid {holder}" if holder else "another process"
                raise StoreInUseError(
                    f"feedback store {self.store} is in use by another writer ({who}); expected one writing "
                    "session at a time: end that session, or use another store"
                )
            if _same_file(fd, self.path):
                break
            os.close(fd)  # a holder that was releasing removed this file: lock the new one
        _write_pid(fd)
        self._fd, self._owner = fd, os.getpid()
        return self

    def release(self) -> None:
        """Free the lock (and remove the side file); nothing happens if it is not held."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        if self._owner != os.getpid():  # a forked child's copy: the lock stays with its owner
            os.close(fd)
            return
        if sys.platform != "win32":  # removed while still locked, so no one locks a dying file
            try:
                os.unlink(self.path)
            except OSError:
                pass
        else:
            _unlock(fd)
        os.close(fd)

    def __enter__(self) -> StoreLock:
        return self.acquire()

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def __del__(self) -> None:
        if getattr(self, "_fd", None) is not None:
            self.release()


def _try_lock(fd: int) -> bool:
    if sys.platform == "win32":
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # the first byte, from offset 0
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _unlock(fd: int) -> None:
    if sys.platform == "win32":
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (a releasing holder unlinks it)."""
    if sys.platform == "win32":
        return True  # Windows cannot remove an open file
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino)


def _write_pid(fd: int) -> None:
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, f"{'rlhf-gym lock':<{PID_AT}}{os.getpid()}\n".encode())


def _read_pid(fd: int) -> int | None:
    """The holder's pid written in the lock file, or ``None`` if it has not written it yet."""
    try:
        os.lseek(fd, PID_AT, os.SEEK_SET)
        text = os.read(fd, 32).decode("ascii").strip()
        return int(text) if text.isdigit() else None
    except (OSError, UnicodeDecodeError):
        return None
