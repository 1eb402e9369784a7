"""rl-zoo3's tuned hyperparameters for ids without a preset: read, translated, never run."""

from __future__ import annotations

import textwrap

import pytest

from rlhf_gym.tasks import zoo
from rlhf_gym.tasks.registry import get_task

PPO = """
CartPole-v1:
  n_envs: 8
  n_timesteps: !!float 1.2e5
  policy: 'MlpPolicy'
  n_steps: 32
  learning_rate: lin_0.001
  policy_kwargs: "dict(log_std_init=-2, net_arch=dict(pi=[32], vf=[16]), activation_fn=nn.Tanh)"
  normalize: true
  frame_stack: 4
Pendulum-v1: &pendulum
  n_timesteps: 2000
  policy: 'MultiInputPolicy'
"""
DQN = """
Pendulum-v1:
  n_timesteps: 5000
  policy: 'MlpPolicy'
CartPole-v1:
  n_timesteps: 7000
  policy: 'MlpPolicy'
  learning_starts: 0
"""


@pytest.fixture
def fake_zoo(tmp_path, monkeypatch):
    """An installed rl_zoo3 as far as the project can tell: a package with its hyperparams folder."""
    package = tmp_path / "rl_zoo3"
    (package / "hyperparams").mkdir(parents=True)
    (package / "__init__.py").write_text("raise RuntimeError('rl_zoo3 is never imported')\n")
    (package / "hyperparams" / "ppo.yml").write_text(textwrap.dedent(PPO))
    (package / "hyperparams" / "dqn.yml").write_text(textwrap.dedent(DQN))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(zoo, "zoo_version", lambda: "unknown")  # (a real rl_zoo3 may be installed too)
    return package


def test_the_zoo_entry_is_translated_and_what_the_pipeline_does_not_apply_is_named():
    entry = zoo.translate("ppo", "CartPole-v1", zoo.yaml.safe_load(textwrap.dedent(PPO))["CartPole-v1"])
    assert entry.total_timesteps == 120_000 and entry.ignored == ("frame_stack",)
    assert entry.hyperparams == {
        "normalize": True,  # applied by the agent (rlhf_gym.agents.normalize)
        "n_envs": 8,
        "n_steps": 32,
        "learning_rate": "lin_0.001",  # a linear schedule when the agent is built
        "policy_kwargs": {"log_std_init": -2, "net_arch": {"pi": [32], "vf": [16]}, "activation_fn": "tanh"},
    }
    assert zoo.translate("ppo", "X-v0", {"policy": "MultiInputPolicy"}).ignored == (
        "policy MultiInputPolicy",
    )
    assert zoo.translate("ppo", "X-v0", {"policy": "CnnPolicy"}).ignored == ()  # taken for images


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('echo pwned')",
        "dict(net_arch=[64], activation_fn=nn.Module)",
        "dict(**other)",
        "dict(net_arch=(lambda: [64])())",
        "[64, 64]",
        "dict(net_arch=[64]",
    ],
)
def test_policy_kwargs_are_read_never_run(text):
    with pytest.raises(ValueError, match="rl-zoo3 policy_kwargs"):
        zoo.parse_policy_kwargs(text)


def test_an_id_without_a_preset_takes_the_zoos_nearest_version_and_says_so(fake_zoo):
    from rlhf_gym.train.resolve import resolve_config

    task = get_task("CartPole-v0")  # no preset makes CartPole-v0; the zoo has CartPole-v1
    assert task.algo == "ppo" and task.total_timesteps == 120_000
    assert task.hyperparams["dqn"] == {"learning_starts": 0}
    cfg = resolve_config(task="CartPole-v0")
    assert cfg.hyperparams["n_steps"] == 32 and cfg.total_timesteps == 120_000
    assert cfg.hyperparams_from.startswith(
        "rl-zoo3 unknown (ppo.yml: CartPole-v1, its nearest version of CartPole-v0)"
    )
    assert cfg.hyperparams_from.endswith("not applied: frame_stack")
    # another algorithm: its own entry, budget and source line
    dqn = resolve_config(task="CartPole-v0", algo="dqn")
    assert dqn.hyperparams == {"learning_starts": 0} and dqn.total_timesteps == 7000
    assert dqn.hyperparams_from.startswith("rl-zoo3 unknown (dqn.yml: CartPole-v1")
    a2c = resolve_config(task="CartPole-v0", algo="a2c")  # none in the zoo: SB3's, said
    assert a2c.hyperparams == {} and a2c.total_timesteps == 100_000
    assert a2c.hyperparams_from.startswith("SB3's defaults, untuned (rl-zoo3 has no entry for CartPole-v0")
    bon = resolve_config(task="CartPole-v0", algo="bon")  # PPO-based: PPO's entry, as its hyperparameters
    assert bon.total_timesteps == 120_000 and bon.hyperparams_from == cfg.hyperparams_from
    # a saved config keeps its source, on a machine without the zoo too
    assert resolve_config(cfg).hyperparams_from == cfg.hyperparams_from
    preset = resolve_config(task="CartPole-v1")
    assert preset.hyperparams_from == "preset CartPole-v1"
    assert resolve_config(task="Pendulum-v1", algo="a2c").hyperparams_from == (
        "preset Pendulum-v1 (SB3's defaults for a2c)"
    )


