"""Image preprocessing, as a preset's ``observation`` states it: grey scale, resize, frame stack.

The usual preprocessing of pixel tasks (Mnih et al., 2015; rl-zoo3's Atari and CarRacing wrappers),
as Gymnasium observation wrappers applied in this order:

- ``grayscale: true``: luminance (ITU-R 601) of an RGB frame, one channel;
- ``resize: [height, width]``: area averaging over each output pixel's block of input pixels
  (numpy only, no OpenCV);
- ``frame_stack: k``: the last ``k`` frames side by side on the channel axis, oldest first, as
  SB3's ``VecFrameStack`` stacks them; after a reset every slot holds the first frame.

Frames stay uint8 and channel-last ``(height, width, channels)``, the layout SB3's ``CnnPolicy``
and the reward model's encoder (``rlhf_gym.reward.pixels``) both take. An image id without a preset
takes ``image_defaults``.

Example:
    >>> import gymnasium as gym
    >>> env = preprocess(gym.make("rlhf_gym/CatchPixels-v0"), {"frame_stack": 2})
    >>> env.observation_space.shape, env.observation_space.dtype
    ((36, 36, 2), dtype('uint8'))
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from rlhf_gym.tasks import snapshots

KEYS = ("grayscale", "resize", "frame_stack")
MAX_STACK = 16
MAX_SIDE = 512
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def check(spec: dict[str, Any], where: str) -> None:
    """Refuse an ``observation`` setting that is not one of ``KEYS`` with a sound value.

    Raises:
        ValueError: naming the key and what was expected.
    """
    if not isinstance(spec, dict):
        raise ValueError(f"observation in {where} must be a mapping of {', '.join(KEYS)}, got {spec!r}")
    for key, value in spec.items():
        if key not in KEYS:
            raise ValueError(
                f"unknown observation setting {key!r} in {where}; expected one of {', '.join(KEYS)}"
            )
        if key == "grayscale" and not isinstance(value, bool):
            raise ValueError(f"observation.grayscale in {where} must be true or false, got {value!r}")
        if key == "resize" and not (
            isinstance(value, (list, tuple))
            and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and 16 <= v <= MAX_SIDE for v in value)
        ):
            raise ValueError(
                f"observation.resize in {where} must be [height, width], each 16 to {MAX_SIDE}, got {value!r}"
            )
        if key == "frame_stack" and not (
            isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_STACK
        ):
            raise ValueError(f"observation.frame_stack in {where} must be 1 to {MAX_STACK}, got {value!r}")


def preprocess(env: gym.Env, spec: dict[str, Any]) -> gym.Env:
    """``env`` with the preprocessing ``spec`` states (see the module docstring).

    Raises:
        ValueError: the observations are not uint8 frames ``(height, width[, channels])``.
    """
    if not spec:
        return env
    check(spec, "the observation settings")
    space = env.observation_space
    if not (isinstance(space, spaces.Box) and space.dtype == np.uint8 and len(space.shape) in (2, 3)):
        raise ValueError(
            f"observation preprocessing needs uint8 frames (height, width[, channels]), got {space}"
        )
    if spec.get("grayscale") or len(space.shape) == 2:  # (a frame of one channel gets its channel axis)
        env = Grayscale(env)
    if "resize" in spec:
        env = Resize(env, tuple(spec["resize"]))
    if spec.get("frame_stack", 1) > 1:
        env = StackFrames(env, spec["frame_stack"])
    return env


def image_defaults(space: spaces.Space, atari: bool) -> dict[str, Any]:
    """The preprocessing of an image id without a preset: an Atari screen (ALE already greys it,
    ``obs_type="grayscale"``) at 84 x 84 with 4 frames, as Mnih et al. (2015); any other frame grey
    at 64 x 64 (when larger) with 2, as rl-zoo3 does for CarRacing. ``{}`` for other spaces."""
    if not (isinstance(space, spaces.Box) and space.dtype == np.uint8 and len(space.shape) in (2, 3)):
        return {}
    if atari:
        return {"resize": [84, 84], "frame_stack": 4}
    spec: dict[str, Any] = {"frame_stack": 2}
    if len(space.shape) == 3 and space.shape[2] == 3:
        spec["grayscale"] = True
    if max(space.shape[:2]) > 64:
        spec["resize"] = [64, 64]
    return spec


def _frames(shape: tuple[int, ...], channels: int = 1) -> spaces.Box:
    return spaces.Box(0, 255, (shape[0], shape[1], channels), np.uint8)


class Grayscale(gym.ObservationWrapper):
    """An RGB frame's luminance, ``(height, width, 1)``; a frame of one channel as ``(height, width, 1)``;
    any other frame as it is."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        shape = tuple(env.observation_space.shape or ())
        self.rgb = len(shape) == 3 and shape[2] == 3
        self.observation_space = _frames(shape) if self.rgb or len(shape) == 2 else env.observation_space

    def observation(self, observation: np.ndarray) -> np.ndarray:
        if not self.rgb:
            return observation.reshape(self.observation_space.shape)
        return np.rint(observation @ LUMA).astype(np.uint8)[..., None]


class Resize(gym.ObservationWrapper):
    """Each output pixel the mean of its block of input pixels (blocks of near-equal size)."""

    def __init__(self, env: gym.Env, size: tuple[int, int]) -> None:
        super().__init__(env)
        shape = tuple(env.observation_space.shape or ())
        h, w = shape[:2]
        self._rows = np.floor(np.arange(size[0]) * h / size[0]).astype(np.intp)
        self._cols = np.floor(np.arange(size[1]) * w / size[1]).astype(np.intp)
        rows, cols = np.maximum(np.diff([*self._rows, h]), 1), np.maximum(np.diff([*self._cols, w]), 1)
        self._area = np.outer(rows, cols).astype(np.float32)  # (a pixel repeated, when enlarging)
        channels = shape[2] if len(shape) == 3 else 1
        self.observation_space = _frames(size, channels)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        frame = observation.reshape(*observation.shape[:2], -1).astype(np.float32)
        sums = np.add.reduceat(np.add.reduceat(frame, self._rows, axis=0), self._cols, axis=1)
        return np.rint(sums / self._area[..., None]).astype(np.uint8)


class StackFrames(gym.ObservationWrapper):
    """The last ``k`` frames on the channel axis, oldest first; a reset fills every slot."""

    def __init__(self, env: gym.Env, k: int) -> None:
        super().__init__(env)
        h, w, c = env.observation_space.shape  # type: ignore[misc]
        self.k, self.c = k, c
        self.observation_space = _frames((h, w), c * k)
        self._stack = np.zeros(self.observation_space.shape, np.uint8)

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict]:
        obs, info = self.env.reset(**kwargs)
        self._stack[:] = np.tile(obs, (1, 1, self.k))
        return self._stack.copy(), info

    def observation(self, observation: np.ndarray) -> np.ndarray:
        self._stack[..., : -self.c] = self._stack[..., self.c :]
        self._stack[..., -self.c :] = observation
        return self._stack.copy()


# the stacked frames are per-episode state: a restored snapshot (a correction) sees the same stack
snapshots.register(StackFrames, snapshots.LayerState(state=("_stack",), params=("k", "c")))
