import itertools
import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.preprocessing import is_image_space

from rlhf_gym.tasks import snapshots
from rlhf_gym.tasks.envs import catch, pong
from rlhf_gym.tasks.envs.catch import CatchEnv
from rlhf_gym.tasks.envs.pixel_experts import catch_state, pong_state
from rlhf_gym.tasks.envs.pixels import (
    BALL,
    CATCH_COLS,
    CATCH_ROWS,
    CAUGHT,
    FALLING,
    FRAME,
    LINE_ROW,
    MISSED,
    OPPONENT,
    PADDLE,
    PIT,
    PLAYER,
    PONG_SCALE,
    CatchPixelsEnv,
    PongPixelsEnv,
)
from rlhf_gym.tasks.envs.pong import PongEnv
from rlhf_gym.tasks.registry import get_task
from tests.tasks.envs.snapshot_checks import random_actions, rollout

PAIRS = [("CatchPixels-v0", "Catch-v0"), ("PongPixels-v0", "Pong-v0")]
SHAPE = (FRAME, FRAME, 1)


def full_cells(start: float, size: float) -> list[int]:
    """The pixels [start, start + size) covers whole, its start drawn to the nearest 1/32 of a pixel."""
    start = math.floor(start * 32 + 0.5) / 32
    return list(range(math.ceil(start - 1e-9), math.floor(start + size + 1e-9)))


def centroid(patch: np.ndarray) -> tuple[float, float]:
    """The grey-weighted centre (row, col) of a frame region, in pixel units (pixel k spans [k, k + 1))."""
    grey = patch[..., 0].astype(float)
    rows, cols = np.indices(grey.shape) + 0.5
    return float((grey * rows).sum() / grey.sum()), float((grey * cols).sum() / grey.sum())


@pytest.mark.parametrize("checker", [gym_check_env, sb3_check_env])
@pytest.mark.parametrize("name", ["CatchPixels-v0", "PongPixels-v0"])
def test_env_checkers_pass_without_warnings_and_sb3_sees_an_image(name, checker):
    env = gym.make(f"rlhf_gym/{name}").unwrapped
    assert env.observation_space == gym.spaces.Box(0, 255, SHAPE, np.uint8)
    assert is_image_space(env.observation_space)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        checker(env)


@pytest.mark.parametrize(("pixels", "state"), PAIRS)
def test_same_seed_same_actions_same_rewards_flags_and_infos_as_the_state_env(pixels, state):
    assert gym.spec(f"rlhf_gym/{pixels}").max_episode_steps == gym.spec(f"rlhf_gym/{state}").max_episode_steps
    a, b = gym.make(f"rlhf_gym/{pixels}"), gym.make(f"rlhf_gym/{state}")
    obs, info_a = a.reset(seed=5)
    _, info_b = b.reset(seed=5)
    assert info_a == info_b
    steps, rewards, ends = 0, 0, 0
    for action in random_actions(1200, seed=2):
        obs, reward, terminated, truncated, info = a.step(action)
        assert obs.dtype == np.uint8 and obs.shape == SHAPE and a.observation_space.contains(obs)
        assert (reward, terminated, truncated, info) == b.step(action)[1:], steps
        assert a.unwrapped._t == b.unwrapped._t  # the very same game underneath
        steps, rewards = steps + 1, rewards + (reward != 0)
        if terminated or truncated:
            ends += 1
            obs, _ = a.reset()  # unseeded: both draw from their generators
            b.reset()
            assert obs.dtype == np.uint8 and obs.shape == SHAPE
    assert ends == 2 and rewards > 10  # two time limits, and points scored both ways


