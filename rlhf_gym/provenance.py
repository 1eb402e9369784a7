"""Where a result came from: the platform a run ran on (CPU, torch's CPU kernels, package versions)."""

from __future__ import annotations

import functools
from pathlib import Path


@functools.cache
def platform() -> str:
    """The CPU, the vector kernels torch dispatches to, and the versions a run's numbers depend on.
    Learned-reward runs are reproducible bit for bit only on the same platform: torch picks its
    CPU kernels (AVX2, AVX-512, ...) by the processor, and a different float rounding in the
    reward model changes which policy PPO ends up with.

    Example:
        >>> "torch " in platform() and "kernels" in platform()
        True
    """
    import platform as host

    import gymnasium
    import numpy
    import stable_baselines3
    import torch

    model = host.processor() or host.machine()
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    return (
        f"{model} ({torch.backends.cpu.get_cpu_capability()} kernels); Python {host.python_version()}, "
        f"torch {torch.__version__}, stable-baselines3 {stable_baselines3.__version__}, "
        f"gymnasium {gymnasium.__version__}, numpy {numpy.__version__}"
    )
