"""SB3 callbacks that run the RLHF loop's feedback rounds and evaluations on their schedules, and
the schedules' progress for a phase of a run learned as a call of its own."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback


class RLHFCallback(BaseCallback):
    """Calls ``on_round`` at each of ``round_steps`` and ``on_eval`` every ``eval_freq`` steps.

    Feedback rounds run when a rollout starts, so the whole next rollout (and, for
    off-policy agents, the relabelled buffer) uses the new reward model.

    Args:
        round_steps: the agent steps after which a feedback round is due, in order.
        on_round: runs one feedback round.
        eval_freq: agent steps between evaluations.
        on_eval: runs one evaluation.
    """

    def __init__(
        self,
        round_steps: list[int],
        on_round: Callable[[], object],
        eval_freq: int,
        on_eval: Callable[[], object],
    ) -> None:
        super().__init__()
        self.round_steps = list(round_steps)
        self.on_round, self.on_eval = on_round, on_eval
        self.eval_freq = eval_freq
        self.next_eval = eval_freq

    def _on_training_start(self) -> None:  # (a run that explored first starts past step 0)
        self.next_eval = (self.num_timesteps // self.eval_freq + 1) * self.eval_freq

    def _on_rollout_start(self) -> None:
        while self.round_steps and self.num_timesteps >= self.round_steps[0]:
            self.round_steps.pop(0)
            self.on_round()

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.next_eval:
            self.next_eval += self.eval_freq
            self.on_eval()
        return True


@contextlib.contextmanager
def progress_of_run(agent: BaseAlgorithm, total: int) -> Iterator[None]:
    """Within the block, the agent's schedules (learning rate, clip range, DQN's exploration rate)
    measure progress against ``total``, the whole run's steps, not against one ``learn`` call's:
    a phase run as a call of its own (exploration, the initial rollout) must not finish them."""

    def update(num_timesteps: int, _: int) -> None:
        BaseAlgorithm._update_current_progress_remaining(agent, num_timesteps, total)

    agent._update_current_progress_remaining = update  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        del agent._update_current_progress_remaining
