"""The reward model: an ensemble of small MLPs over (obs, action), run as batched tensors (image
observations through a convolutional encoder per member first: ``rlhf_gym.reward.pixels``).

Each member is fitted on its own bootstrap sample of the labels (Christiano et al., 2017),
so the labels a member never saw measure its held-out accuracy without spending any. So that
they stay unseen, each member's input normaliser is fitted on its own sample too, and folded
into its first layer; with ``input_box``, each member also clips each feature it scores to its
range in the member's sample, so that past that range the reward stays at its value at the edge.
The absorbing state after termination has one learned (or neutral) reward per member; the
agent's reward is shifted so that it is worth zero (dying is worth what ending the episode is
worth) and scaled to a fixed root-mean-square (unless it barely varies: ``_calibrate``).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from gymnasium import spaces

from rlhf_gym.config import RewardModelConfig
from rlhf_gym.reward import pixels
from rlhf_gym.reward.checkpoints import FORMAT_VERSION as FORMAT_VERSION  # re-exported
from rlhf_gym.reward.checkpoints import describe_space, load_reward_model, save_reward_model
from rlhf_gym.reward.evidence import FitReport as FitReport  # re-exported
from rlhf_gym.reward.evidence import (
    batch_indices,
    bootstrap_counts,
    gather,
    judged_accuracy,
    neutral_absorbing,
)
from rlhf_gym.reward.losses import WARM_STOP_ACCURACY, comparison_loss, judged_right, ordinal_losses
from rlhf_gym.reward.members import Members
from rlhf_gym.reward.normalise import (
    UNBOUNDED,
    Normalisers,
    clip,
    fold,
    member_boxes,
    member_normalisers,
    unfold,
)
from rlhf_gym.reward.pixels import PixelSteps
from rlhf_gym.reward.rime import Rime
from rlhf_gym.reward.surf import crop_mask, unlabeled_inputs, unlabeled_loss
from rlhf_gym.types import Feedback, Query, Segment

LEAKY_SLOPE = 0.01
SCALAR_LR_FACTOR = 10.0


class RewardModel:
    """An ensemble reward model ``r(s, a)`` trained from preferences.

    Calling it scores a batch of steps with the normalised ensemble mean, the reward the
    agent sees; it runs in numpy, so scoring a step costs a few microseconds.

    Args:
        observation_space: the environment's observation space (Box or Discrete).
        action_space: the environment's action space (Box or Discrete).
        config: sizes and training settings.
        seed: seeds weight initialisation and bootstrap samples.

    Example:
        >>> import gymnasium as gym
        >>> env = gym.make("CartPole-v1")
        >>> rm = RewardModel(env.observation_space, env.action_space, RewardModelConfig(hidden_sizes=(8,)))
        >>> rm(np.zeros((5, 4), np.float32), np.zeros(5, int), np.zeros(5, bool)).shape
        (5,)
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        config: RewardModelConfig | None = None,
        seed: int = 0,
    ) -> None:
        self.observation_space = observation_space
        self.action_space = action_space
        self.obs_info = describe_space(observation_space)
        self.action_info = describe_space(action_space)
        self.config = config or RewardModelConfig()
        self.seed = seed
        self._fits = 0
        obs_dim, act_dim = (
            i["n"] if i["type"] == "Discrete" else int(np.prod(i["shape"]))
            for i in (self.obs_info, self.action_info)
        )
        self.image = pixels.image_layout(observation_space)
        features = obs_dim if self.image is None else pixels.feature_dim(self.image)
        self.input_dim = features + act_dim * self.config.use_actions
        self.obs_mean = np.zeros(obs_dim, np.float32)
        self.obs_std = np.ones(obs_dim, np.float32)
        self._action_features = pixels.ActionFeatures(action_space, self.config.use_actions)
        self.shift = 0.0
        self.scale = 1.0
        self.n_labels = 0
        self._init_weights(torch.Generator().manual_seed(seed))

    # ----- parameters -------------------------------------------------------------------
    def _init_weights(self, gen: torch.Generator) -> None:
        e = self.config.ensemble_size
        sizes = [self.input_dim, *self.config.hidden_sizes, 1]
        self.weights: list[torch.Tensor] = []
        self.biases: list[torch.Tensor] = []
        for fan_in, fan_out in itertools.pairwise(sizes):
            bound = 1.0 / math.sqrt(fan_in)
            self.weights.append((torch.rand(e, fan_in, fan_out, generator=gen) * 2 - 1) * bound)
            self.biases.append((torch.rand(e, 1, fan_out, generator=gen) * 2 - 1) * bound)
        self.absorbing_reward = torch.zeros(e)
        self.in_low = torch.full((e, self.input_dim), -UNBOUNDED)  # no box until a fit sets one
        self.in_high = torch.full((e, self.input_dim), UNBOUNDED)
        self.encoder = None if self.image is None else pixels.Encoder.build(self.image, e, gen)
        self._sync_numpy()

    def parameters(self) -> list[torch.Tensor]:
        conv = self.encoder.parameters() if self.encoder else []
        return [*self.weights, *self.biases, self.absorbing_reward, *conv]

    def _sync_numpy(self) -> None:
        """Copy the parameters for scoring in numpy; call it after assigning any of them."""
        self._members = Members(self.weights, self.biases, self.in_low, self.in_high, LEAKY_SLOPE)
        self._has_box = self._members.box is not None
        self._np_abs = self.absorbing_reward.detach().numpy().copy()
        self._plain = not self.obs_mean.any() and bool((self.obs_std == 1).all())  # (format 1 may not be)

    # ----- features ---------------------------------------------------------------------
    def features(self, obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Observations (one-hot, or through ``obs_mean`` and ``obs_std``: the identity after a fit,
        whose normalisers are in the first layer) and ``_action_features``, as a ``(N, D)`` array."""
        n = len(obs)
        x: np.ndarray
        if self.obs_info["type"] == "Discrete":
            x = np.eye(self.obs_info["n"], dtype=np.float32)[np.asarray(obs, dtype=np.int64).reshape(n)]
        else:
            x = np.asarray(obs, dtype=np.float32).reshape(n, -1)
        if not self._plain:
            x = ((x - self.obs_mean) / self.obs_std).astype(np.float32)
        a = self._action_features(actions, n)
        return np.concatenate([x, a], axis=1) if a.shape[1] else x

    def _boxed(self, x: torch.Tensor | PixelSteps) -> torch.Tensor | PixelSteps:
        """Features ``(N, D)`` as the members take them, ``(E, N, D)`` clipped to each one's box."""
        return clip(x, self.in_low, self.in_high) if self._has_box and isinstance(x, torch.Tensor) else x

    def _inputs(self, obs: np.ndarray, actions: np.ndarray) -> torch.Tensor | PixelSteps:
        """What ``_forward`` takes: the features, or an image task's uint8 frames and actions."""
        if self.image is None:
            return torch.from_numpy(self.features(obs, actions))
        frames = torch.from_numpy(np.ascontiguousarray(obs, dtype=np.uint8).reshape(len(obs), -1))
        return PixelSteps(frames, torch.from_numpy(self._action_features(actions, len(obs))))

    def _forward(self, x: torch.Tensor | PixelSteps, norm: Normalisers | None = None) -> torch.Tensor:
        """Per-member rewards of live steps, ``(N, D) -> (E, N)``; ``norm``: each member's input
        normaliser, applied through its first layer (``fold``). Frames are encoded first (in chunks,
        without gradients)."""
        if isinstance(x, PixelSteps):
            if not torch.is_grad_enabled() and len(x) > pixels.CHUNK:
                return pixels.in_chunks(self._forward, x)
            h = self.encoder(x.frames)  # type: ignore[misc]
            x = torch.cat([h, x.actions.expand(h.shape[0], -1, -1)], -1)
        h = x
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            if i == 0 and norm is not None:
                w, b = fold(w, b, *norm)
            h = torch.baddbmm(b, h.expand(w.shape[0], -1, -1) if h.dim() == 2 else h, w)
            if i < len(self.weights) - 1:
                h = torch.nn.functional.leaky_relu(h, LEAKY_SLOPE)
        return h.squeeze(-1)

    def member_rewards(
        self, obs: np.ndarray, actions: np.ndarray, absorbing: np.ndarray, boxed: bool = True
    ) -> np.ndarray:
        """Raw (unnormalised) reward of every member, ``(E, N)``, in numpy (images: in torch); with
        ``boxed``, each member scores the steps clipped to its input box (if a fit set one)."""
        if self.image is not None:
            r = pixels.in_chunks(self._forward, self._inputs(obs, actions)).numpy()  # type: ignore[arg-type]
        else:
            r = self._members(self.features(obs, actions), boxed)
        absorbing = np.asarray(absorbing, dtype=bool)
        if absorbing.any():
            r = np.where(absorbing[None], self._np_abs[:, None], r)
        return r

    def __call__(self, obs: np.ndarray, actions: np.ndarray, absorbing: np.ndarray) -> np.ndarray:
        """The agent's reward: normalised ensemble mean, shape ``(N,)``."""
        r = self.aggregate(self.member_rewards(obs, actions, absorbing))
        return ((r - self.shift) / self.scale).astype(np.float32)

    def aggregate(self, members: np.ndarray) -> np.ndarray:
        """The members' ``(E, N)`` rewards as one reward (``RewardModelConfig.pessimism``)."""
        if not (k := self.config.pessimism):
            return members.mean(0)
        centred = members - self._np_abs[:, None]
        return centred.mean(0) - k * centred.std(0)

    def spread(self, obs: np.ndarray, actions: np.ndarray, absorbing: np.ndarray) -> np.ndarray:
        """The members' standard deviation, each relative to its absorbing reward, in reward units
        (unclipped: past the labels, where the members disagree most, is where RUNE explores)."""
        members = self.member_rewards(obs, actions, absorbing, boxed=False) - self._np_abs[:, None]
        return (members.std(0) / self.scale).astype(np.float32)

    # ----- queries ----------------------------------------------------------------------
    def segment_returns(self, segments: Sequence[Segment]) -> np.ndarray:
        """Predicted return of every segment for every member, ``(E, S)``."""
        fields = ("obs", "actions", "absorbing")
        obs, actions, absorbing = (np.concatenate([getattr(s, k) for s in segments]) for k in fields)
        r = self.member_rewards(obs, actions, absorbing)
        lengths = [len(s) for s in segments]
        return np.add.reduceat(r, np.cumsum([0, *lengths[:-1]]), axis=1)

    def preference_probabilities(self, queries: Sequence[Query]) -> np.ndarray:
        """P(first preferred) by every member, ``(E, Q)``."""
        returns = self.segment_returns([s for q in queries for s in (q.first, q.second)])
        # sigmoid(R1 - R2), written so that it never overflows
        return np.exp(-np.logaddexp(0.0, returns[:, 1::2] - returns[:, 0::2]))

    # ----- fitting ----------------------------------------------------------------------
    def fit(self, feedback: Sequence[Feedback], unlabeled: Sequence[Query] = ()) -> FitReport:
        """Fit the ensemble on all feedback so far, from fresh weights, then re-normalise. Warm
        (``config.warm_start``): from the last fit's weights, unfolded for this fit's normalisers,
        stopping after the first pass over the labels after which the members judge more than
        ``WARM_STOP_ACCURACY`` of their in-bag untied comparisons right (never early with ordinal
        labels); each member's bootstrap sample then only grows (``evidence.bootstrap_counts``).

        Pair-like feedback (comparisons, corrections, demonstrations, e-stops) uses the
        Bradley-Terry likelihood; ratings and TAMER signals the ordinal one, with thresholds
        and a rationality learned per scale and member (see ``rlhf_gym.reward.evidence``).
        With ``config.surf_threshold``, SURF's pseudo-labels on the ``unlabeled`` pairs and its
        temporal cropping join (``rlhf_gym.reward.surf``).

        Raises:
            ValueError: no feedback, or steps whose shapes do not match the spaces.
        """
        cfg = self.config
        ev = gather(feedback)
        s, length = ev.absorbing.shape
        obs = ev.obs.reshape(s * length, *ev.obs.shape[2:])
        actions = ev.actions.reshape(s * length, *ev.actions.shape[2:])
        self.obs_mean[:], self.obs_std[:] = 0.0, 1.0  # features are raw: normalisers are per member

        self._fits += 1
        gen = torch.Generator().manual_seed(self.seed * 100_003 + self._fits)
        warm = cfg.warm_start and self._fits > 1
        if not warm:
            self._init_weights(gen)
        e, n_pairs, m = cfg.ensemble_size, len(ev.pairs), ev.n_items
        x = self._inputs(obs, actions).view(s, length, -1)
        absorb, weights = torch.from_numpy(ev.absorbing), torch.from_numpy(ev.weights)
        labels = torch.from_numpy(ev.pair_labels)
        pairs, ordinal = torch.from_numpy(ev.pairs), torch.from_numpy(ev.ordinal)
        counts = torch.from_numpy(bootstrap_counts(ev, e, self.seed, self._fits, cfg.warm_start)).float()
        box = self.obs_info["type"] == "Box"  # (frames are scaled to [0, 1], and actions already are)
        norm = None if self.image else member_normalisers(ev, counts.numpy(), box, self.input_dim)
        if warm and norm is not None:  # the last fit's function, on this fit's normalised inputs
            self.weights[0], self.biases[0] = unfold(self.weights[0], self.biases[0], *norm)
        if cfg.input_box and box and not self.image:
            self.in_low, self.in_high = member_boxes(ev, counts.numpy(), self.input_dim)
            self._has_box = True
        # per scale: a first threshold, softplus gaps to the next ones, and a log-rationality
        scales = [torch.zeros(e, k - 1) for _, k in ev.instruments]
        log_slopes = [torch.zeros(e) for _ in ev.instruments]

        params = [*self.parameters(), *scales, *log_slopes]
        conv_w, conv_b = (self.encoder.weights, self.encoder.biases) if self.encoder else ([], [])
        for p in params:
            p.requires_grad_(True)
        # single scalars (the absorbing reward, ordinal thresholds and rationalities) learn faster: no
        # hidden layer amplifies their updates as it does the MLP's outputs
        scalar_lr = SCALAR_LR_FACTOR * cfg.learning_rate
        groups = [
            {"params": [*self.weights, *conv_w], "weight_decay": cfg.weight_decay},
            {"params": [*self.biases, *conv_b], "weight_decay": 0.0},
            {"params": [self.absorbing_reward, *scales, *log_slopes], "weight_decay": 0.0, "lr": scalar_lr},
        ]
        opt = torch.optim.Adam(groups, lr=cfg.learning_rate)

        surf = cfg.surf_threshold > 0 and len(unlabeled) > 0
        if surf:
            ux_t, u_abs = unlabeled_inputs(unlabeled, self._inputs)
        loss, target, keep = torch.zeros(()), labels, torch.ones(n_pairs)
        every = math.ceil(n_pairs / cfg.batch_size)  # steps per pass over the pairs
        rime = Rime(math.ceil(cfg.n_steps / every)) if cfg.rime and n_pairs else None
        stop, flat = warm and not len(ordinal), pairs.view(-1)
        for step in range(cfg.n_steps):
            if rime is not None and step % every == 0:  # RIME: which labels to fit in this pass
                with torch.no_grad():
                    target, keep = rime.targets(
                        self._returns(x[flat], absorb[flat], weights[flat], norm), labels
                    )
            idx_p, idx_o = (batch_indices(n, cfg.batch_size, gen) for n in (n_pairs, len(ordinal)))
            seq = torch.cat([pairs[idx_p].view(-1), ordinal[idx_o]])
            w_seq = weights[seq]
            if surf and len(idx_p):  # SURF's temporal cropping of the labelled pairs
                w_seq[: 2 * len(idx_p)] *= crop_mask(len(idx_p), length, gen)
            returns = self._returns(x[seq], absorb[seq], w_seq, norm)
            total, weight = torch.zeros(e), 0.0
            if surf and len(idx_p):  # and its pseudo-labelled pairs, cropped too
                returns_of = functools.partial(self._returns, norm=norm)
                total = total + n_pairs * unlabeled_loss(
                    returns_of, ux_t, u_abs, len(idx_p), gen, cfg.surf_threshold
                )
            if len(idx_p):
                w = counts[:, idx_p] * keep[idx_p]
                total = total + n_pairs * comparison_loss(
                    returns[:, : 2 * len(idx_p) : 2],
                    returns[:, 1 : 2 * len(idx_p) : 2],
                    target[idx_p],
                    w,
                    cfg.noise_robust,
                )
                weight += n_pairs
            if len(idx_o):
                nll, n_on = ordinal_losses(
                    returns[:, 2 * len(idx_p) :], ev, idx_o, scales, log_slopes, counts, cfg.noise_robust
                )
                total, weight = total + nll, weight + n_on
            loss = total.sum() / weight
            opt.zero_grad()
            loss.backward()
            opt.step()
            if stop and step % every == every - 1:  # a warm fit ends once it judges its labels right
                with torch.no_grad():
                    r = self._returns(x[flat], absorb[flat], weights[flat], norm)
                right, untied = judged_right(r[:, 0::2], r[:, 1::2], target, counts[:, :n_pairs] * keep)
                if right > WARM_STOP_ACCURACY * untied:
                    break
        for p in params:
            p.requires_grad_(False)
        if norm is not None:
            self.weights[0], self.biases[0] = fold(self.weights[0], self.biases[0], *norm)
        with torch.no_grad():  # every labelled step scored once, for all that follows
            raw = self._forward(self._boxed(x.reshape(s * length, -1))).view(e, s, length)
        self.absorbing_reward, identified = neutral_absorbing(ev, counts.numpy(), raw, self.absorbing_reward)
        self._sync_numpy()
        self.n_labels = m

        members = torch.where(absorb, self.absorbing_reward[:, None, None], raw)
        returns = (members * weights).sum(-1)
        train_acc, heldout = (
            judged_accuracy(returns, ev, counts > 0),
            judged_accuracy(returns, ev, counts == 0),
        )
        real = ev.weights > 0
        self._calibrate(members.numpy()[:, real], ev.absorbing[real], 1.0 / np.median(real.sum(1)))
        report = FitReport(m, train_acc, heldout, float(loss.detach()), identified, step + 1)
        return (
            report
            if rime is None
            else dataclasses.replace(report, trusted=rime.trusted, flipped=rime.flipped)
        )

    def _returns(
        self,
        x: torch.Tensor | PixelSteps,
        absorb: torch.Tensor,
        weights: torch.Tensor,
        norm: Normalisers | None = None,
    ) -> torch.Tensor:
        """Weighted predicted returns ``(E, S)`` of step sequences with features ``(S, L, D)``, each
        member's clipped to its box; an absorbing step is worth the member's absorbing reward."""
        s, h = absorb.shape
        r = self._forward(self._boxed(x.reshape(s * h, -1)), norm).view(-1, s, h)
        return (torch.where(absorb, self.absorbing_reward[:, None, None], r) * weights).sum(-1)

    def _calibrate(self, members: np.ndarray, absorbing: np.ndarray, floor: float) -> None:
        """Set the output normalisation from the members' rewards ``(E, N)`` of a batch of steps.

        The shift is the absorbing state's reward, so ending is worth zero, as it is for an
        agent whose episode ends (after ``fit`` it is learned, or neutral: the mean live reward).
        The scale makes the root-mean-square of the shifted live rewards ``config.reward_scale``,
        or takes it as ``floor`` (one over the labelled sequences' median length) if below: a
        reward that barely moves an L-step segment's return learned no preference (all ties, say:
        an rms of 0.002-0.013), and amplifying it would hand the agent noise."""
        r = self.aggregate(members)
        live = r[~absorbing] if (~absorbing).any() else r
        self.shift = float(self.aggregate(self._np_abs[:, None])[0])
        rms = float(np.sqrt(np.mean((live - self.shift) ** 2)))
        self.scale = max(rms, floor) / self.config.reward_scale

    # ----- checkpoints ------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write ``path.safetensors`` (tensors) and ``path.json`` (metadata); no pickle."""
        save_reward_model(self, path)

    @classmethod
    def load(
        cls, path: str | Path, observation_space: spaces.Space, action_space: spaces.Space
    ) -> RewardModel:
        """Load a checkpoint for an environment with these spaces. Raises ``FileNotFoundError``
        (files missing) or ``ValueError`` (corrupt, another format version, other spaces)."""
        return load_reward_model(cls, path, observation_space, action_space)
