"""The code version of a package: git commit and dirty flag in a work tree, a source hash elsewhere."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from rlhf_gym.provenance import PACKAGE, code_version, describe_code, source_hash

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def git(cwd, *args: str) -> str:
    config = ["-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    return subprocess.run(
        ["git", *config, *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def package(root):
    pkg = root / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text('"""A package."""\n')
    (pkg / "sub" / "mod.py").write_text("X = 1\n")
    return pkg


def test_this_package_has_a_version_computed_once():
    version = code_version()
    assert re.fullmatch(r"git:[0-9a-f]{12}(\+dirty:[0-9a-f]{12})?|src:[0-9a-f]{12}", version)
    assert code_version() is version  # cached for the process


def test_outside_git_the_version_is_a_hash_of_the_sources(tmp_path):
    pkg = package(tmp_path)
    version = describe_code(pkg, git="no-such-git")  # as on a machine without git
    assert version == f"src:{source_hash(pkg)}" and re.fullmatch(r"src:[0-9a-f]{12}", version)
    assert describe_code(pkg) == version  # not in a work tree: the same
    (pkg / "__pycache__").mkdir()
    (pkg / "__pycache__" / "stale.pyc").write_bytes(b"ignored")
    assert describe_code(pkg) == version  # __pycache__ does not count
    (pkg / "data.yaml").write_text("a: 1\n")
    assert describe_code(pkg) != version  # any other file of the package does
    (pkg / "data.yaml").unlink()
    (tmp_path / "envs").mkdir()
    (tmp_path / "envs" / "Task-v0.yaml").write_text("max_episode_steps: 10\n")
    assert describe_code(pkg) != version  # and so do the task presets beside it
    (tmp_path / "envs" / "Task-v0.yaml").unlink()
    (pkg / "sub" / "mod.py").write_text("X = 2\n")
    assert describe_code(pkg) != version  # any change of a source
    (pkg / "sub" / "mod.py").write_text("X = 1\n")
    (pkg / "sub" / "mod.py").rename(pkg / "mod.py")
    assert describe_code(pkg) != version  # and a move: paths are hashed too


def _tree_version(root, *paths: str) -> str:
    import hashlib

    trees = [git(root, "rev-parse", f"HEAD:{path}").encode() for path in paths]
    return "git:" + hashlib.sha256(b"\0".join(trees)).hexdigest()[:12]


@needs_git
def test_in_a_work_tree_the_version_is_the_tree_and_a_dirty_flag(tmp_path):
    pkg = package(tmp_path)
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "one")
    first = _tree_version(tmp_path, pkg.name)
    assert describe_code(pkg) == first
    (tmp_path / "README.md").write_text("docs\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "docs only")
    assert describe_code(pkg) == first  # the package's tree: a docs commit does not change it

    (pkg / "sub" / "mod.py").write_text("X = 2\n")  # a tracked file changed
    edited = describe_code(pkg)
    assert re.fullmatch(rf"{first}\+dirty:[0-9a-f]{{12}}", edited)
    git(tmp_path, "add", ".")
    assert describe_code(pkg) == edited  # staged or not, the same change
    git(tmp_path, "-c", "diff.noprefix=true", "-c", "core.abbrev=20", "status")  # (settings never matter)
    (pkg / "sub" / "mod.py").write_text("X = 3\n")
    assert describe_code(pkg) not in (edited, first)  # another change, another hash
    git(tmp_path, "checkout", "-q", "HEAD", "--", ".")
    assert describe_code(pkg) == first

    (pkg / "new.py").write_text("Y = 1\n")  # an untracked file
    assert describe_code(pkg).startswith(f"{first}+dirty:")
    (pkg / "new.py").unlink()
    assert describe_code(pkg) == first

    (tmp_path / "envs").mkdir()  # presets beside the package count once committed
    (tmp_path / "envs" / "Task-v0.yaml").write_text("max_episode_steps: 10\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "presets")
    with_presets = _tree_version(tmp_path, pkg.name, "envs")
    assert describe_code(pkg) == with_presets != first
    (pkg / "sub" / "mod.py").write_text("X = 4\n")
    git(tmp_path, "commit", "-qam", "two")
    assert describe_code(pkg) == _tree_version(tmp_path, pkg.name, "envs") != with_presets


@needs_git
def test_every_clone_of_the_same_code_has_the_same_version(tmp_path):
    """A shallow clone (as CI checks out) and a full one name the same code alike."""
    origin = tmp_path / "origin"
    origin.mkdir()
    pkg = package(origin)
    git(origin, "init", "-q")
    git(origin, "add", ".")
    git(origin, "commit", "-qm", "one")
    (origin / "README.md").write_text("docs\n")
    git(origin, "add", ".")
    git(origin, "commit", "-qm", "docs")
    for depth in ("--depth=1", "--no-local"):
        clone = tmp_path / depth.strip("-")
        git(tmp_path, "clone", "-q", depth, f"file://{origin}", str(clone))
        assert describe_code(clone / pkg.name) == describe_code(pkg)


@needs_git
def test_a_package_the_work_tree_does_not_track_gets_a_source_hash(tmp_path):
    git(tmp_path, "init", "-q")
    pkg = package(tmp_path)  # untracked
    assert describe_code(pkg) == f"src:{source_hash(pkg)}"


def test_the_package_is_this_one():
    assert (PACKAGE / "provenance.py").is_file()
