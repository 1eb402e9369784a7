"""Reach: bring the tip of a two-link arm to a target on a table and hold it there.

The arm is ``PlanarArm`` (``rlhf_gym/tasks/envs/arm.py``): links of 0.5 m and 0.4 m, damped
joint rotors, 0.05 s per step, the elbow limited to +/-2.8 rad. Each episode starts the
arm at rest at a random pose (shoulder uniform in [-pi, pi), elbow uniform in
[-2.5, 2.5] rad) and puts the target uniformly (by area) in the annulus 0.3-0.85 m around
the shoulder: everywhere the tip can reach, away from the centre and the full stretch.

Observation (14 float32 values):

    index   value                                           bounds
    0, 1    cos, sin of the shoulder angle q1               [-1, 1]
    2, 3    cos, sin of the elbow angle q2 (relative)       [-1, 1]
    4, 5    joint velocities dq1, dq2 / 4 rad/s             [-1, 1]
    6, 7    target position (x, y) in metres                [-0.85, 0.85]
    8, 9    tip minus target (x, y) in metres               [-1.75, 1.75]
    10, 11  cos, sin of the target's bearing minus the      [-1, 1]
            tip's, both seen from the shoulder
    12      target's distance from the shoulder minus the   [-0.9, 0.9]
            tip's, in metres
    13      distance from the tip to the target, in metres  [0, 1.75]

Indices 10-13 are redundant (functions of the others) but make the task far easier to
learn. Indices 10-12 say, in the arm's own polar terms, which way the shoulder should turn
and whether the arm should stretch or fold: in 150k steps PPO on the true reward gets to
-16 with them and -35 without (MuJoCo Reacher's observation, indices 0-9), on 30 episodes
where the expert gets -14 and random actions -85. Index 13
is the reward's own term, so the reward model can be linear in it: with it, the learned
reward correlates about 0.95 with the true one, without it about 0.85.

Action: ``rlhf_gym/Reach-v0`` takes ``Box(-1, 1, (2,))``, the normalised shoulder and
elbow torques (positive turns counter-clockwise). ``rlhf_gym/ReachDiscrete-v0``
(``discrete=True``) takes ``Discrete(5)``: 0 none, 1 shoulder +, 2 shoulder -, 3 elbow +,
4 elbow -, each a torque of ``discrete_torque`` (0.6) on one joint. On the keyboard
(the presets' ``keys``) left/right turn the shoulder counter-clockwise/clockwise and up/down
the elbow.

Reward, as MuJoCo's Reacher, for the state the step starts in and the torque applied:

    r = -|tip - target| - 0.05 * (tau1^2 + tau2^2)

so it is a function of the observation and action the agent (and a reward model) sees.
Holding the tip on the target earns about 0; a random policy about -0.85 per step.

Episodes never terminate; the preset's time limit (``max_episode_steps``) truncates them,
so the natural and fixed horizons coincide. ``info["distance"]`` is the tip's distance to
the target after the step.

Mean true return over 20 seeds (0-19), from ``python -m rlhf_gym.tasks.registry``:

    task              expert               expert   random
    Reach-v0          reach_ik              -13.3    -83.2
    ReachDiscrete-v0  reach_discrete_ik     -22.0    -86.4

The same in both horizon modes (nothing terminates). The continuous expert gets within
0.05 m of the target in 20 steps on average (at most 33), the discrete one, moving one
joint at a time, in 35 (at most 68).

Example:
    >>> import gymnasium as gym
    >>> env = gym.make("rlhf_gym/Reach-v0", max_episode_steps=50)
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape, obs.dtype, env.action_space.shape
    ((14,), dtype('float32'), (2,))
    >>> expert = ReachExpert()
    >>> for _ in range(50):
    ...     obs, reward, terminated, truncated, info = env.step(expert(obs))
    >>> truncated, info["distance"] < 0.02
    (True, True)
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from rlhf_gym.tasks import snapshots
from rlhf_gym.tasks.envs.arm import PlanarArm
from rlhf_gym.tasks.envs.rendering import ACCENT, BLUE, GOOD, INK, SelfDrawn, check_render_mode, to_pixels

TARGET_RADII = (0.3, 0.85)
"""The target's distance from the shoulder is in this range (metres)."""
START_ELBOW = 2.5
"""The elbow starts uniformly in [-START_ELBOW, START_ELBOW] radians."""
CTRL_COST = 0.05
"""Weight of the squared torques in the reward."""
TOLERANCE = 0.05
"""The target turns green when the tip is this close (metres); drawing only."""
TRAIL = 20
"""Tip positions kept for the faint trail in the picture."""

