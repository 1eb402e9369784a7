"""Scripted experts of the adapted tasks (Reacher, Pusher, LunarLander, ALE Pong): the synthetic
teachers of corrections and demonstrations act through them. Measured returns are in
``rlhf_gym.tasks.envs.adapters``.
"""

from __future__ import annotations

import inspect
import math
from pathlib import Path
from typing import Any

import numpy as np

from rlhf_gym.tasks.envs.adapters import PusherEnv, mujoco, need


# ----- experts --------------------------------------------------------------------------------
class ReacherExpert:
    """Reacher-v5: inverse kinematics of the two-link arm, then a PD law on the joint angles.

    The observation holds ``cos``/``sin`` of both joint angles, the target's ``(x, y)`` and
    the joint velocities. The fingertip sits ``0.1 + 0.11`` m from the base (gymnasium's
    ``reacher.xml``); of the two elbow solutions the expert takes the one nearer the current
    angles and applies ``clip(kp * error - kd * velocity, -1, 1)``. The gains trade the
    distance term against the control cost ``|a|^2``: ``kp`` 0.3, ``kd`` 0.06 were best of a
    grid (kp 0.2-4, kd 0.02-0.2) on 20 seeds; kp 1 gives -6, kp 4 overshoots (-30).

    Example:
        >>> obs = np.array([1, 1, 0, 0, 0.0, 0.21, 0, 0, 0.21, -0.21])  # target straight up
        >>> bool(ReacherExpert()(obs)[0] > 0)  # turn the shoulder counter-clockwise
        True
    """

    links = (0.1, 0.11)

    def __init__(self, kp: float = 0.3, kd: float = 0.06) -> None:
        self.kp, self.kd = kp, kd

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        c1, c2, s1, s2, tx, ty, w1, w2 = (float(v) for v in obs[:8])
        th1, th2 = math.atan2(s1, c1), math.atan2(s2, c2)
        l1, l2 = self.links
        cos_elbow = min(1.0, max(-1.0, (tx * tx + ty * ty - l1 * l1 - l2 * l2) / (2 * l1 * l2)))
        best = (math.inf, 0.0, 0.0)
        for sign in (1.0, -1.0):
            q2 = min(3.0, max(-3.0, sign * math.acos(cos_elbow)))  # the elbow's range is +-3 rad
            q1 = math.atan2(ty, tx) - math.atan2(l2 * math.sin(q2), l1 + l2 * math.cos(q2))
            cost = abs(_wrap(q1 - th1)) + abs(q2 - th2)
            best = min(best, (cost, q1, q2))
        _, q1, q2 = best
        u = (self.kp * _wrap(q1 - th1) - self.kd * w1, self.kp * (q2 - th2) - self.kd * w2)
        return np.clip(np.array(u), -1.0, 1.0).astype(np.float32)


def _wrap(angle: float) -> float:
    return (angle + math.pi) % (2 * math.pi) - math.pi


