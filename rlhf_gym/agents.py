"""SB3 agents: algorithm names to classes, and the callbacks that run RLHF during learning."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from gymnasium import spaces
from stable_baselines3 import A2C, DQN, PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import VecEnv

from rlhf_gym.tasks import ALGOS, CONTINUOUS_ONLY, DISCRETE_ONLY, Task
from rlhf_gym.types import RewardFunction, Trajectory

if TYPE_CHECKING:
    from rlhf_gym.config import RunConfig
    from rlhf_gym.pipeline import RLHF
    from rlhf_gym.teachers import RegretTeacher

ALGO_CLASSES: dict[str, type[BaseAlgorithm]] = {"ppo": PPO, "a2c": A2C, "dqn": DQN, "sac": SAC}


def schedule(value: Any) -> Any:
    """rl-zoo's ``"lin_0.001"`` notation for a rate that decays linearly to zero; numbers pass through."""
    if isinstance(value, str) and value.startswith("lin_"):
        try:
            start = float(value[4:])
        except ValueError:
            raise ValueError(f"bad schedule {value!r}; expected 'lin_<number>'") from None
        return LinearSchedule(start, 0.0, 1.0)
    return value


def sample_actions(policy: BasePolicy, obs: np.ndarray) -> np.ndarray:
    """Stochastic actions for a batch of observations, each drawn from pi(.|s) afresh.

    With gSDE the exploration noise is redrawn first: SB3's ``predict`` keeps one noise matrix
    between calls, which makes its "stochastic" actions a fixed function of the state.
    """
    if getattr(policy, "use_sde", False):
        policy.reset_noise(len(obs))  # type: ignore[operator]
    return policy.predict(obs, deterministic=False)[0]


def algo_class(algo: str) -> type[BaseAlgorithm]:
    """The class of an algorithm name; CPL and best-of-N are imported when first used."""
    if algo == "cpl":
        from rlhf_gym.cpl import CPL

        return CPL
    if algo == "bon":
        from rlhf_gym.rejection import BestOfN

        return BestOfN
    return ALGO_CLASSES[algo]


def check_algo(algo: str, action_space: spaces.Space) -> None:
    """Reject an unknown algorithm, or one that cannot act in this action space."""
    if algo not in ALGOS:
        raise ValueError(f"unknown algo {algo!r}; expected one of {', '.join(ALGOS)}")
    if algo in DISCRETE_ONLY and not isinstance(action_space, spaces.Discrete):
        raise ValueError(f"{algo} needs a Discrete action space, got {action_space}")
    if algo in CONTINUOUS_ONLY and not isinstance(action_space, spaces.Box):
        raise ValueError(f"{algo} needs a Box action space, got {action_space}")


class AbsorbingReplayBuffer(ReplayBuffer):
    """SB3's replay buffer, plus which stored steps were absorbing, so stored rewards can be
    recomputed after every reward-model fit (PEBBLE's relabelling; Lee et al., 2021)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.absorbing = np.zeros((self.buffer_size, self.n_envs), dtype=bool)

    def add(
        self,
        obs: np.ndarray,
        next_obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        self.absorbing[self.pos] = [bool(info.get("absorbing", False)) for info in infos]
        super().add(obs, next_obs, action, reward, done, infos)

    def relabel(self, reward_fn: RewardFunction, unscale: Callable[[np.ndarray], np.ndarray]) -> int:
        """Recompute every stored reward with ``reward_fn``; returns the steps relabelled."""
        n = self.buffer_size if self.full else self.pos
        if n == 0:
            return 0
        obs = self.observations[:n].reshape(n * self.n_envs, *self.obs_shape)
        actions = unscale(self.actions[:n].reshape(n * self.n_envs, self.action_dim))
        rewards = reward_fn(obs, actions, self.absorbing[:n].reshape(-1))
        self.rewards[:n] = np.asarray(rewards, dtype=np.float32).reshape(n, self.n_envs)
        return n * self.n_envs


def make_agent(algo: str, env: VecEnv, kwargs: dict[str, Any], seed: int, relabel: bool) -> BaseAlgorithm:
    """Build an SB3 agent; off-policy agents get a relabelling buffer when ``relabel``."""
    check_algo(algo, env.action_space)
    kwargs = {k: schedule(v) for k, v in kwargs.items()}
    policy = kwargs.pop("policy", "MlpPolicy")
    cls = algo_class(algo)
    if relabel and issubclass(cls, OffPolicyAlgorithm):
        kwargs["replay_buffer_class"] = AbsorbingReplayBuffer
    try:
        return cls(policy, env, seed=seed, device="cpu", verbose=0, **kwargs)
    except TypeError as err:
        raise ValueError(f"bad hyperparameters for {algo}: {err}") from None


def relabel_buffer(agent: BaseAlgorithm, reward_fn: RewardFunction) -> int:
    """Recompute an off-policy agent's stored rewards; on-policy agents have nothing stored."""
    buffer = getattr(agent, "replay_buffer", None)
    if not isinstance(buffer, AbsorbingReplayBuffer):
        return 0
    if isinstance(agent.action_space, spaces.Box):
        return buffer.relabel(reward_fn, agent.policy.unscale_action)
    return buffer.relabel(reward_fn, lambda a: a.reshape(-1).astype(np.int64))


