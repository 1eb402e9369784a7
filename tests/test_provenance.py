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
    (pkg / "__pycache__" / "stale.py").write_text("ignored\n")
    (pkg / "notes.txt").write_text("not source\n")
    assert describe_code(pkg) == version  # __pycache__ and non-Python files do not count
    (pkg / "sub" / "mod.py").write_text("X = 2\n")
    assert describe_code(pkg) != version  # any change of a source does
    (pkg / "sub" / "mod.py").write_text("X = 1\n")
    (pkg / "sub" / "mod.py").rename(pkg / "mod.py")
    assert describe_code(pkg) != version  # and so does a move: paths are hashed too


@needs_git
def test_in_a_work_tree_the_version_is_the_commit_and_a_dirty_flag(tmp_path):
    pkg = package(tmp_path)
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "one")
    commit = git(tmp_path, "rev-parse", "HEAD")
    assert describe_code(pkg) == f"git:{commit[:12]}"
    (tmp_path / "README.md").write_text("docs\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "docs only")
    assert describe_code(pkg) == f"git:{commit[:12]}"  # the last commit that changed the package

    (pkg / "sub" / "mod.py").write_text("X = 2\n")  # a tracked file changed
    edited = describe_code(pkg)
    assert re.fullmatch(rf"git:{commit[:12]}\+dirty:[0-9a-f]{{12}}", edited)
    git(tmp_path, "add", ".")
    assert describe_code(pkg) == edited  # staged or not, the same change
    (pkg / "sub" / "mod.py").write_text("X = 3\n")
    assert describe_code(pkg) not in (edited, f"git:{commit[:12]}")  # another change, another hash
    git(tmp_path, "checkout", "-q", "HEAD", "--", ".")
    assert describe_code(pkg) == f"git:{commit[:12]}"

    (pkg / "new.py").write_text("Y = 1\n")  # an untracked source
    assert describe_code(pkg).startswith(f"git:{commit[:12]}+dirty:")
    (pkg / "new.py").unlink()
    (pkg / "data.csv").write_text("1\n")  # an untracked file that is not Python
    assert describe_code(pkg) == f"git:{commit[:12]}"

    (pkg / "sub" / "mod.py").write_text("X = 4\n")
    git(tmp_path, "commit", "-qam", "two")
    assert describe_code(pkg) == f"git:{git(tmp_path, 'rev-parse', 'HEAD')[:12]}"


@needs_git
def test_a_package_the_work_tree_does_not_track_gets_a_source_hash(tmp_path):
    git(tmp_path, "init", "-q")
    pkg = package(tmp_path)  # untracked
    assert describe_code(pkg) == f"src:{source_hash(pkg)}"


def test_the_package_is_this_one():
    assert (PACKAGE / "provenance.py").is_file()
