"""A planar two-link arm on a table, seen from above: the body of the robotics-like tasks.

Each joint is a damped rotor driven by a torque, integrated with semi-implicit Euler steps
of ``dt`` seconds:

    ddq_i = (max_torque * tau_i - damping * dq_i) / inertia,   tau_i in [-1, 1]

The joints are decoupled (no Coriolis or centrifugal terms) and there is no gravity, since
the arm moves in the table's plane. The elbow stops at +/- ``elbow_limit`` radians, where its
velocity is set to zero. With the defaults a joint reaches about 2 rad/s within a quarter of
a second, so a reach across the workspace takes about 1.5 s (30 steps of 0.05 s).

Plain Python floats and ``math`` keep a step to a few microseconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from rlhf_gym.tasks.envs.rendering import BLUE, INK, MUTED, to_pixels


@dataclass
class PlanarArm:
    """A two-link arm with its state (angles ``q1``, ``q2`` and velocities ``dq1``, ``dq2``).

    Args:
        l1, l2: link lengths (the workspace is the annulus between |l1 - l2| and l1 + l2).
        dt: seconds per step.
        max_torque, damping, inertia: the rotor model above.
        max_speed: joint speeds are clipped to +/- this (rad/s).
        elbow_limit: the elbow's range is [-elbow_limit, elbow_limit] radians.

    Example:
        >>> arm = PlanarArm()
        >>> arm.tip()
        (0.9, 0.0)
        >>> arm.q1, arm.q2 = arm.inverse_kinematics(0.3, 0.6)
        >>> [round(v, 6) for v in arm.tip()]
        [0.3, 0.6]
        >>> arm.step(1.0, 0.0); arm.dq1 > 0
        True
    """

    l1: float = 0.5
    l2: float = 0.4
    dt: float = 0.05
    max_torque: float = 8.0
    damping: float = 4.0
    inertia: float = 0.5
    max_speed: float = 4.0
    elbow_limit: float = 2.8
    q1: float = field(default=0.0)
    q2: float = field(default=0.0)
    dq1: float = field(default=0.0)
    dq2: float = field(default=0.0)

    @property
    def reach(self) -> float:
        """The farthest the tip can be from the shoulder."""
        return self.l1 + self.l2

    def set_state(self, q1: float, q2: float, dq1: float = 0.0, dq2: float = 0.0) -> None:
        """Put the arm at the given angles and velocities (the elbow clipped to its range)."""
        self.q1, self.dq1, self.dq2 = float(q1), float(dq1), float(dq2)
        self.q2 = min(max(float(q2), -self.elbow_limit), self.elbow_limit)

    def step(self, tau1: float, tau2: float) -> None:
        """Advance ``dt`` seconds under the normalised torques (clipped to [-1, 1])."""
        tau1 = min(max(tau1, -1.0), 1.0)
        tau2 = min(max(tau2, -1.0), 1.0)
        v = self.max_speed
        dq1 = self.dq1 + self.dt * (self.max_torque * tau1 - self.damping * self.dq1) / self.inertia
        dq2 = self.dq2 + self.dt * (self.max_torque * tau2 - self.damping * self.dq2) / self.inertia
        self.dq1, self.dq2 = min(max(dq1, -v), v), min(max(dq2, -v), v)
        self.q1 = math.remainder(self.q1 + self.dt * self.dq1, math.tau)
        q2 = self.q2 + self.dt * self.dq2
        if abs(q2) > self.elbow_limit:
            q2, self.dq2 = math.copysign(self.elbow_limit, q2), 0.0
        self.q2 = q2

    def elbow(self) -> tuple[float, float]:
        """The elbow's position."""
        return self.l1 * math.cos(self.q1), self.l1 * math.sin(self.q1)

    def tip(self) -> tuple[float, float]:
        """The tip's (end effector's) position."""
        ex, ey = self.elbow()
        a = self.q1 + self.q2
        return ex + self.l2 * math.cos(a), ey + self.l2 * math.sin(a)

    def inverse_kinematics(self, x: float, y: float, elbow_up: bool | None = None) -> tuple[float, float]:
        """Joint angles that put the tip at ``(x, y)`` (the nearest reachable point if it is
        out of reach). ``elbow_up=None`` picks the solution closer to the current elbow angle."""
        r2 = x * x + y * y
        c2 = (r2 - self.l1**2 - self.l2**2) / (2 * self.l1 * self.l2)
        c2 = min(max(c2, -1.0), 1.0)
        q2 = math.acos(c2)
        if elbow_up is None:
            elbow_up = self.q2 > 0
        if not elbow_up:
            q2 = -q2
        q1 = math.atan2(y, x) - math.atan2(self.l2 * math.sin(q2), self.l1 + self.l2 * math.cos(q2))
        return math.remainder(q1, math.tau), q2

    def draw(self, surface: Any, pg: Any, scale: float, origin: tuple[float, float]) -> None:
        """Draw the links, joints and tip on a pygame surface (world y up)."""
        base = to_pixels((0.0, 0.0), scale, origin)
        elbow = to_pixels(self.elbow(), scale, origin)
        tip = to_pixels(self.tip(), scale, origin)
        width = max(3, int(scale * 0.05))
        pg.draw.circle(surface, MUTED, base, int(scale * self.reach), 1)
        pg.draw.line(surface, INK, base, elbow, width)
        pg.draw.line(surface, BLUE, elbow, tip, width)
        for point, radius in ((base, width * 1.6), (elbow, width * 1.2)):
            pg.draw.circle(surface, INK, point, int(radius))