SIZE = 400
SCALE = 200.0  # pixels per metre: the 0.9 m reach is 180 px
TABLE = (232, 226, 212)
TABLE_EDGE = (200, 192, 176)
GRID = (222, 215, 199)
WORKSPACE = (240, 236, 226)
TRAIL_COLOUR = (160, 184, 226)
HALO, HALO_NEAR = (240, 200, 188), (196, 226, 200)


class ReachEnv(SelfDrawn, gym.Env[np.ndarray, Any]):
    """Move a planar arm's tip to a random target and hold it there (see the module docstring).

    Args:
        discrete: ``Discrete(5)`` actions (one joint +/- at a time) instead of ``Box`` torques.
        discrete_torque: the normalised torque of a discrete action, in (0, 1].
        render_mode: ``None``, ``"human"`` or ``"rgb_array"`` (400 x 400 pixels).

    Example:
        >>> env = ReachEnv(discrete=True)
        >>> obs, _ = env.reset(seed=1)
        >>> obs, reward, terminated, truncated, info = env.step(1)
        >>> env.action_space, bool(reward < 0), terminated
        (Discrete(5), True, False)
    """

    SIZE, TITLE = (SIZE, SIZE), "Reach"
    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 20}  # noqa: RUF012 (gymnasium's); 1 / dt

    def __init__(self, discrete: bool = False, discrete_torque: float = 0.6, render_mode: str | None = None):
        if not isinstance(discrete, bool):
            raise TypeError(f"discrete must be a bool, got {discrete!r}")
        if not 0.0 < discrete_torque <= 1.0:
            raise ValueError(f"discrete_torque must be in (0, 1], got {discrete_torque!r}")
        check_render_mode(render_mode)
        self.discrete, self.discrete_torque, self.render_mode = discrete, float(discrete_torque), render_mode
        self.arm = PlanarArm()
        t = self.discrete_torque
        self._torques = ((0.0, 0.0), (t, 0.0), (-t, 0.0), (0.0, t), (0.0, -t))
        if discrete:
            self.action_space: spaces.Space[Any] = spaces.Discrete(5)
        else:
            self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        r, reach = TARGET_RADII[1], self.arm.reach
        high = np.array([1, 1, 1, 1, 1, 1, r, r, reach + r, reach + r, 1, 1, reach, reach + r], np.float32)
        low = -high
        low[13] = 0.0
        self.observation_space = spaces.Box(low, high, dtype=np.float32)
        self.target = (r, 0.0)
        self._trail: list[tuple[float, float]] = []

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        rng = self.np_random
        self.arm.set_state(rng.uniform(-math.pi, math.pi), rng.uniform(-START_ELBOW, START_ELBOW))
        lo, hi = TARGET_RADII
        radius = math.sqrt(rng.uniform(lo * lo, hi * hi))  # uniform by area
        angle = rng.uniform(-math.pi, math.pi)
        self.target = (radius * math.cos(angle), radius * math.sin(angle))
        tip = self.arm.tip()
        self._trail = [tip]
        if self.render_mode == "human":
            self.render()
        return self._obs(tip), {"distance": math.dist(tip, self.target)}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self.discrete:
            t1, t2 = self._torques[int(action)]
        else:
            t1 = min(max(float(action[0]), -1.0), 1.0)
            t2 = min(max(float(action[1]), -1.0), 1.0)
        arm, target = self.arm, self.target
        reward = -math.dist(arm.tip(), target) - CTRL_COST * (t1 * t1 + t2 * t2)
        arm.step(t1, t2)
        tip = arm.tip()
        trail = self._trail
        trail.append(tip)
        if len(trail) > TRAIL:
            del trail[0]
        if self.render_mode == "human":
            self.render()
        return self._obs(tip), reward, False, False, {"distance": math.dist(tip, target)}

    def _obs(self, tip: tuple[float, float]) -> np.ndarray:
        arm, (tx, ty) = self.arm, self.target
        v, (x, y) = arm.max_speed, tip
        dx, dy = x - tx, y - ty
        bearing = math.atan2(ty, tx) - math.atan2(y, x)
        return np.array(
            [
                math.cos(arm.q1),
                math.sin(arm.q1),
                math.cos(arm.q2),
                math.sin(arm.q2),
                arm.dq1 / v,
                arm.dq2 / v,
                tx,
                ty,
                dx,
                dy,
                math.cos(bearing),
                math.sin(bearing),
                math.hypot(tx, ty) - math.hypot(x, y),
                math.hypot(dx, dy),
            ],
            dtype=np.float32,
        )

    def _draw(self, surface: Any, pg: Any) -> None:
        origin = (SIZE / 2, SIZE / 2)
        pg.draw.rect(surface, TABLE, (10, 10, SIZE - 20, SIZE - 20), border_radius=14)
        pg.draw.circle(surface, WORKSPACE, origin, int(SCALE * self.arm.reach))
        for i in range(1, 8):  # a 0.25 m grid
            p = 10 + i * (SIZE - 20) // 8
            pg.draw.line(surface, GRID, (p, 12), (p, SIZE - 12))
            pg.draw.line(surface, GRID, (12, p), (SIZE - 12, p))
        pg.draw.rect(surface, TABLE_EDGE, (10, 10, SIZE - 20, SIZE - 20), 2, border_radius=14)
        tip = self.arm.tip()
        near = math.dist(tip, self.target) < TOLERANCE
        target = to_pixels(self.target, SCALE, origin)
        pg.draw.circle(surface, HALO_NEAR if near else HALO, target, int(SCALE * 2 * TOLERANCE))
        pg.draw.circle(surface, GOOD if near else ACCENT, target, int(SCALE * TOLERANCE))
        pg.draw.circle(surface, INK, target, int(SCALE * TOLERANCE), 2)
        if len(self._trail) > 1:
            pg.draw.lines(surface, TRAIL_COLOUR, False, [to_pixels(p, SCALE, origin) for p in self._trail], 3)
        self.arm.draw(surface, pg, SCALE, origin)
        pg.draw.circle(surface, (255, 255, 255), to_pixels(tip, SCALE, origin), 6)
        pg.draw.circle(surface, BLUE, to_pixels(tip, SCALE, origin), 6, 3)


