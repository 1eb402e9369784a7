"""Run configuration: dataclasses with a docstring on every field (loaded by ``rlhf_gym.schema``).

Resolution order, later wins: the defaults here, the task preset's ``run:`` block
(``envs/<task>.yaml``), a user YAML file (``--config``), then explicit arguments. The
resolved config is saved next to every run, so every run can be repeated from it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from rlhf_gym.schema import (
    MAX_BUDGET_SECONDS,
    MAX_COUNT,
    MAX_LABELS,
    MAX_TIMESTEPS,
    MAX_WIDTH,
    check_choice,
    check_finite,
    check_hyperparams,
    check_positive,
    from_dict,
)
from rlhf_gym.teacher_params import PRESETS, REGRET, TeacherParams

HORIZONS = ("natural", "fixed")
REWARDS = ("learned", "true", "constant")
QUERY_STRATEGIES = ("uniform", "disagreement", "entropy")
KL_ANCHORS = ("initial", "ema")
KL_PENALTIES = ("reward", "loss")
FEEDBACK_TYPES = ("comparisons", "corrections", "demonstrations", "ratings", "tamer", "estops")
EFFORT_KEYS = (
    "playback_speed",
    "tamer_speed",
    "decide_seconds",
    "takeover_seconds",
    "setup_seconds",
    "stop_seconds",
)
TEACHER_PARAMS = tuple(f.name for f in dataclasses.fields(TeacherParams))
RECORDED = "recorded"
"""The teacher that replays ``RunConfig.recorded_feedback`` instead of simulating a person."""


@dataclass
class RewardModelConfig:
    """How the reward-model ensemble is built and fitted."""

    ensemble_size: int = 3
    """Members of the ensemble; each is fitted on its own bootstrap sample of the labels."""
    hidden_sizes: tuple[int, ...] = (32, 32)
    """Hidden layer widths of each member's MLP."""
    use_actions: bool = True
    """Feed the action to the reward model beside the observation (``r(s, a)``); else ``r(s)``."""
    learning_rate: float = 3e-3
    """Adam learning rate."""
    weight_decay: float = 1e-3
    """Adam L2 weight decay, the regulariser of Christiano et al. (2017)."""
    n_steps: int = 100
    """Adam steps per fit, at most, so the cost of a fit does not grow with the labels."""
    warm_start: bool = False
    """Fit warm, as PEBBLE and B-Pref do: each fit after the first starts from the last one's weights
    and stops once its members judge 97% of their labels right (``RewardModel.fit``, B-Pref's rule).
    Else (and first after a checkpoint is loaded) each fit starts afresh and runs all ``n_steps``."""
    batch_size: int = 32
    """Comparisons per Adam step (all of them when fewer)."""
    noise_robust: float = 0.1
    """Probability of a uniformly random answer in the likelihood: P = (1 - e) P_bt + e/2, the
    value of Christiano et al. (2017); 0 is plain Bradley-Terry."""
    rime: bool = False
    """RIME's sample selection (Cheng et al., ICML 2024; ``rlhf_gym.reward.rime``): each pass of a fit
    trains only on the pairs the ensemble finds plausible and flips those it finds almost surely
    wrong; against noisy teachers, beside (or instead of) ``noise_robust``."""
    pessimism: float = 0.0
    """The agent's reward is the ensemble mean less this many standard deviations of the members
    (Coste et al. 2023), each member's reward taken relative to its own absorbing reward (labels fix
    a member's reward only up to a constant): states the labels did not pin down are worth less."""
    surf_threshold: float = 0.0
    """SURF (``rlhf_gym.reward.surf``): each fit also trains on unlabelled pairs of recent segments,
    labelled by each member where it is this sure (0.95 to 0.99), with temporal cropping. 0: off."""
    rune_beta: float = 0.0
    """RUNE's exploration bonus (``rlhf_gym.reward.rune``): the agent's reward plus this many standard
    deviations of the members, decaying by ``rune_decay`` per environment step. 0: off."""
    rune_decay: float = 1e-5
    """RUNE's rho: the bonus is multiplied by (1 - rho) at every environment step."""
    reward_scale: float = 1.0
    """Root-mean-square of the learned reward the agent sees, after the absorbing state is shifted
    to zero (or the mean, if tasks never terminate); less if it barely varies (``_calibrate``)."""
    input_box: bool = False
    """Each member clips each (Box, non-image) observation feature it scores to its range in the
    member's own sample: past it, the reward stays at its value at the edge (CartPole: the track)."""

    def __post_init__(self) -> None:
        check_positive(self, "ensemble_size", at_most=64)
        check_positive(self, "n_steps", "batch_size", at_most=MAX_COUNT)
        check_positive(self, "weight_decay", "pessimism", "rune_beta", allow_zero=True)
        if not 0.0 <= self.rune_decay < 1.0:
            raise ValueError(f"reward_model.rune_decay must be in [0, 1), got {self.rune_decay}")
        if self.surf_threshold and not 0.5 < self.surf_threshold < 1.0:
            raise ValueError(
                f"reward_model.surf_threshold must be 0 or in (0.5, 1), got {self.surf_threshold}"
            )
        check_positive(self, "learning_rate", "reward_scale", allow_zero=False)
        if not 0.0 <= self.noise_robust < 1.0:
            raise ValueError(f"reward_model.noise_robust must be in [0, 1), got {self.noise_robust}")
        if (
            not self.hidden_sizes
            or any(not 0 < h <= MAX_WIDTH for h in self.hidden_sizes)
            or len(self.hidden_sizes) > 8
        ):
            raise ValueError(
                f"reward_model.hidden_sizes must be 1 to 8 widths in [1, {MAX_WIDTH}], "
                f"got {self.hidden_sizes}"
            )


