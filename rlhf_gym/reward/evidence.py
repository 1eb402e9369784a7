"""Feedback records as evidence about one reward: the arrays the reward model's likelihoods read.

In the reward-rational choice view (Jeon, Milli and Dragan, 2020) every feedback type is a
choice whose likelihood depends on the reward of some steps. Two likelihoods cover them:

- **pairs** (Bradley-Terry): a comparison, a correction (corrected over original), a
  demonstration (each demo segment over an agent segment) and an e-stop (the steps before
  the stop over those after it) all say "this sequence of steps is better than that one";
- **ordinal** (cumulative link): a rating says where one segment's return lies on a scale,
  and a TAMER key press (two levels, - and +) where the credit-weighted reward of the steps
  before it lies.

``gather`` pads every sequence of steps to one length, with a weight per step (1 for a real
step, the credit for a TAMER step, 0 for padding), so one batched pass scores them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from rlhf_gym.types import Correction, Demonstration, Feedback, Rating, Segment, Signal


@dataclass(frozen=True)
class Evidence:
    """Every step sequence the feedback mentions, and what the feedback says about them.

    Args:
        obs: observations, shape ``(S, L, *obs_shape)`` (S sequences padded to L steps).
        actions: shape ``(S, L, *action_shape)``.
        absorbing: shape ``(S, L)``.
        weights: weight of each step in its sequence's score, shape ``(S, L)``.
        pairs: ``(P, 2)`` sequence indices, the first said to be better with probability
            ``pair_labels``.
        pair_labels: shape ``(P,)``.
        ordinal: sequence index of each ordinal label, shape ``(O,)``.
        levels: the label, ``0 <= level < instrument's levels``, shape ``(O,)``.
        instrument: which scale each label is on (an index into ``instruments``), shape ``(O,)``.
        instruments: ``(name, levels)`` of every scale: ``("rating", K)``, ``("signal", 2)``.
    """

    obs: np.ndarray
    actions: np.ndarray
    absorbing: np.ndarray
    weights: np.ndarray
    pairs: np.ndarray
    pair_labels: np.ndarray
    ordinal: np.ndarray
    levels: np.ndarray
    instrument: np.ndarray
    instruments: tuple[tuple[str, int], ...]

    @property
    def n_items(self) -> int:
        """Labels to fit: pairs plus ordinal labels."""
        return len(self.pairs) + len(self.ordinal)

    def owners(self) -> np.ndarray:
        """The label (pair, then ordinal item) each sequence belongs to."""
        owner = np.empty(len(self.absorbing), np.int64)
        owner[self.pairs.ravel()] = np.repeat(np.arange(len(self.pairs)), 2)
        owner[self.ordinal] = len(self.pairs) + np.arange(len(self.ordinal))
        return owner

    def teaches_absorbing(self) -> np.ndarray:
        """Per label (pairs, then ordinal items): whether it ties the absorbing state's reward to
        the live rewards. Bradley-Terry fixes rewards only up to a constant, so only a pair whose
        sides weigh absorbing steps unequally does (equal weights cancel in R1 - R2), or an
        ordinal label whose sequence weighs some."""
        weight = (self.absorbing * self.weights).sum(-1)  # weighted absorbing steps per sequence
        pairs = ~np.isclose(weight[self.pairs[:, 0]], weight[self.pairs[:, 1]])
        return np.concatenate([pairs, weight[self.ordinal] > 0])


def gather(feedback: Sequence[Feedback]) -> Evidence:
    """Collect the step sequences and labels of any mix of feedback records.

    Raises:
        ValueError: nothing to fit, or sequences whose observation or action shapes differ.
    """
    seqs: list[tuple[Segment, np.ndarray]] = []
    pairs: list[tuple[int, int]] = []
    labels: list[float] = []
    ordinal: list[int] = []
    levels: list[int] = []
    instrument: list[int] = []
    instruments: list[tuple[str, int]] = []

    def add(segment: Segment, weights: np.ndarray | None = None) -> int:
        seqs.append((segment, np.ones(len(segment), np.float32) if weights is None else weights))
        return len(seqs) - 1

    for record in feedback:
        for first, second, label in record.pairs():
            pairs.append((add(first), add(second)))
            labels.append(label)
        if isinstance(record, Rating | Signal):
            if isinstance(record, Rating):
                scale, level, index = ("rating", record.levels), record.level, add(record.segment)
            else:
                scale = ("signal", 2)
                level = int(record.positive)
                index = add(record.steps, np.asarray(record.credit, np.float32))
            if not 0 <= level < scale[1]:
                raise ValueError(f"{scale[0]} level {level} is outside 0..{scale[1] - 1}")
            if scale not in instruments:
                instruments.append(scale)
            ordinal.append(index)
            levels.append(level)
            instrument.append(instruments.index(scale))
    if not seqs:
        raise ValueError("cannot fit the reward model without feedback")
    shapes = {(s.obs.shape[1:], s.actions.shape[1:]) for s, _ in seqs}
    if len(shapes) > 1:
        raise ValueError(f"feedback mixes observation/action shapes {sorted(shapes)}; expected one task")
    length = max(len(s) for s, _ in seqs)
    first = seqs[0][0]
    n = len(seqs)
    obs = np.zeros((n, length, *first.obs.shape[1:]), first.obs.dtype)
    actions = np.zeros((n, length, *first.actions.shape[1:]), first.actions.dtype)
    absorbing = np.zeros((n, length), bool)
    weights = np.zeros((n, length), np.float32)
    for i, (s, w) in enumerate(seqs):
        h = len(s)
        obs[i, :h], actions[i, :h], absorbing[i, :h], weights[i, :h] = s.obs, s.actions, s.absorbing, w
    return Evidence(
        obs,
        actions,
        absorbing,
        weights,
        np.array(pairs, np.int64).reshape(-1, 2),
        np.array(labels, np.float32),
        np.array(ordinal, np.int64),
        np.array(levels, np.int64),
        np.array(instrument, np.int64),
        tuple(instruments),
    )


def expert_steps(feedback: list[Feedback]) -> tuple[np.ndarray, np.ndarray]:
    """``(obs, actions)`` of every live step a teacher acted in: demonstrations and corrections."""
    steps = [
        (s.obs[~s.absorbing], s.actions[~s.absorbing])
        for r in feedback
        for s in (
            [r.episode]
            if isinstance(r, Demonstration)
            else [r.corrected]
            if isinstance(r, Correction)
            else []
        )
    ]
    if not steps:
        return np.zeros((0,)), np.zeros((0,))
    return np.concatenate([o for o, _ in steps]), np.concatenate([a for _, a in steps])


def judged_accuracy(returns: torch.Tensor, ev: Evidence, judges: torch.Tensor) -> float:
    """Accuracy of the labels of ``ev`` as judged by the members marked in ``judges`` ``(E, items)``,
    from the predicted returns ``(E, S)`` of its sequences.

    Pair labels (ties left out): is the preferred sequence predicted better? When there are
    no strict pairs, ordinal labels are judged by concordance: of two labels on one scale
    with different levels, is the higher one's score higher? ``nan`` if nothing is judged.
    """
    n_pairs = len(ev.pairs)
    labels = torch.from_numpy(ev.pair_labels)
    strict = labels != 0.5
    if strict.any():
        p = torch.sigmoid(returns[:, ev.pairs[:, 0]] - returns[:, ev.pairs[:, 1]])
        return _accuracy(p, labels, judges[:, :n_pairs] & strict)
    judges = judges[:, n_pairs:]
    judged = judges.any(0).numpy()
    if not judged.any():
        return float("nan")
    scores = ((returns[:, ev.ordinal] * judges).sum(0) / judges.sum(0).clamp_min(1)).numpy()[judged]
    levels, scale = ev.levels[judged], ev.instrument[judged]
    higher = (levels[:, None] > levels[None]) & (scale[:, None] == scale[None])
    if not higher.any():
        return float("nan")
    return float((scores[:, None] > scores[None])[higher].mean())


def _accuracy(p: torch.Tensor, labels: torch.Tensor, judges: torch.Tensor) -> float:
    """Accuracy of each label as judged by the mean P of the members marked in ``judges`` (E, M);
    labels no member judges are left out, ``nan`` if none is judged."""
    judged = judges.any(0)
    if not judged.any():
        return float("nan")
    p_mean = (p * judges).sum(0)[judged] / judges.sum(0)[judged]
    return float(((p_mean > 0.5).float() == labels[judged]).float().mean())


@dataclass(frozen=True)
class FitReport:
    """What one fit achieved.

    Args:
        n_labels: items fitted: pairs (ties included) and ordinal labels.
        train_accuracy: accuracy on the labels it was fitted on: each label judged by the mean of
            the members whose bootstrap sample held it (ties left out).
        heldout_accuracy: out-of-bag accuracy: each label judged only by members whose
            bootstrap sample left it out (ties left out); ``nan`` if none was left out.
        loss: mean training loss per member at the last Adam step.
        absorbing_identified: the share of members whose sample held a label that teaches the
            absorbing reward; the others' is neutral, their mean live reward (``neutral_absorbing``).
        steps: Adam steps taken (fewer than ``n_steps`` when a warm-started fit stopped early).
        trusted, flipped: with ``rime``, the shares of pairs it trusted and flipped at its last pass.
    """

    n_labels: int
    train_accuracy: float
    heldout_accuracy: float
    loss: float
    absorbing_identified: float = float("nan")
    steps: int = 0
    trusted: float = float("nan")
    flipped: float = float("nan")


def bootstrap_counts(ev: Evidence, members: int, seed: int, fit: int, stable: bool) -> np.ndarray:
    """Each member's bootstrap count of every item (the pairs, then the ordinal labels), ``(E, M)``:
    a multinomial bootstrap drawn afresh for each fit; or, ``stable`` (warm-started fits), Poisson(1)
    counts drawn once per member and item, in the items' order (Oza and Russell's online bootstrap),
    so that as labels are added each member keeps the sample its weights were fitted on, and the
    labels it leaves out stay unseen by it."""
    if not stable:
        m = ev.n_items
        return np.random.default_rng([seed, fit]).multinomial(m, np.full(m, 1.0 / m), size=members)
    sizes = (len(ev.pairs), len(ev.ordinal))
    return np.stack(
        [
            np.concatenate([np.random.default_rng([seed, j, g]).poisson(1.0, n) for g, n in enumerate(sizes)])
            for j in range(members)
        ]
    )


def neutral_absorbing(
    ev: Evidence, counts: np.ndarray, raw: torch.Tensor, absorbing_reward: torch.Tensor
) -> tuple[torch.Tensor, float]:
    """Give each member whose bootstrap sample (``counts``) held no label that teaches the absorbing
    reward (``Evidence.teaches_absorbing``) its mean live reward there (``raw``: each member's output
    at every step, ``(E, S, L)``): ending is then worth an average live step, neither sought nor
    avoided, not an untrained level. Returns the members' absorbing rewards, and the share of
    members that learned theirs."""
    seen = (counts[:, ev.teaches_absorbing()] > 0).any(-1)
    if not seen.all():
        r = raw[:, torch.from_numpy((ev.weights > 0) & ~ev.absorbing)]  # (E, live steps)
        mean_live = r.mean(-1) if r.shape[-1] else torch.zeros(len(counts))
        absorbing_reward = torch.where(torch.from_numpy(~seen), mean_live, absorbing_reward)
    return absorbing_reward, float(seen.mean())


def batch_indices(n: int, batch_size: int, gen: torch.Generator) -> torch.Tensor:
    """A batch of ``batch_size`` indices into ``n`` labels (pairs, or ordinal items), drawn with
    replacement, or all of them in order when there are no more than that."""
    return torch.arange(n) if n <= batch_size else torch.randint(0, n, (batch_size,), generator=gen)