# The arm (angles and velocities) and the target change within an episode, the trail too
# (it is drawn); the arm's constants are fixed by the constructor, as are these parameters.
snapshots.register(
    ReachEnv,
    snapshots.LayerState(
        state=("arm", "target", "_trail", *snapshots.RANDOM), params=("discrete", "discrete_torque")
    ),
)


def _joint_errors(arm: PlanarArm, obs: np.ndarray, margin: float) -> tuple[float, float, float, float]:
    """Angle errors to the inverse-kinematics pose for the observed target, and the joint
    velocities. Of the two elbow solutions it takes the one with the smaller largest joint
    error (both joints move at once), favouring the elbow's current side by ``margin`` rad."""
    q1, q2 = math.atan2(obs[1], obs[0]), math.atan2(obs[3], obs[2])
    tx, ty = float(obs[6]), float(obs[7])
    best: tuple[float, float, float] | None = None
    for up in (True, False):
        g1, g2 = arm.inverse_kinematics(tx, ty, elbow_up=up)
        e1, e2 = math.remainder(g1 - q1, math.tau), g2 - q2
        cost = max(abs(e1), abs(e2)) - (margin if (q2 > 0) == up else 0.0)
        if best is None or cost < best[0]:
            best = (cost, e1, e2)
    assert best is not None
    return best[1], best[2], float(obs[4]) * arm.max_speed, float(obs[5]) * arm.max_speed