def test_the_zoos_settings_build_the_agent_with_its_activation_and_schedule(fake_zoo):
    from stable_baselines3.common.vec_env import DummyVecEnv
    from torch import nn

    from rlhf_gym.agents.registry import make_agent
    from rlhf_gym.train.resolve import resolve_config

    cfg = resolve_config(task="CartPole-v0")
    hp = {k: v for k, v in cfg.hyperparams.items() if k != "n_envs"}
    agent = make_agent("ppo", DummyVecEnv([get_task("CartPole-v0").make]), hp, 0, relabel=False)
    assert agent.policy.activation_fn is nn.Tanh and agent.n_steps == 32
    assert agent.lr_schedule(1.0) == pytest.approx(0.001) and agent.lr_schedule(0.5) == pytest.approx(0.0005)


def test_a_continuous_task_skips_the_zoos_dqn_and_a_missing_zoo_is_said(fake_zoo, monkeypatch):
    from gymnasium import spaces

    settings = zoo.generic_settings("Pendulum-v0", spaces.Box(-2, 2, (1,)))
    assert (
        settings.algo == "ppo" and settings.timesteps == {"ppo": 2000} and "dqn" not in settings.hyperparams
    )
    assert settings.sources["ppo"].endswith("not applied: policy MultiInputPolicy")
    monkeypatch.setattr(zoo, "zoo_dir", lambda: None)
    assert zoo.generic_settings("CartPole-v0", spaces.Discrete(2)).sources == {
        "": "SB3's defaults, untuned (pip install \"rlhf-gym[zoo]\" for rl-zoo3's tuned ones)"
    }


def test_an_unreadable_entry_or_file_is_skipped_and_named_and_aliases_only_merge(fake_zoo):
    hyper = fake_zoo / "hyperparams"
    (hyper / "a2c.yml").write_text('CartPole-v1:\n  policy_kwargs: "dict(optimizer_class=RMSpropTFLike)"\n')
    (hyper / "sac.yml").write_text("a: [unclosed\n")
    found, unread = zoo.lookup("CartPole-v1")
    assert {e.algo for e in found} == {"ppo", "dqn"}
    assert unread[0] == "sac.yml: not readable YAML (ParserError)"
    assert unread[1].startswith("a2c.yml: rl-zoo3 policy_kwargs")
    merged = "base: &base\n  n_steps: 8\nCartPole-v1:\n  <<: *base\n  gamma: 0.9\n"
    (hyper / "a2c.yml").write_text(merged)
    (a2c,) = [e for e in zoo.lookup("CartPole-v1")[0] if e.algo == "a2c"]
    assert a2c.hyperparams == {"n_steps": 8, "gamma": 0.9}
    bomb = "a: &a [1, 2, 3]\nb: &b [*a, *a, *a]\nCartPole-v1:\n  gamma: *b\n"
    (hyper / "a2c.yml").write_text(bomb)
    assert "a2c" not in {e.algo for e in zoo.lookup("CartPole-v1")[0]}  # (the file reads as empty)


def test_untuned_defaults_are_warned_about_once_for_a_config_object_too(monkeypatch):
    import warnings

    from rlhf_gym.config import RunConfig
    from rlhf_gym.train import resolve

    monkeypatch.setattr(zoo, "zoo_dir", lambda: None)
    monkeypatch.setattr(resolve, "_WARNED", set())
    with pytest.warns(
        UserWarning, match="CartPole-v0 has no preset; its ppo hyperparameters: SB3's defaults"
    ):
        resolve.resolve_config(RunConfig(task="CartPole-v0"))
    with warnings.catch_warnings(record=True) as again:
        warnings.simplefilter("always")
        resolve.resolve_config(RunConfig(task="CartPole-v0"))
    assert not [w for w in again if "has no preset" in str(w.message)]  # said once