class RLHFCallback(BaseCallback):
    """Runs the pipeline's feedback rounds and true-reward evaluations on their schedules.

    Feedback rounds run when a rollout starts, so the whole next rollout (and, for
    off-policy agents, the relabelled buffer) uses the new reward model.
    """

    def __init__(self, run: RLHF, round_steps: list[int], eval_freq: int) -> None:
        super().__init__()
        self.run = run
        self.round_steps = list(round_steps)
        self.eval_freq = eval_freq
        self.next_eval = eval_freq

    def _on_rollout_start(self) -> None:
        while self.round_steps and self.num_timesteps >= self.round_steps[0]:
            self.round_steps.pop(0)
            self.run.feedback_round(self.run.budget_for_next_round())

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.next_eval:
            self.next_eval += self.eval_freq
            self.run.log_evaluation(self.run.config.eval_episodes)
        return True


def behaviour_clone(
    agent: BaseAlgorithm,
    obs: np.ndarray,
    actions: np.ndarray,
    steps: int,
    rng: np.random.Generator,
    batch_size: int = 64,
) -> float:
    """Fit the agent's policy to ``(obs, actions)`` pairs by maximum likelihood (behaviour cloning).

    PPO and A2C maximise the log-probability of their own policy, SAC that of its squashed
    Gaussian actor, DQN the softmax of its Q-values. Actions are in the environment's units.

    Returns:
        The last batch's negative log-likelihood.
    """
    import torch

    policy = agent.policy
    n = len(obs)
    if n == 0 or steps <= 0:
        return float("nan")
    obs_t = torch.as_tensor(np.asarray(obs), dtype=torch.float32)
    opt: torch.optim.Optimizer
    if isinstance(agent, SAC):
        scaled = np.clip(policy.scale_action(np.asarray(actions, np.float32)), -0.999, 0.999)
        act_t = torch.as_tensor(scaled, dtype=torch.float32)
        actor = agent.actor

        def log_prob(o: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
            mean, log_std, kwargs = actor.get_action_dist_params(o)
            return actor.action_dist.proba_distribution(mean, log_std, **kwargs).log_prob(a)

        opt = actor.optimizer
    elif isinstance(agent, DQN):
        act_t = torch.as_tensor(np.asarray(actions), dtype=torch.long).view(-1, 1)

        def log_prob(o: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
            return torch.log_softmax(agent.q_net(o), -1).gather(1, a).squeeze(1)

        opt = policy.optimizer
    else:
        dtype = torch.long if isinstance(agent.action_space, spaces.Discrete) else torch.float32
        act_t = torch.as_tensor(np.asarray(actions), dtype=dtype)

        def log_prob(o: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
            return policy.evaluate_actions(o, a)[1]  # type: ignore[operator]

        opt = policy.optimizer
    policy.set_training_mode(True)
    loss = torch.zeros(())
    for _ in range(steps):
        idx = torch.as_tensor(rng.integers(0, n, min(batch_size, n)))
        loss = -log_prob(obs_t[idx], act_t[idx]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    policy.set_training_mode(False)
    return float(loss.detach())


def pretrained(
    task: Task,
    algo: str = "ppo",
    episodes: int = 5,
    bc_steps: int = 2000,
    seed: int = 0,
    noise: float = 0.0,
    hyperparams: dict[str, Any] | None = None,
    horizon: str = "fixed",
) -> BaseAlgorithm:
    """A fresh agent behaviour-cloned on episodes of the task's scripted expert: the RLHF
    pipeline's instruction-tuning stage, and a start (``init_policy``) for KL-anchored RL.

    Args:
        task: a task with an expert (``rlhf_gym.experts``).
        algo: the agent's algorithm; its network comes from the task preset and ``hyperparams``.
        episodes: demonstrated episodes, from seeds ``1000 * seed + k``.
        bc_steps: behaviour-cloning gradient steps (batches of 64).
        seed: seeds the agent, the episodes and the noise.
        noise: the probability that the demonstrator takes a uniformly random action instead
            (recorded as taken), for a start that is good but not perfect.
        hyperparams: overrides of the preset's hyperparameters for ``algo``.
        horizon: the horizon the episodes are played in; absorbing steps are left out.
    """
    from stable_baselines3.common.vec_env import DummyVecEnv

    if not 0.0 <= noise <= 1.0:
        raise ValueError(f"noise must be a probability in [0, 1], got {noise}")
    kwargs = {**task.algo_kwargs(algo), **(hyperparams or {})}
    kwargs.pop("n_envs", None)
    agent = make_agent(algo, DummyVecEnv([lambda: task.make(horizon)]), kwargs, seed, relabel=False)
    rng = np.random.default_rng(seed)
    trajectories = expert_episodes(task, horizon, [noise] * episodes, seed, rng)
    live = [(t.obs[~t.absorbing], t.actions[~t.absorbing]) for t in trajectories]
    obs, actions = (np.concatenate(x) for x in zip(*live))
    behaviour_clone(agent, obs, actions, bc_steps, rng)
    return agent


def expert_episodes(
    task: Task, horizon: str, noises: Sequence[float], seed: int, rng: np.random.Generator
) -> list[Trajectory]:
    """One episode of the task's scripted expert per entry of ``noises``, from reset seeds
    ``1000 * seed + k``; in episode ``k`` each action is uniformly random with probability
    ``noises[k]`` (recorded as taken)."""
    from rlhf_gym.experts import get_expert
    from rlhf_gym.synthetic import run

    expert = get_expert(task)
    env = task.make(horizon)
    env.action_space.seed(seed)
    trajectories = []
    for k, noise in enumerate(noises):
        policy = lambda o, p=noise: env.action_space.sample() if rng.random() < p else expert(o)  # noqa: E731
        trajectories.append(run(env, policy, env.reset(seed=1000 * seed + k)[0], task.max_episode_steps)[0])
    env.close()
    return trajectories


def state_value(agent: BaseAlgorithm) -> Callable[[np.ndarray], np.ndarray]:
    """``V(s)`` for a batch of observations from a trained agent's critic.

    PPO and A2C have a value head; DQN's value is its largest Q-value; SAC's and TD3's is the
    smallest of their Q-critics at the actor's deterministic action.
    """
    import torch
    from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm

    policy: Any = agent.policy  # an actor-critic, Q-network or SAC policy: each has its own heads

    def value(obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            t, _ = policy.obs_to_tensor(np.asarray(obs))
            if isinstance(agent, OnPolicyAlgorithm):
                v = policy.predict_values(t)
            elif hasattr(policy, "q_net"):
                v = policy.q_net(t).max(dim=1).values
            else:
                qs = policy.critic(t, policy._predict(t, deterministic=True))
                v = torch.min(torch.cat(qs, dim=1), dim=1).values
        return v.reshape(len(obs)).cpu().numpy()

    return value


def regret_teacher(config: RunConfig, task: Task, verbose: int = 0) -> RegretTeacher:
    """The ``regret`` teacher of a run: it judges with the critic of ``config.teacher_critic`` (a
    saved agent trained on the true reward), or, when that is not set, of an agent trained here
    first: the run's own ceiling (``rlhf_gym.resolve.control_config``)."""
    from rlhf_gym.teachers import RegretTeacher, TeacherParams

    if config.teacher_critic:
        agent = load_agent(config.teacher_critic)
    else:
        from rlhf_gym.config import to_dict
        from rlhf_gym.pipeline import RLHF
        from rlhf_gym.resolve import control_config

        if verbose:
            print(f"teacher regret: training its critic on the true reward of {task.name} first")
        agent = RLHF(config=control_config(to_dict(config), "true")).learn().agent
    gamma = float(agent.gamma)  # type: ignore[attr-defined]
    absorbing = task.absorbing_reward / (1.0 - gamma) if gamma < 1 else 0.0
    return RegretTeacher(TeacherParams(**config.teacher_params), state_value(agent), gamma, absorbing)


def load_agent(path: str) -> BaseAlgorithm:
    """A saved SB3 agent with an actor-critic (PPO, A2C and the PPO-based), Q-network (DQN) or
    SAC policy, for its networks (hyperparameters specific to A2C are not restored)."""
    from pathlib import Path

    if not Path(path).is_file():
        raise FileNotFoundError(f"no saved agent at {path!r}; expected an SB3 .zip such as a run's agent.zip")
    errors = []
    for cls in (PPO, DQN, SAC):
        try:
            return cls.load(path, device="cpu")
        except Exception as err:  # the next class may fit
            errors.append(f"{cls.__name__}: {type(err).__name__}: {err}")
    raise ValueError(f"{path!r} is not a saved PPO, A2C, DQN or SAC agent ({'; '.join(errors)})")