class PusherExpert:
    """Pusher-v5: put the wrist's fork behind the object (seen from the goal), lower it, push.

    The observation holds the 7 joint angles and velocities and the positions of the wrist
    (``tips_arm``), the object and the goal. With its own ``mujoco`` model of gymnasium's
    ``pusher_v5.xml`` the expert picks a wrist target, solves damped-least-squares inverse
    kinematics for it (with the fork pointing along the push direction), and tracks the
    joint solution with computed torque (``M (kp e - kd qdot)`` plus the bias and passive
    forces), clipped to +-2. The target, from the observation alone:

    - fork behind the object and low: push, the wrist aimed at the object's centre;
    - wrist behind the object: lower it, faster the better it is lined up;
    - otherwise: go above the point ``lead`` behind the object, clear of it.

    Points out of the arm's reach at table height (the fork reaches 0.45-0.78 m from the
    shoulder) are clipped to that ring, so objects near the base, which would need pulling,
    are only reached, not pushed: about half of the starts. The control cost ``0.1 |a|^2``
    rules out stiff gains (``kp`` 7-10: -38 on 20 seeds, 20: -43, 40: -57), and a gentle arm
    spends most of the 100 steps getting behind the object: the expert earns its margin
    over random (-147) and over doing nothing (-54) mostly by reaching the object; given 300
    steps it pushes the objects it can get behind to within 0.04-0.17 of the goal (the
    distance to the goal's centre is at least 0.048, its height below the object's).

    Example:
        >>> expert = PusherExpert()  # doctest: +SKIP
    """

    base = np.array([0.0, -0.6])

    def __init__(
        self,
        kp: float = 10.0,
        lead: float = 0.09,
        hover: float = -0.2,
        low: float = -0.3,
        near: float = 0.05,
        push: float = 0.0,
    ) -> None:
        need(mujoco, "mujoco")
        path = Path(inspect.getfile(PusherEnv)).parent / "assets" / "pusher_v5.xml"
        self.model = mujoco.MjModel.from_xml_path(str(path))
        self.data = mujoco.MjData(self.model)
        self.tip = self.model.body("tips_arm").id
        self.wrist = self.model.body("r_wrist_roll_link").id
        self.lo, self.hi = self.model.jnt_range[:7, 0], self.model.jnt_range[:7, 1]
        self.kp, self.lead, self.hover, self.low, self.near, self.push = kp, lead, hover, low, near, push

    def _wrist(self, q: np.ndarray) -> np.ndarray:
        self.data.qpos[:7] = q
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_comPos(self.model, self.data)
        return self.data.xpos[self.tip].copy()

    def _ik(self, q: np.ndarray, target: np.ndarray, heading: np.ndarray, iters: int = 20) -> np.ndarray:
        jacp, jacr = np.zeros((3, self.model.nv)), np.zeros((3, self.model.nv))
        for _ in range(iters):
            error = target - self._wrist(q)
            mujoco.mj_jacBody(self.model, self.data, jacp, jacr, self.tip)
            x_axis = self.data.xmat[self.wrist].reshape(3, 3)[:, 0]
            jac = np.vstack([jacp[:, :7], 0.3 * jacr[:, :7]])
            err = np.concatenate([error, 0.3 * np.cross(x_axis, heading)])
            dq = jac.T @ np.linalg.solve(jac @ jac.T + 0.05**2 * np.eye(6), err)
            q = np.clip(q + dq, self.lo, self.hi)
        return q

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, dtype=float)
        q, qd, obj, goal = obs[:7], obs[7:14], obs[17:19], obs[20:22]
        self.data.qpos[:] = 0.0
        self.data.qvel[:] = 0.0
        wrist = self._wrist(q)
        gap = goal - obj
        u = gap / np.linalg.norm(gap) if np.linalg.norm(gap) > 1e-6 else np.array([1.0, 0.0])
        rel = wrist[:2] - obj
        along, lateral = float(rel @ u), abs(float(rel[0] * u[1] - rel[1] * u[0]))
        behind = obj - u * self.lead
        radial = behind - self.base
        r = float(np.linalg.norm(radial))
        behind = self.base + radial / r * min(max(r, 0.4), 0.76)
        if along < -0.06 and lateral < self.near and wrist[2] < -0.23:  # lined up and low: push
            target = np.array([*(obj + self.push * u), self.low])
        elif along < -self.lead + 0.04:  # behind: lower, as far as it is lined up
            h = min(1.0, max(0.0, lateral / self.near - 0.5))
            target = np.array([*behind, self.low + h * (self.hover - self.low)])
        else:
            target = np.array([*behind, self.hover])
        q_target = self._ik(q.copy(), target, np.array([u[0], u[1], 0.0]))
        self.data.qpos[:7], self.data.qvel[:7] = q, qd
        mujoco.mj_forward(self.model, self.data)
        acc, torque = np.zeros(self.model.nv), np.zeros(self.model.nv)
        acc[:7] = self.kp * (q_target - q) - 2.0 * math.sqrt(self.kp) * qd
        mujoco.mj_mulM(self.model, self.data, torque, acc)
        torque += self.data.qfrc_bias - self.data.qfrc_passive
        return np.clip(torque[:7], -2.0, 2.0).astype(np.float32)


