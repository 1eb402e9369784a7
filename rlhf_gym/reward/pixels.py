"""Image observations for the reward model: a small convolutional encoder per ensemble member.

An observation space is an image when SB3 takes it for one (``is_image_space``: a uint8 ``Box``
of rank 3, bounds 0 and 255, channels first or last). Its frames stay uint8 wherever they are
stored, in segments and in a fit's inputs; only the batch being scored becomes float (the first
layer's weights scale it to [0, 1]).

The encoder is the shape of Mnih et al.'s (2015) network, narrower: three convolutions with leaky
ReLUs, the first two strided (``conv_layers``). The members' encoders run as one grouped
convolution, ``E`` groups over the stacked channels, so that an ensemble costs one call per layer,
as the MLPs' batched matrix products do. The encoder's output, with the action beside it, is the
input of each member's MLP (``rlhf_gym.reward.model``).

Example:
    >>> import torch
    >>> from gymnasium import spaces
    >>> layout = image_layout(spaces.Box(0, 255, (36, 36, 2), np.uint8))
    >>> layout
    Layout(channels=2, height=36, width=36, channels_first=False)
    >>> enc = Encoder.build(layout, members=3, gen=torch.Generator().manual_seed(0))
    >>> enc(torch.zeros(5, 36 * 36 * 2, dtype=torch.uint8)).shape  # (members, frames, features)
    torch.Size([3, 5, 288])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces

LEAKY_SLOPE = 0.01
CHUNK = 2048
"""Frames scored at once without gradients (a fit's calibration scores every labelled step)."""


class Layout(NamedTuple):
    """How an image observation is laid out."""

    channels: int
    height: int
    width: int
    channels_first: bool


def image_layout(space: spaces.Space) -> Layout | None:
    """The layout of an image observation space, or ``None`` if it is not one (by SB3's rule)."""
    from stable_baselines3.common.preprocessing import is_image_space, is_image_space_channels_first

    if not isinstance(space, spaces.Box) or not is_image_space(space, check_channels=False):
        return None
    first = is_image_space_channels_first(space)
    c, h, w = space.shape if first else (space.shape[2], *space.shape[:2])
    return Layout(int(c), int(h), int(w), first)


def conv_layers(layout: Layout) -> tuple[tuple[int, int, int], ...]:
    """(channels, kernel, stride) of each convolution: Mnih et al.'s kernels on frames of 64
    pixels a side or more, smaller ones on smaller frames (a 36-pixel frame ends 6 x 6)."""
    if min(layout.height, layout.width) >= 64:
        return ((16, 8, 4), (32, 4, 2), (32, 3, 1))
    return ((8, 4, 2), (16, 3, 2), (8, 3, 1))


def feature_dim(layout: Layout) -> int:
    """Features per frame and member at the encoder's output.

    Raises:
        ValueError: the frames are too small for the convolutions.
    """
    h, w = layout.height, layout.width
    for _, kernel, stride in conv_layers(layout):
        h, w = (h - kernel) // stride + 1, (w - kernel) // stride + 1
    if h < 1 or w < 1:
        raise ValueError(
            f"image observations of {layout.height}x{layout.width} pixels are too small for the reward "
            "model's convolutions; expected at least 16 a side"
        )
    return conv_layers(layout)[-1][0] * h * w


@dataclass
class Encoder:
    """The ensemble's convolutional encoders: ``weights[i]`` ``(E * out, in, k, k)`` (the first
    layer sees the frame itself; the others are grouped by member) and ``biases[i]`` ``(E * out,)``."""

    layout: Layout
    members: int
    strides: tuple[int, ...]
    weights: list[torch.Tensor]
    biases: list[torch.Tensor]

    @classmethod
    def build(cls, layout: Layout, members: int, gen: torch.Generator) -> Encoder:
        """Fresh weights, uniform in +-1/sqrt(fan in) as the MLPs' (and torch's default)."""
        weights, biases, fan, strides = [], [], layout.channels, []
        for out, kernel, stride in conv_layers(layout):
            bound = 1.0 / math.sqrt(fan * kernel * kernel)
            weights.append((torch.rand(members * out, fan, kernel, kernel, generator=gen) * 2 - 1) * bound)
            biases.append((torch.rand(members * out, generator=gen) * 2 - 1) * bound)
            fan = out
            strides.append(stride)
        return cls(layout, members, tuple(strides), weights, biases)

    def parameters(self) -> list[torch.Tensor]:
        return [*self.weights, *self.biases]

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        """Features ``(E, N, F)`` of flat uint8 frames ``(N, H * W * C)``."""
        lay = self.layout
        if lay.channels_first:
            x = frames.view(-1, lay.channels, lay.height, lay.width)
        else:
            x = frames.view(-1, lay.height, lay.width, lay.channels).permute(0, 3, 1, 2)
        h = x.float()  # in [0, 255]: the first layer's weights take it to [0, 1]
        for i, (w, b, s) in enumerate(zip(self.weights, self.biases, self.strides)):
            h = F.conv2d(h, w / 255.0 if i == 0 else w, b, stride=s, groups=1 if i == 0 else self.members)
            h = F.leaky_relu(h, LEAKY_SLOPE, inplace=True)  # (a convolution's backward needs not its output)
        n = h.shape[0]
        return h.reshape(n, self.members, -1).transpose(0, 1)

    def named_tensors(self) -> dict[str, torch.Tensor]:
        """The tensors a checkpoint stores: ``c0, c1, ...`` and ``cb0, cb1, ...``."""
        return {f"c{i}": w for i, w in enumerate(self.weights)} | {
            f"cb{i}": b for i, b in enumerate(self.biases)
        }

    def load(self, tensors: dict[str, Any]) -> None:
        self.weights = [torch.from_numpy(np.array(tensors[f"c{i}"])) for i in range(len(self.weights))]
        self.biases = [torch.from_numpy(np.array(tensors[f"cb{i}"])) for i in range(len(self.biases))]


@dataclass
class PixelSteps:
    """Steps of an image task as the reward model takes them: flat uint8 frames ``(..., P)`` and
    float action features ``(..., A)`` (``A`` is 0 for ``r(s)``), indexed together."""

    frames: torch.Tensor
    actions: torch.Tensor

    def __getitem__(self, index: Any) -> PixelSteps:
        return PixelSteps(self.frames[index], self.actions[index])

    def view(self, *shape: int) -> PixelSteps:
        """Reshape the leading (step) dimensions; the last shape entry must be -1."""
        lead = shape[:-1]
        return PixelSteps(
            self.frames.reshape(*lead, self.frames.shape[-1]),
            self.actions.reshape(*lead, self.actions.shape[-1]),
        )

    reshape = view

    def __len__(self) -> int:
        return len(self.frames)


class ActionFeatures:
    """Actions as the reward model takes them, ``(N, A)``: one-hot (``Discrete``), or scaled to
    [-1, 1] between finite bounds (``Box``); ``(N, 0)`` when the reward is ``r(s)``."""

    def __init__(self, space: spaces.Space, use: bool) -> None:
        self.space, self.use = space, use
        if isinstance(space, spaces.Box):
            low, high = space.low.ravel(), space.high.ravel()
            finite = np.isfinite(low) & np.isfinite(high)
            self.mid = np.where(finite, (low + high) / 2, 0.0).astype(np.float32)
            self.half = np.where(finite, (high - low) / 2, 1.0).astype(np.float32)

    def __call__(self, actions: np.ndarray, n: int) -> np.ndarray:
        if not self.use:
            return np.zeros((n, 0), np.float32)
        if isinstance(self.space, spaces.Discrete):
            return np.eye(int(self.space.n), dtype=np.float32)[np.asarray(actions, dtype=np.int64).reshape(n)]
        return (np.asarray(actions, dtype=np.float32).reshape(n, -1) - self.mid) / self.half


def in_chunks(forward: Any, steps: PixelSteps) -> torch.Tensor:
    """``forward`` over ``steps`` ``CHUNK`` frames at a time, without gradients; ``(E, N)``."""
    with torch.no_grad():
        parts = [forward(steps[i : i + CHUNK]) for i in range(0, len(steps), CHUNK)]
    return torch.cat(parts, dim=-1)
