"""Scripted expert controllers for the classic-control tasks, for synthetic corrections and demos.

Each expert maps one observation to one action in the environment's own units: an ``int``
for a ``Discrete`` action space, a ``float32`` array of the action shape for a ``Box``. They
are pure numpy, deterministic and need no training or downloads. A task names its expert in
its preset (``expert: cartpole_lqr``); ``get_expert(task)`` builds it.

Mean true return over 20 seeded episodes (seeds 0-19; "random" samples the action space
uniformly), identical in both horizon modes ``task.make("natural")`` and
``task.make("fixed")`` since every absorbing step is worth 0:

    task                      expert                        expert   random
    CartPole-v1               cartpole_lqr                   500.0     22.1
    Pendulum-v1               pendulum_swing_up             -137.7  -1178.9
    MountainCar-v0            mountain_car_pump             -105.2   -200.0
    MountainCarContinuous-v0  mountain_car_continuous_pump    92.0    -33.2
    Acrobot-v1                acrobot_pump                   -77.9   -500.0

For scale, SAC on Pendulum's true reward gets about -150. Reproduce the table with
``python -m rlhf_gym.tasks.registry`` (it prints every task with an expert).

The project's own environments (``rlhf_gym.tasks.envs``) and the adapted tasks
(``rlhf_gym.tasks.envs.adapter_experts``) keep their experts beside their physics, with their tables;
``EXPERTS`` imports them on first use.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import gymnasium as gym
import numpy as np


class Playable(Protocol):
    """What ``mean_return`` needs of a task (``rlhf_gym.tasks.registry.Task`` is one)."""

    def make(self, horizon: str = "natural") -> gym.Env: ...


class Expert(Protocol):
    """A controller: one observation in, one action out (``int`` or a ``float32`` array)."""

    def __call__(self, obs: np.ndarray) -> Any: ...


def lqr_gain(a: np.ndarray, b: np.ndarray, q: np.ndarray, r: np.ndarray, iters: int = 2000) -> np.ndarray:
    """The gain ``K`` of the discrete-time LQR ``u = -K s`` for ``s' = A s + B u`` and cost
    ``s'Qs + u'Ru``, by iterating the Riccati equation to its fixed point.

    Example:
        >>> k = lqr_gain(np.eye(1), np.eye(1), np.eye(1), np.eye(1))
        >>> round(float(k[0, 0]), 4)  # (sqrt(5) - 1) / 2, the golden-ratio gain
        0.618
    """
    p = q.copy()
    for _ in range(iters):
        k = np.linalg.solve(r + b.T @ p @ b, b.T @ p @ a)
        p, previous = q + a.T @ p @ (a - b @ k), p
        if np.allclose(p, previous, rtol=1e-12, atol=0.0):
            break
    return np.linalg.solve(r + b.T @ p @ b, b.T @ p @ a)


class CartPoleLQR:
    """Balances CartPole-v1: push right (action 1) when the LQR force ``-K s`` is positive.

    ``K`` is the discrete-time LQR gain of CartPole's dynamics linearised about upright
    (gymnasium's constants: g 9.8, cart 1 kg, pole 0.1 kg, half-length 0.5 m, explicit Euler
    with tau 0.02 s) for the cost ``Q = diag(1, 1, 10, 1)`` on (x, x_dot, theta, theta_dot)
    and ``R = 0.1`` on the force: the pole angle matters most, the cart position keeps the
    cart near the centre. The bang-bang ±10 N force then follows the sign of the LQR force.
    The gain comes out as ``K = [-2.78, -5.32, -46.4, -12.0]``; no tuning was needed beyond
    choosing ``Q`` and ``R``. From every corner of the start box the cart stays within
    0.28 m of the centre for all 500 steps.

    Example:
        >>> expert = CartPoleLQR()
        >>> expert(np.array([0.0, 0.0, 0.05, 0.0], np.float32))  # pole leans right: push right
        1
    """

    def __init__(self) -> None:
        g, m_cart, m_pole, half, tau = 9.8, 1.0, 0.1, 0.5, 0.02
        total = m_cart + m_pole
        denom = half * (4.0 / 3.0 - m_pole / total)
        # Linearised accelerations: d(theta_acc)/d(theta, F) and d(x_acc)/d(theta, F).
        th_th, th_f = g / denom, -1.0 / (total * denom)
        x_th, x_f = -m_pole * half * th_th / total, 1.0 / total - m_pole * half * th_f / total
        a_c = np.array([[0, 1, 0, 0], [0, 0, x_th, 0], [0, 0, 0, 1], [0, 0, th_th, 0]], float)
        b_c = np.array([[0], [x_f], [0], [th_f]], float)
        self.gain = lqr_gain(
            np.eye(4) + tau * a_c, tau * b_c, np.diag([1.0, 1.0, 10.0, 1.0]), np.eye(1) * 0.1
        )[0]

    def __call__(self, obs: np.ndarray) -> int:
        return int(-self.gain @ np.asarray(obs, float) > 0)


class PendulumSwingUp:
    """Swings Pendulum-v1 up by energy pumping and holds it with LQR; torque clipped to ±2.

    With ``theta = 0`` upright, Pendulum's dynamics ``theta_ddot = 3g/(2l) sin(theta) + 3u``
    conserve ``E = theta_dot^2 / 2 + 3g/(2l) (cos(theta) - 1)``, which is 0 at rest upright
    and changes as ``dE/dt = 3 u theta_dot``. Away from the top the expert pumps energy with
    ``u = -k_e E theta_dot`` (full torque along the velocity while ``E < 0``, braking when
    ``E > 0``). Within ``balance_angle`` of upright it uses the LQR gain of the linearised,
    semi-implicit-Euler dynamics (dt 0.05 s) for the task's own cost ``theta^2 +
    0.1 theta_dot^2 + 0.001 u^2``.

    The two constants were tuned on 50 seeds: the mean return stays within -137 to -140 for
    ``k_energy`` from 0.5 to 3 and ``balance_angle`` from 0.5 to 0.8 rad; with 0.3 rad the
    balance catches the pendulum too late (-142 to -729, depending on ``k_energy``). The
    worst starts (at the bottom, nearly at rest, where ±2 of torque needs several swings)
    cost about -350.

    Args:
        k_energy: gain of the energy pump (the torque saturates at ±2 for most states).
        balance_angle: angle from upright (rad) within which the LQR balance takes over.

    Example:
        >>> expert = PendulumSwingUp()
        >>> action = expert(np.array([1.0, 0.1, 0.0], np.float32))  # just right of upright
        >>> action.dtype, action.shape, bool(action[0] < 0)
        (dtype('float32'), (1,), True)
    """

    def __init__(self, k_energy: float = 1.0, balance_angle: float = 0.5) -> None:
        if not k_energy > 0:
            raise ValueError(f"k_energy must be positive, got {k_energy}")
        if not 0 < balance_angle <= math.pi:
            raise ValueError(f"balance_angle must be in (0, pi] radians, got {balance_angle}")
        dt, w2 = 0.05, 15.0  # w2 = 3g/(2l) with g 10, l 1
        a = np.array([[1 + w2 * dt * dt, dt], [w2 * dt, 1.0]])
        b = np.array([[3 * dt * dt], [3 * dt]])
        self.gain = lqr_gain(a, b, np.diag([1.0, 0.1]), np.eye(1) * 0.001)[0]
        self.k_energy, self.balance_angle, self.w2 = k_energy, balance_angle, w2

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        cos, sin, th_dot = (float(v) for v in obs)
        th = math.atan2(sin, cos)
        if abs(th) < self.balance_angle:
            u = float(-self.gain @ np.array([th, th_dot]))
        else:
            energy = 0.5 * th_dot**2 + self.w2 * (cos - 1.0)
            u = -self.k_energy * energy * (th_dot if th_dot != 0 else 1.0)
        return np.array([np.clip(u, -2.0, 2.0)], dtype=np.float32)


class MountainCarPump:
    """Drives MountainCar-v0 up by energy pumping: push (action 0 or 2) along the velocity.

    Pushing along the velocity adds ``force * |v|`` of energy every step. At rest (the start,
    or stopped at the left wall) there is no velocity to follow, so the expert looks ahead:
    it simulates the pump from the current position with MountainCar-v0's own dynamics
    (force 0.001, gravity 0.0025) after a first push left and after a first push right, and
    starts in the direction that reaches the flag sooner. Always starting left costs about
    20 steps from some starts (return -126 on 100 seeds), always right about 14 (-120); the
    look-ahead gets -106.

    Example:
        >>> expert = MountainCarPump()
        >>> expert(np.array([-0.5, 0.01], np.float32)), expert(np.array([-0.5, -0.01], np.float32))
        (2, 0)
        >>> expert(np.array([-0.55, 0.0], np.float32)), expert(np.array([-0.45, 0.0], np.float32))  # at rest
        (2, 0)
    """

    def __call__(self, obs: np.ndarray) -> int:
        position, velocity = float(obs[0]), float(obs[1])
        if velocity != 0:
            return 2 if velocity > 0 else 0
        return min((0, 2), key=lambda first: _pump_steps(position, velocity, first))


def _pump_steps(position: float, velocity: float, first: int, limit: int = 1000) -> int:
    """Steps MountainCar-v0 (gymnasium's ``mountain_car.py``) takes to the flag under the pump
    after a first action ``first``; ``limit`` if it never gets there."""
    action = first
    for n in range(1, limit):
        velocity += (action - 1) * 0.001 - 0.0025 * math.cos(3 * position)
        velocity = min(max(velocity, -0.07), 0.07)
        position = min(max(position + velocity, -1.2), 0.6)
        if position == -1.2 and velocity < 0:
            velocity = 0.0
        if position >= 0.5 and velocity >= 0:
            return n
        action = 2 if velocity > 0 else 0
    return limit


class MountainCarContinuousPump:
    """The continuous ``MountainCarPump`` for MountainCarContinuous-v0: full force along the velocity.

    Every step costs ``0.1 u^2`` = 0.1, so the return is 100 minus a tenth of the steps to the
    flag (about 80 from every start); at rest it pushes left first.

    Example:
        >>> MountainCarContinuousPump()(np.array([-0.5, 0.01], np.float32))
        array([1.], dtype=float32)
    """

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return np.array([1.0 if obs[1] > 0 else -1.0], dtype=np.float32)


class AcrobotPump:
    """Swings Acrobot-v1 up by energy pumping: torque the elbow (action 0 or 2) along its own velocity.

    The power the elbow torque puts into the chain is ``torque * theta2_dot``, so a torque of
    the sign of ``theta2_dot`` adds energy as fast as the ±1 torque allows, until the tip
    clears the line. (Torquing along the shoulder velocity ``theta1_dot`` instead never
    reaches the line; against it does about as well as this, -85 on 100 seeds.)

    Example:
        >>> AcrobotPump()(np.array([1, 0, 1, 0, 0.0, 0.5], np.float32))
        2
    """

    def __call__(self, obs: np.ndarray) -> int:
        return 2 if obs[5] > 0 else 0


def _lazy(module: str, name: str) -> Callable[[], Expert]:
    """A factory that imports ``module`` (an environment's, or an adapter's) only when called."""

    def build() -> Expert:
        from importlib import import_module

        expert: Expert = getattr(import_module(module), name)()
        return expert

    build.__qualname__ = f"{module}.{name}"
    return build


EXPERTS: dict[str, Callable[[], Expert]] = {
    "cartpole_lqr": CartPoleLQR,
    "pendulum_swing_up": PendulumSwingUp,
    "mountain_car_pump": MountainCarPump,
    "mountain_car_continuous_pump": MountainCarContinuousPump,
    "acrobot_pump": AcrobotPump,
    # The project's own environments keep their experts beside their physics.
    "reach_ik": _lazy("rlhf_gym.tasks.envs.reach", "ReachExpert"),
    "reach_discrete_ik": _lazy("rlhf_gym.tasks.envs.reach", "ReachDiscreteExpert"),
    "pick_place_script": _lazy("rlhf_gym.tasks.envs.pick_place", "PickPlaceExpert"),
    "catch_tracker": _lazy("rlhf_gym.tasks.envs.catch", "CatchExpert"),
    "pong_tracker": _lazy("rlhf_gym.tasks.envs.pong", "PongExpert"),
    # The pixel games' experts read the state back from the frames (stacked 2 deep).
    "catch_pixels_tracker": _lazy("rlhf_gym.tasks.envs.pixel_experts", "CatchPixelsExpert"),
    "pong_pixels_tracker": _lazy("rlhf_gym.tasks.envs.pixel_experts", "PongPixelsExpert"),
    # Adapters of other suites' tasks (optional extras).
    "reacher_ik": _lazy("rlhf_gym.tasks.envs.adapter_experts", "ReacherExpert"),
    "pusher_script": _lazy("rlhf_gym.tasks.envs.adapter_experts", "PusherExpert"),
    "lunar_lander_heuristic": _lazy("rlhf_gym.tasks.envs.adapter_experts", "LunarLanderExpert"),
    "ale_pong_tracker": _lazy("rlhf_gym.tasks.envs.adapter_experts", "AlePongExpert"),
}
"""Every registered expert, by the name a preset's ``expert`` field uses."""


def mean_return(
    task: Playable, policy: Expert | None, horizon: str = "natural", seeds: Iterable[int] = range(20)
) -> float:
    """Mean true return of ``policy`` over one episode per seed (``None``: uniform random actions).

    Example:
        >>> from rlhf_gym.tasks.registry import get_task
        >>> mean_return(get_task("CartPole-v1"), CartPoleLQR(), seeds=[0])
        500.0
    """
    env = task.make(horizon)
    returns = []
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        env.action_space.seed(seed)
        total, done = 0.0, False
        while not done:
            action = env.action_space.sample() if policy is None else policy(obs)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return float(np.mean(returns))
