"""The project's own environments, registered with Gymnasium as ``rlhf_gym/<Name>-v0``.

Importing this package registers them (as ``import ale_py`` does for Atari); ``import
rlhf_gym`` imports it. The environment modules themselves load on the first ``gym.make``.
They are pure numpy physics, fast enough for sweeps on 2 cores, and render with pygame-ce
(imported on the first render).

    id                           family    actions
    rlhf_gym/Reach-v0            robotics  2 joint torques (Box)
    rlhf_gym/ReachDiscrete-v0    robotics  5 keys: one joint +/- at a time (Discrete)
    rlhf_gym/PickPlace-v0        robotics  2 joint torques + gripper (Box)
    rlhf_gym/Catch-v0            game      left / stay / right (Discrete)
    rlhf_gym/Pong-v0             game      up / stay / down (Discrete)
    rlhf_gym/CatchPixels-v0      game      Catch-v0 seen as one 36x36 grey frame
    rlhf_gym/PongPixels-v0       game      Pong-v0 seen as one 36x36 grey frame

Example:
    >>> import gymnasium as gym
    >>> import rlhf_gym
    >>> gym.spec("rlhf_gym/Reach-v0").max_episode_steps
    100
"""

from __future__ import annotations

import gymnasium as gym

ENVS = {
    "Reach-v0": ("rlhf_gym.tasks.envs.reach:ReachEnv", {}, 100),
    "ReachDiscrete-v0": ("rlhf_gym.tasks.envs.reach:ReachEnv", {"discrete": True}, 100),
    "PickPlace-v0": ("rlhf_gym.tasks.envs.pick_place:PickPlaceEnv", {}, 100),
    "Catch-v0": ("rlhf_gym.tasks.envs.catch:CatchEnv", {}, 500),
    "Pong-v0": ("rlhf_gym.tasks.envs.pong:PongEnv", {}, 500),
    "CatchPixels-v0": ("rlhf_gym.tasks.envs.pixels:CatchPixelsEnv", {}, 500),
    "PongPixels-v0": ("rlhf_gym.tasks.envs.pixels:PongPixelsEnv", {}, 500),
}
"""Every environment of the package: name -> (entry point, keyword arguments, time limit). The
time limit is the preset's ``max_episode_steps`` (``envs/<name>.yaml``), so that a plain
``gym.make`` ends its episodes as Gymnasium's own environments do."""

for _name, (_entry, _kwargs, _limit) in ENVS.items():
    if f"rlhf_gym/{_name}" not in gym.registry:
        gym.register(id=f"rlhf_gym/{_name}", entry_point=_entry, kwargs=_kwargs, max_episode_steps=_limit)