class ReachExpert:
    """Inverse kinematics to the target, then a PD torque on each joint's angle error.

    ``tau_i = clip(kp * e_i - kd * dq_i, -1, 1)``. With the arm's rotor (inertia 0.5,
    damping 4, torque scale 8) the unsaturated loop ``ddq = 16 kp e - (8 + 16 kd) dq`` is
    critically damped for kd = (sqrt(kp) / 2 - 0.5) = 0.72 at kp 6. Far from the goal the
    torque saturates, so the gains matter little: kp from 4 to 10 with kd from 0.3 to 0.8
    all give a mean return between -13.1 and -13.9 on 20 seeds.

    Args:
        kp: proportional gain (per radian).
        kd: derivative gain (per rad/s).
        margin: preference (rad) for the elbow solution on the elbow's current side.

    Example:
        >>> env = ReachEnv()
        >>> obs, _ = env.reset(seed=0)
        >>> action = ReachExpert()(obs)
        >>> action.dtype, action.shape, env.action_space.contains(action)
        (dtype('float32'), (2,), True)
    """

    def __init__(self, kp: float = 6.0, kd: float = 0.7, margin: float = 0.3) -> None:
        if not (kp > 0 and kd >= 0 and margin >= 0):
            raise ValueError(f"expected kp > 0, kd >= 0 and margin >= 0, got {kp}, {kd} and {margin}")
        self.kp, self.kd, self.margin = kp, kd, margin
        self.arm = PlanarArm()

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        e1, e2, dq1, dq2 = _joint_errors(self.arm, obs, self.margin)
        t1 = min(max(self.kp * e1 - self.kd * dq1, -1.0), 1.0)
        t2 = min(max(self.kp * e2 - self.kd * dq2, -1.0), 1.0)
        return np.array([t1, t2], dtype=np.float32)


class ReachDiscreteExpert:
    """Inverse kinematics, then push the joint that is further from its goal towards it.

    A released joint coasts on (its velocity decays by ``1 - dt damping / inertia`` = 0.6
    per step), so the expert judges each joint by where it would stop without torque:
    ``e_i - coast * dq_i``. It pushes the joint with the larger such error, in its
    direction, and does nothing once both are within ``dead_band``; a joint that would
    overshoot is pushed back, which brakes it.

    Args:
        dead_band: joint error (rad) small enough to leave alone. One step's push moves a joint
            0.06 rad in all, so a much smaller band would make it dither; 0.03, 0.05 and 0.08
            give mean returns of -22.0, -22.4 and -24.0 on 20 seeds.
        margin: preference (rad) for the elbow solution on the elbow's current side.

    Example:
        >>> env = ReachEnv(discrete=True)
        >>> obs, _ = env.reset(seed=0)
        >>> ReachDiscreteExpert()(obs) in range(5)
        True
    """

    def __init__(self, dead_band: float = 0.03, margin: float = 0.3) -> None:
        if not (dead_band > 0 and margin >= 0):
            raise ValueError(f"expected dead_band > 0 and margin >= 0, got {dead_band} and {margin}")
        self.dead_band, self.margin = dead_band, margin
        self.arm = arm = PlanarArm()
        decay = 1.0 - arm.dt * arm.damping / arm.inertia
        self.coast = arm.dt * decay / (1.0 - decay)  # sum of dt * dq * decay^k, k >= 1

    def __call__(self, obs: np.ndarray) -> int:
        e1, e2, dq1, dq2 = _joint_errors(self.arm, obs, self.margin)
        s1, s2 = e1 - self.coast * dq1, e2 - self.coast * dq2
        if max(abs(s1), abs(s2)) < self.dead_band:
            return 0
        if abs(s1) >= abs(s2):
            return 1 if s1 > 0 else 2
        return 3 if s2 > 0 else 4