@dataclass
class RunConfig:
    """One RLHF run: a task, a feedback source, a label budget and an agent."""

    task: str = "CartPole-v1"
    """A task preset name (``rlhf-gym tasks``) or any Gymnasium id with Box or Discrete spaces."""
    horizon: str = "natural"
    """``natural``: episodes end on termination. ``fixed``: termination becomes an absorbing state
    until the time limit, so episode length carries no reward information."""
    feedback: str = "comparisons"
    """Feedback types, comma-separated: comparisons, corrections, demonstrations, ratings, tamer
    (live +/- signals), estops. A mix splits every round's budget equally between its types."""
    teacher: str = "oracle"
    """A synthetic teacher preset: oracle, stoch, mistake, skip, equal, myopic (B-Pref) or lazy;
    ``regret``, which compares segments by their regret under ``teacher_critic`` (Knox et al. 2022);
    or ``recorded``, which replays ``recorded_feedback``."""
    teacher_params: dict[str, float] = field(default_factory=dict)
    """Overrides of the preset's parameters: beta, gamma, eps_mistake, eps_skip, eps_equal, eps_lazy."""
    teacher_critic: str | None = None
    """The saved agent (an SB3 zip trained on the true reward, such as a ceiling run's agent.zip)
    whose critic the ``regret`` teacher judges with; ``None`` trains one first, as the ceiling."""
    recorded_feedback: str | None = None
    """A feedback store or ``.jsonl`` export whose records are replayed, in recorded order, as the
    teacher (``teacher: recorded``): each round takes the next unused records of each feedback
    type while the budget affords them (one label, or the record's stored effort seconds, each)."""
    labels: int = 50
    """Label budget: feedback items over the whole run (a comparison, a correction, a
    demonstration episode, a rating, a key press or a stop each count one)."""
    budget_seconds: float | None = None
    """Effort budget in seconds of human time (``rlhf_gym.feedback.effort``); replaces ``labels`` if set."""
    effort: dict[str, float] = field(default_factory=dict)
    """Overrides of the effort model: playback_speed, tamer_speed, decide_seconds,
    takeover_seconds, setup_seconds, stop_seconds."""
    correction_length: int | None = None
    """Steps a correction steers; ``None`` takes ``segment_length``."""
    rating_levels: int = 10
    """Levels of the rating scale."""
    bc_steps: int = 0
    """Behaviour-cloning steps on the demonstrated and corrected actions after every feedback
    round (0: off). Before learning starts, this is the RLHF pipeline's instruction tuning."""
    feedback_store: str | None = None
    """A SQLite feedback store every record is committed to as it arrives (records already in it
    are fitted too, but do not count toward the budget). The run folder always gets its own copy."""
    total_timesteps: int | None = None
    """Agent timesteps; ``None`` takes the task preset's."""
    seed: int = 0
    """Seeds the environments, the agent, the teacher and the reward model."""
    reward: str = "learned"
    """What the agent is trained on: ``learned`` (RLHF), ``true`` (the ceiling) or ``constant``
    (+1 every step: the horizon-leak control)."""
    algo: str | None = None
    """ppo, a2c, dqn or sac (SB3); cpl (Contrastive Preference Learning: the policy is fitted to the
    preference pairs directly, with no reward model); bon (PPO's rollouts, with behaviour cloning on
    best-of-N episodes under the learned reward). ``None`` takes the task preset's."""
    hyperparams: dict[str, Any] = field(default_factory=dict)
    """Overrides of the algorithm's keyword arguments (``n_envs`` included)."""
    hyperparams_from: str | None = None
    """Where ``hyperparams`` came from: set when the config is resolved (``preset <task>``, rl-zoo3's entry
    for an id without a preset, or SB3's untuned defaults), and kept by a saved config."""
    query_strategy: str = "disagreement"
    """How pairs are chosen: uniform, disagreement (ensemble std of P) or entropy (the members'
    mean entropy of P, as B-Pref). The first round is always uniform, as in B-Pref."""
    segment_length: int | None = None
    """Steps per segment; ``None`` takes the task preset's."""
    feedback_rounds: int = 5
    """Rounds of queries after the first one, spread evenly over ``feedback_until``."""
    initial_label_fraction: float = 0.4
    """Share of the label budget asked before the agent starts learning."""
    feedback_until: float = 0.5
    """Fraction of ``total_timesteps`` by which the last round of queries is asked."""
    initial_rollout_fraction: float = 0.02
    """Environment steps of the initial policy collected for the first round, as a fraction of
    ``total_timesteps``. Later rounds reuse the agent's own rollouts at no extra cost."""
    unsupervised_fraction: float = 0.0
    """PEBBLE's unsupervised pre-training: the agent's first steps, this fraction of
    ``total_timesteps``, train it on a state-entropy reward (``rlhf_gym.reward.novelty``) instead
    of rolling out the initial policy; the first queries come from those rollouts, and the critic
    starts afresh after them. Those steps count toward ``total_timesteps``. 0: off."""
    goal_queries: float = 0.0
    """Share of each round's comparisons whose first segment reaches the goal: a terminal state, or
    a step whose ``info["is_success"]`` is true (``rlhf_gym.data.segments.reaches_end``), drawn from
    the pool's episodes that got there and ranked like the rest; asked first. 0: off."""
    candidate_factor: int = 10
    """Candidate pairs scored per query asked (disagreement and entropy strategies)."""
    trajectory_window: int = 100
    """Most recent episodes kept as the pool queries are drawn from."""
    eval_freq: int = 10_000
    """Timesteps between evaluations on the true reward."""
    eval_episodes: int = 5
    """Episodes per evaluation during training."""
    final_eval_episodes: int = 20
    """Deterministic episodes of the final evaluation on the true reward."""
    tensorboard_log: str | None = None
    """A folder for TensorBoard logs, as SB3's ``tensorboard_log``: each run writes ``<task>_<algo>_<n>``
    there, with the agent's figures and the RLHF metrics under ``rlhf/`` (the ``tensorboard`` extra)."""
    reward_model: RewardModelConfig = field(default_factory=RewardModelConfig)
    """The reward model (see ``RewardModelConfig``)."""
    reward_model_checkpoint: str | None = None
    """Train the agent on this saved reward model (``.../reward_model``) and ask for no feedback."""
    init_policy: str | None = None
    """An SB3 agent zip of the same task, algo and network whose policy starts the run (for example
    a behaviour-cloned one). It is the reference policy of ``kl_from_init``."""
    kl_coef: float | None = None
    """beta of the KL penalty (ppo and a2c): the agent's reward becomes
    r - beta KL(pi(.|s) || pi_anchor(.|s)), exact for discrete actions, analytic for Gaussian
    ones. ``None`` or 0 is off; WARP's default is 0.1."""
    kl_anchor: str | None = None
    """The policy the KL penalty pulls toward: ``initial`` (the policy the run starts from; the
    default) or ``ema`` (an exponential moving average of the policy, as in WARP)."""
    ema_rate: float | None = None
    """mu of the EMA anchor, applied after every optimiser step; ``None`` takes WARP's 0.01."""
    kl_penalty: str | None = None
    """Where the KL term goes: ``reward`` (subtracted from each step's reward, as in InstructGPT
    and WARP; the default) or ``loss`` (beta times the mean KL over each update's minibatch,
    added to the agent's loss: an exact gradient, so it holds the policy more tightly)."""
    torch_threads: int | None = 1
    """Threads torch may use, set when the run starts (``torch.set_num_threads``): one is fastest
    for the small networks here and leaves the other cores to parallel runs, as the CLI does;
    ``None`` leaves the process's setting as it is (torch's default is one per core; the CLI and
    sweeps set one before any run)."""

    def __post_init__(self) -> None:
        if isinstance(self.reward_model, dict):
            self.reward_model = from_dict(RewardModelConfig, self.reward_model, "reward_model")
        check_choice(self, "horizon", HORIZONS)
        check_choice(self, "reward", REWARDS)
        check_choice(self, "query_strategy", QUERY_STRATEGIES)
        if self.kl_anchor is not None:
            check_choice(self, "kl_anchor", KL_ANCHORS)
        if self.kl_penalty is not None:
            check_choice(self, "kl_penalty", KL_PENALTIES)
        if (self.kl_anchor, self.ema_rate, self.kl_penalty) != (None, None, None) and not self.kl_coef:
            raise ValueError(
                "kl_anchor, ema_rate and kl_penalty have no effect without a positive kl_coef; set kl_coef"
            )
        if self.ema_rate is not None and self.kl_anchor != "ema":
            raise ValueError(f"ema_rate is the rate of kl_anchor 'ema', but kl_anchor is {self.kl_anchor!r}")
        if self.ema_rate is not None and not 0.0 < self.ema_rate <= 1.0:
            raise ValueError(f"ema_rate must be in (0, 1], got {self.ema_rate}")
        kinds = self.feedback_types
        for kind in kinds:
            if kind not in FEEDBACK_TYPES:
                raise ValueError(
                    f"unknown feedback type {kind!r}; expected one of {', '.join(FEEDBACK_TYPES)}"
                )
        if not kinds or len(set(kinds)) != len(kinds):
            raise ValueError(f"feedback must name distinct types, got {self.feedback!r}")
        for key in self.effort:
            if key not in EFFORT_KEYS:
                raise ValueError(f"unknown effort key {key!r}; expected one of {', '.join(EFFORT_KEYS)}")
        check_choice(self, "teacher", (*PRESETS, REGRET, RECORDED))
        if self.teacher_critic and self.teacher != REGRET:
            raise ValueError(
                f"teacher_critic is used only by teacher 'regret', not {self.teacher!r}; set teacher: "
                "regret, or leave teacher_critic empty"
            )
        if self.teacher == REGRET and "comparisons" not in self.feedback_types:
            raise ValueError(
                f"teacher 'regret' answers comparisons only; feedback {self.feedback!r} has none"
            )
        if self.teacher == REGRET and self.teacher_params.get("gamma", 1.0) != 1.0:
            raise ValueError(
                "teacher 'regret' discounts with its critic's discount; expected no teacher gamma"
            )
        if self.teacher == RECORDED and not self.recorded_feedback:
            raise ValueError(
                "teacher 'recorded' replays a recording: set recorded_feedback to a feedback store or "
                ".jsonl export"
            )
        if self.recorded_feedback and self.teacher != RECORDED:
            raise ValueError(
                f"recorded_feedback is replayed only by teacher 'recorded', not {self.teacher!r}; set "
                "teacher: recorded, or leave recorded_feedback empty"
            )
        if self.teacher == RECORDED and self.teacher_params:
            raise ValueError(
                f"teacher_params {sorted(self.teacher_params)} have no effect with teacher 'recorded'; "
                "expected none"
            )
        for key in self.teacher_params:
            if key not in TEACHER_PARAMS:
                raise ValueError(
                    f"unknown teacher parameter {key!r}; expected one of {', '.join(TEACHER_PARAMS)}"
                )
        check_positive(self, "labels", allow_zero=True, at_most=MAX_LABELS)
        check_positive(self, "total_timesteps", at_most=MAX_TIMESTEPS)
        check_positive(self, "budget_seconds", at_most=MAX_BUDGET_SECONDS)
        check_positive(self, "feedback_rounds", allow_zero=True, at_most=1000)
        check_positive(self, "seed", allow_zero=True, at_most=2**32 - 1)
        check_positive(self, "bc_steps", allow_zero=True, at_most=MAX_COUNT)
        check_hyperparams(self.hyperparams)
        check_positive(self, "total_timesteps", "eval_freq")
        check_positive(self, "candidate_factor", at_most=1000)
        check_positive(
            self,
            "segment_length",
            "trajectory_window",
            "eval_episodes",
            "final_eval_episodes",
            "correction_length",
            at_most=MAX_COUNT,
        )
        for name in ("hyperparams", "effort", "teacher_params"):
            check_finite(name, getattr(self, name))
        check_positive(self, "kl_coef", allow_zero=True)
        threads = self.torch_threads
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise ValueError(f"torch_threads must be a positive integer or None, got {threads!r}")
        if not 2 <= self.rating_levels <= 1000:
            raise ValueError(f"rating_levels must be in [2, 1000], got {self.rating_levels}")
        for name in (
            "initial_label_fraction",
            "feedback_until",
            "initial_rollout_fraction",
            "unsupervised_fraction",
            "goal_queries",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if self.unsupervised_fraction and self.unsupervised_fraction >= self.feedback_until:
            raise ValueError(
                f"unsupervised_fraction ({self.unsupervised_fraction}) must be below feedback_until "
                f"({self.feedback_until}): the feedback rounds come after exploring"
            )
        if (
            self.reward == "learned"
            and self.labels == 0
            and self.budget_seconds is None
            and not self.reward_model_checkpoint
        ):
            raise ValueError(
                "labels must be positive when reward='learned'; use reward='constant' or 'true' "
                "for the controls"
            )

    @property
    def feedback_types(self) -> tuple[str, ...]:
        """The feedback types of ``feedback``, in order."""
        return tuple(k.strip() for k in self.feedback.split(",") if k.strip())


MERGES = ("slerp", "lerp")


@dataclass
class WarpConfig:
    """WARP's own settings; the defaults are the paper's (beta 0.1, mu 0.01, M 2, eta 0.3)."""

    iterations: int = 3
    """Iterations I: train M runs, merge them, move the start toward the merge."""
    runs: int = 2
    """Runs M trained from the same start in each iteration (differing by seed)."""
    eta: float = 0.3
    """LITI rate: theta_init <- (1 - eta) theta_init + eta theta_merged."""
    kl_coef: float = 0.1
    """beta of each run's KL penalty toward its EMA anchor."""
    ema_rate: float = 0.01
    """mu of the EMA anchor, per optimiser step."""
    merge: str = "slerp"
    """How the runs' task vectors are merged: ``slerp`` (WARP) or ``lerp`` (plain averaging)."""
    front: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)
    """Interpolation rates from the first start to the last merge that trace the final front."""
    eval_episodes: int = 10
    """Sampled episodes per evaluated policy."""

    def __post_init__(self) -> None:
        for name in ("iterations", "runs", "eval_episodes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"warp {name} must be a positive integer, got {value!r}")
        if not 0.0 < self.eta <= 1.0:
            raise ValueError(f"warp eta must be in (0, 1], got {self.eta}")
        if not (math.isfinite(self.kl_coef) and self.kl_coef >= 0):
            raise ValueError(f"warp kl_coef must be non-negative, got {self.kl_coef}")
        if not 0.0 < self.ema_rate <= 1.0:
            raise ValueError(f"warp ema_rate must be in (0, 1], got {self.ema_rate}")
        if self.merge not in MERGES:
            raise ValueError(f"unknown warp merge {self.merge!r}; expected one of {', '.join(MERGES)}")
        if any(not 0.0 <= x <= 1.0 for x in self.front):
            raise ValueError(f"warp front rates must be in [0, 1], got {list(self.front)}")
