import dataclasses
import json

import numpy as np
import pytest
import torch

from rlhf_gym.config import RunConfig
from rlhf_gym.provenance import code_version, platform
from rlhf_gym.train.resolve import label_schedule, resolve_config
from rlhf_gym.train.rlhf import RLHF
from tests.conftest import tiny_run

TINY = {
    "total_timesteps": 512,
    "segment_length": 5,
    "feedback_rounds": 2,
    "eval_freq": 256,
    "eval_episodes": 2,
    "final_eval_episodes": 2,
    "reward_model": {"hidden_sizes": [16], "n_steps": 50},
    "hyperparams": {"n_steps": 16, "batch_size": 32, "n_epochs": 1},
}


def test_label_schedule_spends_exactly_the_budget():
    for labels, rounds, frac in [(50, 5, 0.4), (7, 3, 0.5), (100, 0, 0.4), (3, 5, 0.4)]:
        sched = label_schedule(labels, rounds, frac)
        assert sum(sched) == labels and len(sched) == rounds + 1


def test_resolve_config_layers_preset_user_and_overrides():
    cfg = resolve_config({"task": "CartPole-v1", "labels": 7, "hyperparams": {"n_epochs": 3}}, seed=4)
    assert (cfg.labels, cfg.seed, cfg.algo, cfg.total_timesteps, cfg.segment_length) == (
        7,
        4,
        "ppo",
        100_000,
        50,
    )
    assert (
        cfg.hyperparams["n_epochs"] == 3 and cfg.hyperparams["n_steps"] == 256
    )  # the preset's tuned value kept
    assert resolve_config({"task": "Pendulum-v1"}).labels == 100  # the preset's run block


def test_end_to_end_cartpole_writes_a_complete_run_folder(tmp_path):
    run = RLHF("CartPole-v1", labels=6, seed=0, **TINY).learn()
    s = run.summary()
    assert s["labels_used"] == 6
    assert s["platform"] == platform() and f"torch {torch.__version__}" in s["platform"]
    assert s["code_version"] == code_version() and s["code_version"].startswith(("git:", "src:"))
    # every environment step is counted: the agent's plus the initial policy's
    assert run.initial_env_steps >= 8 * 5  # one segment per environment at least
    assert s["env_steps"] == s["total_timesteps"] + run.initial_env_steps
    out = run.save(tmp_path / "run")
    for name in (
        "config.yaml",
        "metrics.csv",
        "reward_model.safetensors",
        "reward_model.json",
        "agent.zip",
        "summary.json",
    ):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    for key in (
        "task",
        "feedback",
        "teacher",
        "reward",
        "labels_used",
        "env_steps",
        "total_timesteps",
        "true_return_mean",
        "true_return_std",
        "reward_model_accuracy",
        "wall_seconds",
    ):
        assert key in summary
    header = (out / "metrics.csv").read_text().splitlines()[0]
    assert "true_return_mean" in header and "reward_correlation" in header
    # the saved config reproduces the run's settings
    from rlhf_gym.config import RunConfig
    from rlhf_gym.schema import from_dict, load_yaml

    assert from_dict(RunConfig, load_yaml(out / "config.yaml")) == run.config


@pytest.mark.parametrize("reward", ["true", "constant"])
def test_controls_need_no_labels_and_see_their_reward(reward):
    run = RLHF("CartPole-v1", reward=reward, horizon="fixed", **TINY).learn()
    assert run.summary()["labels_used"] == 0 and run.summary()["reward_model_accuracy"] is None
    # the agent's rewards: constant 1 everywhere, or the true reward (0 on absorbing steps)
    rewards = run.agent.rollout_buffer.rewards
    if reward == "constant":
        assert np.all(rewards == 1.0)
    else:
        assert set(np.unique(rewards)) <= {0.0, 1.0}


