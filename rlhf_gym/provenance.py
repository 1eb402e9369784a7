"""Where a result came from: the code that made it (``code_version``) and the platform it ran on
(CPU, torch's CPU kernels, package versions). Every run's ``summary.json`` records both."""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


@functools.cache
def code_version() -> str:
    """The version of the ``rlhf_gym`` sources this process runs, computed once per process (see
    ``describe_code``): ``git:<commit>``, ``git:<commit>+dirty:<hash>`` or ``src:<hash>``.

    Example:
        >>> code_version().startswith(("git:", "src:")) and code_version() is code_version()
        True
    """
    return describe_code(PACKAGE)


def describe_code(package: str | Path, git: str = "git") -> str:
    """The version of the Python sources of ``package`` (a folder), without the cache.

    In a git work tree that tracks the package, ``git:`` and 12 hex digits of the last commit
    that changed the package's folder (a commit that changes only docs or benchmarks leaves it
    alone), then ``+dirty:`` and 12 hex digits of a hash of the changes when anything under the
    folder differs from that commit: a tracked file changed, staged or not, or an untracked
    ``.py`` file. Anywhere else (an installed wheel, no ``git`` on the machine, a work tree git
    refuses to read), ``src:`` and 12 hex digits of ``source_hash``.

    Args:
        package: the package's folder.
        git: the git executable to run.

    Example:
        >>> describe_code(PACKAGE, git="no-such-git") == "src:" + source_hash(PACKAGE)
        True
    """
    package = Path(package).resolve()
    try:
        return _git_version(package, git) or f"src:{source_hash(package)}"
    except (OSError, subprocess.SubprocessError):  # no git, or git could not read the tree
        return f"src:{source_hash(package)}"


def source_hash(package: str | Path) -> str:
    """12 hex digits of the SHA-256 of the package's files and of the task presets beside it
    (``envs/``, if there): each file's path and bytes, in sorted order of path; ``__pycache__``
    folders are left out.

    Example:
        >>> len(source_hash(PACKAGE)) == 12 and source_hash(PACKAGE) == source_hash(str(PACKAGE))
        True
    """
    package = Path(package)
    digest = hashlib.sha256()
    for root in (package, package.parent / "envs"):
        files = [p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
        for path in sorted(files, key=lambda p: p.relative_to(package.parent).as_posix()):
            name = path.relative_to(package.parent).as_posix()
            digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def _git_version(package: Path, git: str) -> str | None:
    """``git:<tree>[+dirty:<hash>]``, or None when ``package`` is not tracked by a git work tree.

    ``<tree>`` hashes git's tree ids of the package and of the presets (``envs/``) at HEAD: the
    same in every clone of the same code, shallow or not. ``<hash>`` hashes the bytes of every
    file that differs from HEAD (``git status``), so no user's diff settings change it."""

    def run(*args: str) -> bytes:
        # GIT_OPTIONAL_LOCKS=0: reading must never take the index lock of a tree others work in
        env = os.environ | {"GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
        return subprocess.run(
            [git, "-C", str(package), *args], capture_output=True, check=True, timeout=30, env=env
        ).stdout

    try:
        if not run("ls-files", "--", "__init__.py").strip():
            return None  # inside some work tree, but not a package it tracks
        trees = [run("rev-parse", "HEAD:./").strip()]
        paths = ["."]
        if (package.parent / "envs").is_dir():
            try:
                trees.append(run("rev-parse", "HEAD:../envs").strip())
                paths.append("../envs")
            except subprocess.CalledProcessError:
                pass  # presets not committed: the package alone
        status = run("status", "--porcelain", "-z", "--untracked-files=all", "--no-renames", "--", *paths)
        top = Path(run("rev-parse", "--show-toplevel").decode().strip())
    except subprocess.CalledProcessError:  # not a work tree, no commit yet, or one git refuses
        return None
    version = "git:" + hashlib.sha256(b"\0".join(trees)).hexdigest()[:12]
    changed = sorted(
        name
        for name in (entry[3:] for entry in status.decode().split("\0") if len(entry) > 3)
        if "__pycache__" not in name.split("/")
    )
    if not changed:
        return version
    digest = hashlib.sha256()
    for name in changed:
        path = top / name
        digest.update(b"\0" + name.encode() + b"\0" + (path.read_bytes() if path.is_file() else b"<gone>"))
    return f"{version}+dirty:{digest.hexdigest()[:12]}"


@functools.cache
def platform() -> str:
    """The CPU, the vector kernels torch dispatches to, and the versions a run's numbers depend on.
    Learned-reward runs are reproducible bit for bit only on the same platform: torch picks its
    CPU kernels (AVX2, AVX-512, ...) by the processor, and a different float rounding in the
    reward model changes which policy PPO ends up with.

    Example:
        >>> "torch " in platform() and "kernels" in platform()
        True
    """
    import platform as host

    import gymnasium
    import numpy
    import stable_baselines3
    import torch

    model = host.processor() or host.machine()
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    return (
        f"{model} ({torch.backends.cpu.get_cpu_capability()} kernels); Python {host.python_version()}, "
        f"torch {torch.__version__}, stable-baselines3 {stable_baselines3.__version__}, "
        f"gymnasium {gymnasium.__version__}, numpy {numpy.__version__}"
    )
