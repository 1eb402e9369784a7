"""Keyboard play, driven headless by posted pygame events."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pygame
import pytest

from rlhf_gym.human.keymap import key_words, pace
from rlhf_gym.human.play import legend, play
from rlhf_gym.tasks.registry import Task, get_task, preset_names


def post(kind: int, key: int) -> None:
    pygame.display.init()  # the event queue needs the video subsystem
    pygame.event.post(pygame.event.Event(kind, key=key))


def test_a_held_key_drives_the_actions_until_released():
    post(pygame.KEYDOWN, pygame.K_RIGHT)
    result = play(get_task("CartPole-v1"), fps=10_000, max_steps=5, seed=0)
    assert result.quit_reason == "steps"
    (episode,) = result.episodes
    assert episode.actions.tolist() == [1] * 5  # right = push right; without a key it would be 0

    post(pygame.KEYDOWN, pygame.K_RIGHT)
    post(pygame.KEYUP, pygame.K_RIGHT)
    result = play(get_task("CartPole-v1"), fps=10_000, max_steps=3, seed=0)
    # released before the first step: no key, and CartPole (no do-nothing action) alternates its pushes
    assert result.episodes[0].actions.tolist() == [0, 1, 0]


def test_continuous_keys_add_offsets_and_returns_are_true_returns():
    task = get_task("Pendulum-v1")
    post(pygame.KEYDOWN, pygame.K_LEFT)
    result = play(task, fps=10_000, max_episodes=1, seed=3)
    assert result.quit_reason == "episodes"
    (episode,) = result.episodes
    assert len(episode) == task.max_episode_steps
    np.testing.assert_array_equal(episode.actions, np.full((task.max_episode_steps, 1), 2.0, np.float32))
    # The same actions replayed without a window give the same true return.
    env = task.make()
    env.reset(seed=3)
    expected = sum(env.step(np.array([2.0], np.float32))[1] for _ in range(task.max_episode_steps))
    assert result.returns == [pytest.approx(expected)]


def test_escape_and_closing_the_window_quit_and_keep_the_partial_episode():
    post(pygame.KEYDOWN, pygame.K_ESCAPE)
    result = play(get_task("CartPole-v1"), fps=10_000, max_steps=100)
    assert result.quit_reason == "escape" and result.episodes == []

    def close_at_frame_4(frame: int) -> None:
        if frame == 4:
            pygame.event.post(pygame.event.Event(pygame.QUIT))

    closed = play(get_task("CartPole-v1"), fps=10_000, max_steps=100, seed=0, callback=close_at_frame_4)
    assert closed.quit_reason == "window"
    assert [len(e) for e in closed.episodes] == [4]  # the 4 steps before the window closed


def at_frames(events: dict[int, int]):
    """A play callback that posts a KEYDOWN of ``events[frame]`` at that frame."""
    return lambda frame: events.get(frame) and post(pygame.KEYDOWN, events[frame])


def test_pause_stops_the_steps_and_restart_starts_a_new_episode():
    paused = play(
        get_task("CartPole-v1"),
        fps=10_000,
        max_steps=3,
        callback=at_frames({0: pygame.K_TAB, 5: pygame.K_TAB}),
    )
    assert paused.frames == 8 and [len(e) for e in paused.episodes] == [3]  # frames 0-4 took no step

    restarted = play(
        get_task("CartPole-v1"), fps=10_000, max_steps=5, seed=0, callback=at_frames({3: pygame.K_BACKSPACE})
    )
    assert [len(e) for e in restarted.episodes] == [3, 2]
    assert not restarted.episodes[0].terminated


def test_a_key_map_that_does_not_fit_the_action_space_is_an_error():
    task = get_task("CartPole-v1")
    broken = Task(**{**task.__dict__, "keys": {"left": 0, "right": 7}})
    with pytest.raises(ValueError, match=r"key 'right' gives 7, outside the action space Discrete\(2\)"):
        play(broken, max_steps=1)
    with pytest.raises(ValueError, match="has no key map"):
        play(Task(**{**task.__dict__, "keys": {}}), max_steps=1)
    with pytest.raises(ValueError, match="'lefty' is not a pygame key name"):
        play(Task(**{**task.__dict__, "keys": {"lefty": 0}, "play": {}}), max_steps=1)
    with pytest.raises(ValueError, match=r"play\.words names left, right, not keys of the task"):
        play(Task(**{**task.__dict__, "keys": {"a": 0}}), max_steps=1)
    with pytest.raises(ValueError, match="play has unknown key"):
        play(Task(**{**task.__dict__, "play": {"speed": 3}}), max_steps=1)
    pendulum = get_task("Pendulum-v1")
    with pytest.raises(ValueError, match=r"does not fit the action space Box.*cannot reshape"):
        play(Task(**{**pendulum.__dict__, "noop": [0.0, 0.0]}), max_steps=1)


def test_legend_names_actions_in_words_and_every_preset_has_words_for_its_keys():
    text = legend(get_task("Pendulum-v1"))
    assert "left: torque counter-clockwise" in text and "no key: no torque" in text and "Esc: quit" in text
    assert "[2.0]" not in text
    for name in preset_names():
        task = get_task(name)
        if task.keys:
            words = dict(key_words(task))
            assert set(words) == {*task.keys, "no key"}, name
            assert all(not w.startswith(("action ", "[")) for w in words.values()), f"{name}: {words}"


def test_play_runs_at_the_tasks_human_pace():
    task = get_task("CartPole-v1")
    assert pace(task, task.make()) == 15  # its preset's play.fps, not CartPole's 50 frames a second
    pendulum = get_task("Pendulum-v1")
    assert pace(pendulum, pendulum.make()) == 30  # no play.fps: the environment's render_fps


def test_play_without_a_display_is_a_one_line_error():
    env = {"PATH": "", "HOME": "/nonexistent"}  # no DISPLAY and no SDL_VIDEODRIVER
    proc = subprocess.run(
        [sys.executable, "-m", "rlhf_gym.cli.main", "play", "--task", "CartPole-v1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "rlhf-gym: error: cannot open a window" in proc.stderr and "Xvfb" in proc.stderr


@pytest.mark.parametrize(
    ("name", "play_block", "match"),
    [
        ("CartPole-v1", {"fps": float("nan")}, r"play\.fps must be a finite positive number"),
        ("CartPole-v1", {"fps": float("inf")}, r"play\.fps must be a finite positive number"),
        ("CartPole-v1", {"fps": 0}, r"play\.fps must be a finite positive number"),
        ("CartPole-v1", {"fps": True}, r"play\.fps must be a finite positive number"),
        ("CartPole-v1", {"scene": ["the cart"]}, r"play\.scene must be text"),
        ("CartPole-v1", {"words": {1: "push"}}, r"play\.words must map key names to text"),
        ("CartPole-v1", {"idle": [0, 5]}, r"play\.idle action 5 is outside the action space Discrete\(2\)"),
        ("CartPole-v1", {"idle": ["x"]}, r"play\.idle action 'x' is outside the action space"),
        ("Pendulum-v1", {"idle": [[9.0]]}, r"play\.idle action \[9\.0\] is outside the action space Box"),
        ("Pendulum-v1", {"idle": [[0.0, 0.0]]}, r"play\.idle action \[0\.0, 0\.0\] is outside .*reshape"),
    ],
)
def test_a_bad_play_block_is_one_clear_error_naming_the_task_and_field(name, play_block, match):
    task = get_task(name)
    broken = Task(**{**task.__dict__, "play": {**(task.play or {}), **play_block}})
    with pytest.raises(ValueError, match=f"task {name!r}: " + match):
        play(broken, max_steps=1)
