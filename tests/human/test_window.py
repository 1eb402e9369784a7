"""Closing the window every way, and a panel that fits every task and mode."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pygame
import pytest

from rlhf_gym.human.app import control_keys
from rlhf_gym.human.keymap import describe, scene
from rlhf_gym.human.panel import MIN_WIDTH, Panel
from rlhf_gym.tasks.registry import get_task, preset_names


def test_the_panel_wraps_every_legend_without_cutting_a_key_and_grows_the_window():
    pygame.display.init()
    pygame.font.init()
    panel = Panel(pygame)
    for name in preset_names():
        task = get_task(name)
        for mode in ("compare", "live", "demo") if task.keys else ("compare",):
            keys = control_keys(task, mode)
            line = "  ".join(f"{k}: {c}" for k, c in keys.items())
            if mode != "compare":
                line = f"{describe(task)}  {line}  {scene(task)}"
            rows = panel.wrap(line, MIN_WIDTH - 16)
            assert all(panel.font.size(row)[0] <= MIN_WIDTH - 16 for row in rows), (name, mode)
            text = " ".join(rows)
            assert all(f"{k}: {c}" in text for k, c in keys.items()), (name, mode)  # nothing cut
    window = pygame.display.set_mode((MIN_WIDTH, 60))
    grown = panel.draw(window, [("word " * 400, (255, 255, 255))], 20)
    assert grown.get_height() > 60 + 19 * 10  # grown to hold every row, not cut


NEEDS_X = shutil.which("Xvfb") is None or shutil.which("xdotool") is None


def windows_of(pid: int, env: dict[str, str]) -> list[str]:
    found = subprocess.run(
        ["xdotool", "search", "--onlyvisible", "--pid", str(pid)],
        capture_output=True,
        text=True,
        env=env,
        timeout=10,
    )
    return found.stdout.split()


@pytest.mark.skipif(NEEDS_X, reason="needs Xvfb and xdotool")
@pytest.mark.parametrize("how", ["windowclose", "key q"])
def test_every_way_of_closing_a_real_window_ends_cleanly_with_the_summary(tmp_path, how):
    display = f":{90 + os.getpid() % 7}"
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", "1024x768x24", "-nolisten", "tcp"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("SDL_")} | {"DISPLAY": display}
    cmd = [sys.executable, "-m", "rlhf_gym.cli.main", "label", "--task", "CartPole-v1", "--store"]
    proc = None
    try:
        time.sleep(1.0)
        proc = subprocess.Popen(
            [*cmd, str(tmp_path / "s.db")], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        deadline, found = time.monotonic() + 60, []
        while not found and time.monotonic() < deadline:
            found = windows_of(proc.pid, env)
            time.sleep(0.2)
        assert found, "no window"
        time.sleep(3.0)
        # The window may be replaced while the app settles its size, so each try looks the window up
        # again; a try on a window that has just gone fails with BadWindow and the next one goes on.
        out = err = None
        while out is None and time.monotonic() < deadline + 30:
            for window in windows_of(proc.pid, env):
                if how == "windowclose":  # destroys the window under SDL (Xlib would exit on BadDrawable)
                    subprocess.run(["xdotool", "windowclose", window], env=env, check=False, timeout=10)
                else:
                    subprocess.run(
                        ["xdotool", "windowfocus", "--sync", window], env=env, check=False, timeout=10
                    )
                    # (the app may quit on the key-down and destroy its window before xdotool's key-up,
                    # which then fails with BadWindow: what counts is the output below)
                    subprocess.run(
                        ["xdotool", "key", "--window", window, "q"], env=env, check=False, timeout=10
                    )
            try:
                out, err = proc.communicate(timeout=5)
            except subprocess.TimeoutExpired:
                continue
        assert out is not None, "the app did not end"
        assert proc.returncode == 0, err
        assert "label(s) recorded this session" in out and "learner stopped" in out
        assert ("window closed" if how == "windowclose" else "quit by key") in out
        assert "BadDrawable" not in err and "ALSA" not in err
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        xvfb.terminate()
        xvfb.wait(10)


def test_an_x11_library_that_does_not_load_leaves_the_default_handler(monkeypatch):
    import ctypes

    from rlhf_gym.human import window

    def refuse(name):
        raise OSError(f"{name}: cannot open shared object file")

    errors = window._XErrors()
    monkeypatch.setattr(window.ctypes.util, "find_library", lambda name: "libX11.so.6")
    monkeypatch.setattr(ctypes, "CDLL", refuse)
    errors.install()  # no exception: the app opens as it would without the guard
    assert errors.installed is None