def test_catch_frame_shows_paddle_and_objects_where_the_state_puts_them_each_in_its_own_grey():
    env = CatchPixelsEnv()
    env.reset(seed=0)
    for px in np.random.default_rng(0).uniform(catch.PADDLE_HALF, 1 - catch.PADDLE_HALF, 20):
        env._px = float(px)
        env._objects = []
        obs = env._obs()
        left, width = (px - catch.PADDLE_HALF) * CATCH_COLS, 2 * catch.PADDLE_HALF * CATCH_COLS
        for row in (LINE_ROW, LINE_ROW + 1):
            assert np.flatnonzero(obs[row, :, 0] == PADDLE).tolist() == full_cells(left, width)
        assert obs[LINE_ROW + 2, :, 0].tolist() == [PIT] * FRAME  # the pit, below the paddle
        assert not obs[:LINE_ROW].any()  # nothing above the catch line

    env._px = 0.5
    env._objects = [(0.8, -0.05, 0.0, 0.03, 0), (0.5, 0.0, 0.0, 0.0, 3), (0.2, 0.6, 0.0, 0.03, 0)]
    obs = env._obs()
    for (x, y, *_), level in zip(env._objects, (MISSED, CAUGHT, FALLING)):
        top, col = LINE_ROW - 2 - y * CATCH_ROWS, x * CATCH_COLS - 1
        cells = obs[math.floor(top) : math.floor(top) + 3, math.floor(col) : math.floor(col) + 3, 0]
        assert cells.max() == level, (x, y)  # its full-level pixels
    assert obs[LINE_ROW : LINE_ROW + 4].min() >= PIT  # the missed object's faint edges leave the pit lit
    levels = {PIT, PADDLE, MISSED, CAUGHT, FALLING}
    assert len(levels) == 5 and levels <= set(obs.ravel().tolist())


def test_a_falling_object_moves_down_the_frame_as_its_state_says_to_a_fraction_of_a_pixel():
    env = CatchPixelsEnv()
    env.reset(seed=0)
    env._px, env._spawn_timer = 0.9, 1000
    env._objects = [(0.3, 1.0, 0.007, 0.023, 0)]  # drifting right, slower than a pixel a step sideways
    rows = []
    for _ in range(40):
        obs = env.step(1)[0]
        x, y, *_ = env._objects[0]
        assert y > 0.0  # still falling, clear of everything else
        mask = obs[..., 0] == FALLING
        top, left = LINE_ROW - 2 - y * CATCH_ROWS, x * CATCH_COLS - 1
        assert np.flatnonzero(mask.any(axis=1)).tolist() == full_cells(top, 2.0)
        assert np.flatnonzero(mask.any(axis=0)).tolist() == full_cells(left, 2.0)
        region = obs[math.floor(top) : math.floor(top) + 3, math.floor(left) : math.floor(left) + 3]
        row, col = centroid(region)
        # the grey-weighted centre is the object's centre: sub-pixel motion shows
        assert row + math.floor(top) == pytest.approx(top + 1, abs=0.05)
        assert col + math.floor(left) == pytest.approx(left + 1, abs=0.05)
        rows.append(row + math.floor(top))
    assert all(b > a for a, b in itertools.pairwise(rows))  # down every step


def test_pong_frame_shows_both_paddles_and_the_ball_where_the_state_puts_them():
    env = PongPixelsEnv()
    env.reset(seed=0)
    rng = np.random.default_rng(1)
    for _ in range(20):
        player, opponent = (float(v) for v in rng.uniform(pong.PADDLE_HALF, 1 - pong.PADDLE_HALF, 2))
        x, y = float(rng.uniform(0.2, 0.8)), float(rng.uniform(pong.LOW, pong.HIGH))
        env._player, env._opponent, env._ball = player, opponent, (x, y, pong.VX, 0.0)
        obs = env._obs()
        top, left = (1 - y) * PONG_SCALE - 1, x * PONG_SCALE - 1
        i, j = math.floor(top), math.floor(left)
        region = obs[i : i + 3, j : j + 3]
        assert region.max() == BALL and (obs == BALL).sum() == (region == BALL).sum()
        paddles = obs.copy()
        paddles[i : i + 3, j : j + 3] = 0  # the ball's edges may take any grey level
        height = 2 * pong.PADDLE_HALF * PONG_SCALE
        for centre, col, level in ((player, 33, PLAYER), (opponent, 2, OPPONENT)):
            top = (1 - centre - pong.PADDLE_HALF) * PONG_SCALE
            assert np.flatnonzero(paddles[:, col, 0] == level).tolist() == full_cells(top, height)
        assert np.flatnonzero((paddles[..., 0] == PLAYER).any(axis=0)).tolist() == [33]  # behind x = 0.9
        assert np.flatnonzero((paddles[..., 0] == OPPONENT).any(axis=0)).tolist() == [2]  # behind x = 0.1
        row, col = centroid(region)
        assert (row + i, col + j) == pytest.approx(((1 - y) * PONG_SCALE, x * PONG_SCALE), abs=0.05)
    assert len({BALL, PLAYER, OPPONENT, 0}) == 4