class LunarLanderExpert:
    """LunarLander-v3 (discrete): gymnasium's own ``heuristic`` controller, in numpy.

    The same rule as ``gymnasium.envs.box2d.lunar_lander.heuristic`` (which needs the
    environment only to tell discrete from continuous): aim the lander's angle at the pad
    (``0.5 x + vx``, within +-0.4 rad), hover at a height proportional to ``|x|``, and once a
    leg touches only brake the fall. Fire the main engine (2) when the hover correction is
    largest and above 0.05, else the side engine (1 or 3) that corrects the angle.

    Example:
        >>> falling = np.array([0, 0.2, 0, -1.0, 0, 0, 0, 0], np.float32)
        >>> LunarLanderExpert()(falling)  # main engine
        2
    """

    def __call__(self, obs: np.ndarray) -> int:
        x, y, vx, vy, angle, spin, left, right = (float(v) for v in obs[:8])
        angle_target = min(0.4, max(-0.4, x * 0.5 + vx * 1.0))
        hover_target = 0.55 * abs(x)
        angle_todo = (angle_target - angle) * 0.5 - spin * 1.0
        hover_todo = (hover_target - y) * 0.5 - vy * 0.5
        if left or right:
            angle_todo, hover_todo = 0.0, -vy * 0.5
        if hover_todo > abs(angle_todo) and hover_todo > 0.05:
            return 2
        if angle_todo < -0.05:
            return 3
        if angle_todo > 0.05:
            return 1
        return 0


class AlePongExpert:
    """ALE Pong from RAM: move the paddle to where the ball will cross its line.

    RAM addresses (found by correlating bytes with the screen over 6,000 frames): 51 the
    player's (right) paddle y, 49 and 54 the ball's x and y (x = 0 while no ball is in
    play), 58 and 56 the ball's signed per-frame velocity (``dx = -ram[58]``, ``dy = ram[56]``,
    bytes above 127 are negative). The ball meets the paddle at ``x = 188`` and bounces off
    the walls at ``y = 44`` and ``207``; the paddle hits it when ``ball y - paddle y`` is about
    6. While the ball comes in, the expert predicts the crossing (folding the straight line
    between the walls) and aims the paddle there; otherwise it waits mid-court (``y = 120``).
    Actions: 2 (RIGHT) moves the paddle up, 3 (LEFT) down, 0 stays, with a dead band of 8
    because the paddle moves up to 12 pixels a frame. Dead bands of 4, 6 and 8 scored -0.7,
    0.8 and 1.8 over 3,000 steps on 6 seeds; tracking the ball's current height instead of
    the prediction loses whole games (-1 to -18).

    Example:
        >>> ram = np.zeros(128, np.uint8)
        >>> ram[51], ram[49], ram[54], ram[58], ram[56] = 60, 150, 120, 255, 0  # ball coming, level
        >>> AlePongExpert()(ram)  # paddle above the crossing: move down
        3
    """

    top, bottom, paddle_x, offset, idle = 44, 207, 188, 6, 120

    def __init__(self, dead_band: int = 8) -> None:
        self.dead_band = dead_band

    def __call__(self, obs: np.ndarray) -> int:
        ball_x, ball_y, paddle = int(obs[49]), int(obs[54]), int(obs[51])
        dx, dy = -_signed(obs[58]), _signed(obs[56])
        target = self.idle
        if ball_x != 0 and dx > 0:
            y = ball_y + dy * max(0, self.paddle_x - ball_x)
            span = self.bottom - self.top
            folded = (y - self.top) % (2 * span)
            target = self.top + (folded if folded <= span else 2 * span - folded) - self.offset
        if paddle < target - self.dead_band:
            return 3
        if paddle > target + self.dead_band:
            return 2
        return 0


def _signed(byte: Any) -> int:
    value = int(byte)
    return value - 256 if value > 127 else value