def test_off_policy_agent_buffer_is_relabelled_after_each_fit():
    run = RLHF(
        "Pendulum-v1",
        labels=6,
        algo="sac",
        feedback_until=0.9,
        **{**TINY, "hyperparams": {"learning_starts": 64, "batch_size": 32}},
    )
    run.learn()
    buf = run.agent.replay_buffer
    assert buf.pos == 512
    # the initial rollout was the agent's own first steps: none beyond its 512 (issue 21's overhead)
    assert run.env.env_steps == run.summary()["total_timesteps"] == 512 and run.initial_env_steps == 0
    # the steps as the environment saw them (env-unit actions), recorded independently of the buffer
    steps = run.env.recorder.pool()[-3:]  # 512 steps = two 200-step episodes and 112 of a third
    assert [len(t) for t in steps] == [200, 200, 112]
    obs = np.concatenate([t.obs for t in steps])
    actions = np.concatenate([t.actions for t in steps])
    np.testing.assert_allclose(buf.observations[:512, 0], obs)
    # every stored reward is the final reward model's, although most were collected under earlier fits
    expected = run.reward_model(obs, actions, np.zeros(512, bool))
    np.testing.assert_allclose(buf.rewards[:512, 0], expected, rtol=1e-4, atol=1e-5)
    assert run.summary()["labels_used"] == 6


def test_dqn_on_a_generic_discrete_task():
    run = RLHF(
        "Acrobot-v1",
        labels=4,
        algo="dqn",
        horizon="fixed",
        **{**TINY, "hyperparams": {"learning_starts": 64, "buffer_size": 1000}},
    ).learn()
    assert run.summary()["labels_used"] == 4


def test_wrong_algorithm_for_the_action_space():
    with pytest.raises(ValueError, match="sac needs a Box action space"):
        RLHF("CartPole-v1", algo="sac", **TINY).learn()


def test_learn_budget_is_recorded_in_the_config():
    run = RLHF("CartPole-v1", reward="constant", **{**TINY, "total_timesteps": 10_000}).learn(
        total_timesteps=256
    )
    assert run.config.total_timesteps == 256 and run.summary()["total_timesteps"] == 256


def test_teacher_by_name_or_object():
    from rlhf_gym.feedback.teachers import Teacher

    assert RLHF("CartPole-v1", teacher="mistake").teacher.params.eps_mistake == 0.1
    custom = Teacher.preset("stoch", beta=0.3)
    run = RLHF("CartPole-v1", teacher=custom)
    assert run.teacher is custom and run.config.teacher == "stoch"
    # the saved config rebuilds the same teacher
    again = RLHF(config=run.config)
    assert again.teacher.params == custom.params
    assert RLHF("CartPole-v1", teacher="stoch", teacher_params={"beta": 0.3}).teacher.params == custom.params


def test_any_gymnasium_id_without_a_preset_trains_end_to_end():
    # Discrete observations (one-hot in the reward model), a task with no preset: generic defaults
    run = RLHF(
        "FrozenLake-v1",
        labels=4,
        segment_length=4,
        **{k: v for k, v in TINY.items() if k != "segment_length"},
    )
    run.learn()
    assert run.task.family == "generic" and run.config.algo == "ppo"
    assert run.summary()["labels_used"] == 4 and run.reward_model.input_dim == 16 + 4


def test_a2c_learns_from_the_learned_reward_too():
    run = RLHF("CartPole-v1", algo="a2c", labels=4, **{**TINY, "hyperparams": {"n_steps": 8}}).learn()
    assert run.agent.__class__.__name__ == "A2C" and run.summary()["labels_used"] == 4


