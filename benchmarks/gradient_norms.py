"""Why CartPole's PPO clips gradients at norm 5: the norms of PPO's policy and value gradients, each
measured alone, on the first minibatch of every update, in three fixed-horizon runs of one seed:
the learned reward with clipping at 0.5 (SB3's default) and at 5 (the preset's), and the true
reward at 0.5. SB3 clips their joint norm, so the value gradient's share of it is what the policy
loses.

    python benchmarks/gradient_norms.py            # seed 6, 25 oracle comparisons
    python benchmarks/gradient_norms.py --seed 4 --labels 50

The probe draws the minibatch with the global numpy generator's state saved and restored, so the
runs are those the label-efficiency publication makes. A diagnosis, not a publication: it prints
its table.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

PHASES = ((0, 20_000), (20_000, 52_000), (52_000, 101_000))  # feedback rounds end at about 51k


def norms(seed: int, labels: int | None, clip: float) -> tuple[list[tuple[int, float, float]], float]:
    """(timesteps, policy-gradient norm, value-gradient norm) of every update, and the final return."""
    import numpy as np
    import torch as th
    from stable_baselines3 import PPO

    from rlhf_gym import RLHF

    log: list[tuple[int, float, float]] = []
    train = PPO.train

    def probed(self: Any) -> None:
        state = np.random.get_state()  # noqa: NPY002 - SB3 shuffles minibatches with the global generator
        data = next(iter(self.rollout_buffer.get(self.batch_size)))
        np.random.set_state(state)  # noqa: NPY002
        values, log_prob, _ = self.policy.evaluate_actions(data.observations, data.actions.long().flatten())
        adv = (data.advantages - data.advantages.mean()) / (data.advantages.std() + 1e-8)
        ratio = th.exp(log_prob - data.old_log_prob)
        clip = self.clip_range(self._current_progress_remaining)
        policy_loss = -th.min(adv * ratio, adv * th.clamp(ratio, 1 - clip, 1 + clip)).mean()
        value_loss = self.vf_coef * ((data.returns - values.flatten()) ** 2).mean()
        found = []
        for loss in (policy_loss, value_loss):
            self.policy.optimizer.zero_grad()
            loss.backward(retain_graph=True)
            grads = [p.grad.norm() ** 2 for p in self.policy.parameters() if p.grad is not None]
            found.append(float(th.sqrt(sum(grads))))
        self.policy.optimizer.zero_grad()
        log.append((self.num_timesteps, *found))
        train(self)

    PPO.train = probed  # type: ignore[method-assign]
    try:
        reward = {"labels": labels} if labels else {"reward": "true"}
        hp = {"max_grad_norm": clip}
        run = RLHF("CartPole-v1", horizon="fixed", seed=seed, torch_threads=1, hyperparams=hp, **reward)
        run.learn()
    finally:
        PPO.train = train  # type: ignore[method-assign]
    return log, run.final.mean


def main(argv: list[str] | None = None) -> int:
    import numpy as np

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--labels", type=int, default=25)
    args = parser.parse_args(argv)
    print(
        "| reward | clip | steps | policy gradient norm, median | value gradient norm, median | value share |"
    )
    print("|---|---|---|---|---|---|")
    for labels, clip in ((args.labels, 0.5), (args.labels, 5.0), (None, 0.5)):
        log, final = norms(args.seed, labels, clip)
        a = np.array(log)
        name = f"learned, {labels} labels" if labels else "true"
        for low, high in PHASES:
            m = (a[:, 0] >= low) & (a[:, 0] < high)
            share = np.median(a[m, 2] / np.hypot(a[m, 1], a[m, 2]))
            steps = f"{low // 1000}k-{min(high, 100_000) // 1000}k"
            policy, value = np.median(a[m, 1]), np.median(a[m, 2])
            print(f"| {name} | {clip:g} | {steps} | {policy:.3f} | {value:.2f} | {share:.3f} |")
        print(f"| {name} | {clip:g} | final return | {final:.1f} | | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
