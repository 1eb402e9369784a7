"""What feedback costs a person, in seconds, and budgets in labels or in seconds.

Every item's cost is the time spent watching (or playing) at the task's real-time speed
plus a fixed time to decide or set up. Watching time comes from the task's ``render_fps``
(CartPole 50, Pendulum 30), so a 50-step CartPole clip lasts 1 s. Change any figure with
``RunConfig.effort``.

Where the defaults come from:

- comparison: Christiano et al. (2017, section 3.1) showed 1-2 s clips side by side, and
  "contractors responded to the average query in 3-5 seconds"; their footnote puts 5k labels
  at about 5 hours (3.6 s each). Watching one clip (both play at once) plus 3 s to decide
  gives 4 s for CartPole and 4.7 s for Pendulum.
- rating: no published time per rating was found. Christiano et al. found absolute scores
  harder to give consistently than comparisons, so a rating is assumed to cost what a
  comparison does: watch one clip, 3 s to decide.
- correction and demonstration: no published time per item was found; they are assumed to
  cost the steered steps in real time plus a fixed overhead (2 s to take over, 5 s to set up
  an episode).
- TAMER signals and e-stops: cost the watching time, as the totals published for them are
  (Deep TAMER: 15 minutes of feedback; Warnell et al., 2018).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EffortModel:
    """Seconds of human time per feedback item.

    Args:
        fps: steps per second of real-time playback (the task's ``render_fps``).
        playback_speed: how many times faster than real time clips and live rollouts play.
        tamer_speed: playback speed while a person gives TAMER signals. TAMER studies slow
            the environment down so that a person can react to single steps (the public
            TAMER code for MountainCar waits 0.3 s per step); 0.25 is our assumption.
        decide_seconds: to judge after watching: a comparison or a rating.
        takeover_seconds: to take over the controls for a correction, beyond steering.
        setup_seconds: to start a demonstration episode, beyond playing it.
        stop_seconds: to press stop, beyond watching.

    Costs per item:

    - comparison: watch the two segments side by side, then decide: ``H / (fps speed) + decide``;
    - rating: watch one segment, then decide: ``H / (fps speed) + decide``;
    - correction: watch the agent until taking over, steer ``H`` steps in real time:
      ``watched / (fps speed) + H / fps + takeover``;
    - demonstration: play a whole episode in real time: ``steps / fps + setup``;
    - TAMER signal: key presses are free; watching the live agent costs ``watched / (fps tamer_speed)``;
    - e-stop: watch until stopping: ``watched / (fps speed) + stop``.

    Example:
        >>> EffortModel(fps=50).comparison(50)  # 1 s CartPole clips side by side, 3 s to decide
        4.0
    """

    fps: float = 30.0
    playback_speed: float = 1.0
    tamer_speed: float = 0.25
    decide_seconds: float = 3.0
    takeover_seconds: float = 2.0
    setup_seconds: float = 5.0
    stop_seconds: float = 0.0

    def __post_init__(self) -> None:
        for name in ("fps", "playback_speed", "tamer_speed"):
            if not getattr(self, name) > 0:
                raise ValueError(f"effort {name} must be positive, got {getattr(self, name)}")
        for name in ("decide_seconds", "takeover_seconds", "setup_seconds", "stop_seconds"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"effort {name} must be non-negative, got {getattr(self, name)}")

    def watch(self, steps: int, speed: float | None = None) -> float:
        """Seconds to watch ``steps`` steps of playback (at ``playback_speed`` unless given)."""
        return steps / (self.fps * (speed or self.playback_speed))

    def comparison(self, length: int) -> float:
        return self.watch(length) + self.decide_seconds

    def rating(self, length: int) -> float:
        return self.watch(length) + self.decide_seconds

    def correction(self, watched: int, length: int) -> float:
        return self.watch(watched) + length / self.fps + self.takeover_seconds

    def demonstration(self, steps: int) -> float:
        return steps / self.fps + self.setup_seconds

    def estop(self, watched: int) -> float:
        return self.watch(watched) + self.stop_seconds


class Budget:
    """What is left to spend: labels (items) or seconds of effort, whichever was given.

    Args:
        labels: items allowed, or ``None``.
        seconds: seconds of effort allowed, or ``None``.

    Example:
        >>> b = Budget(seconds=10.0)
        >>> b.affords(4.0), b.spend(4.0), b.affords(7.0)
        (True, None, False)
    """

    def __init__(self, labels: int | None = None, seconds: float | None = None) -> None:
        if (labels is None) == (seconds is None):
            raise ValueError("a budget is in labels or in seconds: give exactly one")
        self.labels = labels
        self.seconds = seconds
        self.items = 0
        self.spent = 0.0

    def affords(self, seconds: float, items: int = 1) -> bool:
        """Whether one more item of this cost fits."""
        if self.labels is not None:
            return self.items + items <= self.labels
        assert self.seconds is not None
        return self.spent + seconds <= self.seconds + 1e-9

    def spend(self, seconds: float, items: int = 1) -> None:
        self.items += items
        self.spent += seconds

    @property
    def exhausted(self) -> bool:
        if self.labels is not None:
            return self.items >= self.labels
        assert self.seconds is not None
        return self.spent >= self.seconds - 1e-9

    def split(self, n: int) -> list[Budget]:
        """``n`` equal parts (labels split as evenly as whole numbers allow), e.g. one per
        feedback type in a mix.

        Example:
            >>> [b.labels for b in Budget(labels=10).split(3)]
            [4, 3, 3]
        """
        if self.labels is not None:
            q, r = divmod(self.labels, n)
            return [Budget(labels=q + (1 if i < r else 0)) for i in range(n)]
        assert self.seconds is not None
        return [Budget(seconds=self.seconds / n) for _ in range(n)]