@pytest.mark.parametrize(
    "feedback", ["corrections", "demonstrations", "ratings", "tamer", "estops", "comparisons,corrections"]
)
def test_every_feedback_type_trains_end_to_end_within_its_effort_budget(feedback, tmp_path):
    run = RLHF("CartPole-v1", horizon="fixed", feedback=feedback, budget_seconds=40.0, seed=1, **TINY).learn()
    s = run.summary()
    assert s["labels_used"] > 0 and 0 < s["effort_seconds"] <= 40.0 + 1e-6
    kinds = {"comparisons": "comparison", "corrections": "correction", "demonstrations": "demonstration"}
    kinds |= {"ratings": "rating", "tamer": "signal", "estops": "estop"}
    assert set(s["labels_by_type"]) == {kinds[k] for k in feedback.split(",")}
    assert run.last_fit is not None
    run.save(tmp_path / "run")
    from rlhf_gym.feedback.store import FeedbackStore

    with FeedbackStore(tmp_path / "run" / "feedback.sqlite") as store:  # stored and reloadable
        assert [r.kind for r in store.records()] == [r.kind for r in run.feedback]
        assert store.info()["effort_seconds"] == pytest.approx(sum(run.feedback_seconds))


def test_a_feedback_store_is_written_as_labels_arrive_and_reloaded(tmp_path):
    from rlhf_gym.feedback.store import FeedbackStore

    path = tmp_path / "labels.sqlite"
    kw = {"task": "CartPole-v1", "horizon": "fixed", "feedback": "ratings", "feedback_store": str(path)}
    kw |= TINY
    first = RLHF(labels=6, **kw)
    first.learn()
    with FeedbackStore(path) as store:
        assert len(store) == 6
    again = RLHF(labels=4, **kw)
    assert len(again.feedback) == 6  # the stored labels are fitted too
    again.learn()
    assert again.summary()["labels_used"] == 4 and len(again.feedback) == 10


def test_labels_budget_counts_items_of_every_type():
    run = RLHF("CartPole-v1", horizon="fixed", feedback="ratings,estops", labels=10, **TINY).learn()
    assert run.summary()["labels_used"] <= 10
    # split equally each round; what e-stops leave unspent (too few failures) carries over
    assert run.summary()["labels_by_type"]["rating"] >= 5


def test_feedback_types_need_an_expert_and_a_known_name():
    with pytest.raises(ValueError, match="unknown feedback type 'critiques'"):
        RLHF("CartPole-v1", feedback="critiques")
    run = RLHF("FrozenLake-v1", feedback="corrections", labels=2, **TINY)
    with pytest.raises(ValueError, match="expert"):
        run.learn()


def test_bc_steps_clone_the_demonstrated_actions_before_learning():
    import torch

    def first_layer(bc_steps):
        run = RLHF(
            "CartPole-v1", horizon="fixed", feedback="demonstrations", labels=1, bc_steps=bc_steps, **TINY
        )
        run.learn(total_timesteps=16)
        return next(run.agent.policy.parameters()).detach().clone()

    assert not torch.equal(first_layer(0), first_layer(50))


def test_regret_teacher_judges_with_a_saved_critic_or_trains_its_own(tmp_path):
    from rlhf_gym.feedback.teachers import RegretTeacher

    ceiling = RLHF("CartPole-v1", horizon="fixed", reward="true", **TINY).learn()
    ceiling.save(tmp_path / "ceiling")
    run = RLHF(
        "CartPole-v1",
        horizon="fixed",
        teacher="regret",
        teacher_critic=str(tmp_path / "ceiling" / "agent.zip"),
        labels=6,
        **TINY,
    )
    assert isinstance(run.teacher, RegretTeacher) and run.teacher.discount == ceiling.agent.gamma
    run.learn()
    assert run.metrics[-1]["labels_used"] == 6
    assert {c.teacher for c in run.feedback} == {"regret"}
    own = RLHF("CartPole-v1", horizon="fixed", teacher="regret", labels=6, **TINY)
    assert not isinstance(own.teacher, RegretTeacher)  # its critic is trained when learning starts
    assert own.learn().metrics[-1]["labels_used"] == 6
    assert isinstance(own.teacher, RegretTeacher) and own.collector.teacher is own.teacher
    assert {c.teacher for c in own.feedback} == {"regret"}
    with pytest.raises(FileNotFoundError, match="no saved agent"):
        RLHF("CartPole-v1", horizon="fixed", teacher="regret", teacher_critic=str(tmp_path / "none.zip"))
    control = RLHF("CartPole-v1", horizon="fixed", teacher="regret", reward="constant", **TINY)
    assert not isinstance(control.teacher, RegretTeacher)  # no feedback asked, no critic trained


