"""The fixed horizon: termination becomes an absorbing state until the time limit, so an episode's
length carries no reward information (CartPole's horizon leak).
"""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym


class FixedHorizon(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Every episode lasts exactly ``horizon`` steps: termination becomes an absorbing state.

    After the wrapped environment terminates, each step returns the terminal observation
    again, the ``absorbing_reward`` and ``info["absorbing"] = True``, until the time limit
    truncates the episode. Episode length then carries no reward information, which closes
    the horizon leak (a constant reward no longer "solves" CartPole), as in the seals
    environments of Gleave et al.

    Args:
        env: the environment; its own time limit should be at least ``horizon``.
        horizon: steps per episode.
        absorbing_reward: true reward of each absorbing step.

    Example:
        >>> env = FixedHorizon(gym.make("CartPole-v1"), horizon=500)
        >>> _ = env.reset(seed=0)
        >>> steps = 0
        >>> while True:
        ...     _, _, terminated, truncated, info = env.step(0)
        ...     steps += 1
        ...     if terminated or truncated:
        ...         break
        >>> steps, terminated, info["absorbing"]
        (500, False, True)
    """

    def __init__(self, env: gym.Env, horizon: int, absorbing_reward: float = 0.0) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, horizon=horizon, absorbing_reward=absorbing_reward)
        gym.Wrapper.__init__(self, env)
        if horizon <= 0:
            raise ValueError(f"horizon must be positive, got {horizon}")
        self.horizon = horizon
        self.absorbing_reward = float(absorbing_reward)
        self._t = 0
        self._terminal_obs: Any = None

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        self._t = 0
        self._terminal_obs = None
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        self._t += 1
        truncated_now = self._t >= self.horizon
        if self._terminal_obs is not None:
            return self._terminal_obs, self.absorbing_reward, False, truncated_now, {"absorbing": True}
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated:
            self._terminal_obs = obs
        return obs, reward, False, truncated_now or (truncated and not terminated), info
