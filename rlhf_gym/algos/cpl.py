"""Contrastive Preference Learning: fit the policy to preferences directly, with no reward model.

CPL (Hejna et al., "Contrastive Preference Learning: Learning from Human Feedback without RL",
ICLR 2024, arXiv 2310.13639) assumes the teacher prefers segments by their regret under a
max-entropy optimal policy, whose advantage is ``alpha * log pi*(a|s)``. The Bradley-Terry
likelihood of a preference then depends on the policy alone, so the policy is trained by
contrastive classification of segment pairs on ``sum_t log pi(a_t|s_t)``.

``CPL`` is SB3's PPO with ``train()`` replaced: rollouts are still collected (the pipeline asks
the teacher about segments of them), but updates use only the preference pairs in
``agent.feedback``; the environment reward and the value head are not used.

Continuous actions reach the environment (and so the segments) clipped to the action box, so
a step is scored by the likelihood of the clipped Gaussian: its density inside the box, and
the probability mass beyond a bound for an action on it (as in "Clipped Action Policy
Gradient", Fujita and Maeda, ICML 2018).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3 import PPO

from rlhf_gym.agents.registry import policy_input
from rlhf_gym.reward.evidence import gather
from rlhf_gym.types import Feedback


def _check(name: str, value: float, ok: bool, expected: str) -> None:
    if not ok:
        raise ValueError(f"{name}={value!r}; expected {expected}")


def check_cpl_params(alpha: float, contrastive_bias: float) -> None:
    """Raise ``ValueError`` unless ``alpha > 0`` and ``0 < contrastive_bias <= 1``."""
    _check("alpha", alpha, math.isfinite(alpha) and alpha > 0, "a finite number > 0")
    _check("contrastive_bias", contrastive_bias, 0 < contrastive_bias <= 1, "a number in (0, 1]")


def cpl_loss(
    logp_first: torch.Tensor,
    logp_second: torch.Tensor,
    labels: torch.Tensor,
    alpha: float = 0.1,
    contrastive_bias: float = 0.5,
) -> torch.Tensor:
    """CPL's biased contrastive loss, averaged over pairs.

    With ``S`` a segment's summed log-probability, ``l(a > b) = -log sigmoid(alpha*S_a -
    contrastive_bias*alpha*S_b)``, and a pair with label ``mu`` costs ``mu*l(1 > 2) + (1-mu)*l(2 > 1)``
    (Hejna et al. 2023, eq. 5 with the conservative bias of their code; lambda < 1 keeps the
    dispreferred segment's likelihood from being pushed down without bound).

    Args:
        logp_first: ``S`` of each pair's first segment, shape ``(P,)``.
        logp_second: ``S`` of each pair's second segment, shape ``(P,)``.
        labels: probability that the first segment is preferred (1, 0 or 0.5), shape ``(P,)``.
        alpha: temperature of the max-entropy advantage ``alpha * log pi``, > 0.
        contrastive_bias: the conservative bias lambda, in (0, 1]; 1 is the unbiased loss.

    Returns:
        The mean loss, a scalar tensor.

    Example:
        >>> import torch
        >>> zero = torch.zeros(1)
        >>> round(cpl_loss(zero, zero, torch.ones(1)).item(), 4)  # log 2
        0.6931
        >>> round(cpl_loss(torch.tensor([10.0]), zero, torch.ones(1)).item(), 4)  # -log sigmoid(1)
        0.3133
    """
    check_cpl_params(alpha, contrastive_bias)
    first_wins = alpha * logp_first - contrastive_bias * alpha * logp_second
    second_wins = alpha * logp_second - contrastive_bias * alpha * logp_first
    # -log sigmoid(x) = softplus(-x), computed stably.
    loss = labels * F.softplus(-first_wins) + (1 - labels) * F.softplus(-second_wins)
    return loss.mean()


def _finite(bound: torch.Tensor) -> torch.Tensor:
    return bound.clamp(-1e4, 1e4)  # an unbounded side clips nothing, and its terms vanish


def clipped_log_prob(
    dist: torch.distributions.Normal, actions: torch.Tensor, low: torch.Tensor, high: torch.Tensor
) -> torch.Tensor:
    """Log-likelihood, per action dimension, of Gaussian actions clipped to ``[low, high]``:
    the density inside, and the mass beyond a bound for an action on it (Fujita and Maeda 2018).

    Example:
        >>> normal = torch.distributions.Normal(torch.zeros(1), torch.ones(1))
        >>> one = torch.ones(1)
        >>> round(clipped_log_prob(normal, one, -one, one).exp().item(), 4)  # P(a >= 1)
        0.1587
    """
    mass_above = torch.special.log_ndtr((dist.mean - _finite(high)) / dist.stddev)
    mass_below = torch.special.log_ndtr((_finite(low) - dist.mean) / dist.stddev)
    inside = dist.log_prob(actions)
    return torch.where(actions >= high, mass_above, torch.where(actions <= low, mass_below, inside))


def clipped_expected_log_prob(
    dist: torch.distributions.Normal, low: torch.Tensor, high: torch.Tensor
) -> torch.Tensor:
    """``E[clipped_log_prob(dist, a)]`` over the policy's own clipped actions ``a``, per action
    dimension, in closed form (minus the entropy of a censored Gaussian).

    Example:
        >>> normal = torch.distributions.Normal(torch.zeros(1), torch.ones(1))
        >>> inf = torch.full((1,), float("inf"))
        >>> bool(torch.isclose(clipped_expected_log_prob(normal, -inf, inf), -normal.entropy()))
        True
    """
    a, b = (_finite(low) - dist.mean) / dist.stddev, (_finite(high) - dist.mean) / dist.stddev
    below, above = torch.special.ndtr(a), torch.special.ndtr(-b)
    inside = 1 - below - above
    phi = lambda z: torch.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)  # noqa: E731
    # inside the box: -inside * log(sigma sqrt(2 pi)) - (1/2) int_a^b z^2 phi(z) dz
    second_moment = inside - (b * phi(b) - a * phi(a))
    log_norm = torch.log(dist.stddev) + 0.5 * math.log(2 * math.pi)
    return torch.xlogy(below, below) + torch.xlogy(above, above) - inside * log_norm - 0.5 * second_moment


class CPL(PPO):
    """PPO's policy and rollouts, trained by CPL on the preference pairs in ``feedback``.

    Every ``train()`` call takes ``cpl_steps`` gradient steps, each on ``cpl_batch_size`` pairs
    drawn from all the pairs the feedback records give (comparisons, corrections,
    demonstrations, e-stops; ratings and TAMER signals give none and are ignored). With no
    pairs, ``train()`` does nothing.

    In the absorbing state of a fixed-horizon task every action is equivalent, so the
    max-entropy optimal policy there is uniform and its advantage is ``alpha * log(1/|A|)``
    (``absorbing="uniform"``, the default for Discrete actions): each absorbing step adds the
    uniform policy's log-probability, a constant. A uniform density on an action box is not on
    the scale of a Gaussian policy's likelihood (it stays put while the policy narrows), so for
    Box actions the default is ``absorbing="policy"``: each absorbing step adds the policy's own
    expected log-likelihood in that state, ``E_{a~pi}[log pi(a|s)]`` (minus its entropy, with
    no gradient): what a typical action of the policy scores there. Leaving those steps out
    (``absorbing="exclude"``) makes a segment that ends early sum fewer terms, so it scores
    higher or lower with the sign of the policy's log-likelihoods, not with what the teacher
    says.
    PPO's own loss settings (``n_epochs``, ``batch_size``, ``clip_range``, ``vf_coef``,
    ``ent_coef``) are unused; ``learning_rate`` and ``max_grad_norm`` apply.

    Args:
        policy: as for PPO (``"MlpPolicy"``).
        env: as for PPO.
        alpha: temperature of the advantage ``alpha * log pi``, > 0 (CPL's configs: 0.1).
        contrastive_bias: conservative bias lambda in (0, 1] (CPL's configs: 0.5).
        bc_coef: weight of a behaviour-cloning term, the mean negative log-likelihood of the
            preferred segment's live steps (CPL's ``bc_coeff``), >= 0.
        cpl_steps: gradient steps per ``train()`` call, >= 1. The default 64 gives ~3k steps over the
            CartPole preset (49 rollouts); a few thousand steps at lr 1e-3 is what moved the policy in
            a CartPole check.
        cpl_batch_size: pairs per gradient step, >= 1.
        absorbing: ``uniform`` (Discrete actions only), ``policy`` or ``exclude``: what an
            absorbing step adds to a segment's sum; ``None``: ``uniform`` for Discrete actions,
            ``policy`` otherwise.
        **kwargs: PPO's other arguments.

    Logged by ``train()``: ``train/cpl_pairs`` (pairs in the feedback), ``train/cpl_loss`` (mean CPL
    loss over the call's steps), ``train/cpl_accuracy`` (share of non-tie pairs whose summed
    log-probabilities are ordered as the label says) and,
    when ``bc_coef > 0``, ``train/bc_loss``.

    Example:
        >>> agent = CPL("MlpPolicy", "CartPole-v1", n_steps=16, batch_size=16, seed=0, device="cpu")
        >>> agent.feedback, agent.cpl_pairs
        ([], 0)
    """

    def __init__(
        self,
        policy: Any,
        env: Any,
        alpha: float = 0.1,
        contrastive_bias: float = 0.5,
        bc_coef: float = 0.0,
        cpl_steps: int = 64,
        cpl_batch_size: int = 32,
        absorbing: str | None = None,
        **kwargs: Any,
    ) -> None:
        choices = (None, "uniform", "policy", "exclude")
        _check("absorbing", absorbing, absorbing in choices, "'uniform', 'policy' or 'exclude'")  # type: ignore[arg-type]
        check_cpl_params(alpha, contrastive_bias)
        _check("bc_coef", bc_coef, math.isfinite(bc_coef) and bc_coef >= 0, "a finite number >= 0")
        for name, value in (("cpl_steps", cpl_steps), ("cpl_batch_size", cpl_batch_size)):
            integer = isinstance(value, int | np.integer) and not isinstance(value, bool)
            _check(name, value, integer and value >= 1, "an integer >= 1")
        self.alpha = float(alpha)
        self.contrastive_bias = float(contrastive_bias)
        self.bc_coef = float(bc_coef)
        self.cpl_steps = int(cpl_steps)
        self.cpl_batch_size = int(cpl_batch_size)
        self.absorbing: str | None = absorbing
        self.feedback: list[Feedback] = []
        self.cpl_pairs = 0
        super().__init__(policy, env, **kwargs)

    def _setup_model(self) -> None:
        super()._setup_model()
        self._rng = np.random.default_rng(self.seed)
        space = self.action_space
        if self.absorbing is None:
            self.absorbing = "uniform" if isinstance(space, spaces.Discrete) else "policy"
        self._absorbing_logp = 0.0
        if self.absorbing == "uniform":
            if not isinstance(space, spaces.Discrete):
                raise ValueError(
                    f"absorbing='uniform' needs Discrete actions, got {space}: a uniform density is "
                    "not on the scale of a Gaussian policy's likelihood; expected 'policy' or 'exclude'"
                )
            self._absorbing_logp = -math.log(int(space.n))
        self._bounds: tuple[torch.Tensor, torch.Tensor] | None = None
        if isinstance(space, spaces.Box) and not self.policy.squash_output:  # SB3 clips these actions
            low, high = (
                torch.as_tensor(b, dtype=torch.float32, device=self.device) for b in (space.low, space.high)
            )
            self._bounds = low, high

    def bind(self, feedback: list[Feedback], **_: Any) -> None:
        """Learn from ``feedback``, the RLHF loop's own list (appended to as labels arrive)."""
        self.feedback = feedback

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "feedback", "_rng", "_bounds"]

    def _tensors(self) -> tuple[torch.Tensor, ...] | None:
        """Padded steps of every paired segment: ``(obs, actions, live, pairs, labels, absorbing)``,
        or None."""
        records = [r for r in self.feedback if r.pairs()]
        if not records:
            return None
        ev = gather(records)
        device = self.device
        obs = policy_input(self.policy, ev.obs, device)
        discrete = isinstance(self.action_space, spaces.Discrete | spaces.MultiDiscrete)
        actions = torch.as_tensor(ev.actions, dtype=torch.long if discrete else torch.float32, device=device)
        if isinstance(self.action_space, spaces.Discrete):
            actions = actions.reshape(*actions.shape[:2])
        live = torch.as_tensor((ev.weights > 0) & ~ev.absorbing, device=device)
        absorbing = torch.as_tensor((ev.weights > 0) & ev.absorbing, device=device)
        pairs = torch.as_tensor(ev.pairs, device=device)
        labels = torch.as_tensor(ev.pair_labels, dtype=torch.float32, device=device)
        return obs, actions, live, pairs, labels, absorbing

    def segment_log_probs(
        self, obs: torch.Tensor, actions: torch.Tensor, live: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed log-probability of each segment's live steps (of the clipped Gaussian for Box
        actions), and its count of live steps.

        Args:
            obs: shape ``(N, L, *obs_shape)``.
            actions: shape ``(N, L)`` (Discrete) or ``(N, L, *action_shape)``.
            live: ``(N, L)`` booleans, ``False`` on absorbing and padding steps.

        Returns:
            ``(S, n_live)``, each of shape ``(N,)``.
        """
        logp = torch.zeros(live.shape, device=live.device)
        if live.any():
            if self._bounds is None:
                logp[live] = self.policy.evaluate_actions(obs[live], actions[live])[1]
            else:
                dist = self.policy.get_distribution(obs[live]).distribution
                assert isinstance(dist, torch.distributions.Normal)  # an unsquashed Box policy
                logp[live] = clipped_log_prob(dist, actions[live], *self._bounds).sum(-1)
        return logp.sum(-1), live.sum(-1)

    def absorbing_scores(self, obs: torch.Tensor, absorbing: torch.Tensor) -> torch.Tensor:
        """What the absorbing steps add to each segment's sum (``absorbing``: ``(N, L)``
        booleans), without gradient: ``uniform``'s constant, the policy's own expected
        log-likelihood there (``policy``), or nothing (``exclude``)."""
        if self.absorbing != "policy" or not absorbing.any():
            return self._absorbing_logp * absorbing.sum(-1)
        per_step = torch.zeros(absorbing.shape, device=absorbing.device)
        with torch.no_grad():
            dist = self.policy.get_distribution(obs[absorbing])
            inner = dist.distribution
            if isinstance(inner, torch.distributions.Categorical):
                per_step[absorbing] = -inner.entropy()
            elif self._bounds is not None and isinstance(inner, torch.distributions.Normal):
                per_step[absorbing] = clipped_expected_log_prob(inner, *self._bounds).sum(-1)
            else:  # squashed actions: a Monte Carlo estimate
                draws = [dist.log_prob(dist.sample()) for _ in range(32)]
                per_step[absorbing] = torch.stack(draws).mean(0)
        return per_step.sum(-1)

    def train(self) -> None:
        """Take ``cpl_steps`` CPL gradient steps on the feedback's preference pairs."""
        data = self._tensors()
        self.cpl_pairs = 0 if data is None else len(data[3])
        self.logger.record("train/cpl_pairs", self.cpl_pairs)
        if data is None:
            return
        obs, actions, live, pairs, labels, absorbing = data
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        losses, bc_losses, accuracies = [], [], []
        n_pairs = len(pairs)
        for _ in range(self.cpl_steps):
            if n_pairs <= self.cpl_batch_size:
                batch = torch.arange(n_pairs, device=self.device)
            else:
                picked = self._rng.choice(n_pairs, self.cpl_batch_size, replace=False)
                batch = torch.as_tensor(picked, device=self.device)
            seqs = pairs[batch].reshape(-1)  # first, second, first, second, ...
            total, n_live = self.segment_log_probs(obs[seqs], actions[seqs], live[seqs])
            score = total + self.absorbing_scores(obs[seqs], absorbing[seqs])
            s_first, s_second = score.view(-1, 2).unbind(-1)
            mu = labels[batch]
            loss = cpl_loss(s_first, s_second, mu, self.alpha, self.contrastive_bias)
            losses.append(loss.item())
            if self.bc_coef > 0:
                nll_first, nll_second = (-total / n_live.clamp(min=1)).view(-1, 2).unbind(-1)
                bc = (mu * nll_first + (1 - mu) * nll_second).mean()
                bc_losses.append(bc.item())
                loss = loss + self.bc_coef * bc
            with torch.no_grad():
                decided = mu != 0.5
                if decided.any():
                    agree = (s_first > s_second) == (mu > 0.5)
                    accuracies.append(agree[decided].float().mean().item())
            self.policy.optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            self.policy.optimizer.step()
        self.policy.set_training_mode(False)
        self._n_updates += self.cpl_steps
        self.logger.record("train/cpl_loss", float(np.mean(losses)))
        if accuracies:
            self.logger.record("train/cpl_accuracy", float(np.mean(accuracies)))
        if bc_losses:
            self.logger.record("train/bc_loss", float(np.mean(bc_losses)))
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
