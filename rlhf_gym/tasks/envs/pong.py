"""Pong: return the ball past a scripted opponent that cannot keep up with steep shots.

The court is the unit square seen from above, walls at ``y = 0`` and ``y = 1``. The player's
paddle (height 0.2) moves up and down with its face at ``x = 0.9``; the opponent's face is at
``x = 0.1``. The ball crosses the court at a constant 0.035 a step (23 steps from face to face)
and bounces off the walls. A ball that reaches a paddle's face within 0.115 of its centre (half
the paddle plus the ball's radius) goes back with a vertical speed set by where it hit:
``0.063 * offset / 0.115``, flat from the centre and steep from the edges. A ball that gets
past a paddle travels on behind it (about 3 steps) until it crosses that side's goal line,
``x = 0`` or ``x = 1``, and the point is scored. The next point is served from the centre
toward the player, at a random height in [0.25, 0.75] and a gentle random angle.

The opponent waits in the middle while the ball goes away from it; once the ball comes back
over the centre line it follows the ball's height at no more than 0.02 a step, so it returns
flat shots but can be left behind by steep ones (``PongExpert`` picks its angle so).

- **Observation** ``Box(6,)`` float32, every value in [-1, 1]: the ball's ``2 x - 1`` and
  ``2 y - 1``, its velocity ``vx / 0.035`` (always +1 or -1) and ``vy / 0.063``, then the
  centres ``2 y - 1`` of the player's and the opponent's paddles (in [-0.8, 0.8]). A lost
  point is visible before it is scored (the ball beyond 0.8, behind the player's paddle), and
  so is a won one (the ball below -0.8).
- **Action** ``Discrete(3)``: 0 up, 1 stay, 2 down; the paddle moves 0.056 a step.
- **Reward** ``+1`` when the ball crosses the opponent's goal line (a point won), ``-1`` when
  it crosses the player's (a point lost), else 0. This is the game's score and the true reward.
- **Termination** never; **truncation** by the time limit only (``max_episode_steps``, 500 in
  the preset), so the fixed-horizon mode is the same episode.

Mean true return over 20 seeds (seeds 0-19, 500 steps, either horizon mode; ``python -m
rlhf_gym.tasks.experts``):

    policy              return
    PongExpert            +4.1   (4.1 points won, none lost)
    uniform random       -17.3

Example:
    >>> import gymnasium as gym
    >>> import rlhf_gym.tasks.envs
    >>> env = gym.make("rlhf_gym/Pong-v0", max_episode_steps=500)
    >>> obs, _ = env.reset(seed=0)
    >>> obs.shape, env.action_space
    ((6,), Discrete(3))
    >>> expert, won, lost = PongExpert(), 0, 0
    >>> for _ in range(500):
    ...     obs, reward, terminated, truncated, _ = env.step(expert(obs))
    ...     won, lost = won + (reward > 0), lost + (reward < 0)
    >>> won > lost
    True
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from rlhf_gym.tasks import snapshots
from rlhf_gym.tasks.envs.games import PaddleGame, bounce, check_action, draw_number, fold, move_paddle
from rlhf_gym.tasks.envs.rendering import ACCENT, BLUE, GOOD, INK, MUTED

PLAYER_X, OPPONENT_X = 0.9, 0.1  # the paddles' faces; the goal lines are x = 1 and x = 0
PADDLE_HALF = 0.1
PLAYER_SPEED = 0.056
OPPONENT_SPEED = 0.02
RADIUS = 0.015
REACH = PADDLE_HALF + RADIUS
VX = 0.035
VY_MAX = 0.063
REACTION_X = 0.5
LOW, HIGH = RADIUS, 1.0 - RADIUS  # the ball's centre stays between the walls


class PongEnv(PaddleGame):
    """Pong against a speed-limited tracker: +1 per point won, -1 per point lost (see the module docstring).

    Args:
        render_mode: ``None``, ``"human"`` or ``"rgb_array"``.

    Example:
        >>> env = PongEnv()
        >>> obs, _ = env.reset(seed=0)
        >>> float(obs[0]), float(obs[2])  # served from the centre, toward the player
        (0.0, 1.0)
        >>> for _ in range(20):  # hold "up": the paddle leaves the ball's path
        ...     obs, reward, terminated, truncated, _ = env.step(0)
        ...     if reward:
        ...         break
        >>> reward, terminated, truncated
        (-1.0, False, False)
    """

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 30}  # noqa: RUF012 (gymnasium's)
    SIZE = (480, 420)
    TITLE = "rlhf-gym Pong"

    def __init__(self, render_mode: str | None = None) -> None:
        super().__init__(render_mode)
        self.action_space = spaces.Discrete(3)
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(6,), dtype=np.float32)
        self._ball = (0.5, 0.5, VX, 0.0)  # x, y, vx, vy
        self._player = 0.5
        self._opponent = 0.5
        self._t = 0
        self._won = 0
        self._lost = 0
        self._last_event: tuple[int, float, bool] | None = None  # (step, y, won), for drawing

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self._player = self._opponent = 0.5
        self._serve()
        self._t = self._won = self._lost = 0
        self._last_event = None
        if self.render_mode == "human":
            self.render()
        return self._obs(), {}

    def _serve(self) -> None:
        """Put the ball in the centre, heading to the player at a random gentle angle."""
        u = self.np_random.random(2)
        self._ball = (0.5, 0.25 + 0.5 * float(u[0]), VX, (float(u[1]) - 0.5) * VY_MAX)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        up = 1 - check_action(action)  # 0 up (+y), 2 down
        player = self._player = move_paddle(self._player, up, PLAYER_SPEED, PADDLE_HALF, 1 - PADDLE_HALF)
        x, y, vx, vy = self._ball
        opponent = self._opponent = _opponent_step(self._opponent, x, y, vx)
        before, x = x, x + vx
        y, vy = bounce(y + vy, vy, LOW, HIGH)
        reward = 0.0
        if before < PLAYER_X <= x and abs(y - player) <= REACH:
            x, vx, vy = 2 * PLAYER_X - x, -vx, VY_MAX * (y - player) / REACH
        elif before > OPPONENT_X >= x and abs(y - opponent) <= REACH:
            x, vx, vy = 2 * OPPONENT_X - x, -vx, VY_MAX * (y - opponent) / REACH
        if x >= 1.0 or x <= 0.0:
            won = x <= 0.0
            reward = 1.0 if won else -1.0
            self._won += won
            self._lost += not won
            self._last_event = (self._t, y, won)
            self._serve()
        else:
            self._ball = (x, y, vx, vy)
        self._t += 1
        if self.render_mode == "human":
            self.render()
        return self._obs(), reward, False, False, {}

    def _obs(self) -> np.ndarray:
        x, y, vx, vy = self._ball
        return np.array(
            [2 * x - 1, 2 * y - 1, vx / VX, vy / VY_MAX, 2 * self._player - 1, 2 * self._opponent - 1],
            dtype=np.float32,
        )

    def _draw(self, surface: Any, pg: Any) -> None:
        w, h = self.SIZE
        top = 70  # pixel row of the top wall; the score board is above it
        scale_y = h - top - 10

        def pixel(x: float, y: float) -> tuple[int, int]:
            return round(x * w), round(top + (1.0 - y) * scale_y)

        pg.draw.rect(surface, (232, 232, 226), (0, 0, w, top - 10))
        draw_number(surface, pg, self._lost, (w // 4, (top - 10) // 2), 30, MUTED)
        draw_number(surface, pg, self._won, (3 * w // 4, (top - 10) // 2), 30, BLUE)
        for x in (0.0, OPPONENT_X, PLAYER_X, 1.0):  # the goal lines, and the paddles' faces (faint)
            colour = INK if x in (0.0, 1.0) else (225, 225, 218)
            pg.draw.line(surface, colour, pixel(x, 0.0), pixel(x, 1.0), 3 if x in (0.0, 1.0) else 1)
        pg.draw.line(surface, INK, pixel(0.0, 1.0), pixel(1.0, 1.0), 3)
        pg.draw.line(surface, INK, pixel(0.0, 0.0), pixel(1.0, 0.0), 3)
        for k in range(12):  # the dashed centre line
            a, b = pixel(0.5, k / 12), pixel(0.5, (k + 0.5) / 12)
            pg.draw.line(surface, MUTED, a, b, 2)
        if self._last_event is not None and self._t - self._last_event[0] < 12:
            step, y, won = self._last_event
            centre = pixel(0.0 if won else 1.0, y)
            pg.draw.circle(surface, GOOD if won else ACCENT, centre, 12 + 3 * (self._t - step), 3)
        height = int(2 * PADDLE_HALF * scale_y)
        for face, y, colour, dx in (
            (OPPONENT_X, self._opponent, MUTED, -10),
            (PLAYER_X, self._player, BLUE, 0),
        ):
            px, py = pixel(face, y + PADDLE_HALF)
            pg.draw.rect(surface, colour, (px + dx, py, 10, height), border_radius=4)
        x, y, vx, vy = self._ball
        radius = max(4, int(RADIUS * w))
        for k in range(3, 0, -1):  # a fading trail behind the ball
            shade = (205 + 10 * k, 205 + 10 * k, 200 + 10 * k)
            pg.draw.circle(surface, shade, pixel(x - k * vx, y - k * vy), radius)
        pg.draw.circle(surface, INK, pixel(x, y), radius)


class PongExpert:
    """Meets the ball at its paddle, at the hit offset that leaves the opponent furthest behind.

    It uses the observation only. While the ball comes toward the player it predicts where the
    ball will cross the paddle's face (folding its path off the walls), and where the opponent
    will be by then (recentring). For each offset in ``OFFSETS`` (a fraction of the reach;
    +/-0.75 at most, since the paddle moves in steps of 0.056 = 0.49 of the reach) that it can
    still get to in time, it plays the return out with the opponent's own rule and keeps the
    one that leaves the ball furthest from the opponent's reach. While the ball goes away it
    waits in the middle.

    Example:
        >>> expert = PongExpert()
        >>> obs = np.array([0.0, -0.5, 1.0, 0.0, 0.5, 0.0], np.float32)  # ball coming in low
        >>> expert(obs)  # paddle is high: go down
        2
    """

    OFFSETS = (-0.75, -0.5, -0.25, 0.25, 0.5, 0.75)

    def __call__(self, obs: np.ndarray) -> int:
        x, y, _, _, player, opponent = ((float(v) + 1.0) / 2.0 for v in obs)
        vx, vy = float(obs[2]) * VX, float(obs[3]) * VY_MAX
        target = 0.5
        if vx > 0 and x < PLAYER_X:
            steps = (PLAYER_X - x) / vx
            meet = fold(y + steps * vy, LOW, HIGH)
            # meanwhile the opponent recentres
            opp = opponent + max(-steps * OPPONENT_SPEED, min(steps * OPPONENT_SPEED, 0.5 - opponent))
            best = -2.0
            target = _clip(meet)
            for offset in self.OFFSETS:
                paddle = _clip(meet - offset * REACH)
                if abs(paddle - player) > (steps - 0.5) * PLAYER_SPEED:
                    continue  # cannot get there in time
                margin = _opponent_margin(meet, VY_MAX * (meet - paddle) / REACH, opp)
                if margin > best:
                    best, target = margin, paddle
        if abs(target - player) <= PLAYER_SPEED / 2:
            return 1
        return 0 if target > player else 2


def _opponent_step(opponent: float, x: float, y: float, vx: float) -> float:
    """The opponent's paddle after one step: it follows the ball's height once the ball comes
    back over the reaction line, else it recentres, at ``OPPONENT_SPEED`` at most."""
    target = y if vx < 0 and x < REACTION_X else 0.5
    gap = max(-OPPONENT_SPEED, min(OPPONENT_SPEED, target - opponent))
    return move_paddle(opponent, 1, gap, PADDLE_HALF, 1.0 - PADDLE_HALF)


def _clip(y: float) -> float:
    return min(max(y, PADDLE_HALF), 1.0 - PADDLE_HALF)


def _opponent_margin(y: float, vy: float, opponent: float) -> float:
    """How far the opponent's reach will be from a ball returned from ``y`` at ``vy`` when it
    gets to the opponent's face (PongEnv's own rules; negative: returned)."""
    x = PLAYER_X
    while x > OPPONENT_X:
        opponent = _opponent_step(opponent, x, y, -VX)
        x = x - VX
        y, vy = bounce(y + vy, vy, LOW, HIGH)
    return abs(y - opponent) - REACH


snapshots.register(
    PongEnv,
    snapshots.LayerState(
        state=("_ball", "_player", "_opponent", "_t", "_won", "_lost", "_last_event", *snapshots.RANDOM),
    ),
)