def test_the_ball_at_a_paddle_is_drawn_over_it_and_at_the_wall_stays_in_the_frame():
    env = PongPixelsEnv()
    env.reset(seed=0)
    # reaching the player's paddle: a tenth of the ball's box over the paddle's first full column
    env._player, env._ball = 0.5, ((33.1 - 1) / PONG_SCALE, 0.5, pong.VX, 0.0)
    obs = env._obs()
    assert (obs == BALL).any() and obs[16:21, 33, 0].tolist() == [PLAYER] * 5  # not dimmed by the ball
    env._ball = (pong.PLAYER_X + 0.02, 0.5, pong.VX, 0.0)  # behind the face: over the paddle
    obs = env._obs()
    assert obs[18, 33, 0] == BALL and obs[15, 33, 0] == PLAYER
    env._ball = (0.5, pong.HIGH, pong.VX, 0.0)  # touching the top wall
    obs = env._obs()
    assert obs.shape == SHAPE and obs[0].max() == BALL


@pytest.mark.parametrize("name", ["CatchPixels-v0", "PongPixels-v0"])
def test_snapshot_round_trip_is_exact(name):
    env, fresh = gym.make(f"rlhf_gym/{name}"), gym.make(f"rlhf_gym/{name}")
    actions = random_actions(300)
    obs, _ = env.reset(seed=3)
    for action in actions[:40]:
        obs, *_ = env.step(action)
    snap = snapshots.snapshot(env, obs)
    original = rollout(env, actions[40:])
    assert any(step[1] for step in original)  # something was scored after the snapshot
    assert np.array_equal(snapshots.restore(env, snap), obs)
    assert rollout(env, actions[40:]) == original
    fresh.reset(seed=99)
    assert np.array_equal(snapshots.restore(fresh, snap), obs)
    assert rollout(fresh, actions[40:]) == original


@pytest.mark.parametrize(("pixels", "state"), [(CatchPixelsEnv, CatchEnv), (PongPixelsEnv, PongEnv)])
def test_render_is_the_state_envs_pygame_drawing(pixels, state):
    a, b = pixels(render_mode="rgb_array"), state(render_mode="rgb_array")
    a.reset(seed=4)
    b.reset(seed=4)
    for action in random_actions(30):
        a.step(action)
        b.step(action)
    frame = a.render()
    assert frame.shape == (*state.SIZE[::-1], 3) and np.array_equal(frame, b.render())
    a.close()
    b.close()


def _slots(state: np.ndarray) -> list[np.ndarray]:
    """Catch's present object slots, by height then place (two resting objects share y = 0)."""
    found = [state[1 + 5 * k : 6 + 5 * k] for k in range(catch.SLOTS) if state[5 + 5 * k] > 0]
    return sorted(found, key=lambda s: (float(s[1]), float(s[0])))


@pytest.mark.parametrize(
    ("name", "state_env", "read"),
    [
        ("CatchPixels-v0", CatchEnv, catch_state),
        ("PongPixels-v0", PongEnv, pong_state),
    ],
)
def test_the_state_read_from_two_stacked_frames_is_the_state_the_env_is_in(name, state_env, read):
    env = get_task(name).make("fixed")  # the preset's env: frames stacked 2 deep
    obs, _ = env.reset(seed=7)
    assert obs.shape == (FRAME, FRAME, 2)
    speeds, positions = [], 0
    for action in random_actions(400, seed=3):
        true, got = state_env._obs(env.unwrapped), read(obs)
        assert got.dtype == np.float32 and got.shape == true.shape
        if name == "CatchPixels-v0":
            assert got[0] == pytest.approx(true[0], abs=1 / 36)  # the paddle
            true_slots, got_slots = _slots(true), _slots(got)
            assert len(got_slots) == len(true_slots)  # presence: exact
            for t, g in zip(true_slots, got_slots):
                assert g[:2] == pytest.approx(t[:2], abs=1 / 36)  # offset from the paddle, height
                speeds.append(np.abs(g[2:4] - t[2:4]).max())
            positions += len(true_slots)
        else:
            for k in (0, 1, 4, 5):  # the ball's x and y, the paddles
                assert got[k] == pytest.approx(true[k], abs=1 / 36)
            speeds.append(max(2.0 * (got[2] != true[2]), abs(got[3] - true[3])))
            positions += 1
        obs, *_ = env.step(action)
    # velocities come from the two frames: wrong only for a step after a bounce or a new object
    assert positions >= 400 and np.mean(np.array(speeds) < 0.1) > 0.9