@pytest.mark.parametrize("threads, expected", [(1, 1), (None, 2)])
def test_a_run_starts_with_the_configs_torch_threads(threads, expected):
    """The API's default is the CLI's one thread (issue 21: all cores on 2 busy ones ran 10x slower)."""
    assert RunConfig().torch_threads == 1
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        tiny_run(torch_threads=threads).loop.start()
        assert torch.get_num_threads() == expected
    finally:
        torch.set_num_threads(previous)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_torch_threads_must_be_a_positive_integer(bad):
    with pytest.raises(ValueError, match="torch_threads must be a positive integer or None"):
        RunConfig(torch_threads=bad)


def test_pebbles_unsupervised_phase_trains_on_state_entropy_then_asks_about_its_rollouts(monkeypatch):
    import rlhf_gym.train.loop as loop_module

    seen: list[int] = []
    resets: list[int] = []

    class Spy(loop_module.StateEntropy):
        def __call__(self, obs, actions, absorbing):
            seen.append(len(obs))
            return super().__call__(obs, actions, absorbing)

    monkeypatch.setattr(loop_module, "StateEntropy", Spy)
    monkeypatch.setattr(loop_module, "reset_critic", lambda agent: resets.append(agent.num_timesteps))
    run = tiny_run(unsupervised_fraction=0.5, feedback_until=0.75)
    run.learn()
    s = run.summary()
    assert sum(seen) == 128  # half of 256 steps, two rollouts of 2 x 32, on the intrinsic reward
    assert resets == [128]  # the critic starts afresh once, when the phase ends
    assert run.env.reward_fn is run.reward_model  # and the agent's reward is the learned one after it
    # those steps are the agent's own: no initial rollout is added to the nominal budget
    assert s["env_steps"] == s["total_timesteps"] == 256
    assert s["labels_used"] == 6
    first = run.feedback[0].query.first
    assert first.obs.shape == (10, 4)


def test_after_exploring_rounds_and_evaluations_are_spread_over_the_steps_that_remain():
    steps: list[tuple[str, int]] = []
    run = tiny_run(
        total_timesteps=1024, unsupervised_fraction=0.5, feedback_rounds=2, feedback_until=1.0, eval_freq=200
    )
    real_round, real_eval = run.feedback_round, run.log_evaluation
    run.feedback_round = lambda *a, **k: (
        steps.append(("round", run.loop.agent.num_timesteps)),
        real_round(*a, **k),
    )[1]
    run.log_evaluation = lambda n: (steps.append(("eval", run.loop.agent.num_timesteps)), real_eval(n))[1]
    run.learn()
    rounds = [t for kind, t in steps if kind == "round"]
    evals = [t for kind, t in steps if kind == "eval"]
    # the first round when exploring ends (512 steps), the next halfway to the end (not at once: 512)
    assert rounds == [512, 768]
    assert evals == sorted(set(evals)) and evals[0] >= 600  # once per 200 steps, none owed for exploring


def test_the_unsupervised_fraction_is_a_share():
    with pytest.raises(ValueError, match="unsupervised_fraction must be in"):
        RunConfig(unsupervised_fraction=1.5)


def test_rune_adds_the_members_spread_to_the_agents_reward_and_to_its_relabelled_buffer():
    from rlhf_gym.reward.rune import Rune

    run = RLHF(
        "Pendulum-v1",
        labels=6,
        algo="sac",
        feedback_until=0.9,
        **{
            **TINY,
            "hyperparams": {"learning_starts": 64, "batch_size": 32},
            "reward_model": {**TINY["reward_model"], "rune_beta": 0.5, "rune_decay": 0.0},
        },
    )
    run.learn()
    rune = run.env.reward_fn
    assert isinstance(rune, Rune) and rune.model is run.reward_model and rune.steps == run.env.env_steps
    buf = run.agent.replay_buffer
    steps = run.env.recorder.pool()[-3:]
    obs = np.concatenate([t.obs for t in steps])
    actions = np.concatenate([t.actions for t in steps])
    live = np.zeros(512, bool)
    plain = run.reward_model(obs, actions, live)
    spread = run.reward_model.spread(obs, actions, live)
    assert spread.min() > 0
    np.testing.assert_allclose(buf.rewards[:512, 0], plain + 0.5 * spread, rtol=1e-4, atol=1e-5)


def test_runes_bonus_decays_with_every_environment_step():
    run = tiny_run(reward_model={"rune_beta": 0.5, "rune_decay": 0.01})
    run.learn()
    steps = run.env.env_steps  # the initial rollout's included
    assert run.env.reward_fn.steps == steps > 256
    assert run.env.reward_fn.beta == pytest.approx(0.5 * 0.99**steps)


def test_a_phase_learned_as_a_call_of_its_own_keeps_the_runs_schedules():
    from stable_baselines3.common.vec_env import DummyVecEnv

    from rlhf_gym.agents.callbacks import progress_of_run
    from rlhf_gym.agents.registry import make_agent
    from rlhf_gym.tasks.registry import get_task

    def dqn():
        hp = {"exploration_fraction": 0.5, "exploration_final_eps": 0.05, "learning_starts": 10_000}
        return make_agent("dqn", DummyVecEnv([get_task("CartPole-v1").make]), hp, 0, False)

    alone = dqn()
    alone.learn(1000)
    assert alone.exploration_rate == pytest.approx(0.05)  # SB3: the call's own schedule, finished
    phase = dqn()
    with progress_of_run(phase, 10_000):
        phase.learn(1000)
    assert phase.exploration_rate == pytest.approx(1 - 0.2 * 0.95, abs=0.01)  # 10% of the run, not all
    assert "_update_current_progress_remaining" not in vars(phase)


def test_an_off_policy_agents_initial_rollout_fills_its_buffer_and_never_trains():
    run = RLHF(
        "Pendulum-v1",
        labels=6,
        algo="sac",
        **{**TINY, "hyperparams": {"learning_starts": 100, "train_freq": 32, "gradient_steps": 32}},
    )
    run.loop.start()
    assert run.loop.collect(1000) == run.agent.num_timesteps >= 1000
    assert run.agent._n_updates == 0 and run.agent.learning_starts == 100
    assert run.agent.replay_buffer.pos == run.agent.num_timesteps


def test_exploring_takes_at_least_a_segment_per_environment():
    run = RLHF(
        "Pendulum-v1",
        labels=4,
        algo="sac",
        unsupervised_fraction=0.05,
        **{**TINY, "total_timesteps": 300, "segment_length": 50, "hyperparams": {"learning_starts": 50}},
    )
    run.learn()  # 5% of 300 steps is 15: too short for a segment of 50, so it explores 50
    assert run.summary()["labels_used"] == 4


def test_the_runs_config_not_a_checkpoints_decides_runes_bonus():
    run = tiny_run()
    run.reward_model.config = dataclasses.replace(run.reward_model.config, rune_beta=0.5)
    run.learn()
    assert run.env.reward_fn is run.reward_model


def test_exploring_and_goal_queries_are_feedback_fields_and_exploring_ends_before_the_rounds():
    from rlhf_gym.train.resolve import feedback_only

    assert feedback_only("unsupervised_fraction") and feedback_only("goal_queries")
    with pytest.raises(ValueError, match="must be below feedback_until"):
        RunConfig(unsupervised_fraction=0.5, feedback_until=0.5)
